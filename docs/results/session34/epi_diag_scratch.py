"""Scratch: why the epipolar direction is not taken at 15/10 Hz (TUM). Logs follow_corners counts and
essential_motion's refusal reason per clip; no ATE."""
import sys, numpy as np, cv2
import fourds_ros.perception.pipeline as pl
import fourds_ros.perception.epipolar as ep
from fourds_ros.evaluation import eval_cli
log = []
orig_follow, orig_ess = pl.follow_corners, pl.essential_motion
def follow(images, corners, keep=None, stride=None):
    x0, x1 = orig_follow(images, corners, keep, stride)
    seeds = cv2.goodFeaturesToTrack(ep._as_uint8(images[0]), corners, ep.CORNER_QUALITY, ep.MIN_CORNER_DISTANCE_PX)
    log.append({"seeds": 0 if seeds is None else len(seeds), "followed": len(x0)})
    return x0, x1
def ess(x0, x1, k, expected):
    rec = log[-1]
    m = orig_ess(x0, x1, k, None)
    if m is None:
        rec["result"] = "none without rotation check"
    else:
        r = m.rotation.T
        dis = np.degrees(np.linalg.norm(cv2.Rodrigues(r @ np.asarray(expected, np.float64))[0]))
        turn = np.degrees(np.linalg.norm(cv2.Rodrigues(np.asarray(expected, np.float64))[0]))
        rec.update(inliers=m.inliers, parallax=round(m.parallax_px, 1), disagree_deg=round(dis, 1), solver_turn_deg=round(turn, 1))
    return orig_ess(x0, x1, k, expected)
pl.follow_corners, pl.essential_motion = follow, ess
eval_cli.main([sys.argv[1], "--offline", "--out", sys.argv[2]])
for r in log: print(r)
