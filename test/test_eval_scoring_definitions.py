"""How evaluation scores a method, pinned where a wrong number would otherwise pass: TAP-Vid's per-axis rescale, lost
tracks and missing predictions, each frame's own PCK threshold, depth-edge erosion in both directions, frame weights
in the depth mean, 0 as no reading, /tf out of stamp order, and the pose over starts of a camera that never turns."""

from __future__ import annotations

import numpy as np
import pytest

from fourds_ros.evaluation.metrics import (depth_edge_mask, depth_errors, mean_depth_errors, pck, pose_errors,
                                           tapvid_metrics)


def test_tapvid_rescales_x_by_width_and_y_by_height():
    """A 640x480 camera: 4 px along x is 1.6 px at 256 (within 2), 4 px along y is 2.13 px (not within 2)."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(20, 400, (4, 5, 2))
    occ, q = np.zeros((4, 5), bool), np.zeros(4, int)
    along_x = tapvid_metrics(q, occ, xy, occ, xy + [4.0, 0.0], image_size=(480, 640))
    along_y = tapvid_metrics(q, occ, xy, occ, xy + [0.0, 4.0], image_size=(480, 640))
    assert along_x["delta_avg"] == pytest.approx(0.8) and along_x["jaccard_2"] == 1.0
    assert along_y["delta_avg"] == pytest.approx(0.6) and along_y["jaccard_2"] == 0.0


def test_a_lost_track_nan_is_never_within_a_threshold():
    """A tracker that lost a point (NaN position) but still calls it visible is wrong there, not exact."""
    xy = np.full((1, 3, 2), 50.0)
    occ = np.zeros((1, 3), bool)
    pred = xy.copy()
    pred[0, 1:] = np.nan
    m = tapvid_metrics(np.array([0]), occ, xy, occ, pred)
    assert m["delta_avg"] == 0.0 and m["aj"] == 0.0


def test_pck_counts_a_missing_prediction_as_wrong():
    """score_badja fills frames a tracker did not reach with NaN: those joints are misses, not hits."""
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[1.0, 0.0], [np.nan, np.nan]]])
    m = pck(pred, gt, np.ones((1, 2), bool), mask_area=np.array([400.0]))
    assert m["pck"] == 0.5 and m["pck_3px"] == 0.5


def test_score_badja_of_a_tracker_that_returns_nothing_is_zero():
    from fourds_ros.evaluation.badja import score_badja
    from fourds_ros.evaluation.predictions import Predictions

    joints = np.full((3, 4, 2), 40.0)
    clip = {"frames": [np.zeros((80, 80, 3), np.uint8)] * 3, "annotated": np.array([0, 1, 2]),
            "joints_xy": joints, "visible": np.ones((3, 4), bool), "mask_area": np.full(3, 400.0),
            "area_source": "mask"}
    out = score_badja(clip, lambda stamps, images, queries: Predictions(name="none"))
    assert out["pck"] == 0.0 and out["points"] == 8


def test_edge_erosion_finds_horizontal_edges_too():
    """A table's front edge or a floor/wall seam runs along the rows: eroded like a vertical one."""
    gt = np.ones((20, 20), np.float32)
    gt[10:, :] = 3.0
    edge = depth_edge_mask(gt, erode_px=2)
    assert edge[7:13, :].all() and not edge[:7].any() and not edge[13:].any()
    pred = gt.copy()
    pred[8:12, :] = 2.0
    assert depth_errors(pred, gt, erode_px=2)["abs_rel"] == pytest.approx(0)


def test_every_frame_weighs_the_same_in_the_depth_mean():
    """A frame with few valid pixels (a close wall, a Kinect hole) counts as much as a full one."""
    frames = [{"abs_rel": 0.1, "rmse": 1.0, "delta1": 1.0, "valid_pixels": 1000},
              {"abs_rel": 0.3, "rmse": 3.0, "delta1": 0.0, "valid_pixels": 10}]
    m = mean_depth_errors(frames + [None])
    assert m["abs_rel"] == pytest.approx(0.2) and m["delta1"] == 0.5 and m["frames"] == 2


