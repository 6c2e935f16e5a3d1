"""Exploration (session 37): per-clip translation size against the ground truth; ATE with each clip's
size fixed by one ground-truth factor (its shape the model's)."""
import sys
import numpy as np
sys.path.insert(0, "/work/main/tools"); sys.path.insert(0, "/work/main")
import pose_error_budget as peb
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.engine import create_engine
from fourds_ros.perception.settings import PerceptionSettings
orig_replace = peb.replace
def replace(variant, rotation, translation, gt_rotation, gt_translation):
    if variant == "clip scale":
        s = np.linalg.norm(gt_translation[-1]) / max(np.linalg.norm(translation[-1]), 1e-9)
        return rotation, translation * s
    return orig_replace(variant, rotation, translation, gt_rotation, gt_translation)
peb.replace = replace
bag = read_bag(sys.argv[1])
settings = PerceptionSettings()
engine = create_engine(resolve_model(None), backend="torch")
res = {v: [] for v in ("estimate", "clip scale", "ground-truth size", "ground-truth direction")}
ratios = []
for start in range(6):
    calls = peb.record_clips(bag, engine, settings, start)
    for v in res:
        res[v].append(peb.chained_ate(calls, bag.gt_pose, v))
    for _, stamps, rot, tr, lv, _ in calls:
        if all(s in bag.gt_pose for s in stamps):
            gr, gt = peb.ground_truth_motion(bag.gt_pose, stamps)
            ratios.append(np.linalg.norm(tr[-1]) / max(np.linalg.norm(gt[-1]), 1e-9))
r = np.array(ratios)
print(sys.argv[1].split("/")[-1], {k: round(float(np.mean([a for a in v if a is not None])), 4) for k, v in res.items()},
      f"model/gt clip length: median {np.median(r):.2f} p10 {np.percentile(r,10):.2f} p90 {np.percentile(r,90):.2f} cv {np.std(np.log(r)):.2f}")
