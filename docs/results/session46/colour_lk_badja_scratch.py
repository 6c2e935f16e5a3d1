"""Scratch (session 46): BADJA (validation) with the flow tracker's LK and templates on the RGB image instead of grey
(the LK peer stays grey): python colour_lk_badja_scratch.py"""
import numpy as np
import fourds_ros.perception.track_refine as tr
orig_inside = tr.TemplateRefiner._inside
tr.TemplateRefiner._inside = lambda self, image, u, v, reach: orig_inside(self, image[..., 0] if image.ndim == 3 else image, u, v, reach)
tr.gray = lambda rgb: np.ascontiguousarray(rgb)
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
from fourds_ros.model.default import default_model_dir
t = model_tracker(default_model_dir(), track_refinement="flow")
r = score_badja_folders(["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"], {"fourds": t})["fourds"]
print("colour LK", round(r["pck"], 4), {c: round(v["pck"], 4) for c, v in r["per_clip"].items()}, r["per_clip"]["bear"].get("tracker_counts"))
