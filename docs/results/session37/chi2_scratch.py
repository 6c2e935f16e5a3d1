"""Exploration (session 37): the chi-square of each clip's order-2 smoothing residuals, per recording."""
import json, sys
import numpy as np, cv2
sys.path.insert(0, "/work/main")
from fourds_ros.perception import pose_geometry as pg
from fourds_ros import cli
orig = pg.smooth_clip_motion
stats = []
def patched(rotation, translation, variance, order, stamps_ns=None):
    out = orig(rotation, translation, variance, order, stamps_ns)
    if order > 0 and len(rotation) > order + 1:
        rv = np.stack([cv2.Rodrigues(np.asarray(r, float))[0].ravel() for r in rotation])
        frv = np.stack([cv2.Rodrigues(np.asarray(r, float))[0].ravel() for r in out[0]])
        var = np.maximum(np.asarray(variance, float), 1e-12)
        chi_r = float(np.sum((rv - frv)[1:] ** 2 / var[1:, :1]))
        chi_t = float(np.sum((np.asarray(translation) - out[1])[1:] ** 2 / var[1:, 1:]))
        rms_r = float(np.degrees(np.sqrt(np.mean(np.sum((rv - frv)[1:] ** 2, 1)))))
        sd_r = float(np.degrees(np.sqrt(np.median(var[1:, 0]))))
        stats.append((chi_r, chi_t, rms_r, sd_r))
    return out
pg.smooth_clip_motion = patched
name = sys.argv[1]
cli.main(["eval", f"/tmp/s37/bags/{name}", "--offline", "--out", f"/tmp/s37/chi/{name}", *sys.argv[2:]])
a = np.array(stats)
print(f"{name}: clips {len(a)}; chi2 rot median {np.median(a[:,0]):.1f} [p10 {np.percentile(a[:,0],10):.1f}, p90 {np.percentile(a[:,0],90):.1f}]; "
      f"chi2 trans median {np.median(a[:,1]):.1f} [p10 {np.percentile(a[:,1],10):.1f} p90 {np.percentile(a[:,1],90):.1f}]; resid rms {np.median(a[:,2]):.2f} deg; sd {np.median(a[:,3]):.2f} deg")
json.dump(stats, open(f"/tmp/s37/chi/{name}.json", "w"))
