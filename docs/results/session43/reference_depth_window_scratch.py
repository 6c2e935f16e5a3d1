"""Scratch: metres from an RGB-D reference online: each clip's scale = median over its frames of median(ref / model),
the scale in effect = the median of the last W clips' (the current one included); ground truth standing in for the sensor."""
import sys, numpy as np
sys.path.insert(0, "docs/results/session43")
from aligned import aligned
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.evaluation.metrics import depth_errors
from fourds_ros.evaluation.peers import constant_depth
from fourds_ros.evaluation.report import score_depth
bag = read_bag(sys.argv[1])
preds = run_offline(bag, resolve_model(None), backend="onnxruntime")
stamps = sorted(set(preds.depth) & set(bag.gt_depth))
scale = []
for s in stamps:
    e = depth_errors(preds.depth[s], bag.gt_depth[s], median_scale=True, pred_K=preds.depth_K.get(s), gt_K=bag.intrinsics(s))
    scale.append(e["scale"])
scale = np.array(scale)
clips = [list(range(max(0, i - 6), i + 1)) for i in range(6, len(stamps), 7)]  # the clips' output frames
const = score_depth(bag, constant_depth(bag.stamps, bag.gt_depth, like=preds))[0]["metric"]["abs_rel"]
for w in (1, 3, 10, 30):
    ratios, errs = [], []
    for c in clips:
        ratios.append(np.median(scale[c]))
        r = np.median(ratios[-w:])
        for i in c:
            s = stamps[i]
            errs.append(depth_errors(preds.depth[s] * r, bag.gt_depth[s], pred_K=preds.depth_K.get(s), gt_K=bag.intrinsics(s))["abs_rel"])
    print(sys.argv[1].split("/")[-1], f"window {w}: metric AbsRel {np.mean(errs):.3f} (constant {const:.3f}: {np.mean(errs) / const:.2f}x)")
