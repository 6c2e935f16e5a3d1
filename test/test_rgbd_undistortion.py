"""TUM's Freiburg 1 images keep their lens distortion; the readers remove it as the node would
(fourds_ros.rgbd.LensUndistortion over perception.calibration.undistortion_maps), from colour and
registered depth alike, and report the undistorted view's K."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import transforms3d

from fourds_ros.cli import main as cli
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.perception.calibration import Undistorter
from fourds_ros.rgbd import (TUM_CAMERAS, TUM_FR1_DISTORTION, TUM_FR1_INTRINSICS, DatasetFormatError,
                             LensUndistortion, read_sequence, read_tum)

from .conftest import SHARED_DATA, require

TUM = SHARED_DATA / "tum_fr1_rpy_f000-079"


def dots_scene(k: np.ndarray, d: np.ndarray, size=(640, 480)):
    """World points on a plane 2 m ahead, drawn as white dots where a camera with (k, d) sees them,
    and a depth image of 2 m in a square around each dot. -> (points (N, 3), rgb, depth)."""
    xs, ys = np.meshgrid(np.linspace(-0.9, 0.9, 7), np.linspace(-0.6, 0.6, 5))
    points = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, 2.0)], 1)
    uv = cv2.projectPoints(points, np.zeros(3), np.zeros(3), k, d)[0].reshape(-1, 2)
    rgb = np.zeros((size[1], size[0], 3), np.uint8)
    depth = np.zeros((size[1], size[0]), np.float32)
    for u, v in uv:
        cv2.circle(rgb, (round(u), round(v)), 3, (255, 255, 255), -1)
        depth[max(0, round(v) - 2): round(v) + 3, max(0, round(u) - 2): round(u) + 3] = 2.0
    return points, rgb, depth


def centroids(gray: np.ndarray) -> np.ndarray:
    n, _, _, centres = cv2.connectedComponentsWithStats((gray > 100).astype(np.uint8))
    return centres[1:]


def nearest_error(found: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(found[:, None] - expected[None], axis=2).min(1).max())


def test_undistorted_dots_land_where_the_pinhole_camera_puts_them():
    points, rgb, depth = dots_scene(TUM_FR1_INTRINSICS, TUM_FR1_DISTORTION)
    lens = LensUndistortion(TUM_FR1_INTRINSICS, TUM_FR1_DISTORTION, 640, 480)
    pinhole = cv2.projectPoints(points, np.zeros(3), np.zeros(3), lens.intrinsics, None)[0].reshape(-1, 2)
    raw = centroids(rgb[..., 0])
    assert nearest_error(raw, pinhole) > 3.0  # the lens moves the outer dots by several pixels
    undistorted = centroids(lens.rgb(rgb)[..., 0])
    assert len(undistorted) == len(points)
    assert nearest_error(undistorted, pinhole) < 1.0
    # Depth moves with the colour it is registered to, by nearest neighbour (only real values)
    moved = lens.depth(depth)
    assert set(np.unique(moved)) <= {0.0, 2.0}
    for u, v in pinhole:
        assert moved[round(v), round(u)] == 2.0


def test_the_readers_undistort_exactly_as_the_node_does():
    """The lens's K and maps are the node's own (Undistorter): a bag of undistorted TUM frames is
    what the node makes of the raw frames with the camera's distortion in camera_info."""
    _, rgb, _ = dots_scene(TUM_FR1_INTRINSICS, TUM_FR1_DISTORTION)
    lens = LensUndistortion(TUM_FR1_INTRINSICS, TUM_FR1_DISTORTION, 640, 480)
    node_image, node_k = Undistorter()(rgb, TUM_FR1_INTRINSICS, TUM_FR1_DISTORTION.tolist(), "plumb_bob")
    assert np.array_equal(lens.rgb(rgb), node_image) and np.allclose(lens.intrinsics, node_k)
    with pytest.raises(ValueError, match="calibration is for 640x480"):
        lens.rgb(rgb[:240, :320])


