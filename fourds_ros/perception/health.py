"""What the node reports on /diagnostics, without ROS: counters, rate-limited warnings, latency
windows and the rules that set the status level.

    health = NodeHealth(log_warning=node.get_logger().warning)
    health.frame_received(stamp_ns)                       # every frame taken in
    health.warn("bad_encoding", "dropping frame: ...")   # counted; logged at most every 10 s per kind
    level, message, values = health.report(state)         # level: OK | WARN | ERROR

Levels: ERROR while the node is unusable (configure or activate failed), or, active, the last
CLIPS_FAILING_ERROR clips or more all failed (ClipFailed: an engine failing on every clip publishes
nothing). WARN when input was bad
within the last BAD_INPUT_WARN_S (the errors_* counts stay cumulative; the level says what is wrong
now); active, more than WARN_FRACTION of the input of the last RECENT_S was dropped (shed under overload, or
its clip failed) or lost before the callback, latency p95 is over latency_warn_ms or frames wait in the
subscription queue longer than queue_warn_ms (p95; both over the samples of the last RECENT_S only), each
saying when it last happened, or the image stamps are ahead of the node's clock (STAMPS_AHEAD_WARN_MS);
frames are expected and none was described for stall_warn_s (input arriving, timed
from when it last started; or, active, no frame arriving, timed from the last frame or the activation: with
image publishers discovered an incompatible QoS or a stopped camera, with none a camera driver gone or the
image remapped to a topic nobody publishes), or, with a reference for
the metric scale, its scale is still not in effect after REFERENCE_WARN_AFTER_CLIPS clips or frames
kept arriving REFERENCE_SILENT_S after its last sample. OK otherwise: a few frames shed at a burst are
counted, not a fault (issue #20: WARN when more than 5 % of input is lost or dropped).

Frame accounting: every frame taken in (frames_in) ends as exactly one of described (frames_out),
rejected (bad input), dropped (superseded under overload, or its clip failed), reset (dropped by a
clip-buffer reset), out of order, discarded at release, ignored (no pipeline), or pending.
`frames_unaccounted` reports the difference, 0 whenever the node is idle.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from .clip_buffer import OUT_OF_ORDER_NS
from .clock_motion import ClockMotion
from .recent_publishers import RecentPublishers
from .relays import Relays

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
# Images whose frame_id had a leading '/', dropped as tf2 drops it (intake.image_frame_id): a correction,
# counted and said once, no WARN.
FRAMES_FRAME_ID_SLASH = "frames_frame_id_slash"
LOG_EVERY_S = 10.0  # bad-input warnings: once per kind, then at most every 10 s
WARN_FRACTION = 0.05  # of the input: dropped by the node, or lost before our callback
# The dropped and lost WARN rules judge the input of the last RECENT_S (since the start until then), the
# reported counts stay totals. Over lifetime totals, 50 % shed after 10 h at 30 Hz stayed OK for an hour,
# and an overload at start-up kept the node WARN long after it ended. 60 s: 1800 frames at 30 Hz, enough
# that a frame or two shed at a burst is not a fault; 60 reports at the usual 1 Hz diagnostics period.
RECENT_S = 60.0
# Bad input (an undecodable frame, a buffer reset after a camera pause) sets WARN for this long
# after it was last seen: long enough for a 1 Hz diagnostics reader to see it, short enough that
# one pause at start-up does not leave the node WARN for the rest of its run.
BAD_INPUT_WARN_S = 30.0
# A stamp further than this from the node's clock is on another clock, not late: a bag played
# without --clock (or use_sim_time unset), or a camera whose clock is not synchronised. Its
# "latency" would be the clocks' offset (hours, or 1.8e12 ms for a bag stamped from 0), reported as
# the node's latency and turning /diagnostics WARN for the wrong reason. Such frames are still
# described; they are counted as bad input of kind stamps_off_clock and left out of the latency
# windows. 30 s: far above the node's worst real latency (its queue holds at most
# max_waiting_clips clips; at most 1.5 s at 60 Hz on 2 cores, docs/benchmarks.md).
STAMP_OFF_CLOCK_S = 30.0
# WARN when the median stamp-to-callback time of the last RECENT_S is below minus this: the image stamps are ahead
# of the node's clock, a camera clock not synchronised (PTP/NTP) by less than STAMP_OFF_CLOCK_S. Unsaid before: its
# latency read below 0 and never over latency_warn_ms, and any real latency under the offset was hidden. 250 ms:
# under `ros2 bag play --clock` the node's clock moves in the player's 40 Hz steps, so a stamp reads up to 25 ms x
# the play rate ahead (about half that at the median): a bag below --rate 20 stays clear of it. A bag played
# without --clock is off the clock altogether (STAMP_OFF_CLOCK_S), and `fourds-ros eval`'s replay publishes /clock
# at each frame's stamp before the frame.
STAMPS_AHEAD_WARN_MS = 250.0
# The latency WARN says how much of it came before the callback (the median stamp-to-callback time) when that is
# more than this share of the p95: a camera clock behind the node's, or a slow link, not the node's own work (a
# camera 3 s behind read "latency p95 3088 ms > 1000", blamed on the node).
LATENCY_BEFORE_CALLBACK_SHARE = 0.5
# ERROR, while active, once this many clips in a row failed (ClipFailed: the engine or the depth stage raised):
# an engine failing on every clip (a CUDA fault, a model gone wrong) publishes nothing, and read WARN ("dropped ...")
# as a node that sheds a few frames does. 3: a clip or two failing on a corrupt frame is WARN still; a clip that is
# described (record_clip) starts the count again.
CLIPS_FAILING_ERROR = 3
# metric_scale_source reference_odometry / reference_depth: WARN once the node has described this many
# clips more than the reference needs counted (metric_scale_min_clips; reference_depth: 1) and the
# metres are still not the reference's (pipeline status metres_from): its topic remapped wrong or never
# published, or no clip passing the scale gates (a camera that only turns: TUM fr1/rpy counted 0 of 12).
# 30 clips: about 7 s at 30 Hz with 8-frame clips at hop 7, time for a robot to start driving; a robot
# still standing then is in the model's metres, which is what the WARN says.
REFERENCE_WARN_AFTER_CLIPS = 30
# WARN when frames kept arriving for longer than this after the reference's last sample: its publisher
# stopped, and the last scale is held from then on. Odometry: samples further apart than 0.5 s measure
# no clip (metric_scale.MAX_BRACKET_NS), so 2 s is 4 such gaps, and 20 messages missed at 10 Hz (wheel
# odometry publishes at 10-100 Hz): no jitter. Depth: an RGB-D camera's images (600 KB at 640x480) can
# stall behind a small shared-memory segment or a USB hiccup, and each clip measures its own, so more
# slack. Timed against the frames' arrival, not their description: an inference backlog after both
# streams stopped together is no silence. On the monotonic clock: a bag played at 1/20 speed or slower
# reads 10 Hz odometry as silent.
REFERENCE_SILENT_S = {"reference_odometry": 2.0, "reference_depth": 5.0}
# Why a reference's scale is not in effect, by what it got (metric_scale_source, reference heard or not).
REFERENCE_HINTS = {
    ("reference_odometry", False): "nothing received on reference_odom: is it remapped to the robot's odometry?",
    ("reference_depth", False): "nothing received on reference_depth: is it remapped to the RGB-D camera's "
                                "registered depth?",
    ("reference_odometry", True): "the reference covered {seen} of them (its stamps must bracket the clip's) and "
                                  "moved the camera at most {longest} m in one, of the {needed} m "
                                  "(metric_scale_min_distance_m) a clip needs, turning at most "
                                  "metric_scale_max_rotation_deg: a robot standing, or slower than that a clip, "
                                  "stays in the model's metres",
    ("reference_depth", True): "no clip's reference depth matched the model's: within 20 ms of a frame, registered "
                               "to the colour image, in metres (a 32FC1 depth in mm is 1000x off)",
    # Taken in place of ("reference_odometry", True) once the turn gate refused a clip: a robot turning on
    # the spot was told it stood still.
    ("reference_odometry", "turned"): "the reference covered {seen} of them (its stamps must bracket the clip's), and "
                                      "{turned} turned more than the {max_turn} degrees a clip may "
                                      "(metric_scale_max_rotation_deg), up to {largest_turn} in one (the longest moved "
                                      "{longest} m, of the {needed} m a clip needs): a robot turning faster than that "
                                      "a clip stays in the model's metres until it drives straighter",
}
# What makes frames wait in the node's own subscription queue (docs/benchmarks.md, session 33): with
# Fast DDS's default 512 KB shared-memory segment, 640x480 rgb8 frames waited 57-155 ms (p50) from
# minute 6 of a stream; with the camera's segment larger than a frame, 1-3 ms.
QUEUE_WAIT_CAUSES = ("the executor thread is starved of CPU, or the camera sends frames larger than its Fast DDS "
                     "shared-memory segment: give the camera driver config/fastdds_large_frames.xml")


# The rolling windows the timing figures of /diagnostics are read from, by what fills them. Named, as bench
# node reads a step's figure only when the step alone filled its window (a shorter step's figure is mostly
# the steps' before it).
INFERENCE_WINDOW_CLIPS = 50  # inference_latency_ms: the engine's mean over the last 50 clips
CLIP_WINDOW_CLIPS = 200  # clip_latency_p50/p95_ms, process_publish_ms, <stage>_p50_ms
FRAME_WINDOW_FRAMES = 200  # latency_p50/p95_ms (frames described), input_transport_ms, input_queue_* (received)


def on_node_clock(offset_ms: float) -> bool:
    """Whether a stamp this far from the node's clock (now - stamp) is a latency (STAMP_OFF_CLOCK_S)."""
    return abs(offset_ms) <= STAMP_OFF_CLOCK_S * 1e3


