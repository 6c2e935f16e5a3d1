"""Geometric point-track ground truth for static scenes from depth, intrinsics and poses.

A query pixel with valid depth is back-projected to a world point, projected into every frame,
and marked visible there when it lies in front of the camera, inside the image, and the observed
depth at the projected pixel agrees with the point's depth (otherwise it is occluded or the
depth is missing). Only valid for static scenes; moving objects need the generator's own tracks.
"""

from __future__ import annotations

import numpy as np


def backproject(pixels_xy: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """pixels_xy: (N, 2) pixel (x, y), depth: (N,) metres -> (N, 3) camera-frame points."""
    ones = np.ones((len(pixels_xy), 1))
    rays = np.concatenate([pixels_xy, ones], axis=1) @ np.linalg.inv(intrinsics).T
    return rays * depth[:, None]


def project(points_cam: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) camera-frame points -> pixel (x, y) (N, 2) and depth z (N,)."""
    z = points_cam[:, 2]
    uv = points_cam @ intrinsics.T
    return uv[:, :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)[:, None], z


def geometric_tracks(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    camera_to_world: np.ndarray,
    query_points: np.ndarray,
    depth_tolerance: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point tracks of a static scene.

    depth: (T, H, W) metres, 0 or non-finite = invalid; intrinsics: (3, 3);
    camera_to_world: (T, 4, 4); query_points: (Q, 3) as (t, y, x), pixel centres at integers.
    depth_tolerance: relative depth agreement needed to call a point visible.
    Returns xy (Q, T, 2) pixel (x, y), visible (Q, T) bool, valid (Q,) bool (the query pixel had
    valid depth; invalid queries have all-False visibility and NaN positions).
    """
    depth = np.asarray(depth, dtype=np.float64)
    t, h, w = depth.shape
    if camera_to_world.shape != (t, 4, 4):
        raise ValueError(f"camera_to_world must be ({t}, 4, 4), got {camera_to_world.shape}")
    query_points = np.asarray(query_points, dtype=np.float64).reshape(-1, 3)
    qt = query_points[:, 0].round().astype(int)
    if (qt < 0).any() or (qt >= t).any():
        raise ValueError(f"query frame indices must be in [0, {t}), got {qt.min()}..{qt.max()}")
    qx = np.clip(query_points[:, 2].round().astype(int), 0, w - 1)
    qy = np.clip(query_points[:, 1].round().astype(int), 0, h - 1)
    qd = depth[qt, qy, qx]
    valid = np.isfinite(qd) & (qd > 0)
    cam = backproject(query_points[:, [2, 1]], np.where(valid, qd, 1.0), intrinsics)
    world = np.einsum("qij,qj->qi", camera_to_world[qt, :3, :3], cam) + camera_to_world[qt, :3, 3]
    q = len(query_points)
    xy = np.full((q, t, 2), np.nan)
    visible = np.zeros((q, t), bool)
    for i in range(t):
        world_to_cam = np.linalg.inv(camera_to_world[i])
        p = world @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
        uv, z = project(p, intrinsics)
        xy[:, i] = np.where(valid[:, None], uv, np.nan)
        px = np.round(uv[:, 0]).astype(int)
        py = np.round(uv[:, 1]).astype(int)
        inside = valid & (z > 1e-6) & (px >= 0) & (px < w) & (py >= 0) & (py < h)
        observed = np.zeros(q)
        observed[inside] = depth[i, py[inside], px[inside]]
        agree = np.isfinite(observed) & (observed > 0)
        agree &= np.abs(observed - z) <= depth_tolerance * np.maximum(z, 1e-6)
        visible[:, i] = inside & agree
    return xy, visible, valid
