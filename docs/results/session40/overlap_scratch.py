"""Exploration: does the model's depth scale on the frames two clips share explain the change in
their solved sizes? Usage: BAG STARTS [k=v ...]"""
import sys
import numpy as np
sys.path.insert(0, "/work/main/tools"); sys.path.insert(0, "/work/main")
import yaml
import pose_error_budget as peb
from fourds_ros.engine import create_engine
from fourds_ros.evaluation.bag import CAMERA_FRAME, read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.perception import pipeline as pl
from fourds_ros.perception.settings import PerceptionSettings

bag = read_bag(sys.argv[1]); starts = int(sys.argv[2])
params = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in sys.argv[3:])}
settings = PerceptionSettings.from_params(params) if params else PerceptionSettings()
engine = create_engine(resolve_model(None), backend="torch")
depths = []
orig = pl.PerceptionPipeline._poses
def hook(self, outputs, model_depth, xy, slot_ids, frames, *a, **k):
    depths.append({f.stamp_ns: model_depth[t] for t, f in enumerate(frames)})
    return orig(self, outputs, model_depth, xy, slot_ids, frames, *a, **k)
pl.PerceptionPipeline._poses = hook

def ate(calls):
    return peb.chained_ate(calls, bag.gt_pose, "estimate")

de, rr, a0, a1 = [], [], [], []
for start in range(starts):
    depths.clear()
    calls = peb.record_clips(bag, engine, settings, start)
    assert len(calls) == len(depths), (len(calls), len(depths))
    errs, ratios = [], [0.0]
    for i, c in enumerate(calls):
        gr, gt = peb.ground_truth_motion(bag.gt_pose, c[1])
        a, b = np.linalg.norm(c[3][-1]), np.linalg.norm(gt[-1])
        errs.append(np.log(a / b) if a > 0 and b > 0 else np.nan)
        if i:
            shared = sorted(set(depths[i]) & set(depths[i - 1]))
            q = np.stack([depths[i][s] / depths[i - 1][s] for s in shared])
            ratios.append(float(np.log(np.nanmedian(q))))
    errs = np.array(errs)
    de += list(np.diff(errs)); rr += ratios[1:]
    scale = np.exp(-np.cumsum(ratios))
    fixed = [(idx, st, rot, tr * s, lv, ot) for (idx, st, rot, tr, lv, ot), s in zip(calls, scale)]
    a0.append(ate(calls)); a1.append(ate(fixed))
de, rr = np.array(de), np.array(rr); ok = np.isfinite(de) & np.isfinite(rr)
print(f"{sys.argv[1]} {params}: n {ok.sum()}, spread of size-error change {de[ok].std():.2f}, of overlap log ratio "
      f"{rr[ok].std():.2f}, corr {np.corrcoef(de[ok], rr[ok])[0,1]:.2f}; ATE {np.mean(a0):.4f} -> consistent scale {np.mean(a1):.4f}")
