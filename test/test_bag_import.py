"""`fourds-ros bag import`: a recording laid out as a camera driver and a pose source publish it
(colour with its lens distortion, registered depth in millimetres at its own stamps, the pose on
/tf through a static mount) becomes the evaluation layout, equal to what the dataset reader makes
of the same real frames (TUM fr1/rpy). Also the transform tree (transform_tree.py) on its own."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import transforms3d

from fourds_ros.cli import main as cli
from fourds_ros.evaluation.bag import (BagError, _header, image_msg, open_reader, pose_to_msg_fields, read_bag,
                                       stamp_of, typestore)
from fourds_ros.evaluation import bag_import
from fourds_ros.evaluation.bag_import import ImportReport, ImportSpec, import_bag
from fourds_ros.evaluation.datasets import iter_dataset
from fourds_ros.evaluation.transform_tree import TransformError, TransformTree, interpolate
from fourds_ros.rgbd import TUM_FR1_DISTORTION, TUM_FR1_INTRINSICS, read_list, tum_frames

from .conftest import SHARED_DATA, require

TUM = SHARED_DATA / "tum_fr1_rpy_f000-079"
OPTICAL = "camera_color_optical_frame"
FRAMES = 10


def rigid(axis, angle_deg: float, t) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = transforms3d.axangles.axangle2mat(axis, np.radians(angle_deg))
    out[:3, 3] = t
    return out


# The rig the motion capture follows, and the colour camera's optical frame on it (a URDF's static joint).
RIG_FROM_OPTICAL = rigid([0.2, 1.0, -0.3], 35.0, [0.05, -0.02, 0.11])


def _transform(ts, parent: str, child: str, stamp_ns: int, matrix: np.ndarray):
    position, q = pose_to_msg_fields(ts, matrix)
    T = ts.types
    return T["geometry_msgs/msg/TransformStamped"](
        header=_header(ts, stamp_ns, parent), child_frame_id=child,
        transform=T["geometry_msgs/msg/Transform"](
            translation=T["geometry_msgs/msg/Vector3"](x=position[0], y=position[1], z=position[2]), rotation=q))


DEPTH_TOPIC = "/camera/aligned_depth_to_color/image_raw"


def compressed_depth_payload(mm: np.ndarray, encoding: str) -> bytes:
    """What compressed_depth_image_transport publishes (the test's own encoder of its format): the
    12-byte ConfigHeader (format, depthParam a, b), then a 16-bit PNG: the millimetres (16UC1), or
    q = a / depth + b (32FC1, with the transport's default quantisation 100 and max depth 10 m)."""
    import struct

    if encoding == "16UC1":
        a = b = 0.0
        plane = mm
    else:
        a = 100.0 * 101.0
        b = 1.0 - a / 10.0
        metres = mm.astype(np.float64) / 1000.0
        with np.errstate(divide="ignore"):
            q = np.where(metres > 0, a / metres + b, 0.0)
        plane = np.where((q >= 1) & (q < 65535), np.round(q), 0).astype(np.uint16)
    return struct.pack("<iff", 0, a, b) + cv2.imencode(".png", plane.astype(np.uint16))[1].tobytes()


def write_driver_bag(out: Path, frames, pose_as: str = "tf", compressed: bool = False, depth_as: str = "raw") -> None:
    """TUM frames as a driver records them: /camera/color/image_raw bgr8 (raw, distorted),
    camera_info with the Freiburg 1 plumb_bob lens, 16UC1 depth in mm at the depth images' own
    stamps, and the pose: world -> rig on /tf (pose_as "tf") or a PoseStamped on /mocap/rig
    ("pose"), with rig -> optical on /tf_static. compressed: the colour images as PNG on
    /camera/color/image_raw/compressed instead. depth_as "16UC1" / "32FC1": the depth as
    compressed_depth_image_transport records it, on DEPTH_TOPIC/compressedDepth."""
    from rosbags.rosbag2 import Writer

    ts = typestore()
    depth_stamp = {row[1]: round(float(row[0]) * 1e9) for row in read_list(TUM / "depth.txt")}
    with Writer(out, version=9) as writer:
        conns = {}

        def put(topic, msgtype, msg, stamp):
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=ts)
            writer.write(conns[topic], stamp, ts.serialize_cdr(msg, msgtype))

        TF = ts.types["tf2_msgs/msg/TFMessage"]
        put("/tf_static", "tf2_msgs/msg/TFMessage", TF(transforms=[_transform(ts, "rig", OPTICAL, 0, RIG_FROM_OPTICAL)]), 1)
        k = TUM_FR1_INTRINSICS
        info = ts.types["sensor_msgs/msg/CameraInfo"](
            header=_header(ts, 0, OPTICAL), height=480, width=640, distortion_model="plumb_bob",
            d=np.asarray(TUM_FR1_DISTORTION, float), k=k.reshape(9), r=np.eye(3).reshape(9),
            p=np.hstack([k, np.zeros((3, 1))]).reshape(12), binning_x=0, binning_y=0,
            roi=ts.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        for f in frames:
            t = round(f.stamp_s * 1e9)
            world_from_rig = f.camera_to_world @ np.linalg.inv(RIG_FROM_OPTICAL)
            if pose_as == "tf":
                put("/tf", "tf2_msgs/msg/TFMessage", TF(transforms=[_transform(ts, "world", "rig", t, world_from_rig)]), t)
            else:
                position, q = pose_to_msg_fields(ts, world_from_rig)
                T = ts.types
                pose = T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](
                    x=position[0], y=position[1], z=position[2]), orientation=q)
                put("/mocap/rig", "geometry_msgs/msg/PoseStamped",
                    T["geometry_msgs/msg/PoseStamped"](header=_header(ts, t, "world"), pose=pose), t)
            bgr = cv2.imread(str(f.rgb_path), cv2.IMREAD_COLOR)
            if compressed:
                png = np.frombuffer(cv2.imencode(".png", bgr)[1].tobytes(), np.uint8)
                put("/camera/color/image_raw/compressed", "sensor_msgs/msg/CompressedImage",
                    ts.types["sensor_msgs/msg/CompressedImage"](header=_header(ts, t, OPTICAL),
                                                                format="bgr8; png compressed bgr8", data=png), t)
            else:
                image = image_msg(ts, t, OPTICAL, bgr)
                image.encoding = "bgr8"
                put("/camera/color/image_raw", "sensor_msgs/msg/Image", image, t)
            info.header = _header(ts, t, OPTICAL)
            put("/camera/color/camera_info", "sensor_msgs/msg/CameraInfo", info, t)
            raw = cv2.imread(str(f.depth_path), cv2.IMREAD_UNCHANGED)  # 5000 units a metre
            mm = np.round(raw.astype(np.float64) / 5.0).astype("<u2")
            d_t = depth_stamp[f.depth_path.relative_to(TUM).as_posix()]
            if depth_as == "raw":
                depth = ts.types["sensor_msgs/msg/Image"](
                    header=_header(ts, d_t, OPTICAL), height=480, width=640, encoding="16UC1", is_bigendian=0,
                    step=640 * 2, data=np.frombuffer(mm.tobytes(), np.uint8))
                put(DEPTH_TOPIC, "sensor_msgs/msg/Image", depth, d_t)
            else:
                payload = np.frombuffer(compressed_depth_payload(mm, depth_as), np.uint8)
                depth = ts.types["sensor_msgs/msg/CompressedImage"](
                    header=_header(ts, d_t, OPTICAL), format=f"{depth_as}; compressedDepth png", data=payload)
                put(DEPTH_TOPIC + "/compressedDepth", "sensor_msgs/msg/CompressedImage", depth, d_t)


