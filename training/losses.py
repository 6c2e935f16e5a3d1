"""Losses of the three readouts (the MAE loss is training.mae.mae_loss). Shapes in each docstring."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def depth_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None, si_weight: float = 1.0,
               l1_weight: float = 1.0, variance_focus: float = 0.85) -> tuple[Tensor, dict]:
    """Scale-invariant log loss (Eigen et al. 2014) + L1 on metric depth, over valid pixels.

    pred, target: (B, T, H, W) metres; valid: (B, T, H, W) bool (default: target > 0)."""
    if valid is None:
        valid = target > 0
    valid = valid & torch.isfinite(target)
    n = valid.float().sum().clamp_min(1.0)
    p = pred.float().clamp_min(1e-3)
    g = torch.log(target.clamp_min(1e-3)) - torch.log(p)
    g = torch.where(valid, g, torch.zeros_like(g))
    si = (g**2).sum() / n - variance_focus * (g.sum() / n) ** 2
    l1 = (torch.where(valid, (p - target).abs(), torch.zeros_like(p))).sum() / n
    return si_weight * si + l1_weight * l1, {"depth_si": si.detach(), "depth_l1": l1.detach()}


def track_loss(out: dict[str, Tensor], xy: Tensor, visible: Tensor, cell_weights: Tensor,
               huber_delta: float = 4.0, confidence_px: float = 8.0) -> tuple[Tensor, dict]:
    """Position Huber (pixels, visible frames only) + correlation cross-entropy towards the true
    cell (visible frames; it teaches the matching features directly, which the soft-argmax alone
    learns slowly; as a KL divergence) + visibility BCE and confidence BCE over every frame of the clip.

    out: TrackHead logits dict (xy (B, Q, T, 2), visible_logit, confidence_logit (B, Q, T),
    correlation_logits (B, Q, T, P)); xy: (B, Q, T, 2) target; visible: (B, Q, T) {0, 1};
    cell_weights: (B, Q, T, P) the target's bilinear weights over the cells
    (TrackHead.spatial_weights(xy))."""
    vis = visible.float()
    n = vis.sum().clamp_min(1.0)
    per = F.huber_loss(out["xy"].float(), xy, delta=huber_delta, reduction="none").sum(-1)
    position = (per * vis).sum() / n / huber_delta
    log_prob = torch.log_softmax(out["correlation_logits"].float(), dim=-1)
    # KL divergence (cross-entropy less the target's own entropy), so a perfect match costs 0.
    kl = (cell_weights * (torch.log(cell_weights.clamp_min(1e-12)) - log_prob)).sum(-1)
    correlation = (kl * vis).sum() / n
    visibility = F.binary_cross_entropy_with_logits(out["visible_logit"].float(), vis)
    within = ((out["xy"].detach() - xy).norm(dim=-1) < confidence_px).float() * vis
    confidence = F.binary_cross_entropy_with_logits(out["confidence_logit"].float(), within)
    total = position + correlation + visibility + confidence
    return total, {"track_position": position.detach(), "track_correlation": correlation.detach(),
                   "track_visibility": visibility.detach()}


def geodesic_angle(r1: Tensor, r2: Tensor) -> Tensor:
    """(..., 3, 3) x2 -> (...,) rotation angle of r1^T r2 in radians (numerically safe acos)."""
    trace = torch.einsum("...ij,...ij->...", r1, r2)
    cos = ((trace - 1) / 2).clamp(-1 + 1e-6, 1 - 1e-6)
    return torch.acos(cos)


def pose_loss(out: dict[str, Tensor], rotation: Tensor, translation: Tensor) -> tuple[Tensor, dict]:
    """Geodesic rotation + L2 translation error of T_first_from_t, plus the Gaussian negative
    log-likelihood of both errors under the predicted log variances (so the uncertainty learns
    the error's size). Frame 0 is identity by construction and is skipped.

    out: PoseHead dict (rotation (B, T, 3, 3), translation (B, T, 3), log_variance (B, T, 2));
    rotation: (B, T, 3, 3), translation: (B, T, 3) targets."""
    angle = geodesic_angle(out["rotation"].float(), rotation)[:, 1:]
    trans = (out["translation"].float() - translation).norm(dim=-1)[:, 1:]
    log_var = out["log_variance"].float()[:, 1:]
    nll = 0.5 * (torch.exp(-log_var[..., 0]) * angle.detach() ** 2 + log_var[..., 0])
    nll = nll + 0.5 * (torch.exp(-log_var[..., 1]) * trans.detach() ** 2 + log_var[..., 1])
    total = angle.mean() + trans.mean() + 0.1 * nll.mean()
    return total, {"pose_rotation_rad": angle.mean().detach(), "pose_translation_m": trans.mean().detach()}
