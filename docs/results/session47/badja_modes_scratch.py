"""Scratch (session 47): BADJA (validation) PCK per clip for the tracks refinements named on the command line
(none = the head alone, template, flow) and the LK peer. python badja_modes_scratch.py none template flow"""
import sys
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
from fourds_ros.model.default import default_model_dir
F = ["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"]
tr = {m: model_tracker(default_model_dir(), track_refinement=m) for m in sys.argv[1:]}
tr["lk"] = None
r = score_badja_folders(F, tr)
for k, v in r.items():
    print(k, round(v["pck"], 4), {c: round(x["pck"], 3) for c, x in v["per_clip"].items()})
