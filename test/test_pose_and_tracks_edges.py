"""The pose a team reads, at its edges: covariances through a mount change, a turn, the twist's floors and a gap;
the outlier gate's units; the fusion's geodesic and kept sizes; held or unsolved frames' covariance; the head
taken where LK fails; jumps past max_deviation; the stepwise direction and the clip's bend at their boundaries."""

import cv2
import numpy as np
import pytest
import transforms3d.euler as euler

from fourds_ros.perception.odometry import OdometryChain, default_base_from_camera
from .test_perception_track_refine import SAMPLE

MS = 1_000_000


@pytest.fixture(scope="module")
def frame():
    """The first shipped sample frame, RGB (test_perception_track_refine's)."""
    return cv2.cvtColor(cv2.imread(str(sorted(SAMPLE.glob("*"))[0])), cv2.COLOR_BGR2RGB)
DT_NS = 33 * MS


def _camera_clip(chain, camera, indices, log_variance, output_t):
    truth = [np.linalg.inv(camera[indices[0]]) @ camera[i] for i in indices]
    return chain.add_clip(indices, [i * DT_NS for i in indices], np.stack([m[:3, :3] for m in truth]),
                          np.stack([m[:3, 3] for m in truth]), log_variance, output_t)


def test_the_bases_lever_arm_turns_with_the_robot():
    """Camera 0.3 m ahead of the base; the robot turns in place by 90 degrees over one clip. The camera's
    rotation uncertainty swings the base about the camera along the lever arm as it points *now* (odom -y
    after the turn), so the base's position variance is across it (odom x, z), not along it (odom y)."""
    mount = default_base_from_camera()
    mount[:3, 3] = (0.3, 0.0, 0.0)
    clip = 8
    base = []
    for i in range(clip):
        pose = np.eye(4)
        pose[:3, :3] = euler.euler2mat(0.0, 0.0, np.pi / 2 * i / (clip - 1))
        base.append(pose)
    camera = [np.linalg.inv(mount) @ b @ mount for b in base]
    log_variance = np.tile([np.log(1e-2), -30.0], (clip, 1))
    chain = OdometryChain(mount, rotation_var_floor=0.0, translation_var_floor=0.0)
    last = _camera_clip(chain, camera, list(range(clip)), log_variance, list(range(clip)))[-1]
    np.testing.assert_allclose(last.odom_from_base, base[-1], atol=1e-9)
    cov = last.covariance
    assert cov[0, 0] == pytest.approx(1e-2 * 0.09, rel=1e-6)
    assert cov[2, 2] == pytest.approx(1e-2 * 0.09, rel=1e-6)
    assert cov[1, 1] < 1e-9


def test_the_twist_covariance_floors_are_per_block():
    """pose_translation_var_floor bounds the linear twist's variance, pose_rotation_var_floor the
    angular one (ROS order vx vy vz wx wy wz): a team raising one floor must see it on its own block."""
    clip, dt = 8, DT_NS * 1e-9
    camera = []
    for i in range(clip):
        pose = np.eye(4)
        pose[2, 3] = 0.03 * i  # straight ahead along the optical axis
        camera.append(pose)
    chain = OdometryChain(np.eye(4), rotation_var_floor=1e-8, translation_var_floor=1e-4)
    est = _camera_clip(chain, camera, list(range(clip)), np.full((clip, 2), -30.0), list(range(clip)))
    diag = np.diag(est[-1].twist_covariance) * dt**2
    np.testing.assert_allclose(diag[:3], 1e-4, rtol=1e-3)
    np.testing.assert_allclose(diag[3:], 1e-8, rtol=1e-3)


def test_a_clip_after_an_unshared_hop_adds_one_unseen_frame(monkeypatch):
    """hop == clip length: the next clip shares no frame, and the one step between them is unseen: its
    first frame's covariance grows by exactly one UNSEEN_VARIANCE (rotation rad^2, translation m^2, put
    on rx ry rz and x y z), not by the clip's length."""
    import fourds_ros.perception.odometry as odometry

    UNSEEN_VARIANCE = (0.25, 4.0)  # distinct, so that a swapped order shows
    monkeypatch.setattr(odometry, "UNSEEN_VARIANCE", UNSEEN_VARIANCE)
    clip = 8
    camera = [np.eye(4) for _ in range(2 * clip)]
    chain = OdometryChain(np.eye(4), rotation_var_floor=0.0, translation_var_floor=0.0)
    lv = np.full((clip, 2), -30.0)
    first = _camera_clip(chain, camera, list(range(clip)), lv, list(range(clip)))
    second = _camera_clip(chain, camera, list(range(clip, 2 * clip)), lv, list(range(clip)))
    assert chain.gaps == 1
    growth = np.diag(second[0].covariance) - np.diag(first[-1].covariance)
    np.testing.assert_allclose(growth, [UNSEEN_VARIANCE[1]] * 3 + [UNSEEN_VARIANCE[0]] * 3, rtol=1e-6)


