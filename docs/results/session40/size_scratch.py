"""Exploration: per clip, the solved translation size against the truth's, and the ATE of the chain
rebuilt with each clip's size smoothed (causal median of recent clip speeds). Usage: BAG STARTS [k=v ...]"""
import sys
import numpy as np
sys.path.insert(0, "/work/main/tools"); sys.path.insert(0, "/work/main")
import yaml
import pose_error_budget as peb
from fourds_ros.engine import create_engine
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.perception.settings import PerceptionSettings

bag = read_bag(sys.argv[1]); starts = int(sys.argv[2])
params = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in sys.argv[3:])}
settings = PerceptionSettings.from_params(params) if params else PerceptionSettings()
engine = create_engine(resolve_model(None), backend="torch")

def smoothed(calls, window, mode):
    out, speeds = [], []
    for c in calls:
        idx, st, rot, tr, lv, ot = c
        dur = (st[-1] - st[0]) * 1e-9
        size = np.linalg.norm(tr[-1])
        speed = size / dur
        if mode == "median" and size > 0:
            speeds.append(speed)
            s = float(np.median(speeds[-window:]))
            tr = tr * (s / speed)
        out.append((idx, st, rot, tr, lv, ot))
    return out

def ate(calls):
    return peb.chained_ate(calls, bag.gt_pose, "estimate")

res = {k: [] for k in ["estimate", "med3", "med5", "med9", "gtsize"]}
logs = []
for start in range(starts):
    calls = peb.record_clips(bag, engine, settings, start)
    for c in calls:
        gr, gt = peb.ground_truth_motion(bag.gt_pose, c[1])
        a, b = np.linalg.norm(c[3][-1]), np.linalg.norm(gt[-1])
        if a > 0 and b > 0:
            logs.append(np.log(a / b))
    res["estimate"].append(ate(calls))
    for w in (3, 5, 9):
        res[f"med{w}"].append(ate(smoothed(calls, w, "median")))
    res["gtsize"].append(peb.chained_ate(calls, bag.gt_pose, "ground-truth size"))
logs = np.array(logs)
print(f"{sys.argv[1]} {params}: clip size log-ratio: spread {logs.std():.2f}, lag-1 corr "
      f"{np.corrcoef(logs[:-1], logs[1:])[0,1]:.2f}, n {len(logs)}")
print("  ".join(f"{k} {np.mean(v):.4f}" for k, v in res.items()))
