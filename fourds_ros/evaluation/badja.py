"""BADJA keypoint tracks scored as PCK at 0.2 * sqrt(foreground area). No rclpy.

Protocol (PIPs / CoTracker / DINO-Tracker): every joint visible in the clip's first annotated
frame is a query; on each later annotated frame where it is visible, a prediction is correct
within 0.2 * sqrt(area of the foreground mask of that frame). Coordinates, annotations and mask
area all at the frames' 480p resolution. A clip without masks (bear.mp4) takes the area of the
convex hull of its visible joints instead (datasets._mask_areas says why that is close).

A BADJA folder may hold several clips (datasets.find_badja_clips); `score_badja_folders` scores
every clip and reports the mean PCK over clips next to each clip's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .datasets import BadjaClip, BadjaError, find_badja_clips, load_badja
from .metrics import pck
from .predictions import Predictions

# tracker(stamps, images {stamp: (H, W, 3) uint8}, queries {id: (stamp, u, v)}) -> Predictions
Tracker = Callable[[list[int], dict[int, np.ndarray], dict[int, tuple[int, float, float]]], Predictions]


def score_badja(src: str | Path | BadjaClip | dict, tracker: Tracker | None = None, alpha: float = 0.2,
                clip: str | None = None) -> dict:
    """Run `tracker` (default: the LK peer) on one clip from its first annotated frame's joints
    and score PCK on the later annotated frames. `src`: a BadjaClip, a folder (+ `clip` when it
    holds several) or a clip already read by datasets.load_badja. Returns pck, pck_3px, points,
    area_source, per_frame ({annotated frame: its pck, pck_3px and points}) and, for a flow
    tracker, tracker_counts (model_tracker)."""
    from .peers import lk_tracks

    tracker = tracker or lk_tracks
    badja = src if isinstance(src, dict) else load_badja(src, clip)
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
    area = badja["mask_area"][1:]
    out = pck(pred_xy, badja["joints_xy"][1:], gt_vis, area, alpha)
    out["area_source"] = badja["area_source"]
    if preds.status:  # the flow tracker's counts: track steps, LK losses, head positions taken
        out["tracker_counts"] = preds.status
    out["per_frame"] = {int(f): pck(pred_xy[a:a + 1], badja["joints_xy"][1 + a:2 + a], gt_vis[a:a + 1],
                                    area[a:a + 1], alpha) for a, f in enumerate(later)}
    return out


def find_clips(folders: str | Path | Iterable[str | Path]) -> list[BadjaClip]:
    """Every BADJA clip in one or more folders; a clip name found twice is an error (which
    copy would be scored would depend on argument order)."""
    folders = [folders] if isinstance(folders, (str, Path)) else list(folders)
    clips = [c for folder in folders for c in find_badja_clips(folder)]
    names = [c.name for c in clips]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BadjaError(f"BADJA clips {twice} found in more than one of {[str(f) for f in folders]}")
    return clips


def check_clips(folders: str | Path | Iterable[str | Path]) -> list[BadjaClip]:
    """find_clips, with every clip read once (datasets.load_badja: its frames decoded, its annotations and
    masks checked) and dropped: a BadjaError names what does not read. Why: `eval --badja` read the clips
    only after the bag's inference, so a corrupt frame cost minutes of replay and the report."""
    clips = find_clips(folders)
    for clip in clips:
        load_badja(clip)
    return clips


def score_badja_folders(folders, trackers: dict[str, Tracker | None], alpha: float = 0.2) -> dict[str, dict]:
    """Score every clip in `folders` (see find_clips) with each tracker ({name: tracker}; None is
    LK), reading each clip once. Returns {name: {pck, pck_3px (means over clips: each clip weighs
    the same, however many joints it has), clips, per_clip: {clip: {pck, pck_3px, points,
    area_source}}}}."""
    per_clip: dict[str, dict] = {name: {} for name in trackers}
    for clip in find_clips(folders):
        badja = load_badja(clip)
        for name, tracker in trackers.items():
            result = score_badja(badja, tracker, alpha)
            result["_per_frame"] = result.pop("per_frame")  # for the paired interval; not in report.json
            per_clip[name][clip.name] = result

    def mean(results, key):
        values = [r[key] for r in results.values() if r[key] is not None]
        return float(np.mean(values)) if values else None

    return {name: {"pck": mean(r, "pck"), "pck_3px": mean(r, "pck_3px"), "clips": len(r), "per_clip": r}
            for name, r in per_clip.items()}


