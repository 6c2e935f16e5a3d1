"""Dataset -> rosbag2 -> read back, in mcap and sqlite3, through the real `fourds-ros bag convert`
CLI and the rosbags library; plus clear errors for corrupt, truncated and incomplete bags."""

from __future__ import annotations

import shutil
import struct
import zlib

import cv2
import numpy as np
import pytest

from fourds_ros.cli import main as cli
from fourds_ros.rgbd import read_7scenes, seven_scenes_rgb_intrinsics
from fourds_ros.evaluation.bag import (CAMERA_INFO_TOPIC, COMPRESSED_TOPIC, GT_DEPTH_TOPIC, GT_POSE_TOPIC,
                                       IMAGE_TOPIC, TF_TOPIC, BagError, Frame, open_reader, read_bag, write_bag)

from .conftest import REPO, SHARED_DATA, require

SEVEN = SHARED_DATA / "7scenes_redkitchen_f000-299"
HOLO = SHARED_DATA / "hololens_dvmvs_000_f00305-00334"


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_7scenes_round_trip(tmp_path, storage):
    src = require(SEVEN)
    out = tmp_path / "bag"
    assert cli(["bag", "convert", "--format", "7scenes", str(src), str(out), "--storage", storage,
                "--start", "10", "--stride", "2", "--max-frames", "4"]) == 0
    assert list(out.glob("*.mcap" if storage == "mcap" else "*.db3"))
    data = read_bag(out)
    # real stamps: frame index / 30 Hz (frames 10, 12, 14, 16)
    assert data.stamps == [round(i * 1e9 / 30) for i in (10, 12, 14, 16)]
    assert set(data.topics) == {IMAGE_TOPIC, CAMERA_INFO_TOPIC, GT_DEPTH_TOPIC, GT_POSE_TOPIC, TF_TOPIC}
    s = data.stamps[1]
    rgb = cv2.cvtColor(cv2.imread(str(src / "frame-000012.color.jpg")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(data.images[s], rgb)
    # 7-Scenes' depth and poses are its depth camera's: the bag carries them for the RGB camera
    # (fourds_ros.rgbd: registered depth, the RGB camera's pose and K)
    registered = read_7scenes(src).depth(12)
    valid = registered > 0
    np.testing.assert_allclose(data.gt_depth[s][valid], registered[valid], rtol=1e-6)
    assert np.isnan(data.gt_depth[s][~valid]).all()
    raw = cv2.imread(str(src / "frame-000012.depth.png"), cv2.IMREAD_UNCHANGED)
    assert np.isin(np.round(registered[valid] * 1000).astype(int), raw).all()  # sensor depths, not interpolated
    depth_pose = np.loadtxt(src / "frame-000012.pose.txt")
    np.testing.assert_allclose(data.gt_pose[s][:3, :3], depth_pose[:3, :3], atol=2e-4)
    assert abs(np.linalg.norm(data.gt_pose[s][:3, 3] - depth_pose[:3, 3]) - 0.025) < 1e-3  # the 2.5 cm baseline
    np.testing.assert_allclose(data.K[s], seven_scenes_rgb_intrinsics(src))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_directory_named_dot_bag(tmp_path, storage):
    """`ros2 bag record -o run.bag` makes a rosbag2 directory named *.bag, which rosbags alone
    takes for a ROS 1 bag file ("Is a directory"); it reads like any other directory."""
    src = require(HOLO)
    out = tmp_path / "run.bag"
    assert cli(["bag", "convert", "--format", "hololens", str(src), str(out), "--storage", storage,
                "--max-frames", "3"]) == 0
    assert out.is_dir()
    data = read_bag(out)
    assert len(data.stamps) == 3 and len(data.images) == 3 and len(data.gt_pose) == 3
    ros1 = tmp_path / "old.bag"  # a ROS 1 bag file is read as one (test_bag_import.py); a broken one is refused
    ros1.write_bytes(b"#ROSBAG V2.0\n" + b"\0" * 64)
    with pytest.raises(BagError, match="cannot open bag"):
        open_reader(ros1)
    db3 = tmp_path / "lone.db3"  # a rosbag2 storage file away from its metadata.yaml
    db3.write_bytes(b"\0" * 64)
    with pytest.raises(BagError, match="not a rosbag2 directory"):
        open_reader(db3)


def test_reverse_plays_the_frames_backwards_with_rising_stamps(tmp_path):
    """`bag convert --reverse`: the same stamps in the same order, each carrying the frame (image,
    depth, pose) that was at the mirrored place."""
    src = require(HOLO)
    bags = {}
    for flag in ([], ["--reverse"]):
        out = tmp_path / ("backwards" if flag else "forwards")
        assert cli(["bag", "convert", "--format", "hololens", str(src), str(out), "--max-frames", "4", *flag]) == 0
        bags[bool(flag)] = read_bag(out)
    forwards, backwards = bags[False], bags[True]
    assert backwards.stamps == forwards.stamps and backwards.stamps == sorted(backwards.stamps)
    for s, mirrored in zip(backwards.stamps, reversed(forwards.stamps)):
        np.testing.assert_array_equal(backwards.images[s], forwards.images[mirrored])
        np.testing.assert_array_equal(backwards.gt_pose[s], forwards.gt_pose[mirrored])
        np.testing.assert_array_equal(backwards.gt_depth[s], forwards.gt_depth[mirrored])
    assert not np.array_equal(backwards.images[backwards.stamps[0]], forwards.images[forwards.stamps[0]])


def test_compressed_keeps_original_bytes(tmp_path):
    src = require(HOLO)
    out = tmp_path / "bag"
    assert cli(["bag", "convert", "--format", "hololens", str(src), str(out), "--compressed",
                "--max-frames", "3", "--fps", "5"]) == 0
    reader = open_reader(out)
    try:
        conn = next(c for c in reader.connections if c.topic == COMPRESSED_TOPIC)
        msgs = [reader.deserialize(raw, conn.msgtype) for _, _, raw in reader.messages(connections=[conn])]
    finally:
        reader.close()
    first = sorted((src / "images").glob("*.png"))[0]
    assert bytes(msgs[0].data) == first.read_bytes()
    assert "png" in msgs[0].format
    data = read_bag(out)
    assert data.compressed and data.stamps == [0, 200_000_000, 400_000_000]
    assert data.images[0].shape == (360, 540, 3)


def test_frames_mp4_and_tum_sources(tmp_path):
    import av

    src = require(HOLO)
    images = sorted((src / "images").glob("*.png"))[:6]
    # a frames folder
    folder = tmp_path / "frames"
    folder.mkdir()
    for p in images:
        shutil.copy(p, folder / p.name)
    assert cli(["bag", "convert", "--format", "frames", str(folder), str(tmp_path / "fb"), "--fps", "10",
                "--intrinsics", "500", "500", "270", "180"]) == 0
    fb = read_bag(tmp_path / "fb")
    assert fb.stamps == [i * 100_000_000 for i in range(6)] and not fb.gt_pose
    assert fb.K[0][0, 0] == 500
    # an mp4 written with PyAV at 15 fps: stamps come from the frame pts
    video = tmp_path / "clip.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=15)
        stream.width, stream.height, stream.pix_fmt = 540, 360, "yuv420p"
        for p in images:
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    assert cli(["bag", "convert", "--format", "mp4", str(video), str(tmp_path / "vb"), "--storage", "sqlite3"]) == 0
    vb = read_bag(tmp_path / "vb")
    assert len(vb.stamps) == 6
    np.testing.assert_allclose(np.diff(vb.stamps), 1e9 / 15, atol=1e3)
    # TUM RGB-D layout (real stamps, depth / 5000, quaternion ground truth)
    tum = tmp_path / "tum"
    (tum / "rgb").mkdir(parents=True)
    (tum / "depth").mkdir()
    poses = np.loadtxt(src / "poses.txt").reshape(-1, 4, 4)
    import transforms3d

    rgb_lines, depth_lines, gt_lines = [], [], []
    for i, p in enumerate(images):
        t = 1305031102.175304 + i / 30
        shutil.copy(p, tum / "rgb" / f"{t:.6f}.png")
        mm = cv2.imread(str(src / "depth" / p.name), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(tum / "depth" / f"{t + 0.004:.6f}.png"), (mm.astype(np.float64) * 5).astype(np.uint16))
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
        depth_lines.append(f"{t + 0.004:.6f} depth/{t + 0.004:.6f}.png")
        w, x, y, z = transforms3d.quaternions.mat2quat(poses[i][:3, :3])
        gt_lines.append(f"{t + 0.001:.4f} {' '.join(map(str, poses[i][:3, 3]))} {x} {y} {z} {w}")
    (tum / "rgb.txt").write_text("# color images\n" + "\n".join(rgb_lines) + "\n")
    # The last image has no depth within 20 ms: it stays in the bag, without /gt/depth.
    (tum / "depth.txt").write_text("\n".join(depth_lines[:-1]) + "\n")
    (tum / "groundtruth.txt").write_text("# timestamp tx ty tz qx qy qz qw\n" + "\n".join(gt_lines) + "\n")
    # 540x360 images in a folder that names no TUM camera: TUM's 640x480 calibrations are not theirs
    assert cli(["bag", "convert", "--format", "tum", str(tum), str(tmp_path / "tb")]) == 1
    assert cli(["bag", "convert", "--format", "tum", str(tum), str(tmp_path / "tb"),
                "--intrinsics", "495.6", "495.5", "270", "180"]) == 0
    tb = read_bag(tmp_path / "tb")
    assert tb.K[tb.stamps[0]][0, 0] == 495.6
    assert tb.stamps[0] == round(1305031102.175304 * 1e9)
    np.testing.assert_allclose(tb.gt_pose[tb.stamps[2]], poses[2], atol=1e-5)
    mm = cv2.imread(str(src / "depth" / images[2].name), cv2.IMREAD_UNCHANGED)
    ok = mm > 0
    np.testing.assert_allclose(tb.gt_depth[tb.stamps[2]][ok], mm[ok] / 1000.0, rtol=1e-4)
    assert len(tb.stamps) == len(images) and tb.stamps[-1] not in tb.gt_depth and tb.stamps[-1] in tb.gt_pose


def test_a_video_without_timestamps_gets_one_stamp_per_frame_at_its_rate(tmp_path):
    """blackswan.mp4 (and five more of davis2016_val_subset) carries pts 0 on every frame and an
    average_rate of 1200: every frame was stamped 0, and the bag held one image for 50 frames."""
    src = require(SHARED_DATA / "davis2016_val_subset" / "blackswan.mp4")
    assert cli(["bag", "convert", "--format", "mp4", str(src), str(tmp_path / "swan"), "--max-frames", "20"]) == 0
    swan = read_bag(tmp_path / "swan")
    assert len(swan.stamps) == 20 and len(swan.images) == 20
    np.testing.assert_allclose(np.diff(swan.stamps), 1e9 / 24, atol=1)  # the stream's guessed 24 Hz
    assert cli(["bag", "convert", "--format", "mp4", str(src), str(tmp_path / "swan10"), "--max-frames", "3",
                "--fps", "10"]) == 0
    assert read_bag(tmp_path / "swan10").stamps == [0, 100_000_000, 200_000_000]


def test_options_a_format_does_not_use_are_refused(tmp_path, capsys):
    """`--intrinsics` on a HoloLens folder (which reads its own K.txt) was dropped unsaid."""
    src = require(HOLO)
    assert cli(["bag", "convert", "--format", "hololens", str(src), str(tmp_path / "h"),
                "--intrinsics", "400", "400", "270", "180"]) == 1
    assert "--intrinsics: not for --format hololens" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()


def test_unpadded_frame_names_are_read_in_number_order(tmp_path):
    """1.png, 2.png, ..., 10.png: sorted as text, frame 10 came second."""
    for i in range(1, 12):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i, np.uint8))
    from fourds_ros.evaluation.datasets import iter_frames

    assert [int(f.rgb()[0, 0, 0]) for f in iter_frames(tmp_path)] == list(range(1, 12))