@pytest.fixture(scope="module")
def tum_frames_with_labels():
    require(TUM)
    return [f for f in tum_frames(TUM) if f.depth_path is not None and f.camera_to_world is not None][:FRAMES]


def _spec(**kw) -> ImportSpec:
    kw = {"image_topic": "/camera/color/image_raw", "depth_topic": "/camera/aligned_depth_to_color/image_raw",
          "world_frame": "world", **kw}
    return ImportSpec(**kw)


def _compare_with_reader(imported, frames, depth_atol: float = 0.0005) -> None:
    reference = list(iter_dataset("tum", TUM, max_frames=len(frames)))
    assert imported.stamps == [r.stamp_ns for r in reference]
    for r in reference:
        s = r.stamp_ns
        np.testing.assert_array_equal(imported.images[s], r.rgb())  # the same undistortion, bilinear
        np.testing.assert_allclose(imported.K[s], r.K, atol=1e-9)
        want = np.nan_to_num(r.gt_depth, nan=0.0)
        got = np.nan_to_num(imported.gt_depth[s], nan=0.0)
        np.testing.assert_array_equal(got > 0, want > 0)
        assert np.abs(got - want).max() <= depth_atol + 1e-6  # millimetres against TUM's 0.2 mm units
        np.testing.assert_allclose(imported.gt_pose[s], r.gt_pose, atol=1e-9)


def test_a_driver_recording_imports_as_the_dataset_reader_reads_it(tmp_path, tum_frames_with_labels):
    src = tmp_path / "driver"
    write_driver_bag(src, tum_frames_with_labels)
    n = import_bag(src, tmp_path / "imported", _spec())
    assert n == FRAMES
    _compare_with_reader(read_bag(tmp_path / "imported"), tum_frames_with_labels)


def test_a_pose_topic_stands_in_for_tf_and_the_cli_imports(tmp_path, tum_frames_with_labels):
    src = tmp_path / "driver"
    write_driver_bag(src, tum_frames_with_labels[:4], pose_as="pose")
    rc = cli(["bag", "import", str(src), str(tmp_path / "imported"), "--image-topic", "/camera/color/image_raw",
              "--depth-topic", "/camera/aligned_depth_to_color/image_raw", "--world-frame", "world",
              "--pose-topic", "/mocap/rig:rig"])
    assert rc == 0
    _compare_with_reader(read_bag(tmp_path / "imported"), tum_frames_with_labels[:4])
    with pytest.raises(BagError, match="names no child frame"):  # a PoseStamped without its child frame
        import_bag(src, tmp_path / "again", _spec(pose_topics=("/mocap/rig",)))
    # Without --world-frame the poses were left out without a word ("pose 0 / 4", exit 0).
    with pytest.raises(BagError, match="--pose-topic needs --world-frame"):
        import_bag(src, tmp_path / "again", _spec(pose_topics=("/mocap/rig:rig",), world_frame=None))
    assert not (tmp_path / "again").exists()


