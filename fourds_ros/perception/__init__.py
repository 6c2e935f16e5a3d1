"""Perception algorithms behind the ROS node: image decoding, preprocessing + intrinsics, clip
buffer, track bookkeeping, odometry chaining and the pipeline tying them to an engine.

Nothing here imports rclpy: the DDS node (fourds_ros.ros.perception_node) and the offline
evaluator both drive `PerceptionPipeline`, so the two paths produce the same outputs.
"""

import importlib

# Loaded on first use (PEP 562), so that importing one module of the package (`perception.preprocess`
# for `fourds-ros bench engines`) does not load them all: odometry needs transforms3d, which the GPU
# machines' image lacks (tools/gpu_bench.sh runs there with no carry).
_EXPORTS = {
    "Clip": ".clip_buffer", "ClipBuffer": ".clip_buffer", "Frame": ".clip_buffer",
    "ImageDecodeError": ".image", "decode_compressed": ".image", "decode_raw": ".image",
    "OdometryChain": ".odometry", "ClipResult": ".pipeline", "FrameResult": ".pipeline",
    "PerceptionPipeline": ".pipeline", "PerceptionSettings": ".settings", "Preprocessor": ".preprocess",
    "TrackManager": ".tracks",
}
__all__ = [
    "Clip", "ClipBuffer", "ClipResult", "Frame", "FrameResult", "ImageDecodeError", "OdometryChain",
    "PerceptionPipeline", "PerceptionSettings", "Preprocessor", "TrackManager", "decode_compressed",
    "decode_raw",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
