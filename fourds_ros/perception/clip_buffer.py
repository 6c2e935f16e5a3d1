"""Bounded clip buffer: frames in, overlapping fixed-length clips out every `hop` frames.

The buffer holds at most `clip_length` frames (drop-oldest). It resets when the resolution or
encoding changes, when the camera changes (frame_id or K: `same_camera`), when time jumps backwards
(a bag loop: by more than OUT_OF_ORDER_NS, or as told by `new_recording`) and when the gap between frames exceeds `max_gap_s`; each reset reason is counted, and
the frames after the ended sequence's last clip are described by a clip of its last frames (`push`
returns it). `flush` describes the frames after the last clip when the stream stops for good (the
node calls it once its input has been idle for `flush_after_s`, so that they do not wait for a next
frame; the offline evaluator at the end of the bag).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .camera import Lens


def default_hop(clip_length: int) -> int:
    """Frames between clips when none is configured: clip_length - 1, so consecutive clips share
    one frame. That shared frame is all that chaining needs (tracks re-query at it, odometry
    anchors on it), and every further shared frame costs compute without adding a result. Fewer
    clips also mean fewer chaining steps: on 7-Scenes and HoloLens, hop 7 instead of 4 with 8-frame
    clips raised tracks AJ 0.117 -> 0.134 and 0.134 -> 0.206 and cut pose ATE 0.212 -> 0.191 and
    0.067 -> 0.029 m (offline, same weights; models/fourds_default/README.md). The price is
    latency: a frame waits for its clip's last."""
    return max(1, clip_length - 1)


@dataclass
class Frame:
    """One input frame. rgb: (H, W, 3) uint8; stamp_ns: the input header stamp; k: 3x3 or None."""

    rgb: np.ndarray
    stamp_ns: int
    frame_id: str
    k: np.ndarray | None = None
    encoding: str = "rgb8"
    index: int = 0  # running input index, set by the buffer
    model_rgb: np.ndarray | None = None  # (h, w, 3) float32 [0, 1] model input, made once on arrival
    gray: np.ndarray | None = None  # (H, W) uint8 (track_refine.gray8) for the tracks and corners, made once on arrival
    # The camera image's (H, W) when rgb (and k) are its scaled-down working copy (work_image.py)
    camera_hw: tuple[int, int] | None = None
    # The camera.Lens the image was undistorted with (None: none): the tracks' published pixels go back
    # through the lens of the frames they were tracked on, not of whichever frame came last.
    lens: Lens | None = None
    # The camera's (upright) mount, T_base_camera, known when the frame came (None: none given yet): a
    # clip's odometry reads its frames' mount, not one that came with later frames (another camera's).
    mount: np.ndarray | None = None


@dataclass
class Clip:
    """clip_length consecutive frames. `new_frames`: how many at the end were not in the previous
    clip (the ones this clip is the first to describe); `sequence`: the reset epoch it belongs to.
    `padding`: how many of the frames, at the very end, repeat the last real one (a sequence of fewer
    frames than a clip, ClipBuffer.flush): the new frames are the last before them."""

    frames: list[Frame]
    new_frames: int
    sequence: int
    padding: int = 0

    @property
    def output_t(self) -> list[int]:
        """The clip positions of the frames this clip describes."""
        end = len(self.frames) - self.padding
        return list(range(end - self.new_frames, end))


def supersede(waiting: Clip, newer: Clip) -> tuple[Clip, int]:
    """`newer` replaces `waiting`, which was never run (inference fell behind): the newer clip
    also describes the waiting clip's new frames that are still inside its window, so a burst of
    frames loses none. -> (the clip to run, frames that no clip will describe)."""
    if waiting.sequence != newer.sequence:  # a reset between them: no shared frames
        return newer, waiting.new_frames
    covered = min(waiting.new_frames, len(newer.frames) - newer.padding - newer.new_frames)
    return replace(newer, new_frames=newer.new_frames + covered), waiting.new_frames - covered