def _tiny_frames(n=3):
    K = np.array([[50.0, 0, 16], [0, 50, 12], [0, 0, 1]])
    return [Frame(stamp_ns=i * 10, K=K, image=np.full((24, 32, 3), i, np.uint8)) for i in range(n)]


def test_bad_bags_give_clear_errors(tmp_path):
    with pytest.raises(BagError, match="no such bag"):
        read_bag(tmp_path / "missing")
    # corrupt: garbage where the storage file should be
    good = tmp_path / "good"
    write_bag(_tiny_frames(), good)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(good, corrupt)
    mcap = next(corrupt.glob("*.mcap"))
    mcap.write_bytes(b"\x89MCAP0\r\n" + b"garbage" * 50)
    with pytest.raises(BagError, match="corrupt"):
        read_bag(corrupt)
    # truncated: the second half of the file cut off
    truncated = tmp_path / "truncated"
    shutil.copytree(good, truncated)
    mcap = next(truncated.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(BagError, match="corrupt|truncated|cannot open"):
        read_bag(truncated)
    # missing image topic: only ground truth
    gt_only = [Frame(stamp_ns=f.stamp_ns, K=f.K, image=f.image, gt_pose=np.eye(4)) for f in _tiny_frames()]
    from rosbags.rosbag2 import Writer

    from fourds_ros.evaluation.bag import typestore

    ts = typestore()
    pose_only = tmp_path / "pose_only"
    with Writer(pose_only, version=9) as writer:
        conn = writer.add_connection("/gt/pose", "geometry_msgs/msg/PoseStamped", typestore=ts)
        from fourds_ros.evaluation.bag import _header, pose_to_msg_fields

        pos, q = pose_to_msg_fields(ts, gt_only[0].gt_pose)
        msg = ts.types["geometry_msgs/msg/PoseStamped"](
            header=_header(ts, 0, "world"),
            pose=ts.types["geometry_msgs/msg/Pose"](position=ts.types["geometry_msgs/msg/Point"](x=0, y=0, z=0),
                                                     orientation=q))
        writer.write(conn, 0, ts.serialize_cdr(msg, "geometry_msgs/msg/PoseStamped"))
    with pytest.raises(BagError, match="no camera images"):
        read_bag(pose_only)
    # existing output directory is refused, not overwritten
    with pytest.raises(BagError, match="already exists"):
        write_bag(_tiny_frames(), good)
    # the CLI turns these into exit code 1 with a message, not a traceback
    assert cli(["bag", "convert", "--format", "7scenes", str(tmp_path), str(tmp_path / "x")]) == 1


def test_bag_without_ground_truth_reads(tmp_path):
    write_bag(_tiny_frames(), tmp_path / "b", storage="sqlite3")
    data = read_bag(tmp_path / "b")
    assert len(data.stamps) == 3 and not data.gt_depth and not data.gt_pose
    assert data.images[10].mean() == 1


def test_ground_truth_tracks_round_trip_and_score(tmp_path):
    """A synthetic bag with /gt/tracks (as the training data generator writes): read back exactly,
    and a method that reproduces them scores AJ = 1 through the report code; a 3-px error does not."""
    from fourds_ros.evaluation.predictions import Predictions
    from fourds_ros.evaluation.report import score_tracks

    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    frames = []
    for i in range(6):
        uv = np.array([[10.0 + 2 * i, 20.0], [40.0, 10.0 + i], [30.0, 30.0]])
        frames.append(Frame(stamp_ns=i * 40_000_000, K=K, image=np.zeros((48, 64, 3), np.uint8),
                            gt_tracks={"ids": np.array([7, 8, 9]), "uv": uv, "visible": np.array([True, True, i < 3])}))
    write_bag(frames, tmp_path / "syn", storage="sqlite3")
    data = read_bag(tmp_path / "syn")
    assert "/gt/tracks" in data.topics
    np.testing.assert_allclose(data.gt_tracks[80_000_000]["uv"], frames[2].gt_tracks["uv"])
    assert data.gt_tracks[200_000_000]["visible"].tolist() == [True, True, False]
    perfect, shifted = Predictions(), Predictions()
    for f in frames:  # the method's own ids (100, 101, 102) differ from the annotation ids
        ids = np.array([100, 101, 102])
        perfect.tracks[f.stamp_ns] = {"ids": ids, "uv": f.gt_tracks["uv"], "visible": f.gt_tracks["visible"]}
        uv = f.gt_tracks["uv"] + (0 if f.stamp_ns == 0 else np.array([3.0 * 64 / 256, 0]))
        shifted.tracks[f.stamp_ns] = {"ids": ids, "uv": uv, "visible": f.gt_tracks["visible"]}
    m = score_tracks(data, perfect)
    assert m["aj"] == 1.0 and m["oa"] == 1.0 and m["gt_source"] == "/gt/tracks" and m["points"] == 3
    assert score_tracks(data, shifted)["delta_avg"] == pytest.approx(0.6)


def test_frames_without_a_track_annotation_are_left_out_not_scored_occluded(tmp_path):
    """A team's labelled bag annotates every other frame. Those without a /gt/tracks message were scored as
    'ground truth occluded' (a perfect tracker read AJ 0.44) while report.md said they were left out."""
    from fourds_ros.evaluation.predictions import Predictions
    from fourds_ros.evaluation.report import score_tracks

    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    frames, perfect = [], Predictions()
    for i in range(10):
        uv = np.array([[10.0 + 2 * i, 20.0], [40.0, 10.0 + i]])
        annotation = {"ids": np.array([7, 8]), "uv": uv, "visible": np.ones(2, bool)} if i % 2 == 0 else None
        frames.append(Frame(stamp_ns=i * 40_000_000, K=K, image=np.zeros((48, 64, 3), np.uint8), gt_tracks=annotation))
        perfect.tracks[i * 40_000_000] = {"ids": np.array([100, 101]), "uv": uv, "visible": np.ones(2, bool)}
    write_bag(frames, tmp_path / "sparse", storage="sqlite3")
    m = score_tracks(read_bag(tmp_path / "sparse"), perfect)
    assert m["aj"] == 1.0 and m["oa"] == 1.0
    assert m["frames"] == 5 and m["frames_without_gt"] == 5 and m["frames_unknown"] == 2 * 5


def test_geometric_track_ground_truth_leaves_depth_holes_out_of_the_score(tmp_path):
    """Track GT from /gt/depth + /gt/pose (a static wall, the camera sliding): where the depth camera
    saw nothing under a point, the score leaves that frame out for the method (and so for its peers,
    which score_tracks scores the same way) and says how many it left out."""
    from fourds_ros.evaluation.metrics import geometric_tracks
    from fourds_ros.evaluation.predictions import Predictions
    from fourds_ros.evaluation.report import score_tracks

    K = np.array([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]])
    frames = []
    for i in range(4):
        depth = np.full((48, 64), 2.0, np.float32)
        if i == 2:
            depth[:, 30:40] = np.nan  # the depth camera saw nothing there in frame 2
        pose = np.eye(4)
        pose[0, 3] = -0.02 * i  # 1 px right a frame at 2 m
        frames.append(Frame(stamp_ns=i * 33_000_000, K=K, image=np.zeros((48, 64, 3), np.uint8), gt_depth=depth,
                            gt_pose=pose))
    write_bag(frames, tmp_path / "wall", storage="sqlite3")
    data = read_bag(tmp_path / "wall")
    query = np.array([[32.0, 24.0], [10.0, 10.0]])
    gt = geometric_tracks(query, np.zeros(2, int), [f.gt_depth for f in frames], [f.gt_pose for f in frames], K)
    follows = Predictions()  # follows both points exactly and calls them visible throughout
    for f, xy in zip(frames, gt["xy"].transpose(1, 0, 2)):
        follows.tracks[f.stamp_ns] = {"ids": np.array([5, 6]), "uv": xy, "visible": np.array([True, True])}
    m = score_tracks(data, follows)
    assert m["gt_source"] == "geometric (depth + pose)" and m["points"] == 2
    assert m["frames_unknown"] == 1 and m["evaluated"] == 5
    assert m["aj"] == 1.0 and m["oa"] == 1.0


