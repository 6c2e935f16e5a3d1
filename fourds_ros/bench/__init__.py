"""`fourds-ros bench <name>`: benchmarks that write JSON and a markdown table."""

from __future__ import annotations

import sys

from ..cli import dispatch

BENCHMARKS = {
    "encoder": ("fourds_ros.bench.encoder:main", "parameters, FLOPs and CPU latency per size"),
    "engines": ("fourds_ros.bench.engines:main", "backends: latency, clips/s, FLOP/s"),
    "node": ("fourds_ros.bench.node:main", "end-to-end node latency vs bare inference"),
    "soak": ("fourds_ros.bench.soak:main", "the node under a live camera for minutes: latency and memory per window"),
    "train": ("training.bench:main", "MAE step time at mask 0.95 vs 0.0"),
    "replay": ("fourds_ros.bench.replay:main", "ros2_benchmark-style bag replay"),
    "outputs": ("fourds_ros.bench.outputs:main", "build cost of each output message per clip"),
}


def main(argv: list[str]) -> int:
    """A bad model, case, path or measurement that cannot be made is one line and exit code 1, not a
    traceback (every misuse of `bench` was one)."""
    try:
        return dispatch(BENCHMARKS, argv, "fourds-ros bench")
    except (OSError, ValueError) as exc:  # CheckpointError and EngineInputError are ValueErrors
        print(f"fourds-ros bench {argv[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
