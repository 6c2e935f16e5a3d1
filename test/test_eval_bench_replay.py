"""`fourds-ros bench replay` on a short real bag through the real node over DDS: the JSON has the
fixed-rate measurements and a peak-rate search (no timed assertions: speed is only measured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import SHARED_DATA, require


def test_bench_replay_writes_json(tmp_path, tiny_model_dir, ros_env):
    src = require(SHARED_DATA / "7scenes_redkitchen_f000-299")
    from fourds_ros.cli import main as cli

    bag = tmp_path / "bag"
    assert cli(["bag", "convert", "--format", "7scenes", str(src), str(bag), "--max-frames", "8", "--stride", "4"]) == 0
    env = ros_env
    md = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, "-m", "fourds_ros", "bench", "replay", str(bag), "--model",
                           str(tiny_model_dir), "--frames", "24", "--max-steps", "2", "--json-dir", str(tmp_path),
                           "--markdown", str(md), "--workdir", str(tmp_path / "work")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "replay.json").read_text())
    fixed = result["fixed_rate"]
    assert fixed["rate_hz"] == 30.0 and fixed["frames_published"] == 24
    for key in ("fps", "latency_ms_mean", "latency_ms_p95", "jitter_ms", "node_cpu_percent"):
        assert isinstance(fixed[key], float) and fixed[key] >= 0, key
    assert 0 <= fixed["dropped_fraction"] <= 1
    # The warm-up ran ahead in time: the first run's frames are not dropped as older than its last
    # (they were, clip_length + hop of them, and the 30 Hz run then read over 5 % dropped).
    first_run = json.loads((tmp_path / "work" / "timing_30.json").read_text())
    assert first_run["node_diagnostics"]["frames_out_of_order"] == "0"
    assert len(result["runs"]) == 3  # the fixed run and two search steps
    assert result["peak_rate_hz"] is None or result["peak_rate_hz"] > 0
    assert "ros2_benchmark" in md.read_text() and "<!-- bench:replay -->" in md.read_text()


def test_peak_search_brackets_the_rate_where_drops_start():
    """ros2_benchmark's search on a node that keeps up below 47 Hz: double until it fails, then
    bisect until the passing and failing rates are within 15 %."""
    from fourds_ros.bench.replay import DROP_LIMIT, search_peak

    measured = []

    def measure(rate):
        measured.append(rate)
        return {"rate_hz": rate, "dropped_fraction": 0.0 if rate < 47 else 2 * DROP_LIMIT}

    runs, ok, bad = search_peak(measure, 15.0, max_steps=10)
    assert measured[:3] == [15.0, 30.0, 60.0] and len(runs) == len(measured)
    assert ok < 47 <= bad and bad / ok < 1.15
    runs, ok, bad = search_peak(measure, 60.0, max_steps=10)  # failing at first: halve
    assert measured[len(measured) - len(runs) + 1] == 30.0 and ok < 47 <= bad


def test_a_node_that_died_mid_run_is_an_error_not_a_measurement(tmp_path):
    """`eval` (DDS) and `bench replay` checked only the replay process: a node that crashed mid-run
    was scored, and passed, on the frames it described before it died."""
    import pytest

    from fourds_ros.evaluation.replay import NodeProcess, ReplayError

    crashing = [sys.executable, "-c", "import sys; print('Segmentation fault (a stand-in)'); sys.exit(139)"]
    with NodeProcess(crashing, dict(os.environ), tmp_path / "node.log") as node:
        node.proc.wait(timeout=30)
        with pytest.raises(ReplayError, match=r"exited \(139\) before the run ended(.|\n)*Segmentation fault"):
            node.check_alive()
    running = [sys.executable, "-c", "import time; time.sleep(30)"]
    with NodeProcess(running, dict(os.environ), tmp_path / "node2.log") as node:
        node.check_alive()  # alive: nothing to say


def test_each_replayed_image_gets_the_camera_info_nearest_in_time():
    """A driver's camera_info rarely carries its image's exact stamp: matched exactly, such a bag was
    replayed with no camera_info at all and the node ran on its default field of view, while the
    offline path (BagData.intrinsics) took the nearest."""
    from fourds_ros.evaluation.replay import nearest_info

    infos = {1_000: b"a", 34_000: b"b", 67_000: b"c"}
    stamps = sorted(infos)
    assert [nearest_info(infos, stamps, s) for s in (0, 1_000, 17_000, 18_000, 60_000, 99_000)] == [
        b"a", b"a", b"a", b"b", b"c", b"c"]
    assert nearest_info({}, [], 5) is None


def test_frames_the_idle_flush_describes_are_left_out_of_latency():
    """24 frames at 30 Hz, 4-frame clips every 3: clips end at frames 3, 6, ..., 21, so frames 22
    and 23 wait for the node's idle flush a second after the stream; counted, they were the run's
    p95 (about 1.09 s) for a node that answered every clip in 50 ms."""
    from fourds_ros.bench.replay import measure
    from fourds_ros.evaluation.replay import frames_in_clips

    assert [frames_in_clips(n, 4, 3) for n in (3, 4, 6, 7, 24, 25)] == [0, 4, 4, 7, 22, 25]
    period = 33_333_333
    published = {str(i): i * period for i in range(24)}
    arrival = {str(i): (3 * ((i - 1) // 3) + 3 + 1) * period + 50_000_000 for i in range(22)}  # at each clip end
    arrival.update({"22": 23 * period + 1_100_000_000, "23": 23 * period + 1_090_000_000})
    timing = {"published_ns": published, "arrival_ns": arrival, "rate": "30", "wall_s": 1.9,
              "frames_describable": 24, "frames_in_clips": frames_in_clips(24, 4, 3)}
    result = measure(timing, cpu_s=0.5)
    assert result["dropped"] == 0 and result["frames_out"] == 24
    assert result["latency_ms_p95"] < 200 and result["fps"] > 25


def test_without_workdir_the_runs_folder_is_removed_at_the_end(tmp_path, monkeypatch, tiny_model_dir):
    """Without --workdir every run left a folder (the node's logs, three recordings) in the temporary
    directory; --workdir keeps them where it says."""
    import tempfile

    from fourds_ros.bench import replay

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    used = []

    def measured(args, bag, clip_length, hop, workdir):
        used.append(workdir)
        (workdir / "node.log").write_text("the node's log")
        return [{"rate_hz": 30.0, "fps": 30.0}], 30.0, None

    monkeypatch.setattr(replay, "read_bag", lambda path, images: None)
    monkeypatch.setattr(replay, "measure_bag", measured)
    common = ["bag", "--model", str(tiny_model_dir), "--json-dir", str(tmp_path / "json")]
    assert replay.main(common) == 0
    assert used[0].parent == tmp_path / "tmp" and not used[0].exists()
    assert json.loads((tmp_path / "json" / "replay.json").read_text())["workdir"] is None
    assert replay.main([*common, "--workdir", str(tmp_path / "kept")]) == 0
    assert (tmp_path / "kept" / "node.log").read_text() == "the node's log"
