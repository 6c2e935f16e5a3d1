"""Scratch: is the model's depth range compressed on the new scene? Per frame, fit log gt = a + gamma log pred
(the prediction on the ground truth's grid, as the scorer brings it); and the median-scaled AbsRel of pred**g."""
import sys, numpy as np
sys.path.insert(0, "docs/results/session43")
from aligned import aligned
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.eval_cli import resolve_model
bag = read_bag(sys.argv[1])
preds = run_offline(bag, resolve_model(None), backend="onnxruntime")
gam, res = [], {g: [] for g in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3)}
for s in sorted(set(preds.depth) & set(bag.gt_depth)):
    d, gd, _ = aligned(bag, preds, s)
    ok = np.isfinite(gd) & (gd > 1e-3) & np.isfinite(d) & (d > 0)
    if ok.sum() < 100: continue
    gam.append(np.polyfit(np.log(d[ok]), np.log(gd[ok]), 1)[0])
    for g in res:
        p = d[ok] ** g; p *= np.median(gd[ok]) / np.median(p)
        res[g].append(np.mean(np.abs(p - gd[ok]) / gd[ok]))
print(sys.argv[1].split('/')[-1], "gamma median", np.median(gam).round(3), "IQR", np.percentile(gam, [25, 75]).round(3),
      "| AbsRel by g:", {g: round(float(np.mean(v)), 4) for g, v in res.items()})
