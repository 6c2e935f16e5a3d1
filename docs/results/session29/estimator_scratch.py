import sys, numpy as np, cv2
from fourds_ros.rgbd import read_sequence
from fourds_ros.perception.track_refine import lk_step
METHODS = {"ransac": cv2.RANSAC, "magsac": cv2.USAC_MAGSAC}
def follow(grays, n, filt):
    p0 = cv2.goodFeaturesToTrack(grays[0], n, 0.01, 8).reshape(-1, 2).astype(np.float64)
    at, alive = p0.copy(), np.ones(len(p0), bool)
    for a, b in zip(grays[:-1], grays[1:]):
        if filt:
            rows = np.flatnonzero(alive); m, ok = lk_step(a, b, at[rows]); at[rows] = m; alive[rows[~ok]] = False
        else:
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(a, b, at.astype(np.float32).reshape(-1, 1, 2), None, winSize=(21, 21), maxLevel=3)
            alive &= st.ravel() == 1; at = nxt.reshape(-1, 2).astype(np.float64)
    return p0[alive], at[alive]
for root, kind in [("../shared/data/tum_fr1_rpy_f000-079", "tum"), ("samples/hololens_000", "hololens"), ("../shared/data/7scenes_redkitchen_f000-299", "7scenes")]:
    seq = read_sequence(root, kind); K = seq.intrinsics; gt = seq.camera_to_world
    grays = [cv2.cvtColor(seq.rgb(i), cv2.COLOR_RGB2GRAY) for i in range(len(seq))]
    for filt in (False, True):
        for name, meth in METHODS.items():
            errs, used = [], 0
            starts = range(0, len(seq) - 7, 7)
            for a in starts:
                x0, x1 = follow(grays[a:a + 8], 300, filt)
                if len(x0) < 30: continue
                E, inl = cv2.findEssentialMat(x0, x1, K, method=meth, prob=0.999, threshold=1.0)
                if E is None or E.shape != (3, 3): continue
                _, R, t, m = cv2.recoverPose(E, x0, x1, K, mask=inl)
                if (m.ravel() > 0).sum() < 30: continue
                d = -R.T @ t.ravel(); rel = np.linalg.inv(gt[a]) @ gt[a + 7]; g = rel[:3, 3] / np.linalg.norm(rel[:3, 3])
                errs.append(float(np.degrees(np.arccos(np.clip(d @ g / np.linalg.norm(d), -1, 1))))); used += 1
            e = np.array(errs)
            print(f"{kind:9s} lk_step={filt!s:5s} {name:7s} used {used}/{len(starts)} median err {np.median(e) if len(e) else float('nan'):5.1f} max {e.max() if len(e) else float('nan'):6.1f} >45deg {(e > 45).sum()}")
