"""Known answers for the training losses' weights, masks and units: the scale-and-shift-invariant depth loss
(median normalisation, gradient weight and strides, invalid pairs), the track loss (Huber in units of its delta,
confidence target, correlation over visible frames) and the pose loss (moved frames, the NLL's weight)."""
import math

import pytest
import torch


def _rot_z(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    return torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])


def test_pose_loss_known_answer_frame_zero_skipped_nll_weighed_a_tenth():
    """T=3: frame 0 wrong on purpose (it is identity by construction and skipped); frame 1 off by 10 deg,
    frame 2 by 0.2 m. Zero log variances: NLL = 0.5 (angle^2 + trans^2) a frame, weighed 0.1."""
    from training.losses import pose_loss

    eye = torch.eye(3).expand(1, 3, 3, 3).clone()
    pred_r = eye.clone()
    pred_r[0, 0] = _rot_z(90.0)  # frame 0: ignored
    pred_r[0, 1] = _rot_z(10.0)
    pred_t = torch.zeros(1, 3, 3)
    pred_t[0, 0] = torch.tensor([5.0, 0.0, 0.0])  # frame 0: ignored
    pred_t[0, 2] = torch.tensor([0.0, 0.2, 0.0])
    out = {"rotation": pred_r, "translation": pred_t, "log_variance": torch.zeros(1, 3, 2)}
    total, parts = pose_loss(out, eye, torch.zeros(1, 3, 3))
    angle = math.radians(10.0)
    # (geodesic_angle clamps cos at 1 - 1e-6: a perfect frame reads 1.4 mrad, hence abs=1e-3)
    assert float(parts["pose_rotation_rad"]) == pytest.approx(angle / 2, abs=1e-3)
    assert float(parts["pose_translation_m"]) == pytest.approx(0.1, rel=1e-4)
    nll = 0.5 * (angle**2 + 0.2**2) / 2
    assert float(total) == pytest.approx(angle / 2 + 0.1 + 0.1 * nll, abs=1.5e-3)


def test_direction_term_counts_a_centimetre_move_and_averages_over_moved_frames():
    """MOVED_M = 5 mm: a 1 cm move has a direction. Of four frames after the first, one moved 1 cm and
    is 90 degrees off, one moved 10 cm and is right, two stayed: the miss is the mean over the two moved."""
    from training.losses import MOVED_M, pose_loss

    assert MOVED_M == pytest.approx(0.005)
    eye = torch.eye(3).expand(1, 5, 3, 3)
    true = torch.zeros(1, 5, 3)
    true[0, 1, 0] = 0.01
    true[0, 2, 0] = 0.1
    pred = true.clone()
    pred[0, 1] = torch.tensor([0.0, 0.01, 0.0])  # 90 degrees off
    _, parts = pose_loss({"rotation": eye, "translation": pred, "log_variance": torch.zeros(1, 5, 2)}, eye, true, 1.0)
    assert float(parts["pose_direction_miss"]) == pytest.approx(0.5, abs=1e-5)


def _track_out(b=1, q=2, t=3, p=4):
    return {"xy": torch.zeros(b, q, t, 2), "visible_logit": torch.zeros(b, q, t),
            "confidence_logit": torch.zeros(b, q, t), "correlation_logits": torch.zeros(b, q, t, p)}


def test_track_position_is_huber_in_units_of_its_delta_over_visible_frames():
    """2 px off in x (inside the 4 px Huber delta): 0.5 * 2^2 / 4 = 0.5 a visible frame; an invisible
    frame's error, however large, adds nothing."""
    from training.losses import track_loss

    out = _track_out()
    xy = torch.zeros(1, 2, 3, 2)
    xy[..., 0] = 2.0
    visible = torch.ones(1, 2, 3)
    visible[0, 1, 2] = 0.0
    xy[0, 1, 2] = torch.tensor([100.0, 100.0])  # invisible: not scored by position
    weights = torch.full((1, 2, 3, 4), 0.25)
    _, parts = track_loss(out, xy, visible, weights)
    assert float(parts["track_position"]) == pytest.approx(0.5, rel=1e-5)


