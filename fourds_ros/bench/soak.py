"""fourds-ros bench soak: the perception node under a live camera for minutes, window by window.

`bench node` streams 20 s; a robot streams for hours. One node process (shipped defaults unless
--param says otherwise) gets one unbroken live stream from a separate process (ros/probe.py:
stamps = now, --rate Hz, 640x480 rgb8 or JPEG, camera_info) for --minutes. The stream is cut into
--window-seconds windows afterwards, and each window gets `bench node`'s figures (frames described,
lost before the callback, shed, depth and odometry latency p50/p95/max, the node's CPU) plus the
node's resident memory (VmRSS from /proc), the median of its samples in the window (an allocator's spike is
not read as growth). The summary says in how many windows the
live targets of issue #19 held (>= 95 % described, depth latency p50 <= 300 ms, p95 <= 450 ms),
the latency over the whole run, the memory's growth after the first window and its slope (MB an
hour, least squares over the windows after the first: the first holds the engine's warm-up), and
whether every frame the node received is accounted for at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..argtypes import positive_float
from .node import (OUTPUTS, CpuSampler, add_node_process_arguments, counters_between, fastdds_profile_of, last_status,
                   node_process_settings, source, step_stats, tail_frames)
from .report import markdown_table, output_arguments, write_results

LIVE_TARGETS = {"described_pct_depth": 95.0, "latency_ms_p50": 300.0, "latency_ms_p95": 450.0}  # issue #19


def meets_live_targets(row: dict) -> bool:
    """A window met issue #19's live targets: enough frames described, latency within bounds."""
    p50, p95 = row.get("latency_ms_p50"), row.get("latency_ms_p95")
    return (row["described_pct_depth"] >= LIVE_TARGETS["described_pct_depth"] and p50 is not None
            and p95 is not None and p50 <= LIVE_TARGETS["latency_ms_p50"] and p95 <= LIVE_TARGETS["latency_ms_p95"])


def rss_slope_mb_per_hour(minutes: list[float], rss_mb: list[float]) -> float | None:
    """Least-squares slope of the node's memory over the run, MB an hour (None under 2 samples)."""
    t = np.asarray(minutes, float)
    m = np.asarray(rss_mb, float)
    keep = np.isfinite(m)
    if keep.sum() < 2 or np.ptp(t[keep]) == 0:
        return None
    return float(np.polyfit(t[keep], m[keep], 1)[0] * 60)


def windows(published: list[dict], rate: float, window_s: float) -> list[list[dict]]:
    """The published frames cut into consecutive windows of window_s (the last one may be short;
    one under half a window is joined to the one before it, so no window's percentiles rest on a
    handful of frames)."""
    size = max(1, int(round(rate * window_s)))
    cuts = [published[i:i + size] for i in range(0, len(published), size)]
    if len(cuts) > 1 and len(cuts[-1]) < size / 2:
        tail = cuts.pop()
        cuts[-1] = cuts[-1] + tail
    return cuts


def summarise(rows: list[dict], whole: dict, final: dict, streamed: int) -> dict:
    """rows: the windows; whole: step_stats over the reported frames; final: the node's counters at
    the end; streamed: every frame sent, the unreported last second included (the counters' span)."""
    after_first = rows[1:] or rows
    return {
        "windows": len(rows), "windows_meeting_live_targets": sum(meets_live_targets(r) for r in rows),
        "sent": whole["sent"], "described_pct_depth": whole["described_pct_depth"],
        "latency_ms_p50": whole["latency_ms_p50"], "latency_ms_p95": whole["latency_ms_p95"],
        "latency_ms_max": whole["latency_ms_max"], "frames_dropped": final["frames_dropped"],
        "streamed": streamed, "lost_before_callback": streamed - final["frames_in"], "frames_unaccounted": final["frames_unaccounted"],
        "rss_mb_first_window": rows[0]["rss_mb"], "rss_mb_last_window": rows[-1]["rss_mb"],
        "rss_growth_mb_after_first_window": rows[-1]["rss_mb"] - rows[0]["rss_mb"],
        "rss_slope_mb_per_hour": rss_slope_mb_per_hour([r["minute"] for r in after_first],
                                                       [r["rss_mb"] for r in after_first]),
        "diag_levels": sorted({r["level"] for r in rows if r["level"] is not None}),
    }


