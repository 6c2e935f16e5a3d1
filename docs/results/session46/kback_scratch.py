"""Scratch (session 46): BADJA (validation) with each flow step also aligned straight from the frame K
steps back (fewer LK links, less drift), taken where it lands within D px of the chained step.
python kback_scratch.py K D [mode [R]]   mode: take (default) | mean; R: the direct step's LK residual bound
(grey levels; default lk_step's 30): a step whose patch changed its look over K frames keeps the chain"""
import sys
from collections import deque
import numpy as np
import fourds_ros.perception.track_refine as tr

K, D = int(sys.argv[1]), float(sys.argv[2])
MODE = sys.argv[3] if len(sys.argv) > 3 else "take"
R = float(sys.argv[4]) if len(sys.argv) > 4 else tr.LK_MAX_RESIDUAL


class KBack(tr.TemplateRefiner):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.history = deque(maxlen=K)  # (image, uv) of the last K frames, oldest first
        self.used = 0

    def follow(self, previous, image, uv_previous, uv_head, head_visible, templates):
        if not self.history:
            self.history.append((previous, np.asarray(uv_previous, float).copy()))
        out = super().follow(previous, image, uv_previous, uv_head, head_visible, templates)
        if K > 1 and len(self.history) == K:
            old_img, old_uv = self.history[0]
            direct, ok = tr.lk_step(old_img, image, old_uv, max_residual=R, match_exposure=True, guess=out)
            close = ok & (np.linalg.norm(direct - out, axis=1) <= D)
            self.used += int(close.sum())
            out[close] = direct[close] if MODE == "take" else 0.5 * (direct[close] + out[close])
        self.history.append((image, out.copy()))
        return out


orig = tr.make_refiner
tr.make_refiner = lambda name, lk=0.0: KBack(flow=True, lk_check_px=lk) if name == "flow" else orig(name, lk)
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders  # noqa: E402
from fourds_ros.model.default import default_model_dir  # noqa: E402
t = model_tracker(default_model_dir(), track_refinement="flow")
r = score_badja_folders(["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"], {"fourds": t})["fourds"]
print(K, D, MODE, R, round(r["pck"], 4), {c: round(v["pck"], 4) for c, v in r["per_clip"].items()}, flush=True)
