"""The metric scale of depth and odometry from a reference odometry (`metric_scale_source:
reference_odometry`): a robot's wheel odometry, or any other odometry of the same body.

Why: the model's metric depth holds on the scenes it was trained on, not on a new one. On the
validation scene (TUM fr1/rpy, never trained on) it reads the desk at about 2.4x its depth (metric
AbsRel 1.43; models/fourds_default/README.md), while its relative depth beats a constant. A costmap
needs metres, and an EKF fusing the node's odometry with the wheels needs the same metres as the
wheels. One number per scene fixes both: the scale of the model's metres.

How: for each clip, the distance the camera travelled between the clip's first and last frame by
the reference (camera centre = odom_from_base @ base_from_camera, so a camera mounted off the
robot's centre is measured where it is) against the model's own (the clip's pose, before scaling).
A clip counts when the reference moved at least `min_distance_m`, the model moved at all, and the
reference turned at most `max_rotation_deg`: over a short clip a turning camera's translation
trades against its rotation, and the model's translation is then mostly that ambiguity (the pose
error budget, docs/results/pose_error_budget). The scale is the median ratio over the last
`window` clips that counted, once `min_clips` did; until then `initial` (metric_scale_factor: 1, the
model's own metres, unless a site's factor was calibrated).

No rclpy: the node hands in the poses of nav_msgs/Odometry messages; the offline evaluator hands in
the recording's ground truth as a stand-in for wheel odometry.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np
import transforms3d.quaternions as quaternions

from .clip_buffer import OUT_OF_ORDER_NS
from .odometry import rotation_vector

# Reference samples kept: enough to cover a clip waiting for inference under overload.
HISTORY_NS = 20 * 10**9
# Two reference samples further apart than this do not bracket a frame: no measurement there.
MAX_BRACKET_NS = 5 * 10**8
# A frame this little after the newest sample is measured from it (the clip's last frame often
# arrives before the reference sample after it), extrapolated at the last step's velocity: holding
# the newest sample's position shortened every such clip's travel by speed x lag, the same way each
# time, so the median kept it (-4 % at 50 Hz wheel odometry, -10 % at 20 Hz).
MAX_HOLD_NS = 10**8
# A unit quaternion as published in float32 is within this of norm 1.
QUATERNION_TOLERANCE = 1e-2
# A ratio outside [1/x, x] is no scale error but a failed clip (a lost track, a reset).
MAX_RATIO = 20.0


def monotonic() -> float:
    """The clock of the references' ages: health.py's (looked up at each call)."""
    return time.monotonic()


class ReferenceScale:
    """Reference odometry in (`add`, any thread); per clip, `observe` the model's travel; `scale`
    multiplies the model's metres (depth, points, translations) from the next clip on."""

    def __init__(self, min_distance_m: float, max_rotation_deg: float, window: int, min_clips: int,
                 initial: float = 1.0, clock: Callable[[], float] | None = None):
        self.min_distance_m, self.max_rotation = min_distance_m, math.radians(max_rotation_deg)
        self.min_clips = min_clips
        # for the reference's age on /diagnostics: monotonic (a stopped /clock stops no age), health.py's clock
        self.clock = clock or monotonic
        self.last_added: float | None = None  # clock() when the last sample was taken, None before any
        self._lock = threading.Lock()  # add() runs on the executor thread, observe() on inference's
        self._stamps: list[int] = []
        self._samples: list[tuple[np.ndarray, np.ndarray]] = []  # (odom_from_base rotation, position)
        self.ratios: deque = deque(maxlen=window)
        self.scale = float(initial)
        self.clips_offered = 0  # clips described (observe calls), covered or not
        self.clips_seen = 0  # clips the reference covered
        self.longest_m = 0.0  # the longest camera travel the reference measured over a clip
        # Clips refused for turning more than max_rotation_deg, and the largest turn over a clip: a robot
        # that turns on the spot stays in the model's metres as a standing one does, and health's hint
        # must name the gate that refused its clips, not tell it that it stood still.
        self.clips_turned = 0
        self.largest_turn = 0.0  # rad
        self.clips_used = 0  # of them, those that moved enough and turned little enough

    def add(self, stamp_ns: int, position: np.ndarray, quaternion_xyzw: np.ndarray) -> str | None:
        """One reference pose of the base in odom (nav_msgs/Odometry pose: x y z, qx qy qz qw).
        -> why it was refused, or None (the node counts refusals as errors_reference_odometry)."""
        position, q = np.asarray(position, float).reshape(3), np.asarray(quaternion_xyzw, float).reshape(4)
        with self._lock:
            if not (np.isfinite(position).all() and np.isfinite(q).all()):
                return "a non-finite reference odometry pose"
            if abs(float(np.linalg.norm(q)) - 1.0) > QUATERNION_TOLERANCE:  # e.g. all zeros: never set
                return f"a reference odometry orientation of norm {np.linalg.norm(q):.3f}, not a unit quaternion"
            if self._stamps and stamp_ns <= self._stamps[-1]:
                if stamp_ns > self._stamps[-1] - OUT_OF_ORDER_NS:  # further back: time went back (a bag loop)
                    return "a reference odometry stamp not after the previous one"
                self._stamps, self._samples = [], []  # time went backwards: a new recording
            self._stamps.append(int(stamp_ns))
            self._samples.append((quaternions.quat2mat([q[3], q[0], q[1], q[2]]), position))  # transforms3d: w first
            self.last_added = self.clock()
            old = bisect.bisect_left(self._stamps, self._stamps[-1] - HISTORY_NS)
            del self._stamps[:old], self._samples[:old]
        return None

    def _at(self, stamp_ns: int, base_from_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(odom_from_base rotation of the nearer sample, camera centre in odom interpolated
        between the two samples around stamp_ns), or None when no two close samples bracket it and
        the newest is not just before it. Up to MAX_HOLD_NS after the newest sample, the centre
        goes on at the last step's velocity (held where the step before it is a gap); the rotation,
        only the clip's turn gate, is the newest's."""
        def centre(j: int) -> np.ndarray:  # the camera's centre in odom at sample j
            r, p = self._samples[j]
            return r @ base_from_camera[:3, 3] + p

        st = self._stamps
        i = bisect.bisect_left(st, stamp_ns)
        exact = i < len(st) and st[i] == stamp_ns
        after_newest = i == len(st) and i and stamp_ns - st[-1] <= MAX_HOLD_NS
        if exact or (after_newest and (i < 2 or st[-1] - st[-2] > MAX_BRACKET_NS)):
            j = i if exact else -1
            return self._samples[j][0], centre(j)
        if after_newest:  # w > 1: the line through the last two samples, past the newest
            w = (stamp_ns - st[-2]) / (st[-1] - st[-2])
            return self._samples[-1][0], (1 - w) * centre(-2) + w * centre(-1)
        if i == 0 or i == len(st) or st[i] - st[i - 1] > MAX_BRACKET_NS:
            return None
        w = (stamp_ns - st[i - 1]) / (st[i] - st[i - 1])
        return self._samples[i - 1 if w < 0.5 else i][0], (1 - w) * centre(i - 1) + w * centre(i)

    def camera_travel(self, t0_ns: int, t1_ns: int, base_from_camera: np.ndarray) -> tuple[float, float] | None:
        """(distance in m, rotation in rad) of the camera from t0 to t1 by the reference; None where
        the reference does not cover both stamps."""
        mount = np.asarray(base_from_camera, float)
        with self._lock:
            a, b = self._at(int(t0_ns), mount), self._at(int(t1_ns), mount)
        if a is None or b is None:
            return None
        return float(np.linalg.norm(b[1] - a[1])), float(np.linalg.norm(rotation_vector(a[0].T @ b[0])))

    def observe(self, t0_ns: int, t1_ns: int, model_translation: np.ndarray, base_from_camera: np.ndarray) -> bool:
        """The clip's first and last frame stamps and the model's unscaled camera translation
        between them (3,). -> whether the clip counted; `scale` follows."""
        self.clips_offered += 1
        travel = self.camera_travel(t0_ns, t1_ns, base_from_camera)
        if travel is None:
            return False
        self.clips_seen += 1
        distance, turned = travel
        self.longest_m = max(self.longest_m, distance)  # a standing robot's clips never reach min_distance_m
        self.largest_turn = max(self.largest_turn, turned)
        self.clips_turned += int(turned > self.max_rotation)
        model_distance = float(np.linalg.norm(model_translation))
        if distance < self.min_distance_m or turned > self.max_rotation or not model_distance > 1e-4:
            return False
        ratio = distance / model_distance
        if not 1 / MAX_RATIO <= ratio <= MAX_RATIO:
            return False
        self.ratios.append(ratio)
        self.clips_used += 1
        if len(self.ratios) >= self.min_clips:
            self.scale = float(np.median(self.ratios))
        return True

    @property
    def in_effect(self) -> bool:
        """Whether `scale` is the reference's (min_clips counted), not still `initial`."""
        return len(self.ratios) >= self.min_clips

    def status(self) -> dict:
        """For diagnostics (the node counts refused reference messages as errors_reference_odometry)."""
        return {"metric_scale": round(self.scale, 4), "metric_scale_clips_used": self.clips_used,
                "metric_scale_clips_seen": self.clips_seen, "metric_scale_longest_clip_m": round(self.longest_m, 3),
                "metric_scale_min_distance_m": self.min_distance_m, "metric_scale_clips_turned": self.clips_turned,
                "metric_scale_largest_turn_deg": round(math.degrees(self.largest_turn), 1),
                "metric_scale_max_rotation_deg": round(math.degrees(self.max_rotation), 1), **reference_status(self)}


def reference_status(reference: ReferenceScale | DepthReferenceScale) -> dict:
    """What both references report for health.level's rules: the clips described since the reference
    started (configure), the clips it needs counted, and its age: seconds since its last sample was
    taken (nan before any: the topic remapped wrong, or nothing published on it)."""
    last = reference.last_added
    return {"metric_scale_clips_described": reference.clips_offered, "metric_scale_min_clips": reference.min_clips,
            "metric_scale_reference_age_s": float("nan") if last is None else round(reference.clock() - last, 2)}


# An RGB-D camera's depth image pairs with the colour frame nearest in stamp within this (aligned
# depth carries the colour frame's stamp or one a few milliseconds off it).
DEPTH_MAX_DT_NS = 20_000_000
# Reference depth images kept: a clip waiting for inference under overload, at 30 Hz and more.
DEPTH_HISTORY = 64
# A frame counts where the reference and the model both have at least this share of the view.
DEPTH_MIN_SHARE = 0.05


class DepthReferenceScale:
    """metric_scale_source: reference_depth. An RGB-D camera's depth, registered to the colour image
    and already on the model's pixel grid, `add`ed by stamp (any thread); per clip, `measure` takes
    the median over its frames of median(reference / model) on the pixels both have. `scale`, for
    the clip's depth, is that clip's (or the last measured one where a clip has no reference;
    initial: `initial`, metric_scale_factor); `motion_scale`, for its motion, is the median of the
    last `window` clips' (metric_scale_window). Why two: the model's metres drift with the view
    within one scene (TUM fr1/rpy, validation: 0.3-0.8 of the truth from a desk to a floor view), so
    the depth takes the clip's own (on TUM a window of 1 / 3 / 10 clips scored metric AbsRel 0.235 /
    0.285 / 0.307; the kitchen and the walk, train: within 0.012), while an odometry whose scale
    jumped from clip to clip bent its path (ATE over 6 starts up to 26 % worse; docs/results/session43)."""

    min_clips = 1  # the depth takes the first clip counted's scale

    def __init__(self, initial: float = 1.0, window: int = 30, clock: Callable[[], float] | None = None):
        self._lock = threading.Lock()
        self._depth: dict[int, np.ndarray] = {}
        self.ratios: deque = deque(maxlen=window)
        # The window's median, kept as the window changes: read several times a clip, and computed
        # each time it cost 9 ms a clip with a window of 100000 (metric_scale_window's bound).
        self.initial = self.scale = self.motion_scale = float(initial)
        self.clips_seen = 0  # clips measured
        self.clips_used = 0  # of them, those with a reference on enough of the view
        self.clock = clock or monotonic  # for the reference's age on /diagnostics, as ReferenceScale's
        self.last_added: float | None = None  # clock() when the last depth image was taken, None before any
        self.before_colour = 0  # depth images that came before any colour frame: unchecked, so not used

    def add(self, stamp_ns: int, depth: np.ndarray) -> None:
        """(h, w) metres on the model's grid, 0 / NaN where the sensor has none."""
        with self._lock:
            if self._depth and stamp_ns < max(self._depth) - OUT_OF_ORDER_NS:
                self._depth.clear()  # time went backwards (a bag loop, a simulator reset): a new recording
            self._depth[int(stamp_ns)] = depth
            while len(self._depth) > DEPTH_HISTORY:
                del self._depth[min(self._depth)]
            self.last_added = self.clock()

    def _nearest(self, stamp_ns: int) -> np.ndarray | None:
        with self._lock:
            if not self._depth:
                return None
            best = min(self._depth, key=lambda s: abs(s - stamp_ns))
            return self._depth[best] if abs(best - stamp_ns) <= DEPTH_MAX_DT_NS else None

    def measure(self, stamps_ns: list[int], model_depth: np.ndarray) -> bool:
        """The clip's frames' stamps and their unscaled depth (T, h, w). -> whether it counted."""
        self.clips_seen += 1
        ratios = []
        for stamp, own in zip(stamps_ns, model_depth):
            ref = self._nearest(stamp)
            if ref is None or ref.shape != own.shape:
                continue
            both = np.isfinite(ref) & (ref > 0) & np.isfinite(own) & (own > 0)
            if both.mean() >= DEPTH_MIN_SHARE:
                ratios.append(float(np.median(ref[both] / own[both])))
        if not ratios:
            return False
        ratio = float(np.median(ratios))
        # Against the window's median (the configured factor before any clip): a sensor glitch or a
        # unit error (millimetres published as metres), not a change of view. The first clip was
        # taken unchecked, and every right one after a wrong first was then refused against it.
        if not 1 / MAX_RATIO <= ratio / self.motion_scale <= MAX_RATIO:
            return False
        self.scale, self.clips_used = ratio, self.clips_used + 1
        self.ratios.append(ratio)
        self.motion_scale = float(np.median(self.ratios))
        return True

    @property
    def in_effect(self) -> bool:
        """Whether `scale` is the reference's (a clip counted), not still `initial`."""
        return self.clips_used >= self.min_clips

    @property
    def clips_offered(self) -> int:  # every clip described is measured
        return self.clips_seen

    def status(self) -> dict:
        return {"metric_scale": round(self.scale, 4), "metric_scale_motion": round(self.motion_scale, 4),
                "metric_scale_clips_used": self.clips_used, "metric_scale_clips_seen": self.clips_seen,
                "reference_depth_before_colour": self.before_colour, **reference_status(self)}
