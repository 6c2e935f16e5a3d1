"""Exploration (training rows): the model's depth made F times too far (as on the TUM desk, where it
reads 2.4x), and the pose head's translations put into the geometry's units before fusion (the
running median, over recent clips, of the geometry's last-frame size over the head's). Usage:
BAG STARTS F WINDOW (WINDOW 0: no units alignment)."""
import sys
import numpy as np
sys.path.insert(0, "/work/main/tools"); sys.path.insert(0, "/work/main")
import pose_error_budget as peb
from fourds_ros.engine import create_engine
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.perception import pose_geometry as pg
import fourds_ros.perception.pipeline as pl
from fourds_ros.perception.settings import PerceptionSettings

bag = read_bag(sys.argv[1]); starts = int(sys.argv[2]); factor = float(sys.argv[3]); window = int(sys.argv[4])
engine = create_engine(resolve_model(None), backend="torch")
ratios = []
orig_fuse, orig_clip_pose = pg.fuse, pl.clip_pose

def fuse(hr, ht, hv, gr, gt, gv, geo_valid=None, keep_sizes=False):
    if window:
        h, g = np.linalg.norm(ht[-1]), np.linalg.norm(gt[-1])
        if (geo_valid is None or geo_valid[-1]) and h > 1e-4 and g > 1e-4:
            ratios.append(g / h)
        if ratios:
            r = float(np.median(ratios[-window:]))
            ht = ht * r
            hv = np.asarray(hv, float) * np.array([1.0, r * r])
    return orig_fuse(hr, ht, hv, gr, gt, gv, geo_valid, keep_sizes)

def clip_pose(outputs, *a, **k):
    return orig_clip_pose({**outputs, "depth": outputs["depth"] * factor}, *a, **k)

pg.fuse = fuse
pl.clip_pose = clip_pose
ates = []
for start in range(starts):
    ratios.clear()
    calls = peb.record_clips(bag, engine, PerceptionSettings(), start)
    ates.append(peb.chained_ate(calls, bag.gt_pose, "estimate"))
print(f"{sys.argv[1].split('/')[-1]} F={factor} window={window}: ATE mean of {starts} starts {np.mean(ates):.4f} "
      f"({' '.join(f'{a:.4f}' for a in ates)}); last ratio median {np.median(ratios) if ratios else float('nan'):.2f}")
