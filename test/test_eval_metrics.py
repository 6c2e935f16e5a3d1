"""Metric functions against hand-computed cases (TAP-Vid worked examples included), the geometric
track ground truth, evo pose metrics and the OpenCV peers on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import transforms3d

from fourds_ros.evaluation.metrics import (depth_edge_mask, depth_errors, geometric_tracks, pck, pose_errors,
                                           tapvid_metrics)
from fourds_ros.evaluation.peers import constant_depth

from .conftest import SHARED_DATA, require


# ------------------------------------------------------------------------------------ depth
def test_depth_errors_hand_computed():
    gt = np.array([[1.0, 2.0], [4.0, np.nan]], np.float32)
    pred = np.array([[1.0, 3.0], [2.0, 5.0]], np.float32)
    m = depth_errors(pred, gt)
    # valid: (1,1), (3,2), (2,4); abs rel = (0 + 0.5 + 0.5) / 3; rmse = sqrt((0 + 1 + 4) / 3)
    assert m["abs_rel"] == pytest.approx(1.0 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(5 / 3))
    # ratios 1, 1.5, 2 -> only the first is < 1.25
    assert m["delta1"] == pytest.approx(1 / 3)
    assert m["valid_pixels"] == 3


def test_depth_median_scaling_removes_global_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1, 4, (20, 30)).astype(np.float32)
    m = depth_errors(gt * 0.3, gt, median_scale=True)
    assert m["abs_rel"] == pytest.approx(0, abs=1e-6) and m["delta1"] == 1.0
    assert m["scale"] == pytest.approx(1 / 0.3, rel=1e-5)
    metric = depth_errors(gt * 0.3, gt, median_scale=False)
    assert metric["abs_rel"] == pytest.approx(0.7, rel=1e-5) and metric["delta1"] == 0.0


def test_depth_prediction_is_resized_to_gt():
    gt = np.full((8, 8), 2.0, np.float32)
    m = depth_errors(np.full((2, 2), 2.0, np.float32), gt)
    assert m["abs_rel"] == pytest.approx(0) and m["valid_pixels"] == 64


def test_depth_prediction_of_a_centre_crop_lands_in_its_window():
    """A 4x4 prediction of the central 8x8 of a 16x8 image (K of the crop, scale 0.5): GT pixels
    outside the window are not scored, inside they sample the right prediction pixel."""
    gt_K = np.array([[20.0, 0, 7.5], [0, 20, 3.5], [0, 0, 1]])
    # crop x in [4, 12), then scale by 0.5: c_pred = 0.5 * (c_in - 4 + 0.5) - 0.5
    A = np.array([[0.5, 0, 0.5 * (0.5 - 4) - 0.5], [0, 0.5, 0.5 * 0.5 - 0.5], [0, 0, 1]])
    pred_K = A @ gt_K
    pred = np.arange(16, dtype=np.float32).reshape(4, 4) + 1
    from fourds_ros.evaluation.metrics import resize_depth

    out = resize_depth(pred, (8, 16), pred_K, gt_K)
    assert np.isnan(out[:, :3]).all() and np.isnan(out[:, 13:]).all()
    assert out[0, 4] == pytest.approx(1.0) and out[7, 11] == pytest.approx(16.0)
    gt = np.where(np.isfinite(out), out, 5.0).astype(np.float32)
    m = depth_errors(pred, gt, pred_K=pred_K, gt_K=gt_K)
    assert m["abs_rel"] == pytest.approx(0, abs=1e-6) and m["valid_pixels"] == int(np.isfinite(out).sum())


def test_depth_edge_erosion_excludes_discontinuities():
    gt = np.ones((20, 20), np.float32)
    gt[:, 10:] = 3.0
    edge = depth_edge_mask(gt, erode_px=2)
    assert edge[:, 7:13].all() and not edge[:, :7].any() and not edge[:, 13:].any()
    pred = gt.copy()
    pred[:, 8:12] = 2.0  # wrong only near the edge (misregistration-like)
    assert depth_errors(pred, gt)["abs_rel"] > 0.05
    assert depth_errors(pred, gt, erode_px=2)["abs_rel"] == pytest.approx(0)


def test_depth_without_valid_pixels_is_none():
    assert depth_errors(np.ones((4, 4)), np.full((4, 4), np.nan)) is None


# ------------------------------------------------------------------------------------ TAP-Vid
def _tracks(n=4, t=5, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(20, 200, (n, t, 2))
    return xy, np.zeros((n, t), bool), np.zeros(n, int)


def test_tapvid_perfect():
    xy, occ, q = _tracks()
    m = tapvid_metrics(q, occ, xy, occ, xy)
    assert m["aj"] == 1.0 and m["delta_avg"] == 1.0 and m["oa"] == 1.0
    assert m["evaluated"] == 4 * 4  # query frame itself excluded


def test_tapvid_shifted_by_3px():
    xy, occ, q = _tracks()
    pred = xy + np.array([3.0, 0.0])
    m = tapvid_metrics(q, occ, xy, occ, pred)
    # within 4, 8, 16 px but not 1, 2: 3 of 5 thresholds
    assert m["delta_avg"] == pytest.approx(0.6)
    assert m["jaccard_1"] == 0.0 and m["jaccard_2"] == 0.0 and m["jaccard_4"] == 1.0
    assert m["aj"] == pytest.approx(0.6)
    assert m["oa"] == 1.0


def test_tapvid_shift_is_measured_at_256():
    xy, occ, q = _tracks()
    # 3 px at 512x512 is 1.5 px at 256x256: within 2, 4, 8, 16
    m = tapvid_metrics(q, occ, xy * 2, occ, xy * 2 + np.array([3.0, 0]), image_size=(512, 512))
    assert m["delta_avg"] == pytest.approx(0.8)


def test_tapvid_occluded_worked_example():
    # One track, 5 frames, query at t=0. GT occluded at t=3, 4. Prediction exact where visible,
    # says visible at t=3 (wrong) and occluded at t=4 (right).
    gt_xy = np.zeros((1, 5, 2)) + 100
    gt_occ = np.array([[False, False, False, True, True]])
    pred_occ = np.array([[False, False, False, False, True]])
    m = tapvid_metrics(np.array([0]), gt_occ, gt_xy, pred_occ, gt_xy.copy())
    # evaluation frames t=1..4: OA = 3/4; delta over GT-visible t=1,2 -> 1.0
    assert m["oa"] == pytest.approx(0.75)
    assert m["delta_avg"] == 1.0
    # Jaccard: TP=2 (t=1,2), GT positives=2, FP=1 (visible predicted where GT occluded) -> 2/3
    assert m["aj"] == pytest.approx(2 / 3)


def test_tapvid_predicting_everything_occluded():
    xy, occ, q = _tracks()
    m = tapvid_metrics(q, occ, xy, np.ones_like(occ), xy)
    assert m["aj"] == 0.0 and m["oa"] == 0.0
    assert m["delta_avg"] == 1.0  # position accuracy ignores predicted occlusion


def test_pck_hand_computed():
    gt = np.zeros((1, 3, 2))
    pred = np.array([[[1.0, 0], [5.0, 0], [100.0, 0]]])
    vis = np.array([[True, True, False]])
    m = pck(pred, gt, vis, mask_area=np.array([400.0]))  # threshold 0.2 * 20 = 4 px
    assert m["pck"] == 0.5 and m["points"] == 2 and m["pck_3px"] == 0.5


# ------------------------------------------------------------------------------ geometric GT
def _look_at_poses(n):
    poses = []
    for i in range(n):
        T = np.eye(4)
        T[:3, :3] = transforms3d.euler.euler2mat(0, np.radians(2 * i), 0)
        T[:3, 3] = [np.cos(0.3 * i), 0.5 * np.sin(0.3 * i), 0.05 * i]  # not collinear: Sim(3) is defined
        poses.append(T)
    return poses


def test_geometric_tracks_match_projection_and_detect_occlusion():
    K = np.array([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]])
    h, w = 48, 64
    poses = [np.eye(4), np.eye(4), np.eye(4)]
    poses[1][:3, 3] = [0.1, 0, 0]  # camera moves 10 cm right: a point at 2 m shifts 5 px left
    wall = np.full((h, w), 2.0, np.float32)
    occluder = wall.copy()
    occluder[:, :20] = 0.5  # frame 2: something near the camera covers the left part
    depths = [wall, wall, occluder]
    gt = geometric_tracks(np.array([[32.0, 24.0], [10.0, 24.0], [40.0, 10.0]]), np.array([0, 0, 0]),
                          depths, poses, K)
    assert gt["valid"].all()
    np.testing.assert_allclose(gt["xy"][0, 1], [27.0, 24.0], atol=1e-6)
    np.testing.assert_allclose(gt["xy"][:, 2], [[32, 24], [10, 24], [40, 10]], atol=1e-6)
    assert not gt["occluded"][:, :2].any()
    assert gt["occluded"][1, 2] and not gt["occluded"][0, 2] and not gt["occluded"][2, 2]


def test_geometric_tracks_out_of_view_and_missing_depth():
    K = np.array([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]])
    depth = np.full((48, 64), 1.0, np.float32)
    depth[0, 0] = np.nan
    moved = np.eye(4)
    moved[:3, 3] = [1.0, 0, 0]  # 1 m right at 1 m depth: everything leaves the 64-px image
    gt = geometric_tracks(np.array([[32.0, 24.0], [0.0, 0.0]]), np.array([0, 0]), [depth, depth],
                          [np.eye(4), moved], K)
    assert gt["valid"].tolist() == [True, False]
    assert gt["occluded"][0, 1]


def test_a_depth_hole_leaves_visibility_unknown_and_unscored():
    """A Kinect sees nothing on dark, shiny or oblique surfaces: a static point that projects into
    such a hole is in view, but the ground truth cannot tell whether it is visible. Scored as
    occluded, every tracker that (rightly) keeps following it was marked wrong there."""
    K = np.array([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]])
    wall = np.full((48, 64), 2.0, np.float32)
    holed = wall.copy()
    holed[20:28, 28:36] = 0.0  # frame 1: no depth where the first point lands
    moved = np.eye(4)
    moved[:3, 3] = [-0.1, 0, 0]  # every point shifts 5 px right
    gt = geometric_tracks(np.array([[32.0, 24.0], [10.0, 10.0]]), np.array([0, 0]), [wall, wall, holed],
                          [np.eye(4), moved, np.eye(4)], K)
    assert gt["unknown"].tolist() == [[False, False, True], [False, False, False]]
    assert gt["occluded"][0, 2]  # never a visible label (training reads occluded)
    # A tracker that follows both points exactly and calls them visible everywhere.
    pred_occ = np.zeros((2, 3), bool)
    without = tapvid_metrics(np.zeros(2, int), gt["occluded"], gt["xy"], pred_occ, gt["xy"])
    with_unknown = tapvid_metrics(np.zeros(2, int), gt["occluded"], gt["xy"], pred_occ, gt["xy"],
                                  gt_unknown=gt["unknown"])
    assert without["aj"] < 1.0 and without["oa"] == 0.75  # the hole counted as its mistake
    assert with_unknown["aj"] == 1.0 and with_unknown["oa"] == 1.0 and with_unknown["evaluated"] == 3


# ------------------------------------------------------------------------------------ pose
def test_pose_errors_sim3_invariant_and_detects_noise(tmp_path):
    ref = _look_at_poses(12)
    stamps = [i * 33_000_000 for i in range(12)]
    # Same trajectory in another frame with another scale: ATE and RPE vanish after Sim(3).
    G = np.eye(4)
    G[:3, :3] = transforms3d.euler.euler2mat(0.3, -0.2, 1.0)
    G[:3, 3] = [1, 2, 3]
    est = []
    for T in ref:
        E = G @ T
        E[:3, 3] = G[:3, :3] @ (T[:3, 3] * 2.5) + G[:3, 3]
        est.append(E)
    m = pose_errors(stamps, est, ref, tum_dir=tmp_path, name="est")
    assert m["ate_rmse"] == pytest.approx(0, abs=1e-6)
    assert m["rpe_trans"] == pytest.approx(0, abs=1e-6)
    assert m["rpe_rot_deg"] == pytest.approx(0, abs=1e-4)
    assert m["sim3_scale"] == pytest.approx(1 / 2.5, rel=1e-5)
    assert m["rotation_ratio"] == pytest.approx(1, rel=1e-6)  # turns exactly as the camera did
    lines = (tmp_path / "est.tum").read_text().split("\n")
    assert len([x for x in lines if x.strip()]) == 12 and len(lines[0].split()) == 8
    rng = np.random.default_rng(1)
    noisy = [T.copy() for T in ref]
    for T in noisy:
        T[:3, 3] += rng.normal(0, 0.01, 3)
    m = pose_errors(stamps, noisy, ref)
    assert 0.003 < m["ate_rmse"] < 0.03 and m["rpe_trans"] > 0.003
    # An estimate that moves along the path without turning reports none of the rotation.
    unturned = [np.block([[np.eye(3), T[:3, 3:]], [np.zeros((1, 3)), np.ones((1, 1))]]) for T in ref]
    assert pose_errors(stamps, unturned, ref)["rotation_ratio"] == pytest.approx(0, abs=1e-6)


def test_pose_errors_also_score_the_published_metres_with_a_rigid_alignment():
    """The ATE is taken after a Sim(3) alignment, which forgives any scale: an odometry travelling 2.5x too far
    scored 0, and reports showed only that while the node publishes metric odometry (TUM fr1/rpy read 0.017 m
    where a robot fusing it meets 0.29 m). ate_se3_rmse keeps the metres (a rigid alignment only): 0 for the
    right metres in another frame, and as large as the error of the metres otherwise."""
    ref = _look_at_poses(12)
    stamps = [i * 33_000_000 for i in range(12)]
    G = np.eye(4)
    G[:3, :3] = transforms3d.euler.euler2mat(0.3, -0.2, 1.0)
    G[:3, 3] = [1, 2, 3]
    moved = [G @ T for T in ref]  # the right metres, in another odometry frame
    m = pose_errors(stamps, moved, ref)
    assert m["ate_se3_rmse"] == pytest.approx(0, abs=1e-6) and m["sim3_scale"] == pytest.approx(1, rel=1e-6)
    too_far = [T.copy() for T in moved]
    for T, E in zip(ref, too_far):
        E[:3, 3] = G[:3, :3] @ (T[:3, 3] * 2.5) + G[:3, 3]
    m = pose_errors(stamps, too_far, ref)
    centres = np.array([T[:3, 3] for T in ref])
    spread = np.sqrt(np.mean(np.sum((centres - centres.mean(0)) ** 2, 1)))
    assert m["ate_rmse"] == pytest.approx(0, abs=1e-6)  # Sim(3): scaled away
    assert m["ate_se3_rmse"] == pytest.approx(1.5 * spread, rel=1e-3)  # 2.5x the path about its centre, 1.5x off
    still = [np.eye(4) for _ in ref]  # an estimate that never moved: evo refuses to align it; scored all the same
    assert pose_errors(stamps, still, ref)["ate_se3_rmse"] == pytest.approx(spread, rel=1e-6)


def test_still_camera_ate_bounds_every_estimate():
    ref = _look_at_poses(12)
    stamps = [i * 33_000_000 for i in range(12)]
    centres = np.array([T[:3, 3] for T in ref])
    floor = np.sqrt(np.mean(np.sum((centres - centres.mean(0)) ** 2, 1)))
    rng = np.random.default_rng(3)
    for _ in range(5):  # Sim(3) may shrink any estimate to one point, so none scores above the floor
        noise = [np.eye(4) for _ in ref]
        for E in noise:
            E[:3, 3] = rng.normal(0, 1.0, 3)
        m = pose_errors(stamps, noise, ref)
        assert m["ate_still_camera"] == pytest.approx(floor)
        assert m["ate_rmse"] <= floor + 1e-9
    # The exact trajectory beats the floor by all of it.
    assert pose_errors(stamps, ref, ref)["ate_rmse"] < 1e-6 < floor


def test_an_estimate_that_never_moved_scores_as_the_still_camera():
    """Odometry that held every clip in place (pose_epipolar_hold_unmeasured) has no Sim(3)
    alignment to solve: it scores the still camera's ATE (the best alignment, at scale 0), not None,
    its rotation errors as usual, and every relative step misses the reference's."""
    ref = _look_at_poses(12)
    stamps = [i * 33_000_000 for i in range(12)]
    held = [np.block([[T[:3, :3], np.zeros((3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]]) for T in ref]
    m = pose_errors(stamps, held, ref)
    assert m["ate_rmse"] == pytest.approx(m["ate_still_camera"]) and m["ate_rmse"] > 0.01
    assert m["sim3_scale"] == 0.0 and m["rotation_ratio"] == pytest.approx(1.0)
    assert m["rpe_rot_deg"] == pytest.approx(0.0, abs=1e-6)
    steps = np.linalg.norm(np.diff([T[:3, 3] for T in ref], axis=0), axis=1)
    assert m["rpe_trans"] == pytest.approx(np.sqrt(np.mean(steps ** 2)))
    # a hair of motion along a line (evo refuses it too) is aligned, and scores no worse than still
    nudged = [T.copy() for T in held]
    nudged[5][:3, 3] = 1e-6
    assert pose_errors(stamps, nudged, ref)["ate_rmse"] <= m["ate_rmse"] + 1e-9


def test_degenerate_sim3_is_umeyamas_alignment_where_evo_computes_one():
    from evo.core.geometry import umeyama_alignment

    from fourds_ros.evaluation.metrics import degenerate_sim3

    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 3))
    rotation = transforms3d.euler.euler2mat(0.3, -0.2, 0.5)
    y = 2.5 * x @ rotation.T + [1.0, -2.0, 0.5] + rng.normal(0, 0.01, (20, 3))
    for ours, evos in zip(degenerate_sim3(x, y), umeyama_alignment(x.T, y.T, True)):
        np.testing.assert_allclose(ours, evos, atol=1e-9)