def test_pose_over_starts_summary_of_a_camera_that_never_turns():
    """A camera on a rail (or a simulated dolly) never rotates: rotation_ratio is None for every start, and the
    mean over starts must say so instead of raising after every start's inference has run."""
    from fourds_ros.evaluation.pose_starts import _summary

    stamps = [int(i * 1e8) for i in range(10)]
    ref = []
    for i in range(10):
        t = np.eye(4)
        t[:3, 3] = [0.1 * i, 0.02 * (i % 3), 0.0]
        ref.append(t)
    est = [r.copy() for r in ref]
    for e in est:
        e[:3, 3] *= 0.5
    e = pose_errors(stamps, est, ref)
    assert e["rotation_ratio"] is None
    s = _summary([e, e, None])
    assert s["rotation_ratio_mean"] is None and s["ate_mean"] == pytest.approx(e["ate_rmse"]) and s["scored"] == 2


def test_a_frame_without_a_pose_is_unknown_not_occluded():
    """A dropped /gt/pose message: nowhere to project the points, so no method is scored there."""
    from fourds_ros.evaluation.metrics import geometric_tracks

    k = np.array([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]])
    wall = np.full((48, 64), 2.0, np.float32)
    gt = geometric_tracks(np.array([[30.0, 20.0], [10.0, 10.0]]), np.array([0, 0]), [wall, wall, wall],
                          [np.eye(4), None, np.eye(4)], k)
    assert gt["valid"].all() and gt["unknown"][:, 1].all() and not gt["unknown"][:, 2].any()
    # a method that calls the points visible throughout loses nothing on frame 1
    m = tapvid_metrics(np.array([0, 0]), gt["occluded"], np.nan_to_num(gt["xy"]), np.zeros((2, 3), bool),
                       np.nan_to_num(gt["xy"]), image_size=(48, 64), gt_unknown=gt["unknown"])
    assert m["oa"] == 1.0 and m["aj"] == 1.0


def test_pck_threshold_is_each_frames_own_mask_area():
    """The animal grows from 10x10 to 100x100 px: a 5 px miss is wrong on the small frame (threshold 2 px) and
    right on the large one (20 px); the area of another annotated frame would judge both alike."""
    from fourds_ros.evaluation.badja import score_badja
    from fourds_ros.evaluation.predictions import Predictions

    joints = np.full((3, 4, 2), 40.0)
    clip = {"frames": [np.zeros((80, 80, 3), np.uint8)] * 3, "annotated": np.array([0, 1, 2]),
            "joints_xy": joints, "visible": np.ones((3, 4), bool), "mask_area": np.array([100.0, 100.0, 10000.0]),
            "area_source": "mask"}

    def off_by_5(stamps, images, queries):
        preds = Predictions(name="off")
        for f in (1, 2):
            preds.tracks[f] = {"ids": np.arange(4), "uv": joints[f] + [5.0, 0.0], "visible": np.ones(4, bool)}
        return preds

    out = score_badja(clip, off_by_5)
    assert out["pck"] == 0.5 and out["per_frame"][1]["pck"] == 0.0 and out["per_frame"][2]["pck"] == 1.0


def test_a_transform_tree_fed_out_of_stamp_order_interpolates_as_if_sorted():
    """/tf from two publishers (or a bag read in receive order) arrives out of stamp order: the lookup between
    two samples still interpolates between the samples around the stamp."""
    from fourds_ros.evaluation.transform_tree import TransformTree

    def moved(x):
        t = np.eye(4)
        t[0, 3] = x
        return t

    tree = TransformTree()
    for stamp, x in [(300, 3.0), (100, 1.0), (200, 2.0), (0, 0.0)]:
        tree.add("odom", "camera", stamp, moved(x))
    assert tree.lookup("odom", "camera", 150)[0, 3] == pytest.approx(1.5)
    assert tree.lookup("odom", "camera", 250)[0, 3] == pytest.approx(2.5)


def test_zero_ground_truth_is_no_reading():
    """Kinect / TUM / 7-Scenes store "no depth" as 0: such a pixel is not scored (it would divide AbsRel by 0)."""
    gt = np.array([[1.0, 2.0], [0.0, 4.0]], np.float32)
    m = depth_errors(np.full((2, 2), 2.0, np.float32), gt)
    assert m["valid_pixels"] == 3 and m["abs_rel"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)


def test_a_twenty_percent_depth_step_is_an_edge_and_a_gentle_slope_is_not():
    """rel_jump 0.1: a 2.0 -> 2.4 m step (a box on a desk) is eroded; a floor rising 1 % per pixel is not."""
    step = np.full((10, 10), 2.0, np.float32)
    step[:, 5:] = 2.4
    assert depth_edge_mask(step, 0)[:, 4:6].all()
    slope = (2.0 * 1.01 ** np.arange(10, dtype=np.float32))[None].repeat(10, 0)
    assert not depth_edge_mask(slope, 0).any()
