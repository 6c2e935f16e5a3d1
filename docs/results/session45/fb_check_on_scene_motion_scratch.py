"""Scratch (session 45, no rule): FB check (track_lk_check_px) only for tracks whose LK step is an inlier of the frame's dominant
2D motion (RANSAC similarity over all LK steps, INLIER px).
    FB_INLIER=3 python fb_check_on_scene_motion_scratch.py badja
    python fb_check_on_scene_motion_scratch.py cli eval BAG --offline ... (fourds-ros eval)"""
import os, sys
import cv2
import numpy as np
import fourds_ros.perception.track_refine as tr
CHECK = float(os.environ.get("FB_CHECK", "1.0")); INLIER = float(os.environ.get("FB_INLIER", "3.0"))
orig_fb = tr.forward_backward_agrees
def fb(previous, image, uv_previous, moved, tracked, max_px):
    agrees = orig_fb(previous, image, uv_previous, moved, tracked, max_px)
    rows = np.flatnonzero(tracked)
    if len(rows) < 4:
        return np.ones_like(agrees)
    a = np.asarray(uv_previous, np.float32)[rows]; b = np.asarray(moved, np.float32)[rows]
    m, inl = cv2.estimateAffinePartial2D(a, b, method=cv2.RANSAC, ransacReprojThreshold=INLIER)
    if m is None:
        return np.ones_like(agrees)
    scene = np.zeros(len(agrees), bool); scene[rows[inl.ravel() > 0]] = True
    return agrees | ~scene  # only steps on the dominant motion are checked
tr.forward_backward_agrees = fb
init = tr.TemplateRefiner.__init__
def new_init(self, *a, **kw):
    init(self, *a, **kw); self.lk_check_px = CHECK
tr.TemplateRefiner.__init__ = new_init
if sys.argv[1] == "badja":
    from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
    from fourds_ros.model.default import default_model_dir
    t = model_tracker(default_model_dir(), track_refinement="flow")
    r = score_badja_folders(["../shared/data/badja_camel_dog_bear", "../shared/data/davis_horsejump-high_badja"], {"fourds": t})["fourds"]
    print(CHECK, INLIER, round(r["pck"], 4), {c: round(v["pck"], 4) for c, v in r["per_clip"].items()}, flush=True)
else:
    from fourds_ros.cli import main
    sys.exit(main(sys.argv[2:]))
