"""`fourds-ros eval` on a team's own recording: the DDS path scores the camera with the node's own
mount, a recording whose depth or pose misses frames keeps its tracks score on the rest, and the
evaluation commands refuse a mistyped model, report directory or rate in one line, before any work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fourds_ros.evaluation.bag import Frame, read_bag, write_bag

from .conftest import REPO

# A camera mounted 0.3 m ahead and 0.4 m above the base, pitched down (as the reviewer's team bag):
# [x, y, z, qx, qy, qz, qw], the node's base_from_camera parameter.
MOUNT = [0.3, 0.0, 0.4, -0.579228, 0.579228, -0.405580, 0.405580]


def test_dds_eval_turns_the_nodes_pose_back_into_the_camera_with_the_nodes_own_mount(tmp_path, monkeypatch):
    """/pose is the base's pose, made with --param base_from_camera; run_dds turned it back into a
    camera pose with the default mount, so a team's mounted camera was scored (over DDS only) on a
    frame that is neither the base nor the camera. The node and the replay are stood in for: what
    matters is what run_dds makes of the /pose messages the node sent."""
    from fourds_ros.evaluation import replay
    from fourds_ros.evaluation.bag import BagData, _header, pose_to_msg_fields, typestore
    from fourds_ros.perception.odometry import transform_from_xyz_quat

    ts, mount = typestore(), transform_from_xyz_quat(MOUNT)
    stamps = [1_000_000_000 + i * 33_333_333 for i in range(3)]
    odom_from_camera = {}
    for i, s in enumerate(stamps):
        pose = transform_from_xyz_quat([0.1 * i, 0.02 * i, 0.0, 0.0, 0.0, np.sin(0.05 * i), np.cos(0.05 * i)])
        odom_from_camera[s] = mount @ pose  # the odom frame is the base at the first frame

    def node_run(bag_path, out_mcap, timing_json, *args, **kwargs) -> dict:
        T, received = ts.types, []
        for s in stamps:  # what the node publishes: odom_from_base = odom_from_camera @ camera_from_base
            position, q = pose_to_msg_fields(ts, odom_from_camera[s] @ np.linalg.inv(mount))
            msg = T["geometry_msgs/msg/PoseStamped"](header=_header(ts, s, "odom"), pose=T["geometry_msgs/msg/Pose"](
                position=T["geometry_msgs/msg/Point"](x=position[0], y=position[1], z=position[2]), orientation=q))
            received.append(("/pose", s, bytes(ts.serialize_cdr(msg, "geometry_msgs/msg/PoseStamped"))))
        replay.write_recording(received, out_mcap, ts)
        return {"published_ns": {str(s): s for s in stamps}, "arrival_ns": {str(s): s + 1 for s in stamps},
                "frames_published": len(stamps), "wall_s": 0.1}

    class Node:
        def __init__(self, *args):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def check_alive(self):
            pass

    monkeypatch.setattr(replay, "NodeProcess", Node)
    monkeypatch.setattr(replay, "replay_subprocess", node_run)
    monkeypatch.setattr(replay, "clip_geometry", lambda model_dir, hop: (4, 3))
    monkeypatch.setattr(replay, "node_command", lambda *args, **kwargs: ["node"])
    bag = BagData(tmp_path / "bag", stamps=stamps)
    preds = replay.run_dds(bag, tmp_path / "bag", tmp_path / "model", tmp_path / "outputs.mcap",
                           params={"base_from_camera": MOUNT})
    assert sorted(preds.poses) == stamps
    for s in stamps:
        np.testing.assert_allclose(preds.poses[s], odom_from_camera[s], atol=1e-6)


def _wall_recording(tmp_path: Path, without_depth: int, without_pose: int):
    """6 frames of a static wall 2 m ahead, the camera sliding 1 px a frame; one frame without
    depth and one without pose (a dropped message, or a slower depth camera), as bag import keeps them."""
    K = np.array([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]])
    frames = []
    for i in range(6):
        pose = np.eye(4)
        pose[0, 3] = -0.02 * i
        frames.append(Frame(stamp_ns=i * 33_000_000, K=K, image=np.zeros((48, 64, 3), np.uint8),
                            gt_depth=None if i == without_depth else np.full((48, 64), 2.0, np.float32),
                            gt_pose=None if i == without_pose else pose))
    write_bag(frames, tmp_path / "wall", storage="sqlite3")
    return read_bag(tmp_path / "wall")


def test_track_ground_truth_leaves_out_the_frames_without_depth_or_pose_not_the_recording(tmp_path):
    """One depth image or pose missing removed the tracks score of the model and of LK for the whole
    recording ('needs /gt/depth and /gt/pose at every frame'), while bag import keeps such frames for
    the scorer to skip. They are now unknown, as a depth hole is, and report.md says how many frames
    each part was scored on."""
    from fourds_ros.evaluation.predictions import Predictions
    from fourds_ros.evaluation.report import build_report, markdown

    data = _wall_recording(tmp_path, without_depth=3, without_pose=4)
    assert len(data.gt_depth) == len(data.gt_pose) == 5
    model, lk = Predictions(name="fourds"), Predictions(name="lk")
    for i, s in enumerate(data.stamps):  # both follow two wall points exactly and call them visible
        track = {"ids": np.array([5, 6]), "uv": np.array([[20.0 + i, 24.0], [40.0 + i, 10.0]]),
                 "visible": np.array([True, True])}
        model.tracks[s] = lk.tracks[s] = track
    report = build_report(data, model, {"lk": lk})
    for tracks in (report["tracks"], report["peers"]["lk"]["tracks"]):
        assert "error" not in tracks, tracks.get("error")
        assert tracks["aj"] == 1.0 and tracks["oa"] == 1.0
        assert tracks["frames"] == 4 and tracks["frames_without_gt"] == 2
        # the two points after their query frame: frames 1, 2 and 5 scored, 3 (no depth) and 4 (no pose) not
        assert tracks["evaluated"] == 2 * 3 and tracks["frames_unknown"] == 2 * 2
    assert not [u for u in report["unscored"] if "tracks" in u]
    assert "Frames scored (of 6): " in markdown(report) and "tracks 4" in markdown(report)


def test_geometric_tracks_without_a_frames_depth_or_pose_call_it_unknown():
    """The ground truth itself: a frame without a depth image leaves a point in view unknown (as a
    depth hole) and one out of view occluded; a frame without a pose leaves every point unknown; a
    query on a frame without depth has no ground truth."""
    from fourds_ros.evaluation.metrics import geometric_tracks

    K = np.array([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]])
    wall = np.full((48, 64), 2.0, np.float32)
    away = np.eye(4)
    away[0, 3] = 3.0  # 3 m to the side: the wall point is out of view
    gt = geometric_tracks(np.array([[32.0, 24.0], [10.0, 10.0]]), np.array([0, 1]), [wall, None, None, wall],
                          [np.eye(4), np.eye(4), away, None], K)
    assert gt["valid"].tolist() == [True, False]
    assert gt["unknown"][0].tolist() == [False, True, False, True]
    assert gt["occluded"][0].tolist() == [False, True, True, True]


def test_eval_suite_refuses_a_mistyped_model_in_one_line_before_converting(tmp_path, capsys):
    """A CheckpointError traceback came after the first recording had been converted."""
    from fourds_ros.evaluation import suite

    (tmp_path / "data").mkdir()
    for folder in ("holo_a", "holo_b"):  # a folder belongs to one scene: two names for the shipped sample
        (tmp_path / "data" / folder).symlink_to(REPO / "samples" / "hololens_000")
    split = tmp_path / "split.yaml"
    split.write_text("recordings:\n"
                     "  - {name: a, format: hololens, path: holo_a, scene: lab}\n"
                     "  - {name: b, format: hololens, path: holo_b, scene: office}\n"
                     "folds: [{name: f, train: [office], validation: [lab]}]\n")
    rc = suite.main(["--split", str(split), "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                     "--offline", "--model", str(tmp_path / "no_such_model"), "--max-frames", "4"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if not line.startswith("INFO")] == [
        f"fourds-ros eval-suite: {tmp_path / 'no_such_model'}: no config.json (expected a fourds_ros model dir)"]
    assert not (tmp_path / "out" / "bags").exists()


def test_eval_out_naming_a_file_is_refused_in_one_line(tmp_path, tiny_model_dir, capsys):
    from fourds_ros.evaluation import eval_cli

    write_bag([Frame(stamp_ns=i * 50_000_000, K=np.array([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]]),
                     image=np.zeros((48, 64, 3), np.uint8)) for i in range(4)], tmp_path / "bag")
    (tmp_path / "afile").write_text("")
    rc = eval_cli.main([str(tmp_path / "bag"), "--model", str(tiny_model_dir), "--offline",
                        "--out", str(tmp_path / "afile")])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"fourds-ros eval: the report directory {tmp_path / 'afile'} cannot be "
                                            "made: File exists")


@pytest.mark.parametrize("rate", ["fsat", "0", "-5", "nan", "inf"])
def test_eval_refuses_a_bad_rate_before_the_node_starts(rate, tmp_path, monkeypatch, capsys):
    """--rate was parsed only in the replay child, after the node had started and loaded the model:
    a typo was a child's traceback, and 0 divided by zero."""
    from fourds_ros.evaluation import eval_cli

    def started(*args, **kwargs):
        raise AssertionError("the evaluation started with --rate " + rate)

    monkeypatch.setattr(eval_cli, "evaluate", started)
    with pytest.raises(SystemExit) as refused:
        eval_cli.main(["BAG", "--out", str(tmp_path / "out"), "--rate", rate])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"fourds-ros eval: error: argument --rate: {rate!r} is not 'max', "
                                            "'bag' or a rate in Hz above 0")


