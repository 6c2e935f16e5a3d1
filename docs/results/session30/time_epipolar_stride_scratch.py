"""Rule 6: session 29's timing wrapper (time_epipolar_scratch.py) with epipolar.FOLLOW_STRIDE from
$FOLLOW_STRIDE. Usage: FOLLOW_STRIDE=2 python this.py <eval-suite args> (scratch)."""
import os, sys, time, json
import numpy as np
import fourds_ros.perception.epipolar as ep
import fourds_ros.perception.pipeline as pl

ep.FOLLOW_STRIDE = int(os.environ.get("FOLLOW_STRIDE", "1"))
T, TAKEN = [], []
orig = pl.PerceptionPipeline._epipolar
def timed(self, *a, **k):
    t = time.perf_counter()
    try:
        return orig(self, *a, **k)
    finally:
        T.append(1000 * (time.perf_counter() - t))
pl.PerceptionPipeline._epipolar = timed
from fourds_ros.evaluation.suite import main
rc = main(sys.argv[1:])
out = {"follow_stride": ep.FOLLOW_STRIDE, "calls": len(T), "median_ms": float(np.median(T)),
       "p90_ms": float(np.percentile(T, 90)), "median_ms_when_run": float(np.median([t for t in T if t > 1.0] or [0]))}
print("EPI", json.dumps(out))
sys.exit(rc)
