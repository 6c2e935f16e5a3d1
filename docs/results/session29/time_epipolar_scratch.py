import sys, time, numpy as np
import fourds_ros.perception.pipeline as pl
T = []
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
print("EPI_MS median", np.median(T), "p90", np.percentile(T, 90), "n", len(T))
sys.exit(rc)