@pytest.mark.parametrize("rate", ["max", "bag", "12.5"])
def test_eval_takes_the_rates_the_replay_plays(rate, tmp_path, monkeypatch):
    from fourds_ros.evaluation import eval_cli
    from fourds_ros.evaluation.bag import BagError

    seen = []

    def evaluate(*args, **kwargs):  # stands in for the run: only the rate it is given matters
        seen.append(args[6])
        raise BagError("stand-in")

    monkeypatch.setattr(eval_cli, "evaluate", evaluate)
    assert eval_cli.main(["BAG", "--out", str(tmp_path / "out"), "--rate", rate]) == 1
    assert seen == [rate]


def _team_split(tmp_path: Path, bag_format: bool = True) -> Path:
    """A team's two recordings under tmp_path/ws: as rosbag2 folders in ws/bags/<name> (format: bag), or the
    shipped HoloLens sample twice (format: hololens)."""
    ws = tmp_path / "ws"
    lines = []
    for name, scene in (("site_a", "lab"), ("site_b", "office")):
        if bag_format:
            write_bag([Frame(stamp_ns=i * 50_000_000, K=np.array([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]]),
                             image=np.zeros((48, 64, 3), np.uint8)) for i in range(4)], ws / "bags" / name)
            lines.append(f"  - {{name: {name}, format: bag, path: bags/{name}, scene: {scene}}}\n")
        else:
            ws.mkdir(exist_ok=True)  # a folder belongs to one scene: a name for the shipped sample per recording
            (ws / f"holo_{name}").symlink_to(REPO / "samples" / "hololens_000")
            lines.append(f"  - {{name: {name}, format: hololens, path: holo_{name}, scene: {scene}}}\n")
    (tmp_path / "split.yaml").write_text("recordings:\n" + "".join(lines)
                                         + "folds: [{name: f, train: [office], validation: [lab]}]\n")
    return ws


