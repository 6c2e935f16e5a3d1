"""Cut the `make demo` sample from ../shared/data (run once by a maintainer; the output is committed).

The HoloLens DeepVideoMVS sample is MIT-licensed, so it may ship with the repo. RGB frames are
re-encoded as JPEG (quality 92) to keep the sample at a few MB; depth PNGs, poses and K are copied
byte for byte.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "hololens_dvmvs_000_f00305-00334"
TARGET = REPO / "samples" / "hololens_000"


def main() -> int:
    if not SOURCE.is_dir():
        print(f"{SOURCE} not found", file=sys.stderr)
        return 1
    if TARGET.exists():
        shutil.rmtree(TARGET)
    (TARGET / "images").mkdir(parents=True)
    (TARGET / "depth").mkdir()
    for png in sorted((SOURCE / "images").glob("*.png")):
        image = cv2.imread(str(png), cv2.IMREAD_COLOR)
        cv2.imwrite(str(TARGET / "images" / (png.stem + ".jpg")), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    for png in sorted((SOURCE / "depth").glob("*.png")):
        shutil.copyfile(png, TARGET / "depth" / png.name)
    for name in ("poses.txt", "K.txt"):
        shutil.copyfile(SOURCE / name, TARGET / name)
    (TARGET / "README.md").write_text(
        "# HoloLens sample for `make demo` (MIT)\n\n"
        "30 frames (00305-00334) of scene 000 of the DeepVideoMVS HoloLens sample data\n"
        "(github.com/ardaduz/deep-video-mvs, `sample-data/hololens-dataset/000/`, commit\n"
        "fa14288f149c5af7b2a49092f729f5c4f44517ba), MIT licence, Copyright (c) 2020 Arda Duzceker.\n\n"
        "Made by `tools/make_demo_sample.py`: RGB re-encoded from PNG to JPEG (quality 92), depth\n"
        "(uint16 PNG, millimetres, 0 = invalid, registered to RGB), `poses.txt` (4x4 camera-to-world,\n"
        "row-major, metres, one line per image) and `K.txt` copied unchanged. No timestamps: the demo\n"
        "stamps frames at a fixed rate.\n\n"
        "MIT License text: https://github.com/ardaduz/deep-video-mvs/blob/master/LICENSE\n"
    )
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
