"""Pack what a GPU training session reads into one small folder (issue #17 item 6).

The device call carries at most 64 MiB, the repo's tracked files included, and the device image
has no PyAV. So the real video is decoded here into JPEG frame folders: every 8th frame 320 px
wide (`textures/`, texture sources for the realistic synthetic clips) and every frame 160 px
wide (`frames/`, MAE pre-training clips; the model sees 128x128 crops). The 7-Scenes training
sequence is written at half resolution with its intrinsics scaled: the readouts resize every
real frame to the model's 128 px anyway; so is the TUM validation recording (`tum_fr1_rpy_half`,
read only to choose checkpoints). About 39 MB in all (session 66: 7-Scenes 16.4 MB, TUM 4.4, textures
5.0, MAE frames 12.7), 26 MB with --no-mae-frames. The MAE frames can go elsewhere (--frames-out): with the
wheels and the tree, all of it came to 65 MiB, past a device call's 64, so tools/gpu_session_prepare.sh
gives them a carry of their own (.gpuf), read by `gpu_session.sh scratch` alone.
The folder is data, never committed (7-Scenes is non-commercial): put it under an ignored path.

    python tools/gpu_session_data.py ../shared/data .gpu/data [--frames-out .gpuf/frames]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from fourds_ros.rgbd import (crop_resize_intrinsics, read_7scenes, read_tum, seven_scenes_depth_intrinsics,
                             tum_intrinsics)
from training.data.video import count_frames, read_frames


def half_intrinsics(k: np.ndarray) -> np.ndarray:
    """K for the half-resolution pixel grid (pixel centres at integers)."""
    return crop_resize_intrinsics(k, 0, 0, 0.5, 0.5)


def half_colour(src: Path, dst: Path) -> None:
    """One colour image at half resolution, by area, as JPEG."""
    rgb = cv2.imread(str(src), cv2.IMREAD_COLOR)
    h, w = rgb.shape[:2]
    cv2.imwrite(str(dst), cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 92])


def half_depth(src: Path, dst: Path) -> None:
    """One depth PNG at half resolution, by nearest (keeps invalid values as they are)."""
    depth = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(dst), depth[::2, ::2], [cv2.IMWRITE_PNG_COMPRESSION, 9])


def half_tum(src: Path, dst: Path) -> int:
    """A TUM RGB-D sequence at half resolution: the same lists and ground truth, colour by area,
    depth by nearest (keeps invalid 0), camera-intrinsics.txt for the new grid and the lens's
    camera-distortion.txt (read_tum reads both and undistorts). Returns frames written. The
    validation recording of the GPU session's checkpoint choice (`--select-on`), never trained on."""
    (dst / "rgb").mkdir(parents=True, exist_ok=True)
    (dst / "depth").mkdir(exist_ok=True)
    for name in ("rgb.txt", "depth.txt", "groundtruth.txt"):
        shutil.copy(src / name, dst / name)
    np.savetxt(dst / "camera-intrinsics.txt", half_intrinsics(tum_intrinsics(src)), fmt="%.6f")
    lens = read_tum(src).undistortion
    if lens is not None:  # the same lens at half the pixels: its coefficients do not change
        np.savetxt(dst / "camera-distortion.txt", lens.distortion)
    colours = sorted((src / "rgb").iterdir())
    for path in colours:
        half_colour(path, dst / "rgb" / path.name)
    for path in sorted((src / "depth").iterdir()):
        half_depth(path, dst / "depth" / path.name)
    return len(colours)


def half_7scenes(src: Path, dst: Path) -> int:
    """7-Scenes at half resolution: colour by area, depth by nearest (keeps invalid 0/65535),
    intrinsics for the new pixel grid (pixel centres at integers). Returns frames written."""
    dst.mkdir(parents=True, exist_ok=True)
    seq = read_7scenes(src)
    # the depth camera's K, as in the source (the reader derives the RGB camera's from it)
    np.savetxt(dst / "camera-intrinsics.txt", half_intrinsics(seven_scenes_depth_intrinsics(src)), fmt="%.6f")
    for colour, depth in zip(seq.rgb_paths, seq.depth_paths):
        stem = colour.name.split(".")[0]
        half_colour(colour, dst / colour.name)
        half_depth(depth, dst / depth.name)
        shutil.copy(src / f"{stem}.pose.txt", dst / f"{stem}.pose.txt")
    return len(seq.rgb_paths)


def frame_folders(videos: list[Path], dst: Path, every: int = 8, width: int = 320) -> int:
    """Every `every`-th frame of each video as JPEGs `width` px wide, one folder per video."""
    written = 0
    for video in videos:
        out = dst / video.stem
        out.mkdir(parents=True, exist_ok=True)
        indices = list(range(0, count_frames(video), every))
        for i, frame in zip(indices, read_frames(video, indices)):
            h, w = frame.shape[:2]
            small = cv2.resize(frame, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(out / f"{i:05d}.jpg"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="../shared/data")
    parser.add_argument("out", type=Path)
    parser.add_argument("--no-mae-frames", action="store_true",
                        help="skip frames/ (13 MB, read only by `gpu_session.sh scratch`)")
    parser.add_argument("--frames-out", type=Path,
                        help="where the MAE frames go (default OUT/frames; prepare: .gpuf/frames, a carry of their own)")
    args = parser.parse_args()
    n = half_7scenes(args.data / "7scenes_redkitchen_f000-299", args.out / "7scenes_redkitchen_half")
    v = half_tum(args.data / "tum_fr1_rpy_f000-079", args.out / "tum_fr1_rpy_half")
    videos = sorted((args.data / "videos_unlabelled").glob("*.mp4")) + sorted((args.data / "davis2016_val_subset").glob("*.mp4"))
    m = frame_folders(videos, args.out / "textures")
    f = 0 if args.no_mae_frames else frame_folders(videos, args.frames_out or args.out / "frames", every=1, width=160)
    print(f"7-Scenes: {n} frames at half resolution; TUM (validation): {v}; textures: {m} frames, "
          f"MAE: {f} frames, from {len(videos)} videos")


if __name__ == "__main__":
    from fourds_ros.script_errors import run_script

    sys.exit(run_script(main, "gpu_session_data.py"))
