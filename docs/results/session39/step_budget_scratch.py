"""Exploration (session 39, after rule 32): on the clips that take the stepwise direction, what
makes their last frame miss? Per step: the angle between its measured direction (or the solved
one, where it measured none) and the true step's, and its solved length over the true one. Per
clip: the last frame's direction error as shipped, with the true step lengths and the measured
directions, and with the true directions and the solved lengths.
Usage: step_budget_scratch.py BAG STARTS [--param k=v ...]"""
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

bag = read_bag(sys.argv[1])
starts = int(sys.argv[2])
params = {k: __import__("yaml").safe_load(v) for k, v in (a.split("=", 1) for a in sys.argv[4::2])}
settings = PerceptionSettings.from_params(params) if params else PerceptionSettings()
engine = create_engine(resolve_model(None), backend="torch")
captured, steps_rows, clip_rows = [], [], []
orig_sd = pl.stepwise_direction


def capture(steps, motions, rotation, translation):
    captured.append((steps, motions))
    return orig_sd(steps, motions, rotation, translation)


pl.stepwise_direction = capture


def angle(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(a @ b / na / nb, -1, 1)))) if na > 1e-9 and nb > 1e-9 else np.nan


def chained(steps, rotation, pick):
    total = np.zeros(3)
    for (a, b, *_), own in zip(steps, pick):
        total += rotation[a] @ own
    return total


orig = pl.PerceptionPipeline._epipolar


def recording(self, rotation, translation, geo, frames, unseen, images):
    captured.clear()
    before = self.pose_epipolar_stepwise
    out = orig(self, rotation, translation, geo, frames, unseen, images)
    stamps = [f.stamp_ns for f in frames]
    if self.pose_epipolar_stepwise == before or not captured or not all(s in bag.gt_pose for s in stamps):
        return out
    gr, gt = peb.ground_truth_motion(bag.gt_pose, stamps)
    steps, motions = captured[-1]
    shipped, true_len, true_dir = [], [], []
    for (a, b, *_), m in zip(steps, motions):
        solved = rotation[a].T @ (translation[b] - translation[a])
        truth = gr[a].T @ (gt[b] - gt[a])
        direction = m.direction if m is not None else solved / max(np.linalg.norm(solved), 1e-12)
        steps_rows.append({"measured": m is not None, "dir_err": angle(direction, truth),
                           "len_ratio": float(np.linalg.norm(solved) / max(np.linalg.norm(truth), 1e-12))})
        shipped.append(direction * np.linalg.norm(solved))
        true_len.append(direction * np.linalg.norm(truth))
        true_dir.append(truth / max(np.linalg.norm(truth), 1e-12) * np.linalg.norm(solved))
    # unmeasured steps along the measured steps' mean direction (in the clip's first frame), the
    # solver's lengths: a walker keeps a heading
    heading = sum(rotation[a] @ mm.direction for (a, *_), mm in zip(steps, motions) if mm is not None)
    borrowed = []
    for (a, b, *_), mm, own in zip(steps, motions, shipped):
        if mm is None and np.linalg.norm(heading) > 0:
            own = rotation[a].T @ heading / np.linalg.norm(heading) * np.linalg.norm(own)
        borrowed.append(own)
    clip_rows.append({"shipped": angle(chained(steps, rotation, shipped), gt[-1]),
                      "heading for unmeasured": angle(chained(steps, rotation, borrowed), gt[-1]),
                      "true lengths": angle(chained(steps, rotation, true_len), gt[-1]),
                      "true directions": angle(chained(steps, rotation, true_dir), gt[-1]),
                      "ends at": steps[-1][1], "frames": len(frames)})
    return out


pl.PerceptionPipeline._epipolar = recording
for start in range(starts):
    peb.record_clips(bag, engine, settings, start)
m = [r for r in steps_rows if r["measured"]]
u = [r for r in steps_rows if not r["measured"]]
print(f"steps: {len(steps_rows)}, measured {len(m)}: direction error mean {np.nanmean([r['dir_err'] for r in m]):.1f}; "
      f"unmeasured (solved) mean {np.nanmean([r['dir_err'] for r in u]) if u else float('nan'):.1f}")
ratios = np.array([r["len_ratio"] for r in steps_rows])
print(f"solved step length / true: median {np.median(ratios):.2f}, spread of log {np.std(np.log(ratios)):.2f}")
for key in ("shipped", "heading for unmeasured", "true lengths", "true directions"):
    print(f"last frame direction error, {key}: mean {np.nanmean([r[key] for r in clip_rows]):.1f} over {len(clip_rows)} clips")
print("chains ending before the last frame:", sum(r["ends at"] < r["frames"] - 1 for r in clip_rows))
