"""Geometric point-track ground truth for static scenes, in the training data layout.

The implementation is the one the evaluator scores with
(`fourds_ros.evaluation.metrics.geometric_tracks`); this adapter only converts between the
training layout (stacked arrays, (t, y, x) queries) and the evaluator's (per-frame lists,
(x, y) queries), so labels and scores can never disagree on what a visible point is.
"""

from __future__ import annotations

import numpy as np

from fourds_ros.evaluation.metrics import geometric_tracks as _geometric_tracks


def geometric_tracks(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    camera_to_world: np.ndarray,
    query_points: np.ndarray,
    depth_tolerance: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Point tracks of a static scene.

    depth: (T, H, W) metres, 0 or non-finite = invalid; intrinsics: (3, 3);
    camera_to_world: (T, 4, 4); query_points: (Q, 3) as (t, y, x), pixel centres at integers.
    depth_tolerance: how much nearer (relative) the observed depth may be before the point counts
    as occluded. Returns xy (Q, T, 2) pixel (x, y), visible (Q, T) bool, valid (Q,) bool (the
    query pixel had valid depth; invalid queries are never visible) and known (Q, T) bool: False
    where the point is in view over a depth hole, whose visibility cannot be told (the evaluator
    leaves those frames out; a label there would teach "occluded" on points in view).
    """
    depth = np.asarray(depth, dtype=np.float64)
    t = depth.shape[0]
    if camera_to_world.shape != (t, 4, 4):
        raise ValueError(f"camera_to_world must be ({t}, 4, 4), got {camera_to_world.shape}")
    query_points = np.asarray(query_points, dtype=np.float64).reshape(-1, 3)
    qt = query_points[:, 0].round().astype(int)
    if len(qt) and ((qt < 0).any() or (qt >= t).any()):
        raise ValueError(f"query frame indices must be in [0, {t}), got {qt.min()}..{qt.max()}")
    gt = _geometric_tracks(query_points[:, [2, 1]], qt, list(depth), list(camera_to_world),
                           intrinsics, occlusion_rel_tol=depth_tolerance)
    valid = gt["valid"]
    visible = ~gt["occluded"] & valid[:, None]
    xy = np.where(valid[:, None, None], gt["xy"], np.nan)
    return xy, visible, valid, ~gt["unknown"]
