"""Scratch: the model's metres rescaled by a known floor plane (camera height + gravity), per frame.
python floor_scale.py BAG NX NY NZ HEIGHT  (the floor's world normal pointing up to the camera, the camera's median height)"""
import sys, numpy as np, cv2
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.eval_cli import resolve_model
bag = read_bag(sys.argv[1])
n_w = np.array([float(v) for v in sys.argv[2:5]]); n_w /= np.linalg.norm(n_w)
height = float(sys.argv[5])
preds = run_offline(bag, resolve_model(None), backend="onnxruntime")
def absrel(p, g):
    ok = np.isfinite(p) & np.isfinite(g) & (g > 0) & (p > 0)
    return float(np.mean(np.abs(p[ok] - g[ok]) / g[ok])), ok
rows = []
for s in bag.stamps:
    if s not in preds.depth or s not in bag.gt_depth: continue
    d = preds.depth[s].astype(np.float64); K = preds.depth_K.get(s, bag.intrinsics(s))
    g = bag.gt_depth[s]
    h, w = d.shape
    gd = cv2.resize(g, (w, h), interpolation=cv2.INTER_NEAREST) if g.shape != d.shape else g
    R = bag.gt_pose[s][:3, :3]  # world_from_camera
    n_c = R.T @ n_w  # the floor's up normal in camera coordinates; floor: n_c . X = -height
    v, u = np.mgrid[0:h, 0:w]
    rays = np.stack([(u + .5 - K[0, 2]) / K[0, 0], (v + .5 - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1)
    down = -(rays @ n_c)  # > 0: the ray goes down towards the floor
    floor_z = np.where(down > 0.05, height / np.maximum(down, 1e-9), np.nan)  # depth (z) where the ray meets the floor
    r = np.log(floor_z / d)
    r = r[np.isfinite(r)]
    if len(r) < 0.05 * d.size:
        rows.append((s, np.nan, np.nan, np.nan, absrel(d, gd)[0])); continue
    # the floor is the lowest surface: every pixel's ratio is >= the scale; the floor's pixels sit at it
    hist, edges = np.histogram(r, bins=60, range=(np.percentile(r, 1), np.percentile(r, 60)))
    peak = edges[np.argmax(hist)] + (edges[1] - edges[0]) / 2
    scale_mode = np.exp(peak)
    rs = np.sort(r); m = len(rs); need = int(0.05 * d.size)
    hi = np.searchsorted(rs, rs + 0.2)  # the window [rs[i], rs[i] + 0.2]
    first = np.nonzero(hi - np.arange(m) >= need)[0]
    scale_p10 = np.exp(np.median(rs[first[0]:hi[first[0]]])) if len(first) else np.nan
    # the oracle scale (median GT / pred) for reference
    ok = np.isfinite(gd) & (gd > 0)
    oracle = np.median(gd[ok] / d[ok])
    rows.append((s, scale_mode, scale_p10, oracle, absrel(d, gd)[0], absrel(d * scale_mode, gd)[0], absrel(d * scale_p10, gd)[0], len(r) / d.size))
A = [r for r in rows if len(r) > 5]
print("frames", len(rows), "with floor", len(A))
a = np.array([r[1:] for r in A])
print("scale mode / p10 / oracle medians", np.nanmedian(a[:, 0]).round(3), np.nanmedian(a[:, 1]).round(3), np.nanmedian(a[:, 2]).round(3))
print("AbsRel own / mode / p10 (frames with floor):", a[:, 3].mean().round(3), a[:, 4].mean().round(3), a[:, 5].mean().round(3))
print("log-ratio of mode scale to oracle: median", np.median(np.log(a[:, 0] / a[:, 2])).round(3), "IQR", np.percentile(np.log(a[:, 0] / a[:, 2]), [25, 75]).round(3))
print("floor-ray fraction median", np.median(a[:, 6]).round(2))
# the clip-median scale (a robot's scale changes slowly): one median over all frames
sm = np.nanmedian(a[:, 0]); print("one scale for the recording", sm.round(3), "AbsRel", np.mean([absrel(preds.depth[s] * sm, cv2.resize(bag.gt_depth[s], preds.depth[s].shape[::-1], interpolation=cv2.INTER_NEAREST) if bag.gt_depth[s].shape != preds.depth[s].shape else bag.gt_depth[s])[0] for s in [r[0] for r in A]]).round(3))
# diagnosis: the GT floor pixels (GT depth within 5 cm of the floor plane), and the scale they give
print("frame  gt-floor-frac  scale@gt-floor  lowest-window  oracle")
for s in bag.stamps[::5]:
    d = preds.depth[s].astype(np.float64); K = preds.depth_K.get(s, bag.intrinsics(s)); h, w = d.shape
    g = bag.gt_depth[s]; gd = cv2.resize(g, (w, h), interpolation=cv2.INTER_NEAREST) if g.shape != d.shape else g
    n_c = bag.gt_pose[s][:3, :3].T @ n_w
    v, u = np.mgrid[0:h, 0:w]
    rays = np.stack([(u + .5 - K[0, 2]) / K[0, 0], (v + .5 - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1)
    down = -(rays @ n_c)
    floor_z = np.where(down > 0.05, height / np.maximum(down, 1e-9), np.nan)
    on = np.isfinite(gd) & (gd > 0) & (np.abs(gd - floor_z) < 0.05 * floor_z)
    sc = np.median(floor_z[on] / d[on]) if on.sum() > 20 else np.nan
    ok = np.isfinite(gd) & (gd > 0)
    row = [r for r in A if r[0] == s]
    print(s % 10**10, round(on.mean(), 3), round(float(sc), 3), round(float(row[0][2]), 3) if row else None, round(float(np.median(gd[ok] / d[ok])), 3))