def test_the_pose_of_the_model_and_of_orb_vo_are_scored_on_the_same_frames(tmp_path):
    """The node may shed frames: the model's ATE over the first half of a drifting path, against
    ORB VO's over all of it, passed the 0.9x target with the very same estimate (0.71x on TUM fr1/rpy)."""
    from fourds_ros.evaluation.predictions import Predictions
    from fourds_ros.evaluation.report import build_report

    K = np.array([[50.0, 0, 16], [0, 50, 12], [0, 0, 1]])
    frames, estimate = [], {}
    for i in range(40):
        truth, drifted = np.eye(4), np.eye(4)
        a = 0.02 * i  # turning as it goes
        truth[:2, :2] = drifted[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
        truth[:3, 3] = [0.02 * i, 0.01 * np.sin(i / 5), 0]
        drifted[:3, 3] = truth[:3, 3] + [0, 0.0005 * i * i / 40, 0.0003 * i]  # the error grows along the path
        frames.append(Frame(stamp_ns=i * 33_000_000, K=K, image=np.zeros((24, 32, 3), np.uint8), gt_pose=truth))
        estimate[i * 33_000_000] = drifted
    write_bag(frames, tmp_path / "path", storage="sqlite3")
    data = read_bag(tmp_path / "path")
    model, orb = Predictions(name="fourds"), Predictions(name="orb_vo")
    orb.poses = dict(estimate)
    model.poses = {s: p for s, p in estimate.items() if s < 20 * 33_000_000}  # shed the second half
    report = build_report(data, model, {"orb_vo": orb})
    ours, theirs = report["pose"], report["peers"]["orb_vo"]["pose"]
    assert ours["frames"] == theirs["frames"] == 20
    assert ours["ate_rmse"] == pytest.approx(theirs["ate_rmse"])
    from fourds_ros.evaluation.pose_starts import pose_over_starts

    starts = pose_over_starts(data, None, "torch", None, 1, model, orb)  # start 0 only: no re-run
    assert starts["fourds"]["ate"] == pytest.approx(starts["orb_vo"]["ate"])


def test_the_tracks_of_the_model_and_of_lk_are_scored_on_the_same_frames(tmp_path):
    """`eval --rate bag` where the node shed frames: LK answered every frame, the model not, and the
    AJ ratio's interval raised ('not scored on the same queries'), so no report was written. Both
    are now scored on the frames both answered, and the ratio is paired point by point."""
    from fourds_ros.evaluation.predictions import Predictions
    from fourds_ros.evaluation.report import build_report, markdown

    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    rng = np.random.default_rng(7)
    start = rng.uniform(8, 40, (12, 2))
    frames = []
    for i in range(10):
        uv = start + [1.5 * i, 0.5 * i]
        frames.append(Frame(stamp_ns=i * 33_000_000, K=K, image=np.zeros((48, 64, 3), np.uint8),
                            gt_tracks={"ids": np.arange(12), "uv": uv, "visible": np.ones(12, bool)}))
    write_bag(frames, tmp_path / "syn", storage="sqlite3")
    data = read_bag(tmp_path / "syn")
    model, lk = Predictions(name="fourds"), Predictions(name="lk")
    for i, f in enumerate(frames):
        rows = slice(0, 12 if i >= 5 else 6)  # half the points seeded on frame 0, half on frame 5
        noise = rng.normal(0, 1.0, (12, 2)) if i not in (0, 5) else 0.0  # the query frames exact, as a query is
        track = {"ids": np.arange(100, 112)[rows], "uv": (f.gt_tracks["uv"] + noise)[rows],
                 "visible": np.ones(12, bool)[rows]}
        lk.tracks[f.stamp_ns] = track
        if i not in (3, 6):  # the node shed frames 3 and 6
            model.tracks[f.stamp_ns] = track
    report = build_report(data, model, {"lk": lk})
    ours, theirs = report["tracks"], report["peers"]["lk"]["tracks"]
    # the frames both answered after each query: 7 (frames 1-9 but 3 and 6) and 3 (frames 7-9)
    assert ours["evaluated"] == theirs["evaluated"] == 6 * 7 + 6 * 3
    assert ours["aj"] == pytest.approx(theirs["aj"])  # the same outputs on the same frames
    assert report["uncertainty"]["tracks"]["ratio"] == pytest.approx(1.0) and report["uncertainty"]["tracks"]["n"] == 12
    assert "AJ / LK 1.000" in markdown(report)


# --- Issue #20: bag tools fail cleanly (no traceback, no partial output).

SAMPLE_FRAMES = REPO / "samples" / "hololens_000" / "images"


def png_declaring(width: int, height: int) -> bytes:
    """A small, well-formed PNG container whose IHDR declares width x height (a decompression bomb)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 + 3 * width) * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(60000, 60000), (20000, 20000)])
def test_png_bomb_in_bag_convert_is_a_clear_error_and_leaves_no_bag(tmp_path, size, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for path in sorted(SAMPLE_FRAMES.glob("*.jpg"))[:3]:
        shutil.copy(path, folder / path.name)
    (folder / "zz_bomb.png").write_bytes(png_declaring(*size))  # sorted last: 3 frames already written
    out = tmp_path / "bag"
    assert cli(["bag", "convert", "--format", "frames", str(folder), str(out), "--fps", "10",
                "--intrinsics", "500", "500", "270", "180"]) == 1
    err = capsys.readouterr().err
    assert "too_large" in err and f"{size[0]}x{size[1]}" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no bag, no staging folder
    (folder / "zz_bomb.png").unlink()  # the same command without the bomb works
    assert cli(["bag", "convert", "--format", "frames", str(folder), str(out), "--fps", "10"]) == 0
    assert read_bag(out).stamps == [0, 100_000_000, 200_000_000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag", "frames"]


def test_interrupted_write_leaves_no_bag(tmp_path):
    def frames():
        rgb = cv2.cvtColor(cv2.imread(str(sorted(SAMPLE_FRAMES.glob("*.jpg"))[0])), cv2.COLOR_BGR2RGB)
        yield Frame(stamp_ns=0, K=np.eye(3), image=rgb)
        raise KeyboardInterrupt  # Ctrl-C mid-conversion
    with pytest.raises(KeyboardInterrupt):
        write_bag(frames(), tmp_path / "bag")
    assert list(tmp_path.iterdir()) == []


def write_camera_bag(out, encoding: str, images: list[bytes], height: int, width: int, step: int) -> None:
    """A bag as a camera driver records it: Image messages in `encoding`, plus camera_info."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from fourds_ros.evaluation.bag import _header, camera_info_msg, typestore

    ts = typestore()
    k = np.array([[500.0, 0, width / 2 - 0.5], [0, 500.0, height / 2 - 0.5], [0, 0, 1]])
    with Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        image_conn = writer.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        info_conn = writer.add_connection(CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=ts)
        for i, data in enumerate(images):
            stamp = i * 100_000_000
            msg = ts.types["sensor_msgs/msg/Image"](
                header=_header(ts, stamp, "camera"), height=height, width=width, encoding=encoding,
                is_bigendian=0, step=step, data=np.frombuffer(data, np.uint8))
            writer.write(image_conn, stamp, ts.serialize_cdr(msg, "sensor_msgs/msg/Image"))
            info = camera_info_msg(ts, stamp, "camera", k, width, height)
            writer.write(info_conn, stamp, ts.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))


