import sys, time, numpy as np, cv2
from fourds_ros.rgbd import read_sequence
from fourds_ros.perception.track_refine import lk_step
N = int(sys.argv[1]); HALF = sys.argv[2] == "half"
def follow(grays, n):
    g0 = grays[0]
    if HALF:
        p0 = cv2.goodFeaturesToTrack(cv2.resize(g0, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), n, 0.01, 4).reshape(-1, 2).astype(np.float64) * 2 + 0.5
    else:
        p0 = cv2.goodFeaturesToTrack(g0, n, 0.01, 8).reshape(-1, 2).astype(np.float64)
    at, alive = p0.copy(), np.ones(len(p0), bool)
    for a, b in zip(grays[:-1], grays[1:]):
        rows = np.flatnonzero(alive); m, ok = lk_step(a, b, at[rows]); at[rows] = m; alive[rows[~ok]] = False
    return p0[alive], at[alive]
for root, kind in [("../shared/data/tum_fr1_rpy_f000-079", "tum")]:
    seq = read_sequence(root, kind); K = seq.intrinsics; gt = seq.camera_to_world
    grays = [cv2.cvtColor(seq.rgb(i), cv2.COLOR_RGB2GRAY) for i in range(len(seq))]
    errs, ms = [], []
    for a in range(0, len(seq) - 7, 7):
        t0 = time.perf_counter()
        x0, x1 = follow(grays[a:a + 8], N)
        E, inl = cv2.findEssentialMat(x0, x1, K, method=cv2.USAC_MAGSAC, prob=0.999, threshold=1.0)
        _, R, t, m = cv2.recoverPose(E, x0, x1, K, mask=inl)
        ms.append(1000 * (time.perf_counter() - t0))
        if (m.ravel() > 0).sum() < 30: continue
        d = -R.T @ t.ravel(); rel = np.linalg.inv(gt[a]) @ gt[a + 7]; g = rel[:3, 3] / np.linalg.norm(rel[:3, 3])
        errs.append(float(np.degrees(np.arccos(np.clip(d @ g / np.linalg.norm(d), -1, 1)))))
    e = np.array(errs)
    print(N, HALF, f"used {len(e)}/11 median {np.median(e):.1f} max {e.max():.1f} ms median {np.median(ms):.1f}")
