"""Write a synthetic 4D scene as a rosbag2 with ground truth for all three heads.

python -m training.synthetic_bag OUT_BAG [--seed 0] [--frames 32] [--size 240x320] [--fps 30]

Topics as `fourds-ros bag convert` writes them (camera images, camera_info, /gt/depth, /gt/pose,
/tf) plus /gt/tracks: the generator's exact point tracks, with occlusion and moving objects, so
`fourds-ros eval` scores tracking against true motion rather than depth-derived tracks.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from fourds_ros.argtypes import frame_count, image_size, positive_float
from fourds_ros.evaluation.bag import STORAGES, BagError, Frame, write_bag

from .data.synthetic import SceneConfig, SceneGenerator


def synthetic_frames(seed: int, num_frames: int, image_size: tuple[int, int], fps: float,
                     num_tracks: int = 64) -> list[Frame]:
    clip = SceneGenerator(SceneConfig(num_frames=num_frames, image_size=image_size,
                                      num_tracks=num_tracks)).generate(seed)
    ids = np.arange(len(clip.query_points))
    frames = []
    for t in range(num_frames):
        depth = np.where(clip.depth[t] > 0, clip.depth[t], np.nan).astype(np.float32)
        # Tracks enter the ground truth from their query frame on (TAP-Vid queries).
        started = clip.query_points[:, 0] <= t
        frames.append(Frame(
            stamp_ns=round(t * 1e9 / fps), K=clip.intrinsics, image=clip.rgb[t], gt_depth=depth,
            gt_pose=clip.camera_to_world[t],
            gt_tracks={"ids": ids[started], "uv": clip.tracks_xy[started, t],
                       "visible": clip.tracks_visible[started, t]},
        ))
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synthetic_bag", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="new bag directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=frame_count, default=32)
    parser.add_argument("--size", type=image_size, default="240x320", help="HxW")
    parser.add_argument("--fps", type=positive_float, default=30.0)
    parser.add_argument("--tracks", type=frame_count, default=64)
    parser.add_argument("--storage", choices=STORAGES, default="mcap")
    args = parser.parse_args(argv)
    try:  # an OUT that exists, or a folder that cannot be written: one line, not a traceback
        n = write_bag(synthetic_frames(args.seed, args.frames, args.size, args.fps, args.tracks), args.out,
                      storage=args.storage)
    except (BagError, OSError) as exc:
        print(f"python -m training.synthetic_bag: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {n} synthetic frames to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