def test_pose_errors_too_short():
    m = pose_errors([0, 1], [np.eye(4)] * 2, [np.eye(4)] * 2)
    assert m["ate_rmse"] is None and "fewer" in m["error"]


# --------------------------------------------------------------------------- real-data peers
def test_lk_peer_on_badja_pck():
    """LK from the first-frame joints scored with PCK@0.2 on the human-annotated frames."""
    from fourds_ros.evaluation.badja import score_badja
    from fourds_ros.evaluation.datasets import load_badja

    src = require(SHARED_DATA / "davis_horsejump-high_badja")
    badja = load_badja(src)
    assert badja["annotated"].tolist() == [0, 2, 7, 8, 18, 26, 36, 39, 47, 49]
    assert badja["joints_xy"].shape == (10, 37, 2) and badja["visible"][0].sum() == 19
    m = score_badja(src)
    assert m["points"] > 50
    # A jumping horse defeats frame-to-frame LK often, but not always: strictly between 0 and 1.
    assert 0.0 < m["pck"] < 1.0
    # perfect predictions (the annotations themselves) score 1.0 through the same code
    def oracle(stamps, images, queries):
        from fourds_ros.evaluation.predictions import Predictions

        p = Predictions()
        for a, f in enumerate(badja["annotated"]):
            ids = np.array(sorted(queries))
            p.tracks[int(f)] = {"ids": ids, "uv": badja["joints_xy"][a, ids], "visible": np.ones(len(ids), bool)}
        return p

    assert score_badja(src, oracle)["pck"] == 1.0


