"""How good the triangulated depth labels (training/data/sfm_depth.py) are, on the labelled
recordings: every `--every`-th frame labelled from the recording's frames alone (no depth, no
poses), then each label scored against the depth camera at its pixels after one scale a frame
(median): AbsRel and the share within 10 %, with the recording's own K and with the guessed K
that unlabelled video gets. Writes JSON and prints a table.

    python tools/sfm_depth_quality.py ../shared/data/7scenes_redkitchen_f000-299 \
        ../shared/data/hololens_dvmvs_000_f00305-00334 --out docs/results/session50/sfm_quality.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from fourds_ros.rgbd import read_sequence
from training.data.sfm_depth import SfmSettings, frame_depth, guessed_intrinsics

WIDTH = 640


def recording_frames(root: str) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """-> gray (N, H, W) uint8 at WIDTH px, depth (N of (H, W) metres, same size), K at that size."""
    seq = read_sequence(root)
    gray, depth = [], []
    for i in range(len(seq)):
        rgb, d = seq.rgb(i), seq.depth(i)
        scale = WIDTH / rgb.shape[1]
        size = (WIDTH, round(rgb.shape[0] * scale))
        gray.append(cv2.cvtColor(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY))
        depth.append(cv2.resize(d, size, interpolation=cv2.INTER_NEAREST))
    k = seq.intrinsics.astype(np.float64).copy()
    k[:2] *= scale
    return np.stack(gray), depth, k


def score(uv: np.ndarray, label: np.ndarray, truth: np.ndarray) -> tuple[float, float, int] | None:
    col = np.clip(np.round(uv[:, 0]).astype(int), 0, truth.shape[1] - 1)
    row = np.clip(np.round(uv[:, 1]).astype(int), 0, truth.shape[0] - 1)
    gt = truth[row, col]
    ok = np.isfinite(gt) & (gt > 0)
    if ok.sum() < 5:
        return None
    scaled = label[ok] * np.median(gt[ok] / label[ok])
    rel = np.abs(scaled - gt[ok]) / gt[ok]
    return float(np.mean(rel)), float(np.mean(rel < 0.1)), int(ok.sum())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recordings", nargs="+")
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    rows = []
    for root in args.recordings:
        gray, depth, k_true = recording_frames(root)
        h, w = gray.shape[1:]
        for which, k in (("own K", k_true), ("guessed K", guessed_intrinsics(w, h))):
            scored = [s for j in range(0, len(gray), args.every)
                      if (s := score(*frame_depth(gray, j, k, SfmSettings()), depth[j])) is not None]
            frames = len(range(0, len(gray), args.every))
            row = {"recording": Path(root).name, "intrinsics": which, "frames": frames, "labelled": len(scored),
                   "points_per_frame": float(np.mean([s[2] for s in scored])) if scored else 0.0,
                   "abs_rel": float(np.mean([s[0] for s in scored])) if scored else None,
                   "within_10pct": float(np.mean([s[1] for s in scored])) if scored else None}
            rows.append(row)
            print(row, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"every": args.every, "settings": SfmSettings().__dict__, "rows": rows}, indent=1))
    print("| recording | K | frames labelled | points a frame | AbsRel (median-scaled) | within 10 % |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['recording']} | {r['intrinsics']} | {r['labelled']} / {r['frames']} | {r['points_per_frame']:.0f} | "
              f"{r['abs_rel'] if r['abs_rel'] is None else round(r['abs_rel'], 3)} | "
              f"{r['within_10pct'] if r['within_10pct'] is None else round(r['within_10pct'], 3)} |")
    return 0


if __name__ == "__main__":
    from fourds_ros.script_errors import run_script

    sys.exit(run_script(main, "sfm_depth_quality.py"))
