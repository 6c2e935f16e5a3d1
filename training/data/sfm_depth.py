"""Sparse depth labels for unlabelled real video, triangulated from the video's own parallax
(issue #17, "data that transfers": the depth head learns the shape of scenes no depth camera
recorded; session 49's note).

Why: the depth head was taught by two labelled rooms and reads a new scene as "a prior of rooms"
(model card, sessions 48-49); labelled depth from more kinds of scene is what moves it. A moving
camera's parallax gives depth without a sensor, up to one scale per frame, which is what a
scale-and-shift-invariant loss needs (losses.ssi_depth_loss); the labels say nothing about metres.

How, for a target frame j: Shi-Tomasi corners of j followed by LK, checked forward and backward at
each step, to the first frame on each side where they have moved far enough for parallax
(`min_flow_px`); the relative motion from the essential matrix (RANSAC); pairs a homography explains
as well are rotation or a plane, no parallax, and give nothing; the inliers triangulated, kept where
they lie in front of both cameras, reproject within `max_reprojection_px` and see `min_parallax_deg`
between their two rays. A point is labelled only where the two sides agree (their depths within
`max_disagreement`, after one scale between the sides): what moves in the scene (people, animals,
cars), which RANSAC alone can take for static, rarely agrees with itself on both sides.

Unknown intrinsics are a guess (`guessed_intrinsics`): a wrong focal length bends the triangulated
depth a little (measured on the labelled recordings, `tools/sfm_depth_quality.py`).

    labels = sparse_depth(gray_frames, k, targets=[10, 20])   # {j: (uv (N, 2), depth (N,))}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from fourds_ros.perception.track_refine import lk_step

from .video import SquareClips, VideoSourceError, iter_frames

LK_WINDOW = 21
LK_LEVELS = 3
LK_MAX_RESIDUAL = 20.0


@dataclass(frozen=True)
class SfmSettings:
    """Thresholds of sparse_depth, in pixels of the frames it is given (labelled recordings at
    640 px width: tools/sfm_depth_quality.py)."""

    max_corners: int = 800
    min_corner_distance_px: float = 7.0
    fb_max_px: float = 0.5  # forward-backward disagreement that ends a point's chain
    min_flow_px: float = 24.0  # median motion a partner frame needs
    max_gap: int = 12  # frames searched on each side for a partner
    ransac_px: float = 1.0  # the essential matrix's RANSAC threshold
    # A homography's inliers (at a looser threshold: a rotating lens's distortion and rolling
    # shutter bend it) over the essential matrix's: above max_homography_share the pair is a
    # rotation or a plane. Measured (tools/sfm_depth_quality.py's recordings and the unlabelled
    # videos): moving rooms 0.62-0.70 median, tripod pans (blackswan, car-roundabout) 0.82-0.88.
    homography_px: float = 1.5
    max_homography_share: float = 0.8
    max_reprojection_px: float = 1.0
    min_parallax_deg: float = 1.0
    max_disagreement: float = 0.05  # |log(depth one side / depth other side)| after their scale
    min_points: int = 20  # fewer labelled points than this: no label for the frame


def guessed_intrinsics(width: int, height: int, focal_over_long_side: float = 0.8) -> np.ndarray:
    """(3, 3) K for a video without calibration: focal = 0.8 x the long side (about 64 degrees
    across it, a phone's or a dash camera's main lens), principal point at the centre."""
    f = focal_over_long_side * max(width, height)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], np.float64)


def _follow(gray: np.ndarray, j: int, step: int, uv: np.ndarray, s: SfmSettings) -> tuple[int, np.ndarray, np.ndarray]:
    """Corners uv of frame j followed frame by frame towards j + step * n until their median motion
    reaches min_flow_px (or max_gap frames, or the video's end). -> (partner frame or -1, points
    in the partner (N, 2), ok (N,))."""
    here, ok = uv.copy(), np.ones(len(uv), bool)
    for n in range(1, s.max_gap + 1):
        a, b = j + step * (n - 1), j + step * n
        if not 0 <= b < len(gray):
            return -1, here, ok
        moved, good = lk_step(gray[a], gray[b], here, LK_WINDOW, LK_LEVELS, LK_MAX_RESIDUAL)
        back, good_back = lk_step(gray[b], gray[a], moved, LK_WINDOW, LK_LEVELS, LK_MAX_RESIDUAL)
        ok &= good & good_back & (np.linalg.norm(back - here, axis=1) < s.fb_max_px)
        here = np.where(ok[:, None], moved, here)
        if ok.sum() < s.min_points:
            return -1, here, ok
        if np.median(np.linalg.norm(here[ok] - uv[ok], axis=1)) >= s.min_flow_px:
            return b, here, ok
    return -1, here, ok


def two_view_depth(uv0: np.ndarray, uv1: np.ndarray, k: np.ndarray, s: SfmSettings) -> tuple[np.ndarray, np.ndarray]:
    """Matched pixels of two frames -> (depth in the first frame's camera (N,), up to one scale,
    NaN where not triangulated; kept (N,) bool). Nothing kept where the pair has no parallax."""
    n = len(uv0)
    depth, kept = np.full(n, np.nan), np.zeros(n, bool)
    if n < s.min_points:
        return depth, kept
    e, e_mask = cv2.findEssentialMat(uv0, uv1, k, cv2.RANSAC, 0.999, s.ransac_px)
    if e is None or e.shape != (3, 3):
        return depth, kept
    _, h_mask = cv2.findHomography(uv0, uv1, cv2.RANSAC, s.homography_px)
    e_in = e_mask.ravel().astype(bool)
    if h_mask is None or e_in.sum() < s.min_points or h_mask.sum() > s.max_homography_share * e_in.sum():
        return depth, kept
    _, r, t, pose_mask = cv2.recoverPose(e, uv0, uv1, k, mask=e_mask.copy())
    inl = pose_mask.ravel().astype(bool)
    p0 = k @ np.hstack([np.eye(3), np.zeros((3, 1))])
    p1 = k @ np.hstack([r, t])
    x = cv2.triangulatePoints(p0, p1, uv0.T.astype(np.float64), uv1.T.astype(np.float64))
    x = (x[:3] / x[3]).T  # (N, 3) in camera 0
    x1 = x @ r.T + t.ravel()
    z0, z1 = x[:, 2], x1[:, 2]
    front = (z0 > 0) & (z1 > 0)
    err0 = np.linalg.norm(_project(k, x) - uv0, axis=1)
    err1 = np.linalg.norm(_project(k, x1) - uv1, axis=1)
    centre1 = -r.T @ t.ravel()  # camera 1's centre in camera 0
    ray0, ray1 = x, x - centre1
    cos = (ray0 * ray1).sum(1) / np.maximum(np.linalg.norm(ray0, axis=1) * np.linalg.norm(ray1, axis=1), 1e-12)
    parallax = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    kept = inl & front & (err0 <= s.max_reprojection_px) & (err1 <= s.max_reprojection_px) & (parallax >= s.min_parallax_deg)
    depth[kept] = z0[kept]
    return depth, kept


def _project(k: np.ndarray, x: np.ndarray) -> np.ndarray:
    p = x @ k.T
    return p[:, :2] / np.where(np.abs(p[:, 2:]) > 1e-12, p[:, 2:], 1e-12)


def frame_depth(gray: np.ndarray, j: int, k: np.ndarray, s: SfmSettings = SfmSettings()
                ) -> tuple[np.ndarray, np.ndarray]:
    """Sparse depth of frame j of gray (N, H, W) uint8: (uv (M, 2) pixels (x, y), depth (M,) up
    to scale, median 1). Points where both sides agree (module docstring); empty when they cannot."""
    none = np.zeros((0, 2)), np.zeros(0)
    corners = cv2.goodFeaturesToTrack(gray[j], maxCorners=s.max_corners, qualityLevel=0.005,
                                      minDistance=s.min_corner_distance_px, blockSize=5)
    if corners is None or len(corners) < s.min_points:
        return none
    uv = corners.reshape(-1, 2).astype(np.float64)
    sides = []
    for step in (-1, 1):
        partner, there, ok = _follow(gray, j, step, uv, s)
        if partner < 0:
            continue
        depth = np.full(len(uv), np.nan)
        d, kept = two_view_depth(uv[ok], there[ok], k, s)
        depth[np.flatnonzero(ok)[kept]] = d[kept]
        sides.append(depth)
    if len(sides) < 2:
        return none
    both = np.isfinite(sides[0]) & np.isfinite(sides[1])
    if both.sum() < s.min_points:
        return none
    log_ratio = np.log(sides[0][both]) - np.log(sides[1][both])
    agree = np.abs(log_ratio - np.median(log_ratio)) <= s.max_disagreement
    if agree.sum() < s.min_points:
        return none
    idx = np.flatnonzero(both)[agree]
    depth = np.sqrt(sides[0][idx] * sides[1][idx] * np.exp(-np.median(log_ratio)))
    return uv[idx], depth / np.median(depth)


def sparse_depth(gray: np.ndarray, k: np.ndarray, targets, s: SfmSettings = SfmSettings()
                 ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """frame_depth for each target frame that gets a label: {j: (uv, depth)}."""
    out = {}
    for j in targets:
        uv, depth = frame_depth(gray, j, k, s)
        if len(depth):
            out[j] = (uv, depth)
    return out


LABEL_WIDTH = 640  # long side the labels are triangulated at (the thresholds' pixels)


def labelling_gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> the grey image the labels are triangulated on, LABEL_WIDTH on its long side."""
    h, w = frame.shape[:2]
    scale = LABEL_WIDTH / max(h, w)
    return cv2.cvtColor(cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_RGB2GRAY)


