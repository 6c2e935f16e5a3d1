"""Heads whose outputs are finite but unusable (session 62's fault review): a depth head with no valid
pixel published all-NaN depth with /diagnostics OK, and a pose head's 65504 m (fp16 saturated) went into
the odometry with pose_source head (a 93 km jump) and stayed there. Both are now held or published as no
depth, counted, and warned on /diagnostics. The engine is BlindingEngine (test_metric_scale) with its
heads broken on purpose."""

from __future__ import annotations

import numpy as np

from fourds_ros.perception import PerceptionPipeline, PerceptionSettings
from fourds_ros.perception.health import WARN, NodeHealth

from .test_metric_scale import FAKE_T, BlindingEngine, blinding_run
from .test_perception_worker_health import state


class BrokenHeadsEngine(BlindingEngine):
    """depth `depth_m` everywhere; the pose head's translation from frame 4 on `translation_m` (finite)."""

    def __init__(self, depth_m: float, translation_m: float):
        super().__init__()
        self.depth_m, self.translation_m = depth_m, translation_m

    def __call__(self, inputs):
        outputs = super().__call__(inputs)
        outputs["depth"][:] = self.depth_m
        outputs["pose_translation"][0, 4:, 0] = self.translation_m
        return outputs


def run(depth_m: float, translation_m: float):
    pipeline = PerceptionPipeline(BrokenHeadsEngine(depth_m, translation_m),
                                  PerceptionSettings.from_params(hop=FAKE_T, pose_source="head"))
    (result,) = blinding_run(pipeline, [False] * FAKE_T, lambda *args: None)
    return pipeline, result


def test_no_valid_depth_and_an_impossible_pose_are_counted_and_warned():
    for depth_m in (0.0, -1.0, np.nan):
        pipeline, result = run(depth_m, 65504.0)
        status = pipeline.status()
        assert status["frames_without_depth"] == FAKE_T and status["pose_head_implausible"] == 4, status
        assert set(result.warnings) == {"depth_empty", "pose_head_unusable"}
        assert all(not np.isfinite(r.depth).any() for r in result.frames)
        positions = np.array([r.pose.odom_from_camera[:3, 3] for r in result.frames])
        assert np.isfinite(positions).all() and np.abs(positions).max() < 1.0, positions  # held, not 65504 m
        health = NodeHealth(lambda message: None)
        health.record_clip([r.stamp_ns for r in result.frames], 0.01, 0.02, warnings=result.warnings)
        level, message = health.level(state())
        assert level == WARN and "depth_empty" in message and "pose_head_unusable" in message, message


def test_good_heads_warn_of_nothing():
    pipeline, result = run(2.0, 0.4)
    assert result.warnings == {} and pipeline.status()["frames_without_depth"] == 0
    assert pipeline.status()["pose_head_implausible"] == 0


def test_the_robots_masks_are_kept_for_the_last_two_image_sizes(monkeypatch):
    """exclude_boxes' masks were cached for every input size ever seen (500 sizes: 170 MB), never evicted. A clip
    asks for two sizes (the working image's and, with depth at camera resolution, the camera's): both stay."""
    from fourds_ros.perception import pipeline as module

    pipeline = PerceptionPipeline(BlindingEngine(), PerceptionSettings.from_params(
        hop=FAKE_T, exclude_boxes=[0.0, 0.75, 1.0, 1.0]))
    for width in range(64, 96, 4):
        size = (48, width)
        excluded = pipeline._excluded_pixels(size, pipeline.preprocess.pixel_map(size))
        off_robot = pipeline._off_robot_pixels(size)
        assert excluded.any() and off_robot.shape == size and not off_robot.all()
    assert list(pipeline._excluded) == list(pipeline._off_robot) == [(48, 88), (48, 92)]
    made = []
    monkeypatch.setattr(module, "excluded_input_pixels", lambda *args: made.append(args[1]))
    for _ in range(4):  # the two sizes of every clip: computed once each, not once a call
        pipeline._off_robot_pixels((36, 48))
        pipeline._off_robot_pixels((72, 96))
    assert made == [(36, 48), (72, 96)]
