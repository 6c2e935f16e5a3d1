"""Scratch: are the model's depth errors at its depth edges? Outlier rate (delta >= 1.25 after per-frame median
scaling) by the local log-depth step of the prediction (max over 8 neighbours, on the GT grid)."""
import sys, numpy as np
sys.path.insert(0, "docs/results/session43")
from aligned import aligned
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.eval_cli import resolve_model
bag = read_bag(sys.argv[1])
preds = run_offline(bag, resolve_model(None), backend="onnxruntime")
steps, outl, near = [], [], []
for s in sorted(set(preds.depth) & set(bag.gt_depth)):
    d, gd, _ = aligned(bag, preds, s)
    ld = np.log(np.where(d > 0, d, np.nan))
    step = np.zeros_like(ld)
    for dy in (-4, 0, 4):
        for dx in (-4, 0, 4):
            if dy or dx:
                step = np.fmax(step, np.abs(ld - np.roll(np.roll(ld, dy, 0), dx, 1)))
    ok = np.isfinite(gd) & (gd > 1e-3) & np.isfinite(d) & (d > 0) & np.isfinite(step)
    p = d * np.median(gd[ok] / d[ok])
    ratio = np.maximum(p / gd, gd / p)
    steps.append(step[ok]); outl.append(ratio[ok] >= 1.25); near.append(p[ok] < gd[ok] / 1.25)
st, ou, ne = map(np.concatenate, (steps, outl, near))
print(sys.argv[1].split("/")[-1], "pixels", len(st), "outliers", ou.mean().round(3), "too near", ne.mean().round(3))
for q in (50, 90, 95, 99):
    t = np.percentile(st, q); keep = st <= t
    print(f"  drop step > p{q} ({t:.3f}): keep {keep.mean():.3f}, outliers {ou[keep].mean():.3f} (dropped {ou[~keep].mean():.3f})")
