"""Losses of the three readouts (the MAE loss is training.mae.mae_loss). Shapes in each docstring."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def depth_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None, si_weight: float = 1.0,
               l1_weight: float = 1.0, variance_focus: float = 0.85) -> tuple[Tensor, dict]:
    """Scale-invariant log loss (Eigen et al. 2014) + L1 on metric depth, each over an image's
    (frame's) valid pixels, then averaged over the images that have any: every labelled frame
    counts alike, and one frame's scale error is not cancelled by another's of the other sign.

    pred, target: (B, T, H, W) metres; valid: (B, T, H, W) bool (default: target > 0)."""
    if valid is None:
        valid = target > 0
    valid = _per_image(valid & torch.isfinite(target))
    p = _per_image(pred.float()).clamp_min(1e-3)
    target = _per_image(target.float())
    g = torch.where(valid, torch.log(target.clamp_min(1e-3)) - torch.log(p), torch.zeros_like(p))
    n = valid.float().sum((1, 2))
    si = (g**2).sum((1, 2)) / n.clamp_min(1.0) - variance_focus * (g.sum((1, 2)) / n.clamp_min(1.0)) ** 2
    l1 = torch.where(valid, (p - target).abs(), torch.zeros_like(p)).sum((1, 2)) / n.clamp_min(1.0)
    si, l1 = _mean_over_labelled(si, n), _mean_over_labelled(l1, n)
    return si_weight * si + l1_weight * l1, {"depth_si": si.detach(), "depth_l1": l1.detach()}


def _mean_over_labelled(per_image: Tensor, pixels: Tensor) -> Tensor:
    """Mean of (N,) per-image values over the images with at least one labelled pixel (0 when none)."""
    labelled = (pixels > 0).float()
    return (per_image * labelled).sum() / labelled.sum().clamp_min(1.0)


TEACHER_HOLDS = ("depth", "shape")


def depth_teacher_loss(pred: Tensor, teacher: Tensor, holds: str = "depth") -> tuple[Tensor, dict]:
    """Mean |log pred - log teacher| over every pixel: the depth head held to a frozen model's depth
    (--depth-teacher) where the clip has no label as well as where it has. Log, so that near and far
    pixels count alike. holds "depth": the term holds scale (metric depth) and shape (relative
    depth) at once; "shape": each frame's mean log ratio is taken out first, so the term holds the
    teacher's depth up to one factor a frame and leaves the scale to the labels (--real-zoom's
    nearer views teach a scale the teacher does not have, session 47).
    pred, teacher: (B, T, H, W) in one unit (metres, or the canonical camera's)."""
    if holds not in TEACHER_HOLDS:
        raise ValueError(f"holds must be one of {TEACHER_HOLDS}, not {holds!r}")
    g = torch.log(pred.float().clamp_min(1e-3)) - torch.log(teacher.float().clamp_min(1e-3))
    if holds == "shape":
        g = g - g.mean(dim=(-2, -1), keepdim=True)
    loss = g.abs().mean()
    return loss, {"depth_teacher": loss.detach()}


def _per_image(x: Tensor) -> Tensor:
    """(B, T, H, W) -> (B*T, H, W): every frame is one image for the per-image alignment."""
    return x.reshape(-1, *x.shape[-2:])


def align_scale_shift(pred: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image least-squares scale s and shift t minimising sum over valid pixels of
    (s * pred + t - target)^2 (MiDaS, Ranftl et al. 2020). pred, target, valid: (N, H, W);
    -> s, t: (N,). An image whose normal equations are singular (a flat prediction, or fewer than
    two valid pixels) gets the scale of the means and no shift, so that its residual still depends
    on the prediction and teaches it the target's structure."""
    m = valid.float()
    a00, a01, a11 = (m * pred * pred).sum((1, 2)), (m * pred).sum((1, 2)), m.sum((1, 2))
    b0, b1 = (m * pred * target).sum((1, 2)), (m * target).sum((1, 2))
    det = a00 * a11 - a01 * a01
    # Singular relative to the prediction's own size (variance under 1e-6 of its mean squared): an
    # absolute bound refused a far, nearly flat prediction (disparity 1/40 +- 2 %) and cut its gradient.
    ok = det > 1e-6 * a01 * a01
    safe = torch.where(ok, det, torch.ones_like(det))
    s = torch.where(ok, (a11 * b0 - a01 * b1) / safe, b1 / a01.clamp_min(1e-12))
    t = torch.where(ok, (-a01 * b0 + a00 * b1) / safe, torch.zeros_like(det))
    return s, t


def normalized_disparity(depth: Tensor, valid: Tensor) -> Tensor:
    """Inverse depth divided by its per-image median over valid pixels (0 elsewhere), so that
    a far scene and a near one weigh the same in the loss. depth, valid: (N, H, W)."""
    disp = torch.where(valid, 1.0 / depth.clamp_min(1e-3), torch.zeros_like(depth))
    med = torch.where(valid, disp, torch.full_like(disp, float("nan"))).flatten(1).nanmedian(1).values
    med = torch.nan_to_num(med, nan=1.0).clamp_min(1e-6)  # an image with no valid pixel: any value
    return disp / med[:, None, None]


def gradient_matching(residual: Tensor, valid: Tensor, scales: int = 4) -> Tensor:
    """MiDaS multi-scale gradient-matching term: mean |d/dx| + |d/dy| of the aligned residual
    over pairs of valid neighbours, at `scales` resolutions (stride 1, 2, 4, ...), so edges
    and planes come out where the truth has them, each image's mean then averaged over the images
    with any such pair (every labelled frame counts alike, as in ssi_depth_loss).
    residual, valid: (N, H, W) -> scalar."""
    total = residual.new_zeros(())
    for k in range(scales):
        step = 2**k
        r, m = residual[:, ::step, ::step], valid[:, ::step, ::step].float()
        if min(r.shape[1:]) < 2:
            break
        mx, my = m[:, :, 1:] * m[:, :, :-1], m[:, 1:] * m[:, :-1]
        gx = ((r[:, :, 1:] - r[:, :, :-1]).abs() * mx).sum((1, 2))
        gy = ((r[:, 1:] - r[:, :-1]).abs() * my).sum((1, 2))
        pairs = mx.sum((1, 2)) + my.sum((1, 2))
        total = total + _mean_over_labelled((gx + gy) / pairs.clamp_min(1.0), pairs)
    return total


def ssi_depth_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None, grad_weight: float = 0.5,
                   scales: int = 4) -> tuple[Tensor, dict]:
    """Scale-and-shift-invariant loss in inverse depth plus multi-scale gradient matching.

    Inverse depth, as MiDaS: an affine map of disparity is what a camera of unknown scale (and
    a sensor's unknown offset) leaves undetermined, far and invalid pixels are bounded near 0
    instead of dominating, and near surfaces, where a robot acts, weigh most. The prediction's
    disparity is aligned to the per-image median-normalised true disparity by least squares,
    then scored by mean absolute residual over valid pixels (the MiDaS L1 on aligned
    disparities). A focal-length rescale of the prediction is a pure scale, so this term is
    the same with or without a canonical focal.

    pred, target: (B, T, H, W) depth (any units; pred > 0); valid: (B, T, H, W) bool
    (default: target > 0). Every frame is one image."""
    if valid is None:
        valid = target > 0
    valid = _per_image(valid & torch.isfinite(target))
    target_disp = normalized_disparity(_per_image(target.float()), valid)
    pred_disp = 1.0 / _per_image(pred.float()).clamp_min(1e-3)
    s, t = align_scale_shift(pred_disp, target_disp, valid)
    residual = torch.where(valid, s[:, None, None] * pred_disp + t[:, None, None] - target_disp,
                           torch.zeros_like(pred_disp))
    # Each image's mean, then the mean over labelled images: pooled over pixels, a sparse clip
    # (--sfm-depth: about 79 points on a few frames) weighed 0.02 % of the batch against 1/8.
    pixels = valid.float().sum((1, 2))
    ssi = _mean_over_labelled(residual.abs().sum((1, 2)) / pixels.clamp_min(1.0), pixels)
    grad = gradient_matching(residual, valid, scales)
    return ssi + grad_weight * grad, {"depth_ssi": ssi.detach(), "depth_grad": grad.detach()}


def track_loss(out: dict[str, Tensor], xy: Tensor, visible: Tensor, cell_weights: Tensor,
               huber_delta: float = 4.0, confidence_px: float = 8.0, known: Tensor | None = None) -> tuple[Tensor, dict]:
    """Position Huber (pixels, visible frames only) + correlation cross-entropy towards the true
    cell (visible frames; it teaches the matching features directly, which the soft-argmax alone
    learns slowly; as a KL divergence) + visibility BCE and confidence BCE over every frame of the clip.

    out: TrackHead logits dict (xy (B, Q, T, 2), visible_logit, confidence_logit (B, Q, T),
    correlation_logits (B, Q, T, P)); xy: (B, Q, T, 2) target; visible: (B, Q, T) {0, 1};
    cell_weights: (B, Q, T, P) the target's bilinear weights over the cells
    (TrackHead.spatial_weights(xy)); known: (B, Q, T) {0, 1} where the label holds (default
    everywhere; LK pseudo-labels stop where LK lost the point): no term reads the others."""
    known = torch.ones_like(visible) if known is None else known.float()
    vis = visible.float() * known
    n = vis.sum().clamp_min(1.0)
    n_known = known.sum().clamp_min(1.0)
    per = F.huber_loss(out["xy"].float(), xy, delta=huber_delta, reduction="none").sum(-1)
    position = (per * vis).sum() / n / huber_delta
    log_prob = torch.log_softmax(out["correlation_logits"].float(), dim=-1)
    # KL divergence (cross-entropy less the target's own entropy), so a perfect match costs 0.
    kl = (cell_weights * (torch.log(cell_weights.clamp_min(1e-12)) - log_prob)).sum(-1)
    correlation = (kl * vis).sum() / n
    visibility = (F.binary_cross_entropy_with_logits(out["visible_logit"].float(), vis, reduction="none")
                  * known).sum() / n_known
    within = ((out["xy"].detach() - xy).norm(dim=-1) < confidence_px).float() * vis
    confidence = (F.binary_cross_entropy_with_logits(out["confidence_logit"].float(), within, reduction="none")
                  * known).sum() / n_known
    total = position + correlation + visibility + confidence
    return total, {"track_position": position.detach(), "track_correlation": correlation.detach(),
                   "track_visibility": visibility.detach()}


def geodesic_angle(r1: Tensor, r2: Tensor, exact: bool = False) -> Tensor:
    """(..., 3, 3) x2 -> (...,) rotation angle of r1^T r2 in radians (numerically safe acos).
    In float32 whatever the inputs and autocast: under bfloat16 autocast an einsum comes out in
    bfloat16, where 1 - 1e-6 rounds to 1, acos' is infinite at the clamp, and one step of GPU
    training turned every weight to NaN (2026-11-30). exact: a metric, not a loss (no gradient
    taken): float64 and no clamp margin, which read a perfect rotation as 0.0816 degrees."""
    dtype, margin = (torch.float64, 0.0) if exact else (torch.float32, 1e-6)
    trace = (r1.to(dtype) * r2.to(dtype)).sum((-2, -1))
    cos = ((trace - 1) / 2).clamp(-1 + margin, 1 - margin)
    return torch.acos(cos)


MOVED_M = 0.005  # frames whose true translation is at least this (metres) have a direction


def translation_cosine(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """(..., 3) x2 -> (cos of the angle between pred and target, (...,) bool of the frames that
    moved MOVED_M or more, where a direction exists). In float32."""
    target = target.float()
    cos = torch.nn.functional.cosine_similarity(pred.float(), target, dim=-1)
    return cos, target.norm(dim=-1) >= MOVED_M


def pose_loss(out: dict[str, Tensor], rotation: Tensor, translation: Tensor,
              direction_weight: float = 0.0) -> tuple[Tensor, dict]:
    """Geodesic rotation + L2 translation error of T_first_from_t, plus the Gaussian negative
    log-likelihood of both errors under the predicted log variances (so the uncertainty learns
    the error's size), plus direction_weight x (1 - cos) of the angle between the predicted and
    true translation on frames that moved MOVED_M or more. Why the last term: the L2 error is
    dominated by the clips that move most, while the Sim(3)-aligned trajectory of a camera that
    barely moves hangs on each clip's direction (docs/results/pose_error_budget). Frame 0 is
    identity by construction and is skipped.

    out: PoseHead dict (rotation (B, T, 3, 3), translation (B, T, 3), log_variance (B, T, 2));
    rotation: (B, T, 3, 3), translation: (B, T, 3) targets."""
    angle = geodesic_angle(out["rotation"].float(), rotation)[:, 1:]
    trans = (out["translation"].float() - translation).norm(dim=-1)[:, 1:]
    log_var = out["log_variance"].float()[:, 1:]
    nll = 0.5 * (torch.exp(-log_var[..., 0]) * angle.detach() ** 2 + log_var[..., 0])
    nll = nll + 0.5 * (torch.exp(-log_var[..., 1]) * trans.detach() ** 2 + log_var[..., 1])
    total = angle.mean() + trans.mean() + 0.1 * nll.mean()
    parts = {"pose_rotation_rad": angle.mean().detach(), "pose_translation_m": trans.mean().detach()}
    if direction_weight > 0:
        cos, moved = translation_cosine(out["translation"][:, 1:], translation[:, 1:])
        direction = ((1.0 - cos) * moved).sum() / moved.sum().clamp_min(1)
        total = total + direction_weight * direction
        parts["pose_direction_miss"] = direction.detach()
    return total, parts
