"""A clip's translation direction from its first and last frames' epipolar geometry
(fourds_ros/perception/epipolar.py), and its use in the pipeline's pose."""

import cv2
import numpy as np
import pytest

from fourds_ros.perception.epipolar import (MIN_INLIERS, essential_motion, follow_corners,
                                            turn_translations)

from .conftest import SHARED_DATA, require

K = np.array([[525.0, 0, 320], [0, 525.0, 240], [0, 0, 1]])


def views(rotvec, centre, n=200, seed=0, noise_px=0.2, depth=(1.0, 4.0)):
    """n points `depth` m in front of camera 0 seen by camera 0 and by a camera at `centre` (camera 0
    frame) turned by `rotvec` (first_from_last): (x0, x1) camera pixels with noise."""
    rng = np.random.default_rng(seed)
    pts = np.c_[rng.uniform(-1.5, 1.5, (n, 2)), rng.uniform(*depth, n)]
    r = cv2.Rodrigues(np.asarray(rotvec, float))[0]  # first_from_last
    in_last = (pts - centre) @ r  # r^T (p - c) for every row
    def project(p):
        x = p @ K.T
        return x[:, :2] / x[:, 2:] + rng.normal(0, noise_px, (len(p), 2))
    return project(pts), project(in_last)


@pytest.mark.parametrize("rotvec, centre", [
    ([0.0, 0.25, 0.0], [0.04, 0.0, 0.0]),     # turning 14 degrees while moving 4 cm sideways
    ([0.05, -0.1, 0.02], [0.0, 0.05, 0.3]),   # walking forward 30 cm
])
def test_the_direction_of_a_known_motion_is_recovered(rotvec, centre):
    x0, x1 = views(rotvec, np.array(centre))
    motion = essential_motion(x0, x1, K)
    truth = np.array(centre) / np.linalg.norm(centre)
    assert np.degrees(np.arccos(np.clip(motion.direction @ truth, -1, 1))) < 5.0
    assert np.degrees(np.linalg.norm(cv2.Rodrigues(motion.rotation)[0].ravel() - rotvec)) < 0.5
    assert MIN_INLIERS <= motion.inliers <= len(x0) and motion.parallax_px >= 1.0


def test_a_camera_that_only_turns_or_sees_too_little_gives_no_direction():
    assert essential_motion(*views([0.0, 0.25, 0.0], np.zeros(3)), K) is None  # no parallax: noise
    assert essential_motion(*views([0.0, 0.25, 0.0], np.array([0.04, 0, 0]), n=MIN_INLIERS - 1), K) is None
    # 2 cm against points 3-4 m away: every point is more than 50 baselines off, where
    # cv2.recoverPose counts none (its distanceThresh), so the direction is not measured
    assert essential_motion(*views([0.0, 0.25, 0.0], np.array([0.02, 0, 0]), depth=(3.0, 4.0)), K) is None


def test_turn_translations_points_the_last_frame_and_keeps_every_size():
    rng = np.random.default_rng(1)
    translation = np.cumsum(rng.normal(0, 0.01, (8, 3)), axis=0)
    translation[0] = 0.0
    for direction in (np.array([0.0, 0.0, 1.0]), -translation[-1] / np.linalg.norm(translation[-1])):
        turned = turn_translations(translation, direction)
        np.testing.assert_allclose(turned[-1] / np.linalg.norm(turned[-1]), direction, atol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(turned, axis=1), np.linalg.norm(translation, axis=1), atol=1e-12)
        # one rotation for the whole clip: the angles between frames' translations stay
        np.testing.assert_allclose(turned[1:] @ turned[-1], translation[1:] @ translation[-1], atol=1e-12)
    assert np.array_equal(turn_translations(np.zeros((8, 3)), np.array([0, 0, 1.0])), np.zeros((8, 3)))


def test_corners_are_followed_through_real_frames_and_kept_off_a_mask():
    """A real TUM frame shifted 2 px a frame: every followed corner moved 14 px over 8 frames, and
    none starts inside the masked half."""
    root = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    gray = cv2.cvtColor(cv2.imread(str(sorted((root / "rgb").glob("*.jpg"))[10])), cv2.COLOR_BGR2GRAY)
    frames = [cv2.warpAffine(gray, np.float32([[1, 0, 2 * t], [0, 1, 0]]), (640, 480)).astype(np.float32)
              for t in range(8)]
    keep = np.zeros((480, 640), bool)
    keep[40:440, 40:320] = True  # left half only, away from the borders the shift uncovers
    x0, x1 = follow_corners(frames, 300, keep, stride=1)
    assert len(x0) > 50 and (x0[:, 0] < 320).all()
    np.testing.assert_allclose(np.median(x1 - x0, axis=0), [14.0, 0.0], atol=0.1)
    # over every second frame (0, 2, 4, 6 and the last, 7; the default): the same 14 px
    y0, y1 = follow_corners(frames, 300, keep)
    assert len(y0) > 50
    np.testing.assert_allclose(np.median(y1 - y0, axis=0), [14.0, 0.0], atol=0.1)
    # a stride past the clip's length follows from the first frame straight to the last
    z0, z1 = follow_corners(frames, 300, keep, stride=100)
    np.testing.assert_allclose(np.median(z1 - z0, axis=0), [14.0, 0.0], atol=0.1)
    with pytest.raises(ValueError, match="stride"):
        follow_corners(frames, 300, keep, stride=0)