def test_lk_and_orb_vo_against_7scenes_ground_truth():
    """The geometric GT and two independent OpenCV methods agree on real 7-Scenes frames."""
    from fourds_ros.evaluation.bag import decode_image
    from fourds_ros.evaluation.datasets import iter_7scenes
    from fourds_ros.evaluation.peers import lk_tracks, orb_vo
    from fourds_ros.evaluation.predictions import grid_queries

    frames = list(iter_7scenes(require(SHARED_DATA / "7scenes_redkitchen_f000-299"), stride=2, max_frames=20))
    stamps = [f.stamp_ns for f in frames]
    images = {f.stamp_ns: decode_image(f.encoded) for f in frames}
    K = frames[0].K
    queries = grid_queries(stamps[0], 640, 480, 100)
    lk = lk_tracks(stamps, images, queries)
    ids = np.array(sorted(queries))
    gt = geometric_tracks(np.array([queries[i][1:] for i in ids]), np.zeros(len(ids), int),
                          [f.gt_depth for f in frames], [f.gt_pose for f in frames], K)
    pred_xy = np.stack([lk.tracks[s]["uv"] for s in stamps], 1)
    pred_occ = ~np.stack([lk.tracks[s]["visible"] for s in stamps], 1)
    keep = gt["valid"]
    m = tapvid_metrics(np.zeros(keep.sum(), int), gt["occluded"][keep], gt["xy"][keep], pred_occ[keep],
                       pred_xy[keep], image_size=(480, 640))
    assert keep.sum() > 60
    assert 0.3 < m["delta_avg"] < 1.0  # agree roughly (7-Scenes depth is misregistered), never exactly
    vo = orb_vo(stamps, images, K)
    pm = pose_errors(stamps, [vo.poses[s] for s in stamps], [f.gt_pose for f in frames])
    path = sum(np.linalg.norm(frames[i + 1].gt_pose[:3, 3] - frames[i].gt_pose[:3, 3]) for i in range(19))
    assert pm["ate_rmse"] < 0.5 * path  # better than no motion model at all


