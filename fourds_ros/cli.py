"""`fourds-ros` command line: one entry point, subcommands imported lazily (torch and rclpy are
slow to import, and `fourds-ros --help` should not need either)."""

from __future__ import annotations

import importlib
import signal
import sys

# name -> ("module:function", help). Each function takes argv (list[str]) and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "import-official": ("fourds_ros.model.import_cli:main", "convert an official 4DS .npz"),
    "export-onnx": ("fourds_ros.engine.export:main", "export encoder + heads to ONNX"),
    "build-engine": ("fourds_ros.engine.tensorrt_backend:main", "build a TensorRT engine offline"),
    "bench": ("fourds_ros.bench:main", "benchmarks: encoder, engines, node, soak, train, replay, outputs"),
    "bag": ("fourds_ros.evaluation.bag_cli:main", "rosbag tools: convert a dataset, import your own recording"),
    "eval": ("fourds_ros.evaluation.eval_cli:main", "replay a bag through the node and score it"),
    "eval-suite": ("fourds_ros.evaluation.suite:main", "score a model on every recording of a split, train/validation"),
    "calibrate-scale": ("fourds_ros.evaluation.scale_cli:main", "a site's metric_scale_factor from an RGB-D recording there"),
}


def dispatch(commands: dict[str, tuple[str, str]], argv: list[str], prog: str) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        width = max(len(n) for n in commands)
        lines = [f"usage: {prog} <command> [args]", "", "commands:"]
        lines += [f"  {n.ljust(width)}  {h}" for n, (_, h) in commands.items()]
        print("\n".join(lines))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"{prog}: unknown command {name!r}; try --help", file=sys.stderr)
        return 2
    module, func = commands[name][0].split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the command itself (not a caller's in-process use): SIGTERM (`timeout`, `docker stop`,
        # systemd) ends it as an exception does, running the `finally` blocks and atexit that stop the ROS
        # processes it started and remove its temporary folders; Python's default for SIGTERM ran none of them.
        signal.signal(signal.SIGTERM, _terminated)
    return dispatch(COMMANDS, sys.argv[1:] if argv is None else argv, "fourds-ros")


if __name__ == "__main__":
    sys.exit(main())
