"""The robot itself in view (exclude_boxes): no tracks or depth there, so that its body, which moves
with the camera, does not read as a still camera."""

import numpy as np
import pytest

from fourds_ros.perception.exclusion import box_list, excluded_input_pixels, excluded_model_pixels
from fourds_ros.perception.preprocess import Preprocessor
from fourds_ros.perception.settings import PerceptionSettings, TrackSettings
from fourds_ros.perception.tracks import TrackManager, on_robot
from fourds_ros.rgbd import read_sequence

from .test_default_model import DEFAULT_MODEL, SAMPLE


def test_boxes_become_the_model_pixels_they_cover_also_for_a_rolled_camera():
    pmap = Preprocessor((16, 16), "center_crop").pixel_map((48, 64))  # the 48x48 centre of a 48x64 image
    bottom = box_list([0.0, 0.75, 1.0, 1.0, 0.2, 0.2, 0.2, 0.9])  # the second box has no area: none
    assert len(bottom) == 1
    mask = excluded_model_pixels(bottom, (16, 16), pmap, 0, (48, 64))
    assert mask[12:].all() and not mask[:12].any()  # the image's bottom quarter is the model's too
    # The same camera rolled 180 degrees (image_rotation 180): its bottom is the upright view's top.
    flipped = excluded_model_pixels(bottom, (16, 16), pmap, 2, (48, 64))
    assert flipped[:4].all() and not flipped[4:].any()
    assert excluded_model_pixels(box_list([0.0, 0.0, 0.0, 0.0]), (16, 16), pmap, 0, (48, 64)) is None
    assert list(on_robot(mask, np.array([[3.0, 14.0], [3.0, 2.0], [np.nan, 14.0], [-5.0, 14.0]]))) == [True, False, False, False]
    with pytest.raises(ValueError, match="exclude_boxes"):
        PerceptionSettings.from_params({"exclude_boxes": [0.0, 0.5, 1.0]})
    with pytest.raises(ValueError, match="exclude_boxes"):
        PerceptionSettings.from_params({"exclude_boxes": [0.5, 0.5, 0.2, 1.0]})


def test_no_track_is_seeded_or_kept_on_the_robot():
    pmap = Preprocessor((32, 32), "resize").pixel_map((64, 64))
    excluded = np.zeros((32, 32), bool)
    excluded[20:] = True
    manager = TrackManager(32, (32, 32), TrackSettings(refinement="none", image_fallback=False, max_deviation_px=0.0,
                                                       max_tracks=16, query_mode="grid"))
    q, ids = manager.make_queries([0, 1], np.zeros((32, 32, 3), np.float32), pmap, excluded)
    seeds = q[ids >= 0]
    assert len(seeds) >= 14 and (seeds[:, 1] < 19.5).all()  # as many tracks, all above the robot
    xy = np.repeat(q[:, None, [2, 1]], 2, axis=1)
    xy[0, 1] = (5.0, 25.0)  # track 0 moves onto the robot in frame 1
    sets = manager.update(ids, xy, np.ones((32, 2)), np.ones((32, 2)), [0, 1], [0, 1], pmap, excluded=excluded)
    assert sets[0].visible[0] and not sets[1].visible[0] and sets[1].visible[1:].all()


def _path_ratio(params: dict, body_fraction: float) -> float:
    """The shipped pipeline over the demo sample (a moving camera) with a still patch over the bottom
    `body_fraction` of every frame, as a robot's chassis in view: estimated over true path length."""
    from fourds_ros.perception.pipeline import create_pipeline

    seq = read_sequence(SAMPLE)
    pipe, _ = create_pipeline(PerceptionSettings.from_params({"model": str(DEFAULT_MODEL), "backend": "torch",
                                                              **params}), log=lambda *_: None)
    body = seq.rgb(5)  # a real image crop, the same in every frame
    results = []
    for i in range(len(seq)):
        rgb = seq.rgb(i)
        y0 = int(rgb.shape[0] * (1 - body_fraction))
        rgb[y0:] = body[y0:]
        results += pipe.push(rgb, i * 33_333_333, "camera", seq.intrinsics)
    poses = {r.index: r.pose.odom_from_camera for r in results}
    n = max(poses)
    est = sum(np.linalg.norm((np.linalg.inv(poses[j - 1]) @ poses[j])[:3, 3]) for j in range(1, n + 1))
    true = sum(np.linalg.norm((np.linalg.inv(seq.camera_to_world[j - 1]) @ seq.camera_to_world[j])[:3, 3])
               for j in range(1, n + 1))
    return est / true


def test_the_robot_in_view_no_longer_freezes_the_odometry():
    """A still patch over the bottom 45 % of a walking camera's frames: its tracks stay put, and the
    pose solver read every frame as a still camera (odometry frozen: path ratio 0; ATE 0.545 m, that
    of a camera that never moved). With the patch excluded the odometry walks again (path ratio
    0.77, ATE 0.111 m, against 0.071 m without the patch; model card, session 23)."""
    assert _path_ratio({}, 0.45) < 0.1
    assert _path_ratio({"exclude_boxes": [0.0, 0.55, 1.0, 1.0]}, 0.45) > 0.5