def test_model_tracker_on_badja(tiny_model_dir):
    """The tracks head as a BADJA tracker: clip-chained over all 50 frames, one track per joint,
    scored by the same PCK code as LK (a random micro model: only the plumbing is checked)."""
    from fourds_ros.evaluation.badja import model_tracker, score_badja
    from fourds_ros.evaluation.datasets import load_badja

    src = require(SHARED_DATA / "davis_horsejump-high_badja")
    badja = load_badja(src)
    tracker = model_tracker(tiny_model_dir)
    ids = np.flatnonzero(badja["visible"][0])
    queries = {int(j): (0, *map(float, badja["joints_xy"][0, j])) for j in ids}
    preds = tracker(list(range(50)), dict(enumerate(badja["frames"])), queries)
    assert sorted(preds.tracks) == list(range(50))
    assert all(len(t["ids"]) == len(ids) and np.isfinite(t["uv"]).all() for t in preds.tracks.values())
    np.testing.assert_allclose(preds.tracks[0]["uv"], badja["joints_xy"][0, ids])
    m = score_badja(src, tracker)
    assert 0.0 <= m["pck"] <= 1.0 and m["points"] > 0


def test_model_tracker_runs_at_the_nodes_hop_and_visibility(tiny_model_dir):
    """`eval --hop 2 --badja` scored BADJA at hop T-1 whatever the hop, and called a joint visible above 0.5
    whatever track_min_visibility said. Now the clips start every hop frames, each joint queried at the
    last frame it was tracked to (the node's chaining); a hop of T, sharing no frame, chains at T-1."""
    from fourds_ros.engine import create_engine
    from fourds_ros.evaluation.badja import model_tracker
    from fourds_ros.evaluation.datasets import load_badja

    engine = create_engine(tiny_model_dir, backend="torch")  # T = 4
    query_frames = []

    class Counting:
        config, spec = engine.config, engine.spec

        def __call__(self, inputs):
            query_frames.append(float(inputs["query_points"][0, 0, 0]))
            return engine(inputs)

    badja = load_badja(require(SHARED_DATA / "davis_horsejump-high_badja"))
    stamps = list(range(20))
    images = {s: badja["frames"][s] for s in stamps}
    ids = np.flatnonzero(badja["visible"][0])
    queries = {int(j): (0, *map(float, badja["joints_xy"][0, j])) for j in ids}
    model_tracker(tiny_model_dir, engine=Counting())(stamps, images, queries)
    assert query_frames == [0.0] * 7  # hop 3: clips at 0, 3, ..., 18
    query_frames.clear()
    at_two = model_tracker(tiny_model_dir, engine=Counting(), hop=2)
    preds = at_two(stamps, images, queries)
    assert at_two.hop == 2 and sorted(preds.tracks) == stamps
    assert query_frames == [0.0] + [1.0] * 8  # clips at 0, 2, ..., 16: queried at the last frame tracked
    assert model_tracker(tiny_model_dir, engine=Counting(), hop=4).hop == 3
    strict = model_tracker(tiny_model_dir, engine=Counting(), track_refinement="none", min_visibility=1.01)
    assert not any(t["visible"].any() for s, t in strict(stamps, images, queries).tracks.items() if s > 0)


