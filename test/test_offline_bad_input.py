"""Damaged offline inputs (RGB-D folders, BADJA clips, split files, image folders): each is refused before
any scoring, naming the file and what is wrong, instead of a wrong number with exit 0, a traceback after the
model's whole run, or a clip left out of a mean unsaid."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import REPO, SHARED_DATA, require

HOLO = REPO / "samples" / "hololens_000"
BADJA = SHARED_DATA / "badja_camel_dog_bear"


def _holo(tmp_path, name="h"):
    dst = tmp_path / name
    shutil.copytree(HOLO, dst)
    return dst


def _badja(tmp_path, clips=("dog",), n=12):
    require(BADJA)
    root = tmp_path / "badja"
    (root / "badja_joint_annotations").mkdir(parents=True)
    entries = [e for e in json.loads((BADJA / "badja_joint_annotations/dog.json").read_text())
               if int(Path(e["image_path"]).stem) < n]
    for clip in clips:
        frames = root / "JPEGImages/480p" / clip
        frames.mkdir(parents=True)
        for i in range(n):
            shutil.copy(BADJA / f"JPEGImages/480p/dog/{i:05d}.jpg", frames / f"{i:05d}.jpg")
        (root / "badja_joint_annotations" / f"{clip}.json").write_text(json.dumps(entries))
    return root


def test_an_8bit_depth_png_is_refused_naming_the_file(tmp_path):
    from fourds_ros.rgbd import DatasetFormatError, read_depth

    path = tmp_path / "00305.png"
    cv2.imwrite(str(path), np.full((48, 64), 100, np.uint8))
    with pytest.raises(DatasetFormatError, match="00305.png"):
        read_depth(path, 1e-3)


def test_badja_frames_of_mixed_sizes_are_refused_before_scoring(tmp_path):
    from fourds_ros.evaluation.badja import check_clips
    from fourds_ros.evaluation.datasets import BadjaError

    root = _badja(tmp_path)
    p = root / "JPEGImages/480p/dog/00005.jpg"
    cv2.imwrite(str(p), cv2.resize(cv2.imread(str(p)), (640, 360)))
    with pytest.raises(BadjaError, match="frame 00005 is 640x360"):
        check_clips(root)


def test_eval_peers_survive_a_recording_whose_resolution_changes():
    """read_bag keeps a mid-recording resolution change on purpose (test_a_camera_that_changes_its_resolution_
    keeps_each_frames_own_camera_info); the LK peer then raised cv2.error after the model's whole inference."""
    from fourds_ros.evaluation.peers import lk_tracks

    small = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8), (0, 0), 2)
    images = {i: small if i < 2 else cv2.resize(small, (128, 96)) for i in range(4)}  # trackable until the change
    preds = lk_tracks(list(images), images, {0: (0, 10.0, 10.0), 1: (0, 30.0, 20.0)})
    assert not preds.tracks[3]["visible"].any()  # lost at the change, not a traceback


@pytest.mark.parametrize("damage", ["stretched", "mirrored", "last_row"])
def test_a_pose_that_is_not_a_rotation_is_refused(tmp_path, damage):
    """Training took det(R) = 3 as a rotation target and bag convert projected it onto some rotation, silently."""
    from fourds_ros.rgbd import DatasetFormatError, read_hololens

    root = _holo(tmp_path)
    poses = np.loadtxt(root / "poses.txt").reshape(-1, 4, 4)
    if damage == "last_row":
        poses[2, 3] = 1.0
    else:
        poses[2, :3, :3] = poses[2, :3, :3] @ np.diag([1.0, 1.0, 3.0 if damage == "stretched" else -1.0])
    np.savetxt(root / "poses.txt", poses.reshape(-1, 16))
    with pytest.raises(DatasetFormatError, match="rotation|rigid"):
        read_hololens(root)


def test_split_with_a_non_integer_erode_px_is_a_split_error(tmp_path):
    from fourds_ros.evaluation.suite import SplitError, load_split

    split = tmp_path / "s.yaml"
    split.write_text("recordings:\n  - {name: a, format: hololens, path: h, scene: s1, erode_px: three}\n"
                     "  - {name: b, format: hololens, path: h, scene: s2}\n"
                     "folds:\n  - {name: f, train: [s1], validation: [s2]}\n")
    with pytest.raises(SplitError, match="erode_px"):
        load_split(split)


