"""ONNX export of the whole FourDS model (encoder + enabled heads) as one fixed-shape graph.

Graph I/O is the engine contract of base.py, always float32:
  video: (1, T, H, W, 3) in [0, 1]; query_points: (1, Q, 3) (t, y, x), only with the tracks head
  -> the named outputs of fourds_ros.model.OUTPUTS for the enabled heads.

Precisions:
  fp32: everything float32 (ONNX Runtime matches torch to relative L2 <= 1e-5).
  fp16: for TensorRT's strongly typed mode, where the graph's types are the precision. The encoder
    (nearly all FLOPs) runs in float16; the readout heads stay float32 because the tracks head
    places points by a soft-argmax over cell coordinates, which float16 rounds to 1/8 px at 128 px.

We use the TorchScript-based exporter (dynamo=False): the dynamo exporter needs onnxscript, and
the traced graph has no data-dependent control flow (FourDS skips its input checks while tracing).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..model import CheckpointError, FourDS
from .base import DEFAULT_NUM_QUERIES, EngineError, EngineSpec, check_num_queries
from .engine_cache import (
    BUILD_LOCK, build_lock, checkpoint_key, make_private_dirs, onnx_files, secure_cache_dir, sidecar_problem,
    sweep_stale_temps, writable_entry_dir, write_sidecar,
)

log = logging.getLogger(__name__)

OPSET = 18
EXPORT_PRECISIONS = ("fp32", "fp16")
# Protobuf caps a single file at 2 GiB; above this many bytes of weights, store them beside it.
EXTERNAL_DATA_THRESHOLD = 1 << 30
ONNX_FILE = "model.onnx"


class _NamedOutputs(nn.Module):
    """FourDS with a tuple of float32 outputs in EngineSpec.output_names order (ONNX needs a
    flat output list)."""

    def __init__(self, model: FourDS, output_names: list[str], input_names: list[str]):
        super().__init__()
        self.model = model
        self.output_names = output_names
        self.extra_inputs = input_names[1:]  # after video, the heads' inputs (registry), in spec order

    def forward(self, video: Tensor, *extra: Tensor) -> tuple[Tensor, ...]:
        out = self.model(video, **dict(zip(self.extra_inputs, extra)))
        return tuple(out[name].float() for name in self.output_names)


def _half_encoder(model: FourDS) -> FourDS:
    """A copy of `model` whose encoder computes in float16 and hands float32 states to the heads."""
    model = copy.deepcopy(model)
    model.encoder.half()

    def cast_input(_module, args, kwargs):
        return (args[0].half(), *args[1:]), kwargs

    def cast_output(_module, _args, output):
        return dataclasses.replace(
            output,
            states=[s.float() for s in output.states],
            output=None if output.output is None else output.output.float(),
        )

    model.encoder.register_forward_pre_hook(cast_input, with_kwargs=True)
    model.encoder.register_forward_hook(cast_output)
    return model


def example_inputs(spec: EngineSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Valid float32 inputs for `spec`: a random clip and query points inside it."""
    rng = np.random.default_rng(seed)
    inputs = {name: rng.random(shape, dtype=np.float32) for name, shape in spec.input_shapes.items()}
    if "query_points" in inputs:  # (t, y, x) inside the clip, as the tracks head expects
        t, h, w = spec.config.num_frames, *spec.config.image_size
        inputs["query_points"] *= np.array([t - 1, h - 1, w - 1], np.float32)
    return inputs