def gray_labels(gray: np.ndarray, frame_hw: tuple[int, int], targets,
                s: SfmSettings = SfmSettings()) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """gray (N, h, w) labelling_gray of one video's (H, W) frames, without calibration -> sparse_depth of
    the target frames, uv in the frames' own pixels (guessed K at the labelling size)."""
    scale = LABEL_WIDTH / max(frame_hw)
    labels = sparse_depth(gray, guessed_intrinsics(gray.shape[2], gray.shape[1]), targets, s)
    return {j: ((uv + 0.5) / scale - 0.5, depth) for j, (uv, depth) in labels.items()}


def video_labels(frames: np.ndarray, targets, s: SfmSettings = SfmSettings()) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """frames (N, H, W, 3) uint8 of one video without calibration -> sparse_depth of the target
    frames, uv in the frames' own pixels (labelled at LABEL_WIDTH long side, guessed K)."""
    return gray_labels(np.stack([labelling_gray(f) for f in frames]), frames.shape[1:3], targets, s)


def _source_labels(source: Path, label_every: int, s: SfmSettings) -> tuple[dict, tuple[int, int]]:
    """One video's labels (gray_labels of every label_every-th frame) and its frame size, decoding a frame
    at a time: only the small grey images are held."""
    gray, shapes = [], set()
    for frame in iter_frames(source):
        shapes.add(frame.shape)
        gray.append(labelling_gray(frame))
    if len(shapes) != 1:
        raise VideoSourceError(f"{source}: frames of different sizes {sorted(shapes)}")
    frame_hw = next(iter(shapes))[:2]
    return gray_labels(np.stack(gray), frame_hw, range(0, len(gray), label_every), s), frame_hw


