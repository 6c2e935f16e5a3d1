"""Self-supervised depth from unlabelled real video: the photometric loss of view synthesis
(Zhou et al. 2017, SfMLearner; Godard et al. 2019, Monodepth2), for issue #17's "data that
transfers".

Why: the depth head has metric labels from two real rooms only, and on a new scene its relative
depth barely beats a constant. Unlabelled video of many places has no depth, but the depth of a
frame and the camera's motion predict how the next frame looks: warp the neighbour into the
frame through the predicted depth and pose, and the warp's photometric error is the loss. The
poses come from an auxiliary pose head (a copy of the model's, trained here and then thrown
away), so the shipped pose head is never moved by this term.

Monodepth2's three rules, each for a reason:
- per-pixel minimum over the neighbours (a pixel hidden in one neighbour is seen in the other);
- auto-masking: a pixel whose un-warped neighbour already matches as well (a still camera, an
  object moving with it, a textureless wall) teaches nothing and is left out;
- SSIM + L1 (0.85 / 0.15), robust to the exposure changes of real video;
plus an edge-aware smoothness on mean-normalised disparity, so flat regions do not wander.

Shapes: video (B, T, H, W, 3) float in [0, 1]; depth (B, T, H, W) (> 0; any unit: each clip is
rescaled to its geometric mean, see photometric_loss); rotation
(B, T, 3, 3) and translation (B, T, 3) of T_first_from_t (the pose head's contract); K (B, 3, 3)
model pixels, pixel centres at integers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

SSIM_WEIGHT = 0.85  # Monodepth2's mix of (1 - SSIM) / 2 and L1
SMOOTHNESS_WEIGHT = 1e-3


def ssim_dissimilarity(x: Tensor, y: Tensor) -> Tensor:
    """(1 - SSIM) / 2 over 3x3 windows (reflection padded), per pixel and channel.
    x, y: (N, C, H, W) in [0, 1] -> (N, C, H, W) in [0, 1]."""
    c1, c2 = 0.01**2, 0.03**2
    pad = lambda z: F.pad(z, (1, 1, 1, 1), mode="reflect")  # noqa: E731
    mu_x, mu_y = F.avg_pool2d(pad(x), 3, 1), F.avg_pool2d(pad(y), 3, 1)
    sigma_x = F.avg_pool2d(pad(x * x), 3, 1) - mu_x**2
    sigma_y = F.avg_pool2d(pad(y * y), 3, 1) - mu_y**2
    sigma_xy = F.avg_pool2d(pad(x * y), 3, 1) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2))
    return ((1 - ssim) / 2).clamp(0, 1)


def photometric_error(x: Tensor, y: Tensor) -> Tensor:
    """SSIM_WEIGHT x (1 - SSIM) / 2 + (1 - SSIM_WEIGHT) x L1, averaged over channels.
    x, y: (N, 3, H, W) -> (N, H, W)."""
    l1 = (x - y).abs().mean(1)
    return SSIM_WEIGHT * ssim_dissimilarity(x, y).mean(1) + (1 - SSIM_WEIGHT) * l1


def relative_pose(rotation: Tensor, translation: Tensor, target: int, source: int) -> tuple[Tensor, Tensor]:
    """T_source_from_target (R (B, 3, 3), t (B, 3)) from the clip's T_first_from_t:
    T_s_from_t = T_first_from_s^-1 T_first_from_t."""
    r_s, t_s = rotation[:, source], translation[:, source]
    r_t, t_t = rotation[:, target], translation[:, target]
    r_st = r_s.transpose(1, 2) @ r_t
    t_st = (r_s.transpose(1, 2) @ (t_t - t_s)[..., None])[..., 0]
    return r_st, t_st


def warp(source: Tensor, depth: Tensor, k: Tensor, r: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """The source image resampled at the pixels where the target's points land in it.

    source: (B, 3, H, W); depth: (B, H, W) the target frame's depth along the optical axis;
    k: (B, 3, 3); r, t: T_source_from_target. -> warped (B, 3, H, W) and inside (B, H, W) bool:
    the point lands in front of the source camera and inside its image."""
    b, _, h, w = source.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=depth.device, dtype=depth.dtype),
                            torch.arange(w, device=depth.device, dtype=depth.dtype), indexing="ij")
    pixels = torch.stack([xs, ys, torch.ones_like(xs)], 0).reshape(3, -1)  # (3, HW)
    rays = torch.linalg.inv(k) @ pixels  # (B, 3, HW)
    points = rays * depth.reshape(b, 1, -1)
    moved = r @ points + t[..., None]
    projected = k @ moved
    z = projected[:, 2]
    uv = projected[:, :2] / z.clamp_min(1e-3)[:, None]
    grid = torch.stack([uv[:, 0] / (w - 1), uv[:, 1] / (h - 1)], -1) * 2 - 1  # align_corners=True
    grid = grid.reshape(b, h, w, 2)
    warped = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=True)
    inside = (z.reshape(b, h, w) > 1e-3) & (grid.abs() <= 1).all(-1)
    return warped, inside


def edge_aware_smoothness(depth: Tensor, image: Tensor) -> Tensor:
    """Mean |grad| of the mean-normalised disparity, damped where the image has edges.
    depth: (N, H, W); image: (N, 3, H, W) -> scalar."""
    disp = 1.0 / depth.clamp_min(1e-3)
    disp = disp / disp.mean((1, 2), keepdim=True).clamp_min(1e-6)
    dx, dy = (disp[:, :, 1:] - disp[:, :, :-1]).abs(), (disp[:, 1:] - disp[:, :-1]).abs()
    ix = (image[..., 1:] - image[..., :-1]).abs().mean(1)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()


def photometric_loss(video: Tensor, depth: Tensor, rotation: Tensor, translation: Tensor, k: Tensor,
                     neighbours: tuple[int, ...] = (-1, 1)) -> tuple[Tensor, dict]:
    """View-synthesis loss of a clip (module docstring), blind to each clip's depth scale (the
    translation is read in units of the clip's geometric-mean depth): every frame is a target, reconstructed from
    its `neighbours` (frame offsets) inside the clip; per-pixel minimum over them, auto-masked,
    plus SMOOTHNESS_WEIGHT x edge-aware smoothness. -> (loss, {"photo_error", "photo_masked"})
    where photo_masked is the share of pixels the auto-mask and the image border left out."""
    t_len = video.shape[1]
    images = rearrange(video.float(), "b t h w c -> b t c h w")
    # Each clip's depth in units of its own geometric mean: the term teaches the depth's shape and
    # never its scale, which the poses of unlabelled video (any speed, a guessed focal length)
    # cannot give; the pose's translation takes the clip's unit instead. Metric scale stays with
    # the labelled clips (a first run without this moved TUM's metric AbsRel 1.13 -> 1.31).
    depth = depth.float() / torch.exp(torch.log(depth.float().clamp_min(1e-3)).mean((1, 2, 3), keepdim=True))
    errors, masks = [], []
    # The un-warped error of a pair of frames is symmetric (SSIM and L1 are): each pair once.
    identity_of: dict[tuple[int, int], Tensor] = {}
    for target in range(t_len):
        reprojected, identity = [], []
        for offset in neighbours:
            source = target + offset
            if not 0 <= source < t_len:
                continue
            r, t = relative_pose(rotation.float(), translation.float(), target, source)
            warped, inside = warp(images[:, source], depth[:, target], k.float(), r, t)
            err = photometric_error(warped, images[:, target])
            reprojected.append(torch.where(inside, err, torch.full_like(err, float("inf"))))
            pair = (min(source, target), max(source, target))
            if pair not in identity_of:
                identity_of[pair] = photometric_error(images[:, source], images[:, target])
            identity.append(identity_of[pair])
        best, _ = torch.stack(reprojected).min(0)
        # A tiny offset breaks ties in favour of the warp on textureless regions (Monodepth2).
        still, _ = torch.stack(identity).min(0)
        keep = torch.isfinite(best) & (best < still + 1e-5)
        errors.append(torch.where(keep, best, torch.zeros_like(still)))
        masks.append(keep)
    error, keep = torch.stack(errors, 1), torch.stack(masks, 1)
    photo = error.sum() / keep.float().sum().clamp_min(1.0)
    smooth = edge_aware_smoothness(depth.reshape(-1, *depth.shape[2:]),
                                   rearrange(images, "b t c h w -> (b t) c h w"))
    return photo + SMOOTHNESS_WEIGHT * smooth, {"photo_error": photo.detach(),
                                                "photo_masked": 1.0 - keep.float().mean().detach()}