@pytest.fixture(scope="module")
def grey_frames():
    """8 real HoloLens frames, grey, downsized to 96x144 so the offline eval stays quick."""
    paths = sorted(SAMPLE_FRAMES.glob("*.jpg"))[:8]
    return [cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (144, 96), interpolation=cv2.INTER_AREA)
            for p in paths]


def test_mono16_bag_reads_as_grey_rgb(tmp_path, grey_frames):
    """mono16 camera images were read as depth (float metres) and crashed eval --offline."""
    write_camera_bag(tmp_path / "bag", "mono16", [(g.astype("<u2") * 257).tobytes() for g in grey_frames],
                     96, 144, 288)
    data = read_bag(tmp_path / "bag")
    image = data.images[data.stamps[2]]
    assert image.dtype == np.uint8 and image.shape == (96, 144, 3)
    assert np.array_equal(image[..., 0], grey_frames[2]) and np.array_equal(image[..., 2], grey_frames[2])


def test_mono16_bag_evaluates_offline(tmp_path, grey_frames, tiny_model_dir, capsys):
    bag = tmp_path / "bag"
    write_camera_bag(bag, "mono16", [(g.astype("<u2") * 257).tobytes() for g in grey_frames], 96, 144, 288)
    assert cli(["eval", str(bag), "--model", str(tiny_model_dir), "--out", str(tmp_path / "report"), "--offline"]) == 0
    assert (tmp_path / "report" / "report.json").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_eval_offline_reads_16_bit_images_by_the_runs_image_16bit_max(tmp_path, grey_frames, tiny_model_dir,
                                                                     monkeypatch):
    """A 12-bit camera's mono16 (values to 4095): `--param image_16bit_max=4095` scaled the node's images over
    DDS, while offline read the bag at 65535, 16x too dark."""
    from fourds_ros.evaluation import bag as bag_module

    bag = tmp_path / "bag"
    write_camera_bag(bag, "mono16", [(g.astype("<u2") * 16).tobytes() for g in grey_frames], 96, 144, 288)
    assert read_bag(bag, sixteen_bit_max=4095).images[0].max() > 200 > 16 >= read_bag(bag).images[0].max()
    seen = []

    def reading(*args, **kwargs):
        data = read_bag(*args, **kwargs)
        seen.append(max(float(image.max()) for image in data.images.values()))
        return data

    monkeypatch.setattr(bag_module, "read_bag", reading)  # eval reads through read_scored_bag
    for value in (65535, 4095):
        assert cli(["eval", str(bag), "--model", str(tiny_model_dir), "--out", str(tmp_path / f"report_{value}"),
                    "--offline", "--param", f"image_16bit_max={value}"]) == 0
    assert seen[0] <= 16 and seen[1] > 200, seen