def test_eval_suite_refuses_an_out_whose_bags_folder_is_the_recordings_own(tmp_path, tiny_model_dir, capsys):
    """A team's bags in ws/bags/<name>, the suite run with --data-root ws --out ws: OUT/bags/<name> is the
    recording, which the first row deleted (a converted bag there is replaced). Refused before any work."""
    from fourds_ros.evaluation import suite

    ws = _team_split(tmp_path)
    before = sorted(p.name for p in (ws / "bags" / "site_a").iterdir())
    rc = suite.main(["--split", str(tmp_path / "split.yaml"), "--data-root", str(ws), "--out", str(ws), "--offline",
                     "--model", str(tiny_model_dir)])
    err = capsys.readouterr().err
    assert rc == 1 and "would replace or lie in the recording itself" in err and "Traceback" not in err, err
    assert sorted(p.name for p in (ws / "bags" / "site_a").iterdir()) == before and (ws / "bags" / "site_b").exists()
    # site_b trains (fold f): with --validation-only it is never converted, so only site_a's folder matters
    (tmp_path / "split.yaml").write_text((tmp_path / "split.yaml").read_text().replace("path: bags/site_a",
                                                                                     "path: bags/site_a_src"))
    (ws / "bags" / "site_a").rename(ws / "bags" / "site_a_src")
    assert suite.main(["--split", str(tmp_path / "split.yaml"), "--data-root", str(ws), "--out", str(ws),
                       "--offline", "--model", str(tiny_model_dir), "--validation-only"]) == 0
    assert (ws / "bags" / "site_b").exists() and (ws / "bags" / "site_a_src").exists()


