"""Exploration (no ATE): per clip, the order-2 fit's chi-square per degree of freedom (residuals of
the per-frame rotation vectors / translations against the published variance scales) and whether
smoothing moved the last frame's rotation toward or away from the truth. Usage: BAG STARTS"""
import sys
import numpy as np
import cv2
sys.path.insert(0, "/work/main/tools"); sys.path.insert(0, "/work/main")
import pose_error_budget as peb
from fourds_ros.engine import create_engine
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.perception import pose_geometry as pg
from fourds_ros.perception.settings import PerceptionSettings

bag = read_bag(sys.argv[1]); starts = int(sys.argv[2])
s = PerceptionSettings()
scale_r, scale_t = s.pose.rotation_var_scale, s.pose.translation_var_scale
engine = create_engine(resolve_model(None), backend="torch")
rows, cur = [], {}
orig = pg.smooth_clip_motion
def smooth(rotation, translation, variance, order, stamps_ns=None):
    r2, t2 = orig(rotation, translation, variance, order, stamps_ns)
    if order > 0 and len(rotation) > order + 1:
        rv = np.stack([cv2.Rodrigues(np.asarray(r, float))[0].ravel() for r in rotation])
        fv = np.stack([cv2.Rodrigues(np.asarray(r, float))[0].ravel() for r in r2])
        dof = 3 * (len(rotation) - 1 - order)
        chi_r = float(np.sum(np.sum((rv - fv) ** 2, 1)[1:] / (scale_r * variance[1:, 0]))) / dof
        chi_t = float(np.sum(np.sum((translation - t2) ** 2, 1)[1:] / (scale_t * variance[1:, 1]))) / dof
        cur["chi"] = (chi_r, chi_t, rotation[-1], r2[-1])
    return r2, t2
pg.smooth_clip_motion = smooth
import fourds_ros.perception.pipeline as pl
orig_add = None
def record(start):
    from fourds_ros.perception import PerceptionPipeline
    from fourds_ros.evaluation.bag import CAMERA_FRAME
    pipe = PerceptionPipeline(engine, s)
    add = pipe.odometry.add_clip
    def rec(indices, stamps_ns, rotation, translation, log_variance, output_t):
        if "chi" in cur and all(x in bag.gt_pose for x in stamps_ns):
            gr, gt = peb.ground_truth_motion(bag.gt_pose, stamps_ns)
            chi_r, chi_t, raw, sm = cur.pop("chi")
            err = lambda r: np.degrees(np.linalg.norm(cv2.Rodrigues(gr[-1].T @ r)[0]))
            rows.append((chi_r, chi_t, err(raw), err(sm)))
        return add(indices, stamps_ns, rotation, translation, log_variance, output_t)
    pipe.odometry.add_clip = rec
    for st in bag.stamps[start:]:
        pipe.push(bag.images[st], st, CAMERA_FRAME, bag.intrinsics(st))
for st in range(starts):
    record(st)
a = np.array(rows)
print(f"{sys.argv[1]}: clips {len(a)}; rotation chi2/dof median {np.median(a[:,0]):.2f} (p90 {np.percentile(a[:,0],90):.2f}), "
      f"translation {np.median(a[:,1]):.2f}; last-frame rotation error raw {a[:,2].mean():.2f} deg, smoothed {a[:,3].mean():.2f}; "
      f"smoothing helped on {np.mean(a[:,3] < a[:,2]):.2f}")
hi = a[:, 0] > 3
if hi.any():
    print(f"  chi2/dof > 3: {hi.sum()} clips, raw {a[hi,2].mean():.2f}, smoothed {a[hi,3].mean():.2f}; <= 3: raw {a[~hi,2].mean():.2f}, smoothed {a[~hi,3].mean():.2f}")
