"""Exploration (session 48): BADJA PCK (validation) per clip with the flow tracker's LK step taken at
several window sizes, each point keeping the window whose step leads back (forward-backward) nearest
to where it started. The LK peer is unchanged. Usage: python multi_window_badja_scratch.py W [W ...]"""
import sys

import numpy as np

import fourds_ros.perception.track_refine as tr
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
from fourds_ros.model.default import default_model_dir

FOLDERS = ["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"]
WINDOWS = [int(w) for w in sys.argv[1:]] or [15, 21, 31]
real_lk_step = tr.lk_step


def multi_window_step(previous, image, uv, match_exposure=False, **kw):
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    best = np.full(len(uv), np.inf)
    moved_best, ok_best = uv.copy(), np.zeros(len(uv), bool)
    for w in WINDOWS:
        moved, ok = real_lk_step(previous, image, uv, window=w, match_exposure=match_exposure)
        back, ok_back = real_lk_step(image, previous, moved, window=w, match_exposure=match_exposure)
        err = np.where(ok & ok_back, np.linalg.norm(back - uv, axis=1), np.inf)
        take = ok & (err < best)
        moved_best[take], ok_best[take], best[take] = moved[take], True, err[take]
    return moved_best, ok_best


real_follow = tr.TemplateRefiner.follow


def follow(self, *args, **kwargs):
    tr.lk_step = multi_window_step  # only inside the tracker's follow: the LK peer keeps its step
    try:
        return real_follow(self, *args, **kwargs)
    finally:
        tr.lk_step = real_lk_step


tr.TemplateRefiner.follow = follow
res = score_badja_folders(FOLDERS, {"fourds": model_tracker(default_model_dir(), track_refinement="flow"), "lk": None})
for name, v in res.items():
    print(name, WINDOWS, round(v["pck"], 4), {c: round(x["pck"], 4) for c, x in v["per_clip"].items()}, flush=True)
