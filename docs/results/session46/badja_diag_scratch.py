"""Scratch (session 46): BADJA (validation) per annotated frame, LK peer against the shipped flow tracker."""
import numpy as np
from fourds_ros.evaluation.badja import model_tracker, score_badja, find_clips
from fourds_ros.evaluation.datasets import load_badja
from fourds_ros.model.default import default_model_dir
t = model_tracker(default_model_dir(), track_refinement="flow")
for clip in find_clips(["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"]):
    b = load_badja(clip)
    lk, me = score_badja(b, None), score_badja(b, t)
    print(clip.name, "frames", len(b["frames"]), "annotated", list(b["annotated"][:3]), "...", len(b["annotated"]),
          "joints", b["joints_xy"].shape[1], "size", b["frames"][0].shape, me.get("tracker_counts"))
    print("  LK", round(lk["pck"], 3), " ours", round(me["pck"], 3))
    print("  per frame LK  ", " ".join(f"{v['pck']:.2f}" if v['pck'] is not None else "-" for v in lk["per_frame"].values()))
    print("  per frame ours", " ".join(f"{v['pck']:.2f}" if v['pck'] is not None else "-" for v in me["per_frame"].values()))
