"""Scratch (session 45): BADJA PCK (validation) with the tracks' LK window W: python lk_window_badja_scratch.py W"""
import sys
import fourds_ros.perception.track_refine as tr
w = int(sys.argv[1])
orig = tr.lk_step
def lk_step(previous, image, uv, window=tr.LK_WINDOW, levels=tr.LK_LEVELS, *a, **kw):
    return orig(previous, image, uv, w, levels, *a, **kw)
tr.lk_step = lk_step
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
from fourds_ros.model.default import default_model_dir
t = model_tracker(default_model_dir(), track_refinement="flow")
r = score_badja_folders(["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"], {"fourds": t})["fourds"]
print(w, round(r["pck"], 4), {c: round(v["pck"], 4) for c, v in r["per_clip"].items()}, flush=True)
