#!/usr/bin/env python3
"""Pose from geometry, measured offline: the pose head, the geometry pose and their fusion against
ground truth and ORB VO, per recording, in one run (issue 17, item 4).

    .venv/bin/python tools/eval_pose_geometry.py --max-frames 80 --out docs/results/pose_geometry

The unchanged PerceptionPipeline runs once per mode on the same frames. Its engine is wrapped:
the wrapper runs the real engine (once per clip; the outputs are cached across modes, they do not
depend on the mode) and replaces pose_rotation / pose_translation / pose_log_variance by
pose_geometry.clip_pose(outputs, K_model, mode), with K_model the recording's K through the
pipeline's PixelMap. Odometry chaining, ATE (evo, Sim(3)-aligned) and the rotation ratio are the
evaluation package's own. Rows are labelled train or validation by the shipped model's split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fourds_ros.engine import create_engine
from fourds_ros.evaluation.bag import CAMERA_FRAME, BagData
from fourds_ros.evaluation.datasets import iter_7scenes, iter_hololens, iter_tum
from fourds_ros.evaluation.metrics import orthonormal_pose, pose_errors, total_rotation_deg
from fourds_ros.evaluation.peers import orb_vo
from fourds_ros.perception import PerceptionPipeline, PipelineSettings
from fourds_ros.perception.pose_geometry import MODES, clip_pose

DATA = Path("/work/shared/data")
# (name, reader, folder, split of the shipped model models/fourds_default)
RECORDINGS = (
    ("7scenes_redkitchen_f000-299", iter_7scenes, DATA / "7scenes_redkitchen_f000-299", "train"),
    ("hololens_dvmvs_000_f00305-00334", iter_hololens, DATA / "hololens_dvmvs_000_f00305-00334", "train"),
    ("tum_fr1_rpy_f000-079", iter_tum, DATA / "tum_fr1_rpy_f000-079", "validation"),
)
POSE_KEYS = ("ate_rmse", "rotation_ratio", "rpe_rot_deg", "rpe_trans", "sim3_scale")


class PoseSourceEngine:
    """An InferenceEngine stand-in whose pose outputs come from pose_geometry.clip_pose."""

    def __init__(self, engine, mode: str, cache: dict, diagnostics: list):
        self.engine, self.mode, self.cache, self.diagnostics = engine, mode, cache, diagnostics
        self.k_model: np.ndarray | None = None  # set once the pipeline's PixelMap is known
        self.spec, self.backend = engine.spec, engine.backend

    @property
    def config(self):
        return self.engine.config

    def __call__(self, inputs: dict) -> dict:
        key = hashlib.sha1(b"".join(np.ascontiguousarray(inputs[n]).tobytes() for n in sorted(inputs))).hexdigest()
        if key not in self.cache:
            self.cache[key] = self.engine(inputs)
        outputs = dict(self.cache[key])
        usable = None
        if "query_points" in inputs:
            # TrackManager pads unused query slots with one fixed point (t 0, image centre).
            h, w = self.config.image_size
            usable = ~np.all(inputs["query_points"][0] == (0, (h - 1) / 2, (w - 1) / 2), axis=1)
        rotation, translation, log_variance, geo = clip_pose(outputs, self.k_model, self.mode, usable)
        outputs["pose_rotation"] = rotation[None].astype(np.float32)
        outputs["pose_translation"] = translation[None].astype(np.float32)
        outputs["pose_log_variance"] = log_variance[None].astype(np.float32)
        if geo is not None:
            self.diagnostics.append({"valid": geo.valid[1:].mean(), "rotation_only": geo.rotation_only[1:].mean(),
                                     "inliers": float(np.median(geo.inliers[1:])),
                                     "points": float(np.median(geo.points[1:])),
                                     "rmse_px": float(np.median(geo.rmse_px[1:][geo.valid[1:]])) if geo.valid[1:].any() else None,
                                     "geo_var": np.median(geo.variance[1:][geo.valid[1:]], axis=0).tolist() if geo.valid[1:].any() else None,
                                     "head_var": np.median(np.exp(self.cache[key]["pose_log_variance"][0, 1:]), axis=0).tolist()})
        return outputs


def load_recording(reader, folder: Path, max_frames: int | None) -> BagData:
    bag = BagData(folder)
    for frame in reader(folder, max_frames=max_frames):
        s = frame.stamp_ns
        bag.stamps.append(s)
        bag.images[s], bag.K[s] = frame.rgb(), np.asarray(frame.K, float)
        if frame.gt_pose is not None:
            bag.gt_pose[s] = np.asarray(frame.gt_pose, float)
    bag.image_hw = next(iter(bag.images.values())).shape[:2]
    return bag


def run_mode(bag: BagData, engine: PoseSourceEngine, hop: int) -> dict[int, np.ndarray]:
    """Every frame through the unchanged pipeline; odom_from_camera per stamp."""
    pipeline = PerceptionPipeline(engine, PipelineSettings(hop=hop))
    engine.k_model = pipeline.preprocess.pixel_map(bag.image_hw).transform_k(bag.K[bag.stamps[0]])
    poses: dict[int, np.ndarray] = {}
    for s in bag.stamps:
        for result in pipeline.push(bag.images[s], s, CAMERA_FRAME, bag.K[s]):
            poses[int(result.stamp_ns)] = np.asarray(result.pose.odom_from_camera, float)
    clip = pipeline.flush()
    if clip is not None:
        for result in pipeline.process(clip).frames:
            poses[int(result.stamp_ns)] = np.asarray(result.pose.odom_from_camera, float)
    return poses


def score(poses: dict[int, np.ndarray], bag: BagData, stride: int) -> dict:
    """pose_errors, plus rotation_ratio_stride: the rotation ratio over every stride-th frame (one
    clip hop), which frame-to-frame jitter inflates far less than the per-frame ratio."""
    stamps = sorted(set(poses) & set(bag.gt_pose))
    out = pose_errors(stamps, [poses[s] for s in stamps], [bag.gt_pose[s] for s in stamps])
    sparse = stamps[::stride]
    turned = total_rotation_deg([orthonormal_pose(bag.gt_pose[s]) for s in sparse])  # evo wants exact SO(3)
    ratio = total_rotation_deg([orthonormal_pose(poses[s]) for s in sparse]) / turned if turned > 0 else None
    return {k: out.get(k) for k in POSE_KEYS} | {"rotation_ratio_stride": ratio, "frames": len(stamps)}


def summarise(diagnostics: list) -> dict:
    if not diagnostics:
        return {}
    keys = ("valid", "rotation_only", "inliers", "points", "rmse_px")
    out = {k: float(np.mean([d[k] for d in diagnostics if d[k] is not None])) for k in keys}
    for k in ("geo_var", "head_var"):  # median (rotation rad^2, translation m^2) over clips
        values = [d[k] for d in diagnostics if d[k] is not None]
        out[k] = np.median(values, axis=0).tolist() if values else None
    return out | {"clips": len(diagnostics)}


def evaluate_recording(name, reader, folder, split, engine, max_frames, hop) -> dict:
    t0 = time.perf_counter()
    bag = load_recording(reader, folder, max_frames)
    cache: dict = {}
    row = {"recording": name, "split": split, "frames": len(bag.stamps)}
    stride = hop or engine.config.num_frames - 1
    for mode in MODES:
        diagnostics: list = []
        wrapped = PoseSourceEngine(engine, mode, cache, diagnostics)
        row[mode] = score(run_mode(bag, wrapped, hop), bag, stride)
        if mode == "geometry":
            row["geometry_diagnostics"] = summarise(diagnostics)
    vo = orb_vo(bag.stamps, bag.images, bag.K[bag.stamps[0]])
    row["orb_vo"] = score(vo.poses, bag, stride)
    row["wall_s"] = time.perf_counter() - t0
    return row


def fmt(x, digits=3):
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(report: dict) -> str:
    lines = ["# Pose from geometry: head vs geometry vs fused (offline, same run)", "",
             f"Model `{report['model']}`, backend {report['backend']}, commit {report['commit']}, "
             f"max frames {report['max_frames']}, hop {report['hop'] or 'default'}. ATE: evo RMSE after Sim(3) "
             "alignment (m); rotation ratio: how far the estimate turns over how far the camera turned, summed "
             "frame to frame (in brackets: summed over one clip hop, which per-frame jitter inflates far less); "
             "x ORB: ATE over ORB VO's ATE in the same run (target <= 0.9 on validation scenes).", "",
             "| recording | split | frames | ORB VO ATE | " + " | ".join(
                 f"{m} ATE | {m} x ORB | {m} rot. ratio (per hop)" for m in MODES) + " |",
             "| --- | --- | --- | --- | " + " | ".join("--- | --- | ---" for _ in MODES) + " |"]
    for r in report["recordings"]:
        orb = r["orb_vo"]["ate_rmse"]
        cells = []
        for m in MODES:
            ate = r[m]["ate_rmse"]
            cells += [fmt(ate), fmt(ate / orb if ate is not None and orb else None, 2),
                      f"{fmt(r[m]['rotation_ratio'], 2)} ({fmt(r[m]['rotation_ratio_stride'], 2)})"]
        lines.append(f"| {r['recording']} | {r['split']} | {r['frames']} | {fmt(orb)} | " + " | ".join(cells) + " |")
    lines += ["", "Geometry solver per clip (means over clips; variances are medians, rotation rad^2 / "
              "translation m^2):", "",
              "| recording | frames solved | rotation-only | tracks with depth | inliers | RMSE px | geo var | head var |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["recordings"]:
        d = r.get("geometry_diagnostics") or {}
        var = lambda v: "–" if not v else f"{v[0]:.1e} / {v[1]:.1e}"  # noqa: E731
        lines.append(f"| {r['recording']} | {fmt(d.get('valid'), 2)} | {fmt(d.get('rotation_only'), 2)} | "
                     f"{fmt(d.get('points'), 1)} | {fmt(d.get('inliers'), 1)} | {fmt(d.get('rmse_px'), 2)} | "
                     f"{var(d.get('geo_var'))} | {var(d.get('head_var'))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/fourds_default")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--hop", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="recording names to run (default: all)")
    parser.add_argument("--out", default="docs/results/pose_geometry")
    parser.add_argument("--commit", help="the code's commit, when run from an exported copy without .git")
    args = parser.parse_args(argv)
    engine = create_engine(args.model, args.backend)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {"model": args.model, "backend": args.backend, "max_frames": args.max_frames, "hop": args.hop,
              "commit": args.commit or commit or "?", "recordings": []}
    for name, reader, folder, split in RECORDINGS:
        if args.only and name not in args.only:
            continue
        report["recordings"].append(evaluate_recording(name, reader, folder, split, engine, args.max_frames, args.hop))
        print(json.dumps(report["recordings"][-1], default=float), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = f"_{args.max_frames}f" if args.max_frames else ""
    (out / f"results{suffix}.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / f"results{suffix}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
