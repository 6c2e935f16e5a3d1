"""InferenceWorker (inference thread, supersede, idle flush) and NodeHealth / StampGaps (diagnostics
rules and frame accounting), without ROS."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from .conftest import wait_for
from fourds_ros.perception import health as health_module
from fourds_ros.perception.clip_buffer import OUT_OF_ORDER_NS, Clip, Frame, supersede
from fourds_ros.perception.health import (BAD_INPUT_WARN_S, ERROR, OK, RECENT_S,
                                          REFERENCE_SILENT_S, REFERENCE_WARN_AFTER_CLIPS, WARN, NodeHealth, NodeState,
                                          StampGaps)
from fourds_ros.perception.worker import InferenceWorker

MS = 1_000_000
HZ30 = 33_333_333  # ns between frames at 30 Hz
WAIT_S = 3.0  # upper bound for anything the worker thread has to do


def make_clip(tag: int, new_frames: int, sequence: int = 0, length: int = 4) -> Clip:
    """A clip of `length` frames whose first frame's stamp carries `tag` (to identify the clip)."""
    frames = [Frame(np.zeros((2, 2, 3), np.uint8), tag * 1000 + i, "cam") for i in range(length)]
    return Clip(frames, new_frames, sequence)


def tag(clip: Clip) -> int:
    return clip.frames[0].stamp_ns // 1000



class GatedRun:
    """run_clip that records each clip and its thread, and blocks on clips in `gated` until released."""

    def __init__(self, gated=()):
        self.gated = set(gated)
        self.started = {t: threading.Event() for t in self.gated}
        self.gates = {t: threading.Event() for t in self.gated}
        self.ran: list[tuple[int, int, str]] = []  # (tag, new_frames, thread name)
        self.done = threading.Event()

    def __call__(self, clip: Clip) -> None:
        t = tag(clip)
        if t in self.gated:
            self.started[t].set()
            assert self.gates[t].wait(WAIT_S), "gate never released"
        self.ran.append((t, clip.new_frames, threading.current_thread().name))

    def release_all(self) -> None:
        for gate in self.gates.values():
            gate.set()


@pytest.fixture
def make_worker():
    workers = []

    def make(run_clip, on_error=None, **kw):
        errors = []
        # Room for two waiting clips unless a test says otherwise: the queue's mechanics (burst,
        # supersede, pending counts) need a queue; the default of one is tested where named.
        w = InferenceWorker(run_clip, on_error or errors.append, **{"capacity": 2, **kw})
        w.errors = errors
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.stop(timeout_s=WAIT_S)


# -- InferenceWorker ----------------------------------------------------------------------------------

def test_clips_run_in_order_on_the_worker_thread(make_worker):
    run = GatedRun()
    worker = make_worker(run)
    worker.start()
    for t in range(1, 4):
        worker.submit(make_clip(t, 2))
        assert wait_for(lambda t=t: len(run.ran) == t)  # one at a time: never superseded
    assert [r[0] for r in run.ran] == [1, 2, 3]
    assert {r[2] for r in run.ran} == {"fourds_inference"}
    assert threading.current_thread().name != "fourds_inference"
    assert worker.counts["clips_dropped"] == 0 and worker.counts["frames_dropped"] == 0
    assert worker.errors == []


def test_burst_queued_in_order_while_a_clip_runs(make_worker):
    """Two clips fit in the queue behind the running one and run after it, in order."""
    run = GatedRun(gated={1})
    worker = make_worker(run)
    worker.start()
    worker.submit(make_clip(1, 4))
    assert run.started[1].wait(WAIT_S)
    worker.submit(make_clip(2, 2))
    worker.submit(make_clip(3, 2))
    assert run.ran == []
    run.release_all()
    assert wait_for(lambda: len(run.ran) == 3)
    assert [(r[0], r[1]) for r in run.ran] == [(1, 4), (2, 2), (3, 2)]
    assert worker.counts["clips_dropped"] == 0


def test_clip_waiting_says_when_a_newer_clip_waits_behind_the_running_one(make_worker):
    """What the pipeline reads (pipeline.behind) to skip its optional work: false while clip 1 runs
    alone, true once clip 2 is queued behind it, false again once the queue has drained."""
    seen = []
    run = GatedRun(gated={1})
    worker = make_worker(lambda clip: (seen.append(worker.clip_waiting()), run(clip)))
    worker.start()
    worker.submit(make_clip(1, 4))
    assert run.started[1].wait(WAIT_S)
    assert worker.clip_waiting() is False and seen == [False]
    worker.submit(make_clip(2, 2))
    assert worker.clip_waiting() is True
    run.release_all()
    assert wait_for(lambda: len(run.ran) == 2)
    assert seen == [False, False] and worker.clip_waiting() is False  # clip 2 ran with none behind it


def test_by_default_a_frame_waits_behind_at_most_one_clip():
    """max_waiting_clips' default (1): while clip 1 runs, each newer clip replaces the waiting one, so
    the clip run next is always the newest (latency bounded by one clip in inference + one waiting)."""
    run = GatedRun(gated={1})
    worker = InferenceWorker(run, lambda exc: None)
    worker.start()
    try:
        worker.submit(make_clip(1, 4))
        assert run.started[1].wait(WAIT_S)
        for t in (2, 3, 4):
            worker.submit(make_clip(t, 3))  # 4 frames, 3 new: carries over 1 of the waiting clip's
            assert len(worker.queue) == 1 and tag(worker.queue.clips[0]) == t
        # clip 3 drops 2 of clip 2's 3 new frames (and describes 3 + 1); clip 4 drops 3 of those 4
        assert (worker.counts["clips_dropped"], worker.counts["frames_dropped"]) == (2, 5)
        run.release_all()
        assert wait_for(lambda: len(run.ran) == 2)
        assert [(t, n) for t, n, _ in run.ran] == [(1, 4), (4, 4)]
    finally:
        worker.stop(timeout_s=WAIT_S)


def test_overload_supersedes_the_newest_waiting_clip(make_worker):
    """Clip 1 runs (blocked), 2 and 3 wait; 4 then 5 replace the newest waiting clip. The counts follow
    clip_buffer.supersede: a newer clip describes the waiting clip's new frames still in its window."""
    counts = Counter()
    run = GatedRun(gated={1})
    worker = make_worker(run, counts=counts)
    worker.start()
    c1, c2, c3 = make_clip(1, 4), make_clip(2, 2), make_clip(3, 2)
    c4 = make_clip(4, 3)  # 4 frames, 3 new: covers 1 of clip 3's 2 new frames -> 1 lost
    c5 = make_clip(5, 2, sequence=1)  # after a reset: shares nothing -> all 4 waiting new frames lost
    worker.submit(c1)
    assert run.started[1].wait(WAIT_S)
    worker.submit(c2)
    worker.submit(c3)
    assert counts["clips_dropped"] == 0
    worker.submit(c4)
    merged, lost4 = supersede(c3, c4)
    assert (merged.new_frames, lost4) == (4, 1)
    assert (counts["clips_dropped"], counts["frames_dropped"]) == (1, 1)
    worker.submit(c5)
    final, lost5 = supersede(merged, c5)
    assert (final.new_frames, lost5) == (2, 4)
    assert (counts["clips_dropped"], counts["frames_dropped"]) == (2, 5)
    assert worker.counts is counts  # the node's shared counters
    run.release_all()
    assert wait_for(lambda: len(run.ran) == 3)
    # clip 2 kept its place; clip 5 (as merged) ran last with its own new frames
    assert [(r[0], r[1]) for r in run.ran] == [(1, 4), (2, 2), (5, 2)]
    assert (counts["clips_dropped"], counts["frames_dropped"]) == (2, 5)


def test_supersede_in_the_same_sequence_loses_nothing(make_worker):
    """hop 2, length 4: each newer clip's window holds the waiting clip's 2 new frames."""
    run = GatedRun(gated={1})
    worker = make_worker(run)
    worker.start()
    worker.submit(make_clip(1, 4))
    assert run.started[1].wait(WAIT_S)
    for t in (2, 3, 4):
        worker.submit(make_clip(t, 2))
    assert worker.counts["clips_dropped"] == 1 and worker.counts["frames_dropped"] == 0
    assert worker.pending_frames() == 4 + 2 + 4  # running + clip 2 + clip 4 describing 3's frames too
    run.release_all()
    assert wait_for(lambda: len(run.ran) == 3)
    assert [(r[0], r[1]) for r in run.ran] == [(1, 4), (2, 2), (4, 4)]


def test_pending_frames_counts_queued_and_in_inference(make_worker):
    run = GatedRun(gated={1, 2})
    worker = make_worker(run)
    assert worker.pending_frames() == 0
    worker.start()
    worker.submit(make_clip(1, 4))
    assert run.started[1].wait(WAIT_S)
    assert worker.pending_frames() == 4  # in inference
    worker.submit(make_clip(2, 2))
    worker.submit(make_clip(3, 3))
    assert worker.pending_frames() == 4 + 2 + 3
    run.gates[1].set()
    assert run.started[2].wait(WAIT_S)
    assert wait_for(lambda: worker.pending_frames() == 2 + 3)  # clip 1 is out
    run.gates[2].set()
    assert wait_for(lambda: len(run.ran) == 3)
    assert wait_for(lambda: worker.pending_frames() == 0)
    assert worker.idle()


def test_the_flush_under_a_node_clock_that_never_moves_is_due_on_steady_time(make_worker):
    """use_sim_time before any /clock: the node's clock reads 0 at every frame and every flush check. The worker's
    clock tracker takes its start for a change (moved_at), so the flush falls due on steady time: without it, the
    flush timer raised TypeError (None >= float) and frames after the last clip waited for good."""
    worker = make_worker(GatedRun())
    worker.touch(0)
    start = worker.last_activity
    assert not worker.flush_due(1.0, now=start + 0.5, node_ns=0)
    assert worker.flush_due(1.0, now=start + 1.05, node_ns=0)


def test_flush_due_only_when_idle_for_flush_after_s(make_worker):
    run = GatedRun(gated={1})
    worker = make_worker(run)
    worker.start()
    assert not worker.flush_due(0.0, now=time.monotonic() + 100)  # 0: never
    worker.submit(make_clip(1, 4))
    assert run.started[1].wait(WAIT_S)
    # a clip in inference: never due, however long the input has been idle
    assert not worker.flush_due(0.5, now=time.monotonic() + 100)
    before = worker.last_activity
    run.release_all()
    # the finished clip restarts the idle clock (touch after the clip)
    assert wait_for(lambda: worker.idle() and worker.last_activity > before)
    last = worker.last_activity
    assert time.monotonic() - last < 1.0
    assert not worker.flush_due(0.5, now=last + 0.49)
    assert worker.flush_due(0.5, now=last + 0.5)
    assert worker.flush_due(0.5, now=last + 10)
    worker.touch()  # input arrived
    assert worker.last_activity >= last
    assert not worker.flush_due(0.5, now=worker.last_activity + 0.1)
    time.sleep(0.06)
    assert worker.flush_due(0.05)  # real clock


