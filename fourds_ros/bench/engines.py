"""fourds-ros bench engines: every available backend on the whole model (encoder + 3 heads).

Reports latency p50/p95, clips/s, FLOPs per clip, achieved FLOP/s and the relative L2 error of
each backend against torch fp32 eager (max over the named outputs).

CPU (default): torch eager fp32, ONNX Runtime fp32, ONNX Runtime fp16-encoder export (error of
the graph TensorRT builds from) and ONNX Runtime int8 dynamic quantisation.
CUDA (--device cuda): torch fp32/bf16/fp16 with flash SDPA, eager and CUDA graphs, each against
the FLOP floor at --peak-tflops; then the engines the node builds (host I/O included): TensorRT
fp16 when importable, the torch engine in fp16 (`precision: auto`), ONNX Runtime's CUDA provider
when present.

Cases (--cases SIZE@TxHxW) are randomly initialised models, heads read out at the encoder's width,
fed a random clip: their latency is a trained model's, but not their error, since a random tracks
head's soft-argmax is flat and small changes move it far (session 42, torch bf16 on the CPU: track_xy
0.65 for a random S model, 0.054 for the shipped one on a real clip). --model DIR benches a trained
checkpoint on a real clip (the first frames of --frames, by default the embedded HoloLens sample);
its errors are the ones that decide a precision. Each row keeps every output's error and names the
worst.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..argtypes import frame_count
from ..engine import EngineError, EngineSpec, create_engine
from ..engine.export import ONNX_FILE, compare_outputs, example_inputs
from ..engine.onnxruntime_backend import OnnxRuntimeEngine
from ..engine.torch_backend import GraphedForward
from ..model import (
    FourDS, ModelConfig, count_parameters, default_heads, init_weights, load_checkpoint, save_checkpoint,
)
from ..perception.preprocess import Preprocessor
from ..rgbd import image_files, read_rgb
from .report import (
    add_output_arguments, count_flops, latency_stats, markdown_table, output_arguments, time_call, write_results,
)

log = logging.getLogger(__name__)

CPU_CASES = ["S@8x128x128", "S@16x224x224"]
CUDA_CASES = ["S@16x224x224", "B@16x224x224"]
# (backend, precision) in run order. The first is the error reference.
# "fp32-unfused": the plain export that the fused fp32 graph is made from (onnxruntime_backend.fuse_graph)
CPU_RUNS = [("torch", "fp32"), ("onnxruntime", "fp32-unfused"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16"),
            ("onnxruntime", "int8")]
CUDA_TORCH_PRECISIONS = ("fp32", "bf16", "fp16")
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
REPO = Path(__file__).resolve().parents[2]
SAMPLE_FRAMES = REPO / "samples" / "hololens_000" / "images"


def build_case(case: str, seed: int = 0) -> FourDS:
    """'S@16x224x224' -> a random FourDS with depth, tracks and pose heads."""
    size, _, shape = case.partition("@")
    t, h, w = (int(v) for v in (shape or "16x224x224").split("x"))
    probe = ModelConfig(size=size, num_frames=t, image_size=(h, w))
    spec = probe.encoder
    cfg = probe.replace(heads=default_heads(spec.width, spec.num_heads))
    return init_weights(FourDS(cfg), seed=seed).eval()


def real_clip_inputs(spec: EngineSpec, frames_dir: Path) -> dict[str, np.ndarray]:
    """The first T frames of frames_dir (in frame order: 2.png before 10.png), resized to the model's input,
    and queries on a grid of frame 0: video (1, T, H, W, 3) float32 in [0, 1], query_points (1, Q, 3) as
    (t, y, x)."""
    t, h, w = spec.config.num_frames, *spec.config.image_size
    paths = image_files(frames_dir)[:t]
    if len(paths) < t:
        raise SystemExit(f"fourds-ros bench engines: {frames_dir} holds {len(paths)} images, the model needs {t}")
    # The node's own preprocessing, with the whole frame resized (the sample's 4:3 frames squeezed)
    # rather than the node's default centre crop, as session 42's committed figures were measured.
    to_model = Preprocessor((h, w), "resize")
    video = np.stack([to_model(read_rgb(path, SystemExit)) for path in paths])[None]
    side = int(np.ceil(np.sqrt(spec.num_queries)))
    ys, xs = np.meshgrid(np.linspace(0.1, 0.9, side) * (h - 1), np.linspace(0.1, 0.9, side) * (w - 1), indexing="ij")
    grid = np.stack([np.zeros(side * side), ys.ravel(), xs.ravel()], -1)[: spec.num_queries]
    return {"video": video, "query_points": grid[None].astype(np.float32)}


@dataclass
class BenchCase:
    """One model to bench: its name in the table, the model, the inputs its error is measured on, its
    FLOPs, and the checkpoint the exported engines are built from."""

    name: str
    model: FourDS
    spec: EngineSpec
    inputs: dict[str, np.ndarray]
    flops: int
    model_dir: Path


def prepare_case(case: str, num_queries: int, cache_dir: Path, model_dir: Path | None = None,
                 frames_dir: Path = SAMPLE_FRAMES) -> BenchCase:
    """A random model for `case` (SIZE@TxHxW) on a random clip, saved to cache_dir for the engines to
    build from, or the trained checkpoint model_dir (built from where it is) on the real clip of
    frames_dir (`case` is then the table's name for it)."""
    trained = model_dir is not None
    model = load_checkpoint(model_dir).float().eval() if trained else build_case(case)
    if not trained:
        model_dir = save_checkpoint(model, cache_dir / "models" / case.replace("@", "_"))
    spec = EngineSpec(model.config, num_queries)
    inputs = real_clip_inputs(spec, frames_dir) if trained else example_inputs(spec, seed=1)
    flops = count_flops(model, torch.from_numpy(inputs["video"]), torch.from_numpy(inputs["query_points"]))
    return BenchCase(case, model, spec, inputs, flops, Path(model_dir))


def _row(case: str, model: FourDS, backend: str, precision: str, device: str, times: list[float],
         flops: int, errors: dict[str, float], variant: str = "", peak_tflops: float | None = None) -> dict:
    stats = latency_stats(times)
    cfg = model.config
    worst = max(errors, key=errors.get)
    row = {
        "case": case, "size": cfg.size, "clip": "x".join(map(str, (cfg.num_frames, *cfg.image_size))),
        "backend": backend + (f" {variant}" if variant else ""), "precision": precision, "device": device,
        "parameters": count_parameters(model),
        "gflops_per_clip": flops / 1e9,
        "clips_per_s": 1e3 / stats["latency_ms_p50"],
        "achieved_gflops": flops / 1e9 / (stats["latency_ms_p50"] / 1e3),
        "max_rel_l2_vs_torch_fp32": errors[worst],
        "worst_output": worst,
        "rel_l2_vs_torch_fp32": {k: float(v) for k, v in errors.items()},
        **stats,
    }
    if peak_tflops:
        row["floor_ms"] = flops / (peak_tflops * 1e12) * 1e3
        row["fraction_of_peak"] = row["floor_ms"] / stats["latency_ms_p50"]
    return row


def bench_cpu_case(case: BenchCase, runs, repeats: int, cache_dir: Path) -> list[dict]:
    rows, inputs = [], case.inputs
    # The error column is against torch fp32 whatever the runs are: it was the first run's output (with
    # --backends onnxruntime:fp32 onnxruntime:int8 the int8 row read against ONNX Runtime fp32).
    reference = create_engine(case.model_dir, "torch", "cpu", "fp32", case.spec.num_queries, cache_dir=cache_dir)(inputs)
    for backend, precision in runs:
        try:
            engine = create_engine(case.model_dir, backend, "cpu", precision.removesuffix("-unfused"),
                                   case.spec.num_queries, cache_dir=cache_dir)
            if precision.endswith("-unfused"):
                engine = OnnxRuntimeEngine(engine.onnx_path.with_name(ONNX_FILE), case.spec, precision=precision)
        except EngineError as e:
            log.warning("%s: skipping %s %s: %s", case.name, backend, precision, e)
            continue
        errors = compare_outputs(engine(inputs), reference)
        times = time_call(lambda engine=engine: engine(inputs), warmup=1, repeats=repeats)
        rows.append(_row(case.name, case.model, backend, precision, "cpu", times, case.flops, errors))
        log.info("%s %s %s: p50 %.1f ms, error %.1e (%s)", case.name, backend, precision,
                 rows[-1]["latency_ms_p50"], rows[-1]["max_rel_l2_vs_torch_fp32"], rows[-1]["worst_output"])
    return rows


def _cuda_torch_runner(model: FourDS, video: torch.Tensor, query_points: torch.Tensor, precision: str,
                       cuda_graphs: bool):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    dtype = TORCH_DTYPES[precision]
    model.check_inputs = False  # validated before capture; the range check would sync the host
    # Flash attention needs half types; fp32 gets the memory-efficient kernel.
    kernels = [SDPBackend.FLASH_ATTENTION] if dtype != torch.float32 else [SDPBackend.EFFICIENT_ATTENTION]

    def forward():
        # cache_enabled=False: autocast's weight-cast cache must not outlive a graph capture.
        with sdpa_kernel(kernels), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32,
                                                  cache_enabled=False):
            return model(video, query_points)

    if not cuda_graphs:
        def call():
            out = forward()
            torch.cuda.synchronize()
            return out
        return call
    # The engine's capture (torch_backend.GraphedForward), timed as the bare replay: the inputs stay put.
    graphed = GraphedForward(lambda _inputs: forward(), {})

    def replay():
        graphed.graph.replay()
        torch.cuda.synchronize()
        return graphed.outputs
    return replay


