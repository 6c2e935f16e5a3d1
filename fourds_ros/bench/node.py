"""fourds-ros bench node: the perception node under a live camera, from a separate process.

The probe (ros/probe.py) publishes as a camera does: header.stamp = now, a fixed rate, 640x480
rgb8 on `image` (transport raw) or JPEG on `image/compressed` (transport compressed), with
camera_info; the node runs with its shipped defaults (config/perception.yaml) unless told otherwise.
One node process per transport streams, in order:
  live:   --rate Hz for --seconds s (the figure everyone quotes);
  steps:  --steps Hz for --step-seconds s each, rising (ros2_benchmark's method): the peak rate is
          the highest with under 5 % of the frames sent left without depth;
  and each step is followed by the node catching up (wait_idle), so steps do not overlap.
Per step: frames described (% of sent with depth, tracks and odometry), lost before the callback
(sent - frames_in), shed (frames_dropped) with clips_dropped, latency (output receipt - image
stamp) p50/p95/max of depth and of odometry (sent after the tracks, the last output of a clip),
out fps, the node's CPU (cores busy, from /proc) and the load average.
"per clip" compares the node's clip latency (newest frame stamp -> clip published) with the
pipeline's own time for a clip measured in-process on the same frames just before and just after
each node run (the faster of the two), idle, and beside the camera's process (--beside-seconds;
nobody subscribed), so that the CPU a camera takes is not counted as the node's. --rounds N runs
the transports N times in turn and gives that overhead's median and range over the rounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .. import argtypes
from ..argtypes import frame_size, positive_float
from ..evaluation.replay import proc_cpu_seconds
from ..perception.health import CLIP_WINDOW_CLIPS, FRAME_WINDOW_FRAMES, INFERENCE_WINDOW_CLIPS
from ..perception.pipeline import STAGES
from ..ros.harness import perception_status
from ..ros.launch_logic import PROFILE_VARIABLES
from .report import add_output_arguments, latency_stats, markdown_table, output_arguments, write_results

SCENES = Path(__file__).resolve().parents[3] / "shared" / "data" / "7scenes_redkitchen_f000-299"
OUTPUTS = ("depth/image", "tracks", "odometry")
SHED_LIMIT = 0.05  # the ros2_benchmark criterion: under 5 % dropped
CAMERA_HW = (480, 640)  # (H, W) of the live camera unless --size says otherwise: issue #19's 640x480


# The camera's frames (--source): a 7-Scenes, HoloLens or TUM folder, or "synthetic". None: the kitchen of
# ../shared beside the checkout where it is (docs/benchmarks.md's figures), else synthetic.
FRAMES_SOURCE: str | None = None


def source() -> str:
    if FRAMES_SOURCE is not None:
        return FRAMES_SOURCE
    return str(SCENES) if SCENES.exists() else "synthetic"


def thread_group(pid: int, tid: int, comm: str) -> str:
    """Which of the node's threads a task of its process is: executor (the main thread, which spins
    rclpy), inference (the worker: the pipeline's Python and ONNX Runtime's calling thread, and any
    thread it starts, which inherits its name), dds (Fast DDS's), other (ONNX Runtime's pool, started
    at configure, OpenCV's, started by the first frame's intake, and rclpy's)."""
    from ..perception.worker import INFERENCE_THREAD_NAME

    if tid == pid:
        return "executor"
    if comm == INFERENCE_THREAD_NAME:
        return "inference"
    return "dds" if comm.startswith("dds.") else "other"


THREAD_GROUPS = ("executor", "inference", "other", "dds")
# The parts of a node's clip it reports on /diagnostics as <part>_p50_ms (the node's record_clip stages).
NODE_PARTS = ("engine", *STAGES, "send")


# The node's timing figures on /diagnostics, each a rolling window over its whole run (health.py):
# (its key there, the row's key, the count that fills the window, the window's size).
WINDOW_FIGURES = (("clip_latency_p50_ms", "clip_latency_ms_p50", "clips", CLIP_WINDOW_CLIPS),
                  ("process_publish_ms", "process_publish_ms", "clips", CLIP_WINDOW_CLIPS),
                  ("inference_latency_ms", "node_inference_ms", "clips", INFERENCE_WINDOW_CLIPS),
                  ("input_transport_ms", "input_transport_ms", "frames_in", FRAME_WINDOW_FRAMES),
                  ("input_queue_p50_ms", "input_queue_ms_p50", "frames_in", FRAME_WINDOW_FRAMES),
                  ("input_queue_p95_ms", "input_queue_ms_p95", "frames_in", FRAME_WINDOW_FRAMES),
                  *((f"{part}_p50_ms", f"node_{part}_ms", "clips", CLIP_WINDOW_CLIPS) for part in NODE_PARTS))


def task_cpu_s(pid: int, tick: int) -> dict[int, tuple[str, float]]:
    """{tid: (thread_group, CPU seconds so far)} of every thread of process `pid` (from /proc)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            seconds = proc_cpu_seconds(f"/proc/{pid}/task/{tid}/stat", tick)
        except OSError:  # the thread ended meanwhile
            continue
        out[int(tid)] = (thread_group(pid, int(tid), comm), seconds)
    return out


class CpuSampler:
    """The node's CPU time (user + system, from /proc) sampled with wall-clock stamps, so a step's
    share can be read off between its first and last frame, also per thread (THREAD_GROUPS); and its
    resident memory (VmRSS, kB)."""

    def __init__(self, period_s: float = 0.25):
        self.samples: list[tuple[int, float]] = []
        self.thread_samples: list[tuple[int, dict[int, tuple[str, float]]]] = []
        self.rss_kb: list[tuple[int, int]] = []
        self.period_s, self.stop = period_s, threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _node_pid(self) -> int | None:
        me = os.getpid()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == me and b"perception_node" in cmd:
                return int(pid)
        return None

    def _run(self) -> None:
        from ..ros.probe import node_rss_kb

        pid = None
        while not self.stop.is_set():
            pid = pid or self._node_pid()
            if pid is not None:
                try:
                    self.samples.append((time.time_ns(), proc_cpu_seconds(f"/proc/{pid}/stat", self.tick)))
                    self.thread_samples.append((time.time_ns(), task_cpu_s(pid, self.tick)))
                    self.rss_kb.append((time.time_ns(), node_rss_kb(pid)))
                except OSError:
                    pid = None
            self.stop.wait(self.period_s)

    def rss_mb_in(self, t0_ns: int, t1_ns: int) -> float:
        """The node's resident memory (MB): the median of its samples between two wall-clock times, else the
        last sample before t1 (nan when unsampled). Why the median: about 1 sample in 20 is a spike of up to
        16 MB that the next one no longer shows (the allocator's), and one such spike as a soak's last window
        read as tens of MB an hour of growth."""
        inside = [kb for t, kb in self.rss_kb if t0_ns <= t <= t1_ns and kb > 0]
        if inside:
            return float(np.median(inside)) / 1024
        before = [kb for t, kb in self.rss_kb if t <= t1_ns and kb > 0]
        return before[-1] / 1024 if before else float("nan")

    def cores(self, t0_ns: int, t1_ns: int) -> float:
        """Mean cores busy between two wall-clock times (nan when unsampled)."""
        inside = [s for s in self.samples if t0_ns <= s[0] <= t1_ns]
        if len(inside) < 2:
            return float("nan")
        return (inside[-1][1] - inside[0][1]) / ((inside[-1][0] - inside[0][0]) / 1e9)

    def cores_by_thread(self, t0_ns: int, t1_ns: int) -> dict[str, float]:
        """Mean cores busy per THREAD_GROUPS between two wall-clock times, over the threads alive at
        both ends (nan when unsampled)."""
        inside = [s for s in self.thread_samples if t0_ns <= s[0] <= t1_ns]
        if len(inside) < 2:
            return {g: float("nan") for g in THREAD_GROUPS}
        (ta, first), (tb, last) = inside[0], inside[-1]
        busy = dict.fromkeys(THREAD_GROUPS, 0.0)
        for tid, (group, seconds) in last.items():
            if tid in first:
                busy[group] += seconds - first[tid][1]
        return {g: v / ((tb - ta) / 1e9) for g, v in busy.items()}


REFERENCE_MAX_FRAMES = 300  # the 7-Scenes kitchen's; 640x480 frames: 280 MB


def pipeline_clip_ms(params: dict, frames: int, size: tuple[int, int] = CAMERA_HW) -> dict:
    """PerceptionPipeline.process per clip in-process (the node's settings), with the engine's and each
    later stage's share (pipeline.STAGES): what the node's clip latency is compared against. `frames`:
    the live row's, played as the camera plays them (probe.back_and_forth, frames of size (H, W)), so
    that the reference times the clips the node is sent. Why: it timed the folder's first 64 frames
    once, forwards; the shipped sample has 30, so its pose p50 was one clip's (the median of three),
    and the node's clips over the reversals cost its pose about 10 % more thread CPU (session 69). Played up
    to one forth-and-back cycle of the folder and a clip (every reversal's clips once; the rest repeat them),
    from at most REFERENCE_MAX_FRAMES loaded: a reference grows with neither --seconds nor --rate."""
    from ..ros.probe import back_and_forth

    pipe, backend = node_pipeline(params)
    images, k = _frames(min(frames, REFERENCE_MAX_FRAMES), size)
    cycle = len(images) + max(len(images) - 2, 0)  # probe.back_and_forth's
    played = min(frames, cycle + pipe.clip_length)
    clips = [c for i in range(played) if (c := timed_push(pipe, back_and_forth(images, i), i, k)) is not None]
    clips = clips[1:] or clips  # the first clip seeds the tracks
    ms = lambda v: latency_stats(v)["latency_ms_p50"] if v else float("nan")  # noqa: E731
    return {"backend": backend, "hop": pipe.hop, "pipeline_ms_p50": ms([c[1] for c in clips]),
            "engine_ms_p50": ms([c[2] for c in clips]),
            **{f"{name}_ms_p50": ms([c[3][name] for c in clips if name in c[3]]) for name in STAGES}}


def bracket_references(rows: list[dict], before: dict, after: dict) -> None:
    """Each of one node run's rows (one transport) against the in-process pipeline timed just before
    and just after that run: row["reference_ms"] is the faster of the two and row["node_adds_pct"]
    the node's clip over it. Why both, and why around each run: this shared host's speed drifts by
    10-40 % within minutes (the engine alone at 40 or 50 ms a clip for seconds at a time, session
    47; 142-174 ms a clip in session 32's runs, docs/benchmarks.md), so a reference timed far from
    a run compares two speeds of the host, and one timed in a slow stretch would make the node look
    cheap; the faster of its two neighbours never credits the node with the host's slowness."""
    faster = min(before, after, key=lambda r: r["pipeline_ms_p50"])
    for row in rows:
        row["reference_ms"] = faster["pipeline_ms_p50"]
        row["node_adds_pct"] = over_pct(row["clip_latency_ms_p50"], row["reference_ms"])
        row["node_adds_ms_by_part"] = node_adds_by_part(row, faster)


def over_pct(node_ms: float | None, reference_ms: float) -> float | None:
    """The node's clip over a reference, in % (None where the row has no clip figure: counters_between)."""
    return None if node_ms is None else 100 * (node_ms / reference_ms - 1)


def minus(a: float | None, b: float | None) -> float | None:
    """a - b, None where either is (a figure counters_between left out)."""
    return None if a is None or b is None else a - b


def node_adds_by_part(row: dict, reference: dict) -> dict[str, float]:
    """Where a node row's clip time goes beyond the in-process pipeline's, in ms (issue #19's
    ledger): each of the engine's and the later stages' p50 in the node (its /diagnostics) minus the
    same stage's in the reference; "send", building and publishing the clip's messages, which the
    reference does not do; "arrival", from the newest frame's stamp to the clip's start (the camera's
    serialising, DDS, the subscription callback, handing the clip to the inference thread). Each a
    median of its own, so they need not add up to the clip's excess. Session 49's six runs on this
    host: send 5 and arrival 5 ms in every run, the engine's excess -18 to +32 ms with the host's
    phase (docs/benchmarks.md)."""
    parts = {part: minus(row[f"node_{part}_ms"], reference[f"{part}_ms_p50"]) for part in NODE_PARTS if part != "send"}
    arrival = minus(row["clip_latency_ms_p50"], row["process_publish_ms"])
    return {**parts, "send": row["node_send_ms"], "arrival": arrival}


def rounds_summary(rows: list[dict], transports: list[str]) -> dict[str, dict]:
    """transport -> the median, lowest and highest node_adds_pct of its live rows over the rounds."""
    out = {}
    for t in transports:
        adds = [r["node_adds_pct"] for r in rows if r["transport"] == t and r["step"] == "live"
                and r["node_adds_pct"] is not None]
        if adds:
            out[t] = {"rounds": len(adds), "node_adds_pct_median": float(np.median(adds)),
                      "node_adds_pct_min": float(min(adds)), "node_adds_pct_max": float(max(adds))}
    return out


def pipeline_beside_camera_ms(params: dict, rate: float, seconds: float, workdir: Path, env: dict,
                              subscriber: bool = False, size: tuple[int, int] = CAMERA_HW) -> dict:
    """The same in-process pipeline, clips back to back, while the live camera's process (the probe:
    640x480 rgb8 at `rate` Hz, stamps = now) publishes next to it with nobody subscribed. On a
    2-core computer whatever CPU the camera's process takes, it takes whether or not a node runs:
    what the node adds is its clip time over this reference. Only clips started and finished while
    the camera was streaming count (clips 0 and NaN times when none did).
    subscriber: a third process receives every frame as the node would (bench/bare_subscriber.py)
    and does nothing with them: what DDS delivery costs on this computer, whoever receives."""
    import json
    import subprocess
    import sys

    from ..ros.probe import back_and_forth

    pipe, _ = node_pipeline(params)
    images, k = _frames(64, size)
    plan = [{"frames": int(round(rate * seconds)), "rate": rate, "source": source(), "encoding": "rgb8",
             "size": list(size)}]
    bare = None
    if subscriber:  # matched before the first frame, so it receives the whole stream
        bare = subprocess.Popen([sys.executable, "-m", "fourds_ros.bench.bare_subscriber", "--seconds", "600",
                                 "--qos", str(params.get("image_qos", "DEFAULT"))], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        plan.insert(0, {"wait_for_subscribers": ["image", "camera_info"], "outputs": False, "timeout": 60})
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "plan.json").write_text(json.dumps(plan))
    out = workdir / "camera.json"
    camera = subprocess.Popen([sys.executable, "-m", "fourds_ros.ros.probe", "--plan", str(workdir / "plan.json"),
                               "--out", str(out), "--topics", "none"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    clips, i = [], 0
    try:
        while camera.poll() is None:
            timing = timed_push(pipe, back_and_forth(images, i), i, k)  # as the probe plays a short folder
            if timing is not None:
                clips.append(timing)
            i += 1
    finally:
        _, err = camera.communicate(timeout=60)
        received = _stop_bare_subscriber(bare)
    if camera.returncode != 0 or not out.exists():
        raise RuntimeError(f"camera process failed ({camera.returncode}): {err[-2000:]}")
    sent = json.loads(out.read_text())["published"]
    first, last = sent[0]["stamp_ns"], sent[-1]["stamp_ns"]
    inside = [c for c in clips if first <= c[0] and c[0] + c[1] * 1e9 <= last]
    ms = lambda v: latency_stats(v)["latency_ms_p50"] if v else float("nan")  # noqa: E731
    return {"camera_hz": rate, "camera_frames": len(sent), "clips": len(inside), **received,
            "pipeline_ms_p50": ms([c[1] for c in inside]), "engine_ms_p50": ms([c[2] for c in inside])}


def _stop_bare_subscriber(bare) -> dict:
    """SIGINT to the bare subscriber (never SIGKILL: DDS shared memory) -> {"subscriber_frames": N}."""
    import json
    import signal

    if bare is None:
        return {}
    bare.send_signal(signal.SIGINT)
    out, err = bare.communicate(timeout=30)
    try:
        return {"subscriber_frames": int(json.loads(out.strip().splitlines()[-1])["image"])}
    except (ValueError, IndexError, KeyError) as exc:
        raise RuntimeError(f"bare subscriber failed ({bare.returncode}): {err[-2000:]}") from exc


def node_pipeline(params: dict):
    """(pipeline with the node's settings over its defaults, backend description)."""
    from ..perception.pipeline import create_pipeline
    from ..perception.settings import PerceptionSettings

    return create_pipeline(PerceptionSettings.from_params(params), log=lambda *_: None)


def _frames(count: int, size: tuple[int, int]):
    from ..ros.probe import load_frames

    return load_frames(source(), size, count)


def timed_push(pipe, rgb: np.ndarray, i: int, k) -> tuple[int, float, float, dict[str, float]] | None:
    """Frame i into the pipeline; for a completed clip -> (start time ns, process s, engine s, the
    clip's stage seconds: ClipResult.stage_s), not the result itself (a clip's depth images are MBs)."""
    clip, _ = pipe.add_frame(rgb, i * 33_333_333, "camera_optical", k)
    if clip is None:
        return None
    start, t0 = time.time_ns(), time.perf_counter()
    result = pipe.process(clip)
    return start, time.perf_counter() - t0, result.inference_s, result.stage_s


def tail_frames(rate: float) -> int:
    """Frames streamed after a step's reported ones (a second's, and at least a hop of the longest
    clips, 16 frames), so that every reported frame's clip completes while frames still come
    (bench node, bench soak)."""
    return max(int(round(rate)), 16)


def step_stats(result: dict, sent: list[dict], rate: float, cpu: CpuSampler) -> dict:
    """One stream step: `sent` is its slice of the probe's published frames."""
    stamps = {p["stamp_ns"] for p in sent}
    row: dict = {"rate_hz": rate, "sent": len(sent)}
    for topic in OUTPUTS:
        got = {r["stamp_ns"] for r in result["records"] if r["topic"] == topic and r.get("stamp_ns") in stamps}
        row[f"described_pct_{topic.split('/')[0]}"] = 100 * len(got) / max(1, len(sent))
    t0, t1 = sent[0]["stamp_ns"], sent[-1]["stamp_ns"]
    # Depth is sent as soon as it is ready, tracks and odometry ~40 ms later (pipeline.process's
    # on_depth): latency per output, "latency" being depth's.
    for topic, prefix in (("depth/image", ""), ("odometry", "odometry_")):
        got = [r for r in result["records"] if r["topic"] == topic and r.get("stamp_ns") in stamps]
        lat = np.array([(r["recv_ns"] - r["stamp_ns"]) / 1e6 for r in got])
        row.update({f"{prefix}latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
                    f"{prefix}latency_ms_p95": float(np.percentile(lat, 95)) if lat.size else None,
                    f"{prefix}latency_ms_max": float(lat.max()) if lat.size else None})
        if topic == "depth/image":
            row["out_fps"] = len(got) / max(1e-9, (t1 - t0) / 1e9 + 1 / rate)
    row["node_cpu_cores"] = cpu.cores(t0, t1 + 2e9)
    row["node_cpu_cores_by_thread"] = cpu.cores_by_thread(t0, t1 + 2e9)
    return row


def last_status(result: dict, t_ns: int) -> dict:
    """The node's last /diagnostics status received before t (level, message, values; an empty one
    with level None when none came)."""
    last = [status for r in result["records"] if r["topic"] == "/diagnostics" and r["recv_ns"] < t_ns
            for status in [perception_status(r)] if status is not None][-1:]
    return last[0] if last else {"values": {}, "level": None, "message": ""}


def counters_between(result: dict, t0_ns: int, t1_ns: int) -> dict:
    """Node counters accumulated from t0 to t1 (from the /diagnostics received before each), the last
    status before t1, and its timing figures where they are the span's own (window_figure)."""
    before, last = last_status(result, t0_ns)["values"], last_status(result, t1_ns)
    after = last["values"]
    keys = ("frames_in", "frames_out", "frames_dropped", "clips_dropped", "frames_lost_in_transport",
            "frames_missing_by_stamp", "pose_epipolar_clips", "pose_epipolar_skipped")
    out = {k: int(after.get(k, 0)) - int(before.get(k, 0)) for k in keys}
    out.update(frames_unaccounted=int(after.get("frames_unaccounted", 0)), level=last["level"],
               message=last["message"])
    for key, name, count, size in WINDOW_FIGURES:
        out[name] = window_figure(before, after, key, count, size)
    return out


def window_figure(before: dict, after: dict, key: str, count: str, size: int) -> float | None:
    """A rolling window's figure (WINDOW_FIGURES) at the end of a span, where only the span's samples are
    in it: it added at least the window's size (count: clips or frames_in), or the node had none before
    it (a run's first step); else None, shown as "–". Taken as it was, a 9 s step after the 21 s live
    row reported the live row's clips: 300 ms a clip where its own took 100."""
    total = int(after.get(count, 0))
    own = total - int(before.get(count, 0))
    return float(after.get(key, "nan")) if own >= min(total, size) else None


class NodeDied(RuntimeError):
    """The node process ended before the benchmark's plan did: what was measured after is no node's."""


def run_transport(transport: str, steps: list[tuple[float, float]], params: dict, workdir: Path, env: dict,
                  size: tuple[int, int] = CAMERA_HW, distortion: tuple = ()) -> list[dict]:
    """One node process; steps (rate Hz, seconds) of frames of size (H, W) streamed in order, each
    followed by catching up. distortion: the plumb_bob lens camera_info declares (the node then
    undistorts every frame, as it would a real lens's; the recording's frames are pinhole already,
    so this measures the cost, not the accuracy)."""
    from ..ros.harness import run_node

    compressed = transport == "jpeg"
    plan = [{"wait_for": "/diagnostics", "timeout": 180},
            {"wait_for_subscribers": ["image/compressed" if compressed else "image", "camera_info"], "timeout": 120}]
    for rate, seconds in steps:
        # One more second is streamed and not reported, as in the soak: a step's last frames wait for a
        # clip that never completes and are described by the idle flush a second later (the end of
        # the test, not the node's latency: every row's max read 1.1-1.3 s for it).
        plan += [{"frames": int(round(rate * seconds)) + tail_frames(rate), "rate": rate, "source": source(),
                  "encoding": "rgb8", "compressed": compressed, "size": list(size),
                  "distortion": list(distortion) or None},
                 {"wait_idle": True, "timeout": 30}]
    node_params = {**params, "image_transport": "compressed" if compressed else "raw", "diagnostics_period_s": 0.5}
    cpu = CpuSampler()
    cpu.thread.start()
    try:
        run = run_node(plan, node_params, workdir / transport, env, probe_timeout_s=180 + sum(s + 40 for _, s in steps),
                       probe_topics=[*OUTPUTS, "/diagnostics"])
    finally:
        cpu.stop.set()
    if not run.node_alive_after_plan:  # later steps measured no node: rows of 0 % and a peak rate of the earlier
        raise NodeDied(f"the node died during the {transport} run (exit code {run.node_returncode}); the end of its "
                       "log:\n" + "\n".join(run.node_log.splitlines()[-15:]))
    published, rows, start = run.result["published"], [], 0
    for i, (rate, seconds) in enumerate(steps):
        reported = int(round(rate * seconds))
        streamed = published[start:start + reported + tail_frames(rate)]
        sent = streamed[:reported]  # the reported frames: the tail is not
        start += len(streamed)
        end = published[start]["stamp_ns"] if start < len(published) else time.time_ns()
        row = {"transport": transport, "size": f"{size[1]}x{size[0]}", "lens": "plumb_bob" if any(distortion) else "pinhole",
               "step": "live" if i == 0 else "step",
               **step_stats(run.result, sent, rate, cpu),
               **counters_between(run.result, sent[0]["stamp_ns"], end)}
        row["streamed"] = len(streamed)
        row["lost_before_callback"] = len(streamed) - row["frames_in"]
        row["load_average_1min"] = os.getloadavg()[0]
        rows.append(row)
    return rows


def peak_rate(rows: list[dict]) -> float | None:
    """The highest stepped rate with under SHED_LIMIT of the frames sent left without depth; over
    several rounds, the lowest round's (a rate every round held)."""
    peaks = []
    for round_ in sorted({r["round"] for r in rows}):
        ok = [r["rate_hz"] for r in rows if r["round"] == round_ and r["step"] == "step" and under_shed_limit(r)]
        peaks.append(max(ok) if ok else None)
    return None if not peaks or None in peaks else min(peaks)


def under_shed_limit(row: dict) -> bool:
    """Under SHED_LIMIT of the step's frames sent were left without depth, strictly (ros2_benchmark's
    "under 5 %"): 12 of 240 undescribed is 5 %, not under. Less 1e-9: the percentage is a float, and
    100 * 228 / 240 a rounding off 95 must not pass either (no real step is that close to 5 % otherwise)."""
    return 100 - row["described_pct_depth"] < 100 * SHED_LIMIT - 1e-9


COLUMNS = [
    ("transport", "transport", ""), ("size", "frames", ""), ("rate_hz", "input Hz", ".0f"), ("sent", "sent", "d"),
    ("described_pct_depth", "depth %", ".1f"), ("described_pct_tracks", "tracks %", ".1f"),
    ("described_pct_odometry", "odometry %", ".1f"), ("lost_before_callback", "lost before callback", "d"),
    ("frames_dropped", "shed (counted)", "d"), ("latency_ms_p50", "depth latency p50 ms", ".0f"),
    ("latency_ms_p95", "p95 ms", ".0f"), ("latency_ms_max", "max ms", ".0f"),
    ("odometry_latency_ms_p50", "odometry latency p50 ms", ".0f"), ("odometry_latency_ms_p95", "p95 ms", ".0f"),
    ("out_fps", "out fps", ".1f"),
    ("input_transport_ms", "stamp to callback ms", ".0f"), ("clip_latency_ms_p50", "node clip p50 ms", ".0f"),
    ("node_inference_ms", "engine in node ms", ".0f"), ("process_publish_ms", "process + publish ms", ".0f"),
    ("node_cpu_cores", "node CPU cores", ".2f"), ("level", "diag level", ""), ("load_average_1min", "load avg", ".1f"),
]


def add_node_process_arguments(parser) -> None:
    """How the node and the camera process run, the same for bench node and bench soak: --param,
    --domain, --fastdds-profile, and the output options."""
    from ..perception.settings import add_param_argument

    add_param_argument(parser, "over the shipped defaults")
    parser.add_argument("--source", default=None, metavar="DIR|synthetic",
                        help="the camera's frames: a 7-Scenes, HoloLens or TUM folder, *.color.jpg frames, or synthetic (default: "
                             "../shared's 7-Scenes kitchen beside the checkout where it is, else synthetic; `make demo` "
                             "gives the shipped sample, samples/hololens_000)")
    parser.add_argument("--domain", type=int, default=None,
                        help="the ROS domain of the node and the camera (default: one of this run's own, never "
                             "ROS_DOMAIN_ID's: a robot's live nodes are not reached)")
    parser.add_argument("--fastdds-profile", default="",
                        help="Fast DDS profile of the node and the camera process: '' the package's "
                             "config/fastdds_large_frames.xml (unless FASTDDS_ or FASTRTPS_DEFAULT_PROFILES_FILE is set), "
                             "'none' Fast DDS's defaults, or a file")
    add_output_arguments(parser)


def fastdds_profile_of(env: dict) -> str:
    """The Fast DDS profile file that node and camera run with, for the results ("Fast DDS defaults")."""
    return next((env[name] for name in PROFILE_VARIABLES if env.get(name)), "Fast DDS defaults")


def node_process_settings(parser, args) -> tuple[dict, dict]:
    """-> (the node's parameters over the shipped defaults, the environment of node and camera)."""
    from ..perception.settings import params_from_args
    from ..rgbd import DatasetFormatError
    from ..ros.harness import ros_env
    from ..ros_env import private_domain
    from ..ros.probe import load_frames

    global FRAMES_SOURCE
    if args.source not in (None, "synthetic"):
        try:
            load_frames(args.source, CAMERA_HW, 1)
        except DatasetFormatError as exc:
            parser.error(f"--source: {exc}")
    FRAMES_SOURCE = args.source
    domain = private_domain() if args.domain is None else args.domain
    return params_from_args(parser, args.param), ros_env(domain, args.fastdds_profile)


def live_frames(args) -> int:
    """The frames the live row reports (--rate x --seconds): the in-process reference times these."""
    return int(round(args.rate * args.seconds))


def run_rounds(args, steps: list[tuple[float, float]], params: dict, workdir: Path, env: dict,
               references: list[dict]) -> list[dict]:
    """The transports run args.rounds times in turn, each node run followed by a timing of the in-process pipeline
    (appended to `references`) and bracketed by the two around it. -> every round's rows. NodeDied: a node died."""
    rows: list[dict] = []
    for round_ in range(1, args.rounds + 1):
        for t in args.transports:
            run = run_transport(t, steps, params, workdir / f"round{round_}", env, args.size, tuple(args.lens))
            references.append(pipeline_clip_ms(params, live_frames(args), args.size))
            bracket_references(run, references[-2], references[-1])
            rows += [dict(r, round=round_) for r in run]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fourds-ros bench node", description=__doc__.split("\n\n")[0])
    parser.add_argument("--transports", nargs="+", default=["raw", "jpeg"], choices=["raw", "jpeg"])
    parser.add_argument("--rate", type=positive_float, default=30.0, help="the live camera's rate (Hz)")
    parser.add_argument("--seconds", type=positive_float, default=20.0, help="live stream length (s)")
    parser.add_argument("--steps", type=positive_float, nargs="*", default=[15.0, 30.0, 45.0, 60.0],
                        help="stepped rates (Hz) for the peak rate; none: skip")
    parser.add_argument("--step-seconds", type=positive_float, default=8.0)
    parser.add_argument("--size", type=frame_size, default=CAMERA_HW, metavar="WxH",
                        help="the camera's frames (default 640x480, issue #19's camera; e.g. 1280x720, a RealSense "
                             "colour stream's default): the recording's centre cropped to that aspect and scaled")
    parser.add_argument("--lens", type=float, nargs=5, default=(), metavar=("K1", "K2", "P1", "P2", "K3"),
                        help="camera_info declares this plumb_bob lens, so the node undistorts every frame (a cost "
                             "measurement: the frames are pinhole already); e.g. TUM fr1's 0.2624 -0.9531 -0.0054 "
                             "0.0026 1.1633")
    parser.add_argument("--beside-seconds", type=argtypes.seconds, default=12.0,
                        help="the in-process pipeline timed this long beside a --rate Hz camera process (0: skip)")
    parser.add_argument("--beside-subscriber", action="store_true",
                        help="also time it beside the camera and a process that only receives its frames (what DDS "
                             "delivery costs, whoever receives)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the transports this many times in turn, each node run between two timings of the "
                             "in-process pipeline; the summary gives the overhead's median and range over the rounds "
                             "(this host's speed drifts by 10-40 %% within minutes, so one run says little)")
    add_node_process_arguments(parser)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    params, env = node_process_settings(parser, args)
    references = [pipeline_clip_ms(params, live_frames(args), args.size)]
    steps = [(args.rate, args.seconds)] + [(r, args.step_seconds) for r in args.steps]
    with tempfile.TemporaryDirectory(prefix="bench_node_") as tmp:
        beside = (pipeline_beside_camera_ms(params, args.rate, args.beside_seconds, Path(tmp) / "beside",
                                            env, size=args.size) if args.beside_seconds > 0 else None)
        delivery = (pipeline_beside_camera_ms(params, args.rate, args.beside_seconds, Path(tmp) / "delivery",
                                              env, subscriber=True, size=args.size)
                    if args.beside_subscriber and args.beside_seconds > 0 else None)
        try:
            rows = run_rounds(args, steps, params, Path(tmp), env, references)
        except NodeDied as exc:
            print(f"fourds-ros bench node: {exc}", file=sys.stderr)
            return 1
    for row in rows:
        if beside is not None:
            row["node_adds_pct_beside_camera"] = over_pct(row["clip_latency_ms_p50"], beside["pipeline_ms_p50"])
        if delivery is not None:
            row["node_adds_pct_beside_subscriber"] = over_pct(row["clip_latency_ms_p50"], delivery["pipeline_ms_p50"])
    clip = dict(references[0], references_ms=[r["pipeline_ms_p50"] for r in references])
    summary = {"params": params, "fastdds_profile": fastdds_profile_of(env), "rounds": args.rounds,
               "pipeline": clip, "pipeline_beside_camera": beside,
               "pipeline_beside_camera_and_subscriber": delivery,
               "node_adds_over_rounds": rounds_summary(rows, args.transports),
               "peak_rate_hz": {t: peak_rate([r for r in rows if r["transport"] == t]) for t in args.transports}}
    table = markdown_table(rows, COLUMNS) + "\n\n" + summary_lines(summary, rows)
    write_results("node", {"summary": summary, "rows": rows}, table,
                  "Perception node: a live camera from a separate process", **output_arguments(args))
    return 0


def thread_cpu_text(row: dict) -> str:
    """' Node CPU by thread (cores): executor 0.06, inference 0.29, ...', or '' for a row without it."""
    by = row.get("node_cpu_cores_by_thread")
    if not by:
        return ""
    return " Node CPU by thread (cores): " + ", ".join(f"{g} {by[g]:.2f}" for g in THREAD_GROUPS) + "."


def live_line(row: dict, several_rounds: bool, beside: bool, delivery: bool) -> str:
    """One live row's sentence: the node's clip against the references around its run (and beside
    the camera, and beside a bare subscriber, where those were timed) and its CPU by thread."""
    name = row["transport"] + (f" (round {row['round']})" if several_rounds else "")
    text = (f"Live {name}: node clip p50 {figure(row['clip_latency_ms_p50'], '.0f')} ms = pipeline "
            f"({row['reference_ms']:.0f} ms around it) {figure(row['node_adds_pct'], '+.0f')} %")
    if beside:
        text += f", pipeline beside the camera {figure(row['node_adds_pct_beside_camera'], '+.0f')} %"
    if delivery:
        text += (f", pipeline beside the camera and a bare subscriber "
                 f"{figure(row['node_adds_pct_beside_subscriber'], '+.0f')} %")
    return text + "." + parts_text(row) + thread_cpu_text(row)


def figure(value: float | None, spec: str) -> str:
    """A figure as the tables show it: "–" where counters_between left it out (None)."""
    return "–" if value is None else format(value, spec)


def parts_text(row: dict) -> str:
    """' Over the pipeline by part (ms): engine +11.5, ...', or '' for a row without the ledger."""
    parts = row.get("node_adds_ms_by_part")
    if not parts:
        return ""
    return (" Over the pipeline by part (ms): " + ", ".join(
        f"{part} {figure(value, '+.1f')}" + (" (within pose)" if part == "epipolar" else "")
        for part, value in parts.items()) + ".")


def summary_lines(summary: dict, rows: list[dict]) -> str:
    c = summary["pipeline"]
    live = [r for r in rows if r["step"] == "live"]
    lines = [f"Shipped defaults{' + ' + str(summary['params']) if summary['params'] else ''}: {c['backend']}, hop {c['hop']}. "
             f"Pipeline per clip in-process: p50 {c['pipeline_ms_p50']:.0f} ms (engine {c['engine_ms_p50']:.0f}, "
             f"track refinement {c['refine_ms_p50']:.0f}, tracks update + image fallback {c['tracks_update_ms_p50']:.0f}, "
             f"pose {c['pose_ms_p50']:.0f}, of which its epipolar direction {c['epipolar_ms_p50']:.0f})" + (f"; timed before and after each node run: "
                                                 f"{', '.join(f'{v:.0f}' for v in c['references_ms'])} ms, each run "
                                                 f"against the faster of the two around it"
                                                 if "references_ms" in c else "") + "."]
    b = summary.get("pipeline_beside_camera")
    if b:
        lines.append(f"Pipeline per clip in-process beside the {b['camera_hz']:.0f} Hz camera's process (nobody "
                     f"subscribed; {b['clips']} clips): p50 {b['pipeline_ms_p50']:.0f} ms (engine {b['engine_ms_p50']:.0f}).")
    d = summary.get("pipeline_beside_camera_and_subscriber")
    if d:
        lines.append(f"Pipeline per clip in-process beside the camera's process and a process that only receives its "
                     f"frames ({d['subscriber_frames']} of {d['camera_frames']}; {d['clips']} clips): p50 "
                     f"{d['pipeline_ms_p50']:.0f} ms (engine {d['engine_ms_p50']:.0f}).")
    several = summary.get("rounds", 1) > 1
    lines += [live_line(r, several, bool(b), bool(d)) for r in live]
    if several:
        lines += [f"Over {v['rounds']} rounds, {t}: the node's clip over the pipeline around it, median "
                  f"{v['node_adds_pct_median']:+.0f} % (lowest {v['node_adds_pct_min']:+.0f} %, highest "
                  f"{v['node_adds_pct_max']:+.0f} %)." for t, v in summary["node_adds_over_rounds"].items()]
    if not any(r["step"] != "live" for r in rows):  # --steps with no rates: nothing to report
        lines.append("Peak rate: not measured (no stepped rates).")
    else:
        lines.append("Peak rate with < 5 % of frames undescribed: " + ", ".join(
            f"{t} {f'{v:.0f} Hz' if v else 'none of the steps'}" for t, v in summary["peak_rate_hz"].items()) + ".")
    return "\n".join(lines)