def test_unreadable_camera_encoding_is_a_clear_eval_error(tmp_path, grey_frames, tiny_model_dir, capsys):
    bag = tmp_path / "bag"
    depthlike = [g.astype("<f4").tobytes() for g in grey_frames]
    write_camera_bag(bag, "32FC1", depthlike, 96, 144, 576)  # a depth stream recorded as the camera
    with pytest.raises(BagError, match="'32FC1'"):
        read_bag(bag)
    assert cli(["eval", str(bag), "--model", str(tiny_model_dir), "--out", str(tmp_path / "report"), "--offline"]) == 1
    err = capsys.readouterr().err
    assert "32FC1" in err and "unsupported image encoding" in err and "Traceback" not in err


def test_one_file_of_a_split_bag_reads_the_whole_recording(tmp_path):
    """A split rosbag2 folder (`ros2 bag record --max-bag-size`): two .mcap files under one metadata.yaml.
    Given its first file, every frame of both is read, as for a .db3 (the .mcap was read alone: half the
    frames, without a word); an .mcap the metadata does not list is still read alone."""
    import yaml

    k = np.array([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]])
    parts = [[Frame(stamp_ns=(6 * p + i) * 50_000_000, K=k, image=np.full((48, 64, 3), 6 * p + i, np.uint8))
              for i in range(6)] for p in range(2)]
    split = tmp_path / "split"
    split.mkdir()
    files, info = [], None
    for p, frames in enumerate(parts):
        write_bag(frames, tmp_path / f"part{p}")
        meta = yaml.safe_load((tmp_path / f"part{p}" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        shutil.copy(tmp_path / f"part{p}" / f"part{p}.mcap", split / f"split_{p}.mcap")
        meta["files"][0]["path"] = f"split_{p}.mcap"
        files.append(meta["files"][0])
        info = info or meta
    info.update(relative_file_paths=[f["path"] for f in files], files=files,
                message_count=sum(f["message_count"] for f in files))
    for topic in info["topics_with_message_count"]:
        topic["message_count"] = 12
    (split / "metadata.yaml").write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False))
    assert len(read_bag(split).stamps) == 12
    assert len(read_bag(split / "split_0.mcap").stamps) == 12
    assert len(read_bag(tmp_path / "part1" / "part1.mcap").stamps) == 6
    shutil.copy(split / "split_1.mcap", tmp_path / "alone.mcap")
    assert len(read_bag(tmp_path / "alone.mcap").stamps) == 6
    (split / "split_1.mcap").unlink()  # only the first part copied: the folder does not open, the file is read alone
    assert len(read_bag(split / "split_0.mcap").stamps) == 6


