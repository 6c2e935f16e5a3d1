"""The pipeline's counts and scale where a wrong one reads as right: frames_without_depth and depth_empty count what
the depth head gave, before the depth range cuts it (a valid out-of-range or rescaled depth was counted as none); the
metric scale on the translation variance; a head's zero depth; blind-frame counts; the padding's time step."""

from __future__ import annotations

import numpy as np
import pytest

from fourds_ros.perception import PerceptionPipeline, PerceptionSettings
from fourds_ros.perception.pipeline import padded_stamps

from .test_metric_scale import FAKE_T, BlindingEngine, blinding_run
from .test_pipeline_unusable_heads import BrokenHeadsEngine


def _last_pose(factor: float):
    pipeline = PerceptionPipeline(BlindingEngine(), PerceptionSettings.from_params(
        hop=FAKE_T, pose_source="head", metric_scale_factor=factor))
    (result,) = blinding_run(pipeline, [False] * FAKE_T, lambda *args: None)
    return result.frames[-1].pose


@pytest.mark.parametrize("head_m, factor, published", [(12.0, 0.5, 6.0), (12.0, 1.0, np.inf), (0.005, 4.0, 0.02)])
def test_depth_the_head_gave_is_not_counted_or_warned_as_none(head_m, factor, published):
    pipeline = PerceptionPipeline(BrokenHeadsEngine(head_m, 0.4), PerceptionSettings.from_params(
        hop=FAKE_T, pose_source="head", metric_scale_factor=factor, max_depth=10.0))
    (result,) = blinding_run(pipeline, [False] * FAKE_T, lambda *args: None)
    for r in result.frames:
        np.testing.assert_allclose(np.unique(r.depth), [published], rtol=1e-6)
    assert pipeline.status()["frames_without_depth"] == 0 and "depth_empty" not in result.warnings, result.warnings


def test_a_metric_scale_factor_scales_the_translation_variance_by_its_square_and_leaves_the_rotations():
    """Metres times s: the translation's standard deviation times s, its variance times s^2 (log-variance
    + 2 log s). With + log s a robot_localization EKF fusing the rescaled odometry trusted it s^0.5 x too
    much (s = 4: twice)."""
    one, two = _last_pose(1.0), _last_pose(2.0)
    np.testing.assert_allclose(two.odom_from_camera[:3, 3], 2 * one.odom_from_camera[:3, 3], rtol=1e-5)
    np.testing.assert_allclose(np.diag(two.covariance)[:3], 4 * np.diag(one.covariance)[:3], rtol=1e-3)
    np.testing.assert_allclose(np.diag(two.covariance)[3:], np.diag(one.covariance)[3:], rtol=1e-6)


def test_a_depth_head_giving_zero_or_negative_metres_publishes_no_depth_not_too_close():
    """REP 117: -inf is a reading below the sensor's range (an obstacle right at the lens); a head giving
    0 or negative metres measured nothing, so NaN. Counted as frames_without_depth."""
    from .test_pipeline_unusable_heads import run

    for depth_m in (0.0, -1.0):
        pipeline, result = run(depth_m, 0.4)
        for r in result.frames:
            assert np.isnan(r.depth).all(), (depth_m, np.unique(r.depth))
        assert pipeline.status()["frames_without_depth"] == FAKE_T


def test_blind_frames_are_counted_blind_only_not_partly_blind_nor_without_depth():
    """A black frame is blind: counted in frames_blind alone. It is no frame partly blind (the node's
    view_partly_blind warning asks a team to clean a part of the lens) nor one whose depth head failed
    (depth_empty), even where the model invents no depth for it."""
    blind = [False] * 3 + [True] * 5
    pipeline = PerceptionPipeline(BlindingEngine(invented=0.0), PerceptionSettings.from_params(hop=FAKE_T))
    (result,) = blinding_run(pipeline, blind, lambda *args: None)
    status = pipeline.status()
    assert result.blind == 5 and status["frames_blind"] == 5, status
    assert result.partly_blind == 0 and status["frames_partly_blind"] == 0, status
    assert status["frames_without_depth"] == 0 and "depth_empty" not in result.warnings, (status, result.warnings)


def test_a_clip_whose_first_frame_is_blind_measures_no_motion_from_it():
    """Every pose of a clip is its motion from the clip's first frame: from a blind one, none is seen,
    so the head's translations are held (the pose does not move) and a reference odometry counts nothing."""
    pipeline = PerceptionPipeline(BlindingEngine(), PerceptionSettings.from_params(hop=FAKE_T, pose_source="head"))
    (result,) = blinding_run(pipeline, [True] + [False] * (FAKE_T - 1), lambda *args: None)
    positions = np.array([r.pose.odom_from_camera[:3, 3] for r in result.frames])
    assert np.abs(positions).max() < 1e-6, positions


def test_padding_goes_on_at_the_median_step_not_the_last_one():
    ms = 1_000_000
    real = [0, 33 * ms, 66 * ms, 132 * ms]  # a frame dropped before the last
    assert padded_stamps(real + [132 * ms] * 2, 2) == real + [165 * ms, 198 * ms]
    assert padded_stamps([5 * ms, 5 * ms], 1) == [5 * ms, 5 * ms + 1]  # one real frame: 1 ns on
    assert padded_stamps(real, 0) == real
