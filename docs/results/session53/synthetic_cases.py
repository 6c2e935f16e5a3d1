# ==== adv.py ====
import sys; sys.path.insert(0, "/work/main")
import numpy as np, cv2
import test.test_pose_geometry as tp
from test.test_pose_geometry import K, T_LEN, H, W, poses, make_clip
from fourds_ros.perception.pose_geometry import solve_clip_motion, back_project
res = {}
# 1: still camera, jitter
for noise in (0.2, 0.35, 0.5, 0.8):
    n_notstill, tr = 0, []
    for seed in range(20):
        depth, xy, vis, _ = make_clip(poses(0, [0, 0, 0]), noise_px=noise, seed=seed)
        g = solve_clip_motion(depth, xy, vis, K)
        n_notstill += (~g.still).sum(); tr.append(np.linalg.norm(g.translation[-1]))
    print(f"jitter {noise}: not-still frames {n_notstill}/{20*(T_LEN-1)}, |t| last mean {np.mean(tr)*1000:.2f} mm max {np.max(tr)*1000:.2f}")
# 2: still camera, near rigid object moving sideways, fraction f of tracks
for frac in (0.1, 0.2, 0.3, 0.45):
    for speed in (0.5, 1.0, 2.0):  # px per frame
        n_notstill, tr = 0, []
        for seed in range(12):
            rng = np.random.default_rng(seed)
            depth, xy, vis, _ = make_clip(poses(0, [0, 0, 0]), noise_px=0.1, seed=seed)
            n = len(xy); side = int(np.sqrt(n))
            # a contiguous block of tracks (a person), nearer: set depth there 1.2 m
            idx = np.arange(n).reshape(side, side)
            cols = max(1, int(round(frac * side)))
            obj = np.zeros(n, bool); obj[idx[:, :cols].ravel()] = True
            g0 = xy[obj, 0].round().astype(int)
            depth = depth.copy()
            for x, y in g0: depth[max(0,y-6):y+7, max(0,x-6):x+7] = 1.2
            xy[obj] += np.arange(T_LEN)[None, :, None] * np.array([speed, 0.0])
            g = solve_clip_motion(depth, xy, vis, K)
            n_notstill += (~g.still).sum(); tr.append(np.linalg.norm(g.translation[-1]))
        print(f"object frac {frac} speed {speed}: not-still {n_notstill}/{12*(T_LEN-1)}, |t| last mean {np.mean(tr)*1000:.1f} mm max {np.max(tr)*1000:.1f}")
# ==== adv2.py ====
import sys; sys.path.insert(0, "/work/main")
import numpy as np, cv2
import test.test_pose_geometry as tp
from test.test_pose_geometry import K, T_LEN, H, W, poses
from fourds_ros.perception.pose_geometry import solve_clip_motion
ys, xs = np.mgrid[0:H, 0:W].astype(float)
def scene(far_m, horizon=0.6):
    return np.where(ys < horizon * H, far_m + 2 * np.sin(xs / 7), 3.0 - 1.5 * (ys - horizon * H) / ((1-horizon) * H)).astype(np.float32)
# far background still camera, near object (person) moving sideways
for far in (10.0, 25.0):
    for zobj in (2.0, 4.0):
        for speed in (0.5, 1.0, 2.0):
            nn, tr = 0, []
            for seed in range(10):
                d = scene(far, 1.0)  # no floor: all far
                tp.depth_map = lambda d=d: d
                depth, xy, vis, _ = tp.make_clip(poses(0, [0, 0, 0]), noise_px=0.1, seed=seed)
                n = len(xy); side = int(np.sqrt(n)); idx = np.arange(n).reshape(side, side)
                obj = np.zeros(n, bool); obj[idx[2:9, 3:6].ravel()] = True  # 21 tracks, a person
                depth = depth.copy()
                for x, y in xy[obj, 0].round().astype(int): depth[max(0,y-6):y+7, max(0,x-6):x+7] = zobj
                xy[obj] += np.arange(T_LEN)[None, :, None] * np.array([speed, 0.0])
                g = solve_clip_motion(depth, xy, vis, K)
                nn += (~g.still).sum(); tr.append(np.linalg.norm(g.translation[-1]))
            print(f"person far {far} z {zobj} speed {speed}: not-still {nn}/70 |t| mean {np.mean(tr)*1000:.1f} mm")
