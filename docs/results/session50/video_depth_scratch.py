"""Scratch: the shipped model's relative depth on the unlabelled videos, scored at the points whose
depth the video's own parallax gives (training/data/sfm_depth.py, guessed K): each video written as an
evaluation bag whose ground-truth depth is those points (NaN elsewhere, one unknown scale a frame),
then `fourds-ros eval BAG --offline`; only the median-scaled depth (and the constant's) means anything."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from fourds_ros.evaluation.bag import write_bag
from fourds_ros.evaluation.datasets import iter_mp4
from training.data.sfm_depth import video_labels
from training.data.video import find_sources

out = Path(sys.argv[1])
rows = []
for src in find_sources(sys.argv[2:]):
    frames = list(iter_mp4(src))
    images = np.stack([f.image for f in frames])
    labels = video_labels(images, range(len(frames)))
    if len(labels) < 3:
        print(f"{src.name}: {len(labels)} labelled frames, skipped", flush=True)
        continue
    h, w = images.shape[1:3]
    for j, (uv, depth) in labels.items():
        gt = np.full((h, w), np.nan, np.float32)
        col, row = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        gt[row[inside], col[inside]] = depth[inside]
        frames[j].gt_depth = gt
    bag = out / "bags" / src.stem
    write_bag(frames, bag)
    rep = out / "reports" / src.stem
    subprocess.run(["fourds-ros", "eval", str(bag), "--offline", "--out", str(rep)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = json.loads((rep / "report.json").read_text())
    row = {"video": src.name, "labelled_frames": len(labels), "frames": len(frames),
           "depth_abs_rel": report["depth"]["abs_rel"], "depth_frames": report["depth"]["frames"],
           "constant_abs_rel": report["peers"]["constant_depth"]["depth"]["abs_rel"]}
    rows.append(row)
    print(row, flush=True)
(out / "rows.json").write_text(json.dumps(rows, indent=1))
