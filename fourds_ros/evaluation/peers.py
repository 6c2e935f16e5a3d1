"""Classical peers computed with OpenCV on the same frames, scored by the same code. No rclpy.

constant_depth: every pixel = the median of all valid ground-truth depth of the sequence (an oracle
    constant: its median-scaled metrics are what a method must beat, its metric ones are a floor).
lk_tracks: pyramidal Lucas-Kanade (cv2.calcOpticalFlowPyrLK), frame to frame from each query.
orb_vo: ORB features, essential matrix (RANSAC) and cv2.recoverPose, chained frame to frame; each step
    has unit length. Monocular VO observes no metres, and Sim(3) alignment removes one global scale; it does
    observe the relative length of two steps from the points they share, which unit steps ignore, so a camera
    whose speed changes puts a floor under this peer's ATE. Why unit steps all the same: the textbook relative
    scale (each step's length from the depths, triangulated by both steps, of the points they share; median
    ratio) drifted more frame to frame on every labelled recording: ATE TUM fr1/rpy 0.0241 against 0.0230, the
    HoloLens walk 0.100 against 0.081, the 7-Scenes kitchen 0.304 against 0.213 m (session 67,
    docs/results/session67/orb_vo_scale/). The stronger of the two is the peer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import cv2
import numpy as np

from ..perception.track_refine import lk_step
from .frame_store import TimedReads
from .predictions import Predictions


def constant_depth(stamps: list[int], gt_depth: dict[int, np.ndarray], shape: tuple[int, int] = (1, 1),
                   like: Predictions | None = None) -> Predictions:
    """like: the method under test; its depth image size, K and pixels with no depth (NaN) per stamp are
    copied, and only its stamps are answered, so that the constant is scored on exactly the same frames and
    pixels (e.g. the model's centre crop). Why: scored on every frame and pixel while the method was scored
    where it answered, a method's blind or shed frames left its mean and not the constant's (40 of TUM's
    worst frames without depth read the ratio 0.54 against 0.98 paired). A method with no depth at all:
    the constant alone, on `shape`."""
    preds, read = Predictions(name="constant_depth", frames_in=len(stamps)), TimedReads()
    t0 = time.perf_counter()
    median = median_valid_depth(gt_depth, read)  # the reading (unzipping) left out of its time
    if median is not None:
        paired = like is not None and bool(like.depth)
        for s in stamps:
            if paired and s in like.depth:
                preds.depth[s] = np.where(np.isnan(like.depth[s]), np.float32(np.nan), np.float32(median))
                if s in like.depth_K:
                    preds.depth_K[s] = like.depth_K[s]
            elif not paired:
                preds.depth[s] = np.full(shape, median, np.float32)
    preds.wall_s = time.perf_counter() - t0 - read.s
    return preds


def _valid_depth(depth: np.ndarray) -> np.ndarray:
    return depth[np.isfinite(depth) & (depth > 0)]


def median_valid_depth(gt_depth: Mapping[int, np.ndarray], read=None) -> float | None:
    """np.median of every valid (finite, > 0) value of all the ground-truth depth images, None where there is
    none: the same number, without the whole recording's values in memory (they and np.median's copy of them
    were eval's peak, 1.7 MB a 640x480 frame). float32 depth (a bag's /gt/depth): positive floats order as
    their bits do, so the middle values are found by counting the top 16 bits, then the low 16 bits in the
    buckets that hold them (two reads of the depth); depth of another dtype is concatenated, as it was. read:
    how a frame is read (frames, stamp) -> array (a TimedReads, to time the reading apart)."""
    read = read or (lambda frames, stamp: frames[stamp])
    counts = np.zeros(1 << 16, np.int64)
    for stamp in gt_depth:
        depth = read(gt_depth, stamp)
        if depth.dtype != np.float32:
            values = np.concatenate([_valid_depth(read(gt_depth, s)) for s in gt_depth])
            return float(np.median(values)) if values.size else None
        counts += np.bincount(_valid_depth(depth).view(np.uint32) >> 16, minlength=1 << 16)
    n = int(counts.sum())
    if n == 0:
        return None
    ranks = [(n - 1) // 2] if n % 2 else [n // 2 - 1, n // 2]  # np.median's middle value, or the two it averages
    below = np.cumsum(counts)
    top = [int(np.searchsorted(below, r, side="right")) for r in ranks]
    low = {t: np.zeros(1 << 16, np.int64) for t in top}
    for stamp in gt_depth:
        bits = _valid_depth(read(gt_depth, stamp)).view(np.uint32)
        for t, c in low.items():
            c += np.bincount(bits[(bits >> 16) == t] & 0xFFFF, minlength=1 << 16)
    middle = [(t << 16) | int(np.searchsorted(np.cumsum(low[t]), r - (below[t - 1] if t else 0), side="right"))
              for r, t in zip(ranks, top)]
    return float(np.median(np.array(middle, np.uint32).view(np.float32)))


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def lk_tracks(stamps: list[int], images: dict[int, np.ndarray], queries: dict[int, tuple[int, float, float]],
              win: int = 21, levels: int = 3, max_error: float = 30.0) -> Predictions:
    """queries: id -> (stamp, u, v). Each point starts at its query frame and is tracked forward.
    A point lost by LK (status 0, error above max_error, or out of the image) stays invisible at its
    last position; it is not re-detected."""
    preds, read = Predictions(name="lk", frames_in=len(stamps)), TimedReads()
    t0 = time.perf_counter()
    ids = np.array(sorted(queries), np.int64)
    start = {tid: queries[tid][0] for tid in ids}
    pts = np.full((len(ids), 2), np.nan, np.float32)
    alive = np.zeros(len(ids), bool)
    prev_gray = None
    for s in stamps:
        gray = _gray(read(images, s))
        if prev_gray is not None and prev_gray.shape != gray.shape:  # the camera changed resolution: LK cannot follow
            alive[:] = False
        if prev_gray is not None and alive.any():
            idx = np.flatnonzero(alive)
            new, ok = lk_step(prev_gray, gray, pts[idx], win, levels, max_error)
            pts[idx[ok]] = new[ok]
            alive[idx[~ok]] = False
        for i, tid in enumerate(ids):  # points whose query frame is now start here
            if start[tid] == s:
                pts[i] = queries[tid][1:]
                alive[i] = True
        started = np.array([start[t] <= s for t in ids], bool)
        preds.tracks[s] = {"ids": ids[started], "uv": pts[started].astype(np.float64),
                           "visible": alive[started].copy()}
        prev_gray = gray
    preds.wall_s = time.perf_counter() - t0 - read.s
    return preds


# recoverPose's cheirality count ignores points triangulated beyond this many baselines; OpenCV's
# default (50) counted almost none where the camera turned and barely moved (2-5 mm), so steps with
# hundreds of RANSAC inliers and a rotation right to under a degree were refused and the camera held
# still: the peer lost 24 of TUM fr1/rpy's 79 steps, and turned 0.71x as far as the camera (session 51).
VO_DISTANCE_THRESH = 1e6


def essential_step(p0: np.ndarray, p1: np.ndarray, K: np.ndarray, min_good: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(N, 2) matched pixels of two frames -> (R, t (3,) of unit length, (N,) bool: the matches recoverPose kept)
    with x1 = R x0 + t, or None where the essential matrix fails or fewer than min_good points lie in front of
    both cameras."""
    E, inliers = cv2.findEssentialMat(p0, p1, K, method=cv2.RANSAC, prob=0.999, threshold=1.0)
    if E is None or E.shape != (3, 3):
        return None
    n_good, R, t, mask, _ = cv2.recoverPose(E, p0, p1, K, distanceThresh=VO_DISTANCE_THRESH, mask=inliers)
    return (R, t.ravel(), mask.ravel() > 0) if n_good >= min_good else None