SAME_K_RTOL = 1e-3  # a K recomputed per message (float noise) is the same camera's K


def same_camera(a: Frame, b: Frame) -> bool:
    """One camera and one K: a clip takes its metric depth scale and the pose's camera from its first
    frame's K, so a clip mixing cameras, or frames before a late camera_info (the default K) with
    those after it, had the later frames' depth off by the focal lengths' ratio (1.85x measured).
    Within SAME_K_RTOL the same K."""
    if a.frame_id != b.frame_id or (a.k is None) != (b.k is None):
        return False
    return a.k is None or bool(np.allclose(a.k, b.k, rtol=SAME_K_RTOL))


OUT_OF_ORDER = "out_of_order"  # ClipBuffer.push's reason for a dropped late or repeated-stamp frame (no reset)
OUT_OF_ORDER_NS = 1_000_000_000  # a frame at most this much older than the last one is late, not a new recording


# A frame whose stamp runs ahead of the newest one taken by more than this, and by more than HOLD_PERIODS of the
# stream's recent frame steps, is held until the next frame (StampHold).
HOLD_MIN_STEP_NS = 250_000_000
HOLD_PERIODS = 8
# Frames in a row behind the newest one taken (by at most OUT_OF_ORDER_NS), each newer than the one before it: a
# new recording (a bag of 1 s or less on `ros2 bag play --loop`), not late frames (StampHold).
BACK_CONFIRM_FRAMES = 3


