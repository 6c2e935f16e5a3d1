"""`fourds-ros calibrate-scale BAG [--check OTHER_BAG] [--model DIR] [--param NAME=VALUE ...]`: a site's
metric_scale_factor from a labelled recording there. No rclpy.

Why: the depth head's metres hold on the rooms it was trained on and drift on others (the
validation desk, TUM fr1/rpy, reads at about 2.4x its depth), while its relative depth holds. A
robot that works in one site can measure that site's factor once: a minute of an RGB-D camera's
recording there (`fourds-ros bag import --depth-topic ...`), then `metric_scale_factor: F` in the
node's parameters. Measured on TUM fr1/rpy (validation; docs/results/session43/calibrate_scale_halves.sh),
cut into two recordings of 40 frames: the first's factor (0.333) took the second's metric AbsRel
from 1.363 to 0.344 (the oracle constant 0.507), where session 30's depth head retrained on the
first half's labels reached 0.52; the second's factor (0.426) took the first's from 1.560 to 0.305
(the constant 0.241: a desk seen from one height, which a constant fits well). The factor is the
scene's, not the camera's: the model's metres are right on the kitchen it was trained on, filmed
by the same kind of Kinect (factor 0.99-1.00), and 0.33-0.43 on the desk.

How: the node's pipeline runs offline on BAG with the model's own metres (factor 1); each frame
with ground-truth depth gives the scale median(true) / median(model) over its valid pixels (the
prediction brought onto the ground truth's grid as the scorer does); the factor is their
geometric median. It also reports how far single frames stray from it (a wide spread means the
site's metres will stay rough) and the bag's metric AbsRel before and after, beside the oracle
constant's: numbers on the recording the factor was fitted on. Its real test is another recording
of the site, `--check OTHER_BAG`, scored the same way with the factor.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

from .bag import BagError
from .eval_cli import NODE_BACKEND, add_backend_argument, command_params


def _run(bag_path, model_dir, backend: str, params: dict | None):
    """The labelled bag and the pipeline's predictions on it in the model's own metres (factor 1)."""
    from ..perception import PerceptionSettings
    from .bag import read_scored_bag
    from .eval_cli import resolve_model
    from .offline import run_offline

    settings = PerceptionSettings.from_params(**{**(params or {}), "metric_scale_source": "model",
                                                 "metric_scale_factor": 1.0})
    bag = read_scored_bag(bag_path, settings.inputs)
    if not bag.gt_depth:
        raise BagError(f"{bag_path}: no /gt/depth; record an RGB-D camera's depth (fourds-ros bag import --depth-topic)")
    return bag, run_offline(bag, resolve_model(model_dir), backend, settings)


def _scores(bag, preds, factor: float) -> dict:
    """{before, after}: metric AbsRel of the predictions as they are and times `factor`, the
    median-scaled AbsRel, and the oracle constant's metric AbsRel on the same pixels
    (peers.constant_depth, scored once)."""
    from .peers import constant_depth
    from .report import score_depth

    constant, _ = score_depth(bag, constant_depth(bag.stamps, bag.gt_depth, like=preds))
    out = {}
    for name, f in (("before", 1.0), ("after", factor)):
        scaled = copy.copy(preds)
        scaled.depth = {s: d * f for s, d in preds.depth.items()}
        scored, _ = score_depth(bag, scaled)
        out[name] = {"metric_abs_rel": scored["metric"]["abs_rel"], "abs_rel": scored["abs_rel"],
                     "constant_metric_abs_rel": constant["metric"]["abs_rel"]}
    return out


def calibrate(bag_path: str | Path, model_dir: str | Path | None = None, backend: str = NODE_BACKEND,
              params: dict | None = None, check: str | Path | None = None) -> dict:
    """-> {factor, frames, frame_scale_p10 / p90, fitted: {before, after} on BAG, and with `check`
    (another labelled recording of the site) checked: the same there, where the factor is a
    prediction, not a fit}."""
    from .metrics import depth_errors

    bag, preds = _run(bag_path, model_dir, backend, params)
    scales = []
    for s in sorted(set(preds.depth) & set(bag.gt_depth)):
        pred_k = preds.depth_K.get(s)
        errors = depth_errors(preds.depth[s], bag.gt_depth[s], median_scale=True, pred_K=pred_k,
                              gt_K=bag.gt_intrinsics(s) if pred_k is not None else None)
        if errors is not None and np.isfinite(errors["scale"]) and errors["scale"] > 0:
            scales.append(errors["scale"])
    if not scales:
        raise BagError(f"{bag_path}: no frame has model depth over valid ground-truth depth")
    factor = float(np.exp(np.median(np.log(scales))))
    result = {"bag": str(bag_path), "factor": factor, "frames": len(scales),
              "frame_scale_p10": float(np.percentile(scales, 10)), "frame_scale_p90": float(np.percentile(scales, 90)),
              "fitted": _scores(bag, preds, factor)}
    if check is not None:
        other, other_preds = _run(check, model_dir, backend, params)
        result["checked"] = {"bag": str(check), **_scores(other, other_preds, factor)}
    return result


def _say(name: str, part: dict) -> str:
    b, a = part["before"], part["after"]
    return (f"{name}: metric AbsRel {b['metric_abs_rel']:.3f} -> {a['metric_abs_rel']:.3f} (oracle constant "
            f"{a['constant_metric_abs_rel']:.3f}: {a['metric_abs_rel'] / a['constant_metric_abs_rel']:.2f}x; "
            f"median-scaled {a['abs_rel']:.3f})")


def main(argv: list[str]) -> int:
    from ..perception.settings import add_param_argument

    parser = argparse.ArgumentParser(prog="fourds-ros calibrate-scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", help="a labelled recording of the site (bag convert / bag import, with /gt/depth)")
    parser.add_argument("--model", default=None, help="model directory; default: the shipped one, as the node")
    add_backend_argument(parser)
    parser.add_argument("--check", default=None, metavar="OTHER_BAG",
                        help="another labelled recording of the site, scored with the factor (its real test)")
    parser.add_argument("--json", default=None, help="also write the result here")
    add_param_argument(parser)
    args = parser.parse_args(argv)
    params = command_params(parser, args)
    if args.json and not Path(args.json).resolve().parent.is_dir():  # said before the minutes of inference
        parser.error(f"--json {args.json}: its folder does not exist")
    if args.check and not Path(args.check).exists():  # said before the fit, whose factor was lost with it
        parser.error(f"--check {args.check}: no such bag")
    try:
        result = calibrate(args.bag, args.model, args.backend, params, args.check)
    except (BagError, OSError, ValueError) as exc:
        print(f"fourds-ros calibrate-scale: {exc}", file=sys.stderr)
        return 1
    print(f"{result['frames']} frames; single frames' scale {result['frame_scale_p10']:.3f}-"
          f"{result['frame_scale_p90']:.3f} (10th-90th percentile)")
    print(_say(f"{args.bag} (fitted on)", result["fitted"]))
    print(_say(f"{args.check} (checked)", result["checked"]) if args.check else
          "check the factor on another recording of the site: --check OTHER_BAG")
    print(f"metric_scale_factor: {result['factor']:.4f}")
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(result, indent=1))
        except OSError as exc:  # the factor is printed above: the run is not lost
            print(f"fourds-ros calibrate-scale: --json {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
