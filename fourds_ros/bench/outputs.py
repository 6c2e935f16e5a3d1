"""fourds-ros bench outputs: what building each output message costs per clip, beside the pipeline.

The node builds a message only while its topic has a subscriber, so a viewer (rviz: points, markers,
path) costs the inference thread more than a robot's consumers (depth, tracks, odometry). This runs
the shipped pipeline on the embedded sample (samples/hololens_000) and times OutputMessages.build
per output key, without DDS (publishing itself is measured by `fourds-ros bench node`).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from .report import add_output_arguments, markdown_table, output_arguments, write_results

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "hololens_000"
# What a robot's consumers subscribe to (the node bench's probe): everything else is a viewer's.
ROBOT_OUTPUTS = ("depth", "depth_info", "tracks", "odometry", "pose", "tf")


def clip_results(model_dir: str | None, frames_dir: Path, backend: str, repeat: int):
    """The pipeline's ClipResults (and its trails after each) on the sample's frames, played `repeat`
    times, back and forth so that the chain continues; and each clip's pipeline.process seconds."""
    from ..engine import create_engine
    from ..model.default import default_model_dir
    from ..perception import PerceptionPipeline, PerceptionSettings
    from ..rgbd import read_hololens

    seq = read_hololens(frames_dir)
    order = [i for r in range(repeat) for i in (range(len(seq)) if r % 2 == 0 else range(len(seq) - 1, -1, -1))]
    images = {i: seq.rgb(i) for i in range(len(seq))}
    settings = PerceptionSettings()
    pipeline = PerceptionPipeline(create_engine(model_dir or default_model_dir(), backend), settings)
    results, process_s = [], []
    for n, i in enumerate(order):
        clip, _ = pipeline.add_frame(images[i], n * 33_333_333, "camera", seq.intrinsics)
        if clip is not None:
            t0 = time.perf_counter()
            result = pipeline.process(clip)
            process_s.append(time.perf_counter() - t0)
            results.append((result, pipeline.trails()))
    return settings, results, process_s


def time_outputs(settings, results) -> dict[str, list[float]]:
    """Seconds per clip to build each output key's messages, every output wanted."""
    from ..ros.outputs import OutputMessages

    outputs, per_key = OutputMessages(settings), defaultdict(list)
    for result, trails in results:
        spent = defaultdict(float)
        messages = outputs.build(result, trails, lambda key: True)
        while True:
            t0 = time.perf_counter()
            item = next(messages, None)
            if item is None:
                break
            spent[item[0]] += time.perf_counter() - t0
        for key, seconds in spent.items():
            per_key[key].append(seconds)
    return per_key


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fourds-ros bench outputs", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint directory (default: the shipped model)")
    parser.add_argument("--frames", type=Path, default=SAMPLE, help="a HoloLens-layout folder (default: the sample)")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--repeat", type=int, default=4, help="plays of the frames (back and forth)")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    settings, results, process_s = clip_results(args.model, args.frames, args.backend, args.repeat)
    per_key = time_outputs(settings, results)
    pipeline_ms = float(np.median(process_s) * 1e3)
    rows = [{"output": key, "ms_per_clip_p50": float(np.median(s) * 1e3), "ms_per_clip_mean": float(np.mean(s) * 1e3),
             "pct_of_pipeline": float(np.median(s) * 1e3 / pipeline_ms * 100), "robot": key in ROBOT_OUTPUTS}
            for key, s in per_key.items()]
    totals = {name: sum(r["ms_per_clip_p50"] for r in rows if keep(r))
              for name, keep in (("robot", lambda r: r["robot"]), ("everything", lambda r: True))}
    table = markdown_table(rows, [("output", "output", ""), ("ms_per_clip_p50", "build ms a clip (p50)", ".2f"),
                                  ("pct_of_pipeline", "% of the pipeline's clip", ".1f"),
                                  ("robot", "a robot's consumer", "")])
    table += (f"\n\nShipped defaults, {args.backend}, {len(results)} clips of the embedded sample; the pipeline's "
              f"clip p50 {pipeline_ms:.1f} ms. Building a robot's outputs (depth, tracks, odometry, TF): "
              f"{totals['robot']:.2f} ms a clip; everything a viewer adds (points, markers, path) too: "
              f"{totals['everything']:.2f} ms. Messages are built only while subscribed.")
    write_results("outputs", {"pipeline_ms_p50": pipeline_ms, "clips": len(results), "totals_ms": totals,
                              "rows": rows}, table, "Output messages: build cost per clip (CPU)",
                  **output_arguments(args))
    return 0