def test_flow_tracker_is_lk_wherever_lk_holds_and_the_head_elsewhere(tiny_model_dir):
    """track_refinement flow on BADJA: each joint follows LK from its last position, so while the
    classical LK peer (same window, levels and residual bound) still holds a joint, the two agree
    to float precision; after LK loses it the head's (refined) position takes over, so every joint
    keeps a finite position in every frame, which the LK peer does not move."""
    from fourds_ros.evaluation.badja import model_tracker
    from fourds_ros.evaluation.datasets import load_badja
    from fourds_ros.evaluation.peers import lk_tracks

    badja = load_badja(require(SHARED_DATA / "davis_horsejump-high_badja"))
    stamps = list(range(24))
    images = {s: badja["frames"][s] for s in stamps}
    ids = np.flatnonzero(badja["visible"][0])
    queries = {int(j): (0, *map(float, badja["joints_xy"][0, j])) for j in ids}
    flow = model_tracker(tiny_model_dir, track_refinement="flow")(stamps, images, queries)
    lk = lk_tracks(stamps, images, queries)
    held = np.ones(len(ids), bool)  # joints LK has held in every frame so far
    compared = 0
    for s in stamps[1:]:
        held &= lk.tracks[s]["visible"]
        np.testing.assert_allclose(flow.tracks[s]["uv"][held], lk.tracks[s]["uv"][held], atol=1e-3)
        compared += int(held.sum())
        assert np.isfinite(flow.tracks[s]["uv"]).all()
    assert compared > 100 and not held.all()  # most joints compared, and LK lost some on this clip
    counts = flow.status  # what decided each step: LK, or the head where LK lost the joint
    assert counts["track_steps"] == len(ids) * (len(stamps) - 1)
    assert 0 < counts["track_steps_lk_lost"] < counts["track_steps"]
    assert 0 <= counts["track_steps_head_taken"] <= counts["track_steps_lk_lost"]
    # track_lk_check_px reaches BADJA's tracker: the forward-backward check refuses more steps.
    checked = model_tracker(tiny_model_dir, track_refinement="flow", lk_check_px=1.0)(stamps, images, queries)
    assert checked.status["track_steps"] == counts["track_steps"]
    assert checked.status["track_steps_lk_lost"] > counts["track_steps_lk_lost"]


