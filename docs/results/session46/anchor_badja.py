"""Session 46: BADJA PCK (validation) per clip with track_anchor_max_residual R (0: the shipped flow):
python anchor_badja.py R [R ...]"""
import sys

from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
from fourds_ros.model.default import default_model_dir

FOLDERS = ["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"]
for r in map(float, sys.argv[1:]):
    trackers = {"fourds": model_tracker(default_model_dir(), track_refinement="flow", anchor_max_residual=r)}
    if r == float(sys.argv[1]):
        trackers["lk"] = None
    res = score_badja_folders(FOLDERS, trackers)
    for name, v in res.items():
        print(name, r, round(v["pck"], 4), {c: round(x["pck"], 4) for c, x in v["per_clip"].items()}, flush=True)