@pytest.mark.parametrize("options, message", [
    (["--pose-starts", "3"], "needs the offline path (--offline)"),
    (["--param", "metric_scale_source=reference_depth"], "the replay publishes no reference"),
    (["--offline", "--param", "hop=9"], "a hop is 1..4"),
])
def test_eval_suite_refuses_options_that_cannot_run_before_converting(tmp_path, tiny_model_dir, capsys, options,
                                                                      message):
    """--pose-starts or a reference scale without --offline was found at the first validation row, after the
    DDS replays before it, with no suite written; a hop past the model's clip length was a traceback."""
    from fourds_ros.evaluation import suite

    ws = _team_split(tmp_path, bag_format=False)
    rc = suite.main(["--split", str(tmp_path / "split.yaml"), "--data-root", str(ws), "--out", str(tmp_path / "out"),
                     "--model", str(tiny_model_dir), "--max-frames", "4", *options])
    err = capsys.readouterr().err
    assert rc == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "out" / "bags").exists()


def test_eval_suite_runs_the_hop_its_param_gives(tmp_path, tiny_model_dir, monkeypatch):
    """--param hop=H is the run's hop: evaluate's own hop flag (0) overrode it (PerceptionSettings.from_params
    with hop=0), so the suite ran the default hop while its params said H."""
    import fourds_ros.perception as perception
    from fourds_ros.evaluation import suite

    hops = []

    class Recorded(perception.PerceptionPipeline):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            hops.append(self.hop)

    monkeypatch.setattr(perception, "PerceptionPipeline", Recorded)
    ws = _team_split(tmp_path, bag_format=False)
    assert suite.main(["--split", str(tmp_path / "split.yaml"), "--data-root", str(ws), "--out", str(tmp_path / "out"),
                       "--offline", "--model", str(tiny_model_dir), "--max-frames", "8", "--validation-only",
                       "--param", "hop=2"]) == 0
    report = json.loads((tmp_path / "out" / "site_a" / "report.json").read_text())
    assert report["meta"]["hop"] == 2 and report["meta"]["params"]["hop"] == 2
    assert hops == [2], hops  # the default for the 4-frame test model is 3


