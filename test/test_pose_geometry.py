"""Pose from geometry (fourds_ros/perception/pose_geometry.py) on synthetic clips with known motion:
a known depth map and K, 3-D points projected with known per-frame poses plus pixel noise; and the
fusion on the HoloLens walk sample shipped in samples/."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from fourds_ros.perception.pose_geometry import (RELINK_PARALLAX_PX, back_project, clip_pose, fuse, kabsch_rotation,
                                                  relink_lost_frames, smooth_clip_motion, solve_clip_motion)

H = W = 128
K = np.array([[110.0, 0, 63.5], [0, 110.0, 63.5], [0, 0, 1]])
T_LEN = 8


def depth_map() -> np.ndarray:
    """A non-planar scene 1.5-3 m away: a slanted floor with bumps."""
    ys, xs = np.mgrid[0:H, 0:W].astype(float)
    return (2.0 + 0.6 * (ys / H) + 0.3 * np.sin(xs / 9.0) * np.cos(ys / 13.0)).astype(np.float32)


def poses(rotation_deg_per_frame, translation_per_frame) -> list[np.ndarray]:
    """T_first_from_t for a constant-velocity camera (rotation about a fixed oblique axis)."""
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    out = []
    for t in range(T_LEN):
        T = np.eye(4)
        T[:3, :3] = cv2.Rodrigues(axis * np.radians(rotation_deg_per_frame) * t)[0]
        T[:3, 3] = np.asarray(translation_per_frame, float) * t
        out.append(T)
    return out


def make_clip(first_from_t, noise_px=0.1, outlier_fraction=0.0, n_side=12, seed=0):
    """(depth0, xy (Q, T, 2), visible (Q, T)) for tracks on an n_side x n_side grid of frame 0."""
    rng = np.random.default_rng(seed)
    depth = depth_map()
    g = np.linspace(12, W - 13, n_side).round()
    xy0 = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    z = depth[xy0[:, 1].astype(int), xy0[:, 0].astype(int)]
    pts0 = np.linalg.solve(K, np.c_[xy0, np.ones(len(xy0))].T).T * z[:, None]
    xy = np.zeros((len(xy0), T_LEN, 2))
    for t, T in enumerate(first_from_t):
        cam = (np.linalg.inv(T) @ np.c_[pts0, np.ones(len(pts0))].T).T[:, :3]
        uv = (K @ cam.T).T
        xy[:, t] = uv[:, :2] / uv[:, 2:3]
    xy[:, 1:] += rng.normal(0, noise_px, xy[:, 1:].shape)
    bad = rng.random(len(xy0)) < outlier_fraction
    xy[bad, 1:] += rng.uniform(-25, 25, (int(bad.sum()), 1, 2))  # wrong tracks: off by a whole jump
    return depth, xy, np.ones(xy.shape[:2], bool), bad


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.linalg.norm(cv2.Rodrigues(a.T @ b)[0])))


def test_general_motion_is_recovered():
    truth = poses(1.5, [0.03, -0.01, 0.02])
    depth, xy, vis, _ = make_clip(truth)
    geo = solve_clip_motion(depth, xy, vis, K)
    assert geo.valid.all()
    assert not geo.rotation_only[1:].any()  # 3 cm per frame at 2 m is plenty of parallax
    for t in range(1, T_LEN):
        assert angle_deg(geo.rotation[t], truth[t][:3, :3]) < 0.5
        # within 2 % of the clip's whole translation (0.26 m; 0.1 px noise moves it by ~3 mm)
        assert np.linalg.norm(geo.translation[t] - truth[t][:3, 3]) < 0.02 * np.linalg.norm(truth[-1][:3, 3])
    assert geo.inliers[-1] == len(xy)


def test_pure_rotation_gives_zero_translation():
    truth = poses(2.0, [0.0, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(truth)
    geo = solve_clip_motion(depth, xy, vis, K)
    assert geo.valid.all() and geo.rotation_only[1:].all()
    assert np.abs(geo.translation).max() == 0.0
    for t in range(1, T_LEN):
        assert angle_deg(geo.rotation[t], truth[t][:3, :3]) < 0.3


def test_clip_level_rotation_test_decides_once_for_the_clip():
    rotating = make_clip(poses(2.0, [0.0, 0.0, 0.0]))
    geo = solve_clip_motion(*rotating[:3], K, rotation_test="clip")
    assert geo.rotation_only[1:].all() and np.abs(geo.translation).max() == 0.0
    moving = make_clip(poses(1.5, [0.03, -0.01, 0.02]))
    assert not solve_clip_motion(*moving[:3], K, rotation_test="clip").rotation_only.any()
    with pytest.raises(ValueError):
        solve_clip_motion(*moving[:3], K, rotation_test="sometimes")


def test_too_few_points_are_flagged_degenerate():
    truth = poses(1.5, [0.03, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(truth)
    vis[3:, 1:] = False  # 3 tracks seen after frame 0
    geo = solve_clip_motion(depth, xy, vis, K)
    assert geo.valid[0] and not geo.valid[1:].any()
    assert (geo.points[1:] == 3).all()


def test_padding_queries_are_not_used():
    truth = poses(1.5, [0.03, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(truth)
    usable = np.zeros(len(xy), bool)
    usable[:5] = True  # the engine's padding slots carry no track
    assert not solve_clip_motion(depth, xy, vis, K, usable=usable).valid[1:].any()


def test_outlier_tracks_are_rejected():
    truth = poses(1.5, [0.03, -0.01, 0.02])
    depth, xy, vis, bad = make_clip(truth, outlier_fraction=0.2, seed=3)
    assert 0.1 < bad.mean() < 0.3
    geo = solve_clip_motion(depth, xy, vis, K)
    assert geo.valid.all()
    for t in range(1, T_LEN):
        assert angle_deg(geo.rotation[t], truth[t][:3, :3]) < 0.5
        assert np.linalg.norm(geo.translation[t] - truth[t][:3, 3]) < 0.02 * np.linalg.norm(truth[-1][:3, 3])
        assert geo.inliers[t] <= (~bad).sum() + 2  # the wrong tracks are not inliers


def test_covariance_matches_the_spread_of_repeated_solves():
    """The published variance is what the solver measures: over noise draws, the predicted and the
    observed spread of the last frame's pose agree within a factor 2 (standard deviation)."""
    truth = poses(1.5, [0.03, -0.01, 0.02])
    errors_t, errors_r, predicted = [], [], []
    for seed in range(40):
        depth, xy, vis, _ = make_clip(truth, noise_px=1.0, seed=seed)
        geo = solve_clip_motion(depth, xy, vis, K, f_threshold=0.0, parallax_px=0.0)
        errors_t.append(geo.translation[-1] - truth[-1][:3, 3])
        errors_r.append(cv2.Rodrigues(truth[-1][:3, :3].T @ geo.rotation[-1])[0].ravel())
        predicted.append(geo.variance[-1])
    observed = np.array([np.mean(np.square(errors_r)), np.mean(np.square(errors_t))])
    ratio = np.sqrt(np.mean(predicted, axis=0) / observed)
    assert (0.5 < ratio).all() and (ratio < 2.0).all(), ratio


