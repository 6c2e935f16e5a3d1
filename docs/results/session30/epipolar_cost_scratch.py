"""Where the essential-matrix direction's time goes, per 8-frame clip of TUM fr1/rpy (scratch)."""
import sys, time, json
import cv2, numpy as np
from fourds_ros.rgbd import read_sequence
from fourds_ros.perception.tracks import gray
from fourds_ros.perception.track_refine import lk_step, _as_uint8, LK_WINDOW, LK_LEVELS
from fourds_ros.perception import epipolar as ep

seq = read_sequence(sys.argv[1], "tum")
grays = [gray(seq.rgb(i)) for i in range(len(seq))]
k = seq.intrinsics
T = {"corners": [], "lk7": [], "essential": [], "fast": []}
for s in range(0, len(grays) - 8, 7):
    g = grays[s:s + 8]
    t0 = time.perf_counter(); seeds = cv2.goodFeaturesToTrack(_as_uint8(g[0]), 300, ep.CORNER_QUALITY, ep.MIN_CORNER_DISTANCE_PX)
    t1 = time.perf_counter(); x0, x1 = ep.follow_corners(g, 300)
    t2 = time.perf_counter(); ep.essential_motion(x0, x1, k)
    t3 = time.perf_counter()
    x = x0
    t4 = time.perf_counter()
    fast = cv2.FastFeatureDetector_create(threshold=20).detect(_as_uint8(g[0]))
    t5 = time.perf_counter()
    T["corners"].append(t1 - t0); T["lk7"].append(t2 - t1 - (t1 - t0)); T["essential"].append(t3 - t2)
    T["fast"].append(t5 - t4)
print(json.dumps({k_: round(1000 * float(np.median(v)), 2) for k_, v in T.items()}))