class StampHold:
    """One camera frame with a wrong stamp must cost only itself. A frame whose stamp jumps ahead (more than
    HOLD_MIN_STEP_NS and HOLD_PERIODS of the stream's median step) is held until the next frame says which
    timeline is right: a next frame between the newest one taken and the held one continues the stream, so
    the held frame was an outlier (handed back to be counted and dropped); any other next frame confirms the
    jump (a pause, a restarted clock) and both are taken, in order. Why: taken at once, one frame stamped
    0.8 s ahead made the next 16 good frames "late" (dropped as out of order), and 3 s ahead reset the buffer
    (gap), then again (time going backwards) and restarted the odometry at identity. A jump costs the held
    frame one frame's wait.

    Backwards, the mirror: a frame behind the newest one taken by at most OUT_OF_ORDER_NS (further back is a new
    recording at once) is held with the frames after it while each is behind the newest and newer than the one
    before it. BACK_CONFIRM_FRAMES of them make a new recording: taken, in order, the first named in
    `recording_start` (the buffer must restart there, ClipBuffer.new_recording, and so must the odometry). Any
    other next frame (one newer than the newest taken: the stream went on) finds them late: taken ahead of it
    for the buffer to drop and count (frames_out_of_order), as before; so is a frame behind while one is held
    ahead (late for both timelines), at once. Why: a bag of 1 s or less on
    `ros2 bag play --loop` steps back by under 1 s, and every loop after the first was dropped as late. A
    late frame costs its one frame's wait, a loop BACK_CONFIRM_FRAMES - 1 frames' wait (none is lost).
    Items are opaque (the intake's camera frames); not thread-safe."""

    def __init__(self, min_step_ns: int = HOLD_MIN_STEP_NS, periods: int = HOLD_PERIODS,
                 back_confirm: int = BACK_CONFIRM_FRAMES):
        if back_confirm < 2:
            raise ValueError(f"back_confirm must be >= 2 (one frame behind is a late frame), got {back_confirm}")
        self.min_step_ns, self.periods, self.back_confirm = min_step_ns, periods, back_confirm
        self.held: tuple[int, object] | None = None  # (stamp_ns, item)
        self.behind: list[tuple[int, object]] = []  # frames behind the newest taken, each newer than the last
        self.newest_ns: int | None = None  # the newest stamp taken
        self.before_newest_ns: int | None = None  # the newest stamp taken before it
        self.recording_start: object | None = None  # the item, of those the last push took, that starts a recording
        self._steps: deque[int] = deque(maxlen=8)  # recent forward steps between stamps taken

    @property
    def pending(self) -> int:
        """Frames held, waiting for a next frame's word."""
        return (self.held is not None) + len(self.behind)

    def push(self, stamp_ns: int, item) -> tuple[list, object | None]:
        """-> (the items to take now, in order; the held item found to be an outlier, or None)."""
        self.recording_start = None
        if self.newest_ns is not None and self.newest_ns - stamp_ns > OUT_OF_ORDER_NS:
            # a new recording (a bag loop, a restarted clock; the buffer restarts too): a held frame, unjudged,
            # ends the old one, and the new one's stamps are watched from here
            return self.release() + self._take([(stamp_ns, item)]), None
        if self.held is not None and self.newest_ns is not None and stamp_ns <= self.newest_ns:
            return self._take([(stamp_ns, item)]), None  # late for both timelines (the buffer drops it): no word
        if self.newest_ns is not None and stamp_ns <= self.newest_ns:  # behind: a late frame, or a new recording
            return self._back(stamp_ns, item), None
        late, self.behind = self.behind, []  # the stream went on past them: late frames (the buffer drops them)
        late = self._take(late)
        held, self.held = self.held, None
        if held is not None:
            if self.newest_ns is not None and self.newest_ns < stamp_ns < held[0]:
                return late + self._take([(stamp_ns, item)]), held[1]
            return late + self._take([held, (stamp_ns, item)]), None
        if self._jumps(stamp_ns):
            self.held = (stamp_ns, item)
            return late, None
        return late + self._take([(stamp_ns, item)]), None

    def release(self) -> list:
        """The held items, taken without a next frame to judge them (the input stopped): [] when none.
        Frames held behind the newest are taken as late (the buffer drops them)."""
        held = ([] if self.held is None else [self.held]) + self.behind  # never both (push)
        self.held, self.behind = None, []
        return self._take(held)

    def _back(self, stamp_ns: int, item) -> list:
        """A frame behind the newest taken (none held ahead): held with the frames behind before it while it is
        newer than the last of them, else it starts their run again (they were late). -> the items to take."""
        late: list[tuple[int, object]] = []
        if self.behind and stamp_ns <= self.behind[-1][0]:
            late, self.behind = self.behind, []
        self.behind.append((stamp_ns, item))
        taken = self._take(late)
        if len(self.behind) < self.back_confirm:
            return taken
        if self.before_newest_ns is not None and self.behind[0][0] > self.before_newest_ns:
            # Newer than the frame taken before the newest: the newest was stamped ahead (by less than the forward
            # hold catches), and these go on from the frames before it: late frames, not a new recording (taken as
            # one, a single frame stamped 133-250 ms ahead restarted the odometry at identity).
            late, self.behind = self.behind, []
            return taken + self._take(late)
        run, self.behind = self.behind, []
        self.newest_ns = self.before_newest_ns = None  # a new recording: its stamps are watched from its start
        self._steps.clear()
        self.recording_start = run[0][1]
        return taken + self._take(run)

    def _jumps(self, stamp_ns: int) -> bool:
        if self.newest_ns is None or len(self._steps) < 2:
            return False
        return stamp_ns - self.newest_ns > max(self.min_step_ns, self.periods * float(np.median(self._steps)))

    def _take(self, stamped: list[tuple[int, object]]) -> list:
        for stamp_ns, _ in stamped:
            if self.newest_ns is not None and self.newest_ns - stamp_ns > OUT_OF_ORDER_NS:  # a new recording
                self.newest_ns = None
                self._steps.clear()
            if self.newest_ns is not None and stamp_ns > self.newest_ns:
                self._steps.append(stamp_ns - self.newest_ns)
            if self.newest_ns is None or stamp_ns > self.newest_ns:
                self.before_newest_ns, self.newest_ns = self.newest_ns, stamp_ns
        return [item for _, item in stamped]


