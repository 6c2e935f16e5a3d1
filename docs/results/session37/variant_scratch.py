"""Exploration (session 37): smoothing variants patched into pose_geometry.smooth_clip_motion.
VARIANT: shipped | rot0 (rotation as solved, translation order 2) | chi2 (each component smoothed only
where its order-2 residuals pass chi-square 99.9 % for their degrees of freedom, with the clip's variances)."""
import json, os, sys
import numpy as np, cv2
from scipy.stats import chi2 as chi2_dist
sys.path.insert(0, "/work/main")
from fourds_ros.perception import pose_geometry as pg
from fourds_ros import cli
orig = pg.smooth_clip_motion
V = sys.argv[2]
used = []
def patched(rotation, translation, variance, order, stamps_ns=None):
    out_r, out_t = orig(rotation, translation, variance, order, stamps_ns)
    if order <= 0 or len(rotation) <= order + 1 or V == "shipped":
        return out_r, out_t
    if V == "rot0":
        return np.asarray(rotation), out_t
    rv = np.stack([cv2.Rodrigues(np.asarray(r, float))[0].ravel() for r in rotation])
    frv = np.stack([cv2.Rodrigues(np.asarray(r, float))[0].ravel() for r in out_r])
    var = np.maximum(np.asarray(variance, float), 1e-12)
    limit = chi2_dist.ppf(0.999, 3 * (len(rotation) - 1 - order))
    keep_r = np.sum((rv - frv)[1:] ** 2 / var[1:, :1]) <= limit
    keep_t = np.sum((np.asarray(translation) - out_t)[1:] ** 2 / var[1:, 1:]) <= limit
    used.append((bool(keep_r), bool(keep_t)))
    return (out_r if keep_r else np.asarray(rotation)), (out_t if keep_t else np.asarray(translation))
pg.smooth_clip_motion = patched
name = sys.argv[1]
out = f"/tmp/s37/var/{V}/{name}"
cli.main(["eval", f"/tmp/s37/bags/{name}", "--offline", "--out", out, "--pose-starts", "6", *sys.argv[3:]])
r = json.load(open(f"{out}/report.json"))
sys.path.insert(0, "/work/main/tools")
from frame_rate_study import row
x = row(r)
print(name, V, f"ATE {x['ate']:.4f} (ORB {x['orb_vo_ate']:.4f}) rot {x['rpe_rot_deg']:.2f} ({x['orb_vo_rpe_rot_deg']:.2f})", "smoothed", np.mean(used, 0).round(2).tolist() if used else None, flush=True)