def test_track_confidence_target_is_one_within_confidence_px():
    """A prediction on the truth with a confident logit costs almost nothing in the confidence term; the
    same prediction with an unconfident logit costs more (the target is 1 within confidence_px)."""
    from training.losses import track_loss

    xy = torch.zeros(1, 2, 3, 2)
    visible = torch.ones(1, 2, 3)
    weights = torch.full((1, 2, 3, 4), 0.25)
    confident, unsure = _track_out(), _track_out()
    confident["confidence_logit"] += 10.0
    unsure["confidence_logit"] -= 10.0
    assert float(track_loss(confident, xy, visible, weights)[0]) < float(track_loss(unsure, xy, visible, weights)[0]) - 5


def test_track_correlation_reads_visible_frames_only():
    """Correlation logits changed only on an occluded (known) frame leave the loss's correlation part as it was."""
    from training.losses import track_loss

    xy = torch.zeros(1, 2, 3, 2)
    visible = torch.ones(1, 2, 3)
    visible[0, 0, 1] = 0.0
    weights = torch.softmax(torch.randn(1, 2, 3, 4, generator=torch.Generator().manual_seed(0)), -1)
    out = _track_out()
    _, base = track_loss(out, xy, visible, weights)
    other = _track_out()
    other["correlation_logits"][0, 0, 1] = torch.tensor([5.0, -5.0, 3.0, 0.0])
    _, changed = track_loss(other, xy, visible, weights)
    assert float(changed["track_correlation"]) == pytest.approx(float(base["track_correlation"]), rel=1e-6)


def test_ssi_loss_weighs_a_far_scene_as_a_near_one():
    """normalized_disparity divides by each image's median disparity: the same scene and prediction 10x
    farther (a street against a room) have the same SSI loss, not a tenth of it."""
    from training.losses import ssi_depth_loss

    g = torch.Generator().manual_seed(4)
    target = 1.0 + 3.0 * torch.rand(2, 2, 16, 16, generator=g)
    pred = target * (1.0 + 0.3 * torch.rand(2, 2, 16, 16, generator=g))  # wrong in structure
    near, _ = ssi_depth_loss(pred, target)
    far, _ = ssi_depth_loss(pred * 10.0, target * 10.0)
    assert float(near) > 0.01 and float(far) == pytest.approx(float(near), rel=1e-3)


def test_a_shape_teacher_takes_out_each_frames_own_scale():
    """holds="shape": a prediction that is the teacher times a different factor in each frame costs 0."""
    from training.losses import depth_teacher_loss

    teacher = 1.0 + torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    pred = teacher * torch.tensor([0.5, 1.0, 3.0])[None, :, None, None]
    assert float(depth_teacher_loss(pred, teacher, "shape")[0]) < 1e-5
    assert float(depth_teacher_loss(pred, teacher, "depth")[0]) > 0.3


def test_gradient_matching_strides_double_each_scale():
    """scales=3 on a ramp of slope c: strides 1, 2, 4 see steps c, 2c, 4c on the x-pairs (half of all pairs)."""
    from training.losses import gradient_matching

    c = 0.1
    ramp = (torch.arange(16.0) * c).expand(1, 16, 16)
    valid = torch.ones(1, 16, 16, dtype=torch.bool)
    assert float(gradient_matching(ramp, valid, scales=3)) == pytest.approx(c / 2 + c + 2 * c)


def test_gradient_matching_skips_pairs_with_an_invalid_pixel():
    """A residual constant over the valid pixels has no gradient, whatever the (zeroed) invalid ones."""
    from training.losses import gradient_matching

    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    valid[:, :, :3] = False
    valid[:, :2] = False
    residual = torch.where(valid, torch.full((1, 8, 8), 0.7), torch.zeros(1, 8, 8))
    assert float(gradient_matching(residual, valid, scales=1)) == 0.0


def test_ssi_loss_weighs_the_gradient_term_by_grad_weight():
    from training.losses import ssi_depth_loss

    g = torch.Generator().manual_seed(6)
    target = 1.0 + 3.0 * torch.rand(1, 2, 16, 16, generator=g)
    pred = 1.0 + 3.0 * torch.rand(1, 2, 16, 16, generator=g)
    for w in (0.0, 0.5, 2.0):
        loss, parts = ssi_depth_loss(pred, target, grad_weight=w)
        assert float(parts["depth_grad"]) > 0.01
        assert float(loss) == pytest.approx(float(parts["depth_ssi"]) + w * float(parts["depth_grad"]), rel=1e-5)