def test_a_new_mount_leaves_the_published_covariance_where_it_was():
    """A mount that arrives late (TF, up to camera_mount_timeout_s after the first frames) keeps the newest
    base pose where it was published (REP-105); its covariance must stay too, in the same odom axes:
    the stored camera covariances are turned into the new camera0's axes (new_R^T old_R, not the chain's
    move) and carried to where the new mount puts the camera. A clip after the change that sees no motion
    publishes the covariance of the pose before it."""
    clip, hop = 8, 2
    yaw = np.radians(30)
    old = default_base_from_camera()
    new = default_base_from_camera()
    new[:3, :3] = euler.euler2mat(0.0, 0.0, yaw) @ new[:3, :3]  # camera turned 30 degrees left on the base
    new[:3, 3] = (0.3, 0.0, 0.2)  # ... ahead of and above base_link
    camera = []
    for i in range(40):
        pose = np.eye(4)
        pose[2, 3] = 0.05 * i  # the camera drives ahead along its optical axis
        camera.append(pose)
    lv = np.tile([np.log(1e-4), np.log(1e-8)], (clip, 1))  # heading uncertain: lateral position grows
    chain = OdometryChain(old, rotation_var_floor=0.0, translation_var_floor=0.0)
    published = {}
    for _c, start in enumerate(range(0, 40 - clip + 1, hop)):
        indices = list(range(start, start + clip))
        output_t = [t for t, i in enumerate(indices) if i not in published]
        published.update(zip([indices[t] for t in output_t], _camera_clip(chain, camera, indices, lv, output_t)))
    before = published[max(published)]
    assert before.covariance[1, 1] > 10 * before.covariance[0, 0]  # anisotropic: lateral (odom y) grows
    chain.set_base_from_camera(new)
    last = max(published)
    still = [camera[last]] * clip
    indices = list(range(last, last + clip))
    cam = dict(zip(indices, still))
    exact = np.full((clip, 2), -30.0)
    after = _camera_clip(chain, cam, indices, exact, [1])[0]
    np.testing.assert_allclose(after.odom_from_base, before.odom_from_base, atol=1e-9)
    np.testing.assert_allclose(after.covariance, before.covariance, rtol=1e-6, atol=1e-12)


def _pose_inputs(geo_rotation, geo_variance, t_len=3):
    from fourds_ros.perception.pose_geometry import GeometryPose

    rot = np.tile(np.eye(3), (t_len, 1, 1))
    rot[1:] = geo_rotation
    return GeometryPose(rot, np.zeros((t_len, 3)), np.zeros((t_len, 6, 6)), np.tile(geo_variance, (t_len, 1)),
                        np.full(t_len, 50), np.full(t_len, 50), np.zeros(t_len), np.zeros(t_len, bool),
                        np.ones(t_len, bool), np.zeros(t_len, bool), np.zeros(t_len, bool), np.zeros(t_len, bool))


def test_the_outlier_gate_reads_the_rotation_variances_not_the_translation_ones():
    """gate_outliers compares a rotation difference (rad) with the rotation variances (rad^2): a geometry
    frame 30 degrees off a confident head is gated however uncertain the two translations are, and a
    2-degree difference within uncertain rotations is not, however confident the translations are."""
    from fourds_ros.perception.pose_geometry import GATE_CHI2_999, gate_outliers

    turned = cv2.Rodrigues(np.array([0.0, np.radians(30), 0.0]))[0]
    geo = _pose_inputs(turned, [1e-4, 10.0])
    head_var = np.tile([1e-4, 10.0], (3, 1))
    assert gate_outliers(np.tile(np.eye(3), (3, 1, 1)), head_var, geo, GATE_CHI2_999)[1:].all()
    slight = cv2.Rodrigues(np.array([0.0, np.radians(2), 0.0]))[0]
    geo = _pose_inputs(slight, [1e-2, 1e-8])
    head_var = np.tile([1e-2, 1e-8], (3, 1))
    assert not gate_outliers(np.tile(np.eye(3), (3, 1, 1)), head_var, geo, GATE_CHI2_999).any()


