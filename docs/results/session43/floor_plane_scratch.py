"""Scratch: the floor plane of a labelled bag in its ground-truth world frame (GT depth + poses)."""
import sys, numpy as np
from fourds_ros.evaluation.bag import read_bag
bag = read_bag(sys.argv[1])
pts = []
cams = []
for s in bag.stamps[::4]:
    d = bag.gt_depth.get(s); T = bag.gt_pose.get(s)
    if d is None or T is None: continue
    K = bag.intrinsics(s); h, w = d.shape
    sy, sx = bag.images[s].shape[0] / h, bag.images[s].shape[1] / w
    v, u = np.mgrid[0:h:8, 0:w:8]; z = d[v, u]; ok = np.isfinite(z) & (z > 0)
    x = ((u[ok] + .5) * sx - .5 - K[0, 2]) / K[0, 0] * z[ok]; y = ((v[ok] + .5) * sy - .5 - K[1, 2]) / K[1, 1] * z[ok]
    P = np.stack([x, y, z[ok]], 1) @ T[:3, :3].T + T[:3, 3]
    pts.append(P); cams.append(T[:3, 3])
P = np.concatenate(pts); C = np.array(cams)
print("points", len(P), "camera centres mean", C.mean(0).round(3), "std", C.std(0).round(3))
rng = np.random.default_rng(0)
for k in range(4):  # the largest planes, one after another
    best = (0, None)
    for _ in range(3000):
        a, b, c = P[rng.choice(len(P), 3, replace=False)]
        n = np.cross(b - a, c - a); nn = np.linalg.norm(n)
        if nn < 1e-9: continue
        n /= nn; d0 = -n @ a
        inl = np.abs(P @ n + d0) < 0.02
        if inl.sum() > best[0]: best = (inl.sum(), (n, d0, inl))
    n, d0, inl = best[1]
    side = np.sign(C @ n + d0)
    print(f"plane {k}: {inl.sum()} pts ({inl.mean():.2f}), normal {n.round(3)}, cameras' distances {np.round(C @ n + d0, 3)[:5]} mean {np.mean(C @ n + d0):.3f} std {np.std(C @ n + d0):.3f}")
    P = P[~inl]