def run_soak(transport: str, rate: float, seconds: float, window_s: float, params: dict, workdir: Path,
             env: dict) -> tuple[list[dict], dict]:
    """One node process, one unbroken stream -> (window rows, summary)."""
    from ..ros.harness import run_node

    compressed = transport == "jpeg"
    frames = int(round(rate * seconds))
    # One more second is streamed and not reported: a stream's last frames wait for a clip that
    # never completes, which is the end of the test, not of the node's behaviour.
    tail = tail_frames(rate)
    plan = [{"wait_for": "/diagnostics", "timeout": 180},
            {"wait_for_subscribers": ["image/compressed" if compressed else "image", "camera_info"], "timeout": 120},
            {"frames": frames + tail, "rate": rate, "source": source(), "encoding": "rgb8", "compressed": compressed},
            {"wait_idle": True, "timeout": 60}]
    node_params = {**params, "image_transport": "compressed" if compressed else "raw", "diagnostics_period_s": 0.5}
    cpu = CpuSampler(period_s=1.0)
    cpu.thread.start()
    try:
        run = run_node(plan, node_params, workdir / transport, env, probe_timeout_s=300 + seconds * 1.2,
                       probe_topics=[*OUTPUTS, "/diagnostics"])
    finally:
        cpu.stop.set()
    published = run.result["published"][:frames]
    t_start = published[0]["stamp_ns"]
    rows = []
    for i, sent in enumerate(windows(published, rate, window_s)):
        t0, t1 = sent[0]["stamp_ns"], sent[-1]["stamp_ns"]
        # The node's counters come with /diagnostics every 0.5 s, so within a window they are read
        # only for its state (level, engine time); the counts are exact for the whole run (summary).
        counters = counters_between(run.result, t0, t1 + int(1e9 / rate))
        row = {"transport": transport, "window": i, "minute": (t1 - t_start) / 60e9,
               **step_stats(run.result, sent, rate, cpu),
               **{k: counters[k] for k in ("level", "message", "node_inference_ms", "process_publish_ms",
                                           "clip_latency_ms_p50", "input_transport_ms", "input_queue_ms_p50",
                                           "input_queue_ms_p95")}}
        row["rss_mb"] = cpu.rss_mb_in(t0, t1)
        row["diagnostics"] = dict(last_status(run.result, t1)["values"])  # its full state, to compare windows
        # The camera's own stalls: a camera process that pauses (its host, its garbage collector)
        # then sends a burst, which reads as the node's latency and loss.
        gaps_ms = np.diff([f["stamp_ns"] for f in sent]) / 1e6
        row["camera_gap_max_ms"] = float(gaps_ms.max()) if gaps_ms.size else 0.0
        row["camera_gaps_over_3_periods"] = int((gaps_ms > 3e3 / rate).sum())
        row["meets_live_targets"] = meets_live_targets(row)
        rows.append(row)
    end_ns = max(r["recv_ns"] for r in run.result["records"])
    final = counters_between(run.result, t_start - 1, end_ns + 1)
    summary = summarise(rows, step_stats(run.result, published, rate, cpu), final, len(run.result["published"]))
    summary.update(transport=transport, rate_hz=rate, minutes=seconds / 60, window_s=window_s,
                   node_alive_at_end=run.node_alive_after_plan, node_exit_code=run.node_returncode)
    return rows, summary