def test_flush_waits_for_a_slow_node_clock_and_not_for_a_stopped_one(make_worker):
    """Under use_sim_time with /clock at 1/20 of real time (`ros2 bag play --rate 0.05`, a simulator at a real-time
    factor of 0.05) a 10 Hz camera's frames come 2 s apart in steady time, 0.1 s on the node's clock: at
    flush_after_s 1 every frame was flushed as a clip of its own. Due once the node's clock has passed flush_after_s
    since the last input too, or stood still for flush_after_s of steady time (a bag that ended, a paused /clock)."""
    worker = make_worker(GatedRun())  # not started: nothing in inference
    sim = 100 * 10**9
    for _ in range(3):  # a frame every 2 s; the flush timer reads the node's clock every 0.1 s, 5 ms of sim time
        worker.touch(sim)
        start = worker.last_activity
        for k in range(1, 20):
            assert not worker.flush_due(1.0, now=start + k * 0.1, node_ns=sim + k * 5 * MS), k
        sim += 100 * MS
    worker.touch(sim)  # the last frame; then the clock stops with it
    start = worker.last_activity
    assert not worker.flush_due(1.0, now=start + 0.5, node_ns=sim)
    assert worker.flush_due(1.0, now=start + 1.05, node_ns=sim)  # stood still 1 s: the bag ended
    worker.touch(sim)  # the clock runs on (a simulator whose camera stopped): due once it passed 1 s too
    start = worker.last_activity
    assert not worker.flush_due(1.0, now=start + 5.0, node_ns=sim + 900 * MS)
    assert worker.flush_due(1.0, now=start + 5.1, node_ns=sim + 1000 * MS)
    worker.touch(sim)  # a live system clock passes with the steady one
    start = worker.last_activity
    assert not worker.flush_due(1.0, now=start + 0.9, node_ns=sim + 900 * MS)
    assert worker.flush_due(1.0, now=start + 1.05, node_ns=sim + 1050 * MS)


def test_flush_not_due_while_a_clip_waits(make_worker):
    worker = make_worker(GatedRun())  # not started: the clip stays queued
    worker.submit(make_clip(1, 2))
    assert not worker.idle()
    assert not worker.flush_due(0.01, now=time.monotonic() + 100)


def test_run_clip_exception_goes_to_on_error_and_the_worker_continues(make_worker):
    ran = []
    boom = RuntimeError("engine exploded")

    def run_clip(clip):
        if tag(clip) == 1:
            raise boom
        ran.append(tag(clip))

    errors = []
    worker = make_worker(run_clip, on_error=errors.append)
    worker.start()
    worker.submit(make_clip(1, 4))
    assert wait_for(lambda: errors == [boom])
    worker.submit(make_clip(2, 2))
    assert wait_for(lambda: ran == [2])
    assert errors == [boom]
    assert worker.thread.is_alive()
    assert wait_for(worker.idle) and worker.pending_frames() == 0


def test_discard_returns_the_frames_of_queued_clips(make_worker):
    worker = make_worker(GatedRun())  # not started
    worker.submit(make_clip(1, 4))
    worker.submit(make_clip(2, 2))
    assert worker.pending_frames() == 6
    assert worker.discard() == 6
    assert len(worker.queue) == 0 and worker.pending_frames() == 0 and worker.idle()
    assert worker.discard() == 0


def test_discard_after_supersede_does_not_count_lost_frames_twice(make_worker):
    worker = make_worker(GatedRun(), capacity=1)
    worker.submit(make_clip(1, 4))
    worker.submit(make_clip(2, 2, sequence=1))  # supersedes clip 1: its 4 frames are dropped
    assert worker.counts["frames_dropped"] == 4
    assert worker.discard() == 2


def test_stop_joins_the_thread(make_worker):
    worker = make_worker(GatedRun())
    worker.start()
    thread = worker.thread
    assert thread.is_alive()
    t0 = time.monotonic()
    worker.stop(timeout_s=WAIT_S)
    assert not thread.is_alive()
    assert worker.thread is None and not worker.running
    assert time.monotonic() - t0 < 1.5  # woken by notify, not by waiting out a timeout


def running_with_one_waiting(make_worker):
    """A started worker running clip 1 (4 new frames, held until released) with clip 2 (2) waiting."""
    run = GatedRun(gated={1})
    worker = make_worker(run)
    worker.start()
    worker.submit(make_clip(1, 4))
    assert run.started[1].wait(WAIT_S)
    worker.submit(make_clip(2, 2))
    return run, worker


def test_stop_finishes_the_running_clip_and_the_waiting_ones(make_worker):
    """Stop left the clips waiting behind the running one to be discarded: deactivate queues a clip of the
    frames after the last one, and cleanup right after it (as nav2's lifecycle manager sends them) discarded
    it with time left. Now they run, unless the node was signalled (its outputs could not be published);
    where stop gives up on the running clip, none is taken after it and discard counts them all."""
    run, worker = running_with_one_waiting(make_worker)
    thread = worker.thread
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout_s": WAIT_S})
    stopper.start()
    assert wait_for(lambda: not worker.running)
    run.release_all()
    stopper.join(WAIT_S)
    assert not stopper.is_alive() and not thread.is_alive()
    assert [r[0] for r in run.ran] == [1, 2]  # the waiting clip too
    assert worker.pending_frames() == 0 and worker.discard() == 0

    run, worker = running_with_one_waiting(make_worker)  # at a signal: ROS is down, nothing could be published
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout_s": WAIT_S, "finish_waiting": False})
    stopper.start()
    assert wait_for(lambda: not worker.running)
    run.release_all()
    stopper.join(WAIT_S)
    assert [r[0] for r in run.ran] == [1] and worker.discard() == 2  # the waiting clip left for discard

    run, worker = running_with_one_waiting(make_worker)
    assert worker.stop(timeout_s=0.2) is False  # the running clip outlasts the release's wait
    run.release_all()
    assert worker.loop_ended.wait(WAIT_S)
    assert [r[0] for r in run.ran] == [1]  # nothing taken after a clip given up on
    assert worker.discard() == 4 + 2  # the abandoned clip's frames and the waiting one's


def test_a_stop_interrupted_by_ctrl_c_waits_for_the_running_clip_when_called_again(make_worker):
    """A second Ctrl-C while the node's release waits for the running clip, and the release tried again:
    a KeyboardInterrupt inside Thread.join made CPython mark the still running thread stopped, so the
    second stop() returned at once and the node destroyed its publishers under the clip (exit code -2,
    DDS shared memory left in /dev/shm). A real SIGINT, as the node gets it."""
    finished, release = threading.Event(), threading.Event()

    def slow_clip(clip: Clip) -> None:
        release.wait(60)  # runs until the test lets it end: the SIGINT lands in stop however late it fires
        finished.set()

    worker = make_worker(slow_clip)
    worker.start()
    worker.submit(make_clip(1, 4))
    assert wait_for(lambda: worker.pending_frames() == 4 and not worker.clip_waiting())  # in inference
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        worker.stop(timeout_s=60)
    assert not finished.is_set()
    threading.Timer(0.3, release.set).start()
    worker.stop(timeout_s=WAIT_S)  # as the node's release does after the interrupt
    assert finished.is_set(), "the second stop returned while the clip still ran"
    assert worker.loop_ended.is_set()


def test_a_stop_that_times_out_abandons_the_running_clip_and_discard_counts_its_frames(make_worker):
    """cleanup with a clip longer than it waits: the release goes on and counts the running clip's frames
    with the queued ones as discarded; what the clip does later is counted nowhere (the next configuration
    reported its late failure as its own)."""
    gate = threading.Event()

    def late_clip(clip: Clip) -> None:
        assert gate.wait(WAIT_S)
        worker.settle(lambda: worker.counts.update(frames_out=clip.new_frames))
        raise RuntimeError("publisher destroyed")

    worker = make_worker(late_clip)
    worker.start()
    worker.submit(make_clip(1, 4))
    assert wait_for(lambda: worker.pending_frames() == 4 and not worker.clip_waiting())  # in inference
    worker.submit(make_clip(2, 2))
    assert worker.stop(timeout_s=0.2) is False
    assert worker.discard() == 6  # 4 in inference, 2 queued
    assert worker.stop(timeout_s=0.2) is False  # the release tried again (a second Ctrl-C)
    assert worker.discard() == 0  # the running clip's frames are counted once
    gate.set()
    assert worker.loop_ended.wait(WAIT_S)
    assert worker.counts["frames_out"] == 0 and worker.errors == []
    assert worker.discard() == 0
    worker.start()  # started again, its clips count again
    assert not worker.abandoned
    assert worker.stop(timeout_s=WAIT_S)


# -- NodeHealth -----------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def monotonic(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    """time.monotonic as health.py sees it (the global time module is left alone)."""
    fake = FakeClock()
    monkeypatch.setattr(health_module, "time", SimpleNamespace(monotonic=fake.monotonic, time_ns=time.time_ns))
    return fake


def test_warn_counts_every_call_and_logs_each_kind_at_most_every_log_every_s(clock):
    logged = []
    health = NodeHealth(logged.append, log_every_s=10.0)
    for _ in range(3):
        health.warn("size", "bad frame")
    assert health.errors["size"] == 3
    assert logged == ["[size] bad frame (seen 1x)"]
    health.warn("camera_info", "empty K")  # another kind: its own clock
    assert len(logged) == 2 and logged[1].startswith("[camera_info]")
    clock.t += 9.9
    health.warn("size", "bad frame")
    assert health.errors["size"] == 4 and len(logged) == 2
    clock.t += 0.1
    health.warn("size", "bad frame")
    assert logged[-1] == "[size] bad frame (seen 5x)" and len(logged) == 3
    health.warn("size", "bad frame")
    assert len(logged) == 3 and health.errors == Counter({"size": 6, "camera_info": 1})


def state(**kw) -> NodeState:
    return NodeState("active", **kw)