def test_orb_vo_keeps_the_steps_of_a_turning_camera():
    """TUM fr1/rpy turns 1-4 degrees a step and moves millimetres: with recoverPose's default
    distance limit (50 baselines) almost no point counted as in front of both cameras, so steps with
    hundreds of inliers were refused and the camera held still (24 of 79 steps; the peer turned
    0.71x as far as the camera). The peer now keeps them and turns as far as the camera."""
    from fourds_ros.evaluation.datasets import iter_dataset
    from fourds_ros.evaluation.peers import orb_vo

    frames = list(iter_dataset("tum", require(SHARED_DATA / "tum_fr1_rpy_f000-079"), max_frames=30))
    stamps = [f.stamp_ns for f in frames]
    vo = orb_vo(stamps, {f.stamp_ns: f.rgb() for f in frames}, frames[0].K)
    assert vo.vo_failures == 0
    pm = pose_errors(stamps, [vo.poses[s] for s in stamps], [f.gt_pose for f in frames])
    assert 0.85 < pm["rotation_ratio"] < 1.15, pm


def test_a_reading_out_of_the_nodes_range_is_scored_at_its_bound():
    """The node publishes depth below min_depth as -inf and above max_depth as +inf (REP 117). Scored as no
    reading, every such pixel left the method's AbsRel (a team's max_depth 2 m took the desk's 0.227 to 0.074)
    while the constant was scored on every pixel; now it is scored at the range's bound."""
    gt = np.full((4, 4), 3.0)
    pred = np.full((4, 4), 3.0)
    pred[:2] = np.inf  # beyond a max_depth of 2 m
    assert depth_errors(pred, gt)["abs_rel"] == 0.0  # dropped: a perfect score on half the pixels
    scored = depth_errors(pred, gt, pred_range=(0.5, 2.0))
    assert scored["valid_pixels"] == 16 and scored["abs_rel"] == pytest.approx(0.5 * (1.0 / 3.0))
    pred[:2] = -np.inf  # closer than a min_depth of 0.5 m
    assert depth_errors(pred, gt, pred_range=(0.5, 2.0))["abs_rel"] == pytest.approx(0.5 * (2.5 / 3.0))


