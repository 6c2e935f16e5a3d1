"""7-Scenes' RGB camera: depth registration, and the measurements behind its constants (real data)."""

import cv2
import numpy as np

from fourds_ros.evaluation.camera_fit import edge_correlation, epipolar_error, lk_correspondences, relative_motion, sampson_px
from fourds_ros.rgbd import (SEVEN_SCENES_RGB_OVER_DEPTH_FOCAL, DepthCamera, read_7scenes, read_depth, register_depth,
                             seven_scenes_depth_intrinsics)

from .conftest import SHARED_DATA, require

SCENES = SHARED_DATA / "7scenes_redkitchen_f000-299"


def k_of(f: float, w: int = 64, h: int = 48) -> np.ndarray:
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])


def test_register_depth_moves_a_step_edge_where_the_rgb_camera_sees_it():
    depth = np.full((48, 64), 2.0, np.float32)
    depth[:, :40] = 1.0  # a near surface left of column 40 (depth camera)
    camera = DepthCamera(k_of(100.0), (-0.05, 0.0, 0.0))
    out = register_depth(depth, camera, k_of(80.0))
    # column c at depth z lands at ((c - 32) / 100 * z - 0.05) / z * 80 + 32 in the RGB image
    near_edge = round(((39 - 32) / 100 * 1.0 - 0.05) / 1.0 * 80 + 32)
    row = out[24]
    assert row[near_edge] == np.float32(1.0) and row[near_edge + 2] == np.float32(2.0)
    assert set(np.unique(out[out > 0])) == {1.0, 2.0}  # depths are carried, not interpolated
    assert (out[:, :2] == 0).all() and (out[:, 56:] == 0).all()  # the wider RGB view: no depth at its border
    # where the far surface would land on the near one's pixels, the near one wins (occlusion)
    occluding = depth.copy()
    occluding[:, 40:] = 0.5
    assert register_depth(occluding, camera, k_of(80.0))[24, 40] == np.float32(0.5)


def test_sampson_error_is_least_at_the_true_focal_length():
    rng = np.random.default_rng(3)
    points = np.c_[rng.uniform(-1.5, 1.5, (300, 2)), rng.uniform(1.5, 4.0, 300)]
    k = k_of(500.0, 640, 480)
    angle = np.radians(4.0)
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    translation = np.array([0.15, 0.02, 0.05])
    p = (k @ points.T).T
    q = (k @ (points @ rotation.T + translation).T).T
    p, q = p[:, :2] / p[:, 2:], q[:, :2] / q[:, 2:] + rng.normal(0, 0.2, (300, 2))
    assert np.median(sampson_px(p, q, rotation, translation, k)) < 0.3
    errors = {f: epipolar_error([(p, q, rotation, translation)], k_of(f, 640, 480)) for f in (440, 470, 500, 530, 560)}
    assert min(errors, key=errors.get) == 500


def test_relative_motion_maps_points_from_camera_a_to_camera_b():
    world_from_a, world_from_b = np.eye(4), np.eye(4)
    world_from_b[:3, 3] = [1.0, 0.0, 0.0]  # b is 1 m along +x: a point at x = 1 in a is at x = 0 in b
    r, t = relative_motion(world_from_a, world_from_b)
    np.testing.assert_allclose(r @ np.array([1.0, 0, 2]) + t, [0, 0, 2])


def test_real_7scenes_rgb_focal_and_registration_beat_the_shipped_calibration():
    root = require(SCENES)
    seq = read_7scenes(root)
    k_depth = seven_scenes_depth_intrinsics(root)
    assert np.isclose(seq.intrinsics[0, 0], k_depth[0, 0] * SEVEN_SCENES_RGB_OVER_DEPTH_FOCAL)
    # the RGB camera's focal length explains the true motion better than the depth camera's
    gray = {i: cv2.cvtColor(seq.rgb(i), cv2.COLOR_RGB2GRAY) for i in (0, 8, 100, 108, 200, 208)}
    pairs = [(*lk_correspondences(gray[a], gray[b]), *relative_motion(seq.camera_to_world[a], seq.camera_to_world[b]))
             for a, b in ((0, 8), (100, 108), (200, 208))]
    assert epipolar_error(pairs, seq.intrinsics) < 0.8 * epipolar_error(pairs, k_depth)
    # registered depth has its edges on the RGB edges; the raw depth image does not
    raw = read_depth(seq.depth_paths[0], 1e-3)
    registered = seq.depth(0)
    assert edge_correlation(gray[0], registered) > edge_correlation(gray[0], raw) + 0.05
    assert 0.6 < (registered > 0).mean() < (raw > 0).mean()  # the wider RGB view: a border without depth
