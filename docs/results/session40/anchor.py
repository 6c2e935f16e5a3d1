"""Scratch: LK chain, then each LK-followed point snapped to its query template's best match within
R px where the match scores >= S (drift correction by the query frame)."""
import os
import numpy as np
from fourds_ros.perception import track_refine as trf

R = int(os.environ.get("ANCHOR_R", "3")); S = float(os.environ.get("ANCHOR_S", "0.85"))

class Anchored(trf.TemplateRefiner):
    def follow(self, previous, image, uv_previous, uv_head, head_visible, templates):
        out = super().follow(previous, image, uv_previous, uv_head, head_visible, templates)
        if not self.flow:
            return out
        saved = self.search_radius, self.min_score
        self.search_radius, self.min_score = R, S
        try:
            for j in range(len(out)):
                if templates[j] is not None:
                    out[j, 0], out[j, 1], _ = self.refine(image, templates[j], out[j, 0], out[j, 1])
        finally:
            self.search_radius, self.min_score = saved
        return out

orig = trf.make_refiner
def make_refiner(track_refinement, lk_check_px=0.0):
    r = orig(track_refinement, lk_check_px)
    if r is not None and r.flow and R > 0:
        r.__class__ = Anchored
    return r
trf.make_refiner = make_refiner