def test_fusion_moves_the_heads_rotation_toward_the_geometrys_along_the_geodesic():
    """fuse: an exact geometry (variance ~0) gives its own rotation, equal variances the geodesic
    midpoint, also where the two rotations do not commute (30 degrees about x against about y)."""
    from fourds_ros.perception.pose_geometry import fuse

    head = cv2.Rodrigues(np.array([np.radians(30), 0.0, 0.0]))[0][None]
    geo = cv2.Rodrigues(np.array([0.0, np.radians(30), 0.0]))[0][None]
    zero = np.zeros((1, 3))
    rotation, _, _ = fuse(head, zero, np.array([[1e-2, 1e-2]]), geo, zero, np.array([[1e-14, 1e-2]]))
    np.testing.assert_allclose(rotation[0], geo[0], atol=1e-6)
    rotation, _, _ = fuse(head, zero, np.array([[1e-2, 1e-2]]), geo, zero, np.array([[1e-2, 1e-2]]))
    to_head = np.linalg.norm(cv2.Rodrigues(rotation[0].T @ head[0])[0])
    to_geo = np.linalg.norm(cv2.Rodrigues(rotation[0].T @ geo[0])[0])
    total = np.linalg.norm(cv2.Rodrigues(head[0].T @ geo[0])[0])
    assert to_head == pytest.approx(total / 2, rel=1e-6) and to_geo == pytest.approx(total / 2, rel=1e-6)


def test_kept_sizes_are_weighted_by_the_translation_variances():
    """fuse(keep_sizes=True): the fused size is the sizes' mean weighted by the translation variances
    (1 m and 2 m at equal translation variance: 1.5 m), whatever the rotation variances say."""
    from fourds_ros.perception.pose_geometry import fuse

    eye = np.tile(np.eye(3), (2, 1, 1))
    head_t, geo_t = np.array([[0, 0, 0], [1.0, 0, 0]]), np.array([[0, 0, 0], [0, 2.0, 0]])
    head_var = np.array([[1.0, 1e-2], [1.0, 1e-2]])
    geo_var = np.array([[1e-10, 1e-2], [1e-10, 1e-2]])  # exact rotation, as uncertain a translation
    kept = fuse(eye, head_t, head_var, eye, geo_t, geo_var, keep_sizes=True)[1][1]
    assert np.linalg.norm(kept) == pytest.approx(1.5)


def _noiseless_clip():
    h = w = 128
    k = np.array([[110.0, 0, 63.5], [0, 110.0, 63.5], [0, 0, 1]])
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    depth = (2.0 + 0.6 * (ys / h) + 0.3 * np.sin(xs / 9.0) * np.cos(ys / 13.0)).astype(np.float32)
    g = np.linspace(12, w - 13, 12).round()
    xy0 = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    z = depth[xy0[:, 1].astype(int), xy0[:, 0].astype(int)]
    pts0 = np.linalg.solve(k, np.c_[xy0, np.ones(len(xy0))].T).T * z[:, None]
    xy = np.zeros((len(xy0), 4, 2))
    for t in range(4):
        pose = np.eye(4)
        pose[:3, :3] = cv2.Rodrigues(np.array([0.0, np.radians(1.5 * t), 0.0]))[0]
        pose[:3, 3] = (0.03 * t, 0.0, 0.02 * t)
        cam = (np.linalg.inv(pose) @ np.c_[pts0, np.ones(len(pts0))].T).T[:, :3]
        uv = (k @ cam.T).T
        xy[:, t] = uv[:, :2] / uv[:, 2:3]
    return depth, xy, np.ones(xy.shape[:2], bool), k


def test_noiseless_tracks_get_the_covariance_of_min_sigma_px():
    """Tracks without noise fit to 0 px; the covariance then rests on min_sigma_px, a standard deviation
    in px: doubling it quadruples every variance."""
    from fourds_ros.perception.pose_geometry import solve_clip_motion

    depth, xy, vis, k = _noiseless_clip()
    small = solve_clip_motion(depth, xy, vis, k, min_sigma_px=0.25)
    large = solve_clip_motion(depth, xy, vis, k, min_sigma_px=0.5)
    assert small.valid.all() and small.rmse_px[1:].max() < 1e-3
    np.testing.assert_allclose(large.variance[1:], 4 * small.variance[1:], rtol=1e-3)


