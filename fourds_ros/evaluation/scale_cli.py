"""`fourds-ros calibrate-scale BAG [--model DIR] [--param NAME=VALUE ...]`: a site's
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
site's metres will stay rough) and the bag's metric AbsRel before and after: numbers on the
recording the factor was fitted on, so the factor's real test is another recording of the site.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .bag import BagError


def calibrate(bag_path: str | Path, model_dir: str | Path | None = None, backend: str = "onnxruntime",
              params: dict | None = None) -> dict:
    """-> {factor, frames, frame_scale_p10 / p90, metric_abs_rel_before / after, abs_rel (median-scaled)}."""
    from ..perception import PerceptionSettings
    from .bag import read_bag
    from .eval_cli import resolve_model
    from .metrics import depth_errors
    from .offline import run_offline
    from .report import score_depth

    bag = read_bag(bag_path)
    if not bag.gt_depth:
        raise BagError(f"{bag_path}: no /gt/depth; record an RGB-D camera's depth (fourds-ros bag import --depth-topic)")
    settings = PerceptionSettings.from_params(**{**(params or {}), "metric_scale_source": "model",
                                                 "metric_scale_factor": 1.0})
    preds = run_offline(bag, resolve_model(model_dir), backend, settings)
    scales = []
    for s in sorted(set(preds.depth) & set(bag.gt_depth)):
        pred_k = preds.depth_K.get(s)
        errors = depth_errors(preds.depth[s], bag.gt_depth[s], median_scale=True, pred_K=pred_k,
                              gt_K=bag.intrinsics(s) if pred_k is not None else None)
        if errors is not None and np.isfinite(errors["scale"]) and errors["scale"] > 0:
            scales.append(errors["scale"])
    if not scales:
        raise BagError(f"{bag_path}: no frame has model depth over valid ground-truth depth")
    factor = float(np.exp(np.median(np.log(scales))))
    before, _ = score_depth(bag, preds)
    preds.depth = {s: d * factor for s, d in preds.depth.items()}
    after, _ = score_depth(bag, preds)
    return {"bag": str(bag_path), "factor": factor, "frames": len(scales),
            "frame_scale_p10": float(np.percentile(scales, 10)), "frame_scale_p90": float(np.percentile(scales, 90)),
            "metric_abs_rel_before": before["metric"]["abs_rel"], "metric_abs_rel_after": after["metric"]["abs_rel"],
            "abs_rel": before["abs_rel"]}


def main(argv: list[str]) -> int:
    from ..perception.settings import add_param_argument, params_from_args

    parser = argparse.ArgumentParser(prog="fourds-ros calibrate-scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", help="a labelled recording of the site (bag convert / bag import, with /gt/depth)")
    parser.add_argument("--model", default=None, help="model directory; default: the shipped one, as the node")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--json", default=None, help="also write the result here")
    add_param_argument(parser)
    args = parser.parse_args(argv)
    try:
        result = calibrate(args.bag, args.model, args.backend, params_from_args(parser, args.param))
    except (BagError, OSError, ValueError) as exc:
        print(f"fourds-ros calibrate-scale: {exc}", file=sys.stderr)
        return 1
    print(f"{result['frames']} frames: single frames' scale {result['frame_scale_p10']:.3f}-{result['frame_scale_p90']:.3f} "
          f"(10th-90th percentile); metric AbsRel on this recording {result['metric_abs_rel_before']:.3f} -> "
          f"{result['metric_abs_rel_after']:.3f} (median-scaled {result['abs_rel']:.3f}); check it on another one")
    print(f"metric_scale_factor: {result['factor']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
