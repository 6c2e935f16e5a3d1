"""Scratch (session 47): depth whose shape is the shipped head's and whose scale is a zoom-trained head's.
Each frame: the shipped model's depth times median(candidate depth) / median(shipped depth), so the
median-scaled (relative) AbsRel is the shipped's by construction and the metric AbsRel reads the
candidate's scale. Scored with the evaluator's own score_depth on a converted bag.
python scale_from_zoom_scratch.py BAG CANDIDATE_MODEL_DIR"""
import sys

import numpy as np

from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.predictions import Predictions
from fourds_ros.evaluation.report import score_depth
from fourds_ros.model.default import default_model_dir

bag = read_bag(sys.argv[1])
shipped = run_offline(bag, default_model_dir())
candidate = run_offline(bag, sys.argv[2])
combined = Predictions(name="combined", frames_in=shipped.frames_in)
combined.depth_K = dict(shipped.depth_K)
for stamp, d in shipped.depth.items():
    c = candidate.depth[stamp]
    ok = (d > 0) & np.isfinite(d) & (c > 0) & np.isfinite(c)
    combined.depth[stamp] = d * (np.median(c[ok]) / np.median(d[ok]))
for name, preds in (("shipped", shipped), ("candidate", candidate), ("combined", combined)):
    out, _ = score_depth(bag, preds)
    print(f"{name}: relative {out['abs_rel']:.4f} metric {out['metric']['abs_rel']:.4f}", flush=True)
