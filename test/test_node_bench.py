"""`fourds-ros bench node` end to end on a tiny model: a live stream, then a stepped rate, from a
separate process on real DDS; JSON rows, the summary and the markdown section. Counts and
invariants only: speed is what the benchmark reports, not what a test on a shared machine asserts."""

import json

import cv2
import numpy as np
import pytest

from fourds_ros.bench.node import frame_size, main

from .conftest import SHARED_DATA, require


def test_bench_node_writes_json_and_table(tiny_model_dir, ros_env, tmp_path, monkeypatch):
    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "AMENT_PREFIX_PATH"):
        monkeypatch.setenv(key, ros_env[key])
    markdown = tmp_path / "benchmarks.md"
    assert main(["--transports", "raw", "--seconds", "2", "--steps", "20", "--step-seconds", "1", "--size", "320x240",
                 "--beside-seconds", "2", "--beside-subscriber", "--param", f"model={tiny_model_dir}", "--param", "num_queries=16",
                 "--domain", ros_env["ROS_DOMAIN_ID"], "--json-dir", str(tmp_path), "--markdown", str(markdown)]) == 0
    data = json.loads((tmp_path / "node.json").read_text())
    live, step = data["rows"]
    assert (live["step"], live["rate_hz"], live["sent"], live["size"]) == ("live", 30.0, 60, "320x240")
    assert (step["step"], step["rate_hz"], step["sent"]) == ("step", 20.0, 20)
    for row in data["rows"]:
        # Every frame sent is received, described, shed (counted) or lost before the callback (counted).
        assert row["frames_in"] + row["lost_before_callback"] == row["sent"], row
        assert row["frames_out"] + row["frames_dropped"] <= row["frames_in"], row
        assert 0 < row["described_pct_depth"] <= 100 and row["latency_ms_p50"] > 0, row
        assert row["odometry_latency_ms_p50"] > 0 and row["odometry_latency_ms_max"] >= row["odometry_latency_ms_p95"]
        assert row["frames_unaccounted"] == 0, row
        # The node's CPU by thread: the executor and the inference worker (named for the OS) both
        # worked, and the groups add up to the process's CPU, both read from /proc.
        by = row["node_cpu_cores_by_thread"]
        assert set(by) == {"executor", "inference", "other", "dds"} and by["executor"] > 0 and by["inference"] > 0, by
        assert abs(sum(by.values()) - row["node_cpu_cores"]) <= 0.1 + 0.2 * row["node_cpu_cores"], (by, row)
    assert data["summary"]["params"] == {"model": str(tiny_model_dir), "num_queries": 16}
    pipeline = data["summary"]["pipeline"]
    assert pipeline["pipeline_ms_p50"] > pipeline["refine_ms_p50"] >= 0 and pipeline["pipeline_ms_p50_after"] > 0
    # The overhead is taken against the faster of the references timed before and after the node's runs.
    for row in data["rows"]:
        assert abs(row["node_adds_pct"] - 100 * (row["clip_latency_ms_p50"] / pipeline["reference_ms"] - 1)) < 1e-9
    # The reference timed beside the camera's process: every frame of its 2 s streamed, clips timed inside it.
    beside = data["summary"]["pipeline_beside_camera"]
    assert beside["camera_frames"] == 60 and beside["clips"] >= 1 and beside["pipeline_ms_p50"] > 0, beside
    assert all("node_adds_pct_beside_camera" in row for row in data["rows"])
    # ...and beside a third process that receives every one of those frames and does nothing else.
    delivery = data["summary"]["pipeline_beside_camera_and_subscriber"]
    assert delivery["subscriber_frames"] == delivery["camera_frames"] == 60 and delivery["clips"] >= 1, delivery
    assert all("node_adds_pct_beside_subscriber" in row for row in data["rows"])
    text = markdown.read_text()
    assert "<!-- bench:node -->" in text and "| raw | 320x240 | 30 |" in text and "Peak rate" in text
    assert "beside the 30 Hz camera's process" in text and "a process that only receives its frames (60 of 60" in text
    assert "Node CPU by thread (cores): executor" in text


def test_summary_says_when_the_peak_rate_was_not_measured():
    """`--steps` with no rates (make demo) runs no stepped rate: the summary must not report
    'none of the steps' as if every step had failed."""
    from fourds_ros.bench.node import summary_lines

    summary = {"params": {}, "peak_rate_hz": {"raw": None},
               "pipeline": {"backend": "onnxruntime", "hop": 7, "pipeline_ms_p50": 120.0, "engine_ms_p50": 85.0,
                            "refine_ms_p50": 16.0, "tracks_update_ms_p50": 4.0, "pose_ms_p50": 12.0}}
    live = {"transport": "raw", "step": "live", "clip_latency_ms_p50": 132.0, "node_adds_pct": 10.0}
    assert "Peak rate: not measured" in summary_lines(summary, [live])
    failed = dict(live, step="step")
    assert "raw none of the steps" in summary_lines(summary, [live, failed])
    summary["peak_rate_hz"]["raw"] = 45.0
    assert "raw 45 Hz" in summary_lines(summary, [live, failed])


