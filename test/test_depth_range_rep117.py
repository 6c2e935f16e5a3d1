"""The published depth's out-of-range readings follow REP 117 (by way of REP 118): -inf closer than
min_depth, +inf beyond max_depth, NaN only where there is no depth. They were all NaN, which a
consumer reads as an error, not as "nothing within range". depth/points, the tracks' xyz, the pose
and the evaluation still take none of them."""

from types import SimpleNamespace

import numpy as np
import pytest

from fourds_ros.model import DepthHeadConfig, ModelConfig
from fourds_ros.perception import PerceptionPipeline, PerceptionSettings

T, HW = 4, 32
MIN_DEPTH, MAX_DEPTH = 0.5, 10.0
# The depth head's columns, in metres: too close, beyond range, none (NaN, 0, -1: not positive), in range.
TOO_CLOSE, BEYOND, IN_RANGE = slice(0, 8), slice(8, 16), slice(24, 32)
NONE = slice(16, 24)


class BandedDepthEngine:
    """A depth head only (no canonical focal: its metres are published as they are), the same bands
    on every frame: 0.2 m, 20 m, no depth, 3 m."""

    def __init__(self):
        self.config = ModelConfig(size="micro", num_frames=T, image_size=(HW, HW), patch_size=(2, 8, 8),
                                  heads={"depth": DepthHeadConfig(32, 2)})
        self.spec = SimpleNamespace(input_shapes={"video": (1, T, HW, HW, 3)}, num_queries=0)

    def __call__(self, inputs):
        depth = np.empty((1, T, HW, HW), np.float32)
        depth[..., TOO_CLOSE], depth[..., BEYOND], depth[..., IN_RANGE] = 0.2, 20.0, 3.0
        depth[..., 16:19], depth[..., 19:22], depth[..., 22:24] = np.nan, 0.0, -1.0
        return {"depth": depth}


def published(**params) -> list:
    """The frame results of one clip of textured 64x64 frames (fx 64: 32 model pixels)."""
    settings = PerceptionSettings.from_params(hop=T - 1, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH, **params)
    pipe = PerceptionPipeline(BandedDepthEngine(), settings)
    rng = np.random.default_rng(0)
    k = np.array([[64.0, 0, 31.5], [0, 64.0, 31.5], [0, 0, 1]])
    results = [r for i in range(T) for r in pipe.push(rng.integers(0, 255, (64, 64, 3), np.uint8), i * 10**8, "cam", k)]
    assert len(results) == T
    return results


def bands(depth: np.ndarray) -> dict[str, np.ndarray]:
    """The bands of a depth image at the model's 32 columns or any multiple of them."""
    step = depth.shape[1] // HW
    return {name: depth[:, band.start * step:band.stop * step]
            for name, band in (("too_close", TOO_CLOSE), ("beyond", BEYOND), ("none", NONE), ("in_range", IN_RANGE))}


@pytest.mark.parametrize("resolution", ["model", "camera"])
def test_published_depth_is_minus_inf_too_close_plus_inf_beyond_and_nan_where_there_is_none(resolution):
    for r in published(depth_output_resolution=resolution):
        b = bands(r.depth)
        assert r.depth.dtype == np.float32 and r.depth.shape == ((32, 32) if resolution == "model" else (64, 64))
        assert np.all(np.isneginf(b["too_close"])), "below min_depth: -inf (REP 117: too close)"
        assert np.all(np.isposinf(b["beyond"])), "above max_depth: +inf (REP 117: no return within range)"
        assert np.all(np.isnan(b["none"])), "no depth from the model (NaN, 0, negative): NaN"
        assert np.all(b["in_range"] == np.float32(3.0))


