"""Chain the pose head's per-clip relative motion into a trajectory.

The pose head gives T_first_from_t for every frame t of a clip (camera optical frames). Clips
overlap, so the frames a new clip shares with earlier ones already have poses: the clip is
aligned to them (each shared frame k proposes T_odom_from_cam(first) = T_odom_from_cam(k) @
T_first_from_k^-1; the proposals are averaged) and its new frames are T_odom_from_cam(first) @
T_first_from_t. When no frame is shared (a clip was dropped under overload, or hop == clip
length) the chain continues from the newest known pose, i.e. it assumes no motion over the gap, with
the covariance of as many unseen frames (pose_geometry.UNSEEN_VARIANCE) as the gap lasted, and
counts it in `gaps`. Frames a clip held (measured False: they or its first frame were blind) anchor
no clip, that one or a later one, where a frame that both measured is shared.

The odom frame is the base frame at the first frame (REP-105 style): with the camera mounted as
base_from_camera (4x4), odom_from_camera = B @ chain and odom_from_base = B @ chain @ B^-1. A new
mount (TF's, up to camera_mount_timeout_s after the first frames, or another camera's) re-expresses
the stored chain so that the last base pose stays where it was published and later motion is read
with the new mount: REP-105 wants odom continuous, and B @ chain @ B^-1 with the old chain moved the
whole past trajectory (0.42 m in one frame for a camera 0.3 m ahead of the base, pitched 20 degrees).
The twist is the SE(3) logarithm of the base's motion between two frames over their interval: the
chord between them gave a turning robot a sideways velocity v sin(w dt / 2).
Covariances (6x6, order x y z rx ry rz, as in ROS) accumulate the head's variances along the
chain, each at least the configured floor, and carry each pose's rotation uncertainty into the
position of every pose chained after it (`carried_covariance`): a heading error swings all later
translation steps, so position error grows with the distance travelled times the heading's sd.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import transforms3d.quaternions as quaternions

from .pose_geometry import LOG_VARIANCE_LIMITS, UNSEEN_VARIANCE

# REP-103: optical frame (x right, y down, z forward) inside a body frame (x forward, y left, z up).
OPTICAL_IN_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def transform_from_xyz_quat(values) -> np.ndarray:
    """[x, y, z, qx, qy, qz, qw] (ROS order) -> 4x4."""
    x, y, z, qx, qy, qz, qw = (float(v) for v in values)
    out = np.eye(4)
    out[:3, :3] = quaternions.quat2mat([qw, qx, qy, qz])  # transforms3d is w-first
    out[:3, 3] = (x, y, z)
    return out


def quat_xyzw(rotation: np.ndarray) -> np.ndarray:
    """3x3 -> quaternion (x, y, z, w), w >= 0."""
    w, x, y, z = quaternions.mat2quat(rotation)
    q = np.array([x, y, z, w])
    return -q if w < 0 else q


def default_base_from_camera() -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = OPTICAL_IN_BODY
    return out


def rotation_vector(rotation: np.ndarray) -> np.ndarray:
    """3x3 rotation -> its rotation vector (axis * angle, angle in [0, pi]), through the unit quaternion.
    Not transforms3d's mat2axangle: for rotations under about 1.5e-3 rad (a frame's turn at 30 Hz below
    2.6 deg/s: a robot driving straight) it takes an eigenvector of the wrong eigenvalue in about a
    quarter of cases, and the published angular twist was off by up to 0.5 rad/s on those frames."""
    q = quaternions.mat2quat(rotation)  # w, x, y, z
    q = -q if q[0] < 0 else q
    sine = float(np.linalg.norm(q[1:]))
    if sine < 1e-12:  # 2 * xyz to first order
        return 2 * q[1:]
    return q[1:] * (2 * np.arctan2(sine, q[0]) / sine)


def skew(v: np.ndarray) -> np.ndarray:
    """[v]x: skew(v) @ w == cross(v, w)."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def rotated_covariance(cov: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """6x6 covariance (ROS order) in the axes of a frame rotated by `rotation` (3x3) from its own:
    additive position and left rotation errors turn with the axes, the frame's origin aside."""
    rot = np.zeros((6, 6))
    rot[:3, :3] = rot[3:, 3:] = rotation
    return rot @ cov @ rot.T


