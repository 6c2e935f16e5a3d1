"""Frames a slow camera's clip loses from its first frame, solved from the frame before them
(pose_geometry.relink_lost_frames, the pipeline's pose_relink_corners), on real frames."""

import cv2
import numpy as np

from .conftest import SHARED_DATA, require

STRIDE = 3  # every 3rd frame of a 30 Hz recording: a 10 Hz camera
PERIOD_NS = 33_333_333


def summed_turn_deg(rotations: list[np.ndarray]) -> float:
    return float(sum(np.degrees(np.linalg.norm(cv2.Rodrigues(a.T @ b)[0])) for a, b in zip(rotations, rotations[1:])))


def test_a_slow_camera_turns_as_far_as_it_did_with_relinked_frames(shipped_engine):
    """TUM fr1/rpy (validation) at 10 Hz, two clips: the tracks of each clip's first frame are gone
    before its last frames (4 of 4 clips at this rate, docs/results/session35). With
    pose_relink_corners those frames are solved from the frame before (counted on the status) and
    the odometry turns about as far as the camera did; without, they take the pose head's turn,
    which falls short. A node behind its camera skips the relinking (counted): the poses without it."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_tum

    seq = read_tum(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    frames = range(0, 15 * STRIDE, STRIDE)
    assert PerceptionSettings().pose.relink_corners == 200
    ratio, status, poses = {}, {}, {}
    for run, corners in (("relinked", 200), ("off", 0), ("behind", 200)):
        pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params({"pose_relink_corners": corners}))
        pipe.behind = (lambda: True) if run == "behind" else None
        out = [r for i in frames for r in pipe.push(seq.rgb(i), i * PERIOD_NS, "cam", seq.intrinsics)]
        seen = [round(r.stamp_ns / PERIOD_NS) for r in out]
        truth = summed_turn_deg([seq.camera_to_world[i][:3, :3] for i in seen])
        poses[run] = np.array([r.pose.odom_from_camera for r in out])
        ratio[run] = summed_turn_deg(list(poses[run][:, :3, :3])) / truth
        status[run] = pipe.status()
    assert status["off"]["pose_relinked"] == 0 and status["relinked"]["pose_relinked"] >= 2
    assert status["behind"]["pose_relinked"] == 0 and status["behind"]["pose_relink_skipped"] >= 2
    assert abs(ratio["relinked"] - 1) < 0.25, ratio
    assert abs(ratio["relinked"] - 1) < abs(ratio["off"] - 1) - 0.1, ratio
    # behind, the epipolar direction is skipped too; the rotations are those without relinking
    np.testing.assert_allclose(poses["behind"][:, :3, :3], poses["off"][:, :3, :3], atol=1e-6)