def bench_cuda_case(case: BenchCase, repeats: int, cache_dir: Path, peak_tflops: float,
                    cuda_graphs: bool) -> list[dict]:
    model, inputs, flops = case.model, case.inputs, case.flops
    model = model.cuda()
    video = torch.from_numpy(inputs["video"]).cuda()
    queries = torch.from_numpy(inputs["query_points"]).cuda()
    # The reference in strict fp32: cuDNN's TF32 is on by default, and the patch embedding's and the
    # tracks head's convolutions ran in it, under every error "against torch fp32".
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.inference_mode():
            reference = {k: v.float().cpu().numpy() for k, v in model(video, queries).items()}
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    rows = []
    for precision in CUDA_TORCH_PRECISIONS:
        for graphs in (False, True) if cuda_graphs else (False,):
            with torch.inference_mode():
                call = _cuda_torch_runner(model, video, queries, precision, graphs)
                out = {k: v.float().cpu().numpy() for k, v in call().items()}
                times = time_call(call, warmup=3, repeats=max(repeats, 20), min_seconds=1.0)
            errors = compare_outputs(out, reference)
            variant = "flash SDPA" + (" + CUDA graph" if graphs else "")
            rows.append(_row(case.name, model, "torch", precision, "cuda", times, flops, errors, variant,
                             peak_tflops))
    model.cpu()
    torch.cuda.empty_cache()
    # The engines the node would build on this GPU (precision auto: fp16), host I/O included.
    for backend, precision in (("tensorrt", "fp16"), ("torch", "fp16"), ("onnxruntime", "fp32")):
        try:
            engine = create_engine(case.model_dir, backend, "cuda", precision, case.spec.num_queries,
                                   cache_dir=cache_dir)
            errors = compare_outputs(engine(inputs), reference)
            # Host-to-device copies included: this is what the node pays per clip.
            times = time_call(lambda engine=engine: engine(inputs), warmup=3, repeats=max(repeats, 20),
                              min_seconds=1.0)
        except Exception as e:  # one engine that fails (to build, or to run) costs its row, not the others'
            log.warning("%s: skipping %s %s: %s: %s", case.name, backend, precision, type(e).__name__, e)
            continue
        # describe(): whether the torch engine runs its CUDA graph or fell back to eager (session 46).
        rows.append(_row(case.name, model, backend, precision, "cuda", times, flops, errors,
                         f"{engine.describe()} (host I/O incl.)", peak_tflops))
    return rows