class ClipQueue:
    """Clips waiting for inference, at most `capacity`: bounded latency under overload (capacity 1:
    a frame waits behind at most one clip; more absorb a burst of frames released together, e.g.
    after a late camera_info). When full,
    the newest waiting clip is superseded by the incoming one (supersede: its frames still in the
    window carry over). Not thread-safe: the node guards it with its condition variable."""

    def __init__(self, capacity: int = 1):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.clips: deque[Clip] = deque()

    def put(self, clip: Clip) -> tuple[bool, int]:
        """-> (a waiting clip was superseded, frames that no clip will describe)."""
        if len(self.clips) < self.capacity:
            self.clips.append(clip)
            return False, 0
        merged, lost = supersede(self.clips.pop(), clip)
        self.clips.append(merged)
        return True, lost

    def take(self) -> Clip | None:
        return self.clips.popleft() if self.clips else None

    def clear(self) -> None:
        self.clips.clear()

    def __len__(self) -> int:
        return len(self.clips)


class ClipSchedule:
    """When a clip is due, the one rule for the node's buffer and the bag replay's back-pressure:
    the first clip after clip_length frames of a sequence, then one every hop frames (a flush
    restarts that count). `push()` -> the new frames of the clip the frame completes, or 0."""

    def __init__(self, clip_length: int, hop: int):
        if clip_length < 1:
            raise ValueError(f"clip_length must be >= 1, got {clip_length}")
        if not 1 <= hop <= clip_length:
            raise ValueError(f"hop must be in [1, clip_length={clip_length}], got {hop}")
        self.clip_length, self.hop = clip_length, hop
        self.restart()

    def restart(self) -> None:
        """A new sequence."""
        self.buffered = 0  # frames in the window, at most clip_length
        self.since_clip = 0  # frames since the last clip (or the sequence start)
        self.emitted = False  # a clip was due in this sequence

    def push(self) -> int:
        self.buffered = min(self.buffered + 1, self.clip_length)
        self.since_clip += 1
        if self.buffered < self.clip_length or (self.emitted and self.since_clip < self.hop):
            return 0
        new = min(self.since_clip, self.clip_length) if self.emitted else self.clip_length
        self.since_clip, self.emitted = 0, True
        return new

    @property
    def pending(self) -> int:
        """Frames no clip has described yet (before the first clip: all of them)."""
        return self.since_clip if self.emitted else self.buffered

    def take_undescribed(self) -> int:
        """A flush describes the frames after the last clip, or all of a sequence that never filled a clip:
        -> how many. Later clips come every hop frames after it, as after any clip."""
        new = self.pending
        if new:
            self.since_clip, self.emitted = 0, True
        return new


