"""Scratch: an LK step that deviates more than D px from the median step of its k nearest followed
neighbours takes that median instead (local motion consistency)."""
import os
import numpy as np
from fourds_ros.perception import track_refine as trf

D = float(os.environ.get("CONS_D", "0"))

class Consistent(trf.TemplateRefiner):
    def follow(self, previous, image, uv_previous, uv_head, head_visible, templates):
        out = super().follow(previous, image, uv_previous, uv_head, head_visible, templates)
        prev = np.asarray(uv_previous, float)
        ok = np.isfinite(out).all(1) & np.isfinite(prev).all(1)
        if ok.sum() < self.neighbours + 1:
            return out
        steps = out - prev
        rows = np.flatnonzero(ok)
        fixed = out.copy()
        for j in rows:
            others = rows[rows != j]
            d = np.linalg.norm(prev[others] - prev[j], axis=1)
            near = others[np.argsort(d)[: self.neighbours]]
            med = np.median(steps[near], axis=0)
            if np.linalg.norm(steps[j] - med) > D:
                fixed[j] = prev[j] + med
                self.counts["replaced"] = self.counts.get("replaced", 0) + 1
        return fixed

orig = trf.make_refiner
def make_refiner(track_refinement, lk_check_px=0.0):
    r = orig(track_refinement, lk_check_px)
    if r is not None and r.flow and D > 0:
        r.__class__ = Consistent
    return r
trf.make_refiner = make_refiner
