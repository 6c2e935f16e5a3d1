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


def test_the_relinked_steps_and_the_epipolar_direction_detect_a_frames_corners_once(shipped_engine, monkeypatch):
    """Each relinked step seeds corners on its frame t - 1, and the epipolar direction on every second frame, with
    the same count and mask: a clip detects each frame's corners once (tracks.ClipImages.corners), 8-12 ms a
    640x480 frame on the 2-core CPU, and its outputs are bit for bit those of passes that detect their own.
    TUM fr1/rpy at 10 Hz, where frames are relinked (above)."""
    import fourds_ros.perception.epipolar as epipolar
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.perception.tracks import ClipImages
    from fourds_ros.rgbd import read_tum

    seq = read_tum(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    detect, detected = epipolar._seed_corners, []
    monkeypatch.setattr(epipolar, "_seed_corners", lambda gray, *a: detected.append(id(gray)) or detect(gray, *a))

    def run() -> tuple[list[int], list, int]:
        """-> (repeated detections in each clip, the results, frames relinked)."""
        pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params({}))
        repeats, out = [], []
        for i in range(0, 15 * STRIDE, STRIDE):
            detected.clear()
            results = pipe.push(seq.rgb(i), i * PERIOD_NS, "cam", seq.intrinsics)
            repeats += [len(detected) - len(set(detected))] if results else []
            out += results
        return repeats, out, pipe.status()["pose_relinked"]

    shared, shared_out, relinked = run()
    monkeypatch.setattr(ClipImages, "corners", lambda self, count: {})  # each pass detects its own
    own, own_out, _ = run()
    assert relinked >= 2 and len(shared) == 2
    assert shared == [0, 0] and sum(own) >= 1, (shared, own)
    for a, b in zip(shared_out, own_out):
        np.testing.assert_array_equal(a.pose.odom_from_camera, b.pose.odom_from_camera)
        np.testing.assert_array_equal(a.pose.covariance, b.pose.covariance)
        np.testing.assert_array_equal(a.tracks.u, b.tracks.u)
