"""Scratch (session 36): where the rotation misses on the HoloLens walk at every second frame
(fused and geometry: 8 degrees a frame, ORB VO 4.5). Per consecutive pair: the true turn, the error
of the essential matrix's rotation (200 fresh corners, LK, epipolar.essential_motion without the
expected-rotation test, and its own parallax test off), and the error of the shipped pipeline's
frame-to-frame rotation. Run: python docs/results/session36/rotation_diag_scratch.py [STRIDE]"""
import sys

import cv2
import numpy as np

from fourds_ros.engine import create_engine
from fourds_ros.perception import epipolar
from fourds_ros.perception.epipolar import follow_corners
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.perception.track_refine import gray
from fourds_ros.rgbd import read_hololens, read_tum

stride = int(sys.argv[1]) if len(sys.argv) > 1 else 2
which = sys.argv[2] if len(sys.argv) > 2 else "hololens"
seq = (read_hololens("../shared/data/hololens_dvmvs_000_f00305-00334") if which == "hololens"
       else read_tum("../shared/data/tum_fr1_rpy_f000-079"))
idx = list(range(0, len(seq), stride))
rgb = [seq.rgb(i) for i in idx]
gt = [seq.camera_to_world[i] for i in idx]
pipe = PerceptionPipeline(create_engine("models/fourds_default", backend="onnxruntime"), PerceptionSettings())
est = {}
for n, image in enumerate(rgb):
    for r in pipe.push(image, n * 100_000_000, "cam", seq.intrinsics):
        est[r.stamp_ns // 100_000_000] = r.pose.odom_from_camera


def angle(r):
    return float(np.degrees(np.linalg.norm(cv2.Rodrigues(r)[0])))


epipolar.MIN_PARALLAX_PX = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
rows = []
for n in range(1, len(rgb)):
    true = gt[n - 1][:3, :3].T @ gt[n][:3, :3]  # prev_from_this
    x0, x1 = follow_corners([gray(rgb[n - 1]), gray(rgb[n])], 200, stride=1)
    m = epipolar.essential_motion(x0, x1, seq.intrinsics)
    ess = "    -" if m is None else f"{angle(true.T @ m.rotation):5.2f}"
    ours = "    -"
    if n in est and n - 1 in est:
        ours = f"{angle(true.T @ (est[n - 1][:3, :3].T @ est[n][:3, :3])):5.2f}"
    rows.append((angle(true), np.nan if m is None else angle(true.T @ m.rotation), float(ours) if ours.strip() != "-" else np.nan))
    print(f"pair {n - 1:2d}-{n:2d}: true turn {angle(true):5.2f} deg; error essential {ess}, pipeline {ours}; "
          f"corners {len(x0)}")
rows = np.array(rows)
print(f"mean error where the essential measured: essential {np.nanmean(rows[:, 1]):.2f}, pipeline "
      f"{np.nanmean(rows[~np.isnan(rows[:, 1]), 2]):.2f} deg over {int((~np.isnan(rows[:, 1])).sum())} of {len(rows)} pairs; "
      f"pipeline everywhere {np.nanmean(rows[:, 2]):.2f}")
