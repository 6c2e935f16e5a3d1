"""Scratch (session 46): BADJA (validation) with each flow step also aligned by LK straight from the
clip's first frame (the frame the model's clip was queried on: 1-6 frames back), started at the
chained position and taken where it lands within D px of it and LK's residual there is at most R
grey levels (the patch kept its look since the clip began; a bending limb keeps the chain).
python clip_anchor_scratch.py D R"""
import sys

import numpy as np

import fourds_ros.perception.track_refine as tr

D, R = float(sys.argv[1]), float(sys.argv[2])
STEPS = 7  # the default model's clip: 8 frames, 7 steps (model_tracker's windows)


class ClipAnchor(tr.TemplateRefiner):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.n, self.anchor, self.taken = 0, None, 0

    def follow(self, previous, image, uv_previous, uv_head, head_visible, templates):
        if self.n % STEPS == 0:  # a new clip: its first frame is the anchor
            self.anchor = (previous, np.asarray(uv_previous, float).copy())
        self.n += 1
        out = super().follow(previous, image, uv_previous, uv_head, head_visible, templates)
        if self.n % STEPS != 1:  # one step into the clip the anchor is the previous frame
            direct, ok = tr.lk_step(self.anchor[0], image, self.anchor[1], max_residual=R, match_exposure=True, guess=out)
            close = ok & (np.linalg.norm(direct - out, axis=1) <= D)
            self.taken += int(close.sum())
            out[close] = direct[close]
        return out


orig = tr.make_refiner
tr.make_refiner = lambda name, lk=0.0: ClipAnchor(flow=True, lk_check_px=lk) if name == "flow" else orig(name, lk)
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders  # noqa: E402
from fourds_ros.model.default import default_model_dir  # noqa: E402
t = model_tracker(default_model_dir(), track_refinement="flow")
r = score_badja_folders(["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"], {"fourds": t})["fourds"]
print("clip anchor", D, R, round(r["pck"], 4), {c: round(v["pck"], 4) for c, v in r["per_clip"].items()}, flush=True)
