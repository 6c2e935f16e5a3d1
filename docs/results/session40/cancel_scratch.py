"""Exploration (no ATE): per clip, the last frame's translation of the head, the geometry and their
fusion: the angle between head and geometry, and the fused size over the two sizes' weighted mean.
Usage: BAG STARTS"""
import sys
import numpy as np
sys.path.insert(0, "/work/main/tools"); sys.path.insert(0, "/work/main")
import pose_error_budget as peb
from fourds_ros.engine import create_engine
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.perception import pipeline as pl, pose_geometry as pg
from fourds_ros.perception.settings import PerceptionSettings

bag = read_bag(sys.argv[1]); starts = int(sys.argv[2])
engine = create_engine(resolve_model(None), backend="torch")
rows = []
orig = pg.fuse
def fuse(hr, ht, hv, gr, gt, gv, valid=None, **kw):
    r, t, v = orig(hr, ht, hv, gr, gt, gv, valid, **kw)
    w = hv[-1, 1] / (hv[-1, 1] + max(gv[-1, 1], 1e-12))
    a, b = np.linalg.norm(ht[-1]), np.linalg.norm(gt[-1])
    if a > 0 and b > 0 and (valid is None or valid[-1]):
        ang = np.degrees(np.arccos(np.clip(ht[-1] @ gt[-1] / a / b, -1, 1)))
        rows.append((ang, np.linalg.norm(t[-1]) / ((1 - w) * a + w * b), w))
    return r, t, v
pg.fuse = fuse
for s in range(starts):
    peb.record_clips(bag, engine, PerceptionSettings(), s)
rows = np.array(rows)
print(f"{sys.argv[1]}: clips {len(rows)}, head-geometry angle median {np.median(rows[:,0]):.0f} deg, "
      f">60 deg: {np.mean(rows[:,0] > 60):.2f}; fused size / weighted sizes median {np.median(rows[:,1]):.2f}, "
      f"min {rows[:,1].min():.2f}; geometry weight median {np.median(rows[:,2]):.2f}")
