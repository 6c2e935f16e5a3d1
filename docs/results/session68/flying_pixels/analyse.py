import sys, numpy as np
from fourds_ros.evaluation.metrics import depth_edge_mask, depth_errors

def jump_mask(d, x, conn=8, farther_only=False):
    """True where a pixel's relative jump to a 4/8-neighbour exceeds x (NaN neighbours ignored)."""
    H, W = d.shape
    drop = np.zeros((H, W), bool)
    offs = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if conn == 8 else [])
    for dy, dx in offs:
        a = d[max(0, -dy) if False else 0:H - dy, max(0, -dx):W - max(dx, 0)]
        b = d[dy:H, max(dx, 0):W - max(0, -dx)] if dx >= 0 else d[dy:H, 0:W + dx]
        a = d[0:H - dy, (0 if dx >= 0 else -dx):(W - dx if dx >= 0 else W)]
        with np.errstate(invalid="ignore"):
            j = np.abs(a - b) / np.minimum(a, b) > x
        if farther_only:
            ja, jb = j & (a > b), j & (b > a)
        else:
            ja = jb = j
        drop[0:H - dy, (0 if dx >= 0 else -dx):(W - dx if dx >= 0 else W)] |= ja
        drop[dy:H, (dx if dx >= 0 else 0):(W if dx >= 0 else W + dx)] |= jb
    return drop

def drop_mask(d, x, conn, far):
    if conn in (4, 8):
        return jump_mask(d, x, conn, far)
    import cv2  # conn = window radius r>1 code: 100+r -> (max-min)/min over a (2r+1)^2 window
    r = conn - 100; k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    f = np.where(np.isfinite(d), d, np.nan).astype(np.float32)
    hi = cv2.dilate(np.nan_to_num(f, nan=0.0), k); lo = cv2.erode(np.nan_to_num(f, nan=1e9), k)
    return (hi - lo) / np.maximum(lo, 1e-6) > x if not far else (f - lo) / np.maximum(lo, 1e-6) > x

def sample_gt(pred_shape, predK, gtK, arr):
    h, w = pred_shape
    v, u = np.mgrid[0:h, 0:w].astype(float)
    M = gtK @ np.linalg.inv(predK)
    gu = M[0, 0] * u + M[0, 1] * v + M[0, 2]; gv = M[1, 0] * u + M[1, 1] * v + M[1, 2]
    gu = np.clip(np.round(gu).astype(int), 0, arr.shape[1] - 1); gv = np.clip(np.round(gv).astype(int), 0, arr.shape[0] - 1)
    return arr[gv, gu]

def run(name, configs, erode=8):
    z = np.load(f"/tmp/s68/h_fly/work/{name}.npz")
    P, PK, G, GK = z["pred"], z["predK"], z["gt"], z["gtK"]
    rows = {c: dict(n=0, kept=0, ph10=0, ph20=0, ph10e=0, ph20e=0, ne=0, ar=[], head=[]) for c in configs}
    for i in range(len(P)):
        pred, gt = P[i].astype(np.float32), G[i].astype(np.float32)
        g = sample_gt(pred.shape, PK[i], GK[i], gt)
        edge = sample_gt(pred.shape, PK[i], GK[i], depth_edge_mask(gt, erode).astype(np.uint8)) > 0
        valid = np.isfinite(pred) & (pred > 0) & np.isfinite(g) & (g > 1e-3)
        if valid.sum() < 10: continue
        scale = np.median(g[valid]) / np.median(pred[valid])  # the unfiltered frame's scale for every config
        for c in configs:
            x, conn, far = c
            keep = valid & ~(drop_mask(pred, x, conn, far) if x > 0 else np.zeros_like(valid))
            r = rows[c]; p = pred * scale
            r["n"] += valid.sum(); r["kept"] += keep.sum(); r["ne"] += (valid & edge).sum()
            for m, k in ((0.1, "ph10"), (0.2, "ph20")):
                ph = keep & (p < g * (1 - m))
                r[k] += ph.sum(); r[k + "e"] += (ph & edge).sum()
            r["ar"].append(np.mean(np.abs(p[keep] - g[keep]) / g[keep]))
            pf = np.where(keep | ~valid, pred, np.nan) if x > 0 else pred
            e = depth_errors(pf, gt, median_scale=True, pred_K=PK[i], gt_K=GK[i], pred_range=tuple(z["rng"]))
            r["head"].append(e["abs_rel"] if e else np.nan)
    base = rows[configs[0]]
    print(f"== {name}: frames {len(P)}, published pixels with GT {base['n']}, near GT edge (erode {erode} gt px) "
          f"{base['ne'] / base['n']:.1%}")
    print(" thr conn far | kept  | ph10 (of all)  edge-share | ph20 (of all) edge-share | AbsRel grid | AbsRel eval")
    for c in configs:
        r = rows[c]
        print(f" {c[0]:5.3f} {c[1]} {int(c[2])} | {r['kept'] / base['n']:.3f} | {r['ph10'] / base['n']:.4f} "
              f"{r['ph10e'] / max(r['ph10'], 1):.2f} (edge-px {r['ph10e'] / base['n']:.4f}) | {r['ph20'] / base['n']:.4f} "
              f"{r['ph20e'] / max(r['ph20'], 1):.2f} (edge-px {r['ph20e'] / base['n']:.4f}) | {np.mean(r['ar']):.4f} | {np.nanmean(r['head']):.4f}")

if __name__ == "__main__":
    erode = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    cfgs = [(0.0, 8, False)] + [(x, 8, f) for x in (0.02, 0.03, 0.05, 0.075, 0.1) for f in (False, True)] + [
        (x, 100 + r, f) for r in (2, 3) for x in (0.1, 0.15, 0.2, 0.3) for f in (False, True)]
    run(sys.argv[1], cfgs, erode)
