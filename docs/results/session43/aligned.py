"""Scratch helper: the model's depth brought onto the ground truth's grid exactly as the scorer does."""
import numpy as np
from fourds_ros.evaluation.metrics import resize_depth


def aligned(bag, preds, s):
    """-> (pred (H, W) on the GT grid, NaN outside the crop; gt (H, W); K of the GT grid)."""
    gt = bag.gt_depth[s]
    pk = preds.depth_K.get(s)
    pred = resize_depth(preds.depth[s], gt.shape, pk, bag.intrinsics(s) if pk is not None else None)
    return pred.astype(np.float64), gt.astype(np.float64), bag.intrinsics(s)
