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


def model_tracker(model_dir: str | Path, backend: str = "torch", crop_policy: str = "resize",
                  track_refinement: str = "template") -> Tracker:
    """The 4DS tracks head as a BADJA tracker: clips of T frames, each starting where the last one
    ended, queried with the previous clip's final positions (the node's own chaining, without its
    re-seeding, so every joint keeps one track), and refined on the image against each joint's
    query-frame template as the node does (`track_refinement`: template | none). `resize` keeps
    the whole frame in view; the node's default centre crop would cut off the horse at 854x480."""
    from ..engine import create_engine
    from ..perception.preprocess import Preprocessor
    from ..perception.track_refine import gray, make_refiner

    engine = create_engine(model_dir, backend=backend)
    cfg = engine.config
    num_frames, capacity = cfg.num_frames, engine.spec.num_queries
    pre = Preprocessor(tuple(cfg.image_size), crop_policy)
    refiner = make_refiner(track_refinement)

    def track(stamps, images, queries):
        ids = list(queries)
        start = min(stamps.index(queries[i][0]) for i in ids)
        if any(stamps.index(queries[i][0]) != start for i in ids):
            raise ValueError("model_tracker needs every query on the same frame")
        pmap = pre.pixel_map(images[stamps[start]].shape[:2])
        uv = np.array([queries[i][1:] for i in ids], float)
        templates = [None] * len(ids)
        if refiner is not None:
            first = gray(images[stamps[start]])
            templates = [refiner.template(first, u, v) for u, v in uv]
        preds = Predictions(name="fourds")
        preds.tracks[stamps[start]] = {"ids": np.array(ids), "uv": uv.copy(), "visible": np.ones(len(ids), bool)}
        s = start
        while s + 1 < len(stamps):
            window = stamps[s:s + num_frames]
            padded = window + [window[-1]] * (num_frames - len(window))
            video = np.stack([pre(images[st]) for st in padded])[None]  # float32 in [0, 1]
            mx, my = pmap.to_model(uv[:, 0], uv[:, 1])
            xy = np.empty((len(ids), num_frames, 2))
            vis = np.empty((len(ids), num_frames))
            for c in range(0, len(ids), capacity):  # more joints than engine queries: in chunks
                n = min(capacity, len(ids) - c)
                q = np.zeros((1, capacity, 3), np.float32)
                q[0, :n, 1], q[0, :n, 2] = my[c:c + n], mx[c:c + n]
                out = engine({"video": video, "query_points": q})
                xy[c:c + n] = out["track_xy"][0, :n]
                vis[c:c + n] = out["track_visibility"][0, :n]
            for k, st in enumerate(window[1:], 1):
                x, y = pmap.to_input(xy[:, k, 0], xy[:, k, 1])
                if refiner is not None:
                    frame = gray(images[st])
                    for j, template in enumerate(templates):
                        if template is not None and vis[j, k] > 0.5:
                            x[j], y[j], _ = refiner.refine(frame, template, x[j], y[j])
                preds.tracks[st] = {"ids": np.array(ids), "uv": np.stack([x, y], 1), "visible": vis[:, k] > 0.5}
            uv = preds.tracks[window[-1]]["uv"].copy()
            s += len(window) - 1
        return preds

    return track
