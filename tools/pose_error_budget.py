"""Where a recording's ATE comes from: the model's clip motions re-chained with parts of them replaced
by the ground truth.

    .venv/bin/python tools/pose_error_budget.py BAG [--model M] [--backend B] [--starts 6] [--param k=v ...] \
        --out docs/results/pose_error_budget

BAG: a labelled bag (`fourds-ros bag convert`). The shipped pipeline (PerceptionPipeline, offline,
the node's settings) runs on the bag from each of its first `--starts` frames, as
`fourds-ros eval --pose-starts` does. Every clip motion it hands to the odometry chain
(T_first_from_t after the pose solver, fusion and smoothing) is kept, and the chain is rebuilt
with each clip's motion:
  estimate                   as the node published it (the check: equals the eval's ATE);
  ground-truth rotation      rotations from the ground truth, translations the model's;
  ground-truth translation   translations from the ground truth, rotations the model's;
  ground-truth direction     the ground truth's translation direction, the model's magnitude;
  ground-truth size          the ground truth's translation magnitude, the model's direction.
ATE (Sim(3)-aligned, fourds_ros.evaluation.metrics.pose_errors) is averaged over the starts.
The engine is the node's (pipeline.model_engine; --backend and --param as `fourds-ros eval`: ONNX Runtime on
a CPU; the budgets of sessions 19-58 ran torch). What
a replacement takes off the ATE is what that part of the motion costs. It also checks the variances
the chain publishes as covariances (robot_localization weighs the odometry by them) against the
clips' true errors: `nees`. Writes budget.json and budget.md to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from fourds_ros.evaluation.bag import CAMERA_FRAME, check_scorable, read_bag
from fourds_ros.evaluation.eval_cli import command_params, resolve_model
from fourds_ros.evaluation.metrics import pose_errors
from fourds_ros.perception.odometry import OdometryChain
from fourds_ros.perception.settings import PerceptionSettings, add_param_argument
from fourds_ros.rgbd import relative_poses

VARIANTS = ("estimate", "ground-truth rotation", "ground-truth translation", "ground-truth direction",
            "ground-truth size")


def record_clips(bag, engine, settings: PerceptionSettings, start: int) -> list[tuple]:
    """The pipeline on bag.stamps[start:]: every OdometryChain.add_clip call's arguments, in order."""
    from fourds_ros.perception import PerceptionPipeline

    pipeline = PerceptionPipeline(engine, settings)
    calls = []
    add_clip = pipeline.odometry.add_clip

    def recording(indices, stamps_ns, rotation, translation, log_variance, output_t, **options):
        # options (measured: the frames a clip measured) only matter on blind frames, which the
        # budget's recordings do not have: the replays chain what the clips measured
        calls.append((list(indices), list(stamps_ns), np.array(rotation), np.array(translation),
                      np.array(log_variance), list(output_t)))
        return add_clip(indices, stamps_ns, rotation, translation, log_variance, output_t, **options)

    pipeline.odometry.add_clip = recording
    for stamp in bag.stamps[start:]:
        pipeline.push(bag.images[stamp], stamp, CAMERA_FRAME, bag.intrinsics(stamp))
    clip = pipeline.flush()
    if clip is not None:
        pipeline.process(clip)
    return calls