def test_level_error_on_failure():
    health = NodeHealth(lambda m: None)
    assert health.level(state()) == (OK, "active")
    health.warn("size", "x")  # a failure outranks warnings
    assert health.level(NodeState("unconfigured", failure="configure failed: bad model")) == \
        (ERROR, "configure failed: bad model")


def test_level_warn_on_any_error_kind_and_on_more_than_5_percent_dropped():
    health = NodeHealth(lambda m: None)
    health.warn("unsupported_encoding", "x")
    level, message = health.level(state())
    assert level == WARN and "unsupported_encoding: 1" in message
    health2 = NodeHealth(lambda m: None)
    health2.counts.update({"frames_in": 100, "frames_dropped": 5})  # 5 of 100: counted, not a fault
    assert health2.level(state())[0] == OK
    health2.counts["frames_failed"] = 1  # a failed clip's frames count as dropped too
    level, message = health2.level(state())
    assert level == WARN and "dropped 6 of 100 frames" in message
    health3 = NodeHealth(lambda m: None)
    health3.counts["frames_dropped"] = 3  # before any frame counted in: nothing to dilute it
    assert health3.level(state())[0] == WARN


def test_bad_input_warns_while_recent_and_stays_counted(clock):
    """A buffer reset after a camera pause, or a bad frame, is WARN for BAD_INPUT_WARN_S after
    it was last seen; the count stays on /diagnostics for good."""
    health = NodeHealth(lambda m: None)
    health.warn("reset_gap", "clip buffer reset (gap)")
    assert health.level(state()) == (WARN, "active; reset_gap: 1")
    clock.t += BAD_INPUT_WARN_S - 1
    health.warn("bad_encoding", "x")
    assert health.level(state())[0] == WARN
    clock.t += 2  # the reset is old now; the bad frame is not
    assert health.level(state()) == (WARN, "active; bad_encoding: 1")
    clock.t += BAD_INPUT_WARN_S
    assert health.level(state()) == (OK, "active")
    values = health.report(state())[2]
    assert values["errors_reset_gap"] == "1" and values["errors_bad_encoding"] == "1"
    health.warn("reset_gap", "again")
    assert health.level(state()) == (WARN, "active; reset_gap: 2")


@pytest.mark.parametrize("key", ["frames_lost_in_transport", "frames_missing_by_stamp"])
def test_level_warn_when_more_than_5_percent_lost_before_the_callback(key):
    health = NodeHealth(lambda m: None)
    health.counts.update({"frames_in": 96, key: 4})  # 4 of 100 sent
    assert health.level(state())[0] == OK
    health.counts["frames_in"], health.counts[key] = 94, 6  # 6 of 100 sent
    level, message = health.level(state())
    assert level == WARN and "lost 6 of 100 frames" in message
    health.counts["frames_in"] = 114  # 6 of 120: exactly 5 % is not more than 5 %
    assert health.level(state())[0] == OK


def test_a_message_lost_event_counts_every_frame_it_reports():
    """rclpy's message-lost event reports a burst of best-effort frames as one event: each frame counts (a
    count of events read 20 frames lost at once as 1, and the node stayed OK at 17 % lost)."""
    health = NodeHealth(lambda m: None)
    health.counts["frames_in"] += 100
    health.frames_lost(SimpleNamespace(total_count_change=20, total_count=20))
    assert health.counts["frames_lost_in_transport"] == 20
    level, message = health.level(state())
    assert level == WARN and "lost 20 of 120 frames" in message, message


def test_level_warn_when_latency_p95_over_latency_warn_ms():
    now = [10**12]
    health = NodeHealth(lambda m: None, now_ns=lambda: now[0])
    health.latency_warn_ms = 100.0
    health.record_clip([now[0] - 50 * MS - i for i in range(20)], 0.01, 0.02)
    assert health.level(state())[0] == OK
    assert health.counts["frames_out"] == 20
    values = health.report(state())[2]
    assert abs(float(values["latency_p95_ms"]) - 50.0) < 0.01
    health.record_clip([now[0] - 500 * MS] * 4, 0.01, 0.02)  # 4 of 24 over: p95 over the limit
    level, message = health.level(state())
    assert level == WARN and "latency p95" in message
    health.latency_warn_ms = 0.0  # off
    assert health.level(state())[0] == OK


def test_stall_warn_while_input_arrives_but_nothing_is_described(clock):
    health = NodeHealth(lambda m: None, now_ns=lambda: 10**12)
    health.stall_warn_s = 5.0
    assert health.level(state())[0] == OK
    clock.t += 3.0
    health.frame_received(10**12)
    assert health.level(state())[0] == OK  # 3 s < stall_warn_s
    clock.t += 3.0
    health.frame_received(10**12 + HZ30)
    level, message = health.level(state())
    assert level == WARN and "no frame described" in message
    health.record_clip([10**12, 10**12 + HZ30], 0.01, 0.02)
    assert health.level(state())[0] == OK
    clock.t += 4.0
    health.frame_received(10**12 + 2 * HZ30)
    assert health.level(state())[0] == OK  # 4 s since the last output
    clock.t += 2.0
    health.frame_received(10**12 + 3 * HZ30)
    assert health.level(state())[0] == WARN  # 6 s
    clock.t += 30.0  # input stopped too: not this stall, and a camera with no publisher left is its own WARN
    level, message = health.level(state())
    assert level == WARN and "no frame described" not in message, message
    assert "no publisher on the image topic and no frame for 30 s" in message, message
    health.stall_warn_s = 0.0
    health.frame_received(10**12 + 4 * HZ30)
    assert health.level(state())[0] == OK  # off


def test_stall_clock_starts_when_input_restarts(clock):
    """A camera paused longer than stall_warn_s, or a node activated that long after it was
    constructed: the first frames are not a stall (its clock ran from the last output, or from the
    construction, and WARNed on the first frame). stall_warn_s of steady input with no output is."""
    health = NodeHealth(lambda m: None, now_ns=lambda: 10**12)
    health.stall_warn_s = 5.0
    clock.t += 60.0  # configured and activated a minute after construction
    stamp = 10**12 - 10 * 10**9  # behind the node's (fixed) clock to the last: stamps ahead of it WARN
    for _ in range(30):  # 1 s of input, no clip yet
        health.frame_received(stamp)
        assert health.level(state())[0] == OK
        clock.t, stamp = clock.t + 1 / 30, stamp + HZ30
    health.record_clip([stamp - HZ30], 0.01, 0.02)
    clock.t += 60.0  # the camera paused a minute
    for _ in range(150):  # 5 s of input back: nothing described yet, still within stall_warn_s
        health.frame_received(stamp)
        assert health.level(state())[0] == OK
        clock.t, stamp = clock.t + 1 / 30, stamp + HZ30
    clock.t += 0.2
    health.frame_received(stamp)
    level, message = health.level(state())  # 5.2 s of input, no output: a stall
    assert level == WARN and "no frame described" in message


def test_a_slow_sim_clock_is_no_stall_and_a_stall_on_it_still_warns(clock):
    """A 10 Hz camera on a /clock at 0.15x real time (a bag at --rate 0.15, a simulator at a real-time factor of
    0.15): a frame every 0.67 s of steady time, a clip every 4 frames (2.7 s of steady time, 0.4 s of the node's
    clock) keeps up, and read WARN "no frame described for 2 s while input arrives" at stall_warn_s 2. Frames that
    stop being described for stall_warn_s of the node's clock (and of steady time) still WARN."""
    sim = [100 * 10**9]
    health = NodeHealth(lambda m: None, now_ns=lambda: sim[0])
    health.stall_warn_s = 2.0
    health.activated()
    stamps = []
    for i in range(16):
        clock.t += 0.667
        sim[0] += 100 * MS
        health.frame_received(sim[0])
        stamps.append(sim[0])
        if i % 4 == 3:
            health.record_clip(stamps[-4:], 0.01, 0.01)
        level, message = health.level(state(image_publishers=1))
        assert level == OK, (i, message)
    for i in range(21):  # inference stuck: 2.1 s of the node's clock, 14 s of steady time
        clock.t += 0.667
        sim[0] += 100 * MS
        health.frame_received(sim[0])
        level, message = health.level(state(image_publishers=1))
        assert level == OK or i == 20, (i, message)
    assert level == WARN and "no frame described for 14 s while input arrives" in message, message


def test_image_publishers_that_deliver_no_frame_warn_after_the_qos_event_is_old(clock):
    """An incompatible QoS is reported once, at discovery: its bad-input WARN ended after
    BAD_INPUT_WARN_S and /diagnostics read OK while no frame ever arrived. Active with image
    publishers and no frame for stall_warn_s (since the activation, or the last frame) is WARN,
    naming the QoS when it was seen; frames flowing make it OK."""
    health = NodeHealth(lambda m: None, now_ns=lambda: 10**12)
    health.stall_warn_s = 5.0
    health.warn("incompatible_qos", "the image publisher's QoS does not match")
    clock.t += BAD_INPUT_WARN_S + 1
    level, message = health.level(state(image_publishers=1))
    assert level == WARN and "1 image publisher(s) but no frame arrived for 31 s" in message, message
    assert "QoS is incompatible" in message and health.report(state(image_publishers=1))[2]["frames_in"] == "0"
    level, message = health.level(state())  # no publisher: a camera driver gone, or the topic remapped wrong
    assert level == WARN and "no publisher on the image topic and no frame for 31 s" in message, message
    assert health.level(NodeState("inactive", image_publishers=1))[0] == OK  # no subscription
    stamp = 10**12 - 2 * 10**9  # behind the node's (fixed) clock: stamps ahead of it WARN
    for _ in range(30):  # frames flow and are described
        health.frame_received(stamp)
        clock.t, stamp = clock.t + 1 / 30, stamp + HZ30
    health.record_clip([stamp - HZ30], 0.01, 0.02)
    assert health.level(state(image_publishers=1)) == (OK, "active")
    clock.t += 60.0  # deactivated a minute, activated again: timed from the activation, not the last frame
    health.activated()
    clock.t += 4.0
    assert health.level(state(image_publishers=1)) == (OK, "active")
    clock.t += 2.0
    assert "but no frame arrived for 6 s" in health.level(state(image_publishers=1))[1]


