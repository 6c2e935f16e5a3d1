"""`fourds-ros bag convert --format FMT SRC OUT`: a dataset to a rosbag2 (mcap or sqlite3).
`fourds-ros bag import SRC OUT --image-topic T ...`: a team's own recording to the same layout
(bag_import.py), for `fourds-ros eval`."""

from __future__ import annotations

import argparse
import sys

from ..argtypes import frame_count, frame_index, positive_float, seconds, sixteen_bit_max
from .bag import STORAGES, BagError, write_bag
from .bag_import import pinhole_k
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
    conv.add_argument("--fps", type=positive_float, default=None,
                      help="stamp = index / fps where the source has no stamps")
    conv.add_argument("--start", type=frame_index, default=0)
    conv.add_argument("--stride", type=frame_count, default=1)
    conv.add_argument("--max-frames", type=frame_count, default=None)
    conv.add_argument("--reverse", action="store_true",
                      help="the frames played backwards, stamps still rising (a proxy for motion a model never "
                           "learned on images it saw; datasets.played_backwards)")
    conv.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"), default=None)
    _add_import_parser(sub)
    args = parser.parse_args(argv)
    if args.cmd == "import":
        return _import(args)
    try:
        K = pinhole_k(args.intrinsics) if args.intrinsics else None
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



def _add_import_parser(sub) -> None:
    imp = sub.add_parser("import", help="a recording of your own camera (RGB-D depth, a pose from /tf) -> the "
                                        "layout `fourds-ros eval` scores (fourds_ros/evaluation/bag_import.py)")
    imp.add_argument("src", help="rosbag2 directory or .mcap, or a ROS 1 .bag")
    imp.add_argument("out", help="new bag directory")
    imp.add_argument("--image-topic", required=True, help="sensor_msgs/Image or CompressedImage")
    imp.add_argument("--camera-info-topic", default=None, help="default: the image topic's sibling camera_info")
    imp.add_argument("--depth-topic", default=None,
                     help="depth registered to the colour image, 16UC1 mm or 32FC1 m (e.g. aligned_depth_to_color)")
    imp.add_argument("--world-frame", default=None,
                     help="ground-truth pose: this frame -> the image's frame_id, from /tf, /tf_static and --pose-topic")
    imp.add_argument("--pose-topic", action="append", default=[], metavar="TOPIC[:CHILD_FRAME]",
                     help="PoseStamped / PoseWithCovarianceStamped / Odometry / TransformStamped, added to the "
                          "transforms (repeatable; a PoseStamped needs :CHILD_FRAME)")
    imp.add_argument("--depth-registered", action="store_true",
                     help="the depth is registered to the colour image although its frame_id is not the images'")
    imp.add_argument("--max-dt", type=seconds, default=0.02, help="seconds between an image and its depth or pose")
    imp.add_argument("--rectified", action="store_true", help="the image topic is rectified: K = camera_info P")
    imp.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"), default=None,
                     help="a pinhole K for a recording without camera_info")
    imp.add_argument("--image-16bit-max", type=sixteen_bit_max, default=65535,
                     help="a 16-bit image's largest value, as the node's image_16bit_max (4095 for a 12-bit camera)")
    imp.add_argument("--start", type=frame_index, default=0)
    imp.add_argument("--stride", type=frame_count, default=1)
    imp.add_argument("--max-frames", type=frame_count, default=None)
    imp.add_argument("--storage", default="mcap", choices=STORAGES)


def _import(args) -> int:
    from .bag_import import ImportReport, ImportSpec, import_bag

    spec = ImportSpec(image_topic=args.image_topic, camera_info_topic=args.camera_info_topic,
                      depth_topic=args.depth_topic, world_frame=args.world_frame, pose_topics=tuple(args.pose_topic),
                      max_dt_s=args.max_dt, rectified=args.rectified,
                      intrinsics=tuple(args.intrinsics) if args.intrinsics else None, start=args.start, stride=args.stride,
                      max_frames=args.max_frames, depth_registered=args.depth_registered,
                      sixteen_bit_max=args.image_16bit_max)
    report = ImportReport()
    try:
        n = import_bag(args.src, args.out, spec, storage=args.storage, report=report)
    except (BagError, OSError, ValueError) as exc:
        print(f"fourds-ros bag import: {exc}", file=sys.stderr)
        return 1
    for warning in report.warnings(spec):
        print(f"fourds-ros bag import: warning: {warning}", file=sys.stderr)
    print(f"wrote {n} frames to {args.out} ({args.storage}): depth {report.with_depth} / {n}, pose {report.with_pose} / {n}")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
