"""Training data: video readers, RGB-D readers, geometric tracks, the synthetic 4D generator."""

from .datasets import PretrainClips, RGBDClips, SyntheticLabelledClips
from fourds_ros.rgbd import (
    DatasetFormatError,
    RGBDSequence,
    read_7scenes,
    read_hololens,
    read_sequence,
    read_tum,
    relative_poses,
    resize_frames,
)
from .synthetic import SceneConfig, SceneGenerator, SyntheticClip, intrinsics_for
from .tracks import geometric_tracks
from .video import VideoClips, VideoSourceError, find_sources, read_frames

__all__ = [
    "DatasetFormatError", "PretrainClips", "RGBDClips", "RGBDSequence", "SceneConfig",
    "SceneGenerator", "SyntheticClip", "SyntheticLabelledClips", "VideoClips",
    "VideoSourceError", "find_sources", "geometric_tracks", "intrinsics_for",
    "read_7scenes", "read_frames", "read_hololens", "read_sequence", "read_tum",
    "relative_poses", "resize_frames",
]