# forward drives
for far in (10.0, 25.0, 40.0):
    for v in (0.01, 0.017, 0.03):
        d = scene(far); tp.depth_map = lambda d=d: d
        truth = poses(0.0, [0.0, 0.0, v])
        errs, nn = [], 0
        for seed in range(5):
            depth, xy, vis, _ = tp.make_clip(truth, noise_px=0.1, seed=seed)
            g = solve_clip_motion(depth, xy, vis, K)
            nn += g.still[1:].sum(); errs.append(np.linalg.norm(g.translation[-1] - truth[-1][:3, 3]) / np.linalg.norm(truth[-1][:3, 3]))
        print(f"forward far {far} v {v}: still {nn}/35 rel err last {np.mean(errs):.2f}")
# ==== adv3.py ====
import sys; sys.path.insert(0, "/work/main")
import numpy as np, cv2
import test.test_pose_geometry as tp
from test.test_pose_geometry import K, T_LEN, H, W, poses
from fourds_ros.perception.pose_geometry import solve_clip_motion
ys, xs = np.mgrid[0:H, 0:W].astype(float)
def scene(far_m, horizon=0.6):
    return np.where(ys < horizon * H, far_m + 2 * np.sin(xs / 7), 3.0 - 1.5 * (ys - horizon * H) / ((1-horizon) * H + 1e-9)).astype(np.float32)
for horizon in (0.6, 0.8):
  for far in (10.0, 25.0):
    for zobj in (2.0, 4.0):
        for speed in (0.5, 1.0):
            nn, tr = 0, []
            for seed in range(10):
                d = scene(far, horizon)
                tp.depth_map = lambda d=d: d
                depth, xy, vis, _ = tp.make_clip(poses(0, [0, 0, 0]), noise_px=0.1, seed=seed)
                n = len(xy); side = int(np.sqrt(n)); idx = np.arange(n).reshape(side, side)
                obj = np.zeros(n, bool); obj[idx[1:7, 3:6].ravel()] = True  # 18 tracks, a person above the floor
                depth = depth.copy()
                for x, y in xy[obj, 0].round().astype(int): depth[max(0,y-6):y+7, max(0,x-6):x+7] = zobj
                xy[obj] += np.arange(T_LEN)[None, :, None] * np.array([speed, 0.0])
                g = solve_clip_motion(depth, xy, vis, K)
                nn += (~g.still).sum(); tr.append(np.linalg.norm(g.translation[-1]))
            print(f"floor to {horizon} person far {far} z {zobj} speed {speed}: not-still {nn}/70 |t| mean {np.mean(tr)*1000:.1f} mm")
# ==== adv4.py ====
import sys; sys.path.insert(0, "/work/main")
import numpy as np, cv2
import test.test_pose_geometry as tp
from test.test_pose_geometry import K, T_LEN, H, W, poses
from fourds_ros.perception.pose_geometry import solve_clip_motion, back_project
ys, xs = np.mgrid[0:H, 0:W].astype(float)
for far in (10.0, 25.0):
  for zobj in (2.0, 4.0):
    for v in (0.01, 0.033):
      for cols in ((3, 6), (4, 9)):
        tr, nn = [], 0
        for seed in range(10):
            d = (far + 2 * np.sin(xs / 7)).astype(np.float32); tp.depth_map = lambda d=d: d
            depth, xy, vis, _ = tp.make_clip(poses(0, [0, 0, 0]), noise_px=0.1, seed=seed)
            n = len(xy); side = int(np.sqrt(n)); idx = np.arange(n).reshape(side, side)
            obj = np.zeros(n, bool); obj[idx[2:10, cols[0]:cols[1]].ravel()] = True
            depth = depth.copy()
            for x, y in xy[obj, 0].round().astype(int): depth[max(0,y-6):y+7, max(0,x-6):x+7] = zobj
            p0 = back_project(depth, xy[obj, 0], K)
            for t in range(1, T_LEN):
                p = p0 - [0, 0, v * t]; uv = (K @ p.T).T
                xy[obj, t] = uv[:, :2] / uv[:, 2:3] + np.random.default_rng(seed + 50 * t).normal(0, 0.1, (obj.sum(), 2))
            g = solve_clip_motion(depth, xy, vis, K)
            nn += (~g.still).sum(); tr.append(np.linalg.norm(g.translation[-1]))
        print(f"approach far {far} z {zobj} v {v} cols {cols}: not-still {nn}/70 |t| mean {np.mean(tr)*1000:.1f} mm")