def test_a_pose_topic_not_given_is_named_where_the_frames_are_not_joined(tmp_path, tum_frames_with_labels):
    """The pose only on a PoseStamped (or a robot's Odometry) topic and no --pose-topic: the import
    stopped with 'not joined by any transform' and the frames, not the fix. It now names the topic and
    the option that takes it."""
    src = tmp_path / "driver"
    write_driver_bag(src, tum_frames_with_labels[:2], pose_as="pose")
    with pytest.raises(BagError, match="not joined by any transform") as refused:
        import_bag(src, tmp_path / "imported", _spec())
    assert ("the recording has /mocap/rig (PoseStamped): pass --pose-topic /mocap/rig:CHILD_FRAME, the frame it "
            "poses") in str(refused.value)
    assert not (tmp_path / "imported").exists()


def test_eval_and_calibrate_scale_on_a_camera_bag_not_yet_imported_say_to_import_it(tmp_path, tum_frames_with_labels,
                                                                                    capsys):
    """A team's first `fourds-ros eval` is often its camera's own bag: it was told only that no
    /camera/image_raw was found. Both commands now say to run `bag import` first."""
    src = tmp_path / "driver"
    write_driver_bag(src, tum_frames_with_labels[:2])
    for command in (["eval", str(src), "--out", str(tmp_path / "report"), "--offline"], ["calibrate-scale", str(src)]):
        assert cli(command) == 1
        err = " ".join(capsys.readouterr().err.split())
        assert "no camera images" in err and "A recording of your own camera: run `fourds-ros bag import` first " \
            "(README: Evaluation with rosbags, Your own recordings)" in err, err


def test_a_ros1_bag_imports_the_same(tmp_path, tum_frames_with_labels):
    """ROS 1 recordings (many public datasets) are read too: CameraInfo's fields are D, K, P there."""
    from rosbags.convert import convert
    from rosbags.typesys import Stores, get_typestore

    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:3])
    ros1 = tmp_path / "driver.bag"
    convert([tmp_path / "driver"], ros1, dst_storage="sqlite3", dst_version=None, compress=None, compress_mode="file",
            default_typestore=None, typestore=get_typestore(Stores.ROS1_NOETIC), exclude_topics=[], include_topics=[],
            exclude_msgtypes=[], include_msgtypes=[])
    assert ros1.is_file()
    assert import_bag(ros1, tmp_path / "imported", _spec()) == 3
    _compare_with_reader(read_bag(tmp_path / "imported"), tum_frames_with_labels[:3])


def test_compressed_images_import_the_same(tmp_path, tum_frames_with_labels):
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:3], compressed=True)
    spec = _spec(image_topic="/camera/color/image_raw/compressed")  # camera_info: /camera/color/camera_info
    assert spec.info_topic == "/camera/color/camera_info"
    assert import_bag(tmp_path / "driver", tmp_path / "imported", spec) == 3
    _compare_with_reader(read_bag(tmp_path / "imported"), tum_frames_with_labels[:3])


@pytest.mark.parametrize("encoding,atol", [("16UC1", 0.0005), ("32FC1", 0.002)])
def test_compressed_depth_imports_as_raw_depth(tmp_path, tum_frames_with_labels, encoding, atol):
    """Depth recorded through compressed_depth_image_transport; 32FC1's inverse-depth quantisation
    costs up to depth^2 / 2a (0.4 mm at 3 m)."""
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:3], depth_as=encoding)
    assert import_bag(tmp_path / "driver", tmp_path / "imported", _spec(depth_topic=DEPTH_TOPIC + "/compressedDepth")) == 3
    _compare_with_reader(read_bag(tmp_path / "imported"), tum_frames_with_labels[:3], depth_atol=atol)
    from fourds_ros.evaluation.bag_import import compressed_depth

    with pytest.raises(BagError, match="only compressedDepth png"):
        compressed_depth("16UC1; compressedDepth rvl", b"\0" * 20)
    with pytest.raises(BagError, match="neither PNG nor JPEG"):
        compressed_depth("16UC1; compressedDepth png", b"\0" * 40)


def test_compressed_depth_of_mono16_reads_as_millimetres():
    """compressed_depth_image_transport encodes any one-channel 16-bit image and names it "mono16; compressedDepth
    png": refused, while the same depth raw as mono16 was read as millimetres."""
    import cv2

    from fourds_ros.evaluation.bag_import import COMPRESSED_DEPTH_HEADER, compressed_depth

    mm = np.array([[0, 1000], [2500, 65000]], np.uint16)
    payload = COMPRESSED_DEPTH_HEADER.pack(0, 0.0, 0.0) + cv2.imencode(".png", mm)[1].tobytes()
    np.testing.assert_array_equal(compressed_depth("mono16; compressedDepth png", payload), mm / 1000.0)


