"""Scratch: ORB VO with relative scale carried between steps (triangulated depths of the points two
steps share), against today's unit steps, on the three labelled recordings."""
import sys
import time

import cv2
import numpy as np

from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.metrics import pose_errors
from fourds_ros.evaluation.peers import _gray, essential_step, orb_vo


def depths_in_first(p0, p1, K, R, t):
    """z of the points triangulated from matches p0 (frame a) and p1 (frame b), in frame a, and in frame b."""
    P0 = K @ np.hstack([np.eye(3), np.zeros((3, 1))])
    P1 = K @ np.hstack([R, t.reshape(3, 1)])
    X = cv2.triangulatePoints(P0, P1, p0.T, p1.T)
    X = X[:3] / X[3]
    za = X[2]
    zb = (R @ X + t.reshape(3, 1))[2]
    return za, zb


def orb_vo_scaled(stamps, images, K_at, n_features=2000, min_matches=15, min_shared=8):
    orb = cv2.ORB_create(nfeatures=n_features)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    pose, prev, poses = np.eye(4), None, {}
    scale = 1.0
    last_depth = None  # {keypoint index in the previous frame: its depth there, in the chain's units}
    for s in stamps:
        gray = _gray(images[s])
        kp, des = orb.detectAndCompute(gray, None)
        K = K_at(s)
        depth_here = None
        if prev is not None and des is not None and prev[1] is not None and prev[2] == gray.shape:
            matches = matcher.match(prev[1], des)
            if len(matches) >= min_matches:
                p0 = np.float64([prev[0][m.queryIdx].pt for m in matches])
                p1 = np.float64([kp[m.trainIdx].pt for m in matches])
                motion = essential_step(p0, p1, K, min_matches // 2)  # the peer's own step
                if motion is not None:
                    R, t, good = motion
                    za, zb = depths_in_first(p0[good], p1[good], K, R, t.ravel())
                    idx0 = np.array([m.queryIdx for m in matches])[good]
                    idx1 = np.array([m.trainIdx for m in matches])[good]
                    ok = (za > 0) & (zb > 0) & np.isfinite(za) & np.isfinite(zb)
                    if last_depth is not None:
                        ratios = [last_depth[i] / z for i, z, o in zip(idx0, za, ok) if o and i in last_depth]
                        if len(ratios) >= min_shared:
                            scale = float(np.median(ratios))
                    depth_here = {int(i): float(z) * scale for i, z, o in zip(idx1, zb, ok) if o}
                    c1_from_c0 = np.eye(4)
                    c1_from_c0[:3, :3], c1_from_c0[:3, 3] = R, t.ravel() * scale
                    pose = pose @ np.linalg.inv(c1_from_c0)
        poses[s] = pose.copy()
        last_depth = depth_here
        prev = (kp, des, gray.shape)
    return poses


for name in sys.argv[1:]:
    bag = read_bag(f"/tmp/s67/bags/{name}")
    stamps = [s for s in bag.stamps if s in bag.gt_pose]
    ref = [bag.gt_pose[s] for s in stamps]
    t0 = time.time()
    unit = orb_vo(bag.stamps, bag.images, bag.intrinsics)
    t1 = time.time()
    scaled = orb_vo_scaled(bag.stamps, bag.images, bag.intrinsics)
    t2 = time.time()
    a = pose_errors(stamps, [unit.poses[s] for s in stamps], ref)
    b = pose_errors(stamps, [scaled[s] for s in stamps], ref)
    print(f"{name}: unit steps ATE {a['ate_rmse']:.4f} ({t1-t0:.1f}s) | relative scale ATE {b['ate_rmse']:.4f} ({t2-t1:.1f}s)"
          f" | still {a['ate_still_camera']:.4f}", flush=True)
