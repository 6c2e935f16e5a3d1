"""Outputs a team reads and what they cost: costly messages built only while subscribed, depth_info with the depth
image's K and the path with the newest stamp, a rolled camera's K and point colours turned back, the camera_info
cache keeping the newest stamps, the startup wait bounded, and a lens with other distortion being another lens."""
from types import SimpleNamespace as NS

import numpy as np
import pytest

from fourds_ros.perception.settings import PerceptionSettings


def _frame(i, h=6, w=8, k=None, tracks=None):
    est = NS(odom_from_base=np.eye(4), covariance=np.eye(6), twist=np.zeros(6), twist_covariance=np.eye(6))
    k_in = np.array([[40.0, 0, 31.5], [0, 40, 23.5], [0, 0, 1]])  # the input image's K (64x48)
    depth_k = np.array([[5.0, 0, 3.5], [0, 5, 2.5], [0, 0, 1]])  # the model-resolution depth's K (8x6)
    return NS(depth=np.full((h, w), 2.0, np.float32), depth_k=depth_k, depth_rgb=np.zeros((h, w, 3), np.uint8),
              tracks=tracks, pose=est, stamp_ns=i * 1000, frame_id="cam", k=k_in)


def _tracks(n=2):
    from fourds_ros.perception.tracks import TrackSet
    import dataclasses
    fields = {f.name for f in dataclasses.fields(TrackSet)}
    base = {"ids": np.arange(n), "u": np.full(n, 10.0, np.float32), "v": np.full(n, 10.0, np.float32),
                "xyz": np.tile(np.float32([0.1, 0.1, 2.0]), (n, 1)), "visible": np.ones(n, bool)}
    extra = {}
    for f in dataclasses.fields(TrackSet):
        if f.name not in base and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            extra[f.name] = np.ones(n, np.float32)
    return TrackSet(**{k: v for k, v in base.items() if k in fields}, **extra)


def test_costly_outputs_are_not_built_without_subscribers():
    """outputs.py: depth/points, tracks/markers and the path are built only while wanted(key)."""
    from fourds_ros.ros.outputs import OutputMessages

    out = OutputMessages(PerceptionSettings.from_params())
    clip = NS(frames=[_frame(1, tracks=_tracks()), _frame(2, tracks=_tracks())], odometry_chain=0, lens=None)
    asked = []
    keys = [key for key, _ in out.build(clip, {0: np.zeros((2, 2))}, lambda key: asked.append(key) or False)]
    assert "depth_points" not in keys and "markers" not in keys and "path" not in keys, keys
    assert {"depth", "depth_info", "tracks", "odometry", "pose"} <= set(keys)


def test_depth_info_carries_the_depth_images_k_and_the_path_the_newest_stamp():
    """depth/camera_info describes the depth image (depth_k, not the input's K); the path's header
    carries the newest pose's stamp."""
    from fourds_ros.ros.outputs import OutputMessages

    out = OutputMessages(PerceptionSettings.from_params())
    for c in range(2):
        msgs = dict(out.build(NS(frames=[_frame(10 * c + 1), _frame(10 * c + 2)], odometry_chain=0, lens=None), {},
                              lambda key: True))
    f = _frame(0)
    np.testing.assert_allclose(np.reshape(msgs["depth_info"].k, (3, 3)), f.depth_k)
    assert (msgs["depth_info"].height, msgs["depth_info"].width) == f.depth.shape
    assert msgs["path"].header.stamp == msgs["path"].poses[-1].header.stamp
    assert msgs["path"].header.stamp.nanosec == 12 * 1000


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_rolled_cameras_k_and_point_colours_are_turned_back_with_its_depth(turns):
    """image_rotation.to_camera: FrameResult.k (used for the trail markers) and depth_rgb (the coloured
    depth/points) follow the depth back into the camera's own image."""
    from fourds_ros.perception.image_rotation import rotate_image, rotate_k, to_camera
    from fourds_ros.perception.pipeline import FrameResult
    from fourds_ros.ros import convert

    cam_hw = (6, 10)
    k_cam = np.array([[8.0, 0, 4.2], [0, 7.0, 2.6], [0, 0, 1]])
    k_up = rotate_k(k_cam, turns, cam_hw)
    up_hw = rotate_image(np.zeros(cam_hw), turns).shape
    depth = np.arange(np.prod(up_hw), dtype=np.float32).reshape(up_hw) + 1
    rgb = np.stack([np.arange(np.prod(up_hw)).reshape(up_hw) % 256] * 3, axis=-1).astype(np.uint8)
    r = FrameResult(1, "cam", 0, k_up, True, depth=depth, depth_k=k_up, depth_rgb=rgb)
    back = to_camera(r, turns, up_hw)
    np.testing.assert_allclose(back.k, k_cam, atol=1e-9)
    assert back.depth_rgb.shape[:2] == back.depth.shape
    # the colour of each pixel is the colour that pixel had upright
    np.testing.assert_array_equal(back.depth_rgb[..., 0], (back.depth.astype(int) - 1) % 256)
    convert.depth_points(back.depth, back.depth_k, back.depth_rgb, 1, 1, "cam")  # no shape error


def test_the_camera_info_cache_keeps_the_newest_stamps():
    """CameraInfoSync evicts the oldest camera_info past `cache`: a long stream's images still pair
    exactly with their own (else frames_without_own_camera_info counts every frame after 30)."""
    from fourds_ros.perception.camera_info_sync import CameraInfoSync

    sync = CameraInfoSync(cache=30)
    out = []
    for i in range(100):
        sync.push_info(i, np.eye(3) * (i + 1), now_s=i)
        out += sync.push_image(i, i, now_s=i)
    assert [p.exact for p in out] == [True] * 100
    assert all(np.array_equal(p.k, np.eye(3) * (p.item + 1)) for p in out)


def test_the_startup_wait_is_bounded_by_max_waiting():
    """At startup (no camera_info yet) no more than max_waiting images are held: a long startup wait on a
    fast camera must not hold an unbounded queue of decoded frames."""
    from fourds_ros.perception.camera_info_sync import CameraInfoSync

    sync = CameraInfoSync(startup_wait_s=10.0, max_waiting=5)
    released = []
    for i in range(20):
        released += sync.push_image(i, i, now_s=0.01 * i)
    assert len(sync.waiting) <= 5 and [p.item for p in released] == list(range(len(released)))


def test_a_lens_with_other_distortion_is_another_lens():
    """Lens.same_as: a camera_info whose distortion changed (same K) makes a new lens, so the depth maps
    and the published track pixels follow the new distortion."""
    from fourds_ros.perception.camera import Lens

    k = np.array([[500.0, 0, 319.5], [0, 500, 239.5], [0, 0, 1]])
    a = Lens(k, np.array([0.1, 0, 0, 0, 0]), "plumb_bob", k, (640, 480))
    b = Lens(k, np.array([-0.2, 0, 0, 0, 0]), "plumb_bob", k, (640, 480))
    assert a.same_as(a) and not a.same_as(b)