class ClipBuffer:
    def __init__(self, clip_length: int, hop: int, max_gap_s: float = 1.0):
        self.schedule = ClipSchedule(clip_length, hop)
        self.clip_length = clip_length
        self.hop = hop
        self.max_gap_ns = int(max_gap_s * 1e9)
        self.frames: deque[Frame] = deque(maxlen=clip_length)
        self.resets: Counter[str] = Counter()
        self.sequence = 0
        self.count = 0  # frames pushed
        self.frames_reset = 0  # frames dropped undescribed by resets, all reasons
        self.frames_out_of_order = 0  # frames dropped for arriving after a newer one
        # The newest stamp taken, kept through a manual reset: a late or repeated frame right after
        # one is no newer than what the ended chain published.
        self.last_stamp_ns: int | None = None
        self._new_recording = False  # told by new_recording(), until the next frame

    def new_recording(self) -> None:
        """The input's stamps went back to a new recording by less than OUT_OF_ORDER_NS (StampHold's backward
        hold: a bag of 1 s or less on --loop): the next frame, when it is not newer than the last one taken,
        restarts the sequence (time_backwards, as a step back of more than OUT_OF_ORDER_NS does) instead of being
        dropped as late. Untold, such a step back is a late frame: alone, stamps cannot tell them apart."""
        self._new_recording = True

    def reset(self, reason: str = "manual") -> None:
        """Drop the buffered frames; those no clip has described are counted in frames_reset."""
        self.resets[reason] += 1
        self.frames_reset += self.end_sequence()

    def end_sequence(self) -> int:
        """The next frame starts a new sequence, as after a reset, with no reset counted: the input stopped
        (the node deactivated) and its frames were flushed. Why: kept, the first frame after re-activation
        met the buffered ones across the pause, a reset_gap (WARN) for a pause the node was told to take,
        and with max_gap_s 0 a clip joined frames from both sides of it. -> the frames dropped that no clip
        described (none after a flush), for the caller to count."""
        dropped = self.pending
        self.frames.clear()
        self.sequence += 1
        self.schedule.restart()
        return dropped

    def check(self, frame: Frame) -> str | None:
        """The reset reason `frame` would cause, or None."""
        if self.last_stamp_ns is not None and frame.stamp_ns <= self.last_stamp_ns:
            # First, whatever else changed (a mux switching hardware-synchronised cameras, a camera
            # restarting with new intrinsics): swapped stamps (a late frame) lose that frame only, and
            # so does a repeated stamp (two poses of one stamp: tf2 keeps the first and warns
            # TF_REPEATED_DATA); a large step back is a new recording (a bag loop, a camera's clock
            # restarted) and restarts the sequence and the odometry.
            # Told of a new recording (new_recording): restarts too, however small the step back.
            late = self.last_stamp_ns - frame.stamp_ns <= OUT_OF_ORDER_NS and not self._new_recording
            return OUT_OF_ORDER if late else "time_backwards"
        if not self.frames:
            return None
        last = self.frames[-1]
        if frame.rgb.shape != last.rgb.shape or frame.camera_hw != last.camera_hw:
            return "resolution"
        if frame.encoding != last.encoding:
            return "encoding"
        if not same_camera(frame, last):
            return "camera"
        if self.max_gap_ns > 0 and frame.stamp_ns - last.stamp_ns > self.max_gap_ns:
            return "gap"
        return None

    def push(self, frame: Frame) -> tuple[Clip | None, str | None]:
        """Add a frame. Returns (clip or None, reset reason or None). At a reset, the clip is the ended
        sequence's last frames describing those no clip had (as `flush` does), when there are any: a
        bag played on --loop, or faster than the input's idle flush, lost them at each reset."""
        reason = self.check(frame)
        self._new_recording = False  # for the next frame only: it restarted, or it was newer (nothing to restart)
        if reason == OUT_OF_ORDER:
            self.frames_out_of_order += 1
            return None, reason
        ended = None
        if reason:
            ended = self.flush()
            self.reset(reason)
        frame.index = self.count
        self.count += 1
        self.frames.append(frame)
        self.last_stamp_ns = frame.stamp_ns
        new = self.schedule.push()
        if ended is not None:  # no clip of the new sequence yet: with clip_length 1 none is ever undescribed
            return ended, reason
        return (Clip(list(self.frames), new, self.sequence) if new else None), reason

    @property
    def pending(self) -> int:
        """Buffered frames no clip has described yet (before the first clip: all of them)."""
        return self.schedule.pending

    def flush(self) -> Clip | None:
        """The last clip_length frames as a clip for the frames that no clip has described yet (the
        stream stopped before the next hop), or None when there are none. A sequence of fewer frames
        than a clip (a camera that stopped, or reset, after a few; a triggered camera's short bursts)
        is described too: its last frame stands in, still, for the frames it lacks after it (Clip.padding;
        the first frame stays the clip's first, where a new odometry chain starts). Why: those frames were
        never described and sat in frames_pending, while the docs promised that a stopped camera loses
        none. Later clips still come every `hop` frames after this one."""
        new = self.schedule.take_undescribed()
        if not new:
            return None
        frames, padding = list(self.frames), self.clip_length - len(self.frames)
        return Clip(frames + [frames[-1]] * padding, new, self.sequence, padding)