def test_dropped_and_lost_rules_judge_the_last_minute(clock):
    """WARN_FRACTION applies to the input of the last RECENT_S, not to lifetime totals: after 10 h
    healthy at 30 Hz, 50 % shed WARNs within a minute (it stayed OK for an hour), and an overload at
    start-up stops WARNing a minute after it ended. The reported counts stay totals."""
    health = NodeHealth(lambda m: None)
    health.counts.update(frames_in=30 * 36000, frames_out=30 * 36000)
    for _ in range(36000):  # 10 h healthy, reported at 1 Hz
        clock.t += 1.0
        assert health.level(state())[0] == OK
    for _ in range(30):  # then half of the input shed, for 30 s
        clock.t += 1.0
        health.counts["frames_in"] += 30
        health.counts["frames_out"] += 15
        health.counts["frames_dropped"] += 15
        level, message = health.level(state())
    assert level == WARN and "dropped 450 of 900 frames in the last 60 s" in message, message
    values = health.report(state())[2]
    assert values["frames_dropped"] == "450" and values["frames_in"] == str(30 * 36030)
    for key in ("frames_dropped", "frames_missing_by_stamp"):  # an overload at start-up, then healthy
        health = NodeHealth(lambda m: None)
        health.counts.update({"frames_in": 3000, "frames_out": 2000, key: 1000})
        assert health.level(state())[0] == WARN  # since the start before a minute has passed
        for _ in range(int(RECENT_S) + 1):
            clock.t += 1.0
            health.counts["frames_in"] += 30
            health.counts["frames_out"] += 30
            level, message = health.level(state())
        assert level == OK, message
        assert health.report(state())[2][key] == "1000"


def test_report_survives_keys_added_while_it_iterates():
    """warn, record_clip and the worker's counts run on the inference thread and add keys (a new
    error kind, stage or count) while report() iterates those dicts on the executor's: "dictionary
    changed size during iteration" killed the executor. The other thread's turn is taken here at a
    fixed point, whenever report() formats or tests one of these keys."""
    health = NodeHealth(lambda m: None, now_ns=lambda: 10**12)
    added = iter(range(10**6))

    def inference_thread():
        n = next(added)
        health.warn(f"kind{n}", "x")
        health.counts[f"reset_k{n}"] += 1
        health.record_clip([10**12], 0.01, 0.02, stage_s={f"stage{n}": 0.001})

    class Key(str):
        def __format__(self, spec):
            inference_thread()
            return super().__format__(spec)

        def startswith(self, *args):
            inference_thread()
            return super().startswith(*args)

    health.warn(Key("camera_blind"), "x")
    health.counts[Key("reset_gap")] += 1
    health.record_clip([10**12], 0.01, 0.02, stage_s={Key("pose"): 0.001})
    values = health.report(state())[2]
    assert values["errors_camera_blind"] == "1" and values["resets_gap"] == "1" and "pose_p50_ms" in values


def reference_state(source: str = "reference_odometry", used: int = 0, needed: int = 5, described: int = 0,
                    age: float = 0.1, seen: int = 0, longest_m: float = 0.0) -> NodeState:
    """PerceptionPipeline.status() with a reference for the metric scale (its metric_scale keys)."""
    metres_from = source if used >= needed else f"model ({source}: {used} of {needed} clips counted yet)"
    return state(pipeline_status={"metric_scale": 0.42 if used >= needed else 1.0, "metric_scale_clips_used": used,
                                  "metric_scale_clips_seen": seen, "metric_scale_clips_described": described,
                                  "metric_scale_min_clips": needed, "metric_scale_reference_age_s": age,
                                  "metres_from": metres_from, "metric_scale_source": source, "pose_gaps": 0,
                                  "metric_scale_longest_clip_m": longest_m, "metric_scale_min_distance_m": 0.05})


def test_warn_while_a_reference_scale_is_not_in_effect_after_the_clips_it_had_time_for():
    """metric_scale_source reference_odometry / reference_depth with the outputs still in the model's
    metres after REFERENCE_WARN_AFTER_CLIPS clips beyond those the reference needs: its topic remapped
    wrong (nothing heard), no clip through the gates (TUM: 0 of 12), or every reference depth refused.
    It was OK, with metres_from naming the reference. The model's own metres, or a factor: no WARN."""
    health = NodeHealth(lambda m: None)
    last = 5 + REFERENCE_WARN_AFTER_CLIPS - 1
    assert health.level(reference_state(described=last, age=float("nan"))) == (OK, "active")
    level, message = health.level(reference_state(described=last + 1, age=float("nan")))
    assert level == WARN and message == (f"active; metres from model (reference_odometry: 0 of 5 clips counted yet) "
                                         f"after {last + 1} clips (nothing received on reference_odom: is it "
                                         "remapped to the robot's odometry?)")
    level, message = health.level(reference_state(used=3, described=200, seen=190, longest_m=0.031))  # few count
    assert level == WARN and "3 of 5 clips counted yet" in message and "covered 190 of them" in message
    # what a standing or crawling robot's clips measured, against what one needs (it read as a stamp problem)
    assert "moved the camera at most 0.031 m in one, of the 0.05 m" in message and "standing" in message
    assert health.level(reference_state(used=5, described=200)) == (OK, "active")  # in effect
    level, message = health.level(reference_state("reference_depth", needed=1, described=1 + REFERENCE_WARN_AFTER_CLIPS))
    assert level == WARN and "reference_depth: 0 of 1" in message and "32FC1 depth in mm" in message
    assert health.level(reference_state("reference_depth", used=1, needed=1, described=200)) == (OK, "active")
    for status in ({"metres_from": "model", "pose_gaps": 0}, {"metric_scale": 0.4, "metres_from": "metric_scale_factor"}):
        assert health.level(state(pipeline_status=status)) == (OK, "active")
        values = health.report(state(pipeline_status=status))[2]
        assert not any(k.startswith("metric_scale_") for k in values), values


def test_a_reference_whose_every_message_is_refused_is_named_so_not_unheard_or_silent(clock):
    """Odometry arriving with an unset orientation (all zeros) is refused message by message: the hint
    blamed the remapping ("nothing received") and the silence rule called it silent. It now says the
    messages were refused, and refused messages are no silence (they WARN as bad input of their own)."""
    health = NodeHealth(lambda m: None, now_ns=lambda: 10**12)
    health.frame_received(10**12)
    for _ in range(280):
        health.warn("reference_odometry", "quaternion not unit: not used for the metric scale")
    level, message = health.level(reference_state(described=5 + REFERENCE_WARN_AFTER_CLIPS, age=float("nan")))
    assert level == WARN and "every reference_odometry message taken in so far refused (280)" in message
    assert "nothing received" not in message
    level, message = health.level(reference_state(used=5, described=100, age=3.0))  # in effect, then refused
    assert "silent" not in message
    clock.t += REFERENCE_SILENT_S["reference_odometry"] + 0.1  # the refusals stopped too: now it is silent
    health.frame_received(10**12)
    assert "silent" in health.level(reference_state(used=5, described=100, age=5.2))[1]


def test_warn_while_frames_arrive_and_the_reference_is_silent(clock):
    """The reference's publisher stops and the camera goes on: the last scale was held for good,
    silently. WARN once frames came more than REFERENCE_SILENT_S after its last sample (odometry 2 s,
    depth 5 s), listed until BAD_INPUT_WARN_S after the last frame; both stopping together is no
    silence, however long the inference backlog."""
    health = NodeHealth(lambda m: None, now_ns=lambda: 10**12)
    in_effect = {"used": 5, "described": 100}
    assert REFERENCE_SILENT_S == {"reference_odometry": 2.0, "reference_depth": 5.0}
    health.frame_received(10**12)
    assert health.level(reference_state(age=1.9, **in_effect)) == (OK, "active")
    level, message = health.level(reference_state(age=2.6, **in_effect))
    assert level == WARN and message == ("active; reference_odometry silent for 3 s, frames arriving 3 s after its "
                                         "last sample: metric_scale 0.42 held, no longer measured")
    assert health.level(reference_state("reference_depth", needed=1, age=4.0, **in_effect))[0] == OK
    assert health.level(reference_state("reference_depth", needed=1, age=5.5, **in_effect))[0] == WARN
    clock.t += 10.0  # no frame since: both stopped 0.5 s apart, the reference first
    assert health.level(reference_state(age=10.5, **in_effect)) == (OK, "active")
    assert health.level(reference_state(age=13.0, **in_effect))[0] == WARN  # frames came 3 s after its last
    clock.t += BAD_INPUT_WARN_S
    assert health.level(reference_state(age=43.0, **in_effect)) == (OK, "active")  # input stopped 40 s ago
    assert health.level(reference_state(age=float("nan"), **in_effect)) == (OK, "active")  # nothing heard yet


def balanced_health() -> tuple[NodeHealth, NodeState]:
    health = NodeHealth(lambda m: None)
    health.counts.update({"frames_in": 20, "frames_out": 9, "frames_rejected": 2, "frames_dropped": 1,
                          "frames_failed": 1, "frames_discarded_at_release": 1, "frames_ignored": 1,
                          "frames_reset": 1, "frames_out_of_order": 1, "reset_gap": 2, "reset_manual": 1})
    # the live pipeline: 1 more reset, 1 more out of order; 1 frame pending
    st = state(frames_pending=1, pipeline_status={"frames_reset": 1, "frames_out_of_order": 1,
                                                  "pose_gaps": 3, "tracks_live": 4})
    return health, st


def test_report_frames_unaccounted_is_zero_when_the_counts_balance():
    health, st = balanced_health()
    assert health.unaccounted(st) == 0
    level, message, values = health.report(st)
    assert values["frames_unaccounted"] == "0"
    assert values["frames_in"] == "20" and values["frames_out"] == "9" and values["frames_pending"] == "1"
    # the pipeline's totals: counts (released pipelines) + the live pipeline, not the live value alone
    assert values["frames_reset"] == "2" and values["frames_out_of_order"] == "2"
    assert values["pose_gaps"] == "3" and values["tracks_live"] == "4"  # nothing released yet: the live values
    assert values["resets"] == "3" and values["resets_gap"] == "2" and values["resets_manual"] == "1"
    assert all(isinstance(v, str) for v in values.values())
    assert level == WARN and "dropped 2 of 20 frames" in message  # 1 dropped + 1 failed: 10 %