COLUMNS = [
    ("size", "size", ""), ("clip", "clip", ""), ("backend", "backend", ""), ("precision", "prec", ""),
    ("gflops_per_clip", "GFLOP/clip", ".1f"), ("latency_ms_p50", "p50 ms", ".2f"),
    ("latency_ms_p95", "p95 ms", ".2f"), ("clips_per_s", "clips/s", ".2f"),
    ("achieved_gflops", "GFLOP/s", ".1f"), ("max_rel_l2_vs_torch_fp32", "rel. L2 vs torch fp32", ".1e"),
    ("worst_output", "worst output", ""),
]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fourds-ros bench engines", description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--cases", nargs="+", default=None, help="SIZE@TxHxW (default per device)")
    parser.add_argument("--backends", nargs="+", default=None, help="CPU runs as BACKEND:PRECISION")
    parser.add_argument("--repeats", type=frame_count, default=5)  # a whole number >= 1
    parser.add_argument("--num-queries", type=int, default=64)
    parser.add_argument("--peak-tflops", type=float, default=790.0,
                        help="dense bf16 peak for the FLOP floor (H100 ~790)")
    parser.add_argument("--no-cuda-graphs", action="store_true")
    parser.add_argument("--cache-dir", default=None, help="engine cache (default: a temporary directory)")
    parser.add_argument("--model", type=Path, default=None,
                        help="bench this trained checkpoint on a real clip instead of --cases' random models")
    parser.add_argument("--frames", type=Path, default=SAMPLE_FRAMES,
                        help="--model: the images of the real clip (default: the embedded HoloLens sample)")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.device == "cuda" and not torch.cuda.is_available():
        print("fourds-ros bench engines: --device cuda but torch.cuda.is_available() is False")
        return 1
    runs = [tuple(b.split(":")) for b in args.backends] if args.backends else CPU_RUNS
    if args.model is not None:
        names = [f"{args.model.name} (trained)"]
    else:
        names = args.cases or (CUDA_CASES if args.device == "cuda" else CPU_CASES)
    with tempfile.TemporaryDirectory(prefix="fourds-bench-") as tmp:
        cache_dir = Path(args.cache_dir) if args.cache_dir else Path(tmp)
        rows = []
        for name in names:
            case = prepare_case(name, args.num_queries, cache_dir, args.model, args.frames)
            if args.device == "cuda":
                rows += bench_cuda_case(case, args.repeats, cache_dir, args.peak_tflops, not args.no_cuda_graphs)
            else:
                rows += bench_cpu_case(case, runs, args.repeats, cache_dir)
    write_engine_results(args, rows)
    return 0