def test_fusion_follows_the_lower_variance_source():
    head_r = np.tile(np.eye(3), (2, 1, 1))
    geo_r = np.stack([np.eye(3), cv2.Rodrigues(np.array([0.0, 0.1, 0.0]))[0]])
    head_t, geo_t = np.zeros((2, 3)), np.array([[0, 0, 0], [1.0, 0, 0]])
    confident_geo = fuse(head_r, head_t, np.full((2, 2), 1.0), geo_r, geo_t, np.full((2, 2), 1e-4))
    confident_head = fuse(head_r, head_t, np.full((2, 2), 1e-4), geo_r, geo_t, np.full((2, 2), 1.0))
    assert angle_deg(confident_geo[0][1], geo_r[1]) < 0.01 and abs(confident_geo[1][1, 0] - 1.0) < 1e-3
    assert angle_deg(confident_head[0][1], head_r[1]) < 0.01 and abs(confident_head[1][1, 0]) < 1e-3
    equal = fuse(head_r, head_t, np.ones((2, 2)), geo_r, geo_t, np.ones((2, 2)))
    assert angle_deg(equal[0][1], head_r[1]) == pytest.approx(np.degrees(0.05), abs=1e-6)  # halfway
    assert equal[1][1, 0] == pytest.approx(0.5) and equal[2][1, 0] == pytest.approx(0.5)
    invalid = fuse(head_r, head_t, np.ones((2, 2)), geo_r, geo_t, np.full((2, 2), 1e-4), [True, False])
    assert np.array_equal(invalid[0], head_r) and np.array_equal(invalid[1], head_t)


def test_fusion_keeps_the_sizes_where_the_sources_disagree():
    """keep_sizes: two 1 m translations 127 degrees apart fuse to 1 m (the plain weighted mean is
    0.57 m) in the plain mean's direction; where they point the same way nothing changes."""
    eye = np.tile(np.eye(3), (2, 1, 1))
    head_t, geo_t = np.array([[0, 0, 0], [0, 0, 1.0]]), np.array([[0, 0, 0], [0.6, 0, -0.8]])
    head_var, geo_var = np.ones((2, 2)), np.full((2, 2), 1 / 3)  # the geometry weighs 0.75
    plain = fuse(eye, head_t, head_var, eye, geo_t, geo_var)[1][1]
    kept = fuse(eye, head_t, head_var, eye, geo_t, geo_var, keep_sizes=True)[1][1]
    assert np.linalg.norm(plain) == pytest.approx(np.hypot(0.45, 0.35))
    assert np.linalg.norm(kept) == pytest.approx(1.0)
    assert kept / np.linalg.norm(kept) == pytest.approx(plain / np.linalg.norm(plain))
    along = np.array([[0, 0, 0], [0, 0, 2.0]])
    assert np.allclose(fuse(eye, head_t, head_var, eye, along, geo_var, keep_sizes=True)[1],
                       fuse(eye, head_t, head_var, eye, along, geo_var)[1])


# A head whose values only mark where they were used (rotation sd 1 rad, translation sd 10 m): wide enough
# that the outlier gate, which also tests the translation, never discards the geometry for them.
HEAD_LOG_VARIANCE = np.array([0.0, np.log(100.0)])


