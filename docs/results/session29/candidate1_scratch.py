"""Scratch: each clip's translation direction from the essential matrix (frame 0 -> T-1, N LK corners),
the fused magnitudes kept. python epi_exp.py suite-args..."""
import os, sys, time
import numpy as np, cv2
import fourds_ros.perception.pipeline as pl
from fourds_ros.perception import pose_geometry as pg
from fourds_ros.perception.tracks import ClipImages
from fourds_ros.perception.track_refine import _as_uint8

NC = int(os.environ.get("NC", "300"))
MIN_INL = int(os.environ.get("MIN_INL", "30"))
MIN_PAR = float(os.environ.get("MIN_PAR", "1.0"))
STATS = {"clips": 0, "used": 0, "few": 0, "flat": 0, "ms": []}

def essential_direction(g0, gl, grays, K):
    t0 = time.perf_counter()
    a = _as_uint8(g0)
    p0 = cv2.goodFeaturesToTrack(a, NC, 0.01, 8)
    if p0 is None or len(p0) < MIN_INL:
        return None, "few"
    pts = p0.astype(np.float32); ok = np.ones(len(p0), bool)
    prev = a
    for g in grays[1:]:
        cur = _as_uint8(g)
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, winSize=(21, 21), maxLevel=3)
        ok &= st.ravel() == 1
        pts, prev = nxt, cur
    x0, x1 = p0.reshape(-1, 2)[ok].astype(np.float64), pts.reshape(-1, 2)[ok].astype(np.float64)
    STATS["ms"].append(1000 * (time.perf_counter() - t0))
    if len(x0) < MIN_INL:
        return None, "few"
    E, inl = cv2.findEssentialMat(x0, x1, K, method=cv2.RANSAC, prob=0.999, threshold=1.0)
    if E is None or E.shape != (3, 3):
        return None, "few"
    n, R, t, mask = cv2.recoverPose(E, x0, x1, K, mask=inl)
    m = mask.ravel() > 0
    if m.sum() < MIN_INL:
        return None, "few"
    H = K @ R @ np.linalg.inv(K)
    h0 = (H @ np.c_[x0[m], np.ones(m.sum())].T).T
    h0 = h0[:, :2] / h0[:, 2:]
    parallax = float(np.median(np.linalg.norm(x1[m] - h0, axis=1)))
    if parallax < MIN_PAR:
        return None, "flat"
    d = -R.T @ t.ravel()
    return d / np.linalg.norm(d), "used"

def rotation_between(a, b):
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v = np.cross(a, b); c = float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else -np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx * (1 / (1 + c))

orig_clip_pose = pg.clip_pose
CTX = {}
def clip_pose(*a, **k):
    rotation, translation, logvar, geo = orig_clip_pose(*a, **k)
    frames = CTX.get("frames")
    if frames is None or geo is None:
        return rotation, translation, logvar, geo
    STATS["clips"] += 1
    last = len(frames) - 1
    if geo.still[last] or np.linalg.norm(translation[last]) < 1e-6:
        return rotation, translation, logvar, geo
    images = ClipImages([f.rgb for f in frames], [f.gray for f in frames])
    grays = [images.gray(t) for t in range(len(frames))]
    d, why = essential_direction(grays[0], grays[-1], grays, CTX["K"])
    STATS[why] += 1
    if d is None:
        return rotation, translation, logvar, geo
    Rc = rotation_between(translation[last], d)
    return rotation, (Rc @ translation.T).T, logvar, geo
pl.clip_pose = clip_pose

orig_poses = pl.PerceptionPipeline._poses
def _poses(self, outputs, model_depth, xy, slot_ids, frames, output_t, k_model, unseen, scale):
    CTX["frames"] = frames
    CTX["K"] = np.asarray(self._input_k(frames[0]), float)
    try:
        return orig_poses(self, outputs, model_depth, xy, slot_ids, frames, output_t, k_model, unseen, scale)
    finally:
        CTX.clear()
pl.PerceptionPipeline._poses = _poses

from fourds_ros.evaluation.suite import main
rc = main(sys.argv[1:])
print("EPI", {k: v for k, v in STATS.items() if k != "ms"}, "ms/clip", np.median(STATS["ms"]) if STATS["ms"] else None)
sys.exit(rc)