def test_intrinsics_stand_in_for_a_missing_camera_info(tmp_path, tum_frames_with_labels):
    """--intrinsics: a pinhole K for a recording without camera_info; the images are taken as they are."""
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:2])
    spec = _spec(camera_info_topic="/no/camera_info", intrinsics=(500.0, 501.0, 320.5, 240.5))
    assert import_bag(tmp_path / "driver", tmp_path / "imported", spec) == 2
    data = read_bag(tmp_path / "imported")
    for s, f in zip(data.stamps, tum_frames_with_labels[:2]):
        np.testing.assert_array_equal(data.K[s], [[500.0, 0, 320.5], [0, 501.0, 240.5], [0, 0, 1]])
        np.testing.assert_array_equal(data.images[s], cv2.cvtColor(cv2.imread(str(f.rgb_path)), cv2.COLOR_BGR2RGB))
    with pytest.raises(BagError, match="positive, finite focal"):
        import_bag(tmp_path / "driver", tmp_path / "bad", _spec(intrinsics=(0.0, 1.0, 2.0, 3.0)))
    with pytest.raises(BagError, match="or --intrinsics"):
        import_bag(tmp_path / "driver", tmp_path / "none", _spec(camera_info_topic="/no/camera_info"))


def test_frames_without_a_depth_or_pose_in_time_keep_the_rest(tmp_path, tum_frames_with_labels, capsys):
    src = tmp_path / "driver"
    write_driver_bag(src, tum_frames_with_labels[:4])
    # depth within 1 ns of an image: TUM's depth images are 2-20 ms off theirs, so none pairs.
    report = ImportReport()
    import_bag(src, tmp_path / "tight", _spec(max_dt_s=1e-9), report=report)
    tight = read_bag(tmp_path / "tight")
    assert len(tight.stamps) == 4 and not tight.gt_depth and len(tight.gt_pose) == 4  # poses sit on the image stamps
    # ... and the import says so, with how far the nearest depth was (none paired at all: a clock problem).
    assert (report.frames, report.with_depth, report.with_pose) == (4, 0, 4)
    assert 1e-9 < report.nearest_depth_s < 0.05
    [warning] = report.warnings(_spec(max_dt_s=1e-9))
    assert "no frame got a depth image" in warning and f"nearest is {report.nearest_depth_s:.3g} s" in warning
    # The CLI prints the pairing and the warning; a pose source on another clock warns too.
    rc = cli(["bag", "import", str(src), str(tmp_path / "cli"), "--image-topic", "/camera/color/image_raw",
              "--depth-topic", DEPTH_TOPIC, "--world-frame", "world"])
    out = capsys.readouterr()
    assert rc == 0 and "depth 4 / 4, pose 4 / 4" in out.out and "warning" not in out.err
    late = tmp_path / "late_tf"
    rewrite_bag(src, late, lambda topic, msg: _shift_tf(topic, msg, 500_000_000))
    rc = cli(["bag", "import", str(late), str(tmp_path / "cli_late"), "--image-topic", "/camera/color/image_raw",
              "--depth-topic", DEPTH_TOPIC, "--world-frame", "world"])
    out = capsys.readouterr()
    assert rc == 0 and "pose 0 / 4" in out.out and "no frame got a pose world" in out.err, out
    import_bag(src, tmp_path / "nopose", _spec(world_frame=None, stride=2))
    nopose = read_bag(tmp_path / "nopose")
    assert len(nopose.stamps) == 2 and not nopose.gt_pose and len(nopose.gt_depth) == 2


def test_bad_recordings_are_refused_with_a_reason(tmp_path, tum_frames_with_labels):
    src = tmp_path / "driver"
    write_driver_bag(src, tum_frames_with_labels[:2])
    cases = [(_spec(world_frame="map"), "not joined by any transform"),
             (ImportSpec(image_topic="/camera/image"), "no image topic '/camera/image'"),
             (_spec(depth_topic="/camera/color/camera_info"), "not sensor_msgs/msg/Image"),
             (ImportSpec(image_topic="/camera/color/image_raw", camera_info_topic="/missing"), "camera_info")]
    for i, (spec, reason) in enumerate(cases):
        with pytest.raises(BagError, match=reason):
            import_bag(src, tmp_path / f"out{i}", spec)
        assert not (tmp_path / f"out{i}").exists()  # nothing half-written
    storage = next(p for p in src.iterdir() if p.name != "metadata.yaml")
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])  # a recording cut off (a full disk)
    with pytest.raises(BagError, match="cannot open bag|corrupt or truncated"):
        import_bag(src, tmp_path / "cut", _spec())
    assert not (tmp_path / "cut").exists()