def test_a_released_pipelines_totals_add_up_across_configures_and_gauges_do_not():
    """pose_gaps, clips_*_failed and the other pipeline counts began again at 0 after cleanup and configure,
    while /diagnostics says its counts are totals; frames_reset kept only the last released pipeline's.
    Now each released pipeline's totals are added; the live tracks and the reference's state are not."""
    health, st = balanced_health()
    for _ in range(2):  # two pipelines released, each with 1 reset, 3 gaps, 4 live tracks
        health.carry({"frames_reset": 1, "pose_gaps": 3, "tracks_live": 4, "clips_pose_failed": 2,
                      "metric_scale_clips_used": 5, "metric_scale": 1.2, "metres_from": "model"})
    st.pipeline_status["clips_pose_failed"] = 1
    values = health.report(st)[2]
    assert values["frames_reset"] == "4" and values["pose_gaps"] == "9"  # 1 + 2 released + 1 live; 2 x 3 + 3
    assert values["clips_pose_failed"] == "5" and values["tracks_live"] == "4"
    assert "metric_scale_clips_used" not in values and health.unaccounted(st) == -2  # 2 released resets, no frames


def test_report_frames_unaccounted_nonzero_when_a_frame_is_missing():
    health, st = balanced_health()
    health.counts["frames_in"] += 1  # a frame taken in that ended nowhere
    assert health.report(st)[2]["frames_unaccounted"] == "1"
    health, st = balanced_health()
    health.counts["frames_out"] += 1  # a frame counted out twice
    assert health.report(st)[2]["frames_unaccounted"] == "-1"
    health, st = balanced_health()
    st.pipeline_status = None  # the live pipeline's 2 frames are no longer counted
    assert health.report(st)[2]["frames_unaccounted"] == "2"


def test_report_values_without_pipeline_and_errors_keys():
    health = NodeHealth(lambda m: None)
    health.warn("size", "x")
    health.counts["frames_in"] = 1
    health.counts["frames_rejected"] = 1
    level, message, values = health.report(NodeState("inactive", has_camera_info=False))
    assert values["errors_size"] == "1" and values["frames_unaccounted"] == "0"
    assert values["camera_info"].startswith("no") and values["latency_p95_ms"] == "nan"
    assert level == WARN and message.startswith("inactive")


def test_report_gives_each_stage_of_the_clips_as_its_median():
    """record_clip's stage seconds (the engine, the pipeline's stages, the node's sending) are
    reported per stage as <name>_p50_ms over the recent clips; a stage no clip reported is absent."""
    health = NodeHealth(lambda m: None)
    for i, ms in enumerate((10.0, 30.0, 20.0)):
        health.record_clip([10**12 + i], 0.05, 0.09, stage_s={"engine": 0.05, "pose": ms / 1e3, "send": 0.004})
    _, _, values = health.report(NodeState("active"))
    assert values["pose_p50_ms"] == "20.00" and values["engine_p50_ms"] == "50.00" and values["send_p50_ms"] == "4.00"
    assert "refine_p50_ms" not in values
    health.record_clip([10**12 + 5], 0.05, 0.09)  # a caller that times no stage changes nothing
    assert health.report(NodeState("active"))[2]["pose_p50_ms"] == "20.00"


# -- StampGaps -------------------------------------------------------------------------------------------

def test_stamp_gaps_steady_30hz_counts_nothing():
    gaps = StampGaps()
    jitter = [0, 2 * MS, -1 * MS, 1 * MS, -2 * MS]
    assert sum(gaps.add(10**12 + i * HZ30 + jitter[i % 5]) for i in range(90)) == 0


def test_stamp_gaps_gap_of_3_intervals_counts_2_when_the_old_spacing_resumes():
    gaps = StampGaps()
    t = 10**12
    for i in range(10):
        assert gaps.add(t + i * HZ30) == 0
    t_last = t + 9 * HZ30
    assert gaps.add(t_last + 3 * HZ30) == 0  # a gap: loss or a new rate? the next frame says
    assert gaps.add(t_last + 4 * HZ30) == 2  # back to steady: 2 frames were lost
    assert gaps.add(t_last + 6 * HZ30) == 0
    assert gaps.add(t_last + 7 * HZ30) == 1  # the gap did not skew the median


def steady_stamp_gaps() -> tuple[StampGaps, int]:
    """StampGaps after ten frames at 30 Hz; -> (it, the last stamp)."""
    gaps = StampGaps()
    for i in range(10):
        gaps.add(10**12 + i * HZ30)
    return gaps, 10**12 + 9 * HZ30


def test_stamp_gaps_long_pause_is_not_loss():
    gaps, t_last = steady_stamp_gaps()
    assert gaps.add(t_last + 60 * HZ30) == 0
    assert gaps.add(t_last + 61 * HZ30) == 0


def test_stamp_gaps_out_of_order_stamps_count_nothing():
    gaps, t_last = steady_stamp_gaps()
    assert gaps.add(t_last + 2 * HZ30) == 0  # frame at +1 missing so far ...
    assert gaps.add(t_last + 1 * HZ30) == 0  # ... it arrived late: it fills the gap
    assert gaps.add(t_last - 5 * HZ30) == 0  # older than the newest
    assert gaps.add(t_last + 3 * HZ30) == 0  # relative to the newest stamp; nothing was lost
    assert gaps.add(t_last + 5 * HZ30) == 0
    assert gaps.add(t_last + 6 * HZ30) == 1  # a gap nothing filled is still loss


@pytest.mark.parametrize("slower", [2, 3])
def test_stamp_gaps_a_lower_camera_rate_is_not_loss(slower):
    """Auto-exposure halves a real camera's rate in low light: the repeated wider spacing is a new
    rate; loss at the new rate is counted in its intervals."""
    gaps, t = steady_stamp_gaps()
    missing = 0
    for _ in range(20):
        t += slower * HZ30
        missing += gaps.add(t)
    assert missing == 0
    t += 2 * slower * HZ30  # one frame lost at the new rate
    assert gaps.add(t) == 0
    assert gaps.add(t + slower * HZ30) == 1


def test_stamp_gaps_a_late_frame_is_jitter_and_a_lost_one_still_counts():
    """A frame stamped 0.6 interval late and the next on time (intervals 1.6, 0.4) lost nothing: the
    gap's closing frame was late (round(1.6) - 1 counted one). One frame lost counts 1, whether the
    frame after it is on time or late."""
    for late in (0.55, 0.6, 0.9):
        stamps = [10**12 + i * HZ30 for i in range(20)]
        stamps[10] += int(late * HZ30)
        gaps = StampGaps()
        assert sum(gaps.add(t) for t in stamps) == 0, late
    for late in (0.0, 0.3, 0.5, 0.6):
        stamps = [10**12 + i * HZ30 for i in range(20) if i != 10]
        stamps[10] += int(late * HZ30)  # frame 11, after the lost one
        gaps = StampGaps()
        assert sum(gaps.add(t) for t in stamps) == 1, late


def test_stamp_gaps_a_looped_bag_starts_a_new_timeline():
    """`ros2 bag play --loop` repeats the stamps: a step back further than OUT_OF_ORDER_NS starts a
    new timeline, as the clip buffer's time_backwards reset does (the newest stamp ever seen made
    every later loop "late" and no loss was counted again); a frame less late is still just late."""
    gaps = StampGaps()
    per_loop = [sum(gaps.add(10**12 + i * HZ30) for i in range(300) if i not in (50, 51)) for _ in range(3)]
    assert per_loop == [2, 2, 2]
    gaps, t_last = steady_stamp_gaps()
    assert gaps.add(t_last - OUT_OF_ORDER_NS) == 0  # late, not a new recording
    assert gaps.add(t_last + 2 * HZ30) == 0
    assert gaps.add(t_last + 3 * HZ30) == 1  # measured from the newest stamp still


def test_stamp_gaps_needs_a_few_intervals_before_counting():
    gaps = StampGaps()
    gaps.add(0)
    gaps.add(HZ30)
    assert gaps.add(4 * HZ30) == 0  # too few intervals for a median


def test_publication_sequence_gaps_count_frames_lost_per_publisher():
    """Reliable readers whose history overflowed raise no message-lost event; the writer's
    sequence numbers (rclpy MessageInfo) still show each lost frame, per publisher."""
    health = NodeHealth(lambda message: None)
    stamp = 1_000_000_000
    for i, (publisher, sequence) in enumerate([("a", 1), ("a", 2), ("b", 7), ("a", 5), ("b", 8), ("a", 6)]):
        health.frame_received(stamp + i * 33_000_000, publisher, sequence)
    assert health.counts["frames_missing_by_sequence"] == 2  # a's 3 and 4; b starts at 7 without loss
    health.frame_received(stamp + 10 * 33_000_000, None, None)  # a middleware without sequence numbers
    assert health.counts["frames_missing_by_sequence"] == 2


def test_sequence_numbers_are_kept_for_the_recent_publishers_only():
    """Each camera driver respawn is a new DDS writer: one entry each, for the whole activation (100,000
    respawns: 16.6 MB). The most recently seen are kept; the live camera's losses still count."""
    from fourds_ros.perception.health import SEQUENCE_PUBLISHERS_KEPT

    health = NodeHealth(lambda message: None)
    stamp = 1_000_000_000
    for respawn in range(1000):
        health.frame_received(stamp + respawn * 33_000_000, f"writer{respawn}", 1)
        health.frame_received(stamp + respawn * 33_000_000 + 1, "camera", 2 * respawn + 1)  # one lost each time
    assert len(health._sequences) == SEQUENCE_PUBLISHERS_KEPT == 16
    assert health.counts["frames_missing_by_sequence"] == 999


@pytest.mark.parametrize("inactive_frames", [300, 4])
def test_frames_the_camera_sent_while_the_node_was_inactive_are_not_lost(inactive_frames):
    """Deactivated, the node has no subscription and the camera goes on publishing: its sequence
    numbers and stamps jump by the frames sent meanwhile, which no subscription was there to lose.
    Kept across activations, 10 s inactive (300 frames) read as 300 "lost before the callback" and
    /diagnostics WARN; a short pause (4 frames) by stamp as well. A gap within one activation still counts."""
    health = NodeHealth(lambda message: None)
    t0 = time.time_ns() - 700 * HZ30  # sent before now, as a camera's (stamps ahead of the node's clock WARN)

    def frames(first: int, last: int) -> None:  # sequence numbers first..last of one publisher, at 30 Hz
        for i in range(first, last + 1):
            health.frame_received(t0 + i * HZ30, "camera", i)

    health.activated()
    frames(1, 300)
    health.activated()  # after a deactivation, while the camera published on
    first = 301 + inactive_frames
    frames(first, first + 29)
    assert (health.counts["frames_missing_by_sequence"], health.counts["frames_missing_by_stamp"]) == (0, 0)
    assert health.level(state(image_publishers=1)) == (OK, "active")
    frames(first + 33, first + 50)  # 3 frames lost while subscribed
    assert (health.counts["frames_missing_by_sequence"], health.counts["frames_missing_by_stamp"]) == (3, 3)