def test_a_held_head_frame_publishes_an_unknown_covariance():
    """finite_head holds a NaN head frame 'with the largest variance': with pose_source head that is what
    the odometry publishes for it, so it must say unknown (LOG_VARIANCE_LIMITS' upper), not 1 rad^2 / 1 m^2."""
    from fourds_ros.perception.pose_geometry import LOG_VARIANCE_LIMITS, clip_pose, finite_head

    t_len = 4
    outputs = {"pose_rotation": np.tile(np.eye(3), (1, t_len, 1, 1)), "pose_translation": np.zeros((1, t_len, 3)),
               "pose_log_variance": np.full((1, t_len, 2), -8.0)}
    outputs["pose_translation"][0, 2] = np.nan
    fixed, nonfinite, _ = finite_head(outputs)
    assert nonfinite.tolist() == [False, False, True, False]
    _, _, log_var, _ = clip_pose(fixed, np.eye(3), mode="head")
    np.testing.assert_array_equal(log_var[2], [LOG_VARIANCE_LIMITS[1]] * 2)
    np.testing.assert_array_equal(log_var[[0, 1, 3]], -8.0)


def test_a_still_frame_the_geometry_could_not_solve_keeps_the_fused_pose():
    """_combine: a frame the still test called still whose pose the geometry then could not solve (valid
    False: its identity, zero translation and zero variance are placeholders) keeps the head's pose and
    variance; taken as the geometry's own, it claimed an exact pose (variance 0 -> log -69)."""
    from fourds_ros.perception.pose_geometry import _combine

    t_len = 3
    geo = _pose_inputs(np.eye(3), [0.0, 0.0], t_len)
    geo.valid[2], geo.still[2] = False, True
    head_r = np.tile(cv2.Rodrigues(np.array([0.0, 0.1, 0.0]))[0], (t_len, 1, 1))
    head_t, head_var = np.tile([0.1, 0.0, 0.0], (t_len, 1)), np.full((t_len, 2), 1e-3)
    for mode in ("fused", "geometry"):
        rotation, translation, variance = _combine(mode, head_r, head_t, head_var, geo, False)
        np.testing.assert_allclose(rotation[2], head_r[2])
        np.testing.assert_allclose(translation[2], head_t[2])
        np.testing.assert_allclose(variance[2], head_var[2])


def test_a_step_over_two_frames_spreads_its_turn_evenly():
    """rotation_from_steps: corners followed every second frame (FOLLOW_STRIDE) measure a 4-degree turn
    from frame 0 to 2 that the solver missed; frame 1, between them, gets half of it, not all of it."""
    from fourds_ros.perception.epipolar import rotation_from_steps

    k = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    rng = np.random.default_rng(0)
    xa = np.c_[rng.uniform(40, 600, 80), rng.uniform(40, 440, 80)]
    turn = cv2.Rodrigues(np.array([0.0, np.radians(4.0), 0.0]))[0]  # a_from_b
    rays = np.linalg.solve(k, np.c_[xa, np.ones(len(xa))].T)
    moved = k @ (turn.T @ rays)
    xb = (moved[:2] / moved[2]).T
    solved = np.tile(np.eye(3), (3, 1, 1))
    out, measured = rotation_from_steps(solved, [(0, 2, xa, xb)], k, np.zeros(3, bool))
    assert measured == 1
    np.testing.assert_allclose(out[2], turn, atol=1e-6)
    half = cv2.Rodrigues(np.array([0.0, np.radians(2.0), 0.0]))[0]
    np.testing.assert_allclose(out[1], half, atol=1e-6)


