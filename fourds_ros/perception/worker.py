"""The inference thread of the node, without ROS: a bounded clip queue, supersede under overload,
the idle-flush decision, and the accounting of frames in flight.

    worker = InferenceWorker(run_clip=lambda clip: publish(pipeline.process(clip)))
    worker.start()
    worker.submit(clip)          # from the subscription thread; never blocks on inference
    worker.pending_frames()      # queued + in inference, not yet counted out or dropped
    worker.settle(count)         # in run_clip: count() the running clip's frames as they leave inference
    worker.stop()

Why a bounded queue (max_waiting_clips, default 1) and supersede: under sustained overload latency
stays bounded, since a frame waits behind at most that many clips: the newest waiting clip is
replaced by the next one, which also describes its frames still in the window; the rest are counted
as dropped (clip_buffer.supersede). A longer queue absorbs a burst of frames (released together
after a late camera_info) at the price of that latency.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from .clip_buffer import Clip, ClipQueue
from .clock_motion import ClockMotion


# The worker's name in the operating system (top -H, /proc/PID/task/*/comm; 15 bytes at most), so
# that its CPU can be told from the executor's and the engine pool's (bench node's per-thread CPU).
INFERENCE_THREAD_NAME = "fourds_infer"


def name_os_thread(name: str) -> None:
    """Name the calling thread for the operating system (Linux prctl PR_SET_NAME; a no-op elsewhere).
    Python 3.11's threading names threads for Python only."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(15, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):  # no libc prctl (not Linux)
        pass


