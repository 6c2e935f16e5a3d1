"""Task heads on the shared readout features, each registered (registry.HeadEntry) at the end.

All heads take features: (B, T, N, D) from EncoderToReadout (T = clip frames, N = h*w tokens).
Training-time outputs are logits; each entry's `run` turns them into the exported contract that
`FourDS.forward` returns. A new head is a config dataclass, a module and a `register_head` here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .config import DepthHeadConfig, PoseHeadConfig, TrackHeadConfig
from .readout import AttentionReadout
from .registry import HeadEntry, register_head


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


def tent_weights(coord: Tensor, size: int) -> Tensor:
    """Linear-interpolation weights of a continuous cell coordinate over a 1-D grid.

    coord: (...,) in cells (clamped to [0, size - 1]) -> (..., size), summing to 1. Written as a
    tent function rather than grid_sample so that it exports to every ONNX opset and TensorRT."""
    cells = torch.arange(size, device=coord.device, dtype=coord.dtype)
    return F.relu(1.0 - (coord.clamp(0, size - 1)[..., None] - cells).abs())


class TrackHead(nn.Module):
    """Point tracks from query points by feature correlation (the TAPIR / CoTracker principle).

    The encoder's tokens (16 px) are upsampled to a stride-`feature_stride` map and fused with a
    two-convolution stem on the frames, which restores the pixel detail a 16 px token has lost.
    A query's feature is read from its frame; its cosine correlation with every frame gives a
    peak, and a soft-argmax in a window around the peak gives the position; an MLP on the query
    feature, the feature found and the correlation statistics refines it by up to one cell and
    predicts visibility and confidence. Matching is built in, so the head learns from far less
    data than a head that regresses positions from attention alone.

    features: (B, T, h*w, D) readout features; video: (B, T, H, W, 3) in [0, 1];
    query_points: (B, Q, 3) as (t, y, x): frame index in the clip and pixel row/column in the
    model input (TAP-Vid convention; pixel centres are integers). Returns a logits dict:
      xy: (B, Q, T, 2) pixel (x, y) in every clip frame (exactly the query at its own frame),
      visible_logit, confidence_logit (is xy within 8 px): (B, Q, T),
      correlation_logits: (B, Q, T, P) over the P feature cells (training loss only).
    """

    def __init__(self, cfg, input_dim: int, clip: tuple[int, int, int], token_hw: tuple[int, int]):
        super().__init__()
        t, h, w = clip
        s, c = cfg.feature_stride, cfg.feature_dim
        self.clip, self.token_hw, self.stride = (t, h, w), tuple(token_hw), s
        self.map_hw = (h // s, w // s)
        self.window_radius = cfg.window_radius
        self.softargmax_temperature = cfg.softargmax_temperature
        self.token_projection = nn.Linear(input_dim, c)
        self.stem = nn.Sequential(  # stride s in two convolutions (s = 4: 2 x 2)
            nn.Conv2d(3, c // 2, 3, stride=2, padding=1), nn.GELU(approximate="tanh"),
            nn.Conv2d(c // 2, c, 3, stride=s // 2, padding=1),
        )
        self.fuse = nn.Sequential(
            nn.GELU(approximate="tanh"), nn.Conv2d(c, c, 3, padding=1),
            nn.GELU(approximate="tanh"), nn.Conv2d(c, c, 3, padding=1),
        )
        # Cosine similarity times a learned temperature (starting sharp: 1/20).
        self.log_temperature = nn.Parameter(torch.tensor(math.log(20.0)))
        self.refine = nn.Sequential(
            nn.Linear(2 * c + 3, cfg.hidden), nn.GELU(approximate="tanh"),
            nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(approximate="tanh"),
            nn.Linear(cfg.hidden, 4),
        )
        hf, wf = self.map_hw
        gy, gx = torch.meshgrid(torch.arange(hf), torch.arange(wf), indexing="ij")
        self.register_buffer("cell_y", gy.reshape(-1).float(), persistent=False)  # (P,) cells
        self.register_buffer("cell_x", gx.reshape(-1).float(), persistent=False)

    def to_cells(self, pixels: Tensor) -> Tensor:
        """Model-input pixel coordinate -> feature-cell coordinate (cell i covers pixels
        s*i .. s*i + s - 1, centre s*i + (s - 1) / 2)."""
        return (pixels - (self.stride - 1) / 2) / self.stride

    def to_pixels(self, cells: Tensor) -> Tensor:
        return cells * self.stride + (self.stride - 1) / 2

    def spatial_weights(self, xy: Tensor) -> Tensor:
        """xy: (..., 2) pixels -> (..., P) bilinear weights over the feature cells."""
        hf, wf = self.map_hw
        wy = tent_weights(self.to_cells(xy[..., 1]), hf)
        wx = tent_weights(self.to_cells(xy[..., 0]), wf)
        return rearrange(wy[..., :, None] * wx[..., None, :], "... y x -> ... (y x)")

    def feature_map(self, features: Tensor, video: Tensor) -> Tensor:
        """-> (B, T, P, C), unit length along C."""
        b, t = video.shape[:2]
        th, tw = self.token_hw
        hf, wf = self.map_hw
        tokens = rearrange(self.token_projection(features), "b t (y x) c -> (b t) c y x", y=th, x=tw)
        tokens = F.interpolate(tokens, size=(hf, wf), mode="bilinear", align_corners=False)
        pixels = self.stem(rearrange(video, "b t y x c -> (b t) c y x"))
        fmap = self.fuse(tokens + pixels)
        fmap = rearrange(fmap, "(b t) c y x -> b t (y x) c", b=b, t=t)
        return F.normalize(fmap, dim=-1)

    def forward(self, features: Tensor, query_points: Tensor, video: Tensor) -> dict[str, Tensor]:
        t = self.clip[0]
        fmap = self.feature_map(features, video)  # (B, T, P, C)
        b, _, p, c = fmap.shape
        q = query_points.shape[1]
        # (B, Q, 2) as (x, y). A slice, not a list index: CUDA graph capture refuses a host index tensor.
        start = query_points[..., 1:3].flip(-1)
        frames = torch.arange(t, device=video.device, dtype=query_points.dtype)
        frame_weights = F.relu(1.0 - (query_points[..., 0:1] - frames).abs())  # (B, Q, T)
        weights = frame_weights[..., None] * self.spatial_weights(start)[:, :, None, :]  # (B, Q, T, P)
        query_feature = torch.matmul(weights.reshape(b, q, t * p), fmap.reshape(b, t * p, c))
        query_feature = F.normalize(query_feature, dim=-1)  # (B, Q, C)
        cosine = torch.matmul(query_feature, fmap.reshape(b, t * p, c).transpose(1, 2)).reshape(b, q, t, p)
        logits = cosine * self.log_temperature.exp()
        # Soft-argmax in a window around the peak: robust to a second, distant match.
        peak = logits.argmax(dim=-1, keepdim=True)  # (B, Q, T, 1)
        wf = self.map_hw[1]
        peak_y = torch.div(peak, wf, rounding_mode="floor").to(logits.dtype)
        peak_x = (peak - torch.div(peak, wf, rounding_mode="floor") * wf).to(logits.dtype)
        r = self.window_radius
        window = (((self.cell_y - peak_y).abs() <= r) & ((self.cell_x - peak_x).abs() <= r)).to(logits.dtype)
        # Share of the match inside the window (>= the peak's own share), at the matching temperature.
        mass = (torch.softmax(logits, dim=-1) * window).sum(-1)
        sharp = cosine * self.softargmax_temperature if self.softargmax_temperature > 0 else logits
        prob = torch.softmax(sharp, dim=-1) * window
        prob = prob / prob.sum(-1, keepdim=True)
        cells = torch.stack([(prob * self.cell_x).sum(-1), (prob * self.cell_y).sum(-1)], dim=-1)
        xy = self.to_pixels(cells)  # (B, Q, T, 2)
        # The feature found in each frame: per frame, (B, Q, P) weights x (B, P, C).
        found = torch.matmul(rearrange(self.spatial_weights(xy), "b q t p -> b t q p"), fmap)
        found = rearrange(found, "b t q c -> b q t c")
        stats = torch.stack([cosine.amax(-1), mass, (found * query_feature[:, :, None]).sum(-1)], dim=-1)
        out = self.refine(torch.cat([query_feature[:, :, None].expand(-1, -1, t, -1), found, stats], dim=-1))
        xy = xy + torch.tanh(out[..., :2]) * self.stride
        # The query frame answers with the query itself (TAP-Vid: visible by definition).
        at_query = frame_weights[..., None] > 0.5
        xy = torch.where(at_query, start[:, :, None, :].expand(-1, -1, t, -1), xy)
        return {
            "xy": xy,
            "visible_logit": out[..., 2],
            "confidence_logit": out[..., 3],
            "correlation_logits": logits,
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


# Registry entries. Registration order is the order of fourds_ros.model.OUTPUTS.

def _check_depth(cfg: DepthHeadConfig, clip: tuple[int, int, int]) -> None:
    # The readout un-patchifies whole decoding patches; a remainder would have no query.
    dt, dh, dw = cfg.decoding_patch_size
    t, h, w = clip
    if t % dt or h % dh or w % dw:
        raise ValueError("depth decoding_patch_size must divide the clip shape")


def _check_tracks(cfg: TrackHeadConfig, clip: tuple[int, int, int]) -> None:
    # The feature map has one cell per stride x stride pixels of the model input.
    _, h, w = clip
    stride = cfg.feature_stride
    if stride < 2 or stride % 2:  # the stem halves the image, then strides by feature_stride // 2
        raise ValueError(f"tracks feature_stride must be an even number >= 2, got {stride}")
    if h % stride or w % stride:
        raise ValueError(f"tracks feature_stride {stride} must divide the image size {h}x{w}")


def _run_tracks(entry, module: TrackHead, features: Tensor, video: Tensor, inputs) -> dict[str, Tensor]:
    # Engines return probabilities; training keeps the logits (it calls the module itself).
    tr = module(features, inputs["query_points"], video)
    return {
        "track_xy": tr["xy"],
        "track_visibility": torch.sigmoid(tr["visible_logit"]),
        "track_confidence": torch.sigmoid(tr["confidence_logit"]),
    }


def _run_pose(entry, module: PoseHead, features: Tensor, video: Tensor, inputs) -> dict[str, Tensor]:
    pose = module(features)
    return {"pose_rotation": pose["rotation"], "pose_translation": pose["translation"],
            "pose_log_variance": pose["log_variance"]}


register_head(HeadEntry(
    name="depth", config=DepthHeadConfig,
    build=lambda cfg, width, clip, grid: DepthHead(cfg, width, clip),
    outputs={"depth": ("B,T,H,W", "depth in metres")},
    check=_check_depth,
    messages=("depth/image", "depth/camera_info", "depth/points"),
    metrics=("abs_rel", "rmse", "delta1"),
))
register_head(HeadEntry(
    name="tracks", config=TrackHeadConfig,
    build=lambda cfg, width, clip, grid: TrackHead(cfg, width, clip, grid[1:]),
    outputs={
        "track_xy": ("B,Q,T,2", "pixel (x, y) of each query point in every clip frame"),
        "track_visibility": ("B,Q,T", "probability that the point is visible"),
        "track_confidence": ("B,Q,T", "probability that track_xy is within 8 px"),
    },
    run=_run_tracks,
    inputs={"query_points": ("B,Q,3", "(t, y, x): clip frame index and pixel row/column in the model input")},
    check=_check_tracks,
    messages=("tracks", "tracks/markers"),
    metrics=("aj", "delta_avg", "oa", "badja_pck"),
))
register_head(HeadEntry(
    name="pose", config=PoseHeadConfig,
    build=lambda cfg, width, clip, grid: PoseHead(cfg, width, clip),
    outputs={
        "pose_rotation": ("B,T,3,3", "rotation of T_first_from_t"),
        "pose_translation": ("B,T,3", "translation of T_first_from_t, metres"),
        "pose_log_variance": ("B,T,2", "log variance of rotation (rad^2), translation (m^2)"),
    },
    run=_run_pose,
    messages=("odometry", "pose", "path", "tf"),
    metrics=("ate_rmse", "rpe_trans", "rpe_rot_deg", "rotation_ratio"),
))