def rewrite_bag(src: Path, dst: Path, edit) -> None:
    """A copy of the bag with edit(topic, msg) applied to every message (in place)."""
    from rosbags.rosbag2 import Writer

    reader, ts = open_reader(src), typestore()
    with Writer(dst, version=9) as writer:
        conns = {c.topic: writer.add_connection(c.topic, c.msgtype, typestore=ts) for c in reader.connections}
        for conn, stamp, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            edit(conn.topic, msg)
            writer.write(conns[conn.topic], stamp, ts.serialize_cdr(msg, conn.msgtype))
    reader.close()


def test_depth_not_registered_to_the_colour_image_is_refused(tmp_path, tum_frames_with_labels):
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:2])

    def halve_depth(topic, msg):  # the depth at the depth sensor's own 320x240, not aligned to colour
        if topic == DEPTH_TOPIC:
            half = np.frombuffer(bytes(msg.data), "<u2").reshape(480, 640)[::2, ::2].copy()
            msg.height, msg.width, msg.step, msg.data = 240, 320, 640, np.frombuffer(half.tobytes(), np.uint8)

    rewrite_bag(tmp_path / "driver", tmp_path / "small_depth", halve_depth)
    with pytest.raises(BagError, match="registered to the colour camera"):
        import_bag(tmp_path / "small_depth", tmp_path / "out", _spec())


def test_a_calibration_that_changes_is_refused(tmp_path, tum_frames_with_labels):
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:3])

    def zoom_later(topic, msg):  # the last frame's camera_info with another focal length
        if topic.endswith("camera_info") and stamp_of(msg.header) == round(tum_frames_with_labels[2].stamp_s * 1e9):
            msg.k = msg.k * np.array([1.1, 1, 1, 1, 1.1, 1, 1, 1, 1])

    rewrite_bag(tmp_path / "driver", tmp_path / "zoomed", zoom_later)
    with pytest.raises(BagError, match="camera_info changed"):
        import_bag(tmp_path / "zoomed", tmp_path / "out", _spec())


def test_a_nan_in_the_calibration_is_named_as_no_calibration(tmp_path, tum_frames_with_labels):
    """A NaN principal point was refused as "camera_info changed during the recording" (NaN never equals itself)."""
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:3])

    def nan_centre(topic, msg):
        if topic.endswith("camera_info"):
            msg.k = msg.k * np.array([1, 1, np.nan, 1, 1, 1, 1, 1, 1])

    rewrite_bag(tmp_path / "driver", tmp_path / "nan", nan_centre)
    with pytest.raises(BagError, match="camera_info has no calibration"):
        import_bag(tmp_path / "nan", tmp_path / "out", _spec())


def test_the_transform_tree_composes_interpolates_and_refuses():
    tree = TransformTree(max_extrapolation_ns=5)
    a, b = rigid([0, 0, 1], 10, [1, 0, 0]), rigid([0, 0, 1], 50, [3, 2, 0])
    tree.add("odom", "base", 100, a)
    tree.add("odom", "base", 200, b)
    mount = rigid([1, 0, 0], -90, [0.2, 0, 0.5])
    tree.add("base", "camera", 0, mount, static=True)
    tree.add("odom", "marker", 0, rigid([0, 1, 0], 20, [0, 0, 1]), static=True)
    np.testing.assert_allclose(tree.lookup("odom", "camera", 100), a @ mount, atol=1e-12)  # on a sample
    halfway = tree.lookup("odom", "camera", 150)
    np.testing.assert_allclose(halfway, rigid([0, 0, 1], 30, [2, 1, 0]) @ mount, atol=1e-12)  # slerp + lerp
    np.testing.assert_allclose(interpolate(a, b, 0.25)[:3, 3], [1.5, 0.5, 0], atol=1e-12)
    # two branches under one root: marker_from_camera = inv(odom_from_marker) @ odom_from_camera
    np.testing.assert_allclose(tree.lookup("marker", "camera", 200),
                               np.linalg.inv(rigid([0, 1, 0], 20, [0, 0, 1])) @ b @ mount, atol=1e-12)
    np.testing.assert_allclose(tree.lookup("camera", "odom", 200), np.linalg.inv(b @ mount), atol=1e-12)
    assert tree.lookup("odom", "camera", 204) is not None  # within the 5 ns allowed past the last sample
    assert tree.lookup("odom", "camera", 206) is None and tree.lookup("odom", "camera", 94) is None
    with pytest.raises(TransformError, match="not joined"):
        tree.lookup("map", "camera", 150)
    with pytest.raises(TransformError, match="two parents"):
        tree.add("map", "base", 100, np.eye(4))


