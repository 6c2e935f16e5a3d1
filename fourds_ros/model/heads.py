"""Task heads on the shared readout features. Each documents its output contract.

All heads take features: (B, T, N, D) from EncoderToReadout (T = clip frames, N = h*w tokens).
Training-time outputs are logits; `FourDS.forward` turns them into the exported contract.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .config import DepthHeadConfig, PoseHeadConfig, TrackHeadConfig
from .readout import AttentionReadout, fourier_embedding


class DepthHead(nn.Module):
    """Dense depth. Returns (B, T, H, W) float, metres (after `activation`).

    Learned queries, one per decoding patch; each predicts pt*ph*pw depth values (the official
    scaling4d depth readout layout).
    """

    def __init__(self, cfg: DepthHeadConfig, input_dim: int, clip: tuple[int, int, int]):
        super().__init__()
        pt, ph, pw = cfg.decoding_patch_size
        t, h, w = clip
        self.activation = cfg.activation
        if self.activation not in ("identity", "softplus"):
            raise ValueError(f"unknown depth activation {self.activation!r}")
        self.readout = AttentionReadout(
            input_dim=input_dim,
            num_params=cfg.num_params,
            num_heads=cfg.num_heads,
            num_classes=pt * ph * pw,
            num_frames=t,
            num_queries=(t // pt) * (h // ph) * (w // pw),
            output_shape=(t, h, w, 1),
            decoding_patch_size=(pt, ph, pw),
        )

    def forward(self, features: Tensor) -> Tensor:
        depth = self.readout(features)[..., 0]
        return F.softplus(depth) if self.activation == "softplus" else depth


class TrackHead(nn.Module):
    """Point tracks from query points.

    query_points: (B, Q, 3) as (t, y, x): frame index in the clip and pixel row/column in the
    model input (TAP-Vid convention). Returns logits dict:
      xy: (B, Q, T, 2) pixel (x, y) of the point in every frame of the clip,
      visible_logit: (B, Q, T), confidence_logit: (B, Q, T) (is the position within 8 px).
    Positions are predicted as offsets from the query location, in units of the image size.
    """

    def __init__(self, cfg: TrackHeadConfig, input_dim: int, clip: tuple[int, int, int]):
        super().__init__()
        self.clip = tuple(clip)
        self.num_frequencies = cfg.num_frequencies
        embed_dim = 3 * 2 * cfg.num_frequencies
        self.query_embedding = nn.Sequential(
            nn.Linear(embed_dim, cfg.num_params), nn.GELU(approximate="tanh"),
            nn.Linear(cfg.num_params, cfg.num_params),
        )
        self.readout = AttentionReadout(
            input_dim=input_dim,
            num_params=cfg.num_params,
            num_heads=cfg.num_heads,
            num_classes=clip[0] * 4,
            num_frames=clip[0],
            query_dim=cfg.num_params,
        )

    def normalise(self, query_points: Tensor) -> Tensor:
        t, h, w = self.clip
        scale = query_points.new_tensor([max(t - 1, 1), h, w])
        return query_points / scale

    def forward(self, features: Tensor, query_points: Tensor) -> dict[str, Tensor]:
        _, h, w = self.clip
        queries = self.query_embedding(fourier_embedding(self.normalise(query_points), self.num_frequencies))
        out = rearrange(self.readout(features, queries), "b q (t k) -> b q t k", k=4)
        size = out.new_tensor([w, h])
        start = query_points[..., None, [2, 1]]  # (B, Q, 1, 2) as (x, y)
        return {
            "xy": start + out[..., :2] * size,
            "visible_logit": out[..., 2],
            "confidence_logit": out[..., 3],
        }


def rotation_from_6d(x: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt (Zhou et al., 2019); columns are the basis."""
    a, b = x[..., :3], x[..., 3:]
    e1 = F.normalize(a, dim=-1)
    e2 = F.normalize(b - (e1 * b).sum(-1, keepdim=True) * e1, dim=-1)
    # Cross product written out: it exports to every ONNX opset.
    e3 = torch.stack(
        [
            e1[..., 1] * e2[..., 2] - e1[..., 2] * e2[..., 1],
            e1[..., 2] * e2[..., 0] - e1[..., 0] * e2[..., 2],
            e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0],
        ],
        dim=-1,
    )
    return torch.stack([e1, e2, e3], dim=-1)


class PoseHead(nn.Module):
    """Per-frame camera pose relative to the clip's first frame.

    Returns dict:
      rotation: (B, T, 3, 3) and translation: (B, T, 3) of T_first_from_t, i.e. a point in
        camera t's optical frame maps to camera 0's frame as R p + t (metres). Frame 0 is identity.
      log_variance: (B, T, 2) log variance of rotation (rad^2) and translation (m^2) error.
    One learned query per frame; the 6-D rotation is an offset from identity.
    """

    def __init__(self, cfg: PoseHeadConfig, input_dim: int, clip: tuple[int, int, int]):
        super().__init__()
        t = clip[0]
        self.readout = AttentionReadout(
            input_dim=input_dim,
            num_params=cfg.num_params,
            num_heads=cfg.num_heads,
            num_classes=6 + 3 + 2,
            num_frames=t,
            num_queries=t,
        )
        self.register_buffer(
            "identity_6d", torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]), persistent=False
        )
        first = torch.zeros(t, 1)
        first[0] = 1.0
        self.register_buffer("is_first", first, persistent=False)

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        out = self.readout(features)
        keep = 1.0 - self.is_first  # frame 0 is the reference: exactly identity, zero translation
        rotation = rotation_from_6d(self.identity_6d + out[..., :6] * keep)
        return {
            "rotation": rotation,
            "translation": out[..., 6:9] * keep,
            "log_variance": out[..., 9:11],
        }
