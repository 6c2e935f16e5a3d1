"""Scratch (session 47): BADJA (validation) with the shipped flow tracker changed one way: no_exposure (LK
without exposure matching), lost_stay (a step LK lost keeps its place, as the LK peer does), no_head_taken
(never the head's confirmed position). python badja_variants_scratch.py shipped|no_exposure|lost_stay|no_head_taken"""
import sys
import numpy as np
import fourds_ros.perception.track_refine as tr
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
from fourds_ros.model.default import default_model_dir
F = ["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"]
variant = sys.argv[1]
orig_lk, orig_ns = tr.lk_step, tr.neighbour_steps
if variant == "no_exposure":
    tr.lk_step = lambda *a, **k: orig_lk(*a, **{**k, "match_exposure": False})
elif variant == "lost_stay":
    tr.neighbour_steps = lambda points, *a, **k: np.zeros_like(points)
elif variant == "no_head_taken":
    tr.TemplateRefiner.confirm_score = 9.0
r = score_badja_folders(F, {"flow": model_tracker(default_model_dir(), track_refinement="flow")})
for k, v in r.items():
    print(variant, round(v["pck"], 4), {c: round(x["pck"], 3) for c, x in v["per_clip"].items()}, flush=True)
