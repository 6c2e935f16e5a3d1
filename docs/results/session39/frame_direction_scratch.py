"""Exploration (session 39): per clip frame, the angle between the ground truth's first_from_t
translation and the pipeline's, after the epipolar step, with the path that clip took (first-last,
stepwise, none). Frames whose true motion from the clip's first frame is under MIN_M are left out
(their direction is noise). Usage: frame_direction_scratch.py BAG OUT.json STARTS [--param k=v ...]"""
import json
import sys

import numpy as np

sys.path.insert(0, "/work/main/tools")
sys.path.insert(0, "/work/main")
import pose_error_budget as peb  # noqa: E402
from fourds_ros.engine import create_engine  # noqa: E402
from fourds_ros.evaluation.bag import read_bag  # noqa: E402
from fourds_ros.evaluation.eval_cli import resolve_model  # noqa: E402
from fourds_ros.perception import pipeline as pl  # noqa: E402
from fourds_ros.perception.settings import PerceptionSettings  # noqa: E402

MIN_M = 0.005
bag_path, out, starts = sys.argv[1], sys.argv[2], int(sys.argv[3])
params = {k: __import__("yaml").safe_load(v) for k, v in (a.split("=", 1) for a in sys.argv[5::2])}
settings = PerceptionSettings.from_params(params) if params else PerceptionSettings()
bag = read_bag(bag_path)
engine = create_engine(resolve_model(None), backend="torch")
rows = []
orig = pl.PerceptionPipeline._epipolar


def angle(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-9 or nb < 1e-9:
        return None
    return float(np.degrees(np.arccos(np.clip(a @ b / na / nb, -1, 1))))


def recording(self, rotation, translation, geo, frames, unseen, images):
    before = (self.pose_epipolar_clips, self.pose_epipolar_stepwise)
    turned = orig(self, rotation, translation, geo, frames, unseen, images)
    stamps = [f.stamp_ns for f in frames]
    path = "first-last" if self.pose_epipolar_clips > before[0] else (
        "stepwise" if self.pose_epipolar_stepwise > before[1] else "none")
    if all(s in bag.gt_pose for s in stamps):
        _, gt = peb.ground_truth_motion(bag.gt_pose, stamps)
        for t in range(1, len(stamps)):
            if np.linalg.norm(gt[t]) >= MIN_M:
                rows.append({"start": start, "stamp": stamps[0], "t": t, "path": path,
                             "solved_deg": angle(translation[t], gt[t]), "after_deg": angle(turned[t], gt[t]),
                             "solved_size": float(np.linalg.norm(translation[t]) / np.linalg.norm(gt[t])),
                             "after_size": float(np.linalg.norm(turned[t]) / np.linalg.norm(gt[t]))})
    return turned


pl.PerceptionPipeline._epipolar = recording
for start in range(starts):
    peb.record_clips(bag, engine, settings, start)
json.dump(rows, open(out, "w"), indent=0)
for p in ("first-last", "stepwise", "none"):
    r = [x for x in rows if x["path"] == p and x["solved_deg"] is not None and x["after_deg"] is not None]
    if r:
        b = np.array([x["solved_deg"] for x in r]); a = np.array([x["after_deg"] for x in r])
        last = np.array([x["after_deg"] for x in r if x["t"] == max(y["t"] for y in r if y["stamp"] == x["stamp"] and y["start"] == x["start"])])
        ls = np.array([x["solved_size"] for x in r if x["t"] == 7]); la = np.array([x["after_size"] for x in r if x["t"] == 7])
        if len(ls):
            print(f"  {p} frame 7 size / true: solved median {np.median(ls):.2f}, after median {np.median(la):.2f}; log-ratio spread {np.std(np.log(ls)):.2f} / {np.std(np.log(la)):.2f}")
        print(f"{p}: {len(r)} frames; solved median {np.median(b):.1f} mean {b.mean():.1f}; after median {np.median(a):.1f} mean {a.mean():.1f}; last frames after mean {last.mean():.1f}")