class InferenceWorker:
    """run_clip(clip) is called on the worker thread, one clip at a time, and counts the clip's frames
    through settle. Its exceptions are passed to on_error(exc) (the thread keeps running). counts:
    shared counters; the worker adds clips_dropped and frames_dropped. `cv` guards the frames pending
    here and the counts settle and submit make: a report read under it sees each frame in one place."""

    def __init__(self, run_clip: Callable[[Clip], None], on_error: Callable[[Exception], None],
                 counts: Counter | None = None, capacity: int = 1):
        self.run_clip = run_clip
        self.on_error = on_error
        self.counts = Counter() if counts is None else counts
        self.queue = ClipQueue(capacity)
        self.cv = threading.Condition()
        self.frames_in_inference = 0  # the running clip's new frames (guarded by cv)
        self.running = False
        self.finishing = False  # stopped, and running the clips still waiting (stop's finish_waiting)
        self.thread: threading.Thread | None = None
        self.loop_ended = threading.Event()  # set by the thread as its loop ends (stop waits on it)
        self.abandoned = False  # stop gave up on the running clip: its results count nowhere (guarded by cv)
        self.frames_abandoned = 0  # that clip's frames, for discard (guarded by cv)
        self.last_activity = time.monotonic()  # a frame buffered or a clip finished
        # The node's clock (/clock under use_sim_time) at the last input (None: not read yet), and its motion, taken
        # to move until seen to stand still: flush_due times the idle input on it too.
        self.input_ns: int | None = None
        self._clock = ClockMotion(moved_at=self.last_activity)

    def start(self) -> None:
        self.running = True
        self.abandoned = False  # a worker started again counts its clips again
        self.loop_ended.clear()
        self.thread = threading.Thread(target=self._loop, name="fourds_inference", daemon=True)
        self.thread.start()

    def stop(self, timeout_s: float = 5.0, finish_waiting: bool = True) -> bool:
        """Stop after the running clip (if any) and, with finish_waiting, the clips waiting behind it (else
        they stay in the queue for discard). -> whether the loop ended within timeout_s; if not, the running
        clip is abandoned: settle no longer counts it, its exceptions no longer reach on_error, no waiting
        clip is taken after it, and discard counts its frames and theirs. Why the waiting clips: deactivate
        queues a clip of the frames after the last one, which cleanup right after it (as nav2's lifecycle
        manager sends them) discarded, with time left. Why not always: at a signal the node's outputs can
        no longer be published, and the wait only brought the process nearer launch's SIGKILL.
        Waits on an Event, not Thread.join: a KeyboardInterrupt (a second Ctrl-C) inside join makes CPython 3.11
        mark the still running thread stopped (threading._wait_for_tstate_lock's bpo-45274 handling takes the
        running thread's lock for one it acquired), and a second stop() then returned at once."""
        with self.cv:
            self.running, self.finishing = False, finish_waiting
            self.cv.notify_all()
        nothing_to_wait_for = self.thread is None or self.thread is threading.current_thread()
        if not nothing_to_wait_for and not self.loop_ended.wait(timeout_s):
            with self.cv:  # settled before this or never: its frames are counted once, by the first stop that gave up
                if not self.abandoned:
                    self.abandoned, self.frames_abandoned = True, self.frames_in_inference
            return False
        self.thread = None
        return True

    def discard(self) -> int:
        """Empty the queue (the node is being released). -> frames that no clip will describe: the queued
        ones, and an abandoned clip's."""
        with self.cv:
            frames = sum(c.new_frames for c in self.queue.clips)
            self.queue.clear()
            frames += self.frames_abandoned
            self.frames_abandoned = 0
            return frames

    def submit(self, clip: Clip) -> None:
        with self.cv:
            superseded, lost = self.queue.put(clip)
            self.counts["clips_dropped"] += int(superseded)
            self.counts["frames_dropped"] += lost
            self.cv.notify()

    def clip_waiting(self) -> bool:
        """A clip waits in the queue behind the one in inference (the node is behind its camera)."""
        with self.cv:
            return bool(self.queue)

    def touch(self, node_ns: int | None = None) -> None:
        """Input arrived (node_ns: the node's clock then), or a clip finished: the idle-flush clock restarts."""
        self.last_activity = time.monotonic()
        if node_ns is not None:
            self.input_ns = node_ns
            self._clock.see(node_ns, self.last_activity)

    def idle(self) -> bool:
        """Nothing waiting for or in inference."""
        with self.cv:
            return not self.frames_in_inference and not self.queue

    def flush_due(self, flush_after_s: float, now: float | None = None, node_ns: int | None = None) -> bool:
        """The input has been idle for flush_after_s (> 0) and nothing is waiting for or in
        inference: the frames after the last clip should be described now (a stopped camera,
        the end of a bag), not after the next hop. node_ns: the node's clock now, which must have
        passed flush_after_s since the last input too (_idle_on_node_clock)."""
        now = time.monotonic() if now is None else now
        if node_ns is not None:
            self._clock.see(node_ns, now)
        return (flush_after_s > 0 and now - self.last_activity >= flush_after_s
                and self._idle_on_node_clock(flush_after_s, now, node_ns) and self.idle())

    def _idle_on_node_clock(self, flush_after_s: float, now: float, node_ns: int | None) -> bool:
        """Whether the node's clock has passed flush_after_s since the last input, or stood still for flush_after_s
        of steady time (a bag that ended, a paused /clock, none yet): under use_sim_time a /clock at 1/20 of real
        time brought a 10 Hz camera's frames 2 s apart in steady time, 0.1 s on the node's, and each frame was
        flushed as a clip of its own (hop times the inference). A clock stepped back past the last input (a bag
        loop), or not read, says nothing: steady time alone. A live system clock passes with the steady one."""
        if node_ns is None or self.input_ns is None or self._clock.still_s(now) >= flush_after_s:
            return True
        return not 0 <= node_ns - self.input_ns < flush_after_s * 1e9

    def pending_frames(self) -> int:
        """Frames waiting for or in inference (not yet counted out or dropped)."""
        with self.cv:
            return self.frames_in_inference + sum(c.new_frames for c in self.queue.clips)

    def settle(self, count: Callable[[], None]) -> None:
        """count() adds the running clip's frames to the counters (described or failed); they leave
        frames_in_inference in the same step. Counted first and cleared after, a report in between
        had them in both places (frames_unaccounted -4 for a moment)."""
        with self.cv:
            if not self.abandoned:  # else discard has counted them
                count()
            self.frames_in_inference = 0

    def _next(self) -> Clip | None:
        with self.cv:
            while self.running and not self.queue:
                self.cv.wait(timeout=0.5)
            if not self.queue or self.abandoned or not (self.running or self.finishing):
                return None  # stopped with nothing waiting (or none to finish), or stop gave up
            clip = self.queue.take()
            self.frames_in_inference = clip.new_frames
            return clip

    def _loop(self) -> None:
        try:
            name_os_thread(INFERENCE_THREAD_NAME)
            while (clip := self._next()) is not None:
                try:
                    self.run_clip(clip)
                except Exception as exc:  # keep running; the next clip may be fine
                    if not self.abandoned:
                        self.on_error(exc)
                finally:  # a run_clip that raised, or returned without counting, settled nothing
                    with self.cv:
                        self.frames_in_inference = 0
                    self.touch()
        finally:
            self.loop_ended.set()
