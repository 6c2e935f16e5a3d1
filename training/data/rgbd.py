"""RGB-D sequence readers: one implementation, in fourds_ros.rgbd (evaluation uses it too)."""

from fourds_ros.rgbd import (  # noqa: F401
    TUM_FR1_INTRINSICS,
    DatasetFormatError,
    RGBDSequence,
    read_7scenes,
    read_hololens,
    read_sequence,
    read_tum,
    resize_frames,
)
