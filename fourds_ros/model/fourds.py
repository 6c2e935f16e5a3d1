"""FourDS: one encoder pass, read out three ways (depth, point tracks, camera pose).

Inputs and outputs are named tensors; every inference backend (torch, ONNX Runtime, TensorRT)
uses exactly these names, so swapping backends never changes the caller.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .encoder import Encoder
from .heads import DepthHead, PoseHead, TrackHead
from .readout import EncoderToReadout

# Output name -> (shape with symbolic dims, meaning). B batch, T clip frames, Q query points.
OUTPUTS = {
    "depth": ("B,T,H,W", "depth in metres"),
    "track_xy": ("B,Q,T,2", "pixel (x, y) of each query point in every clip frame"),
    "track_visibility": ("B,Q,T", "probability that the point is visible"),
    "track_confidence": ("B,Q,T", "probability that track_xy is within 8 px"),
    "pose_rotation": ("B,T,3,3", "rotation of T_first_from_t"),
    "pose_translation": ("B,T,3", "translation of T_first_from_t, metres"),
    "pose_log_variance": ("B,T,2", "log variance of rotation (rad^2), translation (m^2)"),
}
HEAD_OUTPUTS = {
    "depth": ("depth",),
    "tracks": ("track_xy", "track_visibility", "track_confidence"),
    "pose": ("pose_rotation", "pose_translation", "pose_log_variance"),
}


def _is_tracing() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def check_video(video: Tensor, config: ModelConfig, check_range: bool = True) -> None:
    """Raise ValueError naming what was expected when video is not (B, T, H, W, 3) in [0, 1]."""
    expected = "(B, {}, {}, {}, 3) float in [0, 1]".format(*config.clip_shape[:3])
    if not isinstance(video, Tensor):
        raise TypeError(f"video must be a torch.Tensor {expected}, got {type(video).__name__}")
    if not video.is_floating_point():
        raise ValueError(f"video must be {expected}, got dtype {video.dtype} (divide uint8 by 255)")
    if video.ndim != 5 or tuple(video.shape[1:]) != config.clip_shape:
        raise ValueError(f"video must be {expected}, got shape {tuple(video.shape)}")
    if check_range and video.numel():
        lo, hi = float(video.min()), float(video.max())
        if not (lo >= -1e-3 and hi <= 1.0 + 1e-3):  # also catches NaN
            raise ValueError(f"video must be {expected}, got values in [{lo:.3g}, {hi:.3g}]")


class FourDS(nn.Module):
    def __init__(self, config: ModelConfig, checkpoint_blocks: bool = False):
        super().__init__()
        self.config = config
        # Input checks cost a host sync (min/max); CUDA graph capture forbids that, so a caller
        # that has validated its inputs once (bench, graph runners) may switch them off.
        self.check_inputs = True
        spec = config.encoder
        grid = config.token_grid
        self.encoder = Encoder(
            spec, config.patch_size, config.posenc_grid or grid, checkpoint_blocks=checkpoint_blocks
        )
        self.encoder_to_readout = EncoderToReadout(grid[0], config.num_frames, config.readout_depth)
        clip = (config.num_frames, *config.image_size)
        builders = {
            "depth": lambda cfg: DepthHead(cfg, spec.width, clip),
            "tracks": lambda cfg: TrackHead(cfg, spec.width, clip, grid[1:]),
            "pose": lambda cfg: PoseHead(cfg, spec.width, clip),
        }
        self.heads = nn.ModuleDict({name: builders[name](cfg) for name, cfg in config.heads.items()})

    @property
    def readout_state_index(self) -> int:
        return self.encoder_to_readout.state_index(self.encoder.num_states)

    @property
    def output_names(self) -> list[str]:
        return [n for head in self.heads for n in HEAD_OUTPUTS[head]]

    @property
    def input_names(self) -> list[str]:
        return ["video", "query_points"] if "tracks" in self.heads else ["video"]

    def features(self, video: Tensor) -> Tensor:
        """video: (B, T, H, W, 3) in [0, 1] -> readout features (B, T, h*w, D).

        Runs only the blocks the readout state needs (10 of 12 for 4DS-B).
        """
        index = self.readout_state_index
        states = self.encoder(video, num_states=index + 1).states
        return self.encoder_to_readout(states[index])

    def forward(self, video: Tensor, query_points: Tensor | None = None) -> dict[str, Tensor]:
        """video: (B, T, H, W, 3) float in [0, 1]; query_points: (B, Q, 3) (t, y, x) when the
        tracks head is enabled. Returns the named outputs of every enabled head (OUTPUTS)."""
        if self.check_inputs and not _is_tracing():
            check_video(video, self.config)
            if "tracks" in self.heads:
                if query_points is None or query_points.ndim != 3 or query_points.shape[-1] != 3:
                    raise ValueError("query_points must be (B, Q, 3) as (t, y, x)")
                if query_points.shape[0] != video.shape[0]:
                    raise ValueError("query_points and video batch sizes differ")
        feats = self.features(video)
        out: dict[str, Tensor] = {}
        if "depth" in self.heads:
            out["depth"] = self.heads["depth"](feats)
        if "tracks" in self.heads:
            tr = self.heads["tracks"](feats, query_points, video)
            out["track_xy"] = tr["xy"]
            out["track_visibility"] = torch.sigmoid(tr["visible_logit"])
            out["track_confidence"] = torch.sigmoid(tr["confidence_logit"])
        if "pose" in self.heads:
            pose = self.heads["pose"](feats)
            out["pose_rotation"] = pose["rotation"]
            out["pose_translation"] = pose["translation"]
            out["pose_log_variance"] = pose["log_variance"]
        return out


def init_weights(model: nn.Module, seed: int | None = None) -> nn.Module:
    """MAE-style initialisation for training from scratch: xavier-uniform linears, zero biases,
    LayerNorm (1, 0), small normal position embeddings and queries."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    for name, p in model.named_parameters():
        with torch.no_grad():
            if p.ndim >= 2 and ("posenc" in name or name.endswith("query")):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            elif p.ndim >= 2:
                fan_out, fan_in = p.shape[0], p[0].numel()
                bound = (6.0 / (fan_in + fan_out)) ** 0.5
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
            elif "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
