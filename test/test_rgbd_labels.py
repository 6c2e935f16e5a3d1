"""Training and evaluation labels read from RGB-D datasets (rgbd.py): the nearer surface where two register
onto one pixel, a crop's rows as its K says, TUM depth paired within max_dt, HoloLens frames in numeric order,
and a dataset PNG too large refused before decoding."""

from __future__ import annotations

import numpy as np
import pytest

from fourds_ros.rgbd import DepthCamera, register_depth


def test_registered_depth_keeps_the_nearer_surface_where_two_land_on_one_pixel():
    """A near pixel (1 m) and a far one (10 m) of the depth camera land on the same RGB pixel through a
    10 cm baseline: the RGB camera sees the near surface (occlusion), not the far one behind it."""
    k = np.array([[100.0, 0, 0], [0, 100.0, 0], [0, 0, 1]])
    depth = np.zeros((1, 40), np.float32)
    depth[0, 10] = 1.0   # shifted fx * 0.1 / 1 = 10 px -> u 20
    depth[0, 19] = 10.0  # shifted 1 px -> u 20
    out = register_depth(depth, DepthCamera(k, (0.1, 0.0, 0.0)), k)
    assert out[0, 20] == 1.0, out[0, 18:23]
    assert np.count_nonzero(out) == 1


def test_resize_frames_crops_to_the_targets_aspect_and_labels_rows_as_k_says():
    """A 320x240 frame to a 128x128 model input: the centre 240x240 is cut (not a window past the frame)
    and every label row holds the source row under its model pixel's centre, as the returned K maps it
    (the existing test ramps only columns, so a wrong vertical crop or fy passed)."""
    from fourds_ros.rgbd import resize_frames

    h, w = 240, 320
    rows = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
    k = np.array([[260.0, 0, 159.5], [0, 260.0, 119.5], [0, 0, 1]])
    _, depth, k_model = resize_frames(np.zeros((1, h, w, 3), np.uint8), rows[None], k, (128, 128))
    y = np.arange(128)
    source = (y - k_model[1, 2]) / k_model[1, 1] * k[1, 1] + k[1, 2]
    assert abs(float(np.mean(depth[0, :, 64] - source))) < 0.05 * h / 128
    np.testing.assert_allclose(k_model[0, 0], 260.0 * 128 / 240)  # the 240x240 centre, scaled
    np.testing.assert_allclose(k_model[0, 2], (159.5 - 40 + 0.5) * 128 / 240 - 0.5)


def test_tum_frames_pair_depth_only_within_max_dt(tmp_path):
    """An RGB image whose nearest depth image is 0.5 s away has no depth (as one without a pose has no pose)."""
    from fourds_ros.rgbd import tum_frames

    (tmp_path / "rgb.txt").write_text("0.0 rgb/0.png\n1.0 rgb/1.png\n")
    (tmp_path / "depth.txt").write_text("0.005 depth/0.png\n1.5 depth/1.png\n")
    frames = tum_frames(tmp_path)
    assert frames[0].depth_path == tmp_path / "depth/0.png"
    assert frames[1].depth_path is None


def test_hololens_frames_are_in_numeric_order_with_their_poses(tmp_path):
    """Unpadded frame names (2.png before 10.png): poses.txt lists the frames in that order, so a
    name-sorted reader would give frame 10 the pose of frame 2."""
    import cv2
    from fourds_ros.rgbd import read_hololens

    (tmp_path / "images").mkdir()
    (tmp_path / "depth").mkdir()
    poses = []
    for i in range(12):
        cv2.imwrite(str(tmp_path / f"images/{i}.png"), np.zeros((4, 4, 3), np.uint8))
        cv2.imwrite(str(tmp_path / f"depth/{i}.png"), np.zeros((4, 4), np.uint16))
        pose = np.eye(4)
        pose[0, 3] = i
        poses.append(" ".join(map(str, pose.ravel())))
    (tmp_path / "poses.txt").write_text("\n".join(poses) + "\n")
    (tmp_path / "K.txt").write_text("2 0 1.5\n0 2 1.5\n0 0 1\n")
    seq = read_hololens(tmp_path)
    assert [p.stem for p in seq.rgb_paths] == [str(i) for i in range(12)]


def test_a_dataset_png_declaring_30000_squared_is_refused_before_decoding(tmp_path, monkeypatch):
    """rgbd.imread_checked (every dataset reader's imread): a few-byte PNG declaring 30000x30000 (under
    OpenCV's own 2^30 cap: 2.7 GB decoded) is a DatasetFormatError before cv2.imdecode sees it."""
    import cv2
    import pytest

    from fourds_ros import rgbd
    from fourds_ros.rgbd import DatasetFormatError, imread_checked

    from .test_perception_decode_safety import png_file

    path = tmp_path / "bomb.png"
    path.write_bytes(png_file(30000, 30000, b"\x78\x9c\x03\x00\x00\x00\x00\x01"))
    monkeypatch.setattr(rgbd.cv2, "imdecode", lambda *_: pytest.fail("decoded a bomb"))
    with pytest.raises(DatasetFormatError, match="8192x8192"):
        imread_checked(path, cv2.IMREAD_COLOR)


def test_a_tum_list_line_without_its_file_name_is_a_dataset_error(tmp_path):
    """depth.txt's file names were read outside the check of the list files: a truncated line ("1.0") was an
    IndexError traceback from `bag convert --format tum`, not the one-line malformed-list error rgb.txt gets."""
    from fourds_ros.rgbd import DatasetFormatError, tum_frames

    (tmp_path / "rgb.txt").write_text("# timestamp filename\n1.0 rgb/1.png\n")
    (tmp_path / "depth.txt").write_text("1.0\n")
    with pytest.raises(DatasetFormatError, match="malformed TUM list"):
        tum_frames(tmp_path)
    (tmp_path / "depth.txt").write_text("1.0 depth/1.png\n")
    assert tum_frames(tmp_path)[0].depth_path == tmp_path / "depth" / "1.png"