def test_head_positions_taken_where_lk_fails_are_confirmed_and_counted(frame):
    """flow: where LK fails, the head's position is taken only at a template score of confirm_score (not
    min_score), and each one taken counts in track_steps_head_taken (/diagnostics)."""
    from .test_perception_track_refine import shifted, textured_points

    from fourds_ros.perception.track_refine import TemplateRefiner, gray

    first, moved = gray(frame), gray(shifted(frame, 2.0, 1.0))
    points = textured_points(first, 12, 60)
    head = points + (6.0, 1.0)
    visible = np.ones(len(points), bool)
    noise = np.random.default_rng(1).uniform(0, 255, first.shape).astype(np.float32)  # LK fails everywhere
    flow = TemplateRefiner(flow=True)
    templates = [flow.template(first, u, v) for u, v in points]
    scores = [flow.refine(moved, tpl, *head[j])[2] if tpl is not None else np.nan for j, tpl in enumerate(templates)]
    confirmed = int(np.sum(np.asarray(scores) >= flow.confirm_score))
    assert confirmed >= 3
    flow.follow(noise, moved, points, head, visible, templates)
    assert flow.counts["track_steps_lk_lost"] == len(points)
    assert flow.counts["track_steps_head_taken"] == confirmed
    strict = TemplateRefiner(flow=True, confirm_score=1.01)  # no score confirms: nothing taken from the head
    strict.follow(noise, moved, points, head, visible, templates)
    assert strict.counts["track_steps_head_taken"] == 0


def test_a_track_stepping_past_max_deviation_is_a_jump():
    """motion_outliers: a track whose step departs from the visible tracks' median by 1.5 x max_deviation
    jumped, from that frame on; one at 0.5 x did not."""
    from fourds_ros.perception.tracks import motion_outliers

    n, t_len, dev = 8, 4, 6.0
    xy = np.zeros((n, t_len, 2))
    xy[:, :, 0] = np.arange(t_len) * 2.0  # every track steps 2 px a frame
    xy[0, 2:, 0] += 1.5 * dev  # track 0 jumps into frame 2
    xy[1, 2:, 0] += 0.5 * dev  # track 1 steps a little off
    jumped = motion_outliers(xy, np.ones((n, t_len), bool), np.zeros(n, int), dev)
    assert jumped[0].tolist() == [False, False, True, True]
    assert not jumped[1:].any()


def test_stepwise_direction_and_the_bend_at_their_documented_boundaries():
    """stepwise_direction: None only when *fewer* than half of the steps measured (one of two is enough);
    rotation_from_steps' bend to the two views' rotation is spread over the clip (frame 0 stays the origin)."""
    from fourds_ros.perception.epipolar import EpipolarMotion, rotation_from_steps, stepwise_direction

    eye = np.tile(np.eye(3), (3, 1, 1))
    translation = np.array([[0, 0, 0], [0, 0, 0.1], [0, 0, 0.2]])
    steps = [(0, 1, None, None), (1, 2, None, None)]
    motions = [EpipolarMotion(np.array([1.0, 0, 0]), np.eye(3), 50, 3.0), None]
    direction = stepwise_direction(steps, motions, eye, translation)
    assert direction is not None
    np.testing.assert_allclose(direction, np.array([0.1, 0, 0.1]) / np.hypot(0.1, 0.1))
    end = cv2.Rodrigues(np.array([0.0, np.radians(6.0), 0.0]))[0]
    out, _ = rotation_from_steps(eye, [], np.eye(3), np.zeros(3, bool), first_from_last=end)
    np.testing.assert_allclose(out[0], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(out[1], cv2.Rodrigues(np.array([0.0, np.radians(3.0), 0.0]))[0], atol=1e-9)
    np.testing.assert_allclose(out[2], end, atol=1e-9)


def test_a_non_finite_confidence_from_the_head_is_no_visible_track():
    """The head's confidence was passed through as it was: a NaN (a fuzz of the engine's outputs, session 67)
    was published on visible tracks, into a consumer's weighting. Such a point is not seen, and reads 0."""
    from fourds_ros.perception.preprocess import Preprocessor
    from fourds_ros.perception.settings import TrackSettings
    from fourds_ros.perception.tracks import TrackManager

    pmap = Preprocessor((32, 32), "resize").pixel_map((64, 64))
    manager = TrackManager(8, (32, 32), TrackSettings(refinement="none", image_fallback=False, max_deviation_px=0.0,
                                                      max_tracks=8, query_mode="grid"))
    q, ids = manager.make_queries([0, 1], np.zeros((32, 32, 3), np.float32), pmap)
    xy = np.repeat(q[:, None, [2, 1]], 2, axis=1)
    confidence = np.ones((8, 2))
    confidence[0, 1], confidence[1, 1] = np.nan, np.inf
    sets = manager.update(ids, xy, np.ones((8, 2)), confidence, [0, 1], [0, 1], pmap)
    assert np.isfinite(sets[1].confidence).all()
    assert sets[0].visible[:2].all() and not sets[1].visible[:2].any() and sets[1].visible[2:].all()
