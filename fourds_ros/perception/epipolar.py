"""The direction in which a clip's camera moved, from the epipolar geometry of its first and last
frames. No rclpy.

Why: the pose solver (pose_geometry.py) finds each frame's motion by PnP on the model's own depth,
and where that depth's shape is wrong (a scene the model never saw: relative AbsRel 0.23 on the
validation desk) PnP trades the translation against the rotation. Rotation is right (with true
rotations the validation ATE does not move); the direction of the translation is what misses
(with true directions it would fall to 0.61x ORB VO's; docs/results/pose_error_budget). Two views
fix a translation's direction without any depth: the essential matrix. ORB VO does this frame to
frame; a clip's first and last frames are 7 frames apart, a wider baseline.

How: Shi-Tomasi corners of the clip's first camera image (not on the robot itself), followed over
every second frame to the last by pyramidal LK (the tracks' settings, track_refine.lk_step), then the
five-point essential matrix (OpenCV's USAC MAGSAC: it measured twice as many of the validation
recording's clips as RANSAC, more accurately) and cv2.recoverPose (cheirality). The direction is used
only when the two views measure it: at least MIN_INLIERS inliers that cv2.recoverPose finds in
front of both cameras within 50 baselines (its default distanceThresh: a point further away shows
under about a degree of parallax and is not counted), and a median translational
parallax (what is left of an inlier's motion once the recovered rotation is undone) of at least
MIN_PARALLAX_PX (a camera that only turns has none, and its essential matrix is noise), and the
two views' rotation within MAX_ROTATION_DISAGREEMENT_DEG of the pose solver's own: the solver's
rotation is right (see above), and the wild essential matrices measured (directions 35-119 degrees
off) had rotations 11.9-21 degrees off (docs/results/session31). The pipeline asks for the direction
also where its PnP geometry calls the clip rotation-only: that test reads the model's depth, this
one the camera's own images (on the validation desk, every clip the geometry called rotation-only
had moved 2-3 cm). The pipeline
turns the clip's translations so that the last frame's points in that direction; their sizes (the
model's metres) and the rotations stay. Measured on every recording in models/fourds_default/README.md
(session 29).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .pose_geometry import fit_turn
from .track_refine import _as_uint8, lk_step

# The essential matrix's inlier threshold, camera pixels: LK's precision on a sharp corner.
RANSAC_PX = 1.0
# Fewer inliers than this and the five-point solution is one of many that fit.
MIN_INLIERS = 30
# Below this median translational parallax (camera pixels) the translation is not measured.
MIN_PARALLAX_PX = 1.0
# The two views' rotation may differ from the pose solver's by this much. Right directions came
# with up to 7.8 degrees of disagreement on the validation desk, the wrong ones measured with 11.9-21
# (session 31, rule 8: 5 degrees refused a third of the desk's measured directions).
MAX_ROTATION_DISAGREEMENT_DEG = 10.0
# cv2.recoverPose counts a point in front of both cameras only within this many baselines (OpenCV's
# default, passed by name): two views whose baseline is under 1/50 of the scene's depth measure no
# translation, and their silence then says nothing of one that short (views_would_measure; rule 70a).
# Counting every point instead read TUM's 30 Hz ATE 1.17x (rule 70): noise directions on turning clips.
CHEIRALITY_DISTANCE_BASELINES = 50.0
# Shi-Tomasi: corners at least this many camera pixels apart, quality 1 % of the best corner.
MIN_CORNER_DISTANCE_PX = 8
CORNER_QUALITY = 0.01
# LK follows the corners over every FOLLOW_STRIDE-th frame (and the last): LK's work is most of this
# direction's cost. With 300 corners, every second frame took 34 ms a clip against 47 ms for every
# frame at the same accuracy on the three labelled recordings (docs/results/session30, rules 6-7).
FOLLOW_STRIDE = 2
# A step's turn (step_rotation) is taken where it explains the corners to this median residual (camera
# pixels): LK's precision, as RANSAC_PX.
TURN_FIT_PX = 1.0


@dataclass
class EpipolarMotion:
    direction: np.ndarray  # (3,) unit: the last frame's camera centre in the first frame's camera frame
    rotation: np.ndarray  # (3, 3) first_from_last, from the essential matrix (reported, not used)
    inliers: int
    parallax_px: float


@dataclass
class CornerSteps:
    """Corners followed through a clip. first, last: (M, 2) camera pixels, in the first and the last
    frame, of the first frame's corners that lasted the clip. steps: each step LK took, (frame a,
    frame b, (N, 2) pixels in a, (N, 2) in b) of every corner it followed there, those seeded on
    the way included."""

    first: np.ndarray
    last: np.ndarray
    steps: list[tuple[int, int, np.ndarray, np.ndarray]]


def _seed_corners(gray: np.ndarray, corners: int, keep: np.ndarray | None) -> np.ndarray:
    """(M, 2) Shi-Tomasi corners of one (H, W) gray image, where `keep` allows; (0, 2) when none."""
    seeds = cv2.goodFeaturesToTrack(_as_uint8(gray), corners, CORNER_QUALITY, MIN_CORNER_DISTANCE_PX,
                                    mask=None if keep is None else keep.astype(np.uint8))
    return np.zeros((0, 2)) if seeds is None else seeds.reshape(-1, 2).astype(np.float64)


def follow_corner_steps(grays: Sequence[np.ndarray], corners: int, keep: np.ndarray | None = None,
                        stride: int | None = None, replenish_below: int = 0,
                        predict: Callable[[int, int, np.ndarray], np.ndarray] | None = None,
                        seeded: dict[int, np.ndarray] | None = None, frames: Sequence[int] | None = None
                        ) -> CornerSteps:
    """grays: the clip's (H, W) gray camera images (only the frames followed are read); corners: how
    many to seed in the first; keep: optional (H, W) bool, where a corner may be seeded; stride: LK
    from frame to frame `stride` apart (and to the last; default FOLLOW_STRIDE). replenish_below:
    where fewer corners than this are still followed at the start of a step, fresh ones are seeded
    there (0: never), so that every step can measure its own motion; they never count for first and
    last. Why: at a low frame rate or a fast walk, the first frame's corners are gone within a few
    frames (the HoloLens walk: no clip kept enough for the first and last frames' direction).
    predict: optional (frame a, frame b, (N, 2) pixels in a) -> (N, 2) pixels in b where LK starts
    its search (e.g. rotation_guess). seeded: optional {frame: (M, 2) corners} shared by passes over
    the same images and settings, which reuse each other's corners instead of detecting them again
    (Shi-Tomasi is about half of a pass's time at 640x480). frames: the frames followed instead of every
    stride-th one, in order (e.g. one step, t - 1 to t, of the clip whose `seeded` corners it shares)."""
    stride = FOLLOW_STRIDE if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    followed = sorted(set(range(0, len(grays), stride)) | {len(grays) - 1}) if frames is None else list(frames)
    images = {t: grays[t] for t in followed}
    seeded = {} if seeded is None else seeded

    def seed(t: int) -> np.ndarray:
        if t not in seeded:
            seeded[t] = _seed_corners(images[t], corners, keep)
        return seeded[t]

    start = seed(followed[0])
    at, alive, original = start.copy(), np.ones(len(start), bool), np.ones(len(start), bool)
    steps = []
    for a, b in zip(followed[:-1], followed[1:]):
        if replenish_below and alive.sum() < replenish_below:
            fresh = seed(a)
            start, at = np.concatenate([start, fresh]), np.concatenate([at, fresh])
            alive = np.concatenate([alive, np.ones(len(fresh), bool)])
            original = np.concatenate([original, np.zeros(len(fresh), bool)])
        rows = np.flatnonzero(alive)
        if not len(rows):
            break
        moved, ok = lk_step(images[a], images[b], at[rows],
                            guess=None if predict is None else predict(a, b, at[rows]))
        steps.append((a, b, at[rows[ok]].copy(), moved[ok].copy()))
        at[rows] = moved
        alive[rows[~ok]] = False
    lasted = alive & original
    return CornerSteps(start[lasted], at[lasted], steps)


def rotation_guess(k: np.ndarray, rotation: np.ndarray) -> Callable[[int, int, np.ndarray], np.ndarray]:
    """predict for follow_corner_steps: where the camera's rotation alone moves each pixel from
    frame a to frame b, through the infinite homography K R_b^T R_a K^-1 (k: 3x3 camera matrix of
    the images; rotation: (T, 3, 3) first_from_t, as solved). Why: LK searches a window around
    where it starts; at a low frame rate or a fast turn (the HoloLens walk: 4 degrees a frame, 8
    between the frames followed) the corners move farther than its pyramid reaches, while the
    clip's solved rotation says where most of that motion takes them."""
    k = np.asarray(k, np.float64)
    k_inv = np.linalg.inv(k)

    def predict(a: int, b: int, xy: np.ndarray) -> np.ndarray:
        h = k @ np.asarray(rotation[b], np.float64).T @ np.asarray(rotation[a], np.float64) @ k_inv
        moved = np.c_[np.asarray(xy, np.float64).reshape(-1, 2), np.ones(len(xy))] @ h.T
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(moved[:, 2:] > 0, moved[:, :2] / moved[:, 2:], np.nan)
    return predict


def follow_corners(grays: Sequence[np.ndarray], corners: int, keep: np.ndarray | None = None,
                   stride: int | None = None, seeded: dict[int, np.ndarray] | None = None,
                   frames: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """follow_corner_steps without replenishing -> ((M, 2) first-frame and (M, 2) last-frame camera
    pixels) of the corners LK followed through the clip (or its `frames`)."""
    chain = follow_corner_steps(grays, corners, keep, stride, seeded=seeded, frames=frames)
    return chain.first, chain.last


def essential_motion(x0: np.ndarray, x1: np.ndarray, k: np.ndarray, expected_rotation: np.ndarray | None = None
                     ) -> EpipolarMotion | None:
    """(M, 2) camera pixels of the same points in two views, K 3x3 -> the motion's direction and
    rotation, or None where the views do not measure a translation (too few inliers, too little
    parallax) or their rotation disagrees with expected_rotation (3x3 first_from_last, e.g. the
    pose solver's) by more than MAX_ROTATION_DISAGREEMENT_DEG."""
    if len(x0) < MIN_INLIERS:
        return None
    k = np.asarray(k, np.float64)
    essential, inliers = cv2.findEssentialMat(x0, x1, k, method=cv2.USAC_MAGSAC, prob=0.999,
                                              threshold=RANSAC_PX)
    if essential is None or essential.shape != (3, 3):  # several solutions come stacked: ambiguous
        return None
    _, r, t, mask, _ = cv2.recoverPose(essential, x0, x1, k, distanceThresh=CHEIRALITY_DISTANCE_BASELINES,
                                          mask=inliers)
    used = mask.ravel() > 0
    if used.sum() < MIN_INLIERS:
        return None
    # Undo the rotation (the infinite homography K R K^-1): what is left of each point's motion is
    # the translation's parallax.
    derotated = (k @ r @ np.linalg.inv(k) @ np.c_[x0[used], np.ones(used.sum())].T).T
    parallax = float(np.median(np.linalg.norm(x1[used] - derotated[:, :2] / derotated[:, 2:], axis=1)))
    if not parallax >= MIN_PARALLAX_PX:
        return None
    if expected_rotation is not None:  # r is last_from_first; expected is first_from_last
        disagreement = np.degrees(np.linalg.norm(cv2.Rodrigues(r @ np.asarray(expected_rotation, np.float64))[0]))
        if disagreement > MAX_ROTATION_DISAGREEMENT_DEG:
            return None
    # recoverPose: x_last = R x_first + t; the last camera's centre in the first frame is -R^T t.
    centre = -r.T @ t.ravel()
    return EpipolarMotion(centre / np.linalg.norm(centre), r.T, int(used.sum()), parallax)


def views_would_measure(translation: np.ndarray, depth: np.ndarray | None) -> bool:
    """Whether a clip's first and last views would have measured its solved travel: translation (T, 3) first
    frame to each (its last row the travel), depth the first frame's (any shape; NaN, inf, <= 0 none), both in
    the model's metres. True where the travel is at least the depth's median / CHEIRALITY_DISTANCE_BASELINES,
    the baseline at which essential_motion counts half of the scene's points; True without depth. Why (rule
    70a): the hold took views that measured nothing as a camera that did not move, and a robot driving 0.05-0.2
    m/s through a room 2-6 m deep (1-5 cm a clip at 30 Hz) read as standing still; on the 7-Scenes kitchen
    (train) 5 of its first 11 clips were held, 7.6 cm of travel published as none."""
    if depth is None:
        return True
    depth = np.asarray(depth, np.float64)
    depth = depth[np.isfinite(depth) & (depth > 0)]
    travel = float(np.linalg.norm(np.asarray(translation, np.float64)[-1]))
    return not depth.size or travel >= float(np.median(depth)) / CHEIRALITY_DISTANCE_BASELINES


def step_rotation(xa: np.ndarray, xb: np.ndarray, k: np.ndarray, solved: np.ndarray) -> np.ndarray | None:
    """One step's rotation a_from_b from the same corners in two camera images (xa, xb: (N, 2) pixels;
    k 3x3): the turn of their bearings where a turn explains them to TURN_FIT_PX (the camera turned, or
    moved too little for its baseline to show), else the essential matrix's rotation (cv2.recoverPose:
    at least MIN_INLIERS points in front of both cameras); None where neither measures, or where the
    result is over MAX_ROTATION_DISAGREEMENT_DEG from `solved` (a_from_b as the pose solver has it: a
    wrong essential matrix is far off, as for the clip's direction). Why (rule 69): the solved rotation
    rests on the model's depth at model resolution, and is 2-3 times as wrong as ORB VO's frame to frame
    on a fast walk; corners on the camera image measure a step without depth."""
    if len(xa) < MIN_INLIERS:
        return None
    xa, xb, k = np.asarray(xa, np.float64), np.asarray(xb, np.float64), np.asarray(k, np.float64)
    fit = fit_turn(xa, xb, k, MIN_INLIERS)  # a_from_b: the turn of the bearings, as for the tracks' (rule 68a)
    turn = fit[0] if fit is not None and np.median(fit[2][fit[1]]) < TURN_FIT_PX else None
    if turn is None:
        essential, inliers = cv2.findEssentialMat(xa, xb, k, method=cv2.USAC_MAGSAC, prob=0.999, threshold=RANSAC_PX)
        if essential is not None and essential.shape == (3, 3):
            used, r, _, _, _ = cv2.recoverPose(essential, xa, xb, k, distanceThresh=CHEIRALITY_DISTANCE_BASELINES,
                                                  mask=inliers)
            turn = r.T if used >= MIN_INLIERS else None  # r: b_from_a
    if turn is None or np.degrees(np.linalg.norm(cv2.Rodrigues(turn.T @ solved)[0])) > MAX_ROTATION_DISAGREEMENT_DEG:
        return None
    return turn


def rotation_from_steps(rotation: np.ndarray, steps: Sequence[tuple[int, int, np.ndarray, np.ndarray]], k: np.ndarray,
                        skip: np.ndarray, first_from_last: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """A clip's rotations first_from_t (T, 3, 3) with each step the corners were followed over
    (CornerSteps.steps, frame to frame) measured by step_rotation where it measures one and neither
    frame is in skip ((T,) bool: frames the geometry called still); the solved step elsewhere. A step
    over several frames is spread over them evenly. first_from_last: the clip's first and last views'
    own rotation (EpipolarMotion.rotation, where they measured a translation): the chained rotations are
    then bent, evenly over the clip, to end there. Why: a turn also explains a small sideways move of a
    far scene, frame to frame; over the whole clip the baseline is long enough for the essential matrix
    to tell them apart. -> (rotations, steps measured)."""
    rotation = np.asarray(rotation, np.float64)
    out, measured, reached = rotation.copy(), 0, 0
    for a, b, xa, xb in steps:
        solved = rotation[a].T @ rotation[b]
        turn = None if skip[a] or skip[b] else step_rotation(xa, xb, k, solved)
        measured += turn is not None
        correction = cv2.Rodrigues((turn if turn is not None else solved) @ solved.T)[0]
        for t in range(a + 1, b + 1):
            share = cv2.Rodrigues(correction * (t - a) / (b - a))[0]
            out[t] = out[a] @ share @ rotation[a].T @ rotation[t]
        reached = b
    for t in range(reached + 1, len(out)):  # past the last step followed (every corner lost): the solved steps
        out[t] = out[reached] @ rotation[reached].T @ rotation[t]
    if first_from_last is not None and len(out) > 1:
        bend = cv2.Rodrigues(np.asarray(first_from_last, np.float64) @ out[-1].T)[0]
        out = np.stack([cv2.Rodrigues(bend * t / (len(out) - 1))[0] @ out[t] for t in range(len(out))])
    return out, measured


def turn_onto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 3x3 rotation that takes the direction of (3,) `a` onto that of (3,) `b` about their common
    normal (identity where either is zero; a half turn about any normal where they are opposite)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if not (na > 0 and nb > 0):
        return np.eye(3)
    a, b = a / na, b / nb
    axis, cos = np.cross(a, b), float(a @ b)
    if np.linalg.norm(axis) < 1e-12:
        if cos > 0:
            return np.eye(3)
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])  # any axis normal to a
        return cv2.Rodrigues(axis / np.linalg.norm(axis) * np.pi)[0]
    return cv2.Rodrigues(axis / np.linalg.norm(axis) * np.arctan2(np.linalg.norm(axis), cos))[0]


def turn_translations(translation: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(T, 3) first_from_t translations turned by the one rotation that takes the last frame's
    direction onto `direction` (3,) (a unit vector); sizes unchanged. Unchanged where the last
    translation is zero."""
    translation = np.asarray(translation, np.float64)
    return translation @ turn_onto(translation[-1], direction).T


def step_motions(steps: Sequence[tuple[int, int, np.ndarray, np.ndarray]], k: np.ndarray,
                 rotation: np.ndarray) -> list[EpipolarMotion | None]:
    """Each step's (CornerSteps.steps) essential matrix (essential_motion, with the solved rotation
    between its two frames expected; rotation (T, 3, 3) first_from_t as solved), or None where it
    measures none."""
    return [essential_motion(xa, xb, k, rotation[a].T @ rotation[b]) for a, b, xa, xb in steps]


def stepwise_direction(steps: Sequence[tuple[int, int, np.ndarray, np.ndarray]],
                       motions: Sequence[EpipolarMotion | None], rotation: np.ndarray,
                       translation: np.ndarray) -> np.ndarray | None:
    """The direction of a clip's last frame from its first, summed over the steps its corners were
    followed (CornerSteps.steps): each step's essential matrix (motions, from step_motions) gives
    that step's direction, the solved motion its length; a step that measures none keeps the
    solved step. rotation (T, 3, 3), translation (T, 3): first_from_t. -> (3,) unit vector in the
    first frame, or None when fewer than half of the steps measured a direction or the sum is
    zero. Why: ORB VO measures each pair of frames on its own; where the first and last frames
    share too few corners, the steps still do."""
    total, measured = np.zeros(3), 0
    for (a, b, *_), motion in zip(steps, motions):
        own = rotation[a].T @ (translation[b] - translation[a])  # the solved step, in frame a's axes
        if motion is not None:
            measured += 1
            own = motion.direction * np.linalg.norm(own)
        total += rotation[a] @ own
    size = float(np.linalg.norm(total))
    if not len(steps) or 2 * measured < len(steps) or not size > 0:
        return None
    return total / size
