"""Pixel and frame conventions of the perception steps: backproject with fx != fy, the default K's principal
point, nearest-pixel sampling to the last row, the texture and partly-blind thresholds, depth brought to camera
resolution by nearest pixel, the pixel budget, a repeated stamp while a jump is held, a gap of exactly max_gap_s."""

from __future__ import annotations

import numpy as np

from fourds_ros.perception.clip_buffer import ClipBuffer, Frame, StampHold
from fourds_ros.perception.pipeline import FrameResult
from fourds_ros.perception.preprocess import (backproject, default_intrinsics, partly_blind, sample_nearest,
                                              texture_of)
from fourds_ros.perception.work_image import WorkImage


def test_backproject_scales_x_by_fx_and_y_by_fy():
    # A camera with non-square pixels (fx != fy): the tracks' xyz and the depth point cloud (convert.depth_points)
    # both go through backproject.
    k = np.array([[500.0, 0, 320], [0, 250.0, 240], [0, 0, 1]])
    xyz = backproject(np.array([420.0]), np.array([340.0]), np.array([2.0]), k)
    np.testing.assert_allclose(xyz, [[0.4, 0.8, 2.0]])


def test_default_intrinsics_put_the_principal_point_at_the_image_centre_in_pixel_indices():
    k = default_intrinsics((480, 640), 60.0)
    np.testing.assert_allclose(k[:2, 2], [319.5, 239.5])  # the centre of pixel indices 0..639, 0..479
    np.testing.assert_allclose(k[0, 0], 320 / np.tan(np.radians(30)))
    np.testing.assert_allclose(k[1, 1], k[0, 0])


def test_sample_nearest_rounds_to_the_nearest_pixel_and_reaches_the_last_row_and_column():
    image = np.arange(20, dtype=np.float32).reshape(4, 5)
    x = np.array([1.6, 4.0, 4.4, 0.0, -0.6, 4.6, np.nan])
    y = np.array([0.4, 3.0, 3.4, 2.6, 0.0, 0.0, 1.0])
    out = sample_nearest(image, x, y, np.nan)
    np.testing.assert_array_equal(out, [image[0, 2], image[3, 4], image[3, 4], image[3, 0], np.nan, np.nan, np.nan])


def test_texture_is_that_of_the_most_textured_tenth_of_the_view():
    # "The percentile asks for texture on a tenth of the area at least": 15 % textured reads as textured.
    magnitude = np.zeros((1, 100, 100), np.float32)
    magnitude[0, :15] = 10.0
    assert texture_of(magnitude)[0] == 10.0
    magnitude[0, 8:15] = 0.0  # 8 %: not enough
    assert texture_of(magnitude)[0] == 0.0


def test_partly_blind_counts_only_cells_below_half_the_texture_a_frame_needs():
    # Sky or a blank wall below the full threshold on 6 of 16 cells is a normal view (up to 31 % measured);
    # the same cells below half of it are a covered part of the lens.
    min_texture = 4.0
    magnitude = np.full((2, 64, 64), 10.0, np.float32)
    magnitude[0, :16, :] = 3.0  # 4 cells: 0.75 x min_texture
    magnitude[0, 16:32, :32] = 3.0  # 2 more
    magnitude[1, :16, :] = 1.0  # 4 cells: 0.25 x min_texture
    magnitude[1, 16:32, :32] = 1.0
    np.testing.assert_array_equal(partly_blind(magnitude, min_texture), [False, True])


def test_depth_brought_to_camera_resolution_mixes_no_depths_and_keeps_the_range_marks():
    work = WorkImage((4, 4), (2, 2))
    depth = np.array([[1.0, np.nan], [np.inf, 4.0]], np.float32)
    result = FrameResult(0, "cam", 0, np.eye(3), True, depth=depth, depth_k=np.eye(3))
    out = work.result_to_camera(result, depth_at_camera_resolution=True).depth
    expected = np.repeat(np.repeat(depth, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(out, expected)  # each camera pixel is one working pixel's depth, NaN/inf kept


def test_a_camera_exactly_at_the_pixel_budget_is_not_scaled():
    assert not WorkImage.for_size((576, 1024), 589_824).scaled  # "itself when it has at most max_pixels"
    assert WorkImage.for_size((576, 1025), 589_824).scaled


def test_a_repeated_stamp_does_not_confirm_a_held_jump():
    hold = StampHold()
    for i in range(4):
        assert hold.push(i * 33_000_000, f"f{i}") == ([f"f{i}"], None)
    assert hold.push(5_000_000_000, "ahead") == ([], None)  # held
    assert hold.push(99_000_000, "dup") == (["dup"], None)  # a repeat of the newest stamp: judges nothing
    assert hold.push(132_000_000, "f4") == (["f4"], "ahead")  # the stream goes on: the held frame was an outlier


def test_a_gap_of_exactly_max_gap_s_does_not_reset():
    buf = ClipBuffer(4, 3, max_gap_s=1.0)
    rgb = np.zeros((4, 4, 3), np.uint8)
    assert buf.push(Frame(rgb, 0, "cam"))[1] is None
    assert buf.push(Frame(rgb, 1_000_000_000, "cam"))[1] is None  # not more than max_gap_s
    assert buf.push(Frame(rgb, 2_000_000_001, "cam"))[1] == "gap"