@dataclass
class NodeState:
    """What the node knows that the counters do not."""

    state: str  # lifecycle state as text
    failure: str = ""  # why configure failed ("" when it did not)
    backend: str = ""
    model: str = ""
    frames_pending: int = 0
    image_publishers: int = 0
    has_camera_info: bool = False
    pipeline_status: dict | None = None  # PerceptionPipeline.status()
    image_topic: str = ""  # the image topic subscribed (resolved), named by the no-publisher WARN ("" unknown)


class StampGaps:
    """Frames lost before the callback, seen as gaps in the stamps: reliable QoS raises no
    message-lost event when the reader's history overflows. A gap of n median intervals counts
    n - 1 missing frames; gaps over MAX_GAP_INTERVALS are a paused camera, not loss.

    A gap is counted when the next interval shows the old spacing again (one frame later). When
    the gap's spacing repeats RATE_CHANGE_REPEATS times instead, the camera changed its rate
    (auto-exposure in low light halves it) and nothing is counted; a late frame that lands inside
    a pending gap fills it. A gap closed by a late frame (the next interval short instead) is
    jitter: the late frame counts as one of the gap's, so it is loss only when the gap and that
    short interval together span more than two intervals. A step back in time further than a late
    frame (OUT_OF_ORDER_NS: `ros2 bag play --loop` repeats the stamps) starts a new timeline. Stamps
    alone cannot tell a steady 50 % loss from a halved rate: message-lost events and publication
    sequence numbers still count that."""

    MAX_GAP_INTERVALS = 10
    RATE_CHANGE_REPEATS = 3

    def __init__(self, window: int = 30):
        self.intervals: deque = deque(maxlen=window)
        self.last_ns: int | None = None
        self.pending: list[tuple[int, int, int]] = []  # unconfirmed gaps: (start ns, end ns, interval ns)

    def add(self, stamp_ns: int) -> int:
        """-> frames found missing with this stamp (those of a gap confirmed by it)."""
        if self.last_ns is not None and self.last_ns - stamp_ns > OUT_OF_ORDER_NS:
            # A new recording (a bag loop) or a clock stepped back, as ClipBuffer's time_backwards
            # reset: start a new timeline. Kept, the old loop's newest stamp made every later frame
            # "late" and no gap was counted again. The camera's spacing (intervals) stays.
            self.last_ns, self.pending = stamp_ns, []
            return 0
        last, self.last_ns = self.last_ns, stamp_ns if self.last_ns is None else max(self.last_ns, stamp_ns)
        if last is None or stamp_ns <= last:
            self._fill(stamp_ns)
            return 0
        dt = stamp_ns - last
        if self.pending and abs(dt - self.pending[0][2]) <= 0.25 * self.pending[0][2]:
            self.pending.append((last, stamp_ns, dt))  # the gap's spacing again
            if len(self.pending) > self.RATE_CHANGE_REPEATS:  # a new rate, not loss
                self.intervals.clear()
                self.intervals.extend(p[2] for p in self.pending)
                self.pending = []
            return 0
        # A short interval after a gap: the gap's closing frame was late (jitter), not a frame after a loss.
        late_by = dt if self.pending and dt < 0.75 * float(np.median(self.intervals)) else 0
        confirmed = self._confirm(late_by)
        if len(self.intervals) >= 5:
            median = float(np.median(self.intervals))
            if 1.5 * median < dt <= self.MAX_GAP_INTERVALS * median:
                self.pending = [(last, stamp_ns, dt)]
                return confirmed
        # Every other interval goes into the window: the median ignores an occasional outlier.
        self.intervals.append(dt)
        return confirmed

    def restart(self) -> None:
        """A new subscription (re-activation): the next stamp starts a new timeline, its distance from
        the last one is no gap. Unconfirmed gaps go with it. The camera's spacing (intervals) stays."""
        self.last_ns, self.pending = None, []

    def _confirm(self, late_by: int = 0) -> int:
        """The pending gaps were loss: -> their missing frames, in median intervals. late_by: the
        short interval after the last gap, whose closing frame was late: that gap reaches to the next
        frame with one more frame inside (a 1.6 + 0.4 interval late frame: 2 intervals, 2 frames, none
        missing; round(1.6) - 1 counted one)."""
        if not self.pending:
            return 0
        median = float(np.median(self.intervals))
        spans = [(end - start, 1) for start, end, _ in self.pending]  # (ns, frames received across it)
        if late_by:
            spans[-1] = (spans[-1][0] + late_by, 2)
        missing = sum(max(0, round(span / median) - frames) for span, frames in spans)
        self.intervals.extend(p[2] for p in self.pending)
        self.pending = []
        return missing

    def _fill(self, stamp_ns: int) -> None:
        """A late frame inside a pending gap is not missing: split the gap around it."""
        for i, (start, end, dt) in enumerate(self.pending):
            if start < stamp_ns < end:
                self.pending[i:i + 1] = [(start, stamp_ns, dt), (stamp_ns, end, dt)]
                return


ACCOUNTED = ("frames_out", "frames_rejected", "frames_dropped", "frames_failed", "frames_discarded_at_release",
             "frames_ignored", "frames_reset", "frames_out_of_order")