def test_bag_convert_refuses_a_bad_k_or_rate_and_leaves_no_empty_bag(tmp_path, capsys):
    """`bag convert --intrinsics 0 0 0 0` (or NaN) wrote the K, which eval --offline met as a singular matrix
    (bag import already refused it); `--fps 0` was a ZeroDivisionError; `--start` past the end left an empty bag
    that the rerun called "already exists"."""
    src = require(HOLO) / "images"
    for k in (["0", "0", "0", "0"], ["500", "nan", "270", "180"]):
        assert cli(["bag", "convert", "--format", "frames", str(src), str(tmp_path / "k"), "--intrinsics", *k]) == 1
        assert "--intrinsics needs positive, finite focal lengths" in capsys.readouterr().err
        assert not (tmp_path / "k").exists()
    with pytest.raises(SystemExit) as exc:
        cli(["bag", "convert", "--format", "frames", str(src), str(tmp_path / "f"), "--fps", "0"])
    assert exc.value.code == 2 and "not a finite number above 0" in capsys.readouterr().err
    assert cli(["bag", "convert", "--format", "frames", str(src), str(tmp_path / "s"), "--fps", "10",
                "--start", "1000"]) == 1
    assert "no frames to write" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_a_tum_pose_that_is_not_a_rotation_is_refused(tmp_path):
    """transforms3d reads a zero quaternion as no rotation: the frame's ground truth became the identity
    rotation, and `bag convert` wrote it without a word."""
    from fourds_ros.rgbd import DatasetFormatError, tum_frames

    tum = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    for name in ("rgb.txt", "depth.txt"):
        shutil.copy(tum / name, tmp_path / name)
    rows = (tum / "groundtruth.txt").read_text().splitlines()
    assert len(tum_frames(tum)) == 80
    for broken in ("0 0 0 0", "0.5 0.5 0.5 nan"):  # every row: whichever the first frame is paired with
        edited = [row if row.startswith("#") else " ".join(row.split()[:4]) + " " + broken for row in rows]
        (tmp_path / "groundtruth.txt").write_text("\n".join(edited) + "\n")
        with pytest.raises(DatasetFormatError, match="groundtruth.txt at .* is not a pose"):
            tum_frames(tmp_path)