def test_eval_refuses_a_hop_the_models_clips_cannot_take_in_one_line(tmp_path, tiny_model_dir, capsys):
    from fourds_ros.evaluation import eval_cli

    write_bag([Frame(stamp_ns=i * 50_000_000, K=np.array([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]]),
                     image=np.zeros((48, 64, 3), np.uint8)) for i in range(4)], tmp_path / "bag")
    rc = eval_cli.main([str(tmp_path / "bag"), "--model", str(tiny_model_dir), "--offline", "--hop", "9",
                        "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert rc == 1 and "hop 9: the model's clips are 4 frames" in err and "Traceback" not in err, err


@pytest.mark.parametrize("max_frames", [None, 3])
def test_eval_refuses_a_recording_shorter_than_a_clip_in_one_line(tmp_path, tiny_model_dir, capsys, max_frames):
    """A recording of fewer frames than the model's clip is too short to score (the node describes it with one
    padded clip, ClipBuffer.flush). It read exit 0 with the peers scored, no model output and dropped 0."""
    from fourds_ros.evaluation import eval_cli

    write_bag([Frame(stamp_ns=i * 50_000_000, K=np.array([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]]),
                     image=np.zeros((48, 64, 3), np.uint8)) for i in range(3 if max_frames is None else 6)],
              tmp_path / "bag")
    rc = eval_cli.main([str(tmp_path / "bag"), "--model", str(tiny_model_dir), "--offline", "--out",
                        str(tmp_path / "rep"), *(["--max-frames", str(max_frames)] if max_frames else [])])
    err = capsys.readouterr().err
    assert rc == 1 and "3 frames" in err and "fewer than one clip of the model (4 frames): too short" in err, err
    assert not (tmp_path / "rep" / "report.json").exists()


def test_eval_again_into_its_out_leaves_nothing_of_the_earlier_run(tmp_path, tiny_model_dir):
    """A second eval into the same --out left the first run's plots, trajectories/ and DDS recording beside a
    report that does not make them (an images-only bag here): evo_ape on trajectories/ scored the first run.
    The files an eval writes are removed first; anything else in the folder stays."""
    from fourds_ros.evaluation import eval_cli

    out = tmp_path / "report"
    out.mkdir()
    earlier = ["depth.png", "trajectory.png", "outputs.mcap", "node.log", "replay_timing.json", "report.md"]
    for name in earlier:
        (out / name).write_text("earlier run")
    (out / "trajectories").mkdir()
    (out / "trajectories" / "fourds.tum").write_text("earlier run")
    (out / "trajectories" / "aligned_by_hand.tum").write_text("the team's own")
    (out / "notes.txt").write_text("the team's own")
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    # a run refused by its checks (a mistyped bag) leaves the earlier run as it was
    assert eval_cli.main([str(tmp_path / "no_such_bag"), "--model", str(tiny_model_dir), "--offline",
                          "--out", str(out)]) == 1
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    write_bag([Frame(stamp_ns=i * 50_000_000, K=np.array([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]]),
                     image=np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8)) for i in range(6)],
              tmp_path / "frames")
    # and so does one the offline path refuses (a metric reference this bag lacks)
    assert eval_cli.main([str(tmp_path / "frames"), "--model", str(tiny_model_dir), "--offline", "--out", str(out),
                          "--param", "metric_scale_source=reference_depth"]) == 1
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert eval_cli.main([str(tmp_path / "frames"), "--model", str(tiny_model_dir), "--offline", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    left = sorted(p.name for p in out.iterdir())
    assert left == sorted({"report.json", "report.md", "notes.txt", "trajectories", *report["plots"]}), left
    assert [p.name for p in (out / "trajectories").iterdir()] == ["aligned_by_hand.tum"]
    assert "earlier run" not in (out / "report.md").read_text()


def test_eval_suite_out_naming_a_file_is_one_line_and_a_rerun_drops_the_old_summary(tmp_path, tiny_model_dir,
                                                                                   capsys):
    """eval-suite --out FILE gave a NotADirectoryError traceback; a rerun stopped before its end left the earlier
    suite.json / suite.md looking whole beside reports of the new run. Both summaries go at the start."""
    from fourds_ros.evaluation import suite

    ws = _team_split(tmp_path)
    (tmp_path / "afile").write_text("")
    common = ["--split", str(tmp_path / "split.yaml"), "--data-root", str(ws), "--offline", "--model",
              str(tiny_model_dir)]
    assert suite.main(common + ["--out", str(tmp_path / "afile")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("fourds-ros eval-suite: ")
    out = tmp_path / "out"
    out.mkdir()
    for summary in ("suite.json", "suite.md"):
        (out / summary).write_text("an earlier suite")
    (ws / "bags" / "site_a" / "metadata.yaml").unlink()  # the first row fails: the run ends there
    assert suite.main(common + ["--out", str(out)]) == 1
    assert "site_a" in capsys.readouterr().err
    assert not (out / "suite.json").exists() and not (out / "suite.md").exists()


def test_an_interrupted_eval_stops_its_replay(tmp_path, monkeypatch):
    """Ctrl-C to `fourds-ros eval` alone (a supervisor's SIGINT) left its replay child, a DDS participant, running
    for up to its ready timeout; it then wrote a recording after eval had exited. Now the child is stopped
    (SIGINT, as the node is) on any exception while eval waits for it."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    from fourds_ros.evaluation import replay

    children = []
    real_popen = subprocess.Popen

    def popen(cmd, **kwargs):  # the replay's place taken by a child that would wait a minute
        children.append(real_popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs))
        return children[-1]

    monkeypatch.setattr(replay.subprocess, "Popen", popen)
    # Ctrl-C while eval waits for the replay: to this process alone, not to its group
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        replay.replay_subprocess(tmp_path / "bag", tmp_path / "outputs.mcap", tmp_path / "timing.json", env={},
                                 rate="max", clip_length=8, hop=7, timeout_s=60)
    assert children and children[0].poll() is not None