def test_an_imported_bag_can_be_cut_again_and_listed_in_a_split(tmp_path, tum_frames_with_labels):
    """`bag convert --format bag` re-cuts a bag (a slower camera, the frames backwards) and a split
    lists an imported recording as `format: bag`, so a team's recordings take part in eval-suite."""
    from fourds_ros.evaluation.suite import load_split

    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:4])
    import_bag(tmp_path / "driver", tmp_path / "imported", _spec())
    full = read_bag(tmp_path / "imported")
    assert cli(["bag", "convert", "--format", "bag", str(tmp_path / "imported"), str(tmp_path / "every2nd"),
                "--stride", "2"]) == 0
    cut = read_bag(tmp_path / "every2nd")
    assert cut.stamps == full.stamps[::2]
    for s in cut.stamps:
        np.testing.assert_array_equal(cut.images[s], full.images[s])
        np.testing.assert_array_equal(np.isnan(cut.gt_depth[s]), np.isnan(full.gt_depth[s]))
        np.testing.assert_allclose(cut.gt_pose[s], full.gt_pose[s], atol=1e-12)
    assert cli(["bag", "convert", "--format", "bag", str(tmp_path / "imported"), str(tmp_path / "back"),
                "--reverse"]) == 0
    back = read_bag(tmp_path / "back")
    assert back.stamps == full.stamps  # the stamps still rise; the frames come last to first
    np.testing.assert_array_equal(back.images[back.stamps[0]], full.images[full.stamps[-1]])
    split = tmp_path / "split.yaml"
    split.write_text("recordings:\n"
                     "  - {name: mine, format: bag, path: imported, scene: my_lab}\n"
                     "  - {name: desk, format: tum, path: tum_fr1_rpy_f000-079, scene: tum_fr1_desk}\n"
                     "folds:\n  - {name: holdout_my_lab, train: [tum_fr1_desk], validation: [my_lab]}\n")
    assert load_split(split).recordings[0].format == "bag"


def _shift_tf(topic, msg, offset_ns: int) -> None:
    """/tf stamped by another clock, offset_ns behind the camera's."""
    if topic == "/tf":
        for tf in msg.transforms:
            t = stamp_of(tf.header) - offset_ns
            tf.header.stamp.sec, tf.header.stamp.nanosec = divmod(t, 1_000_000_000)


def test_depth_in_the_depth_cameras_own_frame_is_refused(tmp_path, tum_frames_with_labels):
    """Same size as the colour image but in the depth camera's frame (a RealSense recorded without
    align_depth): not registered, so it is refused rather than scored as if it were; a depth that is
    registered under another frame name imports with --depth-registered."""
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:2])

    def depth_frame(topic, msg):
        if topic == DEPTH_TOPIC:
            msg.header.frame_id = "camera_depth_optical_frame"

    rewrite_bag(tmp_path / "driver", tmp_path / "unaligned", depth_frame)
    with pytest.raises(BagError, match="'camera_depth_optical_frame', the images in 'camera_color_optical_frame'"):
        import_bag(tmp_path / "unaligned", tmp_path / "out", _spec())
    assert not (tmp_path / "out").exists()
    assert import_bag(tmp_path / "unaligned", tmp_path / "ok", _spec(depth_registered=True)) == 2


def test_depth_of_another_size_is_refused_with_intrinsics_too(tmp_path, tum_frames_with_labels):
    """--intrinsics has no camera_info size to check the depth against: each depth is checked against
    its own frame's image."""
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:2])

    def halve_depth(topic, msg):
        if topic == DEPTH_TOPIC:
            half = np.frombuffer(bytes(msg.data), "<u2").reshape(480, 640)[::2, ::2].copy()
            msg.height, msg.width, msg.step, msg.data = 240, 320, 640, np.frombuffer(half.tobytes(), np.uint8)

    rewrite_bag(tmp_path / "driver", tmp_path / "small_depth", halve_depth)
    spec = _spec(camera_info_topic="/no/camera_info", intrinsics=(500.0, 501.0, 320.5, 240.5))
    with pytest.raises(BagError, match="320x240 depth image for 640x480 colour images"):
        import_bag(tmp_path / "small_depth", tmp_path / "out", spec)


def test_an_invalid_rotation_in_tf_skips_that_sample_only(tmp_path, tum_frames_with_labels):
    """One all-zero quaternion on /tf (a motion-capture body that lost tracking) aborted the whole
    import; it is skipped and counted, as tf2 drops it, and only its frame goes without a pose."""
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:4])
    first = round(tum_frames_with_labels[0].stamp_s * 1e9)

    def lose_tracking(topic, msg):
        if topic == "/tf" and stamp_of(msg.transforms[0].header) == first:
            r = msg.transforms[0].transform.rotation
            r.x = r.y = r.z = r.w = 0.0

    rewrite_bag(tmp_path / "driver", tmp_path / "lost", lose_tracking)
    report = ImportReport()
    assert import_bag(tmp_path / "lost", tmp_path / "out", _spec(), report=report) == 4
    assert report.skipped_transforms == {("/tf", "world", "rig"): 1}
    assert (report.with_pose, report.with_depth) == (3, 4)
    assert first not in read_bag(tmp_path / "out").gt_pose
    assert "1 transform(s) world -> rig with an invalid rotation skipped" in report.warnings(_spec())[0]


