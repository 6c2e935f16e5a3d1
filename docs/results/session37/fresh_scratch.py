"""Exploration (session 37): where rule 23's followed-corner steps measure no direction, each
consecutive pair of frames on fresh corners (session 35's rule 18 / session 36's rule 22 steps)."""
import json, sys, time
import numpy as np
sys.path.insert(0, "/work/main"); sys.path.insert(0, "/work/main/tools")
from fourds_ros.perception import pipeline as pl
from fourds_ros.perception.epipolar import (MIN_INLIERS, essential_motion, follow_corner_steps, follow_corners,
                                            step_motions, stepwise_direction, turn_translations)
from fourds_ros import cli
from frame_rate_study import row
stats = {"fresh_runs": 0, "fresh_measured": 0, "fresh_ms": []}

def fresh_steps(images, k, rotation, keep, corners):
    steps = []
    for t in range(1, len(rotation)):
        x0, x1 = follow_corners([images[t - 1], images[t]], corners, keep, stride=1)
        steps.append((t - 1, t, x0, x1))
    return steps

def _epipolar(self, rotation, translation, geo, frames, unseen, images):
    corners = self.settings.pose.epipolar_corners
    if not corners or unseen.any() or geo.still[-1]:
        return translation
    keep = self._off_robot_pixels(frames[0].rgb.shape[:2])
    chain = follow_corner_steps(images, corners, keep, replenish_below=MIN_INLIERS)
    k = self._input_k(frames[0])
    motion = essential_motion(chain.first, chain.last, k, rotation[-1])
    if motion is not None:
        self.pose_epipolar_clips += 1
        return turn_translations(translation, motion.direction)
    direction = stepwise_direction(chain.steps, step_motions(chain.steps, k, rotation), rotation, translation)
    if direction is None:
        t0 = time.perf_counter()
        steps = fresh_steps(images, k, rotation, keep, corners)
        direction = stepwise_direction(steps, step_motions(steps, k, rotation), rotation, translation)
        stats["fresh_runs"] += 1
        stats["fresh_ms"].append(1000 * (time.perf_counter() - t0))
        stats["fresh_measured"] += direction is not None
    if direction is None:
        return translation
    self.pose_epipolar_stepwise += 1
    return turn_translations(translation, direction)

pl.PerceptionPipeline._epipolar = _epipolar
name = sys.argv[1]
out = f"/tmp/s37/fresh/{name}"
cli.main(["eval", f"/tmp/s37/bags/{name}", "--offline", "--out", out, *sys.argv[2:]])
x = row(json.load(open(f"{out}/report.json")))
print(name, sys.argv[2:], f"ATE {x['ate']:.4f} (ORB {x['orb_vo_ate']:.4f}, {x['ate']/x['orb_vo_ate']:.2f}x) rot {x['rpe_rot_deg']:.2f}",
      {"runs": stats["fresh_runs"], "measured": stats["fresh_measured"], "ms_median": float(np.median(stats["fresh_ms"])) if stats["fresh_ms"] else 0}, flush=True)