def test_epipolar_corners_are_seeded_off_the_robot_in_camera_pixels():
    """pose_epipolar_corners seeds its corners where exclude_boxes is not: the mask over the whole
    upright camera image (outside the model's window too), turned with image_rotation."""
    bottom = box_list([0.0, 0.75, 1.0, 1.0])
    on = excluded_input_pixels(bottom, (480, 640))
    assert on[360:].all() and not on[:360].any()
    # image_rotation 90: the camera's bottom rows are a side of the upright view, the same side as
    # the model-pixel mask's when the model sees the whole image at its own size
    turned = excluded_input_pixels(bottom, (640, 480), turns=1)
    assert turned.shape == (640, 480) and turned[:, 360:].all() and not turned[:, :360].any()
    identity = Preprocessor((640, 480), "resize").pixel_map((640, 480))
    assert np.array_equal(turned, excluded_model_pixels(bottom, (640, 480), identity, 1, (640, 480)))
    assert excluded_input_pixels(box_list([0.0, 0.0, 0.0, 0.0]), (480, 640)) is None
    from fourds_ros.perception.pipeline import create_pipeline

    pipe, _ = create_pipeline(PerceptionSettings.from_params(
        {"model": str(DEFAULT_MODEL), "backend": "torch", "exclude_boxes": [0.0, 0.75, 1.0, 1.0]}),
        log=lambda *_: None)
    keep = pipe._off_robot_pixels((480, 640))
    assert np.array_equal(keep, ~on) and keep is pipe._off_robot_pixels((480, 640))  # cached


def test_a_track_the_image_fallback_follows_onto_the_robot_outside_the_models_window_is_dropped():
    """The model sees the centre 240x240 of a 360x240 camera; the robot's bumper fills the bottom
    quarter of the whole image. A track the fallback follows on the image, left of the model's
    window and on the bumper, was published visible and kept: the model-pixel mask ends at the
    window. The camera-pixel mask (the same boxes) now covers the whole image."""
    from collections import deque

    import cv2

    from fourds_ros.perception.tracks import ClipImages, Track

    in_hw, model_hw, t_len = (240, 360), (128, 128), 8
    pmap = Preprocessor(model_hw).pixel_map(in_hw)
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, in_hw).astype(np.float32), (0, 0), 1.5)
    still = np.repeat(cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)[..., None], 3, 2)
    images = ClipImages([still] * t_len)
    boxes = box_list([0.0, 0.75, 1.0, 1.0])
    excluded, on = excluded_model_pixels(boxes, model_hw, pmap, 0, in_hw), excluded_input_pixels(boxes, in_hw, 0)
    results = {}
    for off_robot in (None, ~on):
        manager = TrackManager(8, model_hw, TrackSettings())  # flow refinement and the image fallback: the defaults
        x, y = pmap.to_model(30.0, 200.0)  # left of the window (x 60-300), on the bumper
        template = manager.refiner.template(images.gray(0), 30.0, 200.0)
        manager.tracks[0] = Track(0, float(x), float(y), 0, deque(maxlen=8), template, on_image=True)
        manager.next_id = 1
        empty = np.zeros((8, t_len))
        sets = manager.update(np.full(8, -1), np.zeros((8, t_len, 2)), empty, empty, list(range(t_len)),
                              list(range(1, t_len)), pmap, images, unseen=np.zeros(t_len, bool), excluded=excluded,
                              off_robot=off_robot)
        results[off_robot is None] = [bool(s.visible[0]) for s in sets], 0 in manager.tracks
    assert results[True] == ([True] * 7, True)  # without the camera-pixel mask: matched, published, kept
    assert results[False] == ([False] * 7, False)


@pytest.mark.parametrize("turns_deg, work_pixels", [(0, 0), (90, 100_000)])
def test_camera_resolution_depth_is_nan_over_the_whole_box(tiny_model_dir, turns_deg, work_pixels):
    """depth_output_resolution: camera: the boxes were applied in model pixels only (a pixel counts when
    its centre is in a box), so a model pixel straddling a box's edge, upsampled, put 2-5 rows of depth
    inside the box (a line of points along the bumper for the costmap). Now NaN over the box in camera
    pixels, in every rotation and with a divided work image."""
    from fourds_ros.perception.pipeline import create_pipeline

    box = [0.0, 0.71, 1.0, 1.0]  # an edge off the model grid
    settings = PerceptionSettings.from_params({
        "model": str(tiny_model_dir), "backend": "torch", "exclude_boxes": box, "image_rotation": turns_deg,
        "work_image_max_pixels": work_pixels, "depth_output_resolution": "camera", "min_depth": 0.0,
        "max_depth": 1e9, "min_image_texture": 0.0, "enable_pose": False, "enable_tracks": False})
    pipe, _ = create_pipeline(settings, log=lambda *_: None)
    rng = np.random.default_rng(0)
    out = [r for i in range(4) for r in pipe.push(rng.integers(0, 255, (480, 640, 3), np.uint8), i * 33_000_000, "cam")]
    depth = out[-1].depth
    assert depth.shape == (480, 640)
    in_box = ((np.arange(480) + 0.5) / 480 >= box[1])[:, None] & np.ones((1, 640), bool)
    assert not np.isfinite(depth[in_box]).any(), np.nonzero(np.isfinite(depth) & in_box)[0][:5]
    assert np.isfinite(depth[~in_box]).mean() > 0.5  # the view above the box keeps its depth
