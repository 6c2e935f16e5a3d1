"""Scratch: one metre factor per camera/site, fitted on part of a recording and applied to the rest."""
import sys, numpy as np
sys.path.insert(0, "docs/results/session43")
from aligned import aligned
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.evaluation.metrics import depth_errors
bag = read_bag(sys.argv[1])
preds = run_offline(bag, resolve_model(None), backend="onnxruntime")
stamps = sorted(set(preds.depth) & set(bag.gt_depth))
half = len(stamps) // 2
def frame_scale(s):
    d, g, _ = aligned(bag, preds, s); ok = np.isfinite(g) & (g > 1e-3) & np.isfinite(d) & (d > 0)
    return np.median(g[ok] / d[ok])
def metric(ss, f):
    e = [depth_errors(preds.depth[s] * f, bag.gt_depth[s], pred_K=preds.depth_K.get(s), gt_K=bag.intrinsics(s) if s in preds.depth_K else None) for s in ss]
    return np.mean([x["abs_rel"] for x in e if x])
def constant(ss):
    allg = np.concatenate([bag.gt_depth[s][np.isfinite(bag.gt_depth[s]) & (bag.gt_depth[s] > 1e-3)] for s in ss]); c = np.median(allg)
    return np.mean([np.mean(np.abs(c - g[np.isfinite(g) & (g > 1e-3)]) / g[np.isfinite(g) & (g > 1e-3)]) for g in (bag.gt_depth[s] for s in ss)])
scales = np.array([frame_scale(s) for s in stamps])
for fit, test, name in ((stamps[:half], stamps[half:], "fit first half, score second"), (stamps[half:], stamps[:half], "fit second half, score first")):
    f = float(np.exp(np.median(np.log([frame_scale(s) for s in fit]))))
    print(f"{name}: factor {f:.3f}; metric AbsRel own {metric(test, 1.0):.3f}, x factor {metric(test, f):.3f}, oracle constant {constant(test):.3f}")
print("per-frame scale range", scales.min().round(3), scales.max().round(3))