def test_clip_pose_falls_back_to_the_head_where_degenerate():
    truth = poses(1.5, [0.03, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(truth)
    vis[3:, 4:] = False  # frames 4.. see 3 tracks only
    head_r = np.tile(cv2.Rodrigues(np.array([0.0, 0.2, 0.0]))[0], (T_LEN, 1, 1))
    head_logvar = np.tile(HEAD_LOG_VARIANCE, (1, T_LEN, 1))
    outputs = {"depth": depth[None, None].repeat(T_LEN, 1), "track_xy": xy[None],
               "track_visibility": vis[None].astype(np.float32), "pose_rotation": head_r[None],
               "pose_translation": np.full((1, T_LEN, 3), 5.0), "pose_log_variance": head_logvar}
    rotation, translation, log_variance, geo = clip_pose(outputs, K, mode="geometry")
    assert geo.valid[:4].all() and not geo.valid[4:].any()
    assert np.allclose(translation[1:4], [truth[t][:3, 3] for t in range(1, 4)], atol=4e-3)
    assert np.array_equal(translation[4:], np.full((T_LEN - 4, 3), 5.0))  # the head's
    assert np.array_equal(log_variance[4:], head_logvar[0, 4:])
    head_only = clip_pose(outputs, K, mode="head")
    assert head_only[3] is None and np.array_equal(head_only[1], outputs["pose_translation"][0])
    with pytest.raises(ValueError):
        clip_pose(outputs, K, mode="bundle")


def pair_step(truth, fails=()):
    """relink_lost_frames' step(t) on synthetic pairs: fresh points in front of frame t-1 (depth_map
    seen from it), moved by the true T_(t-1)_from_t, solved by the clip solver; None for t in fails."""
    def step(t):
        if t in fails:
            return None
        depth, xy, vis, _ = make_clip([np.eye(4), np.linalg.inv(truth[t - 1]) @ truth[t]], seed=t)
        return solve_clip_motion(depth, xy[:, :2], vis[:, :2], K, parallax_px=RELINK_PARALLAX_PX)  # as the pipeline
    return step


def lost_outputs(truth, lost_from: int):
    """Engine outputs of a clip whose first frame's tracks are gone from frame lost_from on, with a
    head that turns 11 degrees and slides 5 m along each axis whatever the camera does (HEAD_LOG_VARIANCE)."""
    depth, xy, vis, _ = make_clip(truth)
    vis[:, lost_from:] = False
    return {"depth": depth[None, None].repeat(T_LEN, 1), "track_xy": xy[None],
            "track_visibility": vis[None].astype(np.float32),
            "pose_rotation": np.tile(cv2.Rodrigues(np.array([0.0, 0.2, 0.0]))[0], (1, T_LEN, 1, 1)),
            "pose_translation": np.full((1, T_LEN, 3), 5.0), "pose_log_variance": np.tile(HEAD_LOG_VARIANCE, (1, T_LEN, 1))}


def wandering_poses(deg_per_frame: float, step_m) -> list[np.ndarray]:
    """T_first_from_t of a camera whose axis of turn changes every frame (steps in its own frame),
    so that composing two steps in the wrong order shows."""
    out = [np.eye(4)]
    for t in range(1, T_LEN):
        step = np.eye(4)
        axis = np.array([np.sin(t), 1.0, 0.5 * np.cos(t)])
        step[:3, :3] = cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(deg_per_frame))[0]
        step[:3, 3] = step_m
        out.append(out[-1] @ step)
    return out


@pytest.mark.parametrize("per_frame_m", [[0.0, 0.0, 0.0], [0.03, -0.01, 0.02]], ids=["pure_rotation", "general"])
def test_frames_lost_from_the_first_frame_are_relinked_from_the_frame_before(per_frame_m):
    truth = wandering_poses(4.0, per_frame_m)  # a slow camera: 28 degrees over the clip
    outputs = lost_outputs(truth, 4)
    rotation, translation, _, geo = clip_pose(outputs, K, mode="geometry", relink=pair_step(truth))
    assert geo.valid.all() and geo.relinked[4:].all() and not geo.relinked[:4].any()
    for t in range(1, T_LEN):
        assert angle_deg(rotation[t], truth[t][:3, :3]) < 0.5
        assert np.linalg.norm(translation[t] - truth[t][:3, 3]) < 0.01
    assert (np.diff(geo.variance[3:], axis=0) > 0).all()  # each link adds its own uncertainty
    assert (np.diff(np.trace(geo.covariance[3:, 3:, 3:], axis1=1, axis2=2)) > 0).all()
    unlinked = clip_pose(outputs, K, mode="geometry")[0]  # without: the head's turn, 17 degrees off
    assert angle_deg(unlinked[-1], truth[-1][:3, :3]) > 10


def test_relinked_steps_keep_a_translation_too_small_for_the_clips_parallax_bar():
    """A 10 Hz-like camera turning 4 degrees and moving 2 cm forward a frame, frame 0's tracks gone
    from frame 4: one frame step moves few points half a pixel, so with the clip's 0.5 px parallax
    bar every relinked step was rotation-only and lost its 2 cm (the last frame 7.9 cm short;
    rule 57)."""
    truth = wandering_poses(4.0, [0.0, 0.0, 0.02])
    _, translation, _, geo = clip_pose(lost_outputs(truth, 4), K, mode="geometry", relink=pair_step(truth))
    assert geo.relinked[4:].all()
    assert np.linalg.norm(translation[-1] - truth[-1][:3, 3]) < 0.02


def test_a_frame_that_cannot_be_relinked_breaks_the_chain_and_held_frames_stay_held():
    truth = poses(4.0, [0.03, 0.0, 0.0])
    outputs = lost_outputs(truth, 4)
    geo = clip_pose(outputs, K, mode="geometry", relink=pair_step(truth, fails={6}))[3]
    assert geo.relinked.tolist() == [False] * 4 + [True, True, False, False]  # 7 has no frame before it
    assert not geo.valid[6:].any()
    unseen = np.zeros(T_LEN, bool)
    unseen[5] = True  # a blind frame: its motion is held, not measured
    geo = clip_pose(outputs, K, mode="geometry", relink=pair_step(truth), unseen=unseen)[3]
    assert geo.relinked.tolist() == [False] * 4 + [True, False, False, False]
    unseen[:] = False
    unseen[3] = True  # solved from frame 0, but blind: frame 4 is not chained from its held pose
    geo = clip_pose(outputs, K, mode="geometry", relink=pair_step(truth), unseen=unseen)[3]
    assert geo.valid[3] and not geo.relinked.any()
    calls = []
    relink_lost_frames(solve_clip_motion(*make_clip(truth)[:3], K), lambda t: calls.append(t), np.zeros(T_LEN, bool))
    assert calls == []  # nothing lost, nothing solved again


def test_a_gated_frame_solved_again_still_counts_as_gated():
    """With pose_relink_corners (the default) each gated frame was relinked and its gated flag cleared:
    pose_geometry_gated read 0 whatever the gate did (14 relinked, 0 gated on TUM at 10 Hz)."""
    truth = poses(1.0, [0.01, 0.0, 0.01])
    depth, xy, vis, _ = make_clip(truth)
    outputs = still_head_outputs(depth, xy, vis, head_deg=8.0, head_m=0.08)
    plain = clip_pose(outputs, K, mode="fused", gate_chi2=1e-6)[3]
    relinked = clip_pose(outputs, K, mode="fused", gate_chi2=1e-6, relink=pair_step(truth))[3]
    assert plain.gated.sum() >= 3 and relinked.relinked.any()
    assert relinked.gated.tolist() == plain.gated.tolist() and not (relinked.relinked & ~relinked.gated).any()


def test_kabsch_recovers_a_rotation_of_unit_vectors():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(20, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    r = cv2.Rodrigues(np.array([0.1, -0.4, 0.25]))[0]
    assert np.allclose(kabsch_rotation(v, v @ r.T), r, atol=1e-10)


def test_outlier_gate_discards_a_confident_wrong_frame():
    """PnP can converge on a consistent wrong pose (every track agrees with it, so its own variance
    is small): the gate keeps the head's pose there, and only there."""
    truth = poses(1.5, [0.03, 0.0, 0.0])
    wrong = list(truth)
    wrong[5] = truth[5] @ np.block([[cv2.Rodrigues(np.array([0.0, 0.0, np.radians(30.0)]))[0], np.zeros((3, 1))],
                                    [np.zeros((1, 3)), np.ones((1, 1))]])
    depth, xy, vis, _ = make_clip(wrong)
    head_r = np.stack([T[:3, :3] for T in truth])
    head_sd = np.radians(2.0)  # the head is right to within its own spread
    outputs = {"depth": depth[None, None].repeat(T_LEN, 1), "track_xy": xy[None],
               "track_visibility": vis[None].astype(np.float32), "pose_rotation": head_r[None],
               "pose_translation": np.stack([T[:3, 3] for T in truth])[None],
               "pose_log_variance": np.full((1, T_LEN, 2), np.log(head_sd ** 2))}
    rotation, _, _, geo = clip_pose(outputs, K, mode="fused")
    assert geo.gated.tolist() == [t == 5 for t in range(T_LEN)]
    assert not geo.valid[5] and geo.valid[[1, 2, 3, 4, 6, 7]].all()
    assert angle_deg(rotation[5], truth[5][:3, :3]) < 0.01  # the head's
    for t in (1, 4, 7):  # the other frames still fuse with the (right) geometry
        assert angle_deg(rotation[t], truth[t][:3, :3]) < 0.5
    ungated_rotation, _, _, ungated = clip_pose(outputs, K, mode="fused", gate_chi2=0.0)
    assert not ungated.gated.any() and angle_deg(ungated_rotation[5], truth[5][:3, :3]) > 20.0
    geometry_rotation, _, _, _ = clip_pose(outputs, K, mode="geometry")  # gated there too
    assert angle_deg(geometry_rotation[5], truth[5][:3, :3]) < 0.01


def test_outlier_gate_discards_a_translation_the_head_rules_out_and_the_frames_before_it():
    """A camera spinning in place on a small image (128x96 at 240 deg/s): the tracks of the points leaving
    its view lag behind the turn, and PnP on the model's near-flat depth explains them by a slide (1.8 m
    in a quarter of a second, its own sd a few cm) and a short turn within the head's wide rotation
    variance (session 68). Here the tracks are those of that slide; the head's translation (5 mm a frame,
    sd 19 cm) rules it out from frame 3, and frames 1-2, solved on the same tracks, went the same way
    under the gate: every frame is gated, and the fused pose keeps the head's translation."""
    from fourds_ros.perception.pose_geometry import GATE_CHI2_999, gate_outliers

    slide = poses(1.0, [0.25, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(slide)
    head_r, head_t = np.stack([T[:3, :3] for T in slide]), np.outer(np.arange(T_LEN), [0.005, 0.0, 0.0])
    head_var = np.tile([np.radians(6.0) ** 2, 0.19 ** 2], (T_LEN, 1))
    outputs = {"depth": depth[None, None].repeat(T_LEN, 1), "track_xy": xy[None],
               "track_visibility": vis[None].astype(np.float32), "pose_rotation": head_r[None],
               "pose_translation": head_t[None], "pose_log_variance": np.log(head_var)[None]}
    _, translation, log_variance, geo = clip_pose(outputs, K, mode="fused")
    sd = np.sqrt(np.exp(log_variance[1:, 1]))
    assert np.all(np.linalg.norm(translation[1:], axis=1) < sd)  # what moves is within its own sd
    assert np.all(np.linalg.norm(translation[1:] - head_t[1:], axis=1) < 1e-9)
    assert geo.gated[1:].all() and not geo.valid[1:].any()
    _, ungated_t, ungated_logvar, ungated = clip_pose(outputs, K, mode="fused", gate_chi2=0.0)
    assert np.linalg.norm(ungated_t[-1]) > 1.5 > 10 * np.sqrt(np.exp(ungated_logvar[-1, 1]))  # metres, confident
    assert not gate_outliers(head_r, head_var, ungated, GATE_CHI2_999).any()  # the rotation alone passes
    assert gate_outliers(head_r, head_var, ungated, GATE_CHI2_999, head_t)[1:].all()


def spinning_camera(deg_per_frame: float, frames: int, hw=(96, 128), hfov_deg=60.0, seed=91):
    """(RGB frames, K) of a camera turning in place about its y axis inside a textured sphere (an
    equirectangular panorama): the exact images of a pure rotation, at any angle."""
    rng = np.random.default_rng(seed)
    pano = cv2.resize(rng.integers(0, 256, (128, 256, 3)).astype(np.uint8), (2048, 1024),
                      interpolation=cv2.INTER_CUBIC)
    h, w = hw
    f = (w / 2) / np.tan(np.radians(hfov_deg) / 2)
    k = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.stack([(u - k[0, 2]) / f, (v - k[1, 2]) / f, np.ones((h, w))], -1)
    out = []
    for i in range(frames):
        d = rays @ cv2.Rodrigues(np.radians(deg_per_frame * i) * np.array([0.0, 1.0, 0.0]))[0].T
        lon, lat = np.arctan2(d[..., 0], d[..., 2]), np.arctan2(d[..., 1], np.hypot(d[..., 0], d[..., 2]))
        mx, my = ((lon / (2 * np.pi) + 0.5) * 2048).astype(np.float32), ((lat / np.pi + 0.5) * 1024).astype(np.float32)
        out.append(cv2.remap(pano, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP))
    return out, k


def test_a_fast_spin_on_a_small_image_publishes_no_confident_travel(shipped_engine):
    """A robot turning on the spot at 240 deg/s, seen by a 128x96 camera (8 degrees a frame at 30 Hz; the
    shipped model, default settings): the published position stays within its own covariance at every
    frame (chi-square 3 dof, 99.9 %). It read 4.2 m of travel at 27 sd (chi-square 968), because the
    translation PnP traded for the turn passed the rotation-only outlier gate (session 68)."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings

    frames, k = spinning_camera(8.0, 24)
    pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params({}))
    out = [r for i, rgb in enumerate(frames) for r in pipe.push(rgb, 10**9 + i * 33_333_333, "cam", k)]
    assert len(out) >= 20
    start = out[0].pose.odom_from_camera[:3, 3]
    for r in out[1:]:
        travel = r.pose.odom_from_camera[:3, 3] - start
        assert travel @ np.linalg.solve(r.pose.covariance[:3, :3], travel) < 16.27, r.index
    assert pipe.status()["pose_geometry_gated"] > 0


def test_smoothing_keeps_smooth_motion_and_removes_independent_frame_noise():
    """A constant-velocity clip is a polynomial of degree 1 through the origin: smoothing leaves it
    as it is. Independent per-frame noise on it is reduced, most at the clip's last frame (the one
    the chain carries on); order 0 changes nothing."""
    truth = poses(1.5, [0.03, 0.0, 0.01])
    true_r = np.stack([T[:3, :3] for T in truth])
    true_t = np.stack([T[:3, 3] for T in truth])
    variance = np.full((T_LEN, 2), 1e-4)
    for order in (1, 2):
        r, t = smooth_clip_motion(true_r, true_t, variance, order)
        assert max(angle_deg(r[i], true_r[i]) for i in range(T_LEN)) < 1e-6 and np.allclose(t, true_t, atol=1e-9)
    rng = np.random.default_rng(3)
    last_before, last_after = [], []
    for _ in range(50):
        noisy_r = np.stack([true_r[0]] + [true_r[i] @ cv2.Rodrigues(rng.normal(0, np.radians(0.5), 3))[0]
                                          for i in range(1, T_LEN)])
        noisy_t = true_t + np.r_[np.zeros((1, 3)), rng.normal(0, 0.005, (T_LEN - 1, 3))]
        r, t = smooth_clip_motion(noisy_r, noisy_t, variance, 1)
        assert angle_deg(r[0], np.eye(3)) < 1e-9 and np.allclose(t[0], 0.0)  # frame 0 stays the origin
        last_before.append((angle_deg(noisy_r[-1], true_r[-1]), np.linalg.norm(noisy_t[-1] - true_t[-1])))
        last_after.append((angle_deg(r[-1], true_r[-1]), np.linalg.norm(t[-1] - true_t[-1])))
    assert (np.mean(last_after, axis=0) < 0.8 * np.mean(last_before, axis=0)).all()
    unchanged = smooth_clip_motion(noisy_r, noisy_t, variance, 0)
    assert unchanged[0] is noisy_r and unchanged[1] is noisy_t
    # A frame with a large variance barely pulls the fit: a wild frame 4 leaves the others near the truth.
    wild_r = true_r.copy()
    wild_r[4] = true_r[4] @ cv2.Rodrigues(np.array([0.0, 0.0, np.radians(20.0)]))[0]
    trusted = smooth_clip_motion(wild_r, true_t, np.where(np.arange(T_LEN)[:, None] == 4, 1e4, variance), 1)[0]
    assert angle_deg(trusted[-1], true_r[-1]) < 0.01


def test_clip_pose_smooths_the_fused_motion_over_the_clip():
    truth = poses(1.5, [0.03, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(truth, noise_px=0.3)
    outputs = {"depth": depth[None, None].repeat(T_LEN, 1), "track_xy": xy[None],
               "track_visibility": vis[None].astype(np.float32),
               "pose_rotation": np.stack([T[:3, :3] for T in truth])[None],
               "pose_translation": np.stack([T[:3, 3] for T in truth])[None],
               "pose_log_variance": np.full((1, T_LEN, 2), np.log(np.radians(2.0) ** 2))}
    _, raw_t, _, _ = clip_pose(outputs, K, mode="fused")
    smooth_r, smooth_t, _, _ = clip_pose(outputs, K, mode="fused", smoothing_order=2)
    assert not np.allclose(smooth_t, raw_t)  # the fit moved the noisy frames ...
    for t in range(1, T_LEN):  # ... and stays on the true motion
        assert angle_deg(smooth_r[t], truth[t][:3, :3]) < 0.3
        assert np.linalg.norm(smooth_t[t] - truth[t][:3, 3]) < 0.01


def test_smoothing_fits_in_time_when_a_frame_is_missing():
    """Frame 3 of the camera was dropped, so the clip's 8 frames are at 0, 1, 2, 4, 5, ... frame
    periods: constant-velocity motion is a straight line in time, not in frame index."""
    ticks = np.array([0, 1, 2, 4, 5, 6, 7, 8])
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    rotation = np.stack([cv2.Rodrigues(axis * np.radians(1.5) * k)[0] for k in ticks])
    translation = np.outer(ticks, [0.02, 0.0, 0.01])
    variance = np.full((T_LEN, 2), 1e-4)
    stamps_ns = 1_000_000_000 + ticks * 33_333_333
    r, t = smooth_clip_motion(rotation, translation, variance, 1, stamps_ns)
    assert np.allclose(t, translation, atol=1e-6)
    assert max(angle_deg(r[i], rotation[i]) for i in range(T_LEN)) < 1e-4
    by_index = smooth_clip_motion(rotation, translation, variance, 1)[1]  # what ignoring time gives
    assert np.abs(by_index - translation).max() > 5e-3



def test_smoothing_follows_a_clip_turning_past_half_a_turn():
    """28 degrees a frame about the camera's y (a fast spin, or a low frame rate): the clip turns 196
    degrees, and its rotation vectors wrap at 180. Fitted through the wrap, the smoothed clip came out
    up to 137 degrees off (113 on the last frame, which the chain carries on); unwrapped along the clip
    it is the motion, about an oblique axis too, and independent frame noise is still reduced."""
    for axis in (np.array([0.0, 1.0, 0.0]), np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])):
        truth = np.stack([cv2.Rodrigues(axis * np.radians(28.0) * t)[0] for t in range(T_LEN)])
        variance = np.full((T_LEN, 2), 1e-4)
        for order in (1, 2):
            r, _ = smooth_clip_motion(truth, np.zeros((T_LEN, 3)), variance, order)
            assert max(angle_deg(r[t], truth[t]) for t in range(T_LEN)) < 0.01, (axis, order)
    outputs = {"depth": np.full((1, T_LEN, 64, 64), 2.0), "track_xy": np.zeros((1, 4, T_LEN, 2)),
               "track_visibility": np.zeros((1, 4, T_LEN)), "pose_rotation": truth[None],
               "pose_translation": np.zeros((1, T_LEN, 3)), "pose_log_variance": np.full((1, T_LEN, 2), -8.0)}
    k_small = np.array([[60.0, 0, 31.5], [0, 60, 31.5], [0, 0, 1]])
    rotation, *_ = clip_pose(outputs, k_small, "fused", smoothing_order=2)  # no tracks: the head's motion
    assert angle_deg(rotation[-1], truth[-1]) < 0.01
    rng = np.random.default_rng(5)
    before, after = [], []
    for _ in range(30):
        noisy = np.stack([truth[0]] + [truth[t] @ cv2.Rodrigues(rng.normal(0, np.radians(0.5), 3))[0]
                                       for t in range(1, T_LEN)])
        r, _ = smooth_clip_motion(noisy, np.zeros((T_LEN, 3)), variance, 1)
        before.append(angle_deg(noisy[-1], truth[-1]))
        after.append(angle_deg(r[-1], truth[-1]))
    assert np.mean(after) < 0.8 * np.mean(before), (np.mean(after), np.mean(before))


def test_rotation_vectors_are_unwrapped_only_past_half_a_turn():
    """Under 180 degrees the fitted vectors are OpenCV's, bit for bit (the smoothing as it was). Near a
    full turn in a frame (60 degrees a frame: frame 6 is the identity, a one-degree noise tilts its
    axis anywhere) no continuous vectors exist: the rotations are kept as solved, not fitted 110
    degrees off."""
    from fourds_ros.perception.pose_geometry import unwrapped_rotation_vectors

    rng = np.random.default_rng(2)
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    wobbly = np.stack([np.eye(3)] + [cv2.Rodrigues(axis * np.radians(25.0) * t + rng.normal(0, 0.02, 3))[0]
                                     for t in range(1, T_LEN)])  # 175 degrees in all
    plain = np.stack([cv2.Rodrigues(r)[0].ravel() for r in wobbly])
    np.testing.assert_array_equal(unwrapped_rotation_vectors(wobbly), plain)
    exact = np.stack([cv2.Rodrigues(axis * np.radians(60.0) * t)[0] for t in range(T_LEN)])
    r, _ = smooth_clip_motion(exact, np.zeros((T_LEN, 3)), np.full((T_LEN, 2), 1e-4), 2)
    assert max(angle_deg(r[t], exact[t]) for t in range(T_LEN)) < 0.01  # the full turn's axis is the clip's
    noisy = np.stack([exact[0]] + [exact[t] @ cv2.Rodrigues(rng.normal(0, np.radians(0.5), 3))[0]
                                   for t in range(1, T_LEN)])
    r, _ = smooth_clip_motion(noisy, np.zeros((T_LEN, 3)), np.full((T_LEN, 2), 1e-4), 2)
    assert max(angle_deg(r[t], exact[t]) for t in range(T_LEN)) < 2.0

def still_head_outputs(depth, xy, vis, head_deg=20.0, head_m=0.4, head_sd=(0.01, 0.02)):
    """Engine outputs for a clip whose tracks are `xy`, with a pose head that reads it as fast,
    confident motion (as the shipped head reads a still camera's clips)."""
    steps = np.arange(T_LEN)[:, None]
    head_r = np.stack([cv2.Rodrigues(np.array([0.0, np.radians(head_deg) * t / T_LEN, 0.0]))[0] for t in range(T_LEN)])
    log_var = np.tile(2 * np.log(np.array(head_sd)), (T_LEN, 1))
    return {"depth": depth[None, None].repeat(T_LEN, 1), "track_xy": xy[None],
            "track_visibility": vis[None].astype(np.float32), "pose_rotation": head_r[None],
            "pose_translation": (steps * np.array([head_m / T_LEN, 0.0, 0.0]))[None], "pose_log_variance": log_var[None]}


def test_a_still_camera_stays_still_whatever_the_head_says():
    """Tracks that do not move (noise only): every frame is still and rotation-only, the outlier
    gate does not hand the frame to a head that disagrees, and the fused pose is the geometry's
    identity, not a blend with the head's phantom motion."""
    depth, xy, vis, _ = make_clip(poses(0.0, [0.0, 0.0, 0.0]), noise_px=0.1)
    geo = solve_clip_motion(depth, xy, vis, K)
    assert geo.still.all() and geo.rotation_only[1:].all() and not geo.translation.any()
    rotation, translation, _, geo = clip_pose(still_head_outputs(depth, xy, vis), K, mode="fused")
    assert not geo.gated.any()
    assert np.abs(translation).max() < 1e-9
    assert max(angle_deg(r, np.eye(3)) for r in rotation) < 0.1


def test_slow_but_visible_motion_is_not_still():
    """A camera turning 0.5 degrees a frame moves the tracks ~1 px a frame at this focal length: not
    still, and the fused rotation follows the tracks, not the head."""
    truth = poses(0.5, [0.0, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(truth, noise_px=0.1)
    outputs = still_head_outputs(depth, xy, vis, head_deg=0.0, head_sd=(0.05, 0.1))  # a head that says "still"
    rotation, _, _, geo = clip_pose(outputs, K, mode="fused")
    assert not geo.still[2:].any() and not geo.gated.any()
    assert angle_deg(rotation[-1], truth[-1][:3, :3]) < 0.3


def test_a_still_camera_with_something_moving_through_its_view_stays_still():
    """A still camera while something crosses its view: 40 % of the tracks follow the object (1 px
    a frame), 15 % are dragged off at random (background the object occludes), 45 % stay. No
    majority of tracks stayed, and PnP's consensus can be the object or a motion halfway between
    it and the background; the identity explains the stayed tracks, and the clip is still."""
    rng = np.random.default_rng(3)
    depth, xy, vis, _ = make_clip(poses(0.0, [0.0, 0.0, 0.0]), noise_px=0.05)
    role = rng.permutation(np.r_[np.zeros(65), np.ones(58), 2 * np.ones(21)].astype(int))  # stay / object / dragged
    steps = np.arange(T_LEN)[None, :, None]
    xy[role == 1] += steps * np.array([1.0, 0.2])
    xy[role == 2] += steps * rng.uniform(-1.5, 1.5, (int((role == 2).sum()), 1, 2))
    geo = solve_clip_motion(depth, xy, vis, K)
    assert geo.still.all(), geo.still
    rotation, translation, _, _ = clip_pose(still_head_outputs(depth, xy, vis), K, mode="fused")
    assert np.abs(translation).max() < 1e-9
    assert max(angle_deg(r, np.eye(3)) for r in rotation) < 0.1


def test_a_camera_turning_after_its_subject_is_not_still():
    """The other side of the test above: a camera that pans 1 degree a frame after a subject that
    holds 40 % of the tracks still in the image. The background's motion outnumbers them, so
    the camera turns (the rule gives stillness the benefit of a tie, not more)."""
    truth = poses(1.0, [0.0, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(truth, noise_px=0.05)
    rng = np.random.default_rng(4)
    subject = rng.permutation(len(xy)) < 58  # 40 % of the 144 tracks
    xy[subject] = xy[subject, :1] + rng.normal(0, 0.05, xy[subject].shape)
    geo = solve_clip_motion(depth, xy, vis, K)
    assert not geo.still[1:].any(), geo.still
    assert angle_deg(geo.rotation[-1], truth[-1][:3, :3]) < 0.3


def test_motion_the_head_never_learned_is_counted_and_keeps_its_size(shipped_engine):
    """The HoloLens walk shipped in samples/ (a training recording) played backwards: the pose head
    predicts the forward walk it learned, so on most clips its translation points against the
    geometry's (pose_head_overruled, on /diagnostics), and with pose_fuse_sizes (the default) the
    fused path is longer than the weighted mean vectors make it. Forwards the head is not overruled."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_hololens

    assert PerceptionSettings().pose.fuse_sizes is True
    walk = read_hololens(Path(__file__).resolve().parents[1] / "samples" / "hololens_000")

    def run(order, **params):
        pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params(params))
        out = [r for j, i in enumerate(order) for r in pipe.push(walk.rgb(i), (j + 1) * 33_333_333, "cam",
                                                                  walk.intrinsics)]
        path = np.array([r.pose.odom_from_camera[:3, 3] for r in out])
        return pipe.status()["pose_head_overruled"], float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())

    backwards = range(len(walk) - 1, -1, -1)
    overruled, kept = run(backwards)
    assert overruled >= 2  # of the walk's 4 clips
    assert run(range(len(walk)))[0] == 0
    assert kept > 1.05 * run(backwards, pose_fuse_sizes=False)[1]


def far_view(far_m: float, horizon: float) -> np.ndarray:
    """A view whose top `horizon` of the image is far_m away (+- 2 m) and whose rest is a floor 3 m
    (at the horizon) to 1.5 m (at the bottom) away."""
    ys, xs = np.mgrid[0:H, 0:W].astype(float)
    floor = 3.0 - 1.5 * (ys - horizon * H) / max((1 - horizon) * H, 1e-9)
    return np.where(ys < horizon * H, far_m + 2 * np.sin(xs / 7), floor).astype(np.float32)


@pytest.mark.parametrize("far_m, step_m", [(10.0, 0.01), (25.0, 0.017)])
def test_a_forward_drive_with_a_far_background_is_measured(monkeypatch, far_m, step_m):
    """A robot driving forward at 0.3-0.5 m/s (30 Hz) with 60 % of its view far away: most tracks move
    under half a pixel in a clip, and the frames were called still, translation 0, overruling a
    head that read the motion right (0.000 m of 1.003 m over 2 s, session 52). One motion keeps the
    far tracks still and moves the floor's apart: measured (rule 58)."""
    monkeypatch.setitem(globals(), "depth_map", lambda: far_view(far_m, 0.6))
    truth = poses(0.0, [0.0, 0.0, step_m])
    depth, xy, vis, _ = make_clip(truth, noise_px=0.1)
    geo = solve_clip_motion(depth, xy, vis, K)
    assert not geo.still[-1] and not geo.rotation_only[-1]
    assert np.linalg.norm(geo.translation[-1] - truth[-1][:3, 3]) < 0.05 * np.linalg.norm(truth[-1][:3, 3])


@pytest.mark.parametrize("walk", ["slides_past", "walks_up"])
@pytest.mark.parametrize("horizon", [1.0, 0.6])
def test_a_person_before_a_far_view_does_not_move_a_still_camera(monkeypatch, walk, horizon):
    """The other side of the test above: a still camera looking at a view 25 m away, with a person
    2 m from it (18-24 tracks) sliding past at 0.5 px a frame or walking up at 1 m/s, with a floor
    in view or none. Without a floor a camera motion explains the person's tracks as well (the
    geometry cannot tell them apart); the rules that hold it still: one image shift is one thing
    moving, and a camera's near scene spans the view, a person's does not."""
    monkeypatch.setitem(globals(), "depth_map", lambda: far_view(25.0, horizon))
    for seed in range(4):
        depth, xy, vis, _ = make_clip(poses(0.0, [0.0, 0.0, 0.0]), noise_px=0.1, seed=seed)
        grid = np.arange(len(xy)).reshape(12, 12)
        person = np.zeros(len(xy), bool)
        person[grid[1:9, 3:6].ravel()] = True
        depth = depth.copy()
        for x, y in xy[person, 0].round().astype(int):
            depth[max(0, y - 6): y + 7, max(0, x - 6): x + 7] = 2.0
        if walk == "slides_past":
            xy[person] += np.arange(T_LEN)[None, :, None] * np.array([0.5, 0.0])
        else:
            z = 2.0 - 0.033 * np.arange(T_LEN)  # the person's depth frame by frame
            xy[person] = K[:2, 2] + (xy[person, :1] - K[:2, 2]) * (2.0 / z)[None, :, None]
        geo = solve_clip_motion(depth, xy, vis, K)
        assert np.abs(geo.translation).max() < 1e-9, (seed, geo.still)


def test_a_moving_object_holding_most_tracks_does_not_carry_the_fused_pose():
    """A camera turning 0.5 degrees and moving 1 cm sideways a frame; 60 % of the tracks on a rigid
    object moving 1.5 cm a frame the other way (a bus passing); the head right (sd 1 cm, 0.01 rad).
    PnP's consensus is the object's motion, whose rotation passes the gate: fused, it carried the
    pose outside 3 sd of the truth in 7 of 12 noise draws. The head now picks between the two rigid
    motions the tracks hold (rule 60)."""
    truth = poses(0.5, [0.01, 0.0, 0.0])
    head_sd = np.array([0.01, 0.01])  # rotation rad, translation m
    bad = 0
    for seed in range(12):
        depth, xy, vis, _ = make_clip(truth, noise_px=0.1, seed=seed)
        rng = np.random.default_rng(100 + seed)
        thing = rng.permutation(len(xy)) < int(0.6 * len(xy))
        pts0 = back_project(depth, xy[:, 0], K)
        for t, first_from_t in enumerate(truth):
            cam = (np.linalg.inv(first_from_t) @ np.c_[pts0[thing] + [-0.015 * t, 0, 0], np.ones(thing.sum())].T).T
            uv = (K @ cam[:, :3].T).T
            xy[thing, t] = uv[:, :2] / uv[:, 2:3] + (rng.normal(0, 0.1, (thing.sum(), 2)) if t else 0)
        outputs = {"depth": depth[None, None].repeat(T_LEN, 1), "track_xy": xy[None],
                   "track_visibility": vis[None].astype(np.float32),
                   "pose_rotation": np.stack([p[:3, :3] for p in truth])[None],
                   "pose_translation": np.stack([p[:3, 3] for p in truth])[None],
                   "pose_log_variance": np.tile(2 * np.log(head_sd), (T_LEN, 1))[None]}
        _, translation, log_var, _ = clip_pose(outputs, K, mode="fused", smoothing_order=2)
        bad += np.linalg.norm(translation[-1] - truth[-1][:3, 3]) > 3 * np.sqrt(3 * np.exp(log_var[-1, 1]))
    assert bad <= 1, bad


def test_a_forward_drive_chained_clip_by_clip_keeps_its_length(monkeypatch):
    """The forward drive above at 0.3 m/s, 0.2 px track noise, the head right within 3 mm, chained
    clip by clip (hop 2) into odometry. A clip's early frames, where most tracks had not yet moved
    half a pixel, were held still while its later ones were measured: the next clip, anchored on
    them, started steps behind, and the drive read 18 % long. A clip whose last frame is measured
    is measured throughout (rule 61)."""
    from fourds_ros.perception.odometry import OdometryChain

    monkeypatch.setitem(globals(), "depth_map", lambda: far_view(10.0, 0.6))
    step, hop, dt = 0.01, 2, 1 / 30
    truth = poses(0.0, [0.0, 0.0, step])
    chain, xs = OdometryChain(), []
    for c, start in enumerate(range(0, 60, hop)):
        depth, xy, vis, _ = make_clip(truth, noise_px=0.2, seed=c)
        head_t = np.stack([p[:3, 3] for p in truth])
        head_t[1:] += np.random.default_rng(1000 + c).normal(0, 0.003, (T_LEN - 1, 3))
        outputs = {"depth": depth[None, None].repeat(T_LEN, 1), "track_xy": xy[None],
                   "track_visibility": vis[None].astype(np.float32),
                   "pose_rotation": np.stack([p[:3, :3] for p in truth])[None], "pose_translation": head_t[None],
                   "pose_log_variance": np.tile(2 * np.log([0.01, 0.01]), (T_LEN, 1))[None]}
        stamps = [round((start + i) * dt * 1e9) for i in range(T_LEN)]
        rotation, translation, log_var, _ = clip_pose(outputs, K, mode="fused", smoothing_order=2,
                                                      stamps_ns=np.array(stamps))
        out_t = list(range(T_LEN)) if c == 0 else list(range(T_LEN - hop, T_LEN))
        xs += [e.odom_from_base[0, 3] for e in chain.add_clip(list(range(start, start + T_LEN)), stamps, rotation,
                                                               translation, log_var, out_t)]
    travel = step * (len(xs) - 1)
    assert abs(xs[-1] / travel - 1) < 0.1, (xs[-1], travel)
    assert (np.diff(xs) > -1e-4).all()


@pytest.mark.parametrize("mode", ["head", "fused"])
def test_a_pose_head_frame_of_nan_is_held_with_an_unknown_size_not_a_lost_clip(mode):
    """fp16 on a GPU can overflow: one frame's NaN in the head, on a frame the geometry could not
    solve either, made the fusion's smoothing or the odometry's SVD raise, and the clip's pose and
    tracks were lost. The frame is held at the one before, with the largest variance, and counted
    (as no motion from the clip's first frame, the head alone sent the camera back there)."""
    from fourds_ros.perception.odometry import OdometryChain
    from fourds_ros.perception.pose_geometry import finite_head

    truth = poses(1.0, [0.01, 0.0, 0.01])
    depth, xy, vis, _ = make_clip(truth)
    vis[:, 5] = False  # the geometry cannot solve frame 5 either
    outputs = still_head_outputs(depth, xy, vis, head_deg=8.0, head_m=0.08)
    outputs["pose_rotation"][0, 5] = outputs["pose_log_variance"][0, 5, 0] = np.nan
    outputs["pose_log_variance"][0, 6, 1] = np.inf

    def chained(engine_outputs):
        rotation, translation, log_var, _ = clip_pose(engine_outputs, K, mode=mode, smoothing_order=2)
        estimates = OdometryChain().add_clip(list(range(T_LEN)), [i * 33_000_000 for i in range(T_LEN)], rotation,
                                             translation, log_var, list(range(T_LEN)))
        return np.stack([e.odom_from_camera for e in estimates])

    with pytest.raises(np.linalg.LinAlgError):  # before: the fusion's smoothing, or the odometry, raised
        chained(outputs)
    fixed, replaced, implausible = finite_head(outputs)
    assert replaced.tolist() == [False] * 5 + [True, True, False] and not finite_head(fixed)[1].any()
    assert not implausible.any()
    path = chained(fixed)
    assert np.isfinite(path).all()
    # held where it was, not sent back to the clip's first frame (as "no motion" from it did)
    step_in = np.linalg.norm(path[5, :3, 3] - path[4, :3, 3])
    assert step_in <= np.linalg.norm(path[7, :3, 3] - path[4, :3, 3]) and np.linalg.norm(path[5, :3, 3]) > 0.02


@pytest.mark.parametrize("fault", ["translation 65504", "zero rotation", "rank-1 rotation", "mirror"])
def test_a_finite_pose_head_frame_that_is_no_motion_is_held_as_a_nan_one(fault):
    """fp16 saturating at 65504, or an engine built wrong: with pose_source head the odometry jumped 93 km and
    stayed there, and orthonormalise made a zero or rank-1 "rotation" into some rotation, none counted. Such a
    frame is now held as a non-finite one and flagged apart from them."""
    from fourds_ros.perception.pose_geometry import HEAD_MAX_TRANSLATION_M, finite_head

    truth = poses(1.0, [0.01, 0.0, 0.01])
    depth, xy, vis, _ = make_clip(truth)
    outputs = still_head_outputs(depth, xy, vis, head_deg=8.0, head_m=0.08)
    good = {k: v.copy() for k, v in outputs.items()}
    bad = {"translation 65504": ("pose_translation", np.array([65504.0, 0, 0])),
           "zero rotation": ("pose_rotation", np.zeros((3, 3))),
           "rank-1 rotation": ("pose_rotation", np.outer([1.0, 0, 0], [1.0, 1.0, 0])),
           "mirror": ("pose_rotation", np.diag([1.0, 1.0, -1.0]))}[fault]
    outputs[bad[0]][0, 4] = bad[1]
    fixed, nonfinite, implausible = finite_head(outputs)
    assert implausible.tolist() == [False] * 4 + [True] + [False] * 3 and not nonfinite.any()
    np.testing.assert_array_equal(fixed["pose_rotation"][0, 4], good["pose_rotation"][0, 3])  # held at frame 3
    np.testing.assert_array_equal(fixed["pose_translation"][0, 4], good["pose_translation"][0, 3])
    assert finite_head(good)[2].sum() == 0 and HEAD_MAX_TRANSLATION_M == 100.0


def noisy_rotations(truth, deg: float, seed: int = 1) -> np.ndarray:
    """truth's rotations (first_from_t), each but frame 0 turned by `deg` about a random axis: a
    fused pose whose every frame was solved on its own."""
    rng = np.random.default_rng(seed)
    out = [truth[0][:3, :3]]
    for T in truth[1:]:
        axis = rng.normal(size=3)
        out.append(T[:3, :3] @ cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(deg))[0])
    return np.stack(out)


def turning_head_outputs(truth, depth, xy, vis) -> dict:
    """Engine outputs of a clip: its depth on every frame, its tracks, and a pose head whose rotations
    are each 3 degrees off the truth and that moves nowhere (sd about 0.14)."""
    return {"depth": depth[None, None].repeat(T_LEN, 1), "track_xy": xy[None], "track_visibility": vis[None],
            "pose_rotation": noisy_rotations(truth, 3.0)[None],
            "pose_translation": np.zeros((1, T_LEN, 3)), "pose_log_variance": np.full((1, T_LEN, 2), -4.0)}


def test_a_turning_cameras_rotation_steps_are_measured_by_the_bearings():
    """Rule 66: a camera that only turns (2 degrees a frame), tracks with 0.1 px of noise and a fifth
    of them wrong: each frame's rotation, given 1.5 degrees off, comes back within 0.1 degrees of the
    truth from the bearings of consecutive frames, and every step is counted."""
    from fourds_ros.perception.pose_geometry import rotation_from_bearing_steps

    truth = poses(2.0, [0.0, 0.0, 0.0])
    _, xy, vis, bad = make_clip(truth, outlier_fraction=0.2, seed=3)
    assert bad.sum() >= 20
    rotation, replaced = rotation_from_bearing_steps(noisy_rotations(truth, 1.5), xy, vis, K, max_px=2.0)
    assert replaced == T_LEN - 1
    for t in range(1, T_LEN):
        assert angle_deg(rotation[t], truth[t][:3, :3]) < 0.1


def test_a_translation_with_parallax_keeps_the_solved_rotation():
    """A camera moving 15 cm a frame forward and sideways past points 2-3 m away: no turn explains
    the tracks to 2 px, so every step stays as given; with a loose bound (50 px) the bearings take
    over, and the parallax then turns the rotation far off."""
    from fourds_ros.perception.pose_geometry import rotation_from_bearing_steps

    truth = poses(0.5, [0.15, 0.0, 0.15])
    _, xy, vis, _ = make_clip(truth)
    given = noisy_rotations(truth, 0.3)
    rotation, replaced = rotation_from_bearing_steps(given, xy, vis, K, max_px=2.0)
    assert replaced == 0 and np.allclose(rotation, given)
    loose, replaced = rotation_from_bearing_steps(given, xy, vis, K, max_px=50.0)
    assert replaced == T_LEN - 1 and angle_deg(loose[-1], truth[-1][:3, :3]) > 5.0


def test_bearing_steps_skip_unseen_frames_unusable_tracks_and_too_few_tracks():
    """Steps into or out of an unseen frame, and steps seen by fewer than 8 usable tracks, keep the
    given rotation; the others are measured."""
    from fourds_ros.perception.pose_geometry import rotation_from_bearing_steps

    truth = poses(2.0, [0.0, 0.0, 0.0])
    _, xy, vis, _ = make_clip(truth)
    given = noisy_rotations(truth, 1.5)
    unseen = np.zeros(T_LEN, bool)
    unseen[4] = True
    _, replaced = rotation_from_bearing_steps(given, xy, vis, K, 2.0, skip=unseen)
    assert replaced == T_LEN - 3  # steps 3->4 and 4->5 kept
    vis[7:, 6:] = False  # from frame 6 on, 7 tracks seen
    rotation, replaced = rotation_from_bearing_steps(given, xy, vis, K, 2.0)
    assert replaced == 5  # steps 5->6 and 6->7 kept
    assert np.allclose(rotation[5].T @ rotation[7], given[5].T @ given[7])
    usable = np.zeros(len(xy), bool)
    usable[:7] = True  # the engine's padding slots carry no track
    assert rotation_from_bearing_steps(given, xy, np.ones_like(vis), K, 2.0, usable=usable)[1] == 0


def test_clip_pose_measures_the_rotation_steps_where_the_geometry_found_no_translation():
    """Rule 68: clip_pose with rotation_step_px > 0 (pose_rotation_step_px) measures the steps of the
    fused and smoothed rotations by the bare bearings (rotation_from_bearing_steps) only between
    frames the PnP geometry called rotation-only, and counts them in geo.rotation_steps; a camera
    that also translates keeps its pose as fused; translations and variances are never changed."""
    from fourds_ros.perception.pose_geometry import rotation_from_bearing_steps

    for truth, steps in ((poses(2.0, [0.0, 0.0, 0.0]), T_LEN - 1), (poses(1.5, [0.03, -0.01, 0.02]), 0)):
        depth, xy, vis, _ = make_clip(truth, noise_px=0.3, seed=5)
        outputs = turning_head_outputs(truth, depth, xy, vis)
        off = clip_pose(outputs, K, "fused", smoothing_order=2)
        on = clip_pose(outputs, K, "fused", smoothing_order=2, rotation_step_px=2.0)
        assert off[3].rotation_steps == 0 and on[3].rotation_steps == steps
        assert on[3].rotation_only[1:].all() == bool(steps)
        expected = rotation_from_bearing_steps(off[0], xy, vis, K, 2.0)[0] if steps else off[0]
        assert np.allclose(on[0], expected)
        assert np.array_equal(on[1], off[1]) and np.array_equal(on[2], off[2])


def test_a_step_stamped_off_the_cameras_period_keeps_the_fit_in_stamp_time():
    """A camera stamped on arrival bunches frames 1 ms apart: the bearing step measured the images' whole 2 degree
    turn over that 1 ms, undoing the fit in stamp time, and the odometry's twist (step / dt) read a 33x yaw rate with
    a small covariance. Steps off the clip's period (pose_geometry.off_period_frames) keep the fit; a regular
    clip's are measured as before."""
    from fourds_ros.perception.pose_geometry import off_period_frames

    truth = poses(2.0, [0.0, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(truth, noise_px=0.3, seed=5)
    outputs = turning_head_outputs(truth, depth, xy, vis)
    regular = [int(i * 33_333_333) for i in range(T_LEN)]
    bunched = list(regular)
    bunched[2] = bunched[1] + 1_000_000  # frame 2 stamped 1 ms after frame 1
    assert off_period_frames(regular, T_LEN).sum() == 0
    assert list(np.flatnonzero(off_period_frames(bunched, T_LEN))) == [1, 2, 3]
    on = clip_pose(outputs, K, "fused", smoothing_order=2, stamps_ns=regular, rotation_step_px=2.0)
    assert on[3].rotation_steps == T_LEN - 1
    rotation, *_ , geo = clip_pose(outputs, K, "fused", smoothing_order=2, stamps_ns=bunched, rotation_step_px=2.0)
    assert geo.rotation_steps == T_LEN - 1 - 4  # the steps 0-1, 1-2, 2-3 and 3-4 touch frames 1-3; 4-5 on measured
    assert angle_deg(rotation[1], rotation[2]) < 0.5  # 1 ms of a 60 deg/s turn, as the stamps say


def test_bearing_steps_leave_out_non_finite_tracks_and_bunched_ones():
    """A visible track at NaN or inf is left out of a step, as PnP leaves it out (it made the SVD raise
    and the clip's tracks and pose were lost); ten tracks bunched within a pixel leave the turn about
    their ray unmeasured and fit to 0 px: no step (a review found one 96 degrees off)."""
    from fourds_ros.perception.pose_geometry import bearing_step, rotation_from_bearing_steps

    truth = poses(2.0, [0.0, 0.0, 0.0])
    _, xy, vis, _ = make_clip(truth)
    xy[3, 4], xy[5, 2] = np.nan, np.inf
    rotation, replaced = rotation_from_bearing_steps(noisy_rotations(truth, 1.5), xy, vis, K, 2.0)
    assert replaced == T_LEN - 1 and angle_deg(rotation[-1], truth[-1][:3, :3]) < 0.1
    outputs = turning_head_outputs(truth, depth_map(), xy, vis)
    assert np.isfinite(clip_pose(outputs, K, "fused", rotation_step_px=2.0)[0]).all()
    turn = cv2.Rodrigues(np.radians([0.0, 2.0, 0.0]))[0]  # prev_from_next: a 2-degree turn
    prev = np.full((10, 2), 40.0) + np.random.default_rng(0).uniform(0, 0.5, (10, 2))
    rays = (turn.T @ np.linalg.solve(K, np.c_[prev, np.ones(10)].T)).T
    nxt = (K @ rays.T).T
    assert bearing_step(prev, nxt[:, :2] / nxt[:, 2:3], K, 2.0) is None


def test_a_rotation_only_frames_zero_translation_is_not_gated():
    """gate_outliers: a rotation-only frame's zero translation is no measurement: a head translation far from 0 with
    a small variance does not gate it (nor the measured frames before it)."""
    from fourds_ros.perception.pose_geometry import GATE_CHI2_999, GeometryPose, gate_outliers

    T = 4
    eye = np.tile(np.eye(3), (T, 1, 1))
    head_t = np.outer(np.arange(T), [0.1, 0.0, 0.0])  # 10 cm a frame, sd 1 cm
    head_var = np.tile([1e-4, 1e-4], (T, 1))
    geo_t = head_t.copy()
    geo_t[3] = 0.0  # frame 3: rotation-only, no translation measured
    geo = GeometryPose(rotation=eye.copy(), translation=geo_t, covariance=np.zeros((T, 6, 6)),
                       variance=np.tile([1e-4, 1e-4], (T, 1)), inliers=np.full(T, 50), points=np.full(T, 50),
                       rmse_px=np.zeros(T), rotation_only=np.array([False, False, False, True]),
                       valid=np.ones(T, bool), gated=np.zeros(T, bool), still=np.zeros(T, bool),
                       relinked=np.zeros(T, bool))
    assert not gate_outliers(eye, head_var, geo, GATE_CHI2_999, head_t).any()
