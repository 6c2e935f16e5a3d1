"""`fourds-ros bench soak`: one unbroken live stream cut into windows, with the node's memory.
End to end on a tiny model over real DDS from a separate process (counts and invariants only:
speed and memory are what the benchmark reports, not what a test on a shared machine asserts),
and the plain functions that summarise it."""

import json

import math

import pytest

from fourds_ros.bench.soak import main, meets_live_targets, rss_slope_mb_per_hour, windows


def test_bench_soak_writes_windows_memory_and_a_balanced_account(tiny_model_dir, ros_env, tmp_path, monkeypatch):
    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "AMENT_PREFIX_PATH"):
        monkeypatch.setenv(key, ros_env[key])
    markdown = tmp_path / "benchmarks.md"
    assert main(["--minutes", str(4.5 / 60), "--window-seconds", "1.5", "--rate", "20",
                 "--param", f"model={tiny_model_dir}", "--param", "num_queries=16",
                 "--domain", ros_env["ROS_DOMAIN_ID"], "--json-dir", str(tmp_path), "--markdown", str(markdown)]) == 0
    data = json.loads((tmp_path / "soak.json").read_text())
    rows, summary = data["rows"], data["summary"]
    assert [r["window"] for r in rows] == [0, 1, 2] and [r["sent"] for r in rows] == [30, 30, 30]
    assert all(0 < r["described_pct_depth"] <= 100 and r["latency_ms_p95"] >= r["latency_ms_p50"] > 0 for r in rows)
    # The node's own view of each window: its full diagnostics, and how long frames waited in its
    # subscription queue (DDS reception -> callback).
    assert all(int(r["diagnostics"]["frames_in"]) > 0 for r in rows)
    # The queue's figures are a window of the node's last 200 frames: given for a row only where they
    # are its own (the first row here, whose frames are the node's first), left out after.
    assert rows[0]["input_queue_ms_p95"] >= rows[0]["input_queue_ms_p50"] >= 0
    assert all(r["input_queue_ms_p50"] is None and r["input_queue_ms_p95"] is None for r in rows[1:])
    # Memory is read from /proc of the node's process at each window's end.
    assert all(r["rss_mb"] > 50 for r in rows), [r["rss_mb"] for r in rows]
    assert summary["rss_growth_mb_after_first_window"] == pytest.approx(rows[-1]["rss_mb"] - rows[0]["rss_mb"])
    # The whole run's account: every frame sent was received or lost before the callback, every
    # frame received was described, shed (counted) or is accounted for.
    assert summary["sent"] == 90 and summary["streamed"] == 110  # one more second, not reported
    assert summary["frames_unaccounted"] == 0 and summary["lost_before_callback"] >= 0
    assert summary["windows"] == 3 and summary["windows_meeting_live_targets"] == sum(r["meets_live_targets"] for r in rows)
    assert summary["node_alive_at_end"] and summary["node_exit_code"] == 0
    text = markdown.read_text()
    assert "<!-- bench:soak -->" in text and "Windows meeting issue #19's live targets" in text


def test_windows_cut_the_stream_and_fold_a_short_tail_into_the_last_window():
    frames = [{"stamp_ns": i} for i in range(100)]
    cut = windows(frames, rate=10, window_s=3)  # 30 frames a window: 30, 30, 30 and a tail of 10
    assert [len(w) for w in cut] == [30, 30, 40]
    assert [f for w in cut for f in w] == frames
    assert [len(w) for w in windows(frames[:80], rate=10, window_s=3)] == [30, 30, 20]  # 20 >= half: kept


def test_a_window_meets_the_live_targets_only_when_all_three_hold():
    ok = {"described_pct_depth": 99.0, "latency_ms_p50": 250.0, "latency_ms_p95": 440.0}
    assert meets_live_targets(ok)
    assert not meets_live_targets(dict(ok, described_pct_depth=94.9))
    assert not meets_live_targets(dict(ok, latency_ms_p50=301.0))
    assert not meets_live_targets(dict(ok, latency_ms_p95=451.0))
    assert not meets_live_targets(dict(ok, latency_ms_p95=None))  # nothing came back


def test_memory_slope_is_per_hour_and_ignores_unsampled_windows():
    assert rss_slope_mb_per_hour([1, 2, 3, 4], [500, 501, 502, 503]) == pytest.approx(60.0)
    assert rss_slope_mb_per_hour([1, 2, 3], [500, float("nan"), 500]) == pytest.approx(0.0, abs=1e-9)
    assert rss_slope_mb_per_hour([1], [500]) is None


def test_a_soak_whose_node_described_nothing_keeps_its_json_and_one_whose_node_died_exits_1(tmp_path, monkeypatch,
                                                                                               capsys):
    """No depth came back (latencies None): the summary's text raised on them, before the JSON was written, so a
    failed soak left only a traceback. A node that died during the run exited 0 with its figures."""
    from fourds_ros.bench import soak

    summary = {"transport": "raw", "rate_hz": 30.0, "minutes": 1.0, "window_s": 60.0, "fastdds_profile": "off",
               "windows_meeting_live_targets": 0, "windows": 1, "sent": 1800, "described_pct_depth": 0.0,
               "streamed": 1830, "frames_dropped": 0, "lost_before_callback": 0, "frames_unaccounted": 0,
               "latency_ms_p50": None, "latency_ms_p95": None, "latency_ms_max": None, "rss_mb_first_window": 600.0,
               "rss_mb_last_window": 600.0, "rss_growth_mb_after_first_window": 0.0, "rss_slope_mb_per_hour": None,
               "node_alive_at_end": False, "node_exit_code": -11}
    assert "latency p50 –, p95 –, max –." in soak.summary_lines(summary, {})
    monkeypatch.setattr(soak, "run_soak", lambda *args: ([], dict(summary)))
    monkeypatch.setattr(soak, "markdown_table", lambda rows, columns: "")
    assert soak.main(["--minutes", "1", "--json-dir", str(tmp_path), "--markdown", ""]) == 1
    assert "the node died during the run (exit code -11)" in capsys.readouterr().err
    assert json.loads((tmp_path / "soak.json").read_text())["summary"]["node_alive_at_end"] is False


def test_a_windows_memory_is_the_median_of_its_samples_not_one_spike():
    """One RSS sample a window: about 1 in 20 is an allocator's spike of up to 16 MB, gone at the next sample, and
    one as the last window's read as tens of MB an hour of growth."""
    from fourds_ros.bench.node import CpuSampler

    cpu = CpuSampler()
    cpu.rss_kb = [(t, 600 * 1024 + (16 * 1024 if t == 9 else 0)) for t in range(10)]  # the last sample a spike
    assert cpu.rss_mb_in(0, 9) == pytest.approx(600.0)
    assert cpu.rss_mb_in(20, 30) == pytest.approx(616.0)  # no sample inside: the last one before
    assert math.isnan(CpuSampler().rss_mb_in(0, 9))