COLUMNS = [
    ("window", "window", "d"), ("minute", "minute", ".1f"), ("sent", "sent", "d"),
    ("described_pct_depth", "depth %", ".1f"), ("described_pct_odometry", "odometry %", ".1f"),
    ("latency_ms_p50", "depth latency p50 ms", ".0f"), ("latency_ms_p95", "p95 ms", ".0f"),
    ("latency_ms_max", "max ms", ".0f"), ("odometry_latency_ms_p95", "odometry p95 ms", ".0f"),
    ("input_transport_ms", "stamp to callback ms", ".0f"), ("input_queue_ms_p95", "in the node's queue p95 ms", ".0f"),
    ("clip_latency_ms_p50", "node clip p50 ms", ".0f"),
    ("node_inference_ms", "engine in node ms", ".0f"), ("node_cpu_cores", "node CPU cores", ".2f"),
    ("camera_gap_max_ms", "camera's longest gap ms", ".0f"),
    ("rss_mb", "node RSS MB", ".0f"), ("level", "diag level", ""), ("meets_live_targets", "targets met", ""),
]


def _ms(value) -> str:
    """A latency for the text: '–' where none was measured (no depth came: it raised, and no JSON was kept)."""
    return "–" if value is None else f"{value:.0f} ms"


def summary_lines(s: dict, params: dict) -> str:
    slope = s["rss_slope_mb_per_hour"]
    return "\n".join([
        f"Shipped defaults{' + ' + str(params) if params else ''}; {s['transport']} at {s['rate_hz']:.0f} Hz for "
        f"{s['minutes']:g} min in one unbroken stream, cut into {s['window_s']:g} s windows; Fast DDS profile of the "
        f"node and the camera: {Path(s['fastdds_profile']).name if s['fastdds_profile'].endswith('.xml') else s['fastdds_profile']}.",
        f"Windows meeting issue #19's live targets (>= 95 % described, depth latency p50 <= 300 ms, p95 <= 450 ms): "
        f"{s['windows_meeting_live_targets']} of {s['windows']}.",
        f"Whole run: {s['sent']} frames reported, {s['described_pct_depth']:.1f} % described; of the {s['streamed']} "
        f"streamed (one more second at the end), {s['frames_dropped']} shed (counted), {s['lost_before_callback']} lost "
        f"before the callback, {s['frames_unaccounted']} unaccounted; depth "
        f"latency p50 {_ms(s['latency_ms_p50'])}, p95 {_ms(s['latency_ms_p95'])}, max {_ms(s['latency_ms_max'])}.",
        f"Node memory (RSS, a window's median): {s['rss_mb_first_window']:.0f} MB in the first window, "
        f"{s['rss_mb_last_window']:.0f} MB in the last ({s['rss_growth_mb_after_first_window']:+.1f} MB); slope over the later windows "
        + (f"{slope:+.1f} MB an hour." if slope is not None else "not measured (too few windows)."),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fourds-ros bench soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", default="raw", choices=["raw", "jpeg"])
    parser.add_argument("--rate", type=positive_float, default=30.0, help="the live camera's rate (Hz)")
    parser.add_argument("--minutes", type=positive_float, default=10.0, help="length of the unbroken stream")
    parser.add_argument("--window-seconds", type=positive_float, default=60.0, help="the stream is reported in windows this long")
    add_node_process_arguments(parser)
    args = parser.parse_args(argv)
    params, env = node_process_settings(parser, args)
    with tempfile.TemporaryDirectory(prefix="bench_soak_") as tmp:
        rows, summary = run_soak(args.transport, args.rate, args.minutes * 60, args.window_seconds, params,
                                 Path(tmp), env)
    summary["params"] = params
    summary["fastdds_profile"] = fastdds_profile_of(env)
    table = markdown_table(rows, COLUMNS) + "\n\n" + summary_lines(summary, params)
    write_results("soak", {"summary": summary, "rows": rows}, table,
                  "Perception node: a live camera for minutes (soak)", **output_arguments(args))
    print(summary_lines(summary, params))
    if not summary.get("node_alive_at_end", True):  # the figures above measured a node that died: not a result
        print(f"fourds-ros bench soak: the node died during the run (exit code {summary.get('node_exit_code')})",
              file=sys.stderr)
        return 1
    return 0