def export_onnx(
    model: FourDS,
    out: str | Path,
    num_queries: int = DEFAULT_NUM_QUERIES,
    precision: str = "fp32",
    external_data: bool | None = None,
    opset: int = OPSET,
) -> Path:
    """Export `model` to `out` (and `out`.data when external_data), validated by the ONNX checker
    before it is moved into place. external_data None: only when weights exceed 1 GiB."""
    import onnx

    if precision not in EXPORT_PRECISIONS:
        raise EngineError(f"ONNX export precision must be one of {EXPORT_PRECISIONS}, got {precision!r}")
    if opset < 17:
        raise EngineError(f"opset must be >= 17 (LayerNormalization), got {opset}")
    if not model.config.heads:  # a graph with no output: it passed the checker, and ONNX Runtime refused it
        raise EngineError("the model has no heads (a backbone-only import): a graph of it has no output to run")
    out = Path(out)
    spec = EngineSpec(model.config, num_queries)
    model = model.eval()
    device = next(model.parameters()).device
    if precision == "fp16":
        model = _half_encoder(model)
    wrapper = _NamedOutputs(model, spec.output_names, spec.input_names).eval()
    inputs = {k: torch.from_numpy(v).to(device) for k, v in example_inputs(spec).items()}
    if external_data is None:
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        external_data = weight_bytes > EXTERNAL_DATA_THRESHOLD

    make_private_dirs(out.parent)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        traced = Path(tmp) / "traced" / out.name
        traced.parent.mkdir(mode=0o700)
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy-exporter deprecation notice and tracer warnings about the shape-constant
            # position-embedding branch are expected: shapes are fixed by design.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                wrapper, tuple(inputs[n] for n in spec.input_names), str(traced),
                input_names=spec.input_names, output_names=spec.output_names,
                opset_version=opset, dynamo=False, do_constant_folding=True,
            )
        graph = onnx.load(str(traced))  # also pulls in any external data the exporter wrote
        graph.doc_string = f"fourds_ros {model.config.size} {precision} clip {spec.input_shapes['video']}"
        _save_checked_and_move(graph, Path(tmp), out, external_data)
    return out


def _save_checked_and_move(graph, tmp: Path, out: Path, external_data: bool) -> None:
    """Save `graph` in tmp, run the ONNX checker, then move it (data first) onto `out`."""
    import onnx

    staged = tmp / out.name
    data_name = out.name + ".data"
    if external_data:
        onnx.save_model(graph, str(staged), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=data_name, size_threshold=1024)
    else:
        onnx.save_model(graph, str(staged))
    try:
        onnx.checker.check_model(str(staged))
    except onnx.checker.ValidationError as e:
        raise EngineError(f"exported ONNX graph fails the ONNX checker: {e}") from e
    # Private, as every file the cache writes: onnx.save_model creates them 0666 & ~umask, so under a login shell's
    # umask 002 they came out group-writable and the cache refused its own export at every later start.
    for written in (staged, tmp / data_name):
        if written.exists():
            os.chmod(written, 0o600)
    # Data first, graph last: a reader that sees the new graph also sees its data.
    stale_data = out.with_name(data_name)
    if (tmp / data_name).exists():
        os.replace(tmp / data_name, stale_data)
    elif stale_data.exists():
        stale_data.unlink()
    os.replace(staged, out)


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / ||b||, with the denominator floored so all-zero references stay finite."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def compare_outputs(out: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
    """Relative L2 error of each named output against the reference."""
    return {name: relative_l2(out[name], reference[name]) for name in reference}