def test_the_constant_depth_is_scored_on_the_methods_frames_and_pixels():
    """The method's frames without depth (a blind or shed frame) and pixels without (NaN) left its mean and
    not the constant's: 40 of TUM's worst frames blank read the ratio 0.54 for 0.98. Now the constant answers
    the method's stamps only, NaN where the method's depth is, so both are scored on the same pixels."""
    from fourds_ros.evaluation.bag import BagData
    from fourds_ros.evaluation.predictions import Predictions
    from fourds_ros.evaluation.report import score_depth

    stamps = [1, 2, 3, 4]
    gt = {s: np.full((8, 8), float(s)) for s in stamps}
    bag = BagData(Path("bag"), stamps=stamps, gt_depth=gt, K={s: np.eye(3) for s in stamps})
    model = Predictions(depth={1: np.full((8, 8), 1.0, np.float32), 2: np.full((8, 8), np.nan, np.float32),
                               3: np.full((8, 8), 3.0, np.float32)})
    model.depth[3][:4] = np.nan
    constant = constant_depth(stamps, gt, like=model)
    assert sorted(constant.depth) == [1, 2, 3]  # stamp 4: no depth from the method, no pair
    assert np.isnan(constant.depth[2]).all() and np.isnan(constant.depth[3][:4]).all()
    assert np.isfinite(constant.depth[3][4:]).all()
    ours, theirs = score_depth(bag, model)[0], score_depth(bag, constant)[0]
    assert ours["frames"] == theirs["frames"] == 2
    alone = constant_depth(stamps, gt, shape=(2, 2), like=Predictions())  # a method with no depth: every frame
    assert sorted(alone.depth) == stamps


