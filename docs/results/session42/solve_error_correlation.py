"""Scratch (session 42): the within-clip correlation of the per-frame rotation solves' errors
(before the clip smoothing), against the ground truth. Usage: corr_scratch.py BAG [param=value ...]"""
import sys
import numpy as np
import cv2
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation import offline
from fourds_ros.perception import PerceptionSettings, pose_geometry

records = []
real = pose_geometry.smooth_clip_motion

def spy(rotation, translation, variance, order, stamps_ns=None, *a, **k):
    records.append((np.array(rotation), np.array(translation), np.array(variance), None if stamps_ns is None else np.array(stamps_ns)))
    return real(rotation, translation, variance, order, stamps_ns, *a, **k)

pose_geometry.smooth_clip_motion = spy
bag = read_bag(sys.argv[1])
params = dict(a.split("=") for a in sys.argv[2:])
offline.run_offline(bag, "models/fourds_default", "onnxruntime", PerceptionSettings.from_params(**params) if params else PerceptionSettings())
gt = bag.gt_pose  # stamp -> 4x4 world_from_camera (assumed)
res_rot, lag = [], {}
for rot, tr, var, stamps in records:
    if stamps is None or any(int(s) not in gt for s in stamps):
        continue
    g0 = gt[int(stamps[0])]
    errs = []
    for t in range(1, len(rot)):
        rel = np.linalg.inv(g0) @ gt[int(stamps[t])]
        d = rot[t] @ rel[:3, :3].T
        errs.append(cv2.Rodrigues(d)[0].ravel())
    errs = np.degrees(np.array(errs))  # (T-1, 3)
    res_rot.append(errs)
E = np.stack(res_rot)  # (clips, T-1, 3)
print("clips", len(E), "per-frame error RMS deg", np.sqrt((E ** 2).mean(axis=(0, 2))).round(2))
# error increments (what a frame adds over the previous one) and their correlation across lags
inc = np.diff(np.concatenate([np.zeros((len(E), 1, 3)), E], 1), axis=1)
flat = inc - inc.mean(axis=(0, 1), keepdims=True)
for L in range(1, 4):
    a, b = flat[:, :-L].reshape(-1), flat[:, L:].reshape(-1)
    print(f"lag {L}: corr of error increments {np.corrcoef(a, b)[0, 1]:.2f}")
Ec = E - E.mean(axis=(0, 1), keepdims=True)
for L in range(1, 4):
    a, b = Ec[:, :-L].reshape(-1), Ec[:, L:].reshape(-1)
    print(f"lag {L}: corr of errors {np.corrcoef(a, b)[0, 1]:.2f}")
