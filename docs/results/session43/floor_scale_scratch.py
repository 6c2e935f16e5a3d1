"""Scratch: the model's metres rescaled by a known floor plane (the camera's height and tilt over it, as a robot's
URDF gives them), against the scale that fits the whole frame. The prediction is brought onto the ground truth's
grid as the scorer does. python floor_scale.py BAG NX NY NZ HEIGHT (the floor's world normal pointing up, the
camera's height over the floor)."""
import sys, numpy as np
sys.path.insert(0, "docs/results/session43")
from aligned import aligned
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.eval_cli import resolve_model
bag = read_bag(sys.argv[1])
n_w = np.array([float(v) for v in sys.argv[2:5]]); n_w /= np.linalg.norm(n_w)
height = float(sys.argv[5])
preds = run_offline(bag, resolve_model(None), backend="onnxruntime")
rows = []
for s in sorted(set(preds.depth) & set(bag.gt_depth))[::3]:
    d, gd, K = aligned(bag, preds, s)
    h, w = gd.shape
    n_c = bag.gt_pose[s][:3, :3].T @ n_w  # the floor's up normal in camera coordinates
    v, u = np.mgrid[0:h, 0:w]
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((h, w))], -1)
    down = -(rays @ n_c)
    floor_z = np.where(down > 0.05, height / np.maximum(down, 1e-9), np.nan)  # z where each ray meets the floor
    ok = np.isfinite(gd) & (gd > 1e-3) & np.isfinite(d) & (d > 0)
    on = ok & np.isfinite(floor_z) & (np.abs(gd - floor_z) < 0.05 * floor_z)  # ground-truth floor pixels
    whole = np.median(gd[ok] / d[ok])
    floor = np.median(floor_z[on] / d[on]) if on.sum() > 200 else np.nan
    rows.append((on[ok].mean(), floor, whole))
a = np.array(rows)
seen = np.isfinite(a[:, 1])
print(sys.argv[1].split("/")[-1], f"frames {len(a)}, floor seen in {seen.sum()}; floor share median {np.median(a[seen, 0]):.2f}")
print("  scale from the floor / from the whole frame, per frame:", [(round(f, 2), round(wh, 2)) for _, f, wh in a[seen]])
print("  log-ratio floor/whole: median", np.median(np.log(a[seen, 1] / a[seen, 2])).round(3))