def test_latency_and_queue_rules_judge_only_input_of_the_last_recent_s(clock):
    """The latency and queue windows keep their last samples however old: a slow stretch just before
    the camera stopped (or the node was deactivated) kept /diagnostics WARN for good, while the
    dropped and lost rules let go after RECENT_S. Judged while frames are described (received, for
    the queue) within RECENT_S; the values stay reported; slow frames again WARN again."""
    node_ns = [10**15]
    health = NodeHealth(lambda message: None, now_ns=lambda: node_ns[0])
    # No stall rule: a camera stopped for a minute WARNs on its own (no publisher on the image topic).
    health.set_limits(SimpleNamespace(latency_warn_ms=1000.0, queue_warn_ms=100.0, stall_warn_s=0.0))
    health.activated()

    def clips(n: int, queue_ms: int = 300, out_ms: int = 1500) -> None:
        """n clips of 7 frames, each queue_ms in the subscription queue, each clip out out_ms after its
        newest frame (by default slow on both)."""
        for _ in range(n):
            stamps = [node_ns[0] + i * HZ30 for i in range(7)]
            for stamp in stamps:
                node_ns[0], clock.t = stamp, clock.t + HZ30 / 1e9
                health.frame_received(stamp, received_ns=time.time_ns() - queue_ms * MS)
            node_ns[0] = stamps[-1] + out_ms * MS
            health.record_clip(stamps, 0.1, 0.1)

    clips(10)
    level, message = health.level(state())
    assert level == WARN and "latency p95" in message and "in the subscription queue" in message, message
    clock.t += RECENT_S - 1  # the camera stopped: still the last minute's input
    node_ns[0] += int((RECENT_S - 1) * 1e9)
    assert health.level(state())[0] == WARN
    clock.t += 1.0
    node_ns[0] += 10**9
    assert health.level(state()) == (OK, "active")
    assert health.level(NodeState("inactive")) == (OK, "inactive")
    values = health.report(state())[2]
    assert float(values["latency_p95_ms"]) > 1000 and float(values["input_queue_p95_ms"]) > 100  # still reported
    clips(1)
    level, message = health.level(state())
    assert level == WARN and "latency p95" in message and "in the subscription queue" in message, message
    # A pause (deactivated 10 minutes), then fast frames: judged on them, not on the stretch before
    # the pause, which the windows still hold (the first clip back read WARN on it).
    clock.t += 600.0
    node_ns[0] += 600 * 10**9
    health.activated()
    clips(1, queue_ms=5, out_ms=50)
    assert health.level(state()) == (OK, "active")


def test_time_in_the_subscription_queue_is_reported_from_the_middlewares_reception_time():
    """A frame the middleware received 80 ms before its callback ran waited 80 ms in the node's own
    queue (an executor thread that falls behind), whatever the camera's stamp says; frames from a
    middleware without reception times add nothing."""
    import time

    health = NodeHealth(lambda message: None)
    assert health.report(state())[2]["input_queue_p50_ms"] == "nan"
    for i in range(5):
        health.frame_received(10**12 + i * HZ30, "a", i + 1, received_ns=time.time_ns() - 80 * MS)
    health.frame_received(10**12 + 5 * HZ30, "a", 6, received_ns=None)
    values = health.report(state())[2]
    assert len(health.queue_ms) == 5
    assert float(values["input_queue_p50_ms"]) == pytest.approx(80.0, abs=20.0)
    assert float(values["input_queue_p95_ms"]) >= float(values["input_queue_p50_ms"])


def test_level_warn_when_frames_wait_in_the_subscription_queue_longer_than_queue_warn_ms():
    """Frames that waited in the node's own queue past queue_warn_ms (p95) turn the level WARN, and the
    message names the remedy for the Fast DDS cause (session 33's soak); the limits come from the
    settings, as the node sets them at configure."""
    import time

    from fourds_ros.perception.settings import DiagnosticsSettings

    health = NodeHealth(lambda message: None)
    health.set_limits(DiagnosticsSettings(queue_warn_ms=100.0))
    assert (health.latency_warn_ms, health.queue_warn_ms, health.stall_warn_s) == (1000.0, 100.0, 5.0)
    t0 = time.time_ns() - 30 * HZ30  # stamps on the node's clock (latency, not another clock), not ahead of it
    for i in range(20):  # 3 ms in the queue: a reader that keeps up
        health.frame_received(t0 + i * HZ30, "a", i + 1, received_ns=time.time_ns() - 3 * MS)
    assert health.level(state())[0] == OK
    for i in range(20, 30):  # a third of the window waited 300 ms: p95 far over the limit
        health.frame_received(t0 + i * HZ30, "a", i + 1, received_ns=time.time_ns() - 300 * MS)
    level, message = health.level(state())
    assert level == WARN and "in the subscription queue > 100" in message
    assert "config/fastdds_large_frames.xml" in message
    health.set_limits(DiagnosticsSettings(queue_warn_ms=0.0))  # off
    assert health.level(state())[0] == OK


def test_partly_blind_frames_warn_with_their_count_and_the_remedy():
    """A clip with frames that see nothing on a part of the view: WARN of kind view_partly_blind,
    logged once with what to do; a clip without any adds nothing."""
    logs = []
    health = NodeHealth(logs.append, now_ns=lambda: 10**12)
    health.record_clip([10**12, 10**12 + HZ30], 0.01, 0.02)
    assert health.level(state())[0] == OK
    health.record_clip([10**12, 10**12 + HZ30], 0.01, 0.02, partly_blind=2)
    level, message = health.level(state())
    assert level == WARN and "view_partly_blind" in message and health.errors["view_partly_blind"] == 1
    assert len(logs) == 1 and "2 of 2 frames" in logs[0] and "exclude_boxes" in logs[0]


def test_stamps_off_the_node_clock_are_counted_and_kept_out_of_the_latency():
    """A bag played without --clock: stamps hours from the node's clock. The frames are described
    (frames_out), the offset is bad input of kind stamps_off_clock, logged with the remedy, and the
    latency windows keep only the frames on the node's clock, so latency_warn_ms judges real delays."""
    now = [10**18]
    logs = []
    health = NodeHealth(logs.append, now_ns=lambda: now[0])
    health.latency_warn_ms = 1000.0
    bag = [3 * 3600 * 10**9 + i * HZ30 for i in range(4)]  # a recording from 1970, 3 h after epoch
    for stamp in bag:
        health.frame_received(stamp)
    health.record_clip(bag, 0.01, 0.02)
    level, message = health.level(state())
    assert level == WARN and "stamps_off_clock: 4" in message and "latency p95" not in message
    assert len(logs) == 1 and "--clock" in logs[0] and "use_sim_time" in logs[0]
    values = health.report(state())[2]
    assert values["frames_out"] == "4" and values["errors_stamps_off_clock"] == "4"
    assert values["latency_p95_ms"] == "nan" and values["input_transport_ms"] == "nan"
    assert values["clip_latency_p50_ms"] == "nan"
    # Stamps on the clock again (the bag replayed with --clock): measured as before.
    live = [now[0] - 200 * MS + i * HZ30 for i in range(4)]
    for stamp in live:
        health.frame_received(stamp)
    health.record_clip(live, 0.01, 0.02)
    values = health.report(state())[2]
    assert float(values["latency_p50_ms"]) == pytest.approx(150.0, abs=51.0)
    assert health.errors["stamps_off_clock"] == 4  # the live frames added none
    # 29 s late is still a latency (over latency_warn_ms), not another clock.
    health.record_clip([now[0] - 29 * 10**9] * 40, 0.01, 0.02)
    assert "latency p95" in health.level(state())[1]


def test_a_sim_time_clock_with_no_clock_topic_is_named_as_the_cause():
    """use_sim_time true and nothing publishing /clock (a launch file reused on the live robot): the
    node's clock reads 0, and the log blamed a bag played without --clock or use_sim_time unset, the
    opposite of the fix."""
    logs = []
    health = NodeHealth(logs.append, now_ns=lambda: 0)
    health.frame_received(1_700_000_000 * 10**9)
    health.frame_received(1_700_000_000 * 10**9 + HZ30)  # a lone frame is not yet counted: the next one says
    assert health.errors["stamps_off_clock"] == 2
    assert len(logs) == 1 and "use_sim_time is true but no /clock has been received" in logs[0], logs


def test_the_inference_thread_carries_its_name_for_the_operating_system():
    """top -H and /proc show the worker as fourds_infer (bench node's per-thread CPU reads it)."""
    from pathlib import Path

    from fourds_ros.perception.worker import INFERENCE_THREAD_NAME

    ran = threading.Event()
    worker = InferenceWorker(lambda clip: ran.set(), lambda exc: None)
    worker.start()
    try:
        comm = Path(f"/proc/self/task/{worker.thread.native_id}/comm")
        assert wait_for(lambda: comm.read_text().strip() == INFERENCE_THREAD_NAME), comm.read_text()
        assert Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip() != INFERENCE_THREAD_NAME
    finally:
        worker.stop()


def test_every_diagnostics_key_the_node_docs_list_is_reported():
    """docs/perception_node.md's "Diagnostics keys" table is what a diagnostic_aggregator analyzer is written
    against: each key it lists is in the report (tracks_live from the pipeline's status, which the node adds)."""
    import re

    from .conftest import REPO

    doc = (REPO / "docs" / "perception_node.md").read_text()
    table = doc[doc.index("### Diagnostics keys"):doc.index("## With Nav2 and robot_localization")]
    listed = {key for row in table.splitlines() if row.startswith("| `")
              for key in re.findall(r"`([a-z0-9_]+)`", row.split("|")[1])}
    values = NodeHealth(lambda m: None).report(state())[2]
    assert len(listed) >= 15 and listed - set(values) == {"tracks_live"}, listed - set(values)


def test_a_paused_bag_or_simulator_is_no_stalled_camera(clock):
    """Under use_sim_time a paused `ros2 bag play` (or simulator) stops /clock and the images together: WARN
    '1 image publisher(s) but no frame arrived' after stall_warn_s was a false alarm. A camera silent while
    the clock runs still is one."""
    sim = [1_765_000_000_000_000_000]
    health = NodeHealth(lambda m: None, now_ns=lambda: sim[0])
    health.stall_warn_s = 5.0
    health.activated()
    for _ in range(30):
        health.frame_received(sim[0])
        health.record_clip([sim[0]], 0.01, 0.02)
        health.level(state(image_publishers=1))  # the diagnostics timer
        clock.t += 0.1
        sim[0] += 100_000_000
    for _ in range(8):  # paused 8 s: neither frames nor /clock; the diagnostics timer (steady clock) goes on
        clock.t += 1.0
        assert health.level(state(image_publishers=1))[0] == OK
    for _ in range(8):  # the clock runs again, the camera stays silent
        clock.t += 1.0
        sim[0] += 1_000_000_000
        level, message = health.level(state(image_publishers=1))
    assert level == WARN and "no frame arrived" in message, message