def head_tracks(engine, video: np.ndarray, query_t: int, mx: np.ndarray, my: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The tracks head on one clip, every point queried at clip frame query_t, model pixels (mx, my): (N,)
    each. video: (1, T, H, W, 3) float in [0, 1]. -> xy (N, T, 2) model pixels, visibility (N, T); more
    points than the engine's queries run in chunks."""
    capacity, n_points, num_frames = engine.spec.num_queries, len(mx), video.shape[1]
    xy, vis = np.empty((n_points, num_frames, 2)), np.empty((n_points, num_frames))
    for c in range(0, n_points, capacity):
        n = min(capacity, n_points - c)
        q = np.zeros((1, capacity, 3), np.float32)
        q[0, :n, 0], q[0, :n, 1], q[0, :n, 2] = query_t, my[c:c + n], mx[c:c + n]
        out = engine({"video": video, "query_points": q})
        xy[c:c + n], vis[c:c + n] = out["track_xy"][0, :n], out["track_visibility"][0, :n]
    return xy, vis


def model_tracker(model_dir: str | Path, backend: str = "torch", crop_policy: str = "resize",
                  track_refinement: str = "template", lk_check_px: float = 0.0, engine=None, hop: int = 0,
                  min_visibility: float = 0.5) -> Tracker:
    """The 4DS tracks head as a BADJA tracker: clips of T frames, one every `hop` frames (the node's hop;
    0: T-1, each clip starting where the last one ended), each joint queried at the last frame it was
    tracked to (the node's own chaining, without its re-seeding, so every joint keeps one track), visible
    where the head's visibility reaches `min_visibility` (the node's track_min_visibility), and refined on
    the image as the node does
    (`track_refinement`: flow | template | none, and `lk_check_px`, the node's track_lk_check_px;
    TemplateRefiner.follow, with each joint's query-frame template). `resize` keeps the whole frame
    in view; the node's default centre crop would cut off the horse at 854x480. engine: one already
    made (pipeline.model_engine, as the node's settings name it) instead of model_dir's on `backend`."""
    from ..engine import create_engine
    from ..perception.clip_buffer import default_hop
    from ..perception.preprocess import Preprocessor
    from ..perception.track_refine import gray, make_refiner

    engine = engine if engine is not None else create_engine(model_dir, backend=backend)
    cfg = engine.config
    num_frames = cfg.num_frames
    # hop T shares no frame with the clip before (the node's tracks then end with each clip): joints chain at T-1
    hop = min(hop or default_hop(num_frames), num_frames - 1)
    pre = Preprocessor(tuple(cfg.image_size), crop_policy)

    def track(stamps, images, queries):
        refiner = make_refiner(track_refinement, lk_check_px)  # one per clip: its counts are the clip's
        ids = list(queries)
        start = min(stamps.index(queries[i][0]) for i in ids)
        if any(stamps.index(queries[i][0]) != start for i in ids):
            raise ValueError("model_tracker needs every query on the same frame")
        pmap = pre.pixel_map(images[stamps[start]].shape[:2])
        uv = np.array([queries[i][1:] for i in ids], float)
        previous = gray(images[stamps[start]])
        templates = [refiner.template(previous, u, v) for u, v in uv] if refiner is not None else []
        preds = Predictions(name="fourds")
        preds.tracks[stamps[start]] = {"ids": np.array(ids), "uv": uv.copy(), "visible": np.ones(len(ids), bool)}
        s, tracked = start, start  # the clip's first frame; the last frame the joints were tracked to
        while tracked + 1 < len(stamps):
            window = stamps[s:s + num_frames]
            padded = window + [window[-1]] * (num_frames - len(window))
            video = np.stack([pre(images[st]) for st in padded])[None]  # float32 in [0, 1]
            xy, vis = head_tracks(engine, video, tracked - s, *pmap.to_model(uv[:, 0], uv[:, 1]))
            for k in range(tracked - s + 1, len(window)):  # the frames this clip adds
                st, visible = window[k], vis[:, k] >= min_visibility
                head = np.stack(pmap.to_input(xy[:, k, 0], xy[:, k, 1]), 1)
                if refiner is not None:
                    frame = gray(images[st])
                    head = refiner.follow(previous, frame, uv, head, visible, templates)
                    previous = frame
                uv = head
                preds.tracks[st] = {"ids": np.array(ids), "uv": uv.copy(), "visible": visible}
            s, tracked = s + hop, s + len(window) - 1
        if refiner is not None and refiner.flow:
            preds.status = dict(refiner.counts)
        return preds

    track.hop = hop  # the hop the clips ran at, for the report
    return track
