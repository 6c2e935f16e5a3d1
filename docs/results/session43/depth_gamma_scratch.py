"""Scratch: does the model compress the depth range? Per frame, fit log gt = a + gamma * log pred (least squares
over valid pixels); and the AbsRel (median-scaled) of pred**g for a few g."""
import sys, numpy as np, cv2
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.eval_cli import resolve_model
bag = read_bag(sys.argv[1]); erode = int(sys.argv[2]) if len(sys.argv) > 2 else 0
preds = run_offline(bag, resolve_model(None), backend="onnxruntime")
gam, res = [], {g: [] for g in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5)}
for s in bag.stamps:
    if s not in preds.depth or s not in bag.gt_depth: continue
    d = preds.depth[s].astype(np.float64); h, w = d.shape
    g = bag.gt_depth[s]; gd = cv2.resize(g, (w, h), interpolation=cv2.INTER_NEAREST) if g.shape != d.shape else g
    ok = np.isfinite(gd) & (gd > 0) & np.isfinite(d) & (d > 0)
    if ok.sum() < 100: continue
    x, y = np.log(d[ok]), np.log(gd[ok])
    gam.append(np.polyfit(x, y, 1)[0])
    for gg in res:
        p = d[ok] ** gg; p *= np.median(gd[ok]) / np.median(p)
        res[gg].append(np.mean(np.abs(p - gd[ok]) / gd[ok]))
print(sys.argv[1].split('/')[-1], "gamma median", np.median(gam).round(3), "IQR", np.percentile(gam, [25, 75]).round(3),
      "| AbsRel by g:", {g: round(float(np.mean(v)), 4) for g, v in res.items()})