def test_the_range_is_in_the_published_metres_under_a_scale():
    """metric_scale_factor 0.1: 20 m -> 2 m is in range, 3 m -> 0.3 m is too close, 0.2 m still."""
    for r in published(metric_scale_factor=0.1):
        b = bands(r.depth)
        assert np.all(np.isneginf(b["too_close"])) and np.all(np.isneginf(b["in_range"]))
        assert np.allclose(b["beyond"], 2.0) and np.all(np.isnan(b["none"]))


def test_depth_messages_carry_the_infinities_and_the_cloud_only_depth_within_range():
    """depth/image is the image as published, infinities included; depth/points has neither them
    nor NaN: the in-range pixels only (every 2nd of a 32x32 image: 16 rows x 4 columns)."""
    from fourds_ros.ros import convert

    r = published()[-1]
    msg = convert.depth_image(r.depth, r.stamp_ns, r.frame_id)
    assert msg.encoding == "32FC1"
    image = np.frombuffer(bytes(msg.data), "<f4").reshape(msg.height, msg.width)
    b = bands(image)
    assert np.all(np.isneginf(b["too_close"])) and np.all(np.isposinf(b["beyond"])) and np.all(np.isnan(b["none"]))
    cloud = convert.read_cloud(convert.depth_points(r.depth, r.depth_k, r.depth_rgb, 2, r.stamp_ns, r.frame_id))
    xyz = np.stack([cloud[c] for c in "xyz"], axis=1)
    assert len(xyz) == 16 * 4 and np.all(np.isfinite(xyz)) and np.allclose(xyz[:, 2], 3.0)


def test_a_blind_frame_and_the_robots_own_body_stay_nan_beside_marked_depth():
    """No measurement, not a range reading: a blind frame's depth and excluded pixels are NaN, while
    the frames and pixels beside them are marked."""
    pipe = PerceptionPipeline(BandedDepthEngine(), PerceptionSettings.from_params(
        hop=T - 1, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH))
    rng = np.random.default_rng(0)
    k = np.array([[64.0, 0, 31.5], [0, 64.0, 31.5], [0, 0, 1]])
    frames = [np.zeros((64, 64, 3), np.uint8) if i == 1 else rng.integers(0, 255, (64, 64, 3), np.uint8)
              for i in range(T)]
    results = [r for i, rgb in enumerate(frames) for r in pipe.push(rgb, i * 10**8, "cam", k)]
    assert np.isnan(results[1].depth).all()
    assert all(np.isposinf(bands(r.depth)["beyond"]).all() for i, r in enumerate(results) if i != 1)
    r = published(exclude_boxes=[0.0, 0.0, 0.125, 1.0])[-1]  # the left 4 of the 8 too-close columns
    assert np.isnan(r.depth[:, :4]).all() and np.isneginf(r.depth[:, 4:8]).all()


def test_the_evaluation_scores_the_marked_depth_as_it_scored_nan():
    """Offline evaluation stores the published depth (result_to_predictions); its metrics take only
    finite pixels, so -inf / +inf count as NaN did: the same errors, the same pixels."""
    from fourds_ros.evaluation.metrics import depth_errors
    from fourds_ros.evaluation.offline import result_to_predictions
    from fourds_ros.evaluation.predictions import Predictions

    r = published()[-1]
    preds = Predictions(name="fourds", frames_in=1)
    result_to_predictions(preds, r)
    stored = preds.depth[r.stamp_ns]
    assert np.isinf(stored).any()
    as_nan = np.where(np.isinf(stored), np.float32(np.nan), stored)
    gt = np.random.default_rng(1).uniform(0.1, 30.0, (48, 64)).astype(np.float32)
    gt_k = np.array([[96.0, 0, 31.5], [0, 96.0, 23.5], [0, 0, 1]])
    for kw in ({}, {"median_scale": True}, {"pred_K": preds.depth_K[r.stamp_ns], "gt_K": gt_k}):
        marked, plain = depth_errors(stored, gt, **kw), depth_errors(as_nan, gt, **kw)
        assert marked == plain and marked["valid_pixels"] > 0
