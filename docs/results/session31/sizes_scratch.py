"""Scratch: per clip, the last frame's translation size from the head, the geometry and the fusion, against the truth."""
import sys, json
import numpy as np
sys.path.insert(0, "/work/main/tools")
from pose_error_budget import record_clips, ground_truth_motion
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.engine import create_engine
from fourds_ros.perception import pipeline as pl
from fourds_ros.perception.settings import PerceptionSettings

bag = read_bag(sys.argv[1]); starts = int(sys.argv[2])
engine = create_engine(resolve_model(None), "onnxruntime")
settings = PerceptionSettings.from_params({})
rec = []
orig = pl.clip_pose
def wrapped(outputs, k_model, source, usable, **kw):
    out = orig(outputs, k_model, source, usable, **kw)
    row = {"stamps": list(kw["stamps_ns"])}
    for s in ("head", "geometry"):
        _, t, _, g = orig(outputs, k_model, s, usable, **kw)
        row[s] = float(np.linalg.norm(t[-1]))
        if s == "geometry" and g is not None:
            row["rot_only"] = bool(g.rotation_only[-1]); row["valid"] = bool(g.valid[-1])
    row["fused"] = float(np.linalg.norm(out[1][-1]))
    rec.append(row)
    return out
pl.clip_pose = wrapped
rows = []
for s in range(starts):
    rec.clear(); record_clips(bag, engine, settings, s)
    for r in rec:
        if all(x in bag.gt_pose for x in r["stamps"]):
            r["gt"] = float(np.linalg.norm(ground_truth_motion(bag.gt_pose, r["stamps"])[1][-1]))
            rows.append(r)
json.dump(rows, open(sys.argv[3], "w"))
for k in ("head", "geometry", "fused"):
    ratio = np.array([r[k] / r["gt"] for r in rows if r["gt"] > 1e-3 and r[k] > 0])
    lr = np.log(ratio)
    print(f"{k:9s} clips {len(ratio)} median ratio {np.median(ratio):.2f}  std of log ratio {lr.std():.2f}  IQR of log {np.subtract(*np.percentile(lr,[75,25])):.2f}")