class SlowSimClock:
    """/clock at a tenth of real time (a bag at --rate 0.1, a simulator at a real-time factor of 0.1), stepped with the
    steady clock of the `clock` fixture; the diagnostics timer reads the node's health every steady second."""

    def __init__(self, clock: FakeClock, health_of):
        self.clock, self.ns = clock, [100 * 10**9]
        self.health = health_of(lambda: self.ns[0])

    def run(self, steady_s: int, node: NodeState, frame_every_s: int = 0, described: bool = True,
            report_every_s: int = 1) -> list:
        """steady_s seconds; a frame every frame_every_s (0: none), described at once. -> (level, message) at each
        report, every report_every_s (diagnostics_period_s)."""
        levels = []
        for k in range(1, steady_s + 1):
            self.clock.t += 1.0
            self.ns[0] += 100 * MS
            if frame_every_s and k % frame_every_s == 0:
                self.health.frame_received(self.ns[0] - 10 * MS)
                if described:
                    self.health.record_clip([self.ns[0] - 10 * MS], 0.01, 0.01)
            if k % report_every_s == 0:
                levels.append(self.health.level(node))
        return levels


def _slow_sim_health(clock: FakeClock) -> SlowSimClock:
    def health_of(now_ns):
        health = NodeHealth(lambda m: None, now_ns=now_ns)
        health.stall_warn_s = 5.0
        return health
    sim = SlowSimClock(clock, health_of)
    sim.run(3, NodeState("inactive"))  # the diagnostics timer runs from the construction: it saw /clock move
    sim.health.activated()
    return sim


def test_a_slow_camera_on_a_slow_sim_clock_is_no_silent_camera(clock):
    """A 1 Hz camera on a /clock at 0.1x real time: a frame every 10 s of steady time, and after 5 s of them WARN
    '1 image publisher(s) but no frame arrived for 6 s' although, on the node's clock, the next frame was not due for
    another 0.5 s. The silent-camera rule is timed on the node's clock too (as the input-arriving one): it WARNs once
    the node's clock has passed stall_warn_s as well."""
    sim = _slow_sim_health(clock)
    levels = sim.run(60, state(image_publishers=1), frame_every_s=10)
    assert levels == [(OK, "active")] * 60, [m for _, m in levels if m != "active"][:1]
    levels = sim.run(51, state(image_publishers=1))  # the camera stopped: WARN once 5 s of the node's clock passed
    assert levels[:-1] == [(OK, "active")] * 50, [m for _, m in levels if m != "active"][:1]
    assert levels[-1] == (WARN, "active; 1 image publisher(s) but no frame arrived for 51 s"), levels[-1]


def test_no_publisher_and_no_frame_on_a_slow_sim_clock_is_timed_from_the_activation_on_it(clock):
    """Activated on a /clock at 0.1x real time with no image publisher yet (a simulator's camera still starting): not
    WARN after 5 s of steady time, half a second of the node's; WARN once the node's clock has passed stall_warn_s, or
    on steady time alone once that clock stepped back (a bag loop)."""
    sim = _slow_sim_health(clock)
    levels = sim.run(51, state())
    assert levels[:-1] == [(OK, "active")] * 50, [m for _, m in levels if m != "active"][:1]
    assert levels[-1] == (WARN, "active; no publisher on the image topic and no frame for 51 s"), levels[-1]
    loop = _slow_sim_health(clock)
    assert loop.run(30, state()) == [(OK, "active")] * 30
    loop.ns[0] -= 60 * 10**9  # /clock stepped back behind the activation (a bag loop) says nothing: steady time alone
    assert loop.run(1, state()) == [(WARN, "active; no publisher on the image topic and no frame for 31 s")]


def test_the_first_activation_on_a_slow_sim_clock_times_the_silent_camera_rules_on_it(clock):
    """Activated at once on a /clock at 0.1x real time (no report yet had seen it move: the node's first activation at
    start-up): the silent-camera rules were timed on steady time alone until a report saw the clock move, and read
    'no publisher on the image topic and no frame for 6 s' (or 'image publisher(s) but no frame arrived') half a second
    of the node's clock after the activation. The activation's reading of the node's clock, and a later one that
    differs, say it moves: WARN once it has passed stall_warn_s too. A clock that does not move (use_sim_time with no
    /clock yet) or a live one passes with steady time: WARN after stall_warn_s of it, as before."""
    def health_of(now_ns):
        health = NodeHealth(lambda m: None, now_ns=now_ns)
        health.stall_warn_s = 5.0
        health.activated()
        return health
    for node, expected in [(state(), "no publisher on the image topic and no frame for 51 s"),
                           (state(image_publishers=1), "1 image publisher(s) but no frame arrived for 51 s")]:
        sim = SlowSimClock(clock, health_of)
        levels = sim.run(51, node)
        assert levels[:-1] == [(OK, "active")] * 50, [m for _, m in levels if m != "active"][:1]
        assert levels[-1] == (WARN, f"active; {expected}"), levels[-1]
    for now_ns in (lambda: 0, lambda: int(clock.t * 1e9)):  # still; live (the system clock, moving with steady time)
        health = health_of(now_ns)
        levels = []
        for _ in range(6):
            clock.t += 1.0
            levels.append(health.level(state()))
        assert levels == [(OK, "active")] * 5 + [(WARN, "active; no publisher on the image topic and no frame for 6 s")]


def test_inference_stuck_behind_a_slow_camera_on_a_slow_sim_clock_is_a_stall(clock):
    """A 1 Hz camera on a /clock at 0.1x real time, no frame ever described: frames 10 s apart in steady time restarted
    the input-arriving stall at each one, and between them the node read 'no frame arrived' (while they did). Input
    still arrives on the node's clock: the stall is 'no frame described', once both clocks passed stall_warn_s."""
    sim = _slow_sim_health(clock)
    levels = sim.run(80, state(image_publishers=1), frame_every_s=10, described=False)
    assert all("no frame arrived" not in message for _, message in levels), levels
    assert levels[:60] == [(OK, "active")] * 60, [m for _, m in levels[:60] if m != "active"][:1]
    # from 5 s of the node's clock after the first frame on, the time since the construction (no frame ever described)
    assert levels[60:] == [(WARN, f"active; no frame described for {k} s while input arrives") for k in range(64, 84)]


@pytest.mark.parametrize("report_every_s", [2, 5])
def test_inference_stuck_on_a_slow_sim_clock_is_a_stall_whatever_the_report_period(clock, report_every_s):
    """The test above with diagnostics_period_s 2 or 5: whether the node's clock moves was read at the reports only,
    so at a frame it looked still (over 1 s since a report), input restarted at every frame, and nothing WARNed at
    all (session 70's review). The frames read the clock too now."""
    sim = _slow_sim_health(clock)
    levels = sim.run(80, state(image_publishers=1), frame_every_s=10, described=False, report_every_s=report_every_s)
    at = [report_every_s * (i + 1) for i in range(len(levels))]  # the steady second of each report
    assert all("no frame arrived" not in message for _, message in levels), levels
    assert all(level == OK for t, (level, _) in zip(at, levels) if t <= 60), levels
    late = [(level, message) for t, (level, message) in zip(at, levels) if t >= 65]
    assert late and all(level == WARN and "no frame described" in message for level, message in late), late


def test_one_frame_ahead_of_a_clock_that_jumps_with_it_is_not_off_clock():
    """ros2 bag play publishes /clock and the image on two topics: at a loop or a seek the node may take the
    image before the /clock message, and counted it as stamps_off_clock, WARN for 30 s, logging 'a bag
    played without --clock' to a team that used --clock."""
    clock = [1_765_000_001_400_000_000]
    logs = []
    health = NodeHealth(logs.append, now_ns=lambda: clock[0])
    health.frame_received(clock[0] + 40_000_000_000)  # taken before the /clock callback
    clock[0] += 40_000_000_000 + 100_000_000
    for i in range(1, 5):
        health.frame_received(clock[0] - 1_000_000 + i)
        clock[0] += 100_000_000
    assert health.errors["stamps_off_clock"] == 0 and logs == []


def test_latency_of_frames_in_flight_at_a_clock_jump_is_not_measured():
    """A /clock jump of 10 s (a seek, a bag gap skipped) with a clip in inference: its frames read 10 s
    latency, latency_p95 10834 ms and WARN for a minute. The frames after the jump are measured."""
    clock = [10**18]
    health = NodeHealth(lambda m: None, now_ns=lambda: clock[0])
    health.latency_warn_ms = 1000.0
    in_flight = [clock[0] - i * HZ30 for i in range(8)][::-1]
    for stamp in in_flight:
        health.frame_received(stamp)
    clock[0] += 10_000_000_000
    health.clock_jumped()  # the node's jump callback
    health.record_clip(in_flight, 0.1, 0.2)
    assert health.level(state())[0] == OK
    assert health.counts["frames_out"] == 8 and health.report(state())[2]["latency_p95_ms"] == "nan"
    after = [clock[0] - 300 * MS + i * HZ30 for i in range(8)]
    for stamp in after:
        health.frame_received(stamp)
    health.record_clip(after, 0.1, 0.2)
    assert 250.0 < float(health.report(state())[2]["latency_p95_ms"]) <= 300.0  # 300 ms down to 67 ms


def test_a_report_while_a_clip_is_recorded_does_not_raise():
    """level() zipped the live latency deques: a report not under the worker's lock, while the inference thread
    recorded a clip, raised "deque mutated during iteration" (in the diagnostics timer, into rclpy). The node holds
    the lock today; the report copies them anyway. 2 s of both threads, switching every microsecond."""
    import sys
    import threading
    import time

    from fourds_ros.perception.health import NodeHealth, NodeState

    health = NodeHealth(lambda m: None, now_ns=lambda: 10**12 + 10**8)
    stop, errors = threading.Event(), []

    def record():
        while not stop.is_set():
            health.record_clip([10**12] * 4, 0.01, 0.02)
    thread = threading.Thread(target=record)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread.start()
    try:
        end = time.monotonic() + 2.0
        while time.monotonic() < end and not errors:
            try:
                health.report(NodeState("active"))
            except RuntimeError as exc:
                errors.append(repr(exc))
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert not errors and health.counts["frames_out"] > 0


