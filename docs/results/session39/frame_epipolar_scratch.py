"""Exploration (session 39): on the clips whose first-last essential matrix gave the direction,
would each followed frame's own essential matrix with the first frame (the first frame's corners
followed to frame t) point frame t better than the one turn the shipped code gives the whole clip?
Per followed frame t (2, 4, 6): the angle to the ground truth's first_from_t translation of the
shipped (turned) translation and, where essential_motion(first, t) measures one, of that direction.
Usage: frame_epipolar_scratch.py BAG STARTS"""
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
from fourds_ros.perception.track_refine import lk_step  # noqa: E402

bag = read_bag(sys.argv[1])
starts = int(sys.argv[2])
engine = create_engine(resolve_model(None), backend="torch")
rows = []


def angle(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(a @ b / na / nb, -1, 1)))) if na > 1e-9 and nb > 1e-9 else None


orig = pl.PerceptionPipeline._epipolar


def recording(self, rotation, translation, geo, frames, unseen, images):
    before = self.pose_epipolar_clips
    turned = orig(self, rotation, translation, geo, frames, unseen, images)
    stamps = [f.stamp_ns for f in frames]
    if self.pose_epipolar_clips == before or not all(s in bag.gt_pose for s in stamps):
        return turned
    _, gt = peb.ground_truth_motion(bag.gt_pose, stamps)
    k = self._input_k(frames[0])
    x0 = epipolar._seed_corners(images[0], self.settings.pose.epipolar_corners, None)
    at, alive = x0.copy(), np.ones(len(x0), bool)
    followed = sorted(set(range(0, len(frames), 2)) | {len(frames) - 1})
    for a, b in zip(followed[:-1], followed[1:]):
        rows_ = np.flatnonzero(alive)
        moved, ok = lk_step(images[a], images[b], at[rows_])
        at[rows_] = moved
        alive[rows_[~ok]] = False
        if b == len(frames) - 1 or np.linalg.norm(gt[b]) < 0.005:
            continue
        m = epipolar.essential_motion(x0[alive], at[alive], k, rotation[b])
        rows.append({"t": b, "gt_cm": float(np.linalg.norm(gt[b]) * 100), "shipped": angle(turned[b], gt[b]),
                     "own": None if m is None else angle(m.direction, gt[b])})
    return turned


pl.PerceptionPipeline._epipolar = recording
for start in range(starts):
    peb.record_clips(bag, engine, PerceptionSettings(), start)
for t in (2, 4, 6):
    r = [x for x in rows if x["t"] == t]
    m = [x for x in r if x["own"] is not None]
    if r:
        print(f"frame {t}: {len(r)} frames, shipped mean {np.mean([x['shipped'] for x in r]):.1f}; own measured on {len(m)}: "
              f"own mean {np.mean([x['own'] for x in m]) if m else float('nan'):.1f} vs shipped on those {np.mean([x['shipped'] for x in m]) if m else float('nan'):.1f}; "
              f"own better on {sum(x['own'] < x['shipped'] for x in m)}")
