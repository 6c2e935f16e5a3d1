"""Exploration (session 38): for each clip's first-last essential matrix, how decisive the
cheirality test is: points in front of both cameras (within 50 baselines) for each of the four
decompositions of E, the chosen one against the best other with the opposite translation sign,
beside the direction's error against the ground truth. Usage: cheirality_scratch.py BAG OUT.json STARTS [--param k=v ...]"""
import json
import sys

import cv2
import numpy as np

sys.path.insert(0, "/work/main/tools")
sys.path.insert(0, "/work/main")
import pose_error_budget as peb  # noqa: E402
from fourds_ros.engine import create_engine  # noqa: E402
from fourds_ros.evaluation.bag import read_bag  # noqa: E402
from fourds_ros.evaluation.eval_cli import resolve_model  # noqa: E402
from fourds_ros.perception import epipolar, pipeline as pl  # noqa: E402
from fourds_ros.perception.settings import PerceptionSettings  # noqa: E402

bag_path, out, starts = sys.argv[1], sys.argv[2], int(sys.argv[3])
params = {k: __import__("yaml").safe_load(v) for k, v in (a.split("=", 1) for a in sys.argv[5::2])}
settings = PerceptionSettings.from_params(params) if params else PerceptionSettings()
bag = read_bag(bag_path)
engine = create_engine(resolve_model(None), backend="torch")
rows, calls = [], []
orig_em = pl.essential_motion


def in_front(r, t, x0, x1, k):
    p0 = k @ np.c_[np.eye(3), np.zeros(3)]
    p1 = k @ np.c_[r, t.reshape(3, 1)]
    h = cv2.triangulatePoints(p0, p1, x0.T.astype(np.float64), x1.T.astype(np.float64))
    x = h[:3] / h[3]
    z0 = x[2]
    z1 = (r @ x + t.reshape(3, 1))[2]
    return int(((z0 > 0) & (z1 > 0) & (z0 < 50) & (np.abs(h[3]) > 1e-12)).sum())


def em(x0, x1, k, expected_rotation=None):
    m = orig_em(x0, x1, k, expected_rotation)
    info = None
    if m is not None:
        e, inl = cv2.findEssentialMat(x0, x1, np.asarray(k, np.float64), method=cv2.USAC_MAGSAC, prob=0.999,
                                      threshold=epipolar.RANSAC_PX)
        used = inl.ravel() > 0
        r1, r2, t = cv2.decomposeEssentialMat(e)
        counts = {f"{i}{s}": in_front(r, s_ * t.ravel(), x0[used], x1[used], np.asarray(k, np.float64))
                  for i, r in ((1, r1), (2, r2)) for s, s_ in (("+", 1), ("-", -1))}
        centre_plus = [(-r.T @ t.ravel()) for r in (r1, r2)]
        kk = np.asarray(k, np.float64)
        b0 = (np.linalg.inv(kk) @ np.c_[x0[used], np.ones(used.sum())].T).T
        b1 = (np.linalg.inv(kk) @ np.c_[x1[used], np.ones(used.sum())].T).T
        b0 /= np.linalg.norm(b0, axis=1, keepdims=True)
        b1 /= np.linalg.norm(b1, axis=1, keepdims=True)
        r_lf = np.asarray(m.rotation).T  # last_from_first
        a = np.cross(b0 @ r_lf.T, b1)
        sv = np.linalg.svd(a, compute_uv=False)
        info = {"sv": sv.tolist(), "counts": counts, "direction": m.direction.tolist(),
                "centres_plus": [c.tolist() for c in centre_plus], "inliers": m.inliers,
                "parallax": m.parallax_px, "turn": m.turn_px}
    calls.append(info)
    return m


pl.essential_motion = em
orig = pl.PerceptionPipeline._epipolar


def angle(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-9 or nb < 1e-9:
        return None
    return float(np.degrees(np.arccos(np.clip(a @ b / na / nb, -1, 1))))


def recording(self, rotation, translation, geo, frames, unseen, images):
    before = self.pose_epipolar_clips
    calls.clear()
    turned = orig(self, rotation, translation, geo, frames, unseen, images)
    stamps = [f.stamp_ns for f in frames]
    if self.pose_epipolar_clips > before and all(s in bag.gt_pose for s in stamps):
        gr, gt = peb.ground_truth_motion(bag.gt_pose, stamps)
        info = calls[0]
        rows.append({**info, "start": start, "before_deg": angle(translation[-1], gt[-1]),
                     "after_deg": angle(turned[-1], gt[-1]), "gt_m": float(np.linalg.norm(gt[-1]))})
    return turned


pl.PerceptionPipeline._epipolar = recording
for start in range(starts):
    peb.record_clips(bag, engine, settings, start)
json.dump(rows, open(out, "w"))
for r in sorted(rows, key=lambda r: -r["after_deg"]):
    sv = r["sv"]
    print(f"after {r['after_deg']:6.1f} sv3/sv2 {sv[2] / sv[1]:.3f} sv2/sqrtN {sv[1] / np.sqrt(r['inliers']) * 1e3:.2f}e-3 par {r['parallax']:.1f} inl {r['inliers']}")