def test_a_frame_with_two_parents_stops_the_import_only_on_the_cameras_chain(tmp_path, tum_frames_with_labels):
    """A robot's tree with base_footprint under two parents (robot_state_publisher's rig -> base_footprint
    on /tf_static, a second odometry node's world -> base_footprint on /tf), which tf2 accepts sample by
    sample: the import stopped on it even for images and depth alone, and for the pose of a camera
    whose chain never touches base_footprint. Only a camera pose through such a frame is refused."""
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:3])
    ts = typestore()

    def doubled(*pairs):
        def edit(topic, msg):
            if topic == "/tf_static":
                msg.transforms = [*msg.transforms, _transform(ts, "rig", "base_footprint", 0, np.eye(4))]
            if topic == "/tf":
                t = stamp_of(msg.transforms[0].header)
                msg.transforms = [*msg.transforms, *(_transform(ts, parent, child, t, np.eye(4))
                                                     for parent, child in pairs)]
        return edit

    rewrite_bag(tmp_path / "driver", tmp_path / "doubled", doubled(("world", "base_footprint")))
    assert import_bag(tmp_path / "doubled", tmp_path / "images", _spec(world_frame=None)) == 3
    assert len(read_bag(tmp_path / "images").gt_depth) == 3
    report = ImportReport()
    assert import_bag(tmp_path / "doubled", tmp_path / "posed", _spec(), report=report) == 3
    assert (report.with_pose, report.with_depth) == (3, 3)
    assert report.parent_conflicts == {("/tf", "base_footprint", "rig", "world"): 3}
    assert report.warnings(_spec()) == ["/tf: 3 transform(s) world -> base_footprint ignored: base_footprint already "
                                        "has the parent rig (not on the world -> camera chain, so no pose depends on it)"]
    _compare_with_reader(read_bag(tmp_path / "posed"), tum_frames_with_labels[:3])
    # rig, on the world -> camera chain, given a second parent: which one holds is the samples' order
    rewrite_bag(tmp_path / "driver", tmp_path / "on_chain", doubled(("map", "rig")))
    with pytest.raises(BagError, match="goes through frame 'rig', which has two parents, 'world' and 'map'"):
        import_bag(tmp_path / "on_chain", tmp_path / "refused", _spec())
    assert import_bag(tmp_path / "on_chain", tmp_path / "images2", _spec(world_frame=None)) == 3


def test_depth_images_are_let_go_once_their_frames_are_written(tmp_path, tum_frames_with_labels, monkeypatch):
    """The import holds a few frames at a time: a depth image was kept to the end of the recording
    (11 GB for five minutes of 640x480 at 30 Hz)."""
    write_driver_bag(tmp_path / "driver", tum_frames_with_labels)
    held = []
    release = bag_import._release

    def watched(waiting, depth, depth_for, uses):
        out = yield from release(waiting, depth, depth_for, uses)
        held.append(len(depth))
        return out

    monkeypatch.setattr(bag_import, "_release", watched)
    assert import_bag(tmp_path / "driver", tmp_path / "out", _spec()) == FRAMES
    assert max(held) <= 2 and held[-1] == 0, held
    # Reading it back for `eval --max-frames`: the labels of the frames left out are not held either.
    first = read_bag(tmp_path / "out", max_frames=3)
    assert len(first.stamps) == 3 and set(first.gt_depth) == set(first.gt_pose) == set(first.stamps)


def test_a_binned_camera_imports_with_the_intrinsics_of_the_image_it_sent(tmp_path, tum_frames_with_labels):
    """REP-104: a driver that bins 2 x 2 keeps the full sensor's K in camera_info (1280 x 960 here) and
    says so in binning_x/y; the import refused it (a 640 x 480 image for a 1280 x 960 camera_info),
    where the node takes such a camera. Binning undone, it imports as the unbinned recording does."""
    from fourds_ros.evaluation.bag import read_bag

    write_driver_bag(tmp_path / "driver", tum_frames_with_labels[:2])

    def full_sensor(topic, msg):  # the same camera described as its 1280 x 960 sensor, binned 2 x 2
        if topic.endswith("camera_info"):
            k = msg.k.reshape(3, 3).copy()
            k[:2, :2] *= 2
            k[:2, 2] = (k[:2, 2] + 0.5) * 2 - 0.5
            msg.k, msg.p = k.ravel(), np.c_[k, np.zeros(3)].ravel()
            msg.width, msg.height, msg.binning_x, msg.binning_y = 1280, 960, 2, 2

    rewrite_bag(tmp_path / "driver", tmp_path / "binned", full_sensor)
    import_bag(tmp_path / "driver", tmp_path / "plain", _spec())
    import_bag(tmp_path / "binned", tmp_path / "out", _spec())
    plain, binned = read_bag(tmp_path / "plain"), read_bag(tmp_path / "out")
    stamp = plain.stamps[0]
    np.testing.assert_allclose(binned.intrinsics(stamp), plain.intrinsics(stamp), atol=1e-9)
    assert np.array_equal(binned.images[stamp], plain.images[stamp])


def test_a_12_bit_cameras_images_import_with_its_bit_depth():
    """bag import stores rgb8: a 12-bit camera's mono16 imported 16x too dark, whatever the node's
    image_16bit_max; --image-16bit-max (ImportSpec.sixteen_bit_max) is the same setting for it."""
    from types import SimpleNamespace

    from fourds_ros.evaluation.bag import camera_image_from_msg

    msg = SimpleNamespace(encoding="mono16", height=1, width=2, step=4, is_bigendian=0,
                          data=np.frombuffer(np.array([[1024, 4095]], "<u2").tobytes(), np.uint8))
    assert camera_image_from_msg(msg)[0, 1].tolist() == [16] * 3
    assert camera_image_from_msg(msg, ImportSpec(image_topic="x", sixteen_bit_max=4095).sixteen_bit_max)[0, 1].tolist() \
        == [255] * 3