def rasterised(uv: np.ndarray, depth: np.ndarray, x0: int, y0: int, side: int, size: int) -> np.ndarray:
    """Labels at frame pixels uv -> (size, size) depth of the square crop (x0, y0, side) resized
    to size: each label at its nearest model pixel (the mean where several land), 0 elsewhere."""
    xy = (uv - [x0, y0] + 0.5) * (size / side) - 0.5
    col, row = np.round(xy[:, 0]).astype(int), np.round(xy[:, 1]).astype(int)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    total, count = np.zeros((size, size)), np.zeros((size, size))
    np.add.at(total, (row[inside], col[inside]), depth[inside])
    np.add.at(count, (row[inside], col[inside]), 1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)


class SfmDepthClips(SquareClips):
    """Clips of T frames from every video under `roots` (as SquareClips: every `stride` frames, a
    clip every `hop` frames, centre-cropped square, resized to `image_size`) with the triangulated
    depth of every `label_every`-th frame of each video (video_labels, computed once per video when
    the dataset is made). Items: the keys of the labelled clips (datasets._labels): video (T, H,
    W, 3) in [0, 1]; depth (T, H, W) sparse, up to one scale a frame, 0 where unknown (clips
    without a labelled frame are left out);
    depth_metric 0 (no metres: only the scale-and-shift-invariant terms learn from it); tracks
    unknown (tracks_known 0) and pose identity (unknown: use with --train-heads depth);
    intrinsics the 60-degree pinhole of SquareClips."""

    def __init__(self, roots, num_frames: int, image_size, stride: int = 1, hop: int = 4, num_tracks: int = 8,
                 label_every: int = 1, settings: SfmSettings = SfmSettings()):
        super().__init__(roots, num_frames, image_size, stride, hop)
        self.num_tracks = num_tracks
        self.labels, self.frame_hw = {}, {}
        for source in self.sources:
            self.labels[source], self.frame_hw[source] = _source_labels(source, label_every, settings)
        span = range(0, num_frames * stride, stride)
        self.clips = [(s, start) for s, start in self.clips if any(start + i in self.labels[s] for i in span)]
        if not self.clips:
            raise VideoSourceError(f"{roots}: no clip has a frame with triangulated depth (no parallax, or too little texture)")

    def labelled_frames(self) -> int:
        return sum(len(v) for v in self.labels.values())

    def __getitem__(self, index: int) -> dict:
        source, start = self.clips[index]
        square = self.square_frames(index)
        size, t = self.image_size[0], self.num_frames
        y0, x0, side = self.crop_box(*self.frame_hw[source])
        depth = np.zeros((t, size, size), np.float32)
        for i in range(t):
            label = self.labels[source].get(start + i * self.stride)
            if label is not None:
                depth[i] = rasterised(*label, x0, y0, side, size)
        q = self.num_tracks
        query = torch.zeros((q, 3))
        query[:, 1:] = (size - 1) / 2  # a valid point at frame 0, never scored (no track is known)
        return {
            "video": torch.from_numpy(self.resized(square, size).astype(np.float32) / 255),
            "depth": torch.from_numpy(depth),
            "depth_metric": torch.zeros(()),
            "query_points": query,
            "tracks_xy": torch.zeros((q, t, 2)),
            "tracks_visible": torch.zeros((q, t)),
            "tracks_known": torch.zeros((q, t)),
            "pose_rotation": torch.eye(3).repeat(t, 1, 1),
            "pose_translation": torch.zeros((t, 3)),
            "intrinsics": self.intrinsics(),
        }
