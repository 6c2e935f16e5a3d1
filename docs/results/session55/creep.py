"""Creep scratch: a camera moving forward (or sideways) at v m/s, 30 Hz, clips of 8 at hop 7 (the node's default?),
chained through OdometryChain.from_settings(PoseSettings()). Prints distance read and the twist's z-score."""
import sys
import numpy as np
sys.path.insert(0, "/work/main")
import test.test_pose_geometry as tp
from fourds_ros.perception.pose_geometry import clip_pose
from fourds_ros.perception.odometry import OdometryChain
from fourds_ros.perception.settings import PoseSettings

def run(v, axis, far=None, hop=7, noise=0.2, head_sd=0.01, head_err=0.003, n=60):
    if far is not None:
        tp.depth_map = lambda: tp.far_view(far, 0.6)
    else:
        tp.depth_map = DEPTH
    dt = 1 / 30
    step = np.zeros(3); step[axis] = v * dt
    truth = tp.poses(0.0, step)
    chain = OdometryChain.from_settings(PoseSettings(), base_from_camera=np.eye(4))
    xs, z, stills = [], [], 0
    for c, start in enumerate(range(0, n, hop)):
        depth, xy, vis, _ = tp.make_clip(truth, noise_px=noise, seed=c)
        head_t = np.stack([p[:3, 3] for p in truth])
        head_t[1:] += np.random.default_rng(1000 + c).normal(0, head_err, (tp.T_LEN - 1, 3))
        outputs = {"depth": depth[None, None].repeat(tp.T_LEN, 1), "track_xy": xy[None],
                   "track_visibility": vis[None].astype(np.float32),
                   "pose_rotation": np.stack([p[:3, :3] for p in truth])[None], "pose_translation": head_t[None],
                   "pose_log_variance": np.tile(2 * np.log([0.01, head_sd]), (tp.T_LEN, 1))[None]}
        stamps = [round((start + i) * dt * 1e9) for i in range(tp.T_LEN)]
        rotation, translation, log_var, geo = clip_pose(outputs, tp.K, mode="fused", smoothing_order=2,
                                                        stamps_ns=np.array(stamps))
        stills += int(geo.still[-1])
        out_t = list(range(tp.T_LEN)) if c == 0 else list(range(tp.T_LEN - hop, tp.T_LEN))
        for e in chain.add_clip(list(range(start, start + tp.T_LEN)), stamps, rotation, translation, log_var, out_t):
            xs.append(e.odom_from_base[axis, 3])
            if np.isfinite(e.twist_covariance[axis, axis]) and e.twist_covariance[axis, axis] < 1e2:
                z.append((e.twist[axis] - v) / np.sqrt(e.twist_covariance[axis, axis]))
    z = np.array(z)
    travel = v * dt * (len(xs) - 1)
    print(f"v={v:.3f} axis={axis} far={far} read {xs[-1]:.4f} of {travel:.4f} m; still clips {stills}/{c+1}; "
          f"twist z: median {np.median(np.abs(z)):.1f}, mean z^2 {np.mean(z**2):.1f}")

DEPTH = tp.depth_map
for far in (None, 10.0):
    for v in (0.02, 0.05, 0.09, 0.15, 0.3):
        for axis in (0, 2):
            run(v, axis, far)
