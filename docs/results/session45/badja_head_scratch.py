"""Scratch (session 45, no rule): BADJA PCK (validation) per clip for the shipped model's tracker
variants, to see whether the tracks head could correct LK's drift on animals.
    python badja_head_scratch.py [MODEL_DIR] [track_refinement] [pull GAIN]
MODEL_DIR: default the shipped model; a copy at another input size is made by resize_model_scratch.py.
pull GAIN: after each `flow` step, every track the head calls visible moves GAIN of the way to the
head's own position (a complementary filter: LK's detail, the head's freedom from drift)."""
import sys

import numpy as np

import fourds_ros.perception.track_refine as track_refine
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
from fourds_ros.model.default import default_model_dir

FOLDERS = ["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"]
model = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else default_model_dir()
refinement = sys.argv[2] if len(sys.argv) > 2 else "flow"
gain = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "pull" else 0.0

follow = track_refine.TemplateRefiner.follow


def pulled(self, previous, image, uv_previous, uv_head, head_visible, templates):
    out = follow(self, previous, image, uv_previous, uv_head, head_visible, templates)
    if self.flow and len(out):
        visible = np.asarray(head_visible, bool)
        out[visible] += gain * (np.asarray(uv_head, float) - out)[visible]
    return out


if gain:
    track_refine.TemplateRefiner.follow = pulled
tracker = model_tracker(model, track_refinement=refinement)
for name, r in score_badja_folders(FOLDERS, {"fourds": tracker, "lk": None}).items():
    print(name, round(r["pck"], 4), {c: round(v["pck"], 4) for c, v in r["per_clip"].items()})
