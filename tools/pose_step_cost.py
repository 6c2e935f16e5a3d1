"""The pose step's time in process, the node's defaults against a candidate's parameters: every
clip's pose step and its epipolar direction timed (ClipResult.stage_s of the node's pipeline,
model and backend: bench.node.node_pipeline and timed_push), frames pushed as a 30 Hz camera's, on TUM fr1/rpy and the HoloLens walk, the
two configurations in turn (ABBA) --repeats times. Writes OUT/pose_step_cost.json and OUT/README.md
(a table).

    .venv/bin/python tools/pose_step_cost.py --data-root ../shared/data --out OUT \
        --param pose_epipolar_rotation_guess=false [--model CANDIDATE_DIR] [--repeats 2]

Run it on idle cores and compare the columns of one run: absolute times hold only on one machine
and one phase of a shared host. Why a tool: every pose change since session 35 had its cost
measured this way, each by its own scratch copy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from frame_rate_study import add_candidate_arguments, candidate_words, write_study

# name, reader (fourds_ros.rgbd), folder under --data-root, role in the shipped model's fold
RECORDINGS = (
    ("tum_fr1_rpy", "read_tum", "tum_fr1_rpy_f000-079", "validation"),
    ("hololens_walk", "read_hololens", "hololens_dvmvs_000_f00305-00334", "train"),
)
COUNTERS = ("pose_epipolar_clips", "pose_epipolar_stepwise", "pose_epipolar_guided", "pose_relinked")


def time_pose_step(params: dict, images: list[np.ndarray], k: np.ndarray) -> tuple[dict, dict]:
    """images pushed as a 30 Hz camera's into the node's pipeline with params over its defaults ->
    ({step: seconds of every clip's call} for the pose step and its epipolar direction, the
    pipeline's counters in COUNTERS)."""
    from fourds_ros.bench.node import node_pipeline, timed_push

    pipe, _ = node_pipeline(params)
    seconds: dict[str, list[float]] = {"pose": [], "epipolar": []}
    for i, image in enumerate(images):
        if (timed := timed_push(pipe, image, i, k)) is not None:
            stage_s = timed[3]
            for step, values in seconds.items():
                if step in stage_s:  # the epipolar direction runs only where the geometry solved the clip
                    values.append(stage_s[step])
    status = pipe.status()
    return seconds, {name: status[name] for name in COUNTERS}


def main(argv: list[str] | None = None) -> int:
    from fourds_ros import rgbd
    from fourds_ros.perception.settings import params_from_args

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    add_candidate_arguments(parser)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.param and not args.model:
        parser.error("the candidate is missing: give --param NAME=VALUE or --model CANDIDATE_DIR")
    candidate = {**params_from_args(parser, args.param), **({"model": args.model} if args.model else {})}
    configurations = {"defaults": {}, "candidate": candidate}
    rows = []
    for name, reader, folder, role in RECORDINGS:
        seq = getattr(rgbd, reader)(args.data_root / folder)
        images = [seq.rgb(i) for i in range(len(seq))]
        for repeat in range(args.repeats):
            # ABBA: which configuration runs first alternates, so that warming up favours neither
            for configuration, params in list(configurations.items())[::1 if repeat % 2 == 0 else -1]:
                times, counters = time_pose_step(params, images, seq.intrinsics)
                rows.append({"recording": name, "role": role, "repeat": repeat, "configuration": configuration,
                             "clips": len(times["pose"]),
                             **{f"{step}_ms_{stat}": 1000 * float(f(times[step]) if times[step] else np.nan)
                                for step in times for stat, f in (("p50", np.median), ("mean", np.mean))},
                             **counters})
                print(f"{name} repeat {repeat} {configuration}: pose step {rows[-1]['pose_ms_p50']:.1f} ms", flush=True)
    lines = ["# The pose step's time in process: the node's defaults against a candidate", "",
             f"`python tools/pose_step_cost.py --data-root ../shared/data --out OUT{candidate_words(args)} --repeats {args.repeats}` "
             "(the node's pipeline, model and backend, bench.node.node_pipeline: the pose step and, within it, "
             "the epipolar direction timed per clip). Compare the configurations of one run, repeat by repeat.", "",
             "| recording | role | repeat | configuration | clips | pose step ms p50 | mean | its epipolar "
             "direction ms p50 | mean | " + " | ".join(COUNTERS) + " |",
             "| --- " * (9 + len(COUNTERS)) + "|"]
    lines += [f"| {r['recording']} | {r['role']} | {r['repeat']} | {r['configuration']} | {r['clips']} | "
              f"{r['pose_ms_p50']:.1f} | {r['pose_ms_mean']:.1f} | {r['epipolar_ms_p50']:.1f} | "
              f"{r['epipolar_ms_mean']:.1f} | " + " | ".join(str(r[c]) for c in COUNTERS) + " |" for r in rows]
    write_study(args.out, "pose_step_cost.json", rows, "\n".join(lines))
    print(f"pose_step_cost: {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    from fourds_ros.script_errors import run_script

    sys.exit(run_script(main, "pose_step_cost.py"))
