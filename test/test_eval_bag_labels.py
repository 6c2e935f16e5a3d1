"""A team's recordings read as the node reads them: a camera_info for another image size scaled as the node
scales it (or refused), a compressed bag read for its stamps without holding its frames, 16UC1 ground truth in
millimetres, the camera_info nearest in time, a rectified topic's P, a depth image shared by two colour frames,
PoseWithCovarianceStamped poses, a video's start and stride, the replay's --max-frames and its dropped count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fourds_ros.evaluation.bag import BagData, Frame, typestore, write_bag
from fourds_ros.evaluation.report import track_ground_truth


def _frames(n: int) -> list[Frame]:
    K = np.array([[50.0, 0, 16], [0, 50, 12], [0, 0, 1]])
    return [Frame(stamp_ns=1_000 + i * 10, K=K, image=np.full((24, 32, 3), 10 * i, np.uint8)) for i in range(n)]


def test_the_replay_publishes_max_frames_frames_as_offline_reads_them(tmp_path):
    """eval --max-frames N: run_dds passes len(bag.stamps) = N to the replay, which must send N frames
    (one more completes another clip that the offline path never saw)."""
    from fourds_ros.evaluation.bag import read_bag
    from fourds_ros.evaluation.replay import load_replay_frames

    write_bag(_frames(6), tmp_path / "six")
    frames, _ = load_replay_frames(str(tmp_path / "six"), max_frames=4)
    assert [s for s, _, _ in frames] == read_bag(tmp_path / "six", max_frames=4).stamps == [1_000, 1_010, 1_020, 1_030]


def test_frames_the_node_never_answered_are_counted_as_dropped(tmp_path):
    """predictions_from_outputs: a describable frame with no arrival is a dropped frame (the report's
    performance.dropped); every test so far asserted dropped == 0, so `dropped = 0` passed them all."""
    from fourds_ros.evaluation.replay import predictions_from_outputs, write_recording

    write_recording([], tmp_path / "out.mcap", typestore())
    published = {str(i): 1_000 + i for i in range(10)}
    arrival = {str(i): 5_000_000 + i for i in range(10) if i not in (3, 7, 9)}
    timing = {"published_ns": published, "arrival_ns": arrival, "frames_published": 10, "wall_s": 1.0,
              "frames_describable": 10, "frames_in_clips": 8}
    preds = predictions_from_outputs(tmp_path / "out.mcap", timing)
    assert preds.dropped == 3
    assert sorted(preds.latency_ms) == [0, 1, 2, 4, 5, 6]  # frames 8, 9: the idle flush's, left out


def _write_eval_bag(path, n, image_hw=(24, 32), info_wh=None, extra=None):
    """An eval-layout bag written message by message: n rgb8 images with their camera_info (for
    info_wh = (width, height), default the images'), and extra(writer, ts, i, stamp) per frame."""
    from rosbags.rosbag2 import Writer

    from fourds_ros.evaluation.bag import CAMERA_INFO_TOPIC, IMAGE_TOPIC, camera_info_msg, image_msg

    h, w = image_hw
    iw, ih = info_wh or (w, h)
    K = np.array([[2.0 * iw, 0, (iw - 1) / 2], [0, 2.0 * iw, (ih - 1) / 2], [0, 0, 1]])
    ts = typestore()
    with Writer(path, version=9) as writer:
        ci = writer.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        cc = writer.add_connection(CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=ts)
        conns = {}
        for i in range(n):
            t = 1_000 + 10 * i
            writer.write(ci, t, ts.serialize_cdr(image_msg(ts, t, "camera", np.full((h, w, 3), 30 * i, np.uint8)),
                                                 "sensor_msgs/msg/Image"))
            writer.write(cc, t, ts.serialize_cdr(camera_info_msg(ts, t, "camera", K, iw, ih),
                                                 "sensor_msgs/msg/CameraInfo"))
            if extra is not None:
                extra(writer, ts, conns, i, t)
    return K


def test_a_16uc1_ground_truth_depth_is_read_in_millimetres(tmp_path):
    """/gt/depth as an RGB-D driver publishes it (16UC1 millimetres, 0 invalid), recorded straight into the
    eval layout: read as metres. No test wrote one, so any scale (/5000, TUM's) passed."""
    from fourds_ros.evaluation.bag import GT_DEPTH_TOPIC, _header, read_bag

    mm = np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 7
    mm[0, 0] = 0

    def depth(writer, ts, conns, i, t):
        if GT_DEPTH_TOPIC not in conns:
            conns[GT_DEPTH_TOPIC] = writer.add_connection(GT_DEPTH_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        msg = ts.types["sensor_msgs/msg/Image"](header=_header(ts, t, "camera"), height=24, width=32, encoding="16UC1",
                                                is_bigendian=0, step=64, data=np.frombuffer(mm.astype("<u2").tobytes(), np.uint8))
        writer.write(conns[GT_DEPTH_TOPIC], t, ts.serialize_cdr(msg, "sensor_msgs/msg/Image"))

    _write_eval_bag(tmp_path / "bag", 2, extra=depth)
    data = read_bag(tmp_path / "bag")
    assert sorted(data.gt_depth) == data.stamps
    got = data.gt_depth[data.stamps[1]]
    assert got.dtype == np.float32 and got.shape == (24, 32)
    np.testing.assert_allclose(got, mm / 1000.0, rtol=1e-6)


def test_eval_scores_with_the_k_the_node_uses_when_camera_info_is_for_another_size(tmp_path):
    """A camera_info calibrated at 64x48 beside 32x24 images (a resized stream recorded with the camera's own
    camera_info): the node over DDS scales K to the image (calibration.validate_intrinsics), so offline eval,
    its peers and the ground-truth K must too, or the bag is refused in one line as bag import refuses it.
    read_bag took K as is: offline and DDS scored the same bag with K twice apart."""
    from fourds_ros.evaluation.bag import BagError, check_scorable, read_bag
    from fourds_ros.perception.calibration import validate_intrinsics

    K = _write_eval_bag(tmp_path / "half", 3, image_hw=(24, 32), info_wh=(64, 48))
    data = check_scorable(read_bag(tmp_path / "half"))
    node_k, reason = validate_intrinsics(K, 32, 24, 64, 48)
    assert reason.startswith("scaled")
    for stamp in data.stamps:
        np.testing.assert_allclose(data.intrinsics(stamp), node_k)
    # another aspect: the node refuses that camera_info (size_mismatch); eval cannot score it as the node runs
    _write_eval_bag(tmp_path / "aspect", 3, image_hw=(24, 32), info_wh=(64, 36))
    with pytest.raises(BagError, match="64x36"):
        check_scorable(read_bag(tmp_path / "aspect"))


def test_a_written_camera_info_describes_its_images_size(tmp_path):
    """write_bag's camera_info width x height: the node over DDS checks K against it (validate_intrinsics)
    and refuses a K for 24x32 beside 32x24 images (default field of view); offline ignored the size, so
    width and height swapped passed every test."""
    from fourds_ros.evaluation.bag import CAMERA_INFO_TOPIC, bag_messages, open_reader

    for compressed in (False, True):
        frames = _frames(2)
        if compressed:
            import cv2

            for f in frames:
                f.encoded, f.encoding, f.image = cv2.imencode(".png", f.image)[1].tobytes(), "png", None
        write_bag(frames, tmp_path / f"c{compressed}", compressed=compressed)
        reader = open_reader(tmp_path / f"c{compressed}")
        try:
            infos = [msg for conn, msg in bag_messages("b", reader, reader.connections) if conn.topic == CAMERA_INFO_TOPIC]
        finally:
            reader.close()
        assert [(m.width, m.height) for m in infos] == [(32, 24)] * 2


def test_reading_a_compressed_bag_without_images_decodes_one_frame_for_its_size(tmp_path, monkeypatch):
    """read_bag(images=False) (`fourds-ros bench replay`, which needs the stamps): a compressed bag's first
    frame is decoded to learn the size, as the docstring says. image_hw stayed None inside the loop, so every
    frame was decoded and held: a 5-minute 1080p recording is 9000 x 6 MB in memory before the node starts."""
    import cv2

    from fourds_ros.evaluation import bag as bag_mod

    frames = [Frame(stamp_ns=1_000 + 10 * i, K=np.array([[50.0, 0, 15.5], [0, 50, 11.5], [0, 0, 1]]),
                    encoded=cv2.imencode(".png", np.full((24, 32, 3), 20 * i, np.uint8))[1].tobytes(), encoding="png")
              for i in range(5)]
    write_bag(frames, tmp_path / "c", compressed=True)
    decoded = []
    real = bag_mod.decode_image
    monkeypatch.setattr(bag_mod, "decode_image", lambda *a, **k: decoded.append(1) or real(*a, **k))
    data = bag_mod.read_bag(tmp_path / "c", images=False)
    assert len(data.stamps) == 5 and data.image_hw == (24, 32)
    assert len(decoded) == 1 and len(data.images) <= 1


def test_a_frame_takes_the_camera_info_nearest_in_time():
    """BagData.intrinsics: a driver's camera_info off the image's stamp is matched to the nearest one, as
    the replay matches it (replay.nearest_info, tested alone); here a zoom between two camera_infos."""
    from pathlib import Path

    from fourds_ros.evaluation.bag import BagData

    data = BagData(Path("b"), K={1_000: np.eye(3), 34_000: 2 * np.eye(3), 67_000: 3 * np.eye(3)})
    assert [data.intrinsics(s)[0, 0] for s in (0, 1_000, 17_000, 18_000, 60_000, 99_000)] == [1, 1, 1, 2, 3, 3]


def test_a_rectified_topic_imports_with_the_projection_matrix(tmp_path):
    """bag import --rectified: an image_rect topic is scored with P (the rectified camera), not with K
    (the raw lens's) and its distortion is not applied again. No test had P differ from K, so reading K
    for --rectified passed them all; a stereo or alpha-rectified camera has fx 10-20 % apart."""
    from rosbags.rosbag2 import Writer

    from fourds_ros.evaluation.bag import _header, image_msg
    from fourds_ros.evaluation.bag_import import ImportSpec, import_frames

    ts = typestore()
    K = np.array([[60.0, 0, 16.2], [0, 61, 11.7], [0, 0, 1]])
    P = np.array([[52.0, 0, 15.0, 0], [0, 52, 12.5, 0], [0, 0, 1, 0]])
    with Writer(tmp_path / "rect", version=9) as w:
        ci = w.add_connection("/cam/image_rect", "sensor_msgs/msg/Image", typestore=ts)
        cc = w.add_connection("/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=ts)
        for i in range(3):
            t = 10**9 + i * 33_000_000
            w.write(ci, t, ts.serialize_cdr(image_msg(ts, t, "cam", np.full((24, 32, 3), 50 * i, np.uint8)),
                                            "sensor_msgs/msg/Image"))
            info = ts.types["sensor_msgs/msg/CameraInfo"](
                header=_header(ts, t, "cam"), height=24, width=32, distortion_model="plumb_bob",
                d=np.array([-0.2, 0.05, 0.001, 0.0, 0.0]), k=K.reshape(9), r=np.eye(3).reshape(9), p=P.reshape(12),
                binning_x=0, binning_y=0, roi=ts.types["sensor_msgs/msg/RegionOfInterest"](
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            w.write(cc, t, ts.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
    frames = list(import_frames(tmp_path / "rect", ImportSpec(image_topic="/cam/image_rect", rectified=True)))
    assert len(frames) == 3
    for f in frames:
        np.testing.assert_allclose(f.K, P[:, :3])
        assert f.image[0, 0].tolist() == f.image[12, 16].tolist()  # uniform: not remapped through a lens


def _driver_bag(path, n_images=6, depth_every=2, pose_type=None):
    """A small driver recording: /cam/image_raw rgb8 32x24 at 30 Hz with /cam/camera_info, 16UC1 depth on
    /cam/depth at every depth_every-th image's stamp (a 15 Hz depth camera), and, with pose_type, the camera's
    pose on /mocap (world -> cam: translation x = 0.1 i)."""
    from rosbags.rosbag2 import Writer

    from fourds_ros.evaluation.bag import _header, camera_info_msg, image_msg, pose_to_msg_fields

    ts = typestore()
    K = np.array([[50.0, 0, 15.5], [0, 50, 11.5], [0, 0, 1]])
    T = ts.types
    with Writer(path, version=9) as w:
        ci = w.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=ts)
        cc = w.add_connection("/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=ts)
        cd = w.add_connection("/cam/depth", "sensor_msgs/msg/Image", typestore=ts)
        cp = w.add_connection("/mocap", pose_type, typestore=ts) if pose_type else None
        for i in range(n_images):
            t = 10**9 + i * 33_333_333
            w.write(ci, t, ts.serialize_cdr(image_msg(ts, t, "cam", np.full((24, 32, 3), 9 * i, np.uint8)), "sensor_msgs/msg/Image"))
            w.write(cc, t, ts.serialize_cdr(camera_info_msg(ts, t, "cam", K, 32, 24), "sensor_msgs/msg/CameraInfo"))
            if i % depth_every == 0:
                mm = np.full((24, 32), 1000 + i, "<u2")
                msg = T["sensor_msgs/msg/Image"](header=_header(ts, t, "cam"), height=24, width=32, encoding="16UC1",
                                                 is_bigendian=0, step=64, data=np.frombuffer(mm.tobytes(), np.uint8))
                w.write(cd, t, ts.serialize_cdr(msg, "sensor_msgs/msg/Image"))
            if pose_type:
                M = np.eye(4)
                M[0, 3] = 0.1 * i
                position, q = pose_to_msg_fields(ts, M)
                pose = T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](
                    x=position[0], y=position[1], z=position[2]), orientation=q)
                cov = T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36))
                msg = T[pose_type](header=_header(ts, t, "world"), pose=cov)
                w.write(cp, t, ts.serialize_cdr(msg, pose_type))


def test_a_depth_image_shared_by_two_colour_frames_reaches_both(tmp_path):
    """Colour at 30 Hz, depth at 15 Hz, --max-dt 0.034: each depth image is the nearest of two frames
    (_second_pass counts its uses and lets it go after the last). Let go one use early, the second frame
    was written without depth and nothing said so; no test had a depth image serve two frames."""
    from fourds_ros.evaluation.bag_import import ImportReport, ImportSpec, import_frames

    _driver_bag(tmp_path / "b", n_images=6, depth_every=2)
    report = ImportReport()
    frames = list(import_frames(tmp_path / "b", ImportSpec(image_topic="/cam/image_raw", depth_topic="/cam/depth",
                                                            max_dt_s=0.034), report))
    assert report.frames == 6 and report.with_depth == 6
    assert [float(f.gt_depth[0, 0]) for f in sorted(frames, key=lambda f: f.stamp_ns)] == pytest.approx(
        [1.000, 1.000, 1.002, 1.002, 1.004, 1.004])


def test_a_pose_with_covariance_topic_gives_the_camera_pose(tmp_path):
    """--pose-topic on geometry_msgs/PoseWithCovarianceStamped (amcl_pose, a motion-capture driver's): the
    pose is msg.pose.pose. Documented and accepted by _check_topics, but no test recorded one."""
    from fourds_ros.evaluation.bag_import import ImportReport, ImportSpec, import_frames

    _driver_bag(tmp_path / "p", n_images=3, pose_type="geometry_msgs/msg/PoseWithCovarianceStamped")
    report = ImportReport()
    frames = list(import_frames(tmp_path / "p", ImportSpec(image_topic="/cam/image_raw", world_frame="world",
                                                            pose_topics=("/mocap:cam",)), report))
    assert report.with_pose == 3
    assert [round(f.gt_pose[0, 3], 6) for f in frames] == [0.0, 0.1, 0.2]


def test_a_videos_start_and_stride_pick_the_frames_the_other_readers_pick(tmp_path):
    """iter_mp4 --start 1 --stride 2: frames 1, 3, 5 (as _select picks a folder's); stepped from frame 0
    instead, it converted frames 2 and 4, and no test gave a video a start and a stride together."""
    import cv2

    from fourds_ros.evaluation.datasets import iter_mp4

    path = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (32, 24))
    for i in range(7):
        writer.write(np.full((24, 32, 3), 30 * i, np.uint8))
    writer.release()
    every = [f.stamp_ns for f in iter_mp4(path)]
    assert len(every) == 7
    assert [f.stamp_ns for f in iter_mp4(path, start=1, stride=2)] == every[1::2]
    assert [f.stamp_ns for f in iter_mp4(path, start=1, stride=2, max_frames=2)] == every[1::2][:2]


def test_a_camera_that_changes_its_resolution_keeps_each_frames_own_camera_info(tmp_path):
    """Frames at 32x24 then 64x48 (a driver reconfigured mid-recording), each camera_info for its own frames:
    the node uses each as it comes, and so does eval; scaled to the first frame's size, the later frames had
    half their focal length."""
    from rosbags.rosbag2 import Writer

    from fourds_ros.evaluation.bag import CAMERA_INFO_TOPIC, IMAGE_TOPIC, camera_info_msg, check_scorable, image_msg
    from fourds_ros.evaluation.bag import read_bag

    ts = typestore()
    with Writer(tmp_path / "bag", version=9) as writer:
        ci = writer.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        cc = writer.add_connection(CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=ts)
        for i in range(4):
            h, w = (24, 32) if i < 2 else (48, 64)
            k = np.array([[2.0 * w, 0, (w - 1) / 2], [0, 2.0 * w, (h - 1) / 2], [0, 0, 1]])
            t = 1_000 + 10 * i
            writer.write(ci, t, ts.serialize_cdr(image_msg(ts, t, "camera", np.full((h, w, 3), 30 * i, np.uint8)),
                                                 "sensor_msgs/msg/Image"))
            writer.write(cc, t, ts.serialize_cdr(camera_info_msg(ts, t, "camera", k, w, h), "sensor_msgs/msg/CameraInfo"))
    data = check_scorable(read_bag(tmp_path / "bag"))
    assert [data.intrinsics(s)[0, 0] for s in data.stamps] == [64.0, 64.0, 128.0, 128.0]


def test_ground_truth_depth_at_another_resolution_is_scored_with_its_own_k():
    """/gt/depth registered to the camera at its calibrated 64x48 beside 32x24 images: the predictions are
    mapped onto the ground truth's grid with K scaled to that grid (BagData.gt_intrinsics); with the images' K
    a perfect prediction read AbsRel 0.19 on a quarter of the pixels."""
    from pathlib import Path

    from fourds_ros.evaluation.bag import BagData
    from fourds_ros.evaluation.metrics import depth_errors
    from fourds_ros.perception.calibration import validate_intrinsics

    k_info = np.array([[128.0, 0, 31.5], [0, 128, 23.5], [0, 0, 1]])
    k_image, _ = validate_intrinsics(k_info, 32, 24, 64, 48)
    gt = (1.0 + np.mgrid[0:48, 0:64][1] / 64.0).astype(np.float32)  # depth ramps left to right
    pred = (1.0 + (2 * np.mgrid[0:24, 0:32][1] + 0.5) / 64.0).astype(np.float32)  # perfect, at 32x24
    data = BagData(Path("b"), K={1_000: k_image}, gt_depth={1_000: gt}, image_hw=(24, 32))
    np.testing.assert_allclose(data.gt_intrinsics(1_000), k_info, atol=1e-9)
    errors = depth_errors(pred, gt, pred_K=k_image, gt_K=data.gt_intrinsics(1_000))
    assert errors["abs_rel"] < 1e-3 and errors["valid_pixels"] == 48 * 64


def test_track_ground_truth_reads_depth_recorded_at_another_resolution(tmp_path):
    """The HoloLens walk with its registered depth at half the images' size: the track ground truth read the depth at
    image pixels with the images' K (depth scoring already used the depth's own), and AJ went 0.50 -> 0.08 with no
    word (review). The same queries now get the same ground truth as with full-size depth, within a few pixels."""
    import cv2

    from fourds_ros.evaluation.bag import read_bag
    from fourds_ros.evaluation.datasets import iter_dataset
    from fourds_ros.evaluation.report import track_ground_truth

    from .conftest import SHARED_DATA, require

    frames = list(iter_dataset("hololens", require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334"), max_frames=8))
    write_bag(frames, tmp_path / "full", compressed=True)
    for f in frames:  # the same registered depth at half the colour camera's resolution
        f.gt_depth = cv2.resize(f.gt_depth, (f.gt_depth.shape[1] // 2, f.gt_depth.shape[0] // 2),
                                interpolation=cv2.INTER_NEAREST_EXACT)
    write_bag(frames, tmp_path / "half", compressed=True)
    full, half = read_bag(tmp_path / "full"), read_bag(tmp_path / "half")
    queries = {i: (full.stamps[0], 100.0 + 40 * (i % 8), 80.0 + 30 * (i // 8)) for i in range(40)}
    _, _, a = track_ground_truth(full, full.stamps, queries)
    _, _, b = track_ground_truth(half, half.stamps, queries)
    both = a["valid"] & b["valid"]
    assert both.sum() > 20, (a["valid"].sum(), b["valid"].sum())
    assert np.nanmedian(np.linalg.norm(a["xy"][both] - b["xy"][both], axis=-1)) < 3.0


def test_track_ground_truth_reads_depth_at_another_resolution_when_the_first_frame_has_none():
    """Depth at half the images' size and half their rate (a team's bag: the first frame may have no depth image): the
    depth's K was taken at the first frame, where with no depth it is the images' K, and every frame's depth was read
    at the wrong pixels (4 of 10 queries lost, occluded 0.15 -> 0.58 on a tilted plane; review). Without the first
    frame's depth, the other frames' ground truth is as with it."""
    h, w = 48, 64
    k = np.array([[60.0, 0, w / 2 - 0.5], [0, 60, h / 2 - 0.5], [0, 0, 1]])
    stamps = [1_000 * (i + 1) for i in range(6)]
    plane = np.repeat(np.linspace(1.0, 3.0, w // 2, dtype=np.float32)[None], h // 2, axis=0)  # tilted left to right

    def bag(first_depth: bool) -> BagData:
        data = BagData(Path("b"), stamps=stamps, K=dict.fromkeys(stamps, k), image_hw=(h, w))
        for i, s in enumerate(stamps):
            data.gt_pose[s] = np.eye(4)
            data.gt_pose[s][0, 3] = 0.02 * i
            if i or first_depth:
                data.gt_depth[s] = plane.copy()
        return data

    queries = {i: (stamps[1], 10.0 + 4 * i, 20.0) for i in range(10)}
    _, _, full = track_ground_truth(bag(True), stamps, queries)
    _, _, later = track_ground_truth(bag(False), stamps, queries)
    assert full["valid"].all() and later["valid"].all()
    np.testing.assert_allclose(later["xy"][:, 1:], full["xy"][:, 1:], atol=1e-9)
    np.testing.assert_array_equal(later["occluded"][:, 1:], full["occluded"][:, 1:])
