"""BADJA (DAVIS horsejump-high) keypoint tracks scored as PCK at 0.2 * sqrt(mask area). No rclpy.

Protocol (PIPs / CoTracker / DINO-Tracker): every joint visible in frame 0 is a query; on each
later annotated frame where it is visible, a prediction is correct within 0.2 * sqrt(area of the
foreground mask of that frame). Coordinates, annotations and mask area all at 854x480.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .datasets import load_badja
from .metrics import pck
from .predictions import Predictions

# tracker(stamps, images {stamp: (H, W, 3) uint8}, queries {id: (stamp, u, v)}) -> Predictions
Tracker = Callable[[list[int], dict[int, np.ndarray], dict[int, tuple[int, float, float]]], Predictions]


def score_badja(src: str | Path, tracker: Tracker | None = None, alpha: float = 0.2) -> dict:
    """Run `tracker` (default: the LK peer) from the frame-0 joints and score PCK on the later
    annotated frames. Returns pck, pck_3px, points, and per_frame PCK."""
    from .peers import lk_tracks

    tracker = tracker or lk_tracks
    badja = load_badja(src)
    stamps = list(range(len(badja["frames"])))
    first = int(badja["annotated"][0])
    vis0 = badja["visible"][0]
    queries = {int(j): (first, *map(float, badja["joints_xy"][0, j])) for j in np.flatnonzero(vis0)}
    preds = tracker(stamps, dict(enumerate(badja["frames"])), queries)
    later = badja["annotated"][1:]
    pred_xy = np.full((len(later), badja["joints_xy"].shape[1], 2), np.nan)
    for a, f in enumerate(later):
        tr = preds.tracks.get(int(f))
        if tr is None:
            continue
        for tid, uv in zip(tr["ids"], tr["uv"]):
            pred_xy[a, int(tid)] = uv
    gt_vis = badja["visible"][1:] & vis0[None]
    area = badja["masks"][later].sum(axis=(1, 2))
    out = pck(pred_xy, badja["joints_xy"][1:], gt_vis, area, alpha)
    out["per_frame"] = {int(f): pck(pred_xy[a:a + 1], badja["joints_xy"][1 + a:2 + a], gt_vis[a:a + 1],
                                    area[a:a + 1], alpha)["pck"] for a, f in enumerate(later)}
    return out