def pipeline_totals(status: dict) -> dict[str, int]:
    """The counts of a pipeline's status (PerceptionPipeline.status) that are totals: every whole number but
    the tracks alive now and the metric scale's reference state, which describes its reference since configure.
    The node adds a released pipeline's to `counts` (NodeHealth.carry), so totals survive cleanup and configure:
    pose_gaps and the rest began again at 0 there (and frames_reset kept only the last pipeline's)."""
    return {k: v for k, v in status.items() if isinstance(v, int) and not isinstance(v, bool)
            and k != "tracks_live" and not k.startswith(("metric_scale", "reference_depth"))}


# The image publishers (DDS writers) whose sequence numbers are kept, the most recently seen: each respawn of a
# camera driver or replay of a bag is a new writer, and one entry each grew for the whole activation.
SEQUENCE_PUBLISHERS_KEPT = 16
# Image publishers interleave when a frame comes from one heard within INTERLEAVED_S with another's frame between:
# two drivers on one topic (two usb_cam left at their default names). Their frames went into the same clips: another
# view alternating (OK on /diagnostics), another size (a buffer reset every frame), stamps 0.5 s ahead (every frame of
# the first camera dropped as out of order). A driver's restart is a new writer whose frames follow the old one's
# last: no frame comes from the old one again, so it never interleaves (nor does `ros2 bag play`, one writer).
INTERLEAVED_S = 2.0
# ... confirmed once the frames have switched publisher this many times within INTERLEAVED_S: a restarted driver whose
# old writer's last frames arrive after the new one's first (DDS keeps no order across writers; a composable node
# loaded before the old one is unloaded) switches a few times and ends, and lost a second of the new driver's
# frames to a false WARN (session 69's review); two drivers side by side switch at every frame (0.3 s at 15 Hz each).
INTERLEAVE_SWITCHES = 8
# ... or once the frames have switched between the same two publishers SLOW_INTERLEAVE_SWITCHES times, each while both
# had been heard for longer than RESTART_OVERLAP_S, with no pause over PUBLISHERS_HEARD_S: a slow second publisher (a
# debug republisher, a driver throttled to 1 Hz) beside a 30 Hz camera switches only twice a frame, never 8 times in
# 2 s, and went unwarned into every clip (another view, or a buffer reset each time; session 70). A restart is told
# apart by time, not by count: the old writer's last frames come within a moment of the new one's first, then it is
# silent, so none of its switches counts; one still sending RESTART_OVERLAP_S on is a second driver (at 8 Hz or more
# the 8 switches above confirm it sooner anyway). 3, not 2: one lone late frame of a dying writer switches twice. A
# 1 Hz publisher is confirmed at its third frame (2 s), one at 0.5 Hz at its third (4 s); two at 15 Hz as before.
RESTART_OVERLAP_S = 0.5
SLOW_INTERLEAVE_SWITCHES = 3
# Image publishers are remembered while heard within this (first heard, for the above): one at 0.5 Hz is silent 2 s
# between its frames, and a window of INTERLEAVED_S forgot it just before each (a frame of a new one, no switch).
PUBLISHERS_HEARD_S = 5.0
# While publishers interleave, the node follows the one it heard first and rejects the others' frames, so that the
# clips and odometry stay one camera's; the WARN names them. Once the followed one has been silent this long (a
# driver stopped) the others' frames are taken again; back within PUBLISHERS_HEARD_S (a USB hiccup), it is followed
# again: the one left alone was followed from its next frame, and a bag played onto a live camera's topic kept the
# node, its odometry and TF, after a 1.1 s stall of the camera (session 71's review). Followed again as the one followed
# before (_stop_following), not chosen anew by the rules below: its interval has just read its silence (a slow camera
# losing two frames with one between: two pauses, PAUSE_INTERVALS, its interval doubled), and an intruder 1.1 times
# as fast was followed from its return on, its every frame rejected (session 72's review).
FOLLOW_SILENT_S = 1.0
# ... unless the first heard is slow, one frame every FOLLOW_SLOW_S or more, and another sends its frames over
# FOLLOW_FASTER times as often: the camera beside a slow republisher heard first (the camera's driver restarted while
# a 1 Hz debug republisher ran), where following the first heard rejected 510 of the camera's 600 frames (session
# 70). A camera heard first is kept whatever comes faster: `ros2 bag play --rate 2` onto a 15 Hz camera's topic took
# over the node, its odometry and TF, while following the faster (session 70's review). A camera itself slower than
# FOLLOW_SLOW_S, heard first, is taken over by a bag twice as fast: by their frames the two cases are one (the
# republisher heard alone while the camera's driver restarted, or before it started; session 71 tried "heard alone
# for 5 s first" and lost 90 % of a camera's frames after a 7 s restart, review). Two drivers at one rate: the first
# heard, as before. Either way the WARN names both.
FOLLOW_FASTER = 2.0
FOLLOW_SLOW_S = 0.5
# Their stamps decide first: where some live publishers' latest stamps are on the node's clock (on_node_clock), the
# node follows one of those, by the rules above among them. A republisher keeps the live camera's stamps, both on the
# clock: the faster camera takes over, as above. A bag played without --clock stamps an hour or a day back: a live
# 1 Hz camera heard first is kept beside it (session 72: the bag was followed), and so is a live camera heard after the
# bag, its driver restarted (a new writer) or back after PUBLISHERS_HEARD_S of silence: the bag was the first heard,
# followed, and the camera's every frame rejected until the bag stopped (session 72's review, a 15 Hz camera beside a
# 30 Hz bag). Where none is on the clock (use_sim_time before any /clock: ROS time 0; a camera's clock not
# synchronised) or all are, timing alone decides, as before. Under use_sim_time with `ros2 bag play --clock` the bag's
# stamps are the node's clock and a live camera's are not: the bag is followed, what the node was set to run on. Left
# as before: a replay restamped at its own time, or a recording under STAMP_OFF_CLOCK_S old, reads as live; and a
# camera whose clock is not synchronised loses to a republisher restamping at the node's time (image_publisher). Off
# the clock is two frames in a row: under use_sim_time a frame in flight across a seek's /clock jump reads off it once
# (_off_clock), and where that one was the slow camera's latest as the interleaving was confirmed, the bag was
# followed for as long as both ran (session 72's review).
# Each publisher's frame interval is smoothed (0.8 old + 0.2 new), but a gap over FOLLOW_SILENT_S and PAUSE_INTERVALS
# times the estimate is a pause, not its rate, and is left out: a 30 Hz camera pausing 3 s beside a 1 Hz republisher
# heard first read as no longer faster, and its frames were rejected for seconds (session 70's review). Only those:
# leaving out every gap over FOLLOW_SILENT_S left a 1 Hz republisher whose first gap was 1.002 s, and every 0.5 Hz
# one, with no interval, never slow, and the camera beside it rejected. Two such gaps in a row are the rate (a camera
# throttled to 0.5 Hz): the estimate restarts from the second. The same silence stops a followed publisher (_taken):
# at 4 intervals, a followed 1 Hz camera that missed 2 frames was stopped, its 3 s gap went into its interval, and a
# 1.5 Hz intruder, then read as twice as fast, was followed from the camera's return on (session 72's review).
PAUSE_INTERVALS = 2.0
IMAGE_PUBLISHERS_INTERLEAVED = "image_publishers_interleaved"


def percentile(window, q: float) -> str:
    return f"{np.percentile(list(window), q):.2f}" if window else "nan"


def recent(values, at, now: float) -> list[float]:
    """The samples of `values` whose time in `at` (monotonic, one per sample) is within RECENT_S of now. Each is
    copied first (list() of a deque is one step under the GIL): zipping the live deques raised "deque mutated during
    iteration" where the inference thread recorded a clip meanwhile (a report not under the worker's lock)."""
    return [v for v, t in zip(list(values), list(at)) if now - t < RECENT_S]