def test_pipeline_takes_the_epipolar_direction_on_a_real_moving_camera(shipped_engine):
    """TUM fr1/rpy's first two clips (validation; the camera turns and moves about 2 cm a clip):
    with pose_epipolar_corners (the default, 200) the clips' translations are turned (counted on the
    status) and their sizes kept; with 0 the solver's own direction stands and nothing is counted."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_tum

    seq = read_tum(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    poses = {}
    for corners in (PerceptionSettings().pose.epipolar_corners, 0):
        assert corners == 200 or corners == 0
        settings = PerceptionSettings.from_params({"pose_epipolar_corners": corners})
        pipe = PerceptionPipeline(shipped_engine, settings)
        out = [r for i in range(15) for r in pipe.push(seq.rgb(i), i * 33_333_333, "cam", seq.intrinsics)]
        poses[corners] = np.array([r.pose.odom_from_camera[:3, 3] for r in out])
        used = pipe.status()["pose_epipolar_clips"]
        assert (1 <= used <= 2) if corners else used == 0
    # a node behind its camera (a newer clip waiting) skips the direction and counts it: the
    # solver's own poses, as with the direction off
    pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params({}))
    pipe.behind = lambda: True
    out = [r for i in range(15) for r in pipe.push(seq.rgb(i), i * 33_333_333, "cam", seq.intrinsics)]
    np.testing.assert_allclose([r.pose.odom_from_camera[:3, 3] for r in out], poses[0], atol=1e-9)
    assert pipe.status()["pose_epipolar_clips"] == 0 and pipe.status()["pose_epipolar_skipped"] >= 1

    sizes = [np.linalg.norm(np.diff(p, axis=0), axis=1) for p in poses.values()]
    assert not np.allclose(poses[200], poses[0], atol=1e-4)  # the direction changed
    np.testing.assert_allclose(sizes[0][:7], sizes[1][:7], rtol=1e-6)  # the first clip's steps keep their sizes


def test_an_essential_matrix_whose_rotation_disagrees_with_the_solver_is_refused():
    rotvec, centre = np.array([0.05, -0.1, 0.02]), np.array([0.0, 0.05, 0.3])
    x0, x1 = views(rotvec, centre)
    solver = cv2.Rodrigues(rotvec)[0]  # first_from_last, as the pose solver gives it
    assert essential_motion(x0, x1, K, solver) is not None
    assert essential_motion(x0, x1, K, cv2.Rodrigues(rotvec + [0.0, np.radians(8), 0.0])[0]) is not None
    # the wild solutions measured disagreed by 11.9-21 degrees (session 31)
    assert essential_motion(x0, x1, K, cv2.Rodrigues(rotvec + [0.0, np.radians(12), 0.0])[0]) is None


def test_clip_images_make_grays_only_for_the_frames_followed():
    """follow_corners reads every second frame of a clip (and the last): ClipImages, passed as the
    sequence of grays, converts only those."""
    from fourds_ros.perception.tracks import ClipImages

    root = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    rgb = cv2.cvtColor(cv2.imread(str(sorted((root / "rgb").glob("*.jpg"))[10])), cv2.COLOR_BGR2RGB)
    frames = [np.ascontiguousarray(np.roll(rgb, 2 * t, axis=1)) for t in range(8)]
    images = ClipImages(frames)
    x0, x1 = follow_corners(images, 200)
    assert len(images) == 8 and sorted(images._gray) == [0, 2, 4, 6, 7]
    assert len(x0) > 50
    np.testing.assert_allclose(np.median(x1 - x0, axis=0), [14.0, 0.0], atol=0.1)


def test_the_two_views_decide_where_the_geometry_calls_a_clip_rotation_only(shipped_engine, monkeypatch):
    """TUM fr1/rpy (validation): the PnP geometry, reading the model's depth (2.5x off on this desk),
    calls some clips rotation-only although the camera moved 2-3 cm in each. The essential matrix's
    own parallax test decides there: at least one such clip takes its direction."""
    from fourds_ros.perception import pipeline as pipeline_module
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_tum

    seq = read_tum(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    flags = []
    solve = pipeline_module.clip_pose

    def recording(*args, **kwargs):
        out = solve(*args, **kwargs)
        flags.append(out[3] is not None and bool(out[3].rotation_only[-1]) and not out[3].still[-1])
        return out

    monkeypatch.setattr(pipeline_module, "clip_pose", recording)
    pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params({}))
    taken = []
    for i in range(1, 80):  # start 1: clips 5 and 6 are called rotation-only (docs/results/session31)
        before = pipe.status()["pose_epipolar_clips"]
        if pipe.push(seq.rgb(i), i * 33_333_333, "cam", seq.intrinsics):
            taken.append(pipe.status()["pose_epipolar_clips"] > before)
    assert len(taken) == len(flags) and any(flags)
    assert any(t and f for t, f in zip(taken, flags))


def test_a_camera_that_only_turns_takes_no_direction_in_the_pipeline(shipped_engine):
    """A robot spinning in place: a real TUM image turned 1 degree a frame about the camera's
    vertical axis (a pure rotation is the homography K R K^-1). Whatever the PnP geometry makes of
    the model's depth, the two views' own tests refuse every clip (with no baseline, cv2.recoverPose
    finds no point within 50 baselines, and no parallax is left): no direction is taken."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_tum

    seq = read_tum(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    first, k = seq.rgb(10), np.asarray(seq.intrinsics, float)
    pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params({}))
    out = []
    for i in range(22):
        turn = k @ cv2.Rodrigues(np.array([0.0, np.radians(i), 0.0]))[0] @ np.linalg.inv(k)
        frame = cv2.warpPerspective(first, turn, (first.shape[1], first.shape[0]))
        out += pipe.push(frame, i * 33_333_333, "cam", seq.intrinsics)
    assert len(out) >= 15 and pipe.status()["pose_epipolar_clips"] == 0