def torch_reference(model: FourDS, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        out = model(torch.from_numpy(inputs["video"]),
                    **{k: torch.from_numpy(v) for k, v in inputs.items() if k != "video"})
    return {k: v.float().numpy() for k, v in out.items()}


def onnxruntime_outputs(onnx_path: str | Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def cached_onnx(
    model_dir: str | Path,
    cache_dir: str | Path,
    precision: str = "fp32",
    num_queries: int = DEFAULT_NUM_QUERIES,
    model: FourDS | None = None,
    force: bool = False,
    logger: logging.Logger | None = None,
) -> Path:
    """The exported graph of the checkpoint in model_dir, from the cache or exported into it.

    cache_dir goes through secure_cache_dir (a group/world-writable or foreign one, or root's with an
    entry this process cannot read, is replaced by a private temporary directory, with a WARNING). A
    cached graph whose bytes do not match its SHA-256 sidecar is exported again, with a WARNING. Raises
    ValueError for num_queries < 1 (before anything is written), CacheDirError when cache_dir cannot be
    created or written, and EngineError when the graph cannot be written or the model cannot be exported.
    """
    from ..model import load_checkpoint

    logger = logger or log
    check_num_queries(num_queries)
    key = checkpoint_key(model_dir, precision, num_queries)
    root = secure_cache_dir(cache_dir, logger)
    key_dir = root / "onnx" / key
    path = key_dir / ONNX_FILE
    if path.exists() and not force:
        problem = sidecar_problem(path)
        if problem is None:
            return path  # nothing to write: a prebuilt cache may be read-only
        logger.warning("cached ONNX graph %s %s; exporting it again", path, problem)
    key_dir = writable_entry_dir(key_dir, root, logger)
    path = key_dir / ONNX_FILE  # or in the private temporary directory, where this process may have exported it
    try:
        with build_lock(key_dir / BUILD_LOCK, f"the ONNX graph {path}", logger):
            if path.exists() and not force and sidecar_problem(path) is None:  # exported while this one waited
                return path
            sweep_stale_temps(key_dir)
            model = model if model is not None else load_checkpoint(model_dir)
            logger.info("exporting %s to ONNX (%s) at %s", model_dir, precision, path)
            export_onnx(model, path, num_queries=num_queries, precision=precision)
            write_sidecar(path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            key_dir.rmdir()  # only when empty: a failed first export leaves no folder behind
        if isinstance(exc, OSError):  # a full disk: this backend cannot be made here (auto tries the next)
            raise EngineError(f"cannot write the exported ONNX graph {path}: {exc.strerror or exc}") from exc
        if isinstance(exc, Exception) and not isinstance(exc, (CheckpointError, EngineError)):
            # torch.onnx raises assorted types (an operator with no ONNX form: RuntimeError), and the
            # graph backends cannot be made from this model; the torch backend may still run it
            raise EngineError(f"cannot export {model_dir} to ONNX: {type(exc).__name__}: {exc}") from exc
        raise
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fourds-ros export-onnx", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (config.json + model.safetensors)")
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--precision", choices=EXPORT_PRECISIONS, default="fp32")
    parser.add_argument("--num-queries", type=int, default=DEFAULT_NUM_QUERIES)
    parser.add_argument("--opset", type=int, default=OPSET)
    parser.add_argument("--external-data", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs torch check")
    args = parser.parse_args(argv)

    from ..model import load_checkpoint

    try:
        model = load_checkpoint(args.model)
        external = {"auto": None, "always": True, "never": False}[args.external_data]
        out = export_onnx(model, args.out, args.num_queries, args.precision, external, args.opset)
    except (CheckpointError, EngineError, OSError, ValueError) as e:
        print(f"fourds-ros export-onnx: {e}", file=sys.stderr)
        return 1
    files = ", ".join(f"{p} ({p.stat().st_size / 1e6:.1f} MB)" for p in onnx_files(out))
    print(f"wrote {files}; ONNX checker passed")
    if not args.no_verify:
        inputs = example_inputs(EngineSpec(model.config, args.num_queries))
        errors = compare_outputs(onnxruntime_outputs(out, inputs), torch_reference(model, inputs))
        for name, err in errors.items():
            print(f"  {name}: relative L2 vs torch fp32 = {err:.2e}")
        if not all(np.isfinite(err) for err in errors.values()):  # NaN > limit is False: a NaN graph passed
            print("fourds-ros export-onnx: ONNX Runtime gives non-finite outputs", file=sys.stderr)
            return 1
        limit = 1e-5 if args.precision == "fp32" else None
        if limit is not None and max(errors.values()) > limit:
            print(f"fourds-ros export-onnx: ONNX Runtime differs from torch by more than {limit}", file=sys.stderr)
            return 1
    return 0
