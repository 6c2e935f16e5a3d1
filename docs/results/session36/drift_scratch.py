"""Scratch (session 36): LK steps corrected against the query's own template (drift correction,
Matthews, Ishikawa & Baker 2004: "The template update problem"). After each frame's LK step, the
track's query-frame template is matched by NCC within RADIUS px of where LK put it; the match
replaces LK's position where its score reaches SCORE. BADJA PCK per clip (validation).
Run: RADIUS=2 SCORE=0.9 python docs/results/session36/drift_scratch.py"""
import os

import numpy as np

from fourds_ros.evaluation.badja import find_clips, model_tracker, score_badja
from fourds_ros.evaluation.datasets import load_badja
from fourds_ros.model.default import default_model_dir
from fourds_ros.perception import track_refine
from fourds_ros.perception.track_refine import TemplateRefiner

RADIUS, SCORE = int(os.environ.get("RADIUS", 2)), float(os.environ.get("SCORE", 0.9))
base_follow = TemplateRefiner.follow


def follow(self, previous, image, uv_previous, uv_head, head_visible, templates):
    out = base_follow(self, previous, image, uv_previous, uv_head, head_visible, templates)
    if RADIUS <= 0:
        return out
    keep = self.search_radius
    self.search_radius = RADIUS
    moved = 0
    for j in range(len(out)):
        if templates[j] is None or not np.isfinite(out[j]).all():
            continue
        u, v, s = self.refine(image, templates[j], out[j, 0], out[j, 1])
        if s >= SCORE:
            moved += (u, v) != tuple(out[j])
            out[j] = (u, v)
    self.search_radius = keep
    self.counts["corrected"] = self.counts.get("corrected", 0) + moved
    return out


TemplateRefiner.follow = follow
folders = ["../shared/data/davis_horsejump-high_badja", "../shared/data/badja_camel_dog_bear"]
tracker = model_tracker(default_model_dir(), "torch", track_refinement="flow")
res = []
for clip in find_clips(folders):
    r = score_badja(load_badja(clip), tracker)
    res.append(r["pck"])
    print(clip.name, f"{r['pck']:.3f}", r.get("tracker_counts"))
print(f"RADIUS {RADIUS} SCORE {SCORE} mean {np.mean(res):.3f}")
