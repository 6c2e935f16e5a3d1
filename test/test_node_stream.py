"""The perception node on real DDS: a probe process streams synthetic and 7-Scenes frames with
camera_info; depth, tracks, odometry, TF and diagnostics must arrive well-formed and stamped."""

import numpy as np

from fourds_ros.rgbd import seven_scenes_rgb_intrinsics
from fourds_ros.ros.harness import run_node

from .conftest import SHARED_DATA, require

SCENES = SHARED_DATA / "7scenes_redkitchen_f000-299"
TRACK_FIELDS = [["x", 7, 0], ["y", 7, 4], ["z", 7, 8], ["u", 7, 12], ["v", 7, 16], ["track_id", 6, 20],
                ["visible", 2, 24], ["confidence", 7, 25]]


def test_stream_synthetic_and_real_frames(tiny_model_dir, ros_env, tmp_path):
    scenes = str(require(SCENES))
    plan = [
        {"wait_for": "/diagnostics", "timeout": 60},
        {"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
        {"frames": 10, "rate": 15},  # synthetic 640x480 rgb8
        {"frames": 10, "rate": 15, "source": scenes, "encoding": "bgr8"},
        {"wait_idle": True, "timeout": 30}, {"reset": True},  # ~/reset: odometry restarts at identity
        {"frames": 6, "rate": 15, "source": scenes},
        {"wait_idle": True, "timeout": 30},
    ]
    # Reliable input, so every published frame arrives and the stamp checks below are exact
    # (best-effort input under load is covered by the overload test).
    # Images wait for their own camera_info: this stream changes K between sequences. On a loaded
    # CI machine a resent camera_info sample came more than 0.5 s after its image; the images it
    # releases together are a burst of clips, which max_waiting_clips lets wait instead of shedding.
    params = {"model": str(tiny_model_dir), "num_queries": 16, "max_tracks": 12, "hop": 2, "image_qos": "DEFAULT",
              "camera_info_wait_s": 3.0, "max_waiting_clips": 8}
    run = run_node(plan, params, tmp_path, ros_env)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    stamps = [p["stamp_ns"] for p in run.result["published"]]
    depth = run.records("depth/image")
    assert len(depth) == 10 + 10 + 6, run.node_log  # 3 sequences (encoding resets), all frames out
    for d in depth:
        assert d["stamp_ns"] in stamps and d["frame_id"] == "camera_optical"
        assert (d["encoding"], d["height"], d["width"], d["step"], d["data_len"]) == ("32FC1", 32, 32, 128, 4096)
    assert len({d["stamp_ns"] for d in depth}) == len(depth)  # each input frame described once
    info = {r["stamp_ns"]: r for r in run.records("depth/camera_info")}
    assert set(info) == {d["stamp_ns"] for d in depth}
    # K follows the crop: each image waits for the camera_info of its own stamp (the two topics
    # are delivered independently; a resent camera_info sample arrived 4 frames late here)
    kitchen = [info[s] for s in stamps[10:20] if s in info]
    assert len(kitchen) == 10 and all(np.isclose(r["k"][0], seven_scenes_rgb_intrinsics(SCENES)[0, 0] * 32 / 480) for r in kitchen)
    tracks = run.records("tracks")
    assert len(tracks) == len(depth)
    for t in tracks:
        assert t["fields"] == TRACK_FIELDS and t["point_step"] == 29 and t["width"] == 12
        assert t["stamp_ns"] in stamps and t["frame_id"] == "camera_optical"
    odometry = run.records("odometry")
    assert len(odometry) == len(depth)
    for o in odometry:
        assert o["frame_id"] == "odom" and o["child_frame_id"] == "base_link"
        assert np.isclose(np.linalg.norm(o["orientation"]), 1.0) and min(o["pose_cov_diag"]) > 0
    tf = [t for r in run.records("/tf") for t in r["transforms"] if t["child"] == "base_link"]
    assert len(tf) == len(depth) and all(t["parent"] == "odom" and t["stamp_ns"] in stamps for t in tf)
    assert run.records("path")[-1]["poses"] >= 4
    assert run.result["events"][0]["reset"] is True
    after_reset = [o for o in odometry if o["stamp_ns"] in stamps[20:]]
    assert after_reset and np.allclose(after_reset[0]["position"], 0, atol=1e-6)
    assert np.allclose(np.abs(after_reset[0]["orientation"][3]), 1, atol=1e-6)
    before = [o for o in odometry if o["stamp_ns"] in stamps[10:20]]
    assert before and not np.allclose(before[-1]["position"], 0, atol=1e-3)  # random model: it moved
    points = run.records("depth/points")  # computed because the probe subscribes
    assert points and [f[0] for f in points[0]["fields"]] == ["x", "y", "z", "rgb"]
    assert all(0 < p["width"] <= 16 * 16 for p in points)  # every 2nd pixel of 32x32, valid only
    assert run.records("tracks/markers")
    diag = run.last_diagnostics()
    values = diag["values"]
    for key in ("input_rate_hz", "output_rate_hz", "inference_latency_ms", "frames_dropped", "resets",
                "backend", "model"):
        assert key in values
    assert values["model"] == str(tiny_model_dir) and int(values["frames_in"]) == 26
    assert values["metres_from"] == "model"  # the model's own metres, said on /diagnostics
    assert int(values["pose_epipolar_clips"]) >= 0 and int(values["pose_epipolar_skipped"]) >= 0
    assert int(values["frames_out"]) == len(depth) and values["camera_info"] == "yes"
    assert 0 <= int(values["frames_without_own_camera_info"]) < 26
    # rgb8 -> bgr8 resets the buffer; the manual reset empties it, so jpeg after it does not
    assert int(values["resets_encoding"]) == 1 and int(values["resets_manual"]) == 1


def test_track_queries_from_a_topic(tiny_model_dir, ros_env, tmp_path):
    """track_query_mode topic: points published on track_queries are tracked from the next clip,
    under their own ids and no others; a cloud without u, v is logged and ignored."""
    queries = [[200.0, 150.0], [320.0, 240.0], [450.5, 300.25]]
    plan = [
        {"wait_for": "/diagnostics", "timeout": 60},
        {"wait_for_subscribers": ["image", "camera_info", "track_queries"], "timeout": 60},
        {"track_queries": [[1.0, 2.0]], "fields": ["x", "y"]},  # malformed: no u, v
        {"track_queries": queries}, {"wait": 1.0},
        {"frames": 8, "rate": 15}, {"wait_idle": True, "timeout": 30},
    ]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "max_tracks": 12, "hop": 2,
              "image_qos": "DEFAULT", "track_query_mode": "topic"}
    run = run_node(plan, params, tmp_path, ros_env)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    assert "track_queries needs float32 fields u, v" in run.node_log
    tracks = run.records("tracks")
    assert len(tracks) == 8, run.node_log
    first = tracks[0]
    assert first["stamp_ns"] == run.result["published"][0]["stamp_ns"]
    # The query frame answers with the query itself (model pixels and back, float32).
    order = np.argsort(first["u"])
    np.testing.assert_allclose(np.c_[first["u"], first["v"]][order], queries, atol=1e-2)
    ids = set(first["track_ids"])
    assert len(ids) == len(queries)
    assert all(set(t["track_ids"]) <= ids for t in tracks)  # no grid seeds in topic mode
