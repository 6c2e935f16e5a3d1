"""Scratch: what scoring relative depth at triangulated points says, on a recording with a depth camera.
The same frames scored three ways through `fourds-ros eval --offline`: the depth camera everywhere (as the
suite scores it), the depth camera at the triangulated points only, and the triangulated depths at those
points (what an unlabelled video gets). `python points_calibration_scratch.py BAG OUT` (BAG: `fourds-ros bag
convert` of a labelled recording)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from fourds_ros.evaluation.bag import write_bag
from fourds_ros.evaluation.datasets import iter_bag
from training.data.sfm_depth import video_labels

bag, out = Path(sys.argv[1]), Path(sys.argv[2])
frames = list(iter_bag(bag))
images = np.stack([f.image for f in frames])
labels = video_labels(images, range(len(frames)))
h, w = images.shape[1:3]
ways = {"camera": [], "camera_at_points": [], "triangulated_at_points": []}
for i, f in enumerate(frames):
    truth = f.gt_depth
    ways["camera"].append(truth)
    if i not in labels or truth is None:
        ways["camera_at_points"].append(None)
        ways["triangulated_at_points"].append(None)
        continue
    uv, depth = labels[i]
    col, row = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    at, tri = np.full((h, w), np.nan, np.float32), np.full((h, w), np.nan, np.float32)
    at[row[inside], col[inside]] = truth[row[inside], col[inside]]
    tri[row[inside], col[inside]] = depth[inside]
    ways["camera_at_points"].append(at)
    ways["triangulated_at_points"].append(tri)
rows = {"labelled_frames": len(labels), "frames": len(frames)}
for name, depths in ways.items():
    for f, d in zip(frames, depths):
        f.gt_depth = d
    b, rep = out / "bags" / name, out / "reports" / name
    write_bag(frames, b)
    subprocess.run(["fourds-ros", "eval", str(b), "--offline", "--out", str(rep)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = json.loads((rep / "report.json").read_text())
    rows[name] = {"depth_abs_rel": r["depth"]["abs_rel"], "frames": r["depth"]["frames"],
                  "constant_abs_rel": r["peers"]["constant_depth"]["depth"]["abs_rel"]}
    print(name, rows[name], flush=True)
print(json.dumps(rows))