def test_suite_checks_every_recording_path_before_the_first_row(tmp_path, monkeypatch):
    from fourds_ros.evaluation import eval_cli
    from fourds_ros.evaluation.bag import BagError
    from fourds_ros.evaluation.suite import load_split, run_suite

    _holo(tmp_path, "h")
    split = tmp_path / "s.yaml"
    split.write_text("recordings:\n  - {name: a, format: hololens, path: h, scene: s1}\n"
                     "  - {name: b, format: hololens, path: h_typo, scene: s2}\n"
                     "folds:\n  - {name: f, train: [s1], validation: [s2]}\n")
    monkeypatch.setattr(eval_cli, "evaluate", lambda *a, **k: pytest.fail("row a evaluated before h_typo was found"))
    s = load_split(split)
    with pytest.raises(BagError, match="h_typo"):
        run_suite(s, s.fold(None), tmp_path, tmp_path / "out", offline=True)


def test_a_badja_clip_that_cannot_be_scored_is_refused(tmp_path):
    from fourds_ros.evaluation.badja import check_clips
    from fourds_ros.evaluation.datasets import BadjaError

    root = _badja(tmp_path, clips=("dog", "dog2"))
    ann = root / "badja_joint_annotations/dog2.json"
    ann.write_text(json.dumps(json.loads(ann.read_text())[:1]))  # one annotated frame: nothing after it
    with pytest.raises(BadjaError, match="dog2"):
        check_clips(root)


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff\xe0 not a JPEG after all"], ids=["empty", "corrupt"])
@pytest.mark.parametrize("fmt", ["hololens", "frames"])
def test_bag_convert_names_the_frame_that_does_not_decode(tmp_path, content, fmt):
    """The decoder sees bytes, not files: its error named no file, in folders of a thousand frames."""
    from fourds_ros.evaluation.bag import BagError, write_bag
    from fourds_ros.evaluation.datasets import iter_dataset

    root = _holo(tmp_path)
    bad = sorted((root / "images").iterdir())[4]
    bad.write_bytes(content)
    root = root / "images" if fmt == "frames" else root
    with pytest.raises(BagError, match=bad.name):
        write_bag(iter_dataset(fmt, root), tmp_path / "bag")


def test_orb_vo_holds_still_across_a_resolution_change_and_reads_each_frames_own_camera():
    """ORB VO related a frame to the one before with the first frame's K whatever their sizes: after a camera
    switched resolution its steps came from a K of another image."""
    from fourds_ros.evaluation.peers import orb_vo

    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (400, 560), np.uint8), (0, 0), 1.5)
    frames = {i: cv2.cvtColor(scene[40:280, 40 + 4 * i:360 + 4 * i], cv2.COLOR_GRAY2RGB) for i in range(5)}
    frames.update({i: cv2.resize(frames[i], (640, 480)) for i in (3, 4)})  # the camera switches to 640x480
    small = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
    large = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
    asked = []

    def intrinsics(stamp):
        asked.append(stamp)
        return small if stamp < 3 else large

    vo = orb_vo(list(frames), frames, intrinsics)
    assert asked == list(frames)
    np.testing.assert_array_equal(vo.poses[3], vo.poses[2])  # held still across the change
    assert vo.vo_failures >= 1


def test_a_compressed_bag_keeps_its_frames_bytes_only(tmp_path):
    """Writing a compressed bag decoded each frame for its size and kept the image on the frame: a reversed
    recording, whose frames are all held, took about 0.9 MB more a frame (675 MB against 420 MB for 300)."""
    from fourds_ros.evaluation.bag import write_bag
    from fourds_ros.evaluation.datasets import iter_dataset

    frames = list(iter_dataset("hololens", HOLO, max_frames=3))
    assert all(f.image is None and f.encoded for f in frames)
    assert write_bag(frames, tmp_path / "bag", compressed=True) == 3
    assert all(f.image is None for f in frames)
