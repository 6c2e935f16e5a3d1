"""Scratch (session 42): relative depth AbsRel by a frame's position in its clip, TUM (validation)."""
import sys
import numpy as np
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.report import score_depth
from fourds_ros.perception import PerceptionSettings

bag = read_bag(sys.argv[1])
for hop in [int(h) for h in sys.argv[2:]]:
    preds = run_offline(bag, "models/fourds_default", "onnxruntime", PerceptionSettings.from_params(hop=hop))
    out, per = score_depth(bag, preds)
    stamps = sorted(bag.stamps)
    idx = {s: i for i, s in enumerate(stamps)}
    by = {}
    for f in per:
        i = idx[f["stamp_ns"]]
        pos = 7 - ((i - 7) % hop if i >= 7 else 7 - i)  # position in the clip that output it (T=8)
        by.setdefault(pos, []).append(f["abs_rel"])
    print(f"hop {hop}: mean {out['abs_rel']:.4f} metric {out['metric']['abs_rel']:.3f}",
          {p: (round(float(np.mean(v)), 4), len(v)) for p, v in sorted(by.items())})
