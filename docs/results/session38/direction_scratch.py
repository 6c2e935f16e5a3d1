"""Exploration (session 38): per clip, the angle between the ground truth's first-to-last
translation and the pipeline's, before and after the epipolar direction turns it; which path
turned it (first-last, stepwise, none) and the first-last essential matrix's parallax / turn.
Usage: direction_scratch.py BAG OUT.json STARTS [--param k=v ...]"""
import json
import sys

import numpy as np

sys.path.insert(0, "/work/main/tools")
sys.path.insert(0, "/work/main")
import pose_error_budget as peb  # noqa: E402
from fourds_ros.engine import create_engine  # noqa: E402
from fourds_ros.evaluation.bag import read_bag  # noqa: E402
from fourds_ros.evaluation.eval_cli import resolve_model  # noqa: E402
from fourds_ros.perception import epipolar, pipeline as pl  # noqa: E402
from fourds_ros.perception.settings import PerceptionSettings  # noqa: E402

bag_path, out, starts = sys.argv[1], sys.argv[2], int(sys.argv[3])
params = {k: __import__("yaml").safe_load(v) for k, v in (a.split("=", 1) for a in sys.argv[5::2])}
settings = PerceptionSettings.from_params(params) if params else PerceptionSettings()
bag = read_bag(bag_path)
engine = create_engine(resolve_model(None), backend="torch")
rows, first_last = [], []
orig_em = pl.essential_motion


def em(*a, **kw):
    m = orig_em(*a, **kw)
    first_last.append(None if m is None else (m.parallax_px, m.inliers))
    return m


pl.essential_motion = em
orig = pl.PerceptionPipeline._epipolar


def angle(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-9 or nb < 1e-9:
        return None
    return float(np.degrees(np.arccos(np.clip(a @ b / na / nb, -1, 1))))


def recording(self, rotation, translation, geo, frames, unseen, images):
    before = (self.pose_epipolar_clips, self.pose_epipolar_stepwise)
    first_last.clear()
    turned = orig(self, rotation, translation, geo, frames, unseen, images)
    stamps = [f.stamp_ns for f in frames]
    path = "first-last" if self.pose_epipolar_clips > before[0] else (
        "stepwise" if self.pose_epipolar_stepwise > before[1] else "none")
    if all(s in bag.gt_pose for s in stamps):
        gr, gt = peb.ground_truth_motion(bag.gt_pose, stamps)
        rot_deg = float(np.degrees(np.linalg.norm(__import__("cv2").Rodrigues(gr[-1])[0])))
        rows.append({"start": start, "stamp": stamps[0], "path": path, "gt_m": float(np.linalg.norm(gt[-1])),
                     "gt_turn_deg": rot_deg, "before_deg": angle(translation[-1], gt[-1]),
                     "after_deg": angle(turned[-1], gt[-1]), "change_deg": angle(turned[-1], translation[-1]), "first_last": first_last[0] if first_last else None})
    return turned


pl.PerceptionPipeline._epipolar = recording
for start in range(starts):
    peb.record_clips(bag, engine, settings, start)
json.dump(rows, open(out, "w"), indent=0)
for p in ("first-last", "stepwise", "none"):
    r = [x for x in rows if x["path"] == p and x["before_deg"] is not None and x["after_deg"] is not None]
    if r:
        b = np.array([x["before_deg"] for x in r]); a = np.array([x["after_deg"] for x in r])
        print(f"{p}: {len(r)} clips; before median {np.median(b):.1f} mean {b.mean():.1f}; after median {np.median(a):.1f} mean {a.mean():.1f}; worse {int((a > b).sum())}")
