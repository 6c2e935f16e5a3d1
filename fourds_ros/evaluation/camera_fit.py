"""Checking a recording's RGB calibration against its own ground truth. No rclpy.

Two measurements, each scored over candidate values (tools/fit_seven_scenes_rgb.py runs them):
- epipolar_error: LK correspondences between two frames and the ground-truth motion between them
  (the poses of a rigidly mounted depth camera turn exactly as the RGB camera does) fix the
  essential matrix; how far the correspondences lie from it (median Sampson distance, pixels) is
  least at the RGB camera's true focal length.
- edge_correlation: a depth image registered to the RGB image (fourds_ros.rgbd.register_depth)
  with the right focal length and baseline has its depth edges on the RGB edges.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..rgbd import relative_poses


def lk_correspondences(gray_a: np.ndarray, gray_b: np.ndarray, max_corners: int = 400,
                       max_round_trip_px: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) pixels in a and their (N, 2) positions in b: Shi-Tomasi corners of a followed by
    pyramidal LK, kept where tracking back from b lands within max_round_trip_px of the start."""
    corners = cv2.goodFeaturesToTrack(gray_a, max_corners, 0.01, 8)
    if corners is None:
        return np.zeros((0, 2)), np.zeros((0, 2))
    lk = {"winSize": (21, 21), "maxLevel": 3}
    ahead, ok, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, corners, None, **lk)
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(gray_b, gray_a, ahead, None, **lk)
    keep = (ok.ravel() == 1) & (ok_back.ravel() == 1) & (
        np.linalg.norm((back - corners).reshape(-1, 2), axis=1) < max_round_trip_px)
    return corners.reshape(-1, 2)[keep].astype(float), ahead.reshape(-1, 2)[keep].astype(float)


def relative_motion(world_from_a: np.ndarray, world_from_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) with X_b = R X_a + t for camera-to-world poses a and b: rgbd.relative_poses with b
    as the first camera."""
    rotation, translation = relative_poses(np.stack([world_from_b, world_from_a]))
    return rotation[1], translation[1]


def sampson_px(p: np.ndarray, q: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
               k: np.ndarray) -> np.ndarray:
    """(N,) Sampson distances (pixels) of correspondences p -> q (N, 2) to the epipolar geometry of
    the motion (rotation, translation) seen by a camera with intrinsics k (3, 3)."""
    tx, ty, tz = translation
    essential = np.array([[0, -tz, ty], [tz, 0, -tx], [-ty, tx, 0]]) @ rotation
    k_inv = np.linalg.inv(k)
    fundamental = k_inv.T @ essential @ k_inv
    x1, x2 = np.c_[p, np.ones(len(p))], np.c_[q, np.ones(len(q))]
    f_x1, ft_x2 = x1 @ fundamental.T, x2 @ fundamental
    num = np.sum(x2 * f_x1, axis=1) ** 2
    den = f_x1[:, 0] ** 2 + f_x1[:, 1] ** 2 + ft_x2[:, 0] ** 2 + ft_x2[:, 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-12))


def epipolar_error(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], k: np.ndarray) -> float:
    """Median Sampson distance (px) over every pair's correspondences; pairs: (p, q, R, t)."""
    return float(np.median(np.concatenate([sampson_px(p, q, r, t, k) for p, q, r, t in pairs])))


def _edges(image: np.ndarray) -> np.ndarray:
    smooth = cv2.GaussianBlur(image.astype(np.float32), (5, 5), 1.5)
    return np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))


def edge_correlation(gray: np.ndarray, depth: np.ndarray, margin: tuple[int, int] = (60, 80)) -> float:
    """Correlation of the RGB image's gradient magnitude with the depth image's (of log depth, where
    the depth and its 7x7 neighbourhood are valid), inside a margin of (rows, cols) pixels. One-pixel
    holes are closed first: registration leaves a few where no depth pixel landed."""
    depth = cv2.morphologyEx(depth, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    valid = depth > 0
    edges_depth = _edges(np.where(valid, np.log(np.maximum(depth, 1e-3)), 0.0))
    edges_depth[cv2.erode(valid.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0] = 0.0
    (mr, mc), edges_rgb = margin, _edges(gray)
    a, b = edges_rgb[mr:-mr, mc:-mc].ravel(), edges_depth[mr:-mr, mc:-mc].ravel()
    return float(np.corrcoef(a, b)[0, 1])
