"""Scratch: how many frames of each unlabelled video get triangulated depth labels (sfm_depth.py,
guessed K), and how many points. Prints one line per video."""
import sys
import time

import cv2
import numpy as np

from training.data.sfm_depth import frame_depth, guessed_intrinsics
from training.data.video import count_frames, find_sources, read_frames

for src in find_sources(sys.argv[1:]):
    t0 = time.time()
    n = count_frames(src)
    frames = read_frames(src, list(range(n)))
    h, w = frames.shape[1:3]
    s = 640 / max(h, w)
    size = (round(w * s), round(h * s))
    gray = np.stack([cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY) for f in frames])
    k = guessed_intrinsics(*size)
    got = [len(frame_depth(gray, j, k)[1]) for j in range(0, n, 4)]
    lab = [g for g in got if g]
    print(f"{src.name}: {n} frames, {len(lab)}/{len(got)} labelled, points {np.mean(lab) if lab else 0:.0f}, {time.time()-t0:.0f} s", flush=True)