def p95_over(window, limit: float) -> float | None:
    """The window's 95th percentile where it is above `limit`, else None (also for an empty window,
    and for limit 0: that WARN is off)."""
    if limit <= 0 or not window:
        return None
    p95 = float(np.percentile(list(window), 95))
    return p95 if p95 > limit else None


def p95_recent(values, at, now: float, limit: float) -> tuple[float, float] | None:
    """(p95, seconds since the newest sample over `limit`) of the samples of the last RECENT_S (recent) where their
    p95 is over `limit`, else None (p95_over). The rules hold RECENT_S past the last slow sample: the age says
    whether it is still happening."""
    pairs = [(v, t) for v, t in zip(list(values), list(at)) if now - t < RECENT_S]
    if (p95 := p95_over([v for v, _ in pairs], limit)) is None:
        return None
    return p95, now - max(t for v, t in pairs if v > limit)  # one is over: the p95 is at most the largest


def frame_interval(interval: float | None, gap: float, paused: bool) -> tuple[float, bool]:
    """A publisher's smoothed frame interval (None: one frame heard) and its next `gap` -> (the interval, whether
    `gap` was a pause: PAUSE_INTERVALS). paused: the gap before was one."""
    if interval is None:
        return gap, False
    if gap > FOLLOW_SILENT_S and gap > PAUSE_INTERVALS * interval:
        return (gap, False) if paused else (interval, True)
    return 0.8 * interval + 0.2 * gap, False


