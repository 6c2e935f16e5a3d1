"""What eval refuses in a bag, in one line each, so that the offline path, the DDS replay and the peers
read the same frames (session 62's review of bags a team records): a ROS 1 bag, a topic recorded with
two types, a camera_info with a lens, a window or no calibration, images repeating a stamp; and the
DDS replay publishes in stamp order, as the offline path scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fourds_ros.evaluation.bag import (CAMERA_INFO_TOPIC, IMAGE_TOPIC, BagError, Frame, _header, check_scorable,
                                       open_reader, read_bag, typestore, write_bag)


def _frames(n: int = 4) -> list[Frame]:
    K = np.array([[50.0, 0, 16], [0, 50, 12], [0, 0, 1]])
    return [Frame(stamp_ns=1_000 + i * 10, K=K, image=np.full((24, 32, 3), 10 * i, np.uint8)) for i in range(n)]


def _rewrite(src: Path, dst: Path, edit=lambda topic, msg: None, order=None, extra=None) -> None:
    """A copy of an eval bag: edit(topic, msg) on every message; `order` (indices into the image messages)
    writes the images so, each with its camera_info; `extra(writer, ts)` adds connections."""
    from rosbags.rosbag2 import Writer

    reader, ts = open_reader(src), typestore()
    messages = [(conn.topic, conn.msgtype, reader.deserialize(raw, conn.msgtype)) for conn, _, raw in reader.messages()]
    reader.close()
    pairs = [(messages[i], messages[i + 1]) for i in range(0, len(messages), 2)]  # write_bag: image, then its info
    assert all(a[0] == IMAGE_TOPIC and b[0] == CAMERA_INFO_TOPIC for a, b in pairs)
    with Writer(dst, version=9) as writer:
        conns = {}
        for arrival, i in enumerate(range(len(pairs)) if order is None else order):
            for topic, msgtype, msg in pairs[i]:
                edit(topic, msg)
                if topic not in conns:
                    conns[topic] = writer.add_connection(topic, msgtype, typestore=ts)
                writer.write(conns[topic], 10**9 + arrival, ts.serialize_cdr(msg, msgtype))  # logged on arrival
        if extra is not None:
            extra(writer, ts)


@pytest.fixture
def eval_bag(tmp_path) -> Path:
    write_bag(_frames(), tmp_path / "good", storage="sqlite3")
    return tmp_path / "good"


def _info(edit):
    return lambda topic, msg: edit(msg) if topic == CAMERA_INFO_TOPIC else None


@pytest.mark.parametrize("what, edit, words", [
    ("a lens", lambda m: setattr(m, "d", np.array([0.1, -0.2, 0, 0, 0])), "lens distortion"),
    ("a region of interest", lambda m: setattr(m.roi, "width", 16) or setattr(m.roi, "height", 12), "region of interest"),
    ("binning", lambda m: setattr(m, "binning_x", 2), "binning"),
    ("no calibration (REP-104)", lambda m: setattr(m, "k", np.zeros(9)), "no usable calibration"),
    ("a NaN centre", lambda m: setattr(m, "k", np.array([50.0, 0, np.nan, 0, 50, 12, 0, 0, 1])), "no usable calibration"),
])
def test_a_camera_info_eval_cannot_score_with_is_one_line(eval_bag, tmp_path, what, edit, words, tiny_model_dir,
                                                          capsys):
    """Offline read K alone while the node over DDS undid the lens (the paths scored different images,
    without a word); an all-zero K failed after the whole run (a singular matrix), a NaN one scored nothing.
    Refused by eval (check_scorable), not by the reader: `bench replay` and training read such bags."""
    _rewrite(eval_bag, tmp_path / "bad", _info(edit))
    with pytest.raises(BagError, match=words) as refused:
        check_scorable(read_bag(tmp_path / "bad"))
    assert "bag import" in str(refused.value) or "calibrat" in str(refused.value), what
    assert len(read_bag(tmp_path / "bad", images=False).stamps) == 4  # bench replay, training: still read
    from fourds_ros.cli import main as cli

    assert cli(["eval", str(tmp_path / "bad"), "--model", str(tiny_model_dir), "--out", str(tmp_path / "report"),
                "--offline"]) == 1
    assert words in capsys.readouterr().err


def test_images_repeating_a_stamp_are_refused(eval_bag, tmp_path):
    """The offline path kept the second image twice, the node the first: they scored different frames."""
    _rewrite(eval_bag, tmp_path / "repeat", order=[0, 1, 1, 2, 3])
    with pytest.raises(BagError, match="1 image\\(s\\) repeat an earlier image's header stamp"):
        check_scorable(read_bag(tmp_path / "repeat"))


def test_a_topic_with_two_types_is_refused_by_eval_and_bag_import(eval_bag, tmp_path, capsys):
    """An Image and a CompressedImage on one topic: eval's traceback, bag import's frames twice over."""
    from fourds_ros.cli import main as cli

    def compressed_too(writer, ts):
        conn = writer.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/CompressedImage", typestore=ts)
        msg = ts.types["sensor_msgs/msg/CompressedImage"](header=_header(ts, 1_001, "camera"), format="jpeg",
                                                          data=np.zeros(4, np.uint8))
        writer.write(conn, 2 * 10**9, ts.serialize_cdr(msg, "sensor_msgs/msg/CompressedImage"))

    _rewrite(eval_bag, tmp_path / "mixed", extra=compressed_too)
    with pytest.raises(BagError, match="recorded with several message types"):
        read_bag(tmp_path / "mixed")
    assert cli(["bag", "import", str(tmp_path / "mixed"), str(tmp_path / "imported"), "--image-topic", IMAGE_TOPIC,
                "--camera-info-topic", CAMERA_INFO_TOPIC]) == 1
    assert "recorded with several types" in capsys.readouterr().err
    assert not (tmp_path / "imported").exists()


def test_a_ros1_bag_is_refused_with_the_way_to_import_it(eval_bag, tmp_path):
    """Its CameraInfo's fields are K and D (eval's traceback) and its bytes are not CDR (the replay sent them)."""
    from rosbags.convert import convert
    from rosbags.typesys import Stores, get_typestore

    ros1 = tmp_path / "eval.bag"
    convert([eval_bag], ros1, dst_storage="sqlite3", dst_version=None, compress=None, compress_mode="file",
            default_typestore=None, typestore=get_typestore(Stores.ROS1_NOETIC), exclude_topics=[], include_topics=[],
            exclude_msgtypes=[], include_msgtypes=[])
    with pytest.raises(BagError, match="a ROS 1 bag.*`fourds-ros bag import` it first"):
        read_bag(ros1)


def test_the_dds_replay_publishes_in_stamp_order_as_offline_scores(eval_bag, tmp_path):
    """A recorder logs on arrival: stamps 0, 2, 1, 3. read_bag sorts them; the replay sent them as logged,
    and the node's clip buffer dropped the late ones that the offline path described."""
    from fourds_ros.evaluation.replay import load_replay_frames

    _rewrite(eval_bag, tmp_path / "arrival", order=[0, 2, 1, 3])
    frames, _ = load_replay_frames(str(tmp_path / "arrival"))
    assert [stamp for stamp, _, _ in frames] == read_bag(tmp_path / "arrival").stamps == [1_000, 1_010, 1_020, 1_030]
    assert all(info is not None for _, _, info in frames)


def test_eval_reads_a_bags_frames_under_the_runs_max_input_pixels(tmp_path):
    """The node's cap on a frame's size: offline read every bag at the default whatever --param said."""
    import cv2

    frames = [Frame(stamp_ns=1_000 + 10 * i, K=np.array([[50.0, 0, 31.5], [0, 50, 23.5], [0, 0, 1]]),
                    encoded=cv2.imencode(".png", np.full((48, 64, 3), 40 * i, np.uint8))[1].tobytes(), encoding="png")
              for i in range(3)]
    write_bag(frames, tmp_path / "png", compressed=True)
    assert len(read_bag(tmp_path / "png").stamps) == 3
    with pytest.raises(BagError, match="too_large"):
        read_bag(tmp_path / "png", max_input_pixels=1000)
