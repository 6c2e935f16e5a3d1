"""Perception algorithms behind the ROS node: image decoding, preprocessing + intrinsics, clip
buffer, track bookkeeping, odometry chaining and the pipeline tying them to an engine.

Nothing here imports rclpy: the DDS node (fourds_ros.ros.perception_node) and the offline
evaluator both drive `PerceptionPipeline`, so the two paths produce the same outputs.
"""

from .clip_buffer import Clip, ClipBuffer, Frame
from .image import ImageDecodeError, decode_compressed, decode_raw
from .odometry import OdometryChain
from .pipeline import ClipResult, FrameResult, PerceptionPipeline
from .settings import PerceptionSettings
from .preprocess import Preprocessor
from .tracks import TrackManager

__all__ = [
    "Clip", "ClipBuffer", "ClipResult", "Frame", "FrameResult", "ImageDecodeError", "OdometryChain",
    "PerceptionPipeline", "PerceptionSettings", "Preprocessor", "TrackManager", "decode_compressed",
    "decode_raw",
]
