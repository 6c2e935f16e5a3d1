"""Measure 7-Scenes' RGB camera against its own ground truth (fourds_ros.rgbd's SEVEN_SCENES_* constants).

    .venv/bin/python tools/fit_seven_scenes_rgb.py [../shared/data/7scenes_redkitchen_f000-299] \
        --out docs/results/seven_scenes_rgb

7-Scenes ships one K (camera-intrinsics.txt, fx = fy = 585) and depth in the depth camera's own
view. Two curves say what the RGB camera is:
  1. epipolar error (median Sampson distance, px) of LK correspondences between frames i and i+gap
     under the ground-truth motion, over the RGB focal length (the poses are the depth camera's; a
     rigidly mounted RGB camera turns the same way, and its 2.5 cm offset is negligible next to
     camera paths of decimetres);
  2. correlation of registered depth edges with RGB edges, over the focal length and the baseline.
A control: the same epipolar curve on the HoloLens sample, whose K is right, must be least at its K.
Writes results.json and README.md (tables) to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from fourds_ros.evaluation.camera_fit import edge_correlation, epipolar_error, lk_correspondences, relative_motion
from fourds_ros.rgbd import (DepthCamera, read_7scenes, read_depth, read_hololens, register_depth,
                             seven_scenes_depth_intrinsics)

ROOT = Path(__file__).resolve().parents[1]


def pairs_of(grays: list[np.ndarray], poses: np.ndarray, gap: int, step: int, min_baseline_m: float = 0.02):
    """(p, q, R, t) for frames (i, i + gap), every step frames, that moved at least min_baseline_m."""
    pairs = []
    for i in range(0, len(grays) - gap, step):
        r, t = relative_motion(poses[i], poses[i + gap])
        if np.linalg.norm(t) >= min_baseline_m:
            p, q = lk_correspondences(grays[i], grays[i + gap])
            pairs.append((p, q, r, t))
    return pairs


def with_focal(k: np.ndarray, focal: float) -> np.ndarray:
    k = np.array(k, float)
    k[0, 0] = k[1, 1] = focal
    return k


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seven_scenes", nargs="?", default=str(ROOT.parent / "shared/data/7scenes_redkitchen_f000-299"))
    parser.add_argument("--hololens", default=str(ROOT / "samples/hololens_000"))
    parser.add_argument("--out", default=str(ROOT / "docs/results/seven_scenes_rgb"))
    args = parser.parse_args()
    root = Path(args.seven_scenes)
    seq = read_7scenes(root)  # its file lists; the depth images and poses are read raw, as shipped
    grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in seq.rgb_paths]
    poses = np.stack([np.loadtxt(p.with_name(p.name.replace(".color.jpg", ".pose.txt"))) for p in seq.rgb_paths])
    k_depth = seven_scenes_depth_intrinsics(root)
    focals = [float(f) for f in range(500, 601, 5)]

    result: dict = {"recording": root.name, "depth_camera_focal_px": float(k_depth[0, 0]), "epipolar": {}}
    for gap in (5, 8):
        pairs = pairs_of(grays, poses, gap, 3)
        curve = {f: epipolar_error(pairs, with_focal(k_depth, f)) for f in focals}
        result["epipolar"][f"gap_{gap}"] = {"pairs": len(pairs), "median_sampson_px": curve,
                                            "best_focal_px": min(curve, key=curve.get)}

    frames = list(range(0, len(seq), 40))
    depths = [read_depth(seq.depth_paths[i], seq.depth_scale) for i in frames]
    edges = {}
    for focal in (500.0, 520.0, 525.0, 530.0, 535.0, 540.0, 560.0, 585.0):
        for baseline in (0.0, -0.015, -0.025, -0.035):
            camera = DepthCamera(k_depth, (baseline, 0.0, 0.0))
            scores = []
            for i, d in zip(frames, depths):
                registered = register_depth(d, camera, with_focal(k_depth, focal))
                scores.append(edge_correlation(grays[i], registered))
            edges[f"{focal:.0f}/{baseline:+.3f}"] = float(np.mean(scores))
    best = max(edges, key=edges.get)
    result["edge_alignment"] = {"frames": frames, "correlation_by_focal_px/baseline_m": edges, "best": best,
                                "unregistered_585": float(np.mean([edge_correlation(grays[i], d) for i, d in zip(frames, depths)]))}

    holo = read_hololens(args.hololens)
    holo_grays = [cv2.cvtColor(holo.rgb(i), cv2.COLOR_RGB2GRAY) for i in range(len(holo))]
    holo_pairs = pairs_of(holo_grays, holo.camera_to_world, 2, 1)
    f_holo = float(holo.intrinsics[0, 0])
    control = {round(s * f_holo, 1): epipolar_error(holo_pairs, with_focal(holo.intrinsics, s * f_holo))
               for s in np.arange(0.85, 1.151, 0.025)}
    result["control_hololens"] = {"focal_px": f_holo, "pairs": len(holo_pairs), "median_sampson_px": control,
                                  "best_focal_px": min(control, key=control.get)}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    table = report(result)
    (out / "README.md").write_text(table)
    print(table)
    return 0


def report(r: dict) -> str:
    lines = ["# 7-Scenes: the RGB camera measured against the ground truth", "",
             "Written by `.venv/bin/python tools/fit_seven_scenes_rgb.py` (see its docstring); "
             f"recording `{r['recording']}`, whose camera-intrinsics.txt gives {r['depth_camera_focal_px']:.0f} px.", "",
             "Epipolar error (median Sampson distance, px) of LK correspondences under the ground-truth motion:", "",
             "| RGB focal px | " + " | ".join(f"gap {k.split('_')[1]} ({v['pairs']} pairs)" for k, v in r["epipolar"].items()) + " |",
             "| --- |" + " --- |" * len(r["epipolar"])]
    focals = list(next(iter(r["epipolar"].values()))["median_sampson_px"])
    lines += [f"| {float(f):.0f} | " + " | ".join(f"{v['median_sampson_px'][f]:.3f}" for v in r["epipolar"].values()) + " |"
              for f in focals]
    lines += ["", "Least at: " + ", ".join(f"gap {k.split('_')[1]}: {v['best_focal_px']:.0f} px" for k, v in r["epipolar"].items()) + ".",
              "", "Registered depth edges against RGB edges (mean correlation over frames "
              f"{r['edge_alignment']['frames']}); unregistered depth: {r['edge_alignment']['unregistered_585']:.3f}:", "",
              "| RGB focal px / t_x (m) of X_rgb = X_depth + t | correlation |", "| --- | --- |"]
    lines += [f"| {k} | {v:.3f} |" for k, v in r["edge_alignment"]["correlation_by_focal_px/baseline_m"].items()]
    c = r["control_hololens"]
    lines += ["", f"Best: {r['edge_alignment']['best']}.", "",
              f"Control: the HoloLens sample (K.txt {c['focal_px']:.1f} px, {c['pairs']} pairs), epipolar error least at "
              f"{c['best_focal_px']:.1f} px.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    from fourds_ros.script_errors import run_script

    sys.exit(run_script(main, "fit_seven_scenes_rgb.py"))
