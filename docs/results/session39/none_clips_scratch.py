"""Exploration (session 39): the clips whose epipolar step gave no direction ("none" in
frame_direction_scratch.py), and why: blind frames, the geometry calling the last frame still,
or the first-last essential matrix refused (too few corners lasted, too few inliers, too little
parallax, a rotation that disagrees with the solver's), for the plain and the guided pass.
Usage: none_clips_scratch.py BAG STARTS [FAR]"""
import sys
from collections import Counter

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

bag = read_bag(sys.argv[1])
starts = int(sys.argv[2])
engine = create_engine(resolve_model(None), backend="torch")
reasons, calls, far = Counter(), [], []
FAR = float(sys.argv[3]) if len(sys.argv) > 3 else 1000.0


def why(x0, x1, k, expected=None):
    """essential_motion's checks one by one -> the first that refuses, or 'measured'."""
    if len(x0) < epipolar.MIN_INLIERS:
        return f"corners<{epipolar.MIN_INLIERS}"
    e, inl = cv2.findEssentialMat(x0, x1, k, method=cv2.USAC_MAGSAC, prob=0.999, threshold=epipolar.RANSAC_PX)
    if e is None or e.shape != (3, 3):
        return "ambiguous E"
    _, r, t, mask = cv2.recoverPose(e, x0, x1, k, mask=inl)
    used = mask.ravel() > 0
    if used.sum() < epipolar.MIN_INLIERS:
        # what a farther cheirality distance (FAR baselines instead of recoverPose's 50) would give
        _, r2, t2, m2, _ = cv2.recoverPose(e, x0, x1, k, distanceThresh=FAR, mask=inl.copy())
        u2 = m2.ravel() > 0
        d2 = (k @ r2 @ np.linalg.inv(k) @ np.c_[x0[u2], np.ones(u2.sum())].T).T
        par2 = float(np.median(np.linalg.norm(x1[u2] - d2[:, :2] / d2[:, 2:], axis=1))) if u2.any() else 0.0
        dis2 = np.degrees(np.linalg.norm(cv2.Rodrigues(r2 @ expected)[0])) if expected is not None else 0.0
        c = -r2.T @ t2.ravel()
        far.append((int(u2.sum()), par2, dis2, c / np.linalg.norm(c)))
        return f"inliers {int(used.sum())} of {int(inl.sum())} E inliers of {len(x0)} corners"
    d = (k @ r @ np.linalg.inv(k) @ np.c_[x0[used], np.ones(used.sum())].T).T
    par = float(np.median(np.linalg.norm(x1[used] - d[:, :2] / d[:, 2:], axis=1)))
    if not par >= epipolar.MIN_PARALLAX_PX:
        return f"parallax {par:.2f}px"
    if expected is not None:
        dis = np.degrees(np.linalg.norm(cv2.Rodrigues(r @ expected)[0]))
        if dis > epipolar.MAX_ROTATION_DISAGREEMENT_DEG:
            return f"rotation off {dis:.0f}deg"
    return "measured"


orig_em = pl.essential_motion


def em(x0, x1, k, expected=None):
    calls.append(why(x0, x1, np.asarray(k, np.float64), expected))
    return orig_em(x0, x1, k, expected)


pl.essential_motion = em
orig = pl.PerceptionPipeline._epipolar


def recording(self, rotation, translation, geo, frames, unseen, images):
    before = (self.pose_epipolar_clips, self.pose_epipolar_stepwise)
    calls.clear()
    far.clear()
    out = orig(self, rotation, translation, geo, frames, unseen, images)
    if self.pose_epipolar_clips > before[0] or self.pose_epipolar_stepwise > before[1]:
        return out
    stamps = [f.stamp_ns for f in frames]
    _, gt = peb.ground_truth_motion(bag.gt_pose, stamps) if all(s in bag.gt_pose for s in stamps) else (None, None)
    moved = "?" if gt is None else f"{np.linalg.norm(gt[-1]) * 100:.1f}cm"
    key = "blind" if unseen.any() else "geometry still" if geo.still[-1] else " / ".join(calls)
    reasons[key] += 1
    extra = ""
    if gt is not None and far and np.linalg.norm(gt[-1]) > 0:
        for n, par2, dis2, c in far:
            ang = np.degrees(np.arccos(np.clip(c @ gt[-1] / np.linalg.norm(gt[-1]), -1, 1)))
            solved = np.degrees(np.arccos(np.clip(translation[-1] @ gt[-1] / np.linalg.norm(gt[-1]) / max(np.linalg.norm(translation[-1]), 1e-12), -1, 1)))
            extra += f" | far: {n} inliers, parallax {par2:.1f}px, rot off {dis2:.1f}, dir err {ang:.0f} (solver's {solved:.0f})"
    print(f"start {start} clip at {stamps[0]}: {key}; true motion {moved}{extra}")
    return out


pl.PerceptionPipeline._epipolar = recording
for start in range(starts):
    peb.record_clips(bag, engine, PerceptionSettings(), start)
print(dict(reasons))
