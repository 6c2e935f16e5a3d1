import numpy as np, cv2, sys
sys.path.insert(0, "/work/main")
from pathlib import Path
from fourds_ros.evaluation import datasets
D = Path("/work/shared/data")
def poses(fmt, folder, stride):
    fr = list(datasets.iter_dataset(fmt, D / folder, stride=stride))
    return [f.gt_pose for f in fr if f.gt_pose is not None]
def resid(P, T=8, order=2):
    out_r, out_t, mot_r = [], [], []
    for s in range(0, len(P) - T + 1, 7):
        w = P[s:s+T]
        inv0 = np.linalg.inv(w[0])
        rel = [inv0 @ p for p in w]
        rv = np.stack([cv2.Rodrigues(r[:3, :3])[0].ravel() for r in rel]); tr = np.stack([r[:3, 3] for r in rel])
        t = np.arange(T) / (T - 1.0)
        B = np.stack([t ** (p + 1) for p in range(order)], 1)
        for vals, out in ((rv, out_r), (tr, out_t)):
            c = np.linalg.lstsq(B[1:], vals[1:], rcond=None)[0]
            out.append(np.sqrt(np.mean(np.sum((B @ c - vals) ** 2, 1))))
        mot_r.append(np.linalg.norm(rv[-1]))
    return np.degrees(np.median(out_r)), 100 * np.median(out_t), np.degrees(np.median(mot_r)) / (T - 1)
for name, fmt, folder, stride in [("tum30", "tum", "tum_fr1_rpy_f000-079", 1), ("tum15", "tum", "tum_fr1_rpy_f000-079", 2),
        ("tum10", "tum", "tum_fr1_rpy_f000-079", 3), ("holo", "hololens", "hololens_dvmvs_000_f00305-00334", 1),
        ("holo2", "hololens", "hololens_dvmvs_000_f00305-00334", 2), ("kitchen", "7scenes", "7scenes_redkitchen_f000-299", 1),
        ("kitchen15", "7scenes", "7scenes_redkitchen_f000-299", 2)]:
    P = poses(fmt, folder, stride)
    r, t, m = resid(P)
    print(f"{name}: n={len(P)} order2 residual rot {r:.3f} deg, trans {t:.2f} cm; motion {m:.2f} deg/frame")
