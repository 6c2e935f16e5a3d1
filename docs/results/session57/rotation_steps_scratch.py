import sys
import numpy as np, cv2
sys.path.insert(0, "/work/main")
from fourds_ros.evaluation.bag import read_bag
with np.load(sys.argv[2]) as data:  # rotation_sources_scratch.py's .npz: "<clip>/<name>" -> array
    clips: dict = {}
    for key in data.files:
        clip, name = key.split("/")
        clips.setdefault(int(clip), {})[name] = data[key]
rec = [dict(c, stamps=[int(s) for s in c["stamps"]], usable=c.get("usable"), geo=(c["geo_rotation"],))
       for _, c in sorted(clips.items())]
gt = read_bag(sys.argv[1]).gt_pose
def ang(R): return np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)))
def kabsch(a, b):
    h = a.T @ b; u, _, vt = np.linalg.svd(h); d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1, 1, d]) @ u.T
def bear(p, kinv):
    b = (kinv @ np.c_[p, np.ones(len(p))].T).T; return b / np.linalg.norm(b, axis=1, keepdims=True)
res = {k: [] for k in ("final", "geo", "kab_step", "ess_step", "gt_step_deg")}
for c in rec:
    st = c["stamps"]
    if not all(s in gt for s in st): continue
    k = c["k"]; kinv = np.linalg.inv(k); T = len(st)
    for t in range(1, T):
        g = gt[st[t - 1]][:3, :3].T @ gt[st[t]][:3, :3]   # prev_from_t
        res["gt_step_deg"].append(ang(g))
        for name, R in (("final", c["final"]), ("geo", c["geo"][0])):
            res[name].append(ang((R[t - 1].T @ R[t]).T @ g))
        ok = (c["vis"][:, t - 1] > 0.5) & (c["vis"][:, t] > 0.5)
        if c["usable"] is not None: ok &= c["usable"]
        pa, pb = c["xy"][ok, t - 1], c["xy"][ok, t]
        res["kab_step"].append(ang(kabsch(bear(pb, kinv), bear(pa, kinv)).T @ g))
        E, m = cv2.findEssentialMat(pb, pa, k, cv2.RANSAC, 0.999, 0.3)
        if E is not None and E.shape == (3, 3):
            _, Rr, _, _ = cv2.recoverPose(E, pb, pa, k, mask=m)
            res["ess_step"].append(ang(Rr.T @ g))
for n, v in res.items():
    print(f"{n:12s} mean {np.mean(v):.2f} median {np.median(v):.2f} n={len(v)}")
