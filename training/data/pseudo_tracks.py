"""Point-track labels for unlabelled real video, from pyramidal LK checked forward and backward
(issue #17: real textures and non-rigid motion for the tracks head, which synthetic scenes and
static RGB-D rooms do not show).

Why LK: on the BADJA animals (validation) frame-to-frame LK beats the head by a wide margin
(PCK 0.532 against the head's 0.366), and where its forward-backward check holds over a short
clip it is accurate to a fraction of a pixel. The labels are only what LK is sure of: a point is
labelled from its query until the first frame where the check fails, and unknown after that
(`tracks_known` 0: no position, visibility or confidence loss there). LK says nothing about
occlusion, so every known label is visible; the synthetic and RGB-D clips teach occlusion.

    clips = PseudoTrackClips(["../shared/data/videos_unlabelled"], num_frames=8, image_size=(128, 128))
    item = clips[0]   # the keys of the labelled clips (datasets._labels) plus tracks_known
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from fourds_ros.perception.track_refine import lk_step

from .video import SquareClips

# LK runs at this multiple of the model's resolution: labels finer than the model's pixels.
LABEL_SCALE = 2
# Forward-backward disagreement (label pixels) above which a point's label stops.
FB_MAX_PX = 0.5
LK_WINDOW = 15
LK_LEVELS = 3
LK_MAX_RESIDUAL = 20.0


def _lk(a: np.ndarray, b: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lk_step(a, b, pts, LK_WINDOW, LK_LEVELS, LK_MAX_RESIDUAL)


def lk_pseudo_tracks(gray: np.ndarray, num_tracks: int, rng: np.random.Generator, min_distance: float = 6.0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """gray: (T, H, W) uint8 frames. Queries on frame 0 (Shi-Tomasi corners, in random order, at
    most num_tracks) followed to the end of the clip.
    -> uv (Q, T, 2) pixels (x, y) of these frames, NaN where unknown; known (Q, T) bool: LK's
    status, residual and forward-backward check held in every step up to t (t = 0: the query);
    found: how many of the Q = num_tracks rows hold a corner (the rest are unknown throughout)."""
    t_len = gray.shape[0]
    uv = np.full((num_tracks, t_len, 2), np.nan)
    known = np.zeros((num_tracks, t_len), bool)
    corners = cv2.goodFeaturesToTrack(gray[0], maxCorners=num_tracks * 4, qualityLevel=0.01,
                                      minDistance=min_distance, blockSize=5)
    if corners is None:
        return uv, known, 0
    corners = corners.reshape(-1, 2)
    corners = corners[rng.permutation(len(corners))[:num_tracks]]
    n = len(corners)
    uv[:n, 0], known[:n, 0] = corners, True
    for t in range(1, t_len):
        alive = np.flatnonzero(known[:n, t - 1])
        if not alive.size:
            break
        start = uv[alive, t - 1]
        end, ok = _lk(gray[t - 1], gray[t], start)
        back, ok_back = _lk(gray[t], gray[t - 1], end)
        ok &= ok_back & (np.linalg.norm(back - start, axis=1) < FB_MAX_PX)  # lk_step: both ends in the image
        uv[alive[ok], t], known[alive[ok], t] = end[ok], True
    return uv, known, n


class PseudoTrackClips(SquareClips):
    """Clips of T frames (every `stride` frames, a clip every `hop` frames) from every video under
    `roots` (mp4 files or frame folders), centre-cropped square and resized to `image_size`, with
    LK labels (lk_pseudo_tracks, at LABEL_SCALE x that size). Items: video (T, H, W, 3) in [0, 1];
    depth zeros (invalid); query_points (Q, 3) (t, y, x) model pixels; tracks_xy (Q, T, 2) model
    pixels (0 where unknown); tracks_visible = tracks_known (Q, T) {0, 1}; pose_rotation identity
    and pose_translation zeros (unknown, never trained on: use with --train-heads tracks);
    intrinsics (a 60-degree pinhole)."""

    def __init__(self, roots, num_frames: int, image_size, stride: int = 1, hop: int = 4,
                 num_tracks: int = 64, seed: int = 0):
        super().__init__(roots, num_frames, image_size, stride, hop)
        self.num_tracks, self.seed = num_tracks, seed

    def __getitem__(self, index: int) -> dict:
        square = self.square_frames(index)
        size = self.image_size[0]
        video = self.resized(square, size)
        gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in self.resized(square, size * LABEL_SCALE)])
        uv, known, _ = lk_pseudo_tracks(gray, self.num_tracks, np.random.default_rng([self.seed, index]))
        xy = (uv + 0.5) / LABEL_SCALE - 0.5  # label pixels -> model pixels (pixel centres)
        query = np.zeros((self.num_tracks, 3), np.float32)
        query[:, 1:] = (size - 1) / 2  # rows without a corner: a valid point, never scored
        query[known[:, 0], 1] = xy[known[:, 0], 0, 1]
        query[known[:, 0], 2] = xy[known[:, 0], 0, 0]
        t = self.num_frames
        f = torch.from_numpy
        return {
            "video": f(video.astype(np.float32) / 255),
            "depth": torch.zeros((t, size, size)),
            "depth_metric": torch.zeros(()),
            "query_points": f(query),
            "tracks_xy": f(np.nan_to_num(xy).astype(np.float32)),
            "tracks_visible": f(known.astype(np.float32)),
            "tracks_known": f(known.astype(np.float32)),
            "pose_rotation": torch.eye(3).repeat(t, 1, 1),
            "pose_translation": torch.zeros((t, 3)),
            "intrinsics": self.intrinsics(),  # read only by the depth head, not trained on these clips
        }
