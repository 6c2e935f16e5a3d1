"""Exploration (session 39): what the clips whose epipolar step gave no direction cost the ATE.
The shipped pipeline's clip motions are recorded (as tools/pose_error_budget.py does) with the path
each clip's direction took; the chain is rebuilt with only the "none" clips changed:
  estimate            as published;
  truth direction     their translations along the ground truth's direction, the model's sizes (a bound);
  still               their translations zero;
  half                their translations halved;
  previous direction  their translations along the previous clip's last-frame direction (constant
                      velocity), carried into this clip's axes, the model's sizes.
Usage: none_budget_scratch.py BAG STARTS [MIN_LASTED]
("none": the first frame's corners lasted, at least MIN_LASTED of them, and still measured no direction)"""
import sys

import numpy as np

sys.path.insert(0, "/work/main/tools")
sys.path.insert(0, "/work/main")
import pose_error_budget as peb  # noqa: E402
from fourds_ros.engine import create_engine  # noqa: E402
from fourds_ros.evaluation.bag import read_bag  # noqa: E402
from fourds_ros.evaluation.eval_cli import resolve_model  # noqa: E402
from fourds_ros.evaluation.metrics import pose_errors  # noqa: E402
from fourds_ros.perception import pipeline as pl  # noqa: E402
from fourds_ros.perception.epipolar import turn_translations  # noqa: E402
from fourds_ros.perception.odometry import OdometryChain  # noqa: E402
from fourds_ros.perception.settings import PerceptionSettings  # noqa: E402

bag = read_bag(sys.argv[1])
starts = int(sys.argv[2])
engine = create_engine(resolve_model(None), backend="torch")
MIN_LASTED = int(sys.argv[3]) if len(sys.argv) > 3 else 30
# The code before rule 32: its held clips are what this measures.
SETTINGS = PerceptionSettings.from_params({"pose_epipolar_hold_unmeasured": False})
path = ["n/a"]
orig = pl.PerceptionPipeline._epipolar
lasted = []
orig_em = pl.essential_motion


def em(x0, *a, **kw):
    lasted.append(len(x0))
    return orig_em(x0, *a, **kw)


pl.essential_motion = em


def tagging(self, rotation, translation, geo, frames, unseen, images):
    before = (self.pose_epipolar_clips, self.pose_epipolar_stepwise)
    lasted.clear()
    out = orig(self, rotation, translation, geo, frames, unseen, images)
    path[0] = ("first-last" if self.pose_epipolar_clips > before[0] else
               "stepwise" if self.pose_epipolar_stepwise > before[1] else
               "none" if lasted and lasted[0] >= MIN_LASTED else "none, corners lost")
    return out


pl.PerceptionPipeline._epipolar = tagging


paths = []  # the path of each clip handed to the odometry chain, in order
chain_add = OdometryChain.add_clip


def tagged_add(self, *args, **kwargs):
    paths.append(path[0])
    path[0] = "n/a"
    return chain_add(self, *args, **kwargs)


OdometryChain.add_clip = tagged_add


def record(start):
    """pose_error_budget.record_clips's calls, each with its clip's path appended."""
    paths.clear()
    calls = peb.record_clips(bag, engine, SETTINGS, start)
    return [(*call, p) for call, p in zip(calls, paths, strict=True)]


def ate(calls, variant):
    chain, poses, previous = OdometryChain(), {}, None
    for indices, stamps_ns, rotation, translation, log_variance, output_t, p in calls:
        if p == "none":
            if variant == "truth direction":
                _, gt = peb.ground_truth_motion(bag.gt_pose, stamps_ns)
                translation = turn_translations(translation, gt[-1] / np.linalg.norm(gt[-1]))
            elif variant == "still":
                translation = translation * 0
            elif variant == "half":
                translation = translation * 0.5
            elif variant == "previous direction" and previous is not None:
                prev_rotation, prev_translation = previous
                translation = turn_translations(translation, prev_rotation[-1].T @ prev_translation[-1])
        previous = (rotation, translation)
        for t, e in zip(output_t, chain.add_clip(indices, stamps_ns, rotation, translation, log_variance, output_t)):
            poses[stamps_ns[t]] = e.odom_from_camera
    used = [s for s in sorted(poses) if s in bag.gt_pose]
    return pose_errors(used, [poses[s] for s in used], [bag.gt_pose[s] for s in used])["ate_rmse"]


runs = [record(s) for s in range(starts)]
print("none clips per start:", [sum(c[-1] == "none" for c in r) for r in runs], "of", [len(r) for r in runs],
      "; corners lost:", [sum(c[-1] == "none, corners lost" for c in r) for r in runs])
for v in ("estimate", "truth direction", "still", "half", "previous direction"):
    values = [ate(r, v) for r in runs]
    print(f"{v:20s} ATE mean of {starts} starts {np.mean(values):.4f}  ({' '.join(f'{x:.4f}' for x in values)})")