def ground_truth_motion(gt_pose: dict, stamps_ns: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """T_first_from_t of the ground truth (world_from_camera poses) -> rotation (T,3,3), translation
    (T,3): the pose head's training targets (fourds_ros.rgbd.relative_poses)."""
    return relative_poses(np.stack([gt_pose[s] for s in stamps_ns]))


def replace(variant: str, rotation: np.ndarray, translation: np.ndarray, gt_rotation: np.ndarray,
            gt_translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One clip's motion with the part `variant` names taken from the ground truth."""
    if variant == "ground-truth rotation":
        return gt_rotation, translation
    if variant == "ground-truth translation":
        return rotation, gt_translation
    if variant in ("ground-truth direction", "ground-truth size"):
        size = np.linalg.norm(translation, axis=1, keepdims=True)
        gt_size = np.linalg.norm(gt_translation, axis=1, keepdims=True)
        if variant == "ground-truth direction":
            return rotation, gt_translation / np.maximum(gt_size, 1e-12) * size
        return rotation, translation / np.maximum(size, 1e-12) * gt_size
    return rotation, translation


def chained_ate(calls: list[tuple], gt_pose: dict, variant: str) -> float | None:
    """The ATE of the chain rebuilt from `calls` with `variant`'s replacement (None: not scorable)."""
    chain, poses = OdometryChain(), {}
    for indices, stamps_ns, rotation, translation, log_variance, output_t in calls:
        if variant != "estimate":
            if not all(s in gt_pose for s in stamps_ns):
                return None
            rotation, translation = replace(variant, rotation, translation,
                                            *ground_truth_motion(gt_pose, stamps_ns))
        for t, estimate in zip(output_t, chain.add_clip(indices, stamps_ns, rotation, translation,
                                                        log_variance, output_t)):
            poses[stamps_ns[t]] = estimate.odom_from_camera
    used = [s for s in sorted(poses) if s in gt_pose]
    if len(used) < 3:
        return None
    return pose_errors(used, [poses[s] for s in used], [gt_pose[s] for s in used]).get("ate_rmse")


# 95 % of a chi-square with 3 degrees of freedom: a right variance puts 95 % of the NEES below it.
CHI2_3DOF_95 = 7.815


def nees(calls: list[tuple], gt_pose: dict, chain: OdometryChain | None = None) -> dict | None:
    """How honest the variances the odometry chain publishes are. Per clip, its last frame's
    motion error squared over its variance as `chain` publishes it (OdometryChain.published_variances;
    default: a chain without floors or factors): the normalised
    estimation error squared (NEES), chi-square with 3 degrees of freedom (mean 3, 95 % below
    CHI2_3DOF_95) when the variance is right. Rotation: the angle of R_true^T R_est (rad).
    Translation: after one scale for the whole recording, the median of true over estimated clip
    lengths (monocular metres are off by a factor, which Sim(3) alignment removes too), with the
    variance scaled alike; `scale` reports that factor. None without a scorable clip."""
    chain = OdometryChain(rotation_var_floor=0.0, translation_var_floor=0.0) if chain is None else chain
    rotation_nees, errors, variances, ratios = [], [], [], []
    for _, stamps_ns, rotation, translation, log_variance, _ in calls:
        if not all(s in gt_pose for s in stamps_ns):
            continue
        gt_rotation, gt_translation = ground_truth_motion(gt_pose, stamps_ns)
        var_r, var_t = chain.published_variances(np.exp(np.clip(log_variance[-1], -30, 10)))
        angle = cv2.Rodrigues(gt_rotation[-1].T @ rotation[-1])[0].ravel()
        rotation_nees.append(float(angle @ angle) / var_r)
        errors.append((translation[-1], gt_translation[-1]))
        variances.append(var_t)
        size = np.linalg.norm(translation[-1])
        if size > 0:
            ratios.append(np.linalg.norm(gt_translation[-1]) / size)
    if not rotation_nees:
        return None
    scale = float(np.median(ratios)) if ratios else 1.0
    translation_nees = [float(np.sum((scale * est - gt) ** 2)) / (scale ** 2 * var)
                        for (est, gt), var in zip(errors, variances)]

    def summary(values: list[float]) -> dict:
        values = np.asarray(values)
        return {"mean": float(values.mean()), "median": float(np.median(values)),
                "within_95": float(np.mean(values <= CHI2_3DOF_95))}

    return {"clips": len(rotation_nees), "rotation": summary(rotation_nees),
            "translation": summary(translation_nees), "scale": scale}


def budget(bag, engine, settings: PerceptionSettings, starts: int) -> dict:
    per_start = {v: [] for v in VARIANTS}
    every_call = []
    for start in range(min(starts, max(1, len(bag.stamps) - 2))):
        calls = record_clips(bag, engine, settings, start)
        every_call += calls
        for variant in VARIANTS:
            per_start[variant].append(chained_ate(calls, bag.gt_pose, variant))
    mean = {v: float(np.mean([a for a in ates if a is not None])) if any(a is not None for a in ates) else None
            for v, ates in per_start.items()}
    return {"starts": len(per_start["estimate"]), "ate_mean": mean, "ate_per_start": per_start,
            "nees": nees(every_call, bag.gt_pose, OdometryChain.from_settings(settings.pose))}


def markdown(result: dict, bag_path: str, model: str) -> str:
    base = result["ate_mean"]["estimate"]
    lines = [f"# Pose error budget: `{Path(bag_path).name}`", "",
             f"Model `{model}`, offline, the node's settings{result['params_note']}; ATE (m, Sim(3)-aligned) "
             f"averaged over {result['starts']} start frames.", "",
             "| clip motions | ATE m | share of the estimate's |", "| --- | --- | --- |"]
    for variant in VARIANTS:
        ate = result["ate_mean"][variant]
        share = f"{ate / base:.2f}" if ate is not None and base else "n/a"
        lines.append(f"| {variant} | {'n/a' if ate is None else f'{ate:.4f}'} | {share} |")
    consistency = result.get("nees")
    if consistency:
        lines += ["", f"Variances against errors over {consistency['clips']} clips (NEES, 3 degrees of freedom: "
                  f"mean 3 and 95 % within {CHI2_3DOF_95} when honest; translation after one scale, "
                  f"{consistency['scale']:.3g} true metres per model metre):", "",
                  "| motion | mean NEES | median NEES | clips within the 95 % bound |", "| --- | --- | --- | --- |"]
        for part in ("rotation", "translation"):
            c = consistency[part]
            lines.append(f"| {part} | {c['mean']:.3g} | {c['median']:.3g} | {100 * c['within_95']:.0f} % |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from fourds_ros.perception.pipeline import model_engine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bag")
    parser.add_argument("--model", default=None, help="model folder (default: the shipped default model)")
    parser.add_argument("--backend", default=None, help="default: the node's (backend parameter)")
    parser.add_argument("--starts", type=int, default=6)
    parser.add_argument("--out", required=True)
    add_param_argument(parser)
    args = parser.parse_args(argv)
    params = command_params(parser, args)
    bag = check_scorable(read_bag(args.bag))
    if not bag.gt_pose:
        parser.error(f"{args.bag} has no ground-truth poses")
    model = resolve_model(args.model)
    if Path(model).is_relative_to(Path.cwd()):  # the reports name the model as the repo does
        model = str(Path(model).relative_to(Path.cwd()))
    settings = PerceptionSettings.from_params(params)
    result = budget(bag, model_engine(settings, model, args.backend), settings, args.starts)
    result["params_note"] = "".join(f", {k}={v}" for k, v in params.items())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "budget.json").write_text(json.dumps({"bag": str(args.bag), "model": str(model), "params": params,
                                                 "variants": list(VARIANTS), **result}, indent=1))
    (out / "budget.md").write_text(markdown(result, args.bag, str(model)))
    print((out / "budget.md").read_text())
    return 0


if __name__ == "__main__":
    from fourds_ros.script_errors import run_script

    sys.exit(run_script(main, "pose_error_budget.py"))