def write_tum(root, rgb, depth, frames=3, intrinsics=None, distortion=None):
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rgb_lines, depth_lines, gt_lines = [], [], []
    for i in range(frames):
        t = 1305031229.5 + i / 30
        cv2.imwrite(str(root / "rgb" / f"{t:.6f}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "depth" / f"{t:.6f}.png"), (depth * 5000).astype(np.uint16))
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
        depth_lines.append(f"{t:.6f} depth/{t:.6f}.png")
        w, x, y, z = transforms3d.quaternions.mat2quat(np.eye(3))
        gt_lines.append(f"{t:.6f} 0.1 0 {0.01 * i} {x} {y} {z} {w}")
    (root / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (root / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    (root / "groundtruth.txt").write_text("\n".join(gt_lines) + "\n")
    if intrinsics is not None:
        np.savetxt(root / "camera-intrinsics.txt", intrinsics)
    if distortion is not None:
        np.savetxt(root / "camera-distortion.txt", distortion)


def test_tum_folders_are_undistorted_in_training_and_in_bags(tmp_path):
    points, rgb, depth = dots_scene(TUM_FR1_INTRINSICS, TUM_FR1_DISTORTION)
    write_tum(tmp_path / "fr1", rgb, depth)  # no intrinsics file: the Freiburg 1 camera, 640x480
    lens = LensUndistortion(TUM_FR1_INTRINSICS, TUM_FR1_DISTORTION, 640, 480)
    pinhole = cv2.projectPoints(points, np.zeros(3), np.zeros(3), lens.intrinsics, None)[0].reshape(-1, 2)

    seq = read_sequence(tmp_path / "fr1")  # what training and --select-on read
    assert np.allclose(seq.intrinsics, lens.intrinsics)
    assert nearest_error(centroids(seq.rgb(1)[..., 0]), pinhole) < 1.0
    assert np.array_equal(seq.depth(1), lens.depth(depth))

    assert cli(["bag", "convert", "--format", "tum", str(tmp_path / "fr1"), str(tmp_path / "bag"), "--compressed"]) == 0
    bag = read_bag(tmp_path / "bag")  # what eval and eval-suite score
    stamp = bag.stamps[1]
    assert np.allclose(bag.intrinsics(stamp), lens.intrinsics)
    assert nearest_error(centroids(bag.images[stamp][..., 0]), pinhole) < 1.0
    np.testing.assert_array_equal(np.nan_to_num(bag.gt_depth[stamp]), lens.depth(depth))

    # Another camera's K (a pinhole copy) is left alone; a camera-distortion.txt names the lens.
    other = TUM_FR1_INTRINSICS * [[1.1], [1.1], [1]]
    write_tum(tmp_path / "pinhole", rgb, depth, intrinsics=other)
    assert read_tum(tmp_path / "pinhole").undistortion is None
    write_tum(tmp_path / "own", rgb, depth, intrinsics=TUM_FR1_INTRINSICS, distortion=TUM_FR1_DISTORTION)
    assert np.allclose(read_tum(tmp_path / "own").intrinsics, lens.intrinsics)


@pytest.mark.parametrize("camera", ["freiburg2", "freiburg3"])
def test_a_tum_sequence_is_read_with_the_camera_its_name_says(tmp_path, camera):
    """TUM ships no intrinsics file: rgbd_dataset_freiburg2_desk was read with Freiburg 1's K and
    warped by Freiburg 1's lens (rays off by 8 px in the median for freiburg3, whose images are
    published undistorted). Its name says the camera; freiburg3's is a pinhole camera."""
    k, d = TUM_CAMERAS[camera]
    points, rgb, depth = dots_scene(k, d)
    root = tmp_path / f"rgbd_dataset_{camera}_desk"
    write_tum(root, rgb, depth)
    seq = read_tum(root)
    if camera == "freiburg3":
        assert seq.undistortion is None and np.array_equal(seq.intrinsics, k)
        expected = cv2.projectPoints(points, np.zeros(3), np.zeros(3), k, None)[0].reshape(-1, 2)
    else:
        assert np.array_equal(seq.undistortion.distortion, d)
        expected = cv2.projectPoints(points, np.zeros(3), np.zeros(3), seq.intrinsics, None)[0].reshape(-1, 2)
    assert nearest_error(centroids(seq.rgb(0)[..., 0]), expected) < 1.0


def test_a_tum_copy_at_another_size_without_its_own_k_is_refused(tmp_path):
    """The published K is for 640x480: a 320x240 copy read with it would be off by 2x, silently."""
    _, rgb, depth = dots_scene(TUM_FR1_INTRINSICS, TUM_FR1_DISTORTION)
    write_tum(tmp_path / "rgbd_dataset_freiburg1_small", rgb[::2, ::2], depth[::2, ::2])
    with pytest.raises(DatasetFormatError, match="320x240"):
        read_tum(tmp_path / "rgbd_dataset_freiburg1_small")


def test_the_tum_validation_recording_is_read_undistorted():
    seq = read_sequence(require(TUM))
    assert seq.undistortion is not None and seq.rgb(0).shape == (480, 640, 3)
    assert not np.allclose(seq.intrinsics, TUM_FR1_INTRINSICS)  # the undistorted view's K
    depth = seq.depth(0)
    assert depth.shape == (480, 640) and (depth > 0).mean() > 0.5