def test_no_publisher_on_the_image_topic_and_no_frame_warns_naming_the_topic(clock):
    """A camera driver that died, or `image` remapped to a topic nobody publishes: with no publisher discovered the
    stall rule said nothing, and /diagnostics read OK for ever. Active with no frame for stall_warn_s (timed from the
    activation or the last frame) is WARN, naming the topic where known; inactive, or within stall_warn_s, OK."""
    health = NodeHealth(lambda m: None, now_ns=lambda: 10**12)
    health.stall_warn_s = 5.0
    health.activated()
    clock.t += 4.0
    assert health.level(state()) == (OK, "active")
    clock.t += 596.0  # remapped to a topic nobody publishes: nothing for 10 minutes
    assert health.level(state()) == (WARN, "active; no publisher on the image topic and no frame for 600 s")
    assert health.level(state(image_topic="/camera/color/image_raw")) == \
        (WARN, "active; no publisher on the image topic /camera/color/image_raw and no frame for 600 s")
    assert health.level(NodeState("inactive")) == (OK, "inactive")  # no subscription: no frame expected
    stamp = 10**12 - 2 * 10**9
    for _ in range(30):  # remapped right: frames flow and are described
        health.frame_received(stamp)
        clock.t, stamp = clock.t + 1 / 30, stamp + HZ30
    health.record_clip([stamp - HZ30], 0.01, 0.02)
    assert health.level(state(image_publishers=1)) == (OK, "active")
    clock.t += 4.0  # the driver died: within stall_warn_s of its last frame
    assert health.level(state()) == (OK, "active")
    clock.t += 56.0
    assert health.level(state()) == (WARN, "active; no publisher on the image topic and no frame for 60 s")


def test_an_engine_failing_on_every_clip_is_error_until_a_clip_is_described():
    """An engine that raises on every clip (a CUDA fault) publishes nothing, and read WARN ("inference: N, dropped
    ...") as a node shedding a few frames does. CLIPS_FAILING_ERROR clips failed in a row while active is ERROR,
    naming the stage and the cause; a clip described ends it; each failure is still a problem of its kind."""
    from fourds_ros.perception.health import CLIPS_FAILING_ERROR

    health = NodeHealth(lambda m: None)
    cause = "RuntimeError: CUDA error: an illegal memory access"
    for _ in range(5):
        health.clip_failed("inference", f"inference failed: {cause}")
    assert health.level(state()) == (ERROR, f"active; inference failing on every clip: {cause}")
    assert health.errors["inference"] == 5
    assert health.level(NodeState("inactive"))[0] == WARN  # not active: its failures are bad input, as before
    health.record_clip([10**12], 0.01, 0.02)
    level, message = health.level(state())
    assert level == WARN and "inference: 5" in message, message  # one clip described: below ERROR
    for _ in range(CLIPS_FAILING_ERROR - 1):  # a clip or two failing (a corrupt frame) is no engine down
        health.clip_failed("depth", "depth failed: ValueError: x; its depth was sent")
    assert health.level(state())[0] == WARN
    health.clip_failed("depth", "depth failed: ValueError: x; its depth was sent")
    assert health.level(state()) == (ERROR, "active; depth failing on every clip: ValueError: x; its depth was sent")
    health.activated()  # activated again (after a configure, maybe with another engine): judged anew
    assert health.level(state())[0] == WARN


def _stream_clips(health, node_ns: list, clock, clips: int, before_ms: float, out_ms: float) -> None:
    """`clips` clips of 7 frames of a 30 Hz camera, each frame reaching the callback before_ms after its stamp (below
    0: stamped ahead of the node's clock), each clip published out_ms after its newest frame's callback."""
    stamp = node_ns[0]
    for _ in range(clips):
        stamps = []
        for _ in range(7):
            stamp, clock.t = stamp + HZ30, clock.t + HZ30 / 1e9
            node_ns[0] = stamp + int(before_ms * MS)
            stamps.append(stamp)
            health.frame_received(stamp)
        node_ns[0] += int(out_ms * MS)
        health.record_clip(stamps, 0.01, 0.02)


@pytest.mark.parametrize("before_ms, out_ms, expected", [
    (-5000.0, 50.0, "active; image stamps 5000 ms ahead of this node's clock: the camera's clock is not synchronised "
                    "(PTP/NTP)"),
    (-100.0, 50.0, "active"),  # a bag under --clock at --rate 8: up to 25 ms x 8 short, no WARN
    (3000.0, 50.0, "of which 3000 ms before the callback (a camera clock behind, or a slow link)"),
    (10.0, 1500.0, "latency p95 1710 ms > 1000 (last 0 s ago)"),  # the node's own: nothing before the callback
])
def test_a_camera_clock_off_by_less_than_30_s_is_named(clock, before_ms, out_ms, expected):
    """A camera clock off the node's by less than STAMP_OFF_CLOCK_S: ahead, its latency read below 0 and the node OK
    (-4900 ms on /diagnostics); behind, its offset read as the node's latency ("latency p95 3088 ms > 1000"). Ahead
    is WARN of its own; behind, the latency WARN says how much of it came before the callback."""
    node_ns = [10**15]
    health = NodeHealth(lambda m: None, now_ns=lambda: node_ns[0])
    health.set_limits(SimpleNamespace(latency_warn_ms=1000.0, queue_warn_ms=0.0, stall_warn_s=5.0))
    health.activated()
    _stream_clips(health, node_ns, clock, 20, before_ms, out_ms)
    level, message = health.level(state(image_publishers=1))
    assert (level, message) == (OK, "active") if expected == "active" else level == WARN and expected in message, \
        message
    assert ("before the callback" in message) == (before_ms == 3000.0), message


def test_the_last_minute_rules_hold_only_while_active_and_say_when_it_last_happened(clock):
    """The dropped, lost, latency and queue rules judge the last RECENT_S and so held WARN a minute after the last
    drop, reading like something happening now (in the first minute, like lifetime totals), and on while the node
    was inactive, taking nothing in. They say when it last happened, and judge only while active."""
    health = NodeHealth(lambda m: None)
    health.counts.update(frames_in=100, frames_dropped=10)
    assert health.level(state()) == (WARN, "active; dropped 10 of 100 frames (last 0 s ago)")
    clock.t += 20.0
    assert health.level(NodeState("inactive")) == (OK, "inactive")
    health.counts["frames_missing_by_stamp"] += 10
    assert health.level(state()) == \
        (WARN, "active; dropped 10 of 100 frames (last 20 s ago), lost 10 of 110 frames before the callback "
               "(last 0 s ago)")
    node_ns = [10**15]
    health = NodeHealth(lambda m: None, now_ns=lambda: node_ns[0])
    health.set_limits(SimpleNamespace(latency_warn_ms=1000.0, queue_warn_ms=0.0, stall_warn_s=0.0))
    _stream_clips(health, node_ns, clock, 3, 10.0, 1500.0)
    clock.t += 30.0
    assert health.level(NodeState("inactive")) == (OK, "inactive")
    level, message = health.level(state())
    assert level == WARN and message.endswith("ms > 1000 (last 30 s ago)"), message


def test_the_failing_clips_error_ends_when_clips_stop_and_the_current_cause_is_named(clock):
    """3 clips failed (a transient CUDA fault), then the camera driver died: 10 minutes on, /diagnostics must say
    what is wrong now (no publisher, no frame), not 'inference failing on every clip' as no clip runs."""
    health = NodeHealth(lambda m: None, now_ns=lambda: int(clock.t * 1e9))  # a live clock, moving with steady time
    health.stall_warn_s = 5.0
    health.activated()
    for _ in range(3):
        health.clip_failed("inference", "inference failed: RuntimeError: CUDA error: out of memory")
    assert health.level(state())[0] == ERROR
    clock.t += 600.0
    level, message = health.level(state(image_topic="/cam/image_raw"))
    assert level == WARN and "no publisher on the image topic /cam/image_raw" in message, message


def test_stamps_half_a_second_ahead_warn(monkeypatch):
    """STAMPS_AHEAD_WARN_MS is 250: a camera 500 ms ahead of the node's clock is WARN."""
    from fourds_ros.perception import health as health_module
    from fourds_ros.perception.health import WARN, NodeHealth, NodeState

    t = [1000.0]
    monkeypatch.setattr(health_module.time, "monotonic", lambda: t[0])
    node_ns = [10**15]
    health = NodeHealth(lambda m: None, now_ns=lambda: node_ns[0])
    health.set_limits(SimpleNamespace(latency_warn_ms=1000.0, queue_warn_ms=0.0, stall_warn_s=5.0))
    health.activated()
    stamp = node_ns[0]
    for _ in range(20):
        stamps = []
        for _ in range(7):
            stamp, t[0] = stamp + HZ30, t[0] + HZ30 / 1e9
            node_ns[0] = stamp - 500 * MS
            stamps.append(stamp)
            health.frame_received(stamp)
        node_ns[0] += 50 * MS
        health.record_clip(stamps, 0.01, 0.02)
    level, message = health.level(NodeState(state="active", image_publishers=1))
    assert level == WARN and "ms ahead of this node's clock" in message, message


def test_a_stall_right_after_a_bag_loop_still_warns(clock):
    """use_sim_time, a bag on --loop: /clock steps back at the loop; inference stuck from there on is a stall (the node's
    clock stepped back says nothing: steady time alone), not OK for the whole next loop."""
    from fourds_ros.perception.health import OK, WARN, NodeHealth, NodeState

    sim = [100 * 10**9]
    health = NodeHealth(lambda m: None, now_ns=lambda: sim[0])
    health.stall_warn_s = 2.0
    health.activated()
    stamps = []

    def frame(described: bool) -> tuple[int, str]:  # 10 Hz on both clocks; a clip of every 4 frames when described
        clock.t += 0.1
        sim[0] += 100 * MS
        health.frame_received(sim[0])
        stamps.append(sim[0])
        if described and len(stamps) % 4 == 0:
            health.record_clip(stamps[-4:], 0.01, 0.01)
        return health.level(NodeState("active", image_publishers=1))

    assert all(frame(described=True)[0] == OK for _ in range(16))
    sim[0] = 40 * 10**9  # the loop: /clock back to the bag's start
    health.clock_jumped()
    level, message = [frame(described=False) for _ in range(30)][-1]  # inference stuck: 3 s
    assert level == WARN and "no frame described for" in message, message
