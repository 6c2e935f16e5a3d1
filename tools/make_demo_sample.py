"""Cut the `make demo` sample from ../shared/data (run once by a maintainer; the output is committed).

The HoloLens DeepVideoMVS sample is MIT-licensed, so it may ship with the repo. RGB frames are
re-encoded as JPEG (quality 92) to keep the sample at a few MB; depth PNGs, poses and K are copied
byte for byte.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "hololens_dvmvs_000_f00305-00334"
TARGET = REPO / "samples" / "hololens_000"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="the HoloLens recording (default: %(default)s)")
    parser.add_argument("--target", type=Path, default=TARGET, help="the sample to (re)write (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        print(f"{args.source} not found", file=sys.stderr)
        return 1
    source, target = args.source.resolve(), args.target.resolve()
    if target == source or source in target.parents or target in source.parents:
        print(f"--target {args.target} overlaps --source {args.source}: not writing there", file=sys.stderr)
        return 1
    # Only the data is rewritten: the sample's README.md and LICENSE (the MIT text the licence asks to
    # ship with the frames) are the committed ones, copied into a new target.
    args.target.mkdir(parents=True, exist_ok=True)
    for name in ("README.md", "LICENSE"):
        if target != TARGET.resolve() and not (args.target / name).exists():
            shutil.copyfile(TARGET / name, args.target / name)
    for folder in ("images", "depth"):
        shutil.rmtree(args.target / folder, ignore_errors=True)
        (args.target / folder).mkdir(parents=True)
    for png in sorted((args.source / "images").glob("*.png")):
        image = cv2.imread(str(png), cv2.IMREAD_COLOR)
        cv2.imwrite(str(args.target / "images" / (png.stem + ".jpg")), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    for png in sorted((args.source / "depth").glob("*.png")):
        shutil.copyfile(png, args.target / "depth" / png.name)
    for name in ("poses.txt", "K.txt"):
        shutil.copyfile(args.source / name, args.target / name)
    print(f"wrote {args.target}")
    return 0


if __name__ == "__main__":
    from fourds_ros.script_errors import run_script

    sys.exit(run_script(main, "make_demo_sample.py"))