def test_a_12_bit_cameras_png_images_import_with_its_bit_depth():
    """The same camera over image_transport's png (a 16-bit CompressedImage): the import decoded it with
    OpenCV's /256 whatever --image-16bit-max said, 16x too dark, while the node reads it by image_16bit_max."""
    from types import SimpleNamespace

    ramp = np.tile(np.linspace(0, 4095, 64).astype(np.uint16), (8, 1))
    ok, png = cv2.imencode(".png", ramp)
    assert ok
    msg = SimpleNamespace(data=np.frombuffer(png.tobytes(), np.uint8), header=SimpleNamespace(frame_id="cam"))
    camera = bag_import.ImportedCamera(np.eye(3), None, None)
    frame = bag_import._frame(msg, "sensor_msgs/msg/CompressedImage", 0, camera, None, sixteen_bit_max=4095)
    assert frame.image.max() == 255 and abs(int(frame.image[0, 32, 0]) - round(int(ramp[0, 32]) * 255 / 4095)) <= 1


def test_a_roi_strip_with_a_lens_imports_with_its_k_checked_on_the_sensor():
    """The node keeps the K of a roi window that leaves the optical centre out (a strip watching the
    floor), checked on the sensor; the import's undistortion checked it on the window, and refused a
    recording the node reads ("camera_info's lens cannot be undone")."""
    from types import SimpleNamespace

    k = [1000.0, 0, 639.5, 0, 1000.0, 479.5, 0, 0, 1]
    msg = SimpleNamespace(width=1280, height=960, k=k, d=[-0.1, 0.02, 0.0, 0.0, 0.0], p=[0.0] * 12,
                          distortion_model="plumb_bob", binning_x=0, binning_y=0,
                          roi=SimpleNamespace(x_offset=0, y_offset=600, width=1280, height=360))
    camera = bag_import._calibration(msg, rectified=False, before=None)
    assert camera.size == (1280, 360) and camera.undistortion is not None
    assert camera.K[1, 2] < -0.5  # above the strip, on the sensor


@pytest.mark.parametrize("binning, roi, words", [
    (2000, (0, 0, 0, 0), "binning_x 2000 is more than the 1280 pixels"),
    (0, (10**6, 0, 640, 480), r"roi x_offset 1000000 \+ width 640 reaches past the sensor.s width 1280"),
])
def test_a_camera_info_whose_roi_or_binning_is_off_its_sensor_is_refused(binning, roi, words):
    """As the node refuses it (camera.window_problem): binning 2000 gave a 0x0 image's K, an roi at x_offset 10^6
    a principal point a million pixels off, and the import scored the recording with it."""
    from types import SimpleNamespace

    x, y, w, h = roi
    msg = SimpleNamespace(width=1280, height=960, k=[1000.0, 0, 639.5, 0, 1000.0, 479.5, 0, 0, 1], d=[0.0] * 5,
                          p=[0.0] * 12, distortion_model="plumb_bob", binning_x=binning, binning_y=binning,
                          roi=SimpleNamespace(x_offset=x, y_offset=y, width=w, height=h))
    with pytest.raises(bag_import.BagError, match=words):
        bag_import._calibration(msg, rectified=False, before=None)


def test_images_that_repeat_a_stamp_are_counted_and_max_frames_counts_frames(tmp_path, tum_frames_with_labels, capsys):
    """A camera that stamps two images alike (6 messages, 4 stamps): one frame a stamp, the first kept, as
    before, now counted and said (they were left out without a word), and --max-frames 3 gives 3 frames (it
    counted the repeats first: 6 asked, 4 written). A negative --max-frames or --stride is refused (-3 wrote
    every frame but the last three)."""
    f = tum_frames_with_labels
    src = tmp_path / "driver"
    write_driver_bag(src, [f[0], f[1], f[1], f[2], f[2], f[3]])
    report = ImportReport()
    assert import_bag(src, tmp_path / "all", _spec(), report=report) == 4 and report.repeated_stamps == 2
    assert any("2 image(s) repeated an earlier image's header stamp" in w for w in report.warnings(_spec()))
    report = ImportReport()
    assert import_bag(src, tmp_path / "three", _spec(max_frames=3), report=report) == 3
    assert read_bag(tmp_path / "three").stamps == [round(x.stamp_s * 1e9) for x in f[:3]]
    for option in (["--max-frames", "-3"], ["--max-frames", "0"], ["--stride", "0"], ["--start", "-1"]):
        with pytest.raises(SystemExit) as exc:
            cli(["bag", "import", str(src), str(tmp_path / "neg"), "--image-topic", "/camera/color/image_raw", *option])
        assert exc.value.code == 2 and "is below" in capsys.readouterr().err
    assert not (tmp_path / "neg").exists()
