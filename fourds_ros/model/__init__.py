"""The 4DS model family in PyTorch. Never imports rclpy."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import (
    ENCODER_SIZES,
    DepthHeadConfig,
    EncoderSpec,
    ModelConfig,
    PoseHeadConfig,
    TrackHeadConfig,
    default_heads,
    encoder_spec,
)
from .encoder import Encoder, EncoderOutput
from .fourds import HEAD_OUTPUTS, OUTPUTS, FourDS, check_video, count_parameters, init_weights
from .masking import TokenMask, make_mask
from .readout import AttentionReadout, EncoderToReadout, cubic_resize_matrix
from .registry import HEADS, HeadEntry, get_head, register_head

__all__ = [
    "ENCODER_SIZES", "HEADS", "HEAD_OUTPUTS", "OUTPUTS", "AttentionReadout", "CheckpointError",
    "DepthHeadConfig", "Encoder", "EncoderOutput", "EncoderSpec", "EncoderToReadout", "FourDS",
    "HeadEntry", "ModelConfig", "PoseHeadConfig", "TokenMask", "TrackHeadConfig", "check_video",
    "count_parameters", "cubic_resize_matrix", "default_heads", "encoder_spec", "get_head",
    "init_weights", "load_checkpoint", "make_mask", "register_head", "save_checkpoint",
]
