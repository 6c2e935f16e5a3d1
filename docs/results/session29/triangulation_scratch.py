import numpy as np, cv2, transforms3d
from fourds_ros.rgbd import read_tum, read_list
from pathlib import Path
import sys
root = Path("/work/shared/data/tum_fr1_rpy_f000-079")
seq = read_tum(root)
K = seq.intrinsics; kinv = np.linalg.inv(K)
gt = np.array([[float(v) for v in r[:8]] for r in read_list(root / "groundtruth.txt")])
rgb_t = np.array([float(r[0]) for r in read_list(root / "rgb.txt")])
OFFSET = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
def pose_interp(t):
    t = t + OFFSET
    i = np.searchsorted(gt[:, 0], t); a, b = gt[i-1], gt[i]
    w = (t - a[0]) / (b[0] - a[0])
    qa = np.r_[a[7], a[4:7]]; qb = np.r_[b[7], b[4:7]]
    if qa @ qb < 0: qb = -qb
    ra, rb = transforms3d.quaternions.quat2mat(qa), transforms3d.quaternions.quat2mat(qb)
    rv = cv2.Rodrigues(ra.T @ rb)[0]
    R = ra @ cv2.Rodrigues(rv * w)[0]
    return R, (1-w)*a[1:4] + w*b[1:4]
res_all = []
for start in range(0, 72, 7):
    ims = [cv2.cvtColor(seq.rgb(i), cv2.COLOR_RGB2GRAY) for i in range(start, start+8)]
    d0 = seq.depth(start)
    p0 = cv2.goodFeaturesToTrack(ims[0], 300, 0.01, 10)
    pts = p0.copy(); ok = np.ones(len(p0), bool)
    R0, c0 = pose_interp(rgb_t[start])
    x0 = p0.reshape(-1, 2)
    zgt = d0[np.round(x0[:,1]).astype(int), np.round(x0[:,0]).astype(int)]
    b0 = (kinv @ np.c_[x0, np.ones(len(x0))].T).T
    ratios = []
    for k in range(1, 8):
        nxt, st, err = cv2.calcOpticalFlowPyrLK(ims[k-1], ims[k], pts, None, winSize=(21,21), maxLevel=3)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(ims[k], ims[k-1], nxt, None, winSize=(21,21), maxLevel=3)
        ok &= (st.ravel()==1) & (st2.ravel()==1) & (np.linalg.norm((back-pts).reshape(-1,2),axis=1) < 0.5)
        pts = nxt
        Rk, ck = pose_interp(rgb_t[start+k])
        r0k = R0.T @ Rk; t0k = R0.T @ (ck - c0)
        xk = pts.reshape(-1,2)
        bk = (kinv @ np.c_[xk, np.ones(len(xk))].T).T
        rot_b0 = (r0k.T @ b0.T).T; tk = r0k.T @ t0k
        inf = (K @ rot_b0.T).T; inf = inf[:, :2]/inf[:, 2:]
        par = np.linalg.norm(xk - inf, axis=1)
        a = np.cross(bk, rot_b0); c = np.cross(bk, np.broadcast_to(tk, bk.shape))
        z = np.einsum("ij,ij->i", a, c) / np.einsum("ij,ij->i", a, a)
        use = ok & (zgt > 0) & (par > 4) & (z > 0)
        ratios += (z[use]/zgt[use]).tolist()
    r = np.median(ratios) if ratios else np.nan
    res_all.append(r)
    print(start, len(ratios), round(float(r), 3), "trans mm", round(float(np.linalg.norm(t0k))*1000, 1))
print("OFFSET", OFFSET, "median", np.nanmedian(res_all))
