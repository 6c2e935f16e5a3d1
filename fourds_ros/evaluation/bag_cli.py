"""`fourds-ros bag convert --format FMT SRC OUT`: a dataset to a rosbag2 (mcap or sqlite3)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .bag import STORAGES, BagError, write_bag
from .datasets import FORMATS, iter_dataset, played_backwards


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fourds-ros bag")
    sub = parser.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert", help="dataset folder / video -> rosbag2")
    conv.add_argument("--format", required=True, choices=FORMATS)
    conv.add_argument("src")
    conv.add_argument("out", help="new bag directory")
    conv.add_argument("--storage", default="mcap", choices=STORAGES)
    conv.add_argument("--compressed", action="store_true",
                      help="write /camera/image_raw/compressed keeping the original JPEG/PNG bytes")
    conv.add_argument("--fps", type=float, default=None, help="stamp = index / fps where the source has no stamps")
    conv.add_argument("--start", type=int, default=0)
    conv.add_argument("--stride", type=int, default=1)
    conv.add_argument("--max-frames", type=int, default=None)
    conv.add_argument("--reverse", action="store_true",
                      help="the frames played backwards, stamps still rising (a proxy for motion a model never "
                           "learned on images it saw; datasets.played_backwards)")
    conv.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"), default=None)
    args = parser.parse_args(argv)
    K = None
    if args.intrinsics:
        fx, fy, cx, cy = args.intrinsics
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    try:
        frames = iter_dataset(args.format, args.src, fps=args.fps, start=args.start, stride=args.stride,
                              max_frames=args.max_frames, K=K)
        if args.reverse:
            frames = played_backwards(frames)
        n = write_bag(frames, args.out, storage=args.storage, compressed=args.compressed)
    except (BagError, OSError, ValueError) as exc:  # unreadable source, undecodable frame, full disk
        print(f"fourds-ros bag convert: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {n} frames to {args.out} ({args.storage})")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
