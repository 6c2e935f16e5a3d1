"""Scratch: per clip, how many frames the PnP geometry solved (valid), gated, and the turn at the
clip's last frame by head / geometry / result."""
import sys, numpy as np, cv2
import fourds_ros.perception.pipeline as pl
from fourds_ros.evaluation import eval_cli
orig = pl.clip_pose
log = []
def ang(R): return float(np.degrees(np.linalg.norm(cv2.Rodrigues(np.asarray(R, np.float64))[0])))
def wrapped(outputs, k_model, mode="fused", *a, **kw):
    r, t, lv, geo = orig(outputs, k_model, mode, *a, **kw)
    if geo is not None:
        hr = outputs["pose_rotation"][0]
        log.append(dict(valid=int(geo.valid.sum()), gated=int(getattr(geo, "gated", np.zeros(1)).sum()),
                        inl=geo.inliers.tolist(), pts=geo.points.tolist(), head=round(ang(hr[-1]), 1),
                        geo=round(ang(geo.rotation[-1]), 1), out=round(ang(r[-1]), 1), rot_only=int(geo.rotation_only.sum())))
    return r, t, lv, geo
pl.clip_pose = wrapped
eval_cli.main([sys.argv[1], "--offline", "--out", sys.argv[2]])
for r in log: print(r)
