"""Scratch: after the flow step, a track whose LK position is more than T camera px from the head's
(visible) prediction takes the head's."""
import os
import numpy as np
from fourds_ros.perception import track_refine as trf

T = float(os.environ.get("JUMP_T", "0"))

class Jump(trf.TemplateRefiner):
    def follow(self, previous, image, uv_previous, uv_head, head_visible, templates):
        out = super().follow(previous, image, uv_previous, uv_head, head_visible, templates)
        far = np.asarray(head_visible, bool) & (np.linalg.norm(out - uv_head, axis=1) > T)
        out[far] = np.asarray(uv_head)[far]
        self.counts["jumps"] = self.counts.get("jumps", 0) + int(far.sum())
        return out

orig = trf.make_refiner
def make_refiner(track_refinement, lk_check_px=0.0):
    r = orig(track_refinement, lk_check_px)
    if r is not None and r.flow and T > 0:
        r.__class__ = Jump
    return r
trf.make_refiner = make_refiner
