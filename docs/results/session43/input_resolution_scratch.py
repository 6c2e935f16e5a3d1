"""Scratch: the shipped weights run at a higher input resolution (position embedding and depth queries interpolated)."""
import sys, time
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.report import score_depth
bag = read_bag(sys.argv[1])
for m in sys.argv[2:]:
    t0 = time.time(); preds = run_offline(bag, m, backend="torch")
    out, _ = score_depth(bag, preds)
    print(m, "median-scaled AbsRel", round(out["abs_rel"], 4), "delta1", round(out["delta1"], 4), "wall", round(time.time() - t0, 1))