def test_the_reference_brackets_the_node_runs_so_host_drift_is_not_read_as_overhead():
    """A host 20 % slower after the runs than before: the reference is the faster of the two
    timings (a slow stretch never makes the node look cheap), and the summary shows both."""
    from fourds_ros.bench.node import bracket_reference, summary_lines

    before = {"backend": "onnxruntime", "hop": 7, "pipeline_ms_p50": 140.0, "engine_ms_p50": 90.0,
              "refine_ms_p50": 12.0, "tracks_update_ms_p50": 5.0, "pose_ms_p50": 27.0}
    assert bracket_reference(before, dict(before, pipeline_ms_p50=168.0)) == 140.0
    assert before["pipeline_ms_p50_after"] == 168.0 and before["reference_ms"] == 140.0
    assert bracket_reference(dict(before), dict(before, pipeline_ms_p50=120.0)) == 120.0
    live = {"transport": "raw", "step": "live", "clip_latency_ms_p50": 170.0, "node_adds_pct": 10.4}
    text = summary_lines({"params": {}, "peak_rate_hz": {"raw": None}, "pipeline": before}, [live])
    assert "168 ms after the node's runs" in text and "the faster, 140 ms" in text


@pytest.mark.parametrize("size", [(720, 1280), (240, 320), (480, 480)])
def test_bench_frames_of_another_size_are_the_same_camera_cropped_and_scaled(size):
    """`bench node --size`: a 640x480 recording played as a camera of another resolution. A point
    seen by the fitted camera (its K) must show the same image content as in the recording."""
    from fourds_ros.rgbd import seven_scenes_rgb_intrinsics
    from fourds_ros.ros.probe import fit_frames

    root = require(SHARED_DATA / "7scenes_redkitchen_f000-299")
    rgb = cv2.cvtColor(cv2.imread(str(root / "frame-000050.color.jpg")), cv2.COLOR_BGR2RGB)
    k = seven_scenes_rgb_intrinsics(root)
    (fitted,), k_fit = fit_frames([rgb], k, size)
    assert fitted.shape == (*size, 3) and fitted.dtype == np.uint8
    assert k_fit[0, 0] == pytest.approx(k_fit[1, 1] * k[0, 0] / k[1, 1])  # one scale on both axes
    # Rays through a grid of the fitted image, back into the recording's pixels.
    v, u = np.mgrid[size[0] // 32: size[0]: size[0] // 16, size[1] // 32: size[1]: size[1] // 16].reshape(2, -1)
    rays = np.linalg.inv(k_fit) @ np.stack([u, v, np.ones_like(u)]).astype(float)
    src = k @ rays
    map_x, map_y = (src[0] / src[2]).astype(np.float32)[None], (src[1] / src[2]).astype(np.float32)[None]
    # The recording smoothed to the fitted image's pixel size, then sampled where the rays fall.
    scale = k_fit[0, 0] / k[0, 0]
    blurred = cv2.GaussianBlur(rgb, (0, 0), max(0.5, 0.5 / scale)) if scale < 1 else rgb
    expected = cv2.remap(blurred, map_x, map_y, cv2.INTER_LINEAR)[0].astype(float)
    got = fitted[v, u].astype(float)
    assert np.abs(got - expected).mean() < 6, np.abs(got - expected).mean()
    # ...and a shifted K would not pass: the check sees a 3-pixel error.
    k_off = k_fit.copy()
    k_off[0, 2] += 3 * scale
    src_off = k @ np.linalg.inv(k_off) @ np.stack([u, v, np.ones_like(u)]).astype(float)
    off = cv2.remap(blurred, (src_off[0] / src_off[2]).astype(np.float32)[None],
                    (src_off[1] / src_off[2]).astype(np.float32)[None], cv2.INTER_LINEAR)[0].astype(float)
    assert np.abs(got - off).mean() > 2 * np.abs(got - expected).mean() + 2


def test_frame_size_reads_width_by_height():
    import argparse

    assert frame_size("1280x720") == (720, 1280)
    for bad in ("1280", "axb", "8x8", "100000x10"):
        with pytest.raises(argparse.ArgumentTypeError):
            frame_size(bad)
