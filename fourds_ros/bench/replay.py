"""`fourds-ros bench replay BAG --model DIR`: ros2_benchmark-style replay through the real node.

1. Fixed rate (30 Hz by default): the bag's images are published at that rate (looped to reach
   --frames frames, restamped so time keeps going forward) and the node's outputs are recorded:
   output fps, input-to-output latency mean / p50 / p95 (wall clock, same machine), jitter (standard
   deviation of the interval between consecutive outputs; the node answers a clip at a time, so
   outputs come in bursts of `hop`), dropped frames, and the node's CPU use (user + system time
   from /proc over the replay window; 100% = one core).
2. Peak rate: the rate is doubled until >= 5% of the frames are dropped, then bisected; the peak is
   the highest tried rate with < 5% dropped.

One node process serves every run (loopback discovery, its own ROS_DOMAIN_ID); it is stopped
with SIGINT. Results go to JSON (docs/benchmarks/replay.json) and a table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..argtypes import frame_count, positive_float
from ..evaluation.bag import BagError, read_bag
from ..evaluation.replay import NodeProcess, ReplayError, clip_geometry, node_command, replay_subprocess, \
    ros_environment, unique_namespace
from .report import add_output_arguments, markdown_table, output_arguments, write_results

DROP_LIMIT = 0.05
WARMUP_SHIFT_S = 10.0  # more than the node's out-of-order window (1 s) beyond the warm-up's own span


def measure(timing: dict, cpu_s: float | None) -> dict:
    pub = {int(k): v for k, v in timing["published_ns"].items()}
    arr = {int(k): v for k, v in timing["arrival_ns"].items()}
    order = sorted(pub, key=pub.get)
    describable = order[: int(timing.get("frames_describable", len(order)))]
    dropped = sum(1 for s in describable if s not in arr)
    # Latency and output rate over the frames a clip completed while frames were coming; the rest are
    # described by the idle flush a second after the last (replay.frames_in_clips).
    in_clips = order[: int(timing.get("frames_in_clips", len(order)))]
    lat = np.array([(arr[s] - pub[s]) / 1e6 for s in in_clips if s in arr])
    out_times = np.sort(np.array([arr[s] for s in in_clips if s in arr], float)) / 1e9
    intervals = np.diff(out_times)
    span = out_times[-1] - out_times[0] if len(out_times) > 1 else float("nan")
    wall = float(timing["wall_s"])
    return {
        "rate_hz": None if timing["rate"] in ("max", "bag") else float(timing["rate"]),
        "frames_published": len(order),
        "frames_out": len(arr),
        "dropped": dropped,
        "dropped_fraction": dropped / max(1, len(describable)),
        "fps": (len(out_times) - 1) / span if len(out_times) > 1 and span > 0 else None,
        "latency_ms_mean": float(lat.mean()) if lat.size else None,
        "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
        "latency_ms_p95": float(np.percentile(lat, 95)) if lat.size else None,
        "jitter_ms": float(intervals.std() * 1e3) if intervals.size > 1 else None,
        "node_cpu_percent": 100.0 * cpu_s / wall if wall > 0 and cpu_s is not None else None,
        "wall_s": wall,
    }


def run_rate(bag: Path, node: NodeProcess, env: dict, rate: float, frames: int, n_bag: int, clip_length: int,
             hop: int, workdir: Path, namespace: str) -> dict:
    # N frames a run: the bag's first N, or the whole bag looped up to N rounded to whole loops. The bag was played
    # whole however small N was, and the time limit, sized from N, cut a long bag's stream short at a low rate.
    per_loop = min(frames, n_bag)
    loops = max(1, -(-frames // per_loop))
    timing = replay_subprocess(bag, workdir / f"out_{rate:g}.mcap", workdir / f"timing_{rate:g}.json", env,
                               f"{rate:g}", clip_length, hop, timeout_s=max(60.0, 3 * loops * per_loop / rate),
                               max_frames=per_loop, loops=loops, node=node, namespace=namespace)
    return measure(timing, timing["node_cpu_s"])


def search_peak(measure, rate: float, max_steps: int) -> tuple[list[dict], float | None, float | None]:
    """The ros2_benchmark search: measure(rate) at the fixed rate, then double or halve until a rate
    passes and one fails, then bisect to within 15 %. -> (runs, best passing rate, lowest failing)."""
    runs = [measure(rate)]
    ok_rate = rate if runs[0]["dropped_fraction"] < DROP_LIMIT else None
    bad_rate = None if ok_rate else rate
    rate = rate * 2 if ok_rate else rate / 2
    for _ in range(max_steps):
        runs.append(measure(rate))
        if runs[-1]["dropped_fraction"] < DROP_LIMIT:
            ok_rate = max(ok_rate or 0, rate)
        else:
            bad_rate = rate if bad_rate is None else min(bad_rate, rate)
        if bad_rate is None:
            rate *= 2
        elif ok_rate is None:
            rate /= 2
        elif bad_rate / ok_rate < 1.15:
            break
        else:
            rate = (ok_rate + bad_rate) / 2
    return runs, ok_rate, bad_rate


def measure_bag(args, bag, clip_length: int, hop: int, workdir: Path) -> tuple[list[dict], float | None, float | None]:
    """The node on the bag: a warm-up replay, then the peak search (ReplayError when it fails)."""
    env, n_bag = ros_environment(), len(bag.stamps)
    namespace = unique_namespace()  # other nodes on this ROS domain cannot mix into the measurement
    command = node_command(args.model, args.backend, args.hop, namespace=namespace, compressed=bag.compressed)
    with NodeProcess(command, env, workdir / "node.log") as node:
        # warm-up (model load, first inference, discovery) so it is not billed to the first run; its
        # stamps WARMUP_SHIFT_S ahead, so the first run goes back in time far enough that the node
        # starts afresh (from the same stamps it dropped the run's first frames as out of order)
        replay_subprocess(args.bag, workdir / "warmup.mcap", workdir / "warmup.json", env, "max", clip_length,
                          hop, timeout_s=120.0, max_frames=min(n_bag, clip_length + hop), node=node,
                          namespace=namespace, shift_s=WARMUP_SHIFT_S)
        def measured(rate: float) -> dict:
            result = run_rate(Path(args.bag), node, env, rate, args.frames, n_bag, clip_length, hop, workdir,
                              namespace)
            node.check_alive()  # a node that died mid-run measured nothing
            return result

        return search_peak(measured, args.rate, args.max_steps)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fourds-ros bench replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag")
    parser.add_argument("--model", required=True)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--hop", type=int, default=0)
    parser.add_argument("--rate", type=positive_float, default=30.0, help="fixed replay rate (Hz)")
    parser.add_argument("--frames", type=frame_count, default=120,
                        help="frames per run: the bag's first N, or the bag looped up to N (in whole loops)")
    parser.add_argument("--max-steps", type=int, default=6, help="peak search: runs after the fixed-rate one")
    add_output_arguments(parser)
    parser.add_argument("--workdir", default=None,
                        help="keep the node's logs and the recordings here (without it they are removed at the end)")
    args = parser.parse_args(argv)
    clip_length, hop = clip_geometry(args.model, args.hop)
    # Without --workdir, a folder of the run's own: every run left one (logs, three recordings) in /tmp.
    with contextlib.ExitStack() as stack:
        workdir = Path(args.workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix="fourds_bench_replay_")))
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            runs, ok_rate, bad_rate = measure_bag(args, read_bag(args.bag, images=False), clip_length, hop, workdir)
        except (BagError, ReplayError) as exc:
            print(f"fourds-ros bench replay: {exc}", file=sys.stderr)
            return 1
    results = {"bag": str(args.bag), "model": str(args.model), "backend": args.backend, "clip_length": clip_length,
               "hop": hop, "fixed_rate": runs[0], "peak_rate_hz": ok_rate, "first_failing_rate_hz": bad_rate,
               "drop_limit": DROP_LIMIT, "runs": runs, "workdir": args.workdir}
    table = markdown_table(
        [dict(r, kind="fixed" if i == 0 else "search") for i, r in enumerate(runs)],
        [("kind", "run", ""), ("rate_hz", "rate Hz", ".1f"), ("fps", "out fps", ".1f"),
         ("latency_ms_mean", "latency mean ms", ".1f"), ("latency_ms_p95", "p95 ms", ".1f"),
         ("jitter_ms", "jitter ms", ".1f"), ("dropped_fraction", "dropped", ".1%"),
         ("node_cpu_percent", "node CPU %", ".0f")])
    table += f"\n\nPeak rate with < {DROP_LIMIT:.0%} dropped: " + (f"{ok_rate:.1f} Hz" if ok_rate else "none found")
    write_results("replay", results, table, "Bag replay through the node (ros2_benchmark method)", **output_arguments(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
