"""Exploration (session 48): the model's depth contrast scaled at test time, depth -> median *
(depth / median)^alpha per frame, scored median-scaled like `eval` (AbsRel). alpha 1 is the model.
Usage: python depth_contrast_scratch.py BAG [ALPHA ...]"""
import sys

import numpy as np

from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.metrics import depth_errors
from fourds_ros.evaluation.offline import run_offline

bag = read_bag(sys.argv[1])
alphas = [float(a) for a in sys.argv[2:]] or [0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.6]
preds = run_offline(bag, "models/fourds_default", backend="onnxruntime")
stamps = sorted(set(preds.depth) & set(bag.gt_depth))
for alpha in alphas:
    errs = []
    for s in stamps:
        d = preds.depth[s].astype(np.float64)
        med = np.nanmedian(d)
        e = depth_errors((med * (d / med) ** alpha).astype(np.float32), bag.gt_depth[s], median_scale=True,
                         pred_K=preds.depth_K.get(s), gt_K=bag.intrinsics(s) if s in preds.depth_K else None)
        if e:
            errs.append(e["abs_rel"])
    print(f"{sys.argv[1]} alpha {alpha:.2f}: depth AbsRel {np.mean(errs):.4f} over {len(errs)} frames")