class NodeHealth:
    image_topic = "image"  # the resolved image topic (FrameIntake.subscribed): named in warnings
    # (topic, publishers) -> them in words: the node sets ros/publisher_names.py's, which asks the ROS graph rarely
    name_publishers: Callable[[str, list], str] = staticmethod(lambda topic, publishers: f"{len(publishers)} publishers")

    def __init__(self, log_warning: Callable[[str], None], log_every_s: float = LOG_EVERY_S,
                 now_ns: Callable[[], int] = time.time_ns):
        self.log_warning = log_warning
        # The clock of the stamps (the node's: /clock under use_sim_time), so latency is measured on one clock.
        self.now_ns = now_ns
        self.log_every_s = log_every_s
        self.counts: Counter[str] = Counter()  # frames_in, frames_out, clips, frames_dropped, ...
        self.errors: Counter[str] = Counter()  # bad input per kind
        self._last_log: dict[str, float] = {}
        self._last_seen: dict[str, float] = {}  # error kind -> when it was last counted (monotonic)
        self.inference_ms: deque = deque(maxlen=INFERENCE_WINDOW_CLIPS)
        self.latency_ms: deque = deque(maxlen=FRAME_WINDOW_FRAMES)  # input stamp -> publish, wall clock
        # newest frame of a clip: its stamp -> all of the clip published (buffer wait excluded)
        self.clip_latency_ms: deque = deque(maxlen=CLIP_WINDOW_CLIPS)
        self.transport_ms: deque = deque(maxlen=FRAME_WINDOW_FRAMES)  # input stamp -> subscription callback
        self.transport_at: deque = deque(maxlen=FRAME_WINDOW_FRAMES)  # when each came (monotonic): STAMPS_AHEAD_WARN_MS
        # DDS reception -> subscription callback (wall clock, both ends in this process): how long a
        # frame waited in the node's own subscription queue for the executor thread.
        self.queue_ms: deque = deque(maxlen=FRAME_WINDOW_FRAMES)
        # when each latency / queue sample came (monotonic): their WARNs judge the last RECENT_S only
        self.latency_at: deque = deque(maxlen=FRAME_WINDOW_FRAMES)
        self.queue_at: deque = deque(maxlen=FRAME_WINDOW_FRAMES)
        self.process_ms: deque = deque(maxlen=CLIP_WINDOW_CLIPS)  # pipeline.process + publish, per clip
        # stage name -> its ms per clip (the engine, pipeline.STAGES, sending the outputs): where a clip's time goes
        self.stage_ms: dict[str, deque] = {}
        self._last_rates: tuple[float, int, int] | None = None
        self.gaps = StampGaps()
        self._forget_publishers()
        self.latency_warn_ms = self.queue_warn_ms = self.stall_warn_s = 0.0  # set_limits, at configure
        self.last_in = self.last_out = self.started = time.monotonic()
        # When input last (re)started after a pause of stall_warn_s or more: the stall clock starts
        # there, not at the last output (a camera paused for a minute WARNed on its first frame back).
        self.input_since = self.active_since = self.started  # active_since: activated(), the last activation
        # (monotonic s, frames_in, dropped, lost) at most every RECENT_S / 100 (bounded whatever the
        # report rate): the dropped and lost rules compare with the newest sample at least RECENT_S old.
        self._recent: deque = deque([(self.started, 0, 0, 0)])
        # The node's clock's motion, read at the reports and the frames: a paused bag or simulator stops it.
        self._clock = ClockMotion()
        # The node's clock at the last output, when input last (re)started, at the last input and at the activation
        # (None: not yet): the stall rules time those on it too (_stall_on_node_clock).
        self._out_ns: int | None = None
        self._input_since_ns: int | None = None
        self._in_ns, self._active_ns = None, None
        # Jumps of the node's clock so far (clock_jumped), and under which count each recent stamp came in: the
        # latency of a frame taken in before a jump spans it (a seek of 10 s read 10 s latency, WARN for a minute).
        self._clock_jumps = 0
        self._came_in: OrderedDict[int, int] = OrderedDict()
        # The message of a lone frame off the node's clock, not yet counted: under use_sim_time at a bag loop
        # or seek the image can come before /clock's jump, and that one frame read as off the clock.
        self._off_clock_held: str | None = None
        self._off_clock_run = False  # the frame before was off the clock too: each one counts at once
        # (clips failed in a row since the last described, the stage and message of the last): CLIPS_FAILING_ERROR
        self._failing: tuple[int, str, str] = (0, "", "")
        self._failed_at = 0.0  # when the last clip failed (monotonic)
        # total name -> (its value, when it was last seen to grow: monotonic) at the reports: "last N s ago"
        self._grown: dict[str, tuple[int, float]] = {}

    def set_limits(self, diagnostics) -> None:
        """The WARN limits of a settings.DiagnosticsSettings (0 turns one off)."""
        self.latency_warn_ms = diagnostics.latency_warn_ms
        self.queue_warn_ms = diagnostics.queue_warn_ms
        self.stall_warn_s = diagnostics.stall_warn_s

    def activated(self) -> None:
        """The node subscribed to its input: the no-frame stall clock starts now (a node activated long
        after it was constructed would otherwise WARN before the first frame could arrive). The camera
        went on publishing while the node was inactive, unsubscribed: its sequence numbers and stamps
        jump by the frames sent meanwhile, which no subscription was there to lose. Kept, a node
        inactive for 10 s counted 300 frames "lost before the callback" on its first frame back, WARN."""
        # The node's clock then, read first (a live clock's span from it is never shorter than steady time's): judged on
        # once it is seen to move (_stall_on_node_clock), by the next report at the latest. Kept only where the reports
        # had seen it move, the first activation under a slow /clock timed the silent-camera rules on steady time.
        self._active_ns = self.now_ns()
        self.active_since = time.monotonic()
        self._clock.see(self._active_ns, self.active_since)
        self._forget_publishers()
        self.gaps.restart()
        self._failing = (0, "", "")  # failures of an earlier activation (or engine) say nothing of this one

    def _forget_publishers(self) -> None:
        """No image publisher heard yet: at the start, and at each activation (activated says why)."""
        self._sequences: dict = {}  # publisher -> highest publication sequence number seen
        # image publisher -> ((first heard, frame interval, paused: frame_interval, its frames off the node's clock
        # in a row: _to_follow), last heard: monotonic s), least recently heard first; the last frame's publisher;
        # the one followed while they interleave (None: every frame is taken); when frames switched publisher (_taken);
        # {two publishers} -> (their switches while both heard longer than RESTART_OVERLAP_S, the last one's time);
        # (the one followed until it fell silent, when: _stop_following); which of them relay another's frames
        self._image_publishers = RecentPublishers(PUBLISHERS_HEARD_S, SEQUENCE_PUBLISHERS_KEPT)
        self._last_publisher, self.following, self._switches = None, None, deque()
        self._followed_before: tuple | None = None
        self._lasting_switches = RecentPublishers(PUBLISHERS_HEARD_S, SEQUENCE_PUBLISHERS_KEPT)
        self._relays = Relays(PUBLISHERS_HEARD_S, SEQUENCE_PUBLISHERS_KEPT)

    def frame_received(self, stamp_ns: int, publisher=None, sequence: int | None = None,
                       received_ns: int | None = None) -> bool:
        """A frame reached the callback. publisher, sequence: the DDS writer and its publication
        sequence number (rclpy's MessageInfo), which count reliable-QoS loss exactly. received_ns:
        when the middleware received it (MessageInfo's received_timestamp, system clock). -> whether it is
        taken: False for another image publisher's while the node follows one (INTERLEAVED_S), counted rejected."""
        now, now_ns = time.monotonic(), self.now_ns()
        self._clock.see(now_ns, now)  # whether it moves, between the reports too (a report period over 1 s read still)
        # No input as far as the stall rules saw (on the node's clock too: a slow /clock brings a 1 Hz camera's
        # frames 10 s apart in steady time, and input restarting at each one hid inference stuck behind it): it restarts
        if now - self.last_in >= self.stall_warn_s and self._stall_on_node_clock(self._in_ns, now_ns, now):
            self.input_since, self._input_since_ns = now, now_ns
        elif self._input_since_ns is None:  # the first frame, within stall_warn_s of the start
            self._input_since_ns = now_ns
        self.counts["frames_in"] += 1
        if received_ns:
            self.queue_ms.append((time.time_ns() - received_ns) / 1e6)
            self.queue_at.append(now)
        if sequence is not None:
            self._sequence(publisher, sequence)
        offset_ms = (now_ns - stamp_ns) / 1e6
        if publisher:
            self._relays.heard(publisher, stamp_ns, now)
        if publisher and not self._taken(publisher, now, on_node_clock(offset_ms)):  # not the followed stream's
            self.counts["frames_rejected"] += 1
            self.last_in, self._in_ns = now, now_ns
            return False
        self.counts["frames_missing_by_stamp"] += self.gaps.add(stamp_ns)
        self._came_in[stamp_ns] = self._clock_jumps
        self._came_in.move_to_end(stamp_ns)
        if len(self._came_in) > FRAME_WINDOW_FRAMES:
            self._came_in.popitem(last=False)
        if on_node_clock(offset_ms):
            self.transport_ms.append(offset_ms)
            self.transport_at.append(now)
            self._off_clock_held, self._off_clock_run = None, False
        else:
            # A clock at 0 is ROS time before any /clock: use_sim_time set with nothing publishing /clock (a
            # launch file reused on the live robot), the opposite of the other causes' fix.
            cause = ("use_sim_time is true but no /clock has been received" if now_ns == 0 else
                     "a bag played without --clock, use_sim_time unset, or the camera's clock not synchronised")
            self._off_clock(f"an image stamp is {offset_ms / 1e3:+.0f} s from this node's clock "
                            f"({cause}): frames are described, their latency is not measured")
        self.last_in, self._in_ns = now, now_ns
        return True

    def _sequence(self, publisher, sequence: int) -> None:
        last = self._sequences.pop(publisher, None)  # put back last: the dict runs oldest-seen first
        if last is not None and sequence > last + 1:
            self.counts["frames_missing_by_sequence"] += sequence - last - 1
        self._sequences[publisher] = sequence if last is None else max(last, sequence)
        if len(self._sequences) > SEQUENCE_PUBLISHERS_KEPT:  # a driver respawned for weeks: one writer each
            del self._sequences[next(iter(self._sequences))]

    def _taken(self, publisher, now: float, on_clock: bool) -> bool:
        """Whether a frame of image publisher `publisher` is taken: not while the node follows another one, which it
        does from when publishers interleave (INTERLEAVE_SWITCHES within INTERLEAVED_S, or SLOW_INTERLEAVE_SWITCHES
        between two lasting ones) until the followed one is silent (FOLLOW_SILENT_S) or the only one heard within
        INTERLEAVED_S; chosen again once the followed one relays another live one (_to_follow says why). on_clock:
        whether this frame's stamp is on the node's clock (_to_follow)."""
        heard, switches = self._image_publishers, self._switches
        # A new one counts as one frame off the clock before this: its first frame off it is off, no lone frame of
        # one on it (a /clock jump's), so a bag played again (a new writer) beside a camera where none is on the
        # clock was followed alone (fuzz, session 72).
        (first, interval, paused, off_clock), last = heard.get(publisher, ((now, None, False, 1), None))
        if last is not None:  # its frames' interval, smoothed: whom to follow (_to_follow)
            interval, paused = frame_interval(interval, now - last, paused)
        heard.heard(publisher, (first, interval, paused, 0 if on_clock else off_clock + 1), now)
        previous, self._last_publisher = self._last_publisher, publisher
        others = list(heard.values())[-2:-1]  # the one heard most recently before this one
        if not others or now - others[0][1] > INTERLEAVED_S:
            # one publisher: the usual case (and a followed one alone again: a later restart is clean)
            self._stop_following(publisher, now)
            return True
        lasting = 0
        if last is not None and previous != publisher:  # back to one heard before, another's frame between
            switches.append(now)
            lasting = self._lasting_switch(previous, publisher, now)
        while switches and now - switches[0] > INTERLEAVED_S:
            switches.popleft()
        # silent for FOLLOW_SILENT_S, or for two (PAUSE_INTERVALS) of its own frame intervals where slower: a followed
        # 0.7 Hz camera read as stopped between its frames, and the other's frames went into its clips (session 71's
        # review)
        live = sorted((p for p, ((_, every, *_), at) in heard.items()
                       if now - at <= max(FOLLOW_SILENT_S, PAUSE_INTERVALS * (every or 0))), key=lambda p: heard[p][0][0])
        if self.following not in live:  # a followed driver stopped: the others' frames are taken again
            self._stop_following(publisher, now)
        elif self._relays.relays_one_of(self.following, live):  # a relay, its source live: it is not followed over it
            self.following = self._to_follow(live, now)
        if self.following is None:
            # one live publisher (the followed one stalled) interleaves with none: chosen again when the two are
            if len(live) < 2 or (len(switches) < INTERLEAVE_SWITCHES and lasting < SLOW_INTERLEAVE_SWITCHES):
                return True
            self.following = self._to_follow(live, now)
        elif publisher == self.following:
            return True
        names, followed = (self.name_publishers(self.image_topic, p) for p in (live, [self.following]))
        self.warn(IMAGE_PUBLISHERS_INTERLEAVED, f"frames from {len(live)} publishers arrive interleaved on "
                  f"{self.image_topic} ({names}): two drivers on one topic? Clips would mix them: following "
                  f"{followed} and dropping the others' frames; give each camera its own topic (namespace)")
        return publisher == self.following

    def _stop_following(self, publisher, now: float) -> None:
        """No publisher followed from this frame of `publisher` on; the one followed is remembered where it fell
        silent (another's frame came), not where it is the one left: back within PUBLISHERS_HEARD_S, it is followed
        again (_to_follow). One followed while that one was silent is not remembered in its place while it may still be
        back: a slow republisher followed beside a bag during the camera's pause was, and followed again at the
        camera's return, its every frame rejected (fuzz, session 72)."""
        before, stopped = self._followed_before or (None, -math.inf)
        if self.following is not None and (self.following == before or now - stopped > PUBLISHERS_HEARD_S):
            self._followed_before = (self.following, now) if self.following != publisher else None
        self.following = None

    def _to_follow(self, live: list, now: float):
        """Whom to follow among the publishers `live` (the first heard first): where some have their latest stamp on
        the node's clock, among those only (the comment at FOLLOW_SLOW_S), and of those not one relaying another's
        frames (relays.Relays); the one followed until it fell silent within PUBLISHERS_HEARD_S, back (FOLLOW_SILENT_S
        says why); else the first heard, unless another sends its frames over FOLLOW_FASTER times as often where the
        first heard is slow (FOLLOW_SLOW_S; one frame heard: never)."""
        entries = self._image_publishers  # publisher -> ((first heard, interval, paused, frames off the clock), at)
        candidates = [p for p in live if entries[p][0][3] < 2] or live  # a lone frame off it: a /clock jump's
        # A relay of another candidate is not followed over it: a republisher keeping the camera's stamps, heard before
        # the camera's restarted driver (a new writer) and not slow, was followed by the rules below and the camera's
        # every frame rejected, its own frames late in the clips (session 72). After the clock's rule: a relay shares
        # its source's stamps, so both are on the node's clock or both off it, and that rule never parts them. Before
        # the one followed until it fell silent: a relay followed while its camera restarted is not followed again
        # over the camera back. A relay whose source is not live (the camera's old writer) stays: it is the camera's
        # only stream then. A relay followed is left as soon as it is seen to be one (_taken): lagging its camera
        # by more than the interleaving takes to confirm (0.3 s for two at 15 Hz), its frames repeated none of the
        # camera's yet when it was chosen, and it kept the node; leaving it for its source sends the stamps forward.
        candidates = [p for p in candidates if not self._relays.relays_one_of(p, candidates)] or candidates
        before, stopped = self._followed_before or (None, -math.inf)
        if before in candidates and now - stopped <= PUBLISHERS_HEARD_S:
            return before
        intervals = [math.inf if entries[p][0][1] is None else entries[p][0][1] for p in candidates]
        fastest = min(range(len(candidates)), key=intervals.__getitem__)
        faster = FOLLOW_SLOW_S <= intervals[0] < math.inf and intervals[fastest] * FOLLOW_FASTER < intervals[0]
        return candidates[fastest] if faster else candidates[0]

    def _lasting_switch(self, previous, publisher, now: float) -> int:
        """A switch from `previous`'s frames to `publisher`'s -> how many the two have made while both had been heard
        longer than RESTART_OVERLAP_S, with no pause over PUBLISHERS_HEARD_S, this one included; 0 where it is none
        (a restart's: the new writer is younger)."""
        heard = self._image_publishers
        if previous not in heard or now - max(heard[previous][0][0], heard[publisher][0][0]) <= RESTART_OVERLAP_S:
            return 0
        pair = frozenset((previous, publisher))
        count, at = self._lasting_switches.get(pair, (0, now))
        count = count + 1 if now - at <= PUBLISHERS_HEARD_S else 1
        self._lasting_switches.heard(pair, count, now)
        return count

    def clock_jumped(self) -> None:
        """The node's clock jumped (rclpy's jump callback: a bag seek or loop under use_sim_time, a simulator
        reset): the frames taken in before it are described, and their latency is not measured."""
        self._clock_jumps += 1

    def clock_jumps_at(self, stamp_ns: int) -> tuple[int, int]:
        """(the node's clock jumps so far, those counted when the frame stamped `stamp_ns` came in; so far for a
        frame no longer remembered, beyond the last FRAME_WINDOW_FRAMES): for tf_stamps.TfStampGate."""
        jumps = self._clock_jumps
        return jumps, self._came_in.get(stamp_ns, jumps)

    def _off_clock(self, message: str) -> None:
        """A frame off the node's clock: counted (stamps_off_clock) once the next one is off it too."""
        if self._off_clock_run:
            self.warn("stamps_off_clock", message)
        elif self._off_clock_held is not None:
            self.warn("stamps_off_clock", self._off_clock_held)
            self.warn("stamps_off_clock", message)
            self._off_clock_held, self._off_clock_run = None, True
        else:
            self._off_clock_held = message

    def frames_lost(self, info) -> None:
        """DDS's message-lost event (rclpy's QoSMessageLostInfo): frames lost before the callback."""
        self.counts["frames_lost_in_transport"] += int(info.total_count_change)

    def warn(self, kind: str, message: str, log_now: bool = False) -> None:
        """Count a problem of `kind`; log it the first time and then at most every log_every_s, or now where
        `log_now` (the message says something the last one could not, e.g. who the other publisher is)."""
        self.errors[kind] += 1
        now = self._last_seen[kind] = time.monotonic()
        if log_now or now - self._last_log.get(kind, -1e9) >= self.log_every_s:
            self._last_log[kind] = now
            self.log_warning(f"[{kind}] {message} (seen {self.errors[kind]}x)")

    def clip_failed(self, stage: str, message: str) -> None:
        """A clip failed in `stage` (the node's ClipFailed; message: its text, "<stage> failed: <cause>"): a
        problem of kind `stage`, and one more clip failed in a row (CLIPS_FAILING_ERROR)."""
        self.warn(stage, message)
        self._failing = (self._failing[0] + 1, stage, message)
        self._failed_at = time.monotonic()  # the ERROR holds while clips still fail: none for a while is no engine fault

    def record_clip(self, stamps_ns: list[int], inference_s: float, process_s: float, blind: int = 0,
                    partly_blind: int = 0, stage_s: dict[str, float] | None = None,
                    failed: dict[str, str] | None = None, warnings: dict[str, str] | None = None) -> None:
        """A clip's frames were published: latencies of each frame and of the clip as a whole.
        Counted together, so a diagnostics message never sees a clip's frames out without its
        clip latency. blind: how many of them were too dark or flat to see (ClipResult.blind),
        a problem of kind camera_blind; partly_blind: how many saw nothing on a part of the view
        (ClipResult.partly_blind), of kind view_partly_blind. stage_s: seconds of the clip's stages by
        name (ClipResult.stage_s and the node's sending), reported as <name>_p50_ms with the engine's
        (inference_s) as engine_p50_ms. failed: stages that raised on the clip (ClipResult.failed), each a
        problem of its own kind ("tracks", "pose"); the frames count as out, with what the clip did send.
        warnings: what the clip's outputs carry (ClipResult.warnings: depth_empty, pose_head_unusable), each a
        problem of its kind."""
        for stage, cause in (failed or {}).items():
            self.warn(stage, f"{stage} failed: {cause}; the clip's other outputs were sent")
        for kind, message in (warnings or {}).items():
            self.warn(kind, message)
        if blind:
            self.warn("camera_blind", f"{blind} of {len(stamps_ns)} frames too dark or flat to see (min_image_texture): "
                      "depth published as NaN, odometry held with an unknown-motion covariance")
        if partly_blind:
            self.warn("view_partly_blind", f"{partly_blind} of {len(stamps_ns)} frames see nothing on a quarter of the "
                      "view or more (a covered or dirty lens, something against it, or the robot's own body: set "
                      "exclude_boxes): depth and odometry are published but degrade")
        now_ns = self.now_ns()
        self._failing = (0, "", "")  # a clip described: the engine does not fail on every clip
        self.inference_ms.append(inference_s * 1e3)
        self.process_ms.append(process_s * 1e3)
        for name, seconds in {"engine": inference_s, **(stage_s or {})}.items():
            self.stage_ms.setdefault(name, deque(maxlen=CLIP_WINDOW_CLIPS)).append(seconds * 1e3)
        after_jump = [s for s in stamps_ns if self._came_in.get(s, self._clock_jumps) == self._clock_jumps]
        latencies = [(now_ns - s) / 1e6 for s in after_jump]
        on_clock = [ms for ms in latencies if on_node_clock(ms)]
        self.latency_ms.extend(on_clock)
        self.latency_at.extend([time.monotonic()] * len(on_clock))
        if stamps_ns:
            if len(on_clock) == len(stamps_ns):
                self.clip_latency_ms.append(latencies[-1])
            self.counts["frames_out"] += len(stamps_ns)
            self._out_ns, self.last_out = now_ns, time.monotonic()  # the node's clock first: see _stall_on_node_clock

    def level(self, state: NodeState) -> tuple[int, str]:
        if state.failure:
            return ERROR, state.failure
        now = time.monotonic()
        # sorted() copies the items before the loop: warn() on the inference thread adds kinds
        problems = [f"{k}: {v}" for k, v in sorted(self.errors.items())
                    if now - self._last_seen.get(k, now) < BAD_INPUT_WARN_S]
        problems += self._recent_problems(state, now)
        problems += self._stall_problems(state, now)
        problems += self._reference_problems(state.pipeline_status or {}, now)
        failing, stage, message = self._failing  # after the rules: they sample their counts at every report
        if state.state == "active" and failing >= CLIPS_FAILING_ERROR and now - self._failed_at < BAD_INPUT_WARN_S:
            return ERROR, f"{state.state}; {stage} failing on every clip: {message.removeprefix(f'{stage} failed: ')}"
        if problems:
            return WARN, f"{state.state}; " + ", ".join(problems)
        return OK, state.state

    def _recent_problems(self, state: NodeState, now: float) -> list[str]:
        """The rules over the input of the last RECENT_S: dropped, lost, latency, queue wait (each saying when it
        last happened: they hold RECENT_S past it), stamps ahead. Only while active: inactive, nothing is taken in
        and a burst before the deactivation held WARN for a minute after it; the counts are sampled all the same."""
        c = self.counts
        # Three views of one loss: DDS's lost events (best effort), writer sequence gaps (exact,
        # reliable readers whose history overflowed), stamp gaps (when the middleware gives no
        # sequence numbers).
        lost_total = max(c["frames_lost_in_transport"], c["frames_missing_by_sequence"], c["frames_missing_by_stamp"])
        dropped_total = c["frames_dropped"] + c["frames_failed"]
        (frames_in, dropped, lost), span = self._recent_increase(now, c["frames_in"], dropped_total, lost_total)
        dropped_ago, lost_ago = self._grew_ago(now, dropped=dropped_total, lost=lost_total)
        if state.state != "active":
            return []
        problems, sent = [], frames_in + lost
        if dropped > WARN_FRACTION * frames_in:
            problems.append(f"dropped {dropped} of {frames_in} frames{span} (last {dropped_ago:.0f} s ago)")
        if sent and lost > WARN_FRACTION * sent:
            problems.append(f"lost {lost} of {sent} frames before the callback{span} (last {lost_ago:.0f} s ago)")
        # The windows keep their last samples however old (their reported figures): the WARNs judge the
        # samples of the last RECENT_S only, as the dropped and lost rules. Judged on the whole window, a
        # slow stretch before the camera stopped (or the node was deactivated) kept the node WARN for
        # good, and the first clip after a pause was judged on the stretch before it.
        transport = recent(self.transport_ms, self.transport_at, now)
        before_ms = float(np.median(transport)) if transport else 0.0  # stamp to callback
        if (late := p95_recent(self.latency_ms, self.latency_at, now, self.latency_warn_ms)) is not None:
            before = (f", of which {before_ms:.0f} ms before the callback (a camera clock behind, or a slow link)"
                      if before_ms > LATENCY_BEFORE_CALLBACK_SHARE * late[0] else "")
            problems.append(f"latency p95 {late[0]:.0f} ms > {self.latency_warn_ms:g} (last {late[1]:.0f} s ago)"
                            f"{before}")
        if (waits := p95_recent(self.queue_ms, self.queue_at, now, self.queue_warn_ms)) is not None:
            problems.append(f"frames wait {waits[0]:.0f} ms (p95) in the subscription queue > {self.queue_warn_ms:g}"
                            f" (last {waits[1]:.0f} s ago; {QUEUE_WAIT_CAUSES})")
        if before_ms < -STAMPS_AHEAD_WARN_MS:
            problems.append(f"image stamps {-before_ms:.0f} ms ahead of this node's clock: the camera's clock is not "
                            "synchronised (PTP/NTP)")
        return problems

    def _stall_problems(self, state: NodeState, now: float) -> list[str]:
        """stall_warn_s (0: off): frames expected and none described for that long. Expected when input
        arrives (timed from when it last started), or while active with image publishers discovered
        (timed from the last frame or the activation): an incompatible QoS is reported once, at
        discovery, and its bad-input WARN ended after BAD_INPUT_WARN_S while still no frame came. Both are
        timed on the node's clock too where it moves (_stall_on_node_clock), and so is whether input arrives."""
        if self.stall_warn_s <= 0:
            return []
        clock_ns = self.now_ns()
        self._clock.see(clock_ns, now)
        if now - self.last_in < self.stall_warn_s or not self._stall_on_node_clock(self._in_ns, clock_ns, now):
            stalled = now - max(self.last_out, self.input_since) > self.stall_warn_s
            since_ns = self._out_ns if self.last_out > self.input_since else self._input_since_ns
            if stalled and self._stall_on_node_clock(since_ns, clock_ns, now):
                return [f"no frame described for {now - self.last_out:.0f} s while input arrives"]
            return []
        silent_s = now - max(self.last_in, self.active_since)
        if (still_s := self._clock.still_s(now)) is not None and still_s > 1.0:  # /clock paused: no frame is due
            return []
        since_ns = self._in_ns if self.last_in > self.active_since else self._active_ns
        if state.state != "active" or silent_s <= self.stall_warn_s:
            return []
        if not self._stall_on_node_clock(since_ns, clock_ns, now):  # a slow /clock: no frame is overdue on it yet
            return []
        if not state.image_publishers:  # a camera driver gone, or the image remapped to a topic nobody publishes
            topic = f" {state.image_topic}" if state.image_topic else ""
            return [f"no publisher on the image topic{topic} and no frame for {silent_s:.0f} s"]
        cause = " (their QoS is incompatible with image_qos)" if self.errors["incompatible_qos"] else ""
        return [f"{state.image_publishers} image publisher(s) but no frame arrived for {silent_s:.0f} s{cause}"]

    def _stall_on_node_clock(self, since_ns: int | None, clock_ns: int, now: float) -> bool:
        """Whether the node's clock (clock_ns) has passed stall_warn_s too since a stall rule's start (since_ns: the
        node's clock then; the last output or when input started, the last input or the activation): under
        use_sim_time a /clock at a tenth of real time (a bag at --rate 0.1, a simulator at a real-time factor of 0.1)
        described a clip every 0.7 s of its time, 7 s of steady time, and the node read WARN while it kept up; a 1 Hz
        camera's frames came 10 s apart, and it read "no frame arrived" between them. A node's clock that is not
        moving (a paused /clock, none yet), stepped back (a bag loop), or not read at that start says nothing: steady
        time alone. A live system clock passes with it."""
        still_s = self._clock.still_s(now)
        if since_ns is None or still_s is None or still_s > 1.0:
            return True
        return not 0 <= clock_ns - since_ns <= self.stall_warn_s * 1e9

    def _reference_problems(self, status: dict, now: float) -> list[str]:
        """With a reference for the metric scale (status: PerceptionPipeline.status): its scale still not
        in effect after REFERENCE_WARN_AFTER_CLIPS clips beyond those it needs, and its silence while
        frames arrive (REFERENCE_SILENT_S; listed, as bad input, until BAD_INPUT_WARN_S after the last)."""
        source = status.get("metric_scale_source")
        if source not in REFERENCE_SILENT_S:  # metric_scale_source: model (and no pipeline): nothing to judge
            return []
        problems = []
        age = float(status["metric_scale_reference_age_s"])  # nan before any sample
        described, needed = int(status["metric_scale_clips_described"]), int(status["metric_scale_min_clips"])
        # Messages that arrive and are refused are no silence: they are bad input, logged and counted as such.
        refused = now - self._last_seen.get(source, -np.inf) < REFERENCE_SILENT_S[source]
        if status["metres_from"] != source and described >= needed + REFERENCE_WARN_AFTER_CLIPS:
            problems.append(f"metres from {status['metres_from']} after {described} clips "
                            f"({self._reference_hint(source, status, age)})")
        silent_s = age - (now - self.last_in)  # how long frames kept arriving after the reference's last sample
        if silent_s > REFERENCE_SILENT_S[source] and now - self.last_in < BAD_INPUT_WARN_S and not refused:
            problems.append(f"{source} silent for {age:.0f} s, frames arriving {silent_s:.0f} s after its last "
                            f"sample: metric_scale {status['metric_scale']} held, no longer measured")
        return problems

    def _reference_hint(self, source: str, status: dict, age: float) -> str:
        """Why the reference's scale is not in effect yet, by what it got (REFERENCE_HINTS): every
        message refused, nothing heard, or what refused the clips it covered."""
        if np.isnan(age) and self.errors.get(source):
            return f"every {source} message taken in so far refused ({self.errors[source]}): see the log's [{source}] lines"
        turned = status.get("metric_scale_clips_turned", 0)  # a clip measured: the reference was heard
        return REFERENCE_HINTS[source, "turned" if turned else not np.isnan(age)].format(
            seen=status.get("metric_scale_clips_seen"), longest=status.get("metric_scale_longest_clip_m"),
            needed=status.get("metric_scale_min_distance_m"), turned=turned,
            max_turn=status.get("metric_scale_max_rotation_deg"), largest_turn=status.get("metric_scale_largest_turn_deg"))

    def _grew_ago(self, now: float, **totals: int) -> list[float]:
        """Seconds since each total was last seen to grow, at a report (RECENT_S's rules hold a minute past it; read at
        the report period, 1 s by default); since the start for one never seen to."""
        ago = []
        for name, total in totals.items():
            last, at = self._grown.get(name, (0, self.started))
            if total != last:
                self._grown[name] = (total, now)
                at = now
            ago.append(now - at)
        return ago

    def _recent_increase(self, now: float, *totals: int) -> tuple[list[int], str]:
        """-> (how much each total grew since the newest sample at least RECENT_S old, or since the
        start before there is one; " in the last N s" in the first case, else "")."""
        if now - self._recent[-1][0] >= RECENT_S / 100:
            self._recent.append((now, *totals))
        while len(self._recent) > 1 and self._recent[1][0] <= now - RECENT_S:
            self._recent.popleft()
        since, *base = self._recent[0]
        span = f" in the last {now - since:.0f} s" if since > self.started else ""
        return [t - b for t, b in zip(totals, base)], span

    def unaccounted(self, state: NodeState) -> int:
        """frames_in minus every way a frame can end or wait (0 when the accounting balances)."""
        return self.counts["frames_in"] - sum(self.total(k, state) for k in ACCOUNTED) - state.frames_pending

    def total(self, key: str, state: NodeState) -> int:
        return self.counts[key] + pipeline_totals(state.pipeline_status or {}).get(key, 0)

    def carry(self, pipeline_status: dict) -> None:
        """A pipeline's totals into `counts` as it is released (its counters end with it)."""
        self.counts.update(pipeline_totals(pipeline_status))  # Counter.update adds

    def rates(self) -> tuple[float, float]:
        """Input and output frames per second since the last call."""
        now, fin, fout = time.monotonic(), self.counts["frames_in"], self.counts["frames_out"]
        last, self._last_rates = self._last_rates, (now, fin, fout)
        if last is None or now <= last[0]:
            return 0.0, 0.0
        return (fin - last[1]) / (now - last[0]), (fout - last[2]) / (now - last[0])

    def report(self, state: NodeState) -> tuple[int, str, dict[str, str]]:
        """-> (level, message, key-value pairs) for one DiagnosticStatus."""
        level, message = self.level(state)
        in_rate, out_rate = self.rates()
        # The inference thread (record_clip, warn, the worker's counts) adds keys while this runs on the
        # executor's: iterate copies, which list() takes in one step under the GIL. Iterating the dicts
        # raised "dictionary changed size during iteration" and killed the executor.
        errors, stages = list(self.errors.items()), list(self.stage_ms.items())
        resets = [(k, v) for k, v in list(self.counts.items()) if k.startswith("reset_")]
        c = self.counts
        values = {
            "state": state.state, "backend": state.backend, "model": state.model,
            "input_rate_hz": f"{in_rate:.2f}", "output_rate_hz": f"{out_rate:.2f}",
            "inference_latency_ms": f"{np.mean(list(self.inference_ms)):.2f}" if self.inference_ms else "nan",
            "latency_p50_ms": percentile(self.latency_ms, 50), "latency_p95_ms": percentile(self.latency_ms, 95),
            "clip_latency_p50_ms": percentile(self.clip_latency_ms, 50),
            "clip_latency_p95_ms": percentile(self.clip_latency_ms, 95),
            "input_transport_ms": percentile(self.transport_ms, 50),
            "input_queue_p50_ms": percentile(self.queue_ms, 50), "input_queue_p95_ms": percentile(self.queue_ms, 95),
            "process_publish_ms": percentile(self.process_ms, 50),
            **{f"{name}_p50_ms": percentile(window, 50) for name, window in stages},
            **{k: c[k] for k in ("frames_in", "clips", "frames_lost_in_transport", "frames_missing_by_sequence",
                                 "frames_missing_by_stamp",
                                 "clips_dropped", "clips_flushed")},
            **{k: self.total(k, state) for k in ACCOUNTED},
            "frames_pending": state.frames_pending,  # 0 once the node has caught up with its input
            "frames_unaccounted": self.unaccounted(state),
            "resets": sum(v for _, v in resets),
            "image_publishers": state.image_publishers,  # publishers discovered on the image topic
            "camera_info": "yes" if state.has_camera_info else "no (default intrinsics)",
            "frames_without_own_camera_info": c["frames_without_own_camera_info"],
            FRAMES_FRAME_ID_SLASH: c[FRAMES_FRAME_ID_SLASH],
        }
        values.update({f"resets_{k[6:]}": v for k, v in resets})
        values.update({f"errors_{k}": v for k, v in errors})
        status = state.pipeline_status or {}
        totals = pipeline_totals(status)
        values.update({k: self.counts[k] + v if k in totals else v for k, v in status.items() if k not in ACCOUNTED})
        return level, message, {k: str(v) for k, v in values.items()}
