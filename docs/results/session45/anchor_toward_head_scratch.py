"""Scratch (session 45, no rule): session 40's template anchor (each flow step snapped to its query
template within R px where it scores >= S), in all cases ("any") or only where the snap moves the
point toward the head's prediction ("toward"). python anchor_toward_head_scratch.py R S any|toward"""
import sys
import numpy as np

import fourds_ros.perception.track_refine as trf
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
from fourds_ros.model.default import default_model_dir
R, S, MODE = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
orig = trf.TemplateRefiner.follow
def follow(self, previous, image, uv_previous, uv_head, head_visible, templates):
    out = orig(self, previous, image, uv_previous, uv_head, head_visible, templates)
    if not self.flow:
        return out
    saved = self.search_radius, self.min_score
    self.search_radius, self.min_score = R, S
    head = np.asarray(uv_head, float)
    vis = np.asarray(head_visible, bool)
    try:
        for j in range(len(out)):
            if templates[j] is None:
                continue
            u, v, score = self.refine(image, templates[j], out[j, 0], out[j, 1])
            if score < S:
                continue
            if MODE == "toward":
                if not vis[j] or np.hypot(u - head[j, 0], v - head[j, 1]) >= np.hypot(*(out[j] - head[j])):
                    continue
            out[j] = (u, v)
    finally:
        self.search_radius, self.min_score = saved
    return out
trf.TemplateRefiner.follow = follow
t = model_tracker(default_model_dir(), track_refinement="flow")
r = score_badja_folders(["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"], {"fourds": t})["fourds"]
print(sys.argv[1:], round(r["pck"], 4), {c: round(v["pck"], 4) for c, v in r["per_clip"].items()}, flush=True)