def test_the_dds_path_reads_the_nodes_depth_range_from_its_parameters():
    from fourds_ros.evaluation.replay import node_depth_range

    assert node_depth_range(None) == (0.01, 100.0)
    assert node_depth_range({"max_depth": 2.0, "min_depth": 0.3}) == (0.3, 2.0)


# Behaviours no test caught breaking (session 63's mutation review of evaluation/: each fails on its mutant).


def test_median_scaling_is_the_median_ratio():
    """The headline depth score scales by the median ratio: one factor on every pixel cannot tell it from the mean."""
    gt = np.full((10, 10), 2.0, np.float32)
    pred = np.full((10, 10), 1.0, np.float32)
    pred[:, :2] = 10.0  # a fifth of the pixels far off
    m = depth_errors(pred, gt, median_scale=True)
    assert m["scale"] == 2.0 and m["abs_rel"] == pytest.approx(1.8)


def test_constant_peer_is_the_median_depth():
    """Every depth target is judged against this peer: the recording's median true depth, not its mean."""
    gt = {0: np.array([[1.0, 1.0, 1.0, 10.0]], np.float32)}
    assert constant_depth([0], gt).depth[0][0, 0] == 1.0


def test_tum_files_are_stamped_in_seconds(tmp_path):
    """The TUM trajectory format (evo) wants seconds."""
    stamps = [1_305_031_102_175_304_000 + i * 33_000_000 for i in range(4)]
    poses = [np.eye(4) for _ in stamps]
    for i, t in enumerate(poses):
        t[:3, 3] = [np.cos(i), np.sin(i), 0.1 * i]
    pose_errors(stamps, poses, poses, tum_dir=tmp_path, name="est")
    first = float((tmp_path / "est.tum").read_text().split()[0])
    assert first == pytest.approx(stamps[0] / 1e9, abs=1e-3)


def test_resize_depth_blanks_rows_outside_a_vertical_crop():
    """A portrait (or rotated) camera's rows outside the model's crop are not predicted: never scored."""
    from fourds_ros.evaluation.metrics import resize_depth

    gt_k = np.array([[20.0, 0, 3.5], [0, 20, 7.5], [0, 0, 1]])
    a = np.array([[0.5, 0, -0.25], [0, 0.5, 0.5 * (0.5 - 4) - 0.5], [0, 0, 1]])
    out = resize_depth(np.full((4, 4), 2.0, np.float32), (16, 8), a @ gt_k, gt_k)
    assert np.isnan(out[:3]).all() and np.isnan(out[13:]).all() and np.isfinite(out[5:11]).all()


def test_ground_truth_depth_in_millimetres_is_read_in_metres():
    """A bag's 16UC1 /gt/depth holds millimetres (REP 118); scored in metres."""
    from types import SimpleNamespace

    from fourds_ros.evaluation.bag import image_from_msg

    msg = SimpleNamespace(height=1, width=2, step=4, encoding="16UC1", is_bigendian=0,
                          data=np.array([1500, 2000], "<u2").view(np.uint8))
    np.testing.assert_allclose(image_from_msg(msg), [[1.5, 2.0]])


def test_geometric_tracks_read_the_query_depth_where_the_depth_camera_sees_it():
    """With a depth camera of its own intrinsics (depth_K), the query's depth was read at the RGB pixel's place
    in the depth image: another point (here 1 m instead of 4 m), or past its edge (no track)."""
    k = np.array([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]])  # RGB 64x48
    depth_k = np.array([[50.0, 0, 16], [0, 50, 12], [0, 0, 1]])  # depth camera 32x24, same centre
    depth = np.full((24, 32), 4.0, np.float32)
    depth[:, 16:] = 1.0  # the right half of the view is 1 m away, the left 4 m
    moved = np.eye(4)
    moved[:3, 3] = [0.1, 0, 0]  # 10 cm right: a 4 m point moves 2.5 px left
    gt = geometric_tracks(np.array([[20.0, 10.0], [40.0, 24.0]]), np.array([0, 0]), [depth, depth],
                          [np.eye(4), moved], k, depth_K=depth_k)
    assert gt["valid"].all()
    assert gt["xy"][0, 1, 0] == pytest.approx(17.5) and gt["xy"][1, 1, 0] == pytest.approx(30.0)
