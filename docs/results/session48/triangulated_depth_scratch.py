"""Exploration (session 48): does depth triangulated from the clip's own parallax reshape the model's
depth? For each output frame t, corners on frame t are followed by LK (forward-backward checked) to a
partner frame K frames away (t-K, else t+K), triangulated with the relative pose (GT or the model's
odometry), and the model's depth at t is corrected by the triangulated / model ratio field (median-
normalised, smoothed); scored median-scaled against the ground truth like `eval` (AbsRel).

Usage: python triangulated_depth_scratch.py BAG [K] [SIGMA_PX]"""
import sys

import cv2
import numpy as np

from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.metrics import depth_errors, resize_depth
from fourds_ros.evaluation.offline import run_offline

bag_path = sys.argv[1]
K_STEP = int(sys.argv[2]) if len(sys.argv) > 2 else 7
SIGMA = float(sys.argv[3]) if len(sys.argv) > 3 else 40.0
CLIP = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
model_at_pts = []

bag = read_bag(bag_path)
preds = run_offline(bag, "models/fourds_default", backend="onnxruntime")
stamps = bag.stamps
gray = {s: cv2.cvtColor(bag.images[s], cv2.COLOR_RGB2GRAY) for s in stamps}


def follow(a, b):
    p0 = cv2.goodFeaturesToTrack(gray[a], 400, 0.01, 8)
    if p0 is None:
        return None, None
    lk = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    p1, st, _ = cv2.calcOpticalFlowPyrLK(gray[a], gray[b], p0, None, **lk)
    p0r, st2, _ = cv2.calcOpticalFlowPyrLK(gray[b], gray[a], p1, None, **lk)
    ok = (st[:, 0] == 1) & (st2[:, 0] == 1) & (np.linalg.norm(p0r - p0, axis=2)[:, 0] < 0.5)
    return p0[ok, 0], p1[ok, 0]


def triangulate(K, T_ab, pa, pb):
    """T_ab: camera a from camera b (4x4). Depths in camera a of points pa <-> pb; parallax (deg)."""
    P_a = K @ np.eye(3, 4)
    T_ba = np.linalg.inv(T_ab)
    P_b = K @ T_ba[:3]
    X = cv2.triangulatePoints(P_a, P_b, pa.T.astype(float), pb.T.astype(float))
    X = X[:3] / X[3]
    ra = X.T
    rb = ra - T_ab[:3, 3]
    cosang = np.sum(ra * rb, 1) / (np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1) + 1e-12)
    return X[2], np.degrees(np.arccos(np.clip(cosang, -1, 1)))


def smooth_ratio(shape, uv, logr, sigma):
    num = np.zeros(shape, np.float32)
    den = np.zeros(shape, np.float32)
    x = np.clip(np.round(uv[:, 0]).astype(int), 0, shape[1] - 1)
    y = np.clip(np.round(uv[:, 1]).astype(int), 0, shape[0] - 1)
    np.add.at(num, (y, x), logr)
    np.add.at(den, (y, x), 1.0)
    num = cv2.GaussianBlur(num, (0, 0), sigma)
    den = cv2.GaussianBlur(den, (0, 0), sigma)
    return np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0), den


rows = {"model": [], "gt_pose": [], "own_pose": [], "sparse_ok_frac": []}
tri_err = {"gt_pose": [], "own_pose": []}
idx = {s: i for i, s in enumerate(stamps)}
for s in sorted(set(preds.depth) & set(bag.gt_depth)):
    i = idx[s]
    j = i - K_STEP if i - K_STEP >= 0 else i + K_STEP
    if j >= len(stamps):
        continue
    sj = stamps[j]
    K = bag.intrinsics(s)
    gt = bag.gt_depth[s]
    pred = resize_depth(preds.depth[s], gt.shape, preds.depth_K.get(s), K if s in preds.depth_K else None)
    base = depth_errors(pred, gt, median_scale=True)
    if base is None:
        continue
    rows["model"].append(base["abs_rel"])
    pa, pb = follow(s, sj)
    for name, poses in (("gt_pose", bag.gt_pose), ("own_pose", preds.poses)):
        if pa is None or len(pa) < 20 or s not in poses or sj not in poses:
            rows[name].append(base["abs_rel"])
            continue
        T_ab = np.linalg.inv(poses[s]) @ poses[sj]
        z, par = triangulate(K, T_ab, pa, pb)
        x = np.clip(np.round(pa[:, 0]).astype(int), 0, gt.shape[1] - 1)
        y = np.clip(np.round(pa[:, 1]).astype(int), 0, gt.shape[0] - 1)
        zm = pred[y, x]
        good = (z > 0) & (par > 0.3) & np.isfinite(zm) & (zm > 0)
        if good.sum() < 20:
            rows[name].append(base["abs_rel"])
            continue
        g = gt[y[good], x[good]]
        gv = np.isfinite(g) & (g > 0)
        if gv.sum() > 5:
            zz = z[good][gv] * np.median(g[gv] / z[good][gv])
            tri_err[name].append(float(np.median(np.abs(zz - g[gv]) / g[gv])))
        logr = np.log(z[good] / zm[good])
        logr -= np.median(logr)
        logr = np.clip(logr, -CLIP, CLIP)
        if gv.sum() > 5 and name == "gt_pose":
            zmm = zm[good][gv] * np.median(g[gv] / zm[good][gv])
            model_at_pts.append(float(np.median(np.abs(zmm - g[gv]) / g[gv])))
        field, den = smooth_ratio(gt.shape, pa[good], logr, SIGMA)
        corrected = pred * np.exp(field)
        e = depth_errors(corrected, gt, median_scale=True)
        rows[name].append(e["abs_rel"] if e else base["abs_rel"])
        if name == "own_pose":
            rows["sparse_ok_frac"].append(float(good.mean()))
print(f"{bag_path} K={K_STEP} sigma={SIGMA}: frames {len(rows['model'])}")
for k, v in rows.items():
    print(f"  {k}: {np.mean(v):.4f}")
print(f"  model at the points (median AbsRel): {np.mean(model_at_pts):.4f}")
for k, v in tri_err.items():
    print(f"  triangulated points' median AbsRel ({k}): {np.mean(v):.4f} over {len(v)} frames")
