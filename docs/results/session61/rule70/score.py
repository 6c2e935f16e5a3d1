"""Rule 69's scoring: ATE and rotation RPE (mean of 6 starts), untouched and over perturbed runs."""
import json, os, sys, numpy as np
tree = os.getcwd(); sys.path.insert(0, tree + "/tools"); sys.path.insert(0, tree)
from pose_error_budget import record_clips
from pose_ate_spread import NoisyEngine
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.evaluation.metrics import pose_errors
from fourds_ros.engine import create_engine
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.perception.odometry import OdometryChain
import fourds_ros
assert fourds_ros.__file__.startswith(tree), fourds_ros.__file__
bag = read_bag(sys.argv[1]); runs = int(sys.argv[2]); base = create_engine(resolve_model(None), backend="onnxruntime")
settings = PerceptionSettings()
out = []
for run in range(runs):
    eng = NoisyEngine(base, 1e-6 if run else 0.0, run)
    ates, rots = [], []
    for start in range(6):
        calls = record_clips(bag, eng, settings, start)
        chain, poses = OdometryChain.from_settings(settings.pose), {}
        for idx, st, R, t, lv, ot in calls:
            for tt, e in zip(ot, chain.add_clip(idx, st, R, t, lv, ot)):
                poses[st[tt]] = e.odom_from_camera
        used = [s for s in sorted(poses) if s in bag.gt_pose]
        pe = pose_errors(used, [poses[s] for s in used], [bag.gt_pose[s] for s in used])
        ates.append(pe["ate_rmse"]); rots.append(pe["rpe_rot_deg"])
    out.append({"ate": float(np.mean(ates)), "rot": float(np.mean(rots))})
print(json.dumps({"bag": sys.argv[1], "runs": out}))