def write_engine_results(args, rows: list[dict]) -> None:
    """The JSON and the markdown section of one run: engines / engines-trained, -cuda on a GPU."""
    columns = list(COLUMNS)
    if args.device == "cuda":
        columns += [("floor_ms", f"floor ms @{args.peak_tflops:.0f} TF", ".3f"),
                    ("fraction_of_peak", "of peak", ".0%")]
    frames = args.frames.resolve()
    frames = frames.relative_to(REPO) if frames.is_relative_to(REPO) else frames
    weights = (f"the trained checkpoint {args.model} on the first frames of {frames}" if args.model
               else "random weights on a random clip (latency only: a random tracks head's error is not a "
               "trained one's)")
    notes = [
        "",
        f"Whole model (encoder + depth, tracks ({args.num_queries} queries), pose heads), {weights}, "
        "one clip per call, inputs and outputs as host numpy arrays except where noted (torch CUDA rows: "
        "on the device). FLOPs by torch's FlopCounterMode (2 per multiply-add). Error: max over the named "
        "outputs of ||out - ref|| / ||ref|| against torch fp32 (eager, same device); every output's in the JSON.",
    ]
    if args.device == "cpu":
        notes.append("onnxruntime fp16 is the fp16-encoder graph that TensorRT's strongly typed build uses "
                     "(heads stay fp32); on the CPU its latency is not meaningful, its error is. GPU rows: "
                     "the (CUDA) sections, `fourds-ros bench engines --device cuda [--model DIR]`.")
    suffix = "" if args.device == "cpu" else "-cuda"
    name = ("engines" if args.model is None else "engines-trained") + suffix
    if not rows:  # a typo in --backends measured nothing: the committed tables stand
        raise ValueError(f"no {name} row was measured (see the warnings above): nothing written")
    title = "Inference engines: latency, throughput, error" + (" (CUDA)" if args.device == "cuda" else " (CPU)")
    if args.model is not None:
        title += ", trained model on a real clip"
    command = "fourds-ros bench engines" + (" --device cuda" if args.device == "cuda" else "") + (
        f" --model {args.model}" if args.model else "")
    table = markdown_table(rows, columns) + "\n" + "\n".join(notes)
    write_results(name, {"device": args.device, "model": str(args.model) if args.model else None, "rows": rows},
                  table, title, command=command, **output_arguments(args))
