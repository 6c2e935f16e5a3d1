"""A camera mounted rolled by quarter turns (image_rotation): the pipeline turns its images upright
for the model and every output back into the camera's own image and frame."""

import numpy as np
import pytest

from fourds_ros.perception.image_rotation import (
    quarter_turns, rotate_image, rotate_k, rotate_pixels, upright_from_camera, upright_turns,
)
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.rgbd import read_sequence

from .test_default_model import DEFAULT_MODEL, SAMPLE


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_turned_image_pixels_k_and_frame_agree(turns):
    """A 3-D point seen by a camera, and the same point in the upright view (its optical frame turned
    by upright_from_camera): rotate_k projects it where rotate_pixels / rotate_image put its pixel."""
    hw = (6, 10)
    k = np.array([[8.0, 0, 4.2], [0, 7.0, 2.6], [0, 0, 1]])
    point = np.array([0.3, -0.2, 1.5])
    u, v = (k @ point)[:2] / point[2]
    k_up = rotate_k(k, turns, hw)
    p_up = upright_from_camera(turns)[:3, :3] @ point
    u_up, v_up = (k_up @ p_up)[:2] / p_up[2]
    assert np.allclose(rotate_pixels(u, v, turns, hw), (u_up, v_up))
    image = np.arange(60).reshape(hw)
    turned = rotate_image(image, turns)
    r, c = 2, 7  # a pixel centre, moved by rotate_pixels to where rotate_image moved its value
    cu, cv = rotate_pixels(c, r, turns, hw)
    assert turned[int(round(cv)), int(round(cu))] == image[r, c]
    back = (4 - turns) % 4
    assert np.allclose(rotate_k(k_up, back, turned.shape), k)


def test_image_rotation_must_be_a_quarter_turn():
    assert [quarter_turns(d) for d in (0, 90, 180, 270)] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="image_rotation"):
        PerceptionSettings.from_params({"image_rotation": 45})


def _run(turns: int, frames, k, base_from_camera):
    from fourds_ros.perception.pipeline import create_pipeline

    settings = PerceptionSettings.from_params({"model": str(DEFAULT_MODEL), "backend": "torch",
                                               "image_rotation": 90 * turns})
    pipe, _ = create_pipeline(settings, log=lambda *_: None)
    pipe.set_camera_mount(base_from_camera)
    return [r for i, rgb in enumerate(frames) for r in pipe.push(rgb, i * 33_333_333, "camera", k)], pipe


@pytest.mark.parametrize("turns", [1, 2])
def test_a_rolled_camera_with_image_rotation_gets_the_upright_cameras_outputs_in_its_own_frame(turns):
    """The demo sample's frames as a camera rolled by `turns` quarter turns sees them, with
    image_rotation set: the model sees the upright frames bit for bit, so every output must be the
    upright run's, turned into the rolled camera's image and optical frame, and the robot's odometry
    (base frame, mount from TF) must be the upright run's."""
    seq = read_sequence(SAMPLE)
    upright = [seq.rgb(i) for i in range(15)]
    hw = upright[0].shape[:2]
    back = (4 - turns) % 4  # the rolled camera's image is the upright one turned back
    rolled = [rotate_image(f, back) for f in upright]
    up_from_rolled = upright_from_camera(turns)
    base_from_upright = np.eye(4)
    base_from_upright[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]  # REP-103 optical -> body
    ref, _ = _run(0, upright, seq.intrinsics, base_from_upright)
    out, pipe = _run(turns, rolled, rotate_k(seq.intrinsics, back, hw), base_from_upright @ up_from_rolled)
    assert [r.index for r in out] == [r.index for r in ref] and len(out) >= 8
    for a, b in zip(ref, out):
        assert np.allclose(rotate_image(a.depth, back), b.depth, equal_nan=True, atol=1e-5)
        assert np.allclose(rotate_k(a.depth_k, back, a.depth.shape), b.depth_k)
        assert np.array_equal(a.tracks.ids, b.tracks.ids) and np.array_equal(a.tracks.visible, b.tracks.visible)
        u, v = rotate_pixels(a.tracks.u.astype(float), a.tracks.v.astype(float), back, hw)
        assert np.allclose(u, b.tracks.u, atol=1e-3) and np.allclose(v, b.tracks.v, atol=1e-3)
        rolled_from_up = np.linalg.inv(up_from_rolled)[:3, :3]
        assert np.allclose(a.tracks.xyz @ rolled_from_up.T, b.tracks.xyz, atol=1e-4, equal_nan=True)
        assert np.allclose(a.pose.odom_from_base, b.pose.odom_from_base, atol=1e-6)
        assert np.allclose(a.pose.odom_from_camera @ up_from_rolled, b.pose.odom_from_camera, atol=1e-6)
    trail_id, trail = next(iter(pipe.trails().items()))
    assert trail.shape[1] == 2 and 0 <= trail[:, 0].max() < rolled[0].shape[1] and trail_id in out[-1].tracks.ids


def test_the_mount_tells_which_image_rotation_makes_the_images_upright():
    """REP-103 optical-to-body mount: upright. The same camera rolled by t quarter turns (what a
    URDF says of an upside-down or portrait camera) needs image_rotation 90 t; a camera looking
    straight down gives no advice."""
    base_from_upright = np.eye(4)
    base_from_upright[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    for t in range(4):
        assert upright_turns(base_from_upright @ upright_from_camera(t)) == t
    pitched = base_from_upright.copy()
    tilt = np.radians(30)  # looking 30 degrees down at the floor: still upright
    pitched[:3, :3] = base_from_upright[:3, :3] @ np.array(
        [[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    assert upright_turns(pitched) == 0
    down = np.eye(4)
    down[:3, :3] = [[0, -1, 0], [-1, 0, 0], [0, 0, -1]]  # optical axis along the base's -z
    assert upright_turns(down) is None
