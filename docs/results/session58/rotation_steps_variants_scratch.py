"""Scratch: candidate per-frame rotations from consecutive frames' bearings, on recorded clips."""
import sys
import numpy as np
sys.path.insert(0, "/work/main")
from fourds_ros.evaluation.bag import read_bag

def load(npz):
    with np.load(npz) as data:
        clips = {}
        for key in data.files:
            c, name = key.split("/")
            clips.setdefault(int(c), {})[name] = data[key]
    return [dict(c, stamps=[int(s) for s in c["stamps"]]) for _, c in sorted(clips.items())]

def ang(R): return np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)))
def bear(p, kinv):
    b = (kinv @ np.c_[p, np.ones(len(p))].T).T; return b / np.linalg.norm(b, axis=1, keepdims=True)
def kabsch(src, dst):  # dst ~ R src
    u, _, vt = np.linalg.svd(dst.T @ src); d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1, 1, d]) @ vt
def px_res(R, b_src, p_dst, k):  # project R b_src, compare with p_dst
    q = (k @ (R @ b_src.T)).T; q = q[:, :2] / q[:, 2:3]
    return np.linalg.norm(q - p_dst, axis=1)

def step(c, t, k, thr, min_n=8, q=90):
    kinv = np.linalg.inv(k)
    ok = (c["vis"][:, t - 1] > 0.5) & (c["vis"][:, t] > 0.5)
    if "usable" in c: ok &= c["usable"].astype(bool)
    pa, pb = c["xy"][ok, t - 1], c["xy"][ok, t]
    if len(pa) < min_n: return None
    ba, bb = bear(pa, kinv), bear(pb, kinv)
    R = kabsch(bb, ba)  # prev_from_t: ba ~ R bb
    for _ in range(2):
        r = px_res(R.T, ba, pb, k)
        inl = r < max(3 * np.median(r), 0.5)
        if inl.sum() < min_n: return None
        R = kabsch(bb[inl], ba[inl])
    r = px_res(R.T, ba[inl], pb[inl], k)
    return R if np.percentile(r, q) < thr else None

def run(bag, npz, thr):
    gt = read_bag(bag).gt_pose
    rec = load(npz)
    out = {"final": ([], []), "cand": ([], [])}
    used = total = 0
    for c in rec:
        st = c["stamps"]
        if not all(s in gt for s in st): continue
        k = c["k"]; T = len(st)
        fin = c["final"]
        cand = [np.eye(3)]
        for t in range(1, T):
            s = step(c, t, k, thr)
            total += 1
            if s is None:
                s = fin[t - 1].T @ fin[t]
            else:
                used += 1
            cand.append(cand[-1] @ s)
        g0 = [gt[st[0]][:3, :3].T @ gt[s][:3, :3] for s in st]
        for name, R in (("final", fin), ("cand", cand)):
            for t in range(1, T):
                out[name][0].append(ang((R[t - 1].T @ R[t]).T @ (g0[t - 1].T @ g0[t])))
                out[name][1].append(ang(R[t].T @ g0[t]))
    print(f"  thr {thr}: used {used}/{total}", "  ".join(f"{n}: step {np.mean(v[0]):.2f} first {np.mean(v[1]):.2f}" for n, v in out.items()))

bag, npz = sys.argv[1], sys.argv[2]
for thr in (0.5, 1.0, 2.0, 1e9):
    run(bag, npz, thr)