def twist_and_jacobian(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4x4 motion -> its SE(3) logarithm (6,) as a ROS twist times dt (v then w, v = V(w)^-1 t: the
    constant body velocity that moves along the arc to delta), and the 6x6 first-order Jacobian of
    that logarithm for delta's errors in carried_covariance's convention (additive translation dt,
    left rotation dth: the SE(3) left perturbation is (dt + t x dth, dth), whose logarithm moves by
    J_l^-1 ~ I - ad(xi) / 2; steps between frames turn little, so the first order holds)."""
    w = rotation_vector(delta[:3, :3])
    theta, w_x = float(np.linalg.norm(w)), skew(w)
    # V(w)^-1 = I - W/2 + (1 - (theta/2) cot(theta/2)) / theta^2 W^2; the factor's series near 0 is
    # 1/12 + theta^2/720. Written out, not scipy's RigidTransform: ROS installs' python3-scipy
    # (Ubuntu 24.04: 1.11) predates it.
    factor = 1 / 12 + theta**2 / 720 if theta < 1e-3 else (1 - theta / 2 / np.tan(theta / 2)) / theta**2
    xi = np.concatenate([(np.eye(3) - w_x / 2 + factor * w_x @ w_x) @ delta[:3, 3], w])
    ad = np.zeros((6, 6))
    ad[:3, :3] = ad[3:, 3:] = skew(xi[3:])
    ad[:3, 3:] = skew(xi[:3])
    to_left = np.eye(6)
    to_left[:3, 3:] = skew(delta[:3, 3])
    return xi, (np.eye(6) - ad / 2) @ to_left


def carried_covariance(cov: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """6x6 covariance (ROS order) of a pose, carried to a point `displacement` (3,) away from it,
    both in the frame whose axes the errors are expressed in.

    Convention (the chain's, and what a ROS pose covariance means): errors in the parent frame's
    axes, position additive (p_true = p + dp) and rotation on the left (R_true = Exp(dth) R). The
    point p + d moves by dp + dth x d, so the position block gains [d]x Sigma_rot [d]x^T and the
    position-rotation cross terms; for T_new = T_prev @ T_step (d = R_prev t_step) this is the
    right-perturbation Ad(T_step^-1) Sigma Ad(T_step^-1)^T written in the parent frame's axes."""
    jac = np.eye(6)
    jac[:3, 3:] = -skew(np.asarray(displacement, float))
    return jac @ cov @ jac.T


def missed_steps(newest_stamp_ns: int, stamps_ns: list[int]) -> float:
    """The frame steps between the newest stored stamp and a clip's first frame that no clip measured:
    the gap's duration over the clip's frame interval (the median of its stamp steps), at least 1
    (consecutive frames that no clip shares still hide one step's motion)."""
    steps = np.diff(np.asarray(stamps_ns, np.int64))
    steps = steps[steps > 0]
    if not len(steps):  # no interval to measure the gap in
        return 1.0
    return max(1.0, float(int(stamps_ns[0]) - int(newest_stamp_ns)) / float(np.median(steps)))


def unseen_covariance(steps: float) -> np.ndarray:
    """6x6 (ROS order) of `steps` frames of motion no image showed: pose_geometry.UNSEEN_VARIANCE
    (rotation, translation) per frame, as hold_unseen gives a blind frame within a clip."""
    var_r, var_t = UNSEEN_VARIANCE
    return np.diag([var_t * steps] * 3 + [var_r * steps] * 3)


def orthonormalise(rotation: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(rotation)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


@dataclass
class PoseEstimate:
    """One frame's pose. odom_from_camera, odom_from_base: 4x4; covariance: 6x6 of the base pose;
    twist: (6,) vx vy vz wx wy wz in the base frame; twist_covariance: 6x6."""

    odom_from_camera: np.ndarray
    odom_from_base: np.ndarray
    covariance: np.ndarray
    twist: np.ndarray
    twist_covariance: np.ndarray


class OdometryChain:
    def __init__(self, base_from_camera: np.ndarray | None = None, rotation_var_floor: float = 1e-6,
                 translation_var_floor: float = 1e-6, history: int = 256, rotation_var_scale: float = 1.0,
                 translation_var_scale: float = 1.0):
        """*_var_scale: factors on each clip's variances before the floors, so that the published
        covariances match the errors measured (PoseSettings.rotation_var_scale); poses ignore them."""
        self.rotation_var_floor = rotation_var_floor
        self.translation_var_floor = translation_var_floor
        self.rotation_var_scale = rotation_var_scale
        self.translation_var_scale = translation_var_scale
        self.history = history
        # set_base_from_camera rewrites the stored chain: called from another thread than add_clip's (the
        # node's image thread did, before the pipeline applied mounts per clip), a pose written between
        # the two carried an offset, or the caller raised 'OrderedDict mutated during iteration'.
        self._lock = threading.RLock()
        # Clips dropped between chained ones, over the chain's life: a total on /diagnostics (pose_gaps), so not
        # zeroed by reset (a ~/reset or a bag loop made the count go back to 0).
        self.gaps = 0
        self.reset()
        self.set_base_from_camera(default_base_from_camera() if base_from_camera is None else base_from_camera)

    @classmethod
    def from_settings(cls, pose, base_from_camera: np.ndarray | None = None) -> OdometryChain:
        """The chain with PoseSettings `pose`'s variance floors and factors (the node's and the
        pose error budget's alike)."""
        return cls(base_from_camera, pose.rotation_var_floor, pose.translation_var_floor,
                   rotation_var_scale=pose.rotation_var_scale, translation_var_scale=pose.translation_var_scale)

    def published_variances(self, variance: np.ndarray) -> tuple[float, float]:
        """One frame's (rotation, translation) variance as the clip gives it -> as the chain adds it for
        that clip's motion: times the factors, at least the floors. (The published position block also
        carries the rotation variance of the poses before it: carried_covariance.)"""
        return (max(float(variance[0]) * self.rotation_var_scale, self.rotation_var_floor),
                max(float(variance[1]) * self.translation_var_scale, self.translation_var_floor))

    def set_base_from_camera(self, base_from_camera: np.ndarray) -> None:
        """The camera's mount (4x4); later estimates use it. The stored chain is moved by one rigid
        transform L (its relative motions, which later clips are aligned on, unchanged) so that the
        newest pose's base stays where it was published: B_new @ L @ chain @ B_new^-1 = B @ chain @ B^-1."""
        with self._lock:
            self._set_mount(np.asarray(base_from_camera, float))

    def _set_mount(self, new: np.ndarray) -> None:
        if self.poses:
            newest = next(reversed(self.poses.values()))[1]
            published = self.base_from_camera @ newest @ self.camera_from_base
            move = np.linalg.inv(new) @ published @ new @ np.linalg.inv(newest)
            # the variance sums are isotropic per block, the same in any axes: only the covariances turn
            turn = new[:3, :3].T @ self.base_from_camera[:3, :3]  # camera0's axes -> the new camera0's

            def moved_cov(chain, cov):  # the errors stay in odom; the camera moved by its new mount
                shift = (new @ move @ chain)[:3, 3] - (self.base_from_camera @ chain)[:3, 3]
                return carried_covariance(rotated_covariance(cov, turn), new[:3, :3].T @ shift)
            self.poses = OrderedDict((index, (stamp, move @ chain, moved_cov(chain, cov), var_sum))
                                     for index, (stamp, chain, cov, var_sum) in self.poses.items())
        self.base_from_camera = new
        self.camera_from_base = np.linalg.inv(new)

    def reset(self) -> None:
        # frame index -> (stamp_ns, chain 4x4 camera0_from_camera, 6x6 covariance in camera0's axes,
        # 6x6 sum of the clips' variances alone). The sum is kept for the twist: the motion between two
        # frames does not depend on the heading, which swings only where that motion takes the pose.
        with self._lock:
            self.poses: OrderedDict[int, tuple[int, np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
            self.held: set[int] = set()  # the stored frames whose motion their clip did not measure (held)

    def add_clip(self, indices: list[int], stamps_ns: list[int], rotation: np.ndarray,
                 translation: np.ndarray, log_variance: np.ndarray, output_t: list[int],
                 measured: np.ndarray | None = None) -> list[PoseEstimate]:
        """rotation (T, 3, 3), translation (T, 3), log_variance (T, 2) from the pose head for the
        clip frames `indices`; returns estimates for the frames at positions output_t.
        measured: (T,) bool, the frames whose motion from the clip's first frame the clip measured
        (False: held, pose_geometry.hold_unseen); None: all of them."""
        with self._lock:
            return self._add_clip(indices, stamps_ns, rotation, translation, log_variance, output_t, measured)

    def _add_clip(self, indices, stamps_ns, rotation, translation, log_variance, output_t,
                  measured=None) -> list[PoseEstimate]:
        def first_from(t: int) -> np.ndarray:  # the head's T_first_from_t
            out = np.eye(4)
            out[:3, :3] = orthonormalise(rotation[t])
            out[:3, 3] = translation[t]
            return out

        # Align the clip to the trajectory on the frames it shares with it: each shared frame k
        # gives an anchor pose(k) @ T_first_from_k^-1; their mean (chordal for the rotation)
        # is the clip's first frame. Anchoring at the first frame alone put the head's
        # whole-clip error on the seam between clips (one 43-degree step on the HoloLens sample).
        known = [t for t in range(min(output_t, default=0)) if indices[t] in self.poses]
        across_gap = False  # the clip shares no frame with the trajectory: its first step's motion is not known
        if known:
            used = self._anchor_frames(indices, known, measured)
            anchors = [self.poses[indices[k]][1] @ np.linalg.inv(first_from(k)) for k in used]
            anchor = np.eye(4)
            anchor[:3, :3] = orthonormalise(np.mean([a[:3, :3] for a in anchors], axis=0))
            anchor[:3, 3] = np.mean([a[:3, 3] for a in anchors], axis=0)
            # the covariance is carried from the first anchor frame's pose, whose variances the clip's add to
            _, from_pose, anchor_cov, anchor_sum = self.poses[indices[used[0]]]
        elif self.poses:
            self.gaps += 1
            stamp, anchor, anchor_cov, anchor_sum = next(reversed(self.poses.values()))
            # The motion over the gap was not seen: the newest pose's covariance grows as over that many
            # unseen frames (a 3 s stall grew the position sd 0.0067 -> 0.0095 m without this).
            unseen = unseen_covariance(missed_steps(stamp, stamps_ns))
            anchor_cov, anchor_sum = anchor_cov + unseen, anchor_sum + unseen
            from_pose, across_gap = anchor, True
        else:
            anchor, anchor_cov, anchor_sum = np.eye(4), np.zeros((6, 6)), np.zeros((6, 6))
            from_pose = anchor
        variance = np.exp(np.clip(log_variance, *LOG_VARIANCE_LIMITS))
        out = []
        for t in output_t:
            if indices[t] in self.poses:  # already published by an earlier clip: keep it
                _, chain, cov, var_sum = self.poses[indices[t]]
            else:
                chain = anchor @ first_from(t)
                var_r, var_t = self.published_variances(variance[t])
                # isotropic per block, so the same in any frame's axes
                clip_var = np.diag([var_t] * 3 + [var_r] * 3)
                cov = carried_covariance(anchor_cov, chain[:3, 3] - from_pose[:3, 3]) + clip_var
                var_sum = anchor_sum + clip_var
            previous = next(reversed(self.poses.items()), None) if self.poses and not across_gap else None
            across_gap = False  # the twist across the gap is unknown, not zero; from the next frame on it is measured
            if indices[t] not in self.poses and measured is not None and not measured[t]:
                self.held.add(indices[t])
            self.poses[indices[t]] = (stamps_ns[t], chain, cov, var_sum)
            while len(self.poses) > self.history:
                self.held.discard(self.poses.popitem(last=False)[0])
            out.append(self._estimate(chain, cov, var_sum, previous, stamps_ns[t], indices[t]))
        return out

    def _anchor_frames(self, indices, known: list[int], measured) -> list[int]:
        """The shared clip frames (positions in `known`) the clip is aligned on: those whose motion both
        the clip and the trajectory measured. A held frame is no motion, not the camera's: held in the
        clip (its first frame blind at hop 2) it pulled the clip 0.25 m back to where the camera had
        been; held in the trajectory it pulled the next clip 0.05-0.18 m short, with the covariance of
        the measured frames (sd 0.01 m). Without such a frame the newest shared one alone holds the clip
        at the newest pose, as the one shared frame of the default hop does."""
        return [k for k in known if (measured is None or measured[k]) and indices[k] not in self.held] or known[-1:]

    def _estimate(self, chain, cov, var_sum, previous, stamp_ns, index) -> PoseEstimate:
        b, b_inv = self.base_from_camera, self.camera_from_base
        twist, twist_cov = np.zeros(6), np.diag([1e3] * 6)  # unknown until two frames
        if previous is not None and previous[0] != index and stamp_ns > previous[1][0]:
            prev_stamp, prev_chain, _, prev_sum = previous[1]
            dt = (stamp_ns - prev_stamp) * 1e-9
            # The base's own motion in the base frame (REP-105's twist in child_frame_id): the camera's
            # motion seen from the base, b @ delta @ b^-1, which for a camera mounted off the base's
            # origin includes the lever arm of a turn (rotating the camera's velocity alone gave a
            # turning robot a sideways velocity).
            step = np.linalg.inv(prev_chain) @ chain
            delta = b @ step @ b_inv
            twist, log_jacobian = twist_and_jacobian(delta)
            twist = twist / dt
            # The step's rotation uncertainty swings the base's origin (at step_R @ c from the camera,
            # c the base in the camera's frame) as the pose's does: without it a camera 0.3 m ahead of
            # the base published a linear twist variance up to 4.5x too small, and the twist is what
            # the EKF config fuses. (The clips' variances are isotropic: the same in any axes.)
            step_var = np.abs(var_sum - prev_sum) + np.diag([self.translation_var_floor] * 3 + [self.rotation_var_floor] * 3)
            delta_cov = rotated_covariance(carried_covariance(step_var, step[:3, :3] @ b_inv[:3, 3]), b[:3, :3])
            twist_cov = log_jacobian @ delta_cov @ log_jacobian.T / dt**2
        # The base's origin sits at the lever arm chain_R @ camera_from_base_t from the camera: the
        # camera's rotation uncertainty swings it too (nothing for a mount at the base's origin).
        base_cov = carried_covariance(cov, chain[:3, :3] @ b_inv[:3, 3])
        return PoseEstimate(b @ chain, b @ chain @ b_inv, rotated_covariance(base_cov, b[:3, :3]), twist, twist_cov)