def orb_vo(stamps: list[int], images: dict[int, np.ndarray], K, n_features: int = 2000,
           min_matches: int = 15) -> Predictions:
    """Monocular VO: pose of each frame in the first camera's frame (odom_from_camera), unit steps.
    K: (3, 3), or stamp -> (3, 3) for a camera whose calibration changes (bag.intrinsics).
    When a step fails (too few matches, degenerate essential matrix, too few points in front of both
    cameras, or the image size changed between the two frames: one K cannot relate them) the camera
    is held still."""
    K_at = K if callable(K) else (lambda _stamp: K)
    preds, read = Predictions(name="orb_vo", frames_in=len(stamps)), TimedReads()
    t0 = time.perf_counter()
    orb = cv2.ORB_create(nfeatures=n_features)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    pose = np.eye(4)
    prev = None
    failures = 0
    for s in stamps:
        gray = _gray(read(images, s))
        kp, des = orb.detectAndCompute(gray, None)
        K = K_at(s)
        if prev is not None and des is not None and prev[1] is not None and prev[2] == gray.shape:
            matches = matcher.match(prev[1], des)
            step = None
            if len(matches) >= min_matches:
                p0 = np.float64([prev[0][m.queryIdx].pt for m in matches])
                p1 = np.float64([kp[m.trainIdx].pt for m in matches])
                motion = essential_step(p0, p1, K, min_matches // 2)
                if motion is not None:
                    # recoverPose gives x1 = R x0 + t (camera0 -> camera1); invert for 0_from_1.
                    c1_from_c0 = np.eye(4)
                    c1_from_c0[:3, :3], c1_from_c0[:3, 3] = motion[0], motion[1]
                    step = np.linalg.inv(c1_from_c0)
            if step is None:
                failures += 1
            else:
                pose = pose @ step
        elif prev is not None and prev[2] != gray.shape:
            failures += 1
        preds.poses[s] = pose.copy()
        prev = (kp, des, gray.shape)
    preds.wall_s = time.perf_counter() - t0 - read.s
    preds.dropped = 0
    preds.vo_failures = failures  # type: ignore[attr-defined]
    return preds
