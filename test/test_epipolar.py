"""A clip's translation direction from its first and last frames' epipolar geometry
(fourds_ros/perception/epipolar.py), and its use in the pipeline's pose."""

import cv2
import numpy as np
import pytest

from fourds_ros.perception.epipolar import (MIN_INLIERS, essential_motion, follow_corner_steps, follow_corners,
                                            rotation_guess, step_motions, stepwise_direction, turn_onto,
                                            turn_translations)

from .conftest import SHARED_DATA, require
from .test_pose_geometry import angle_deg

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
    assert len(images) == 8 and sorted(images._gray8) == [0, 2, 4, 6, 7] and not images._gray  # no float grays
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


def _clip_motion(turn_per_frame, step_per_frame, frames=8):
    """first_from_t rotations (T, 3, 3) and translations (T, 3) of a camera turning by
    `turn_per_frame` (rotation vector) and moving `step_per_frame` (in its own axes) each frame."""
    rotation, translation = [np.eye(3)], [np.zeros(3)]
    step_turn = cv2.Rodrigues(np.asarray(turn_per_frame, float))[0]
    for _ in range(1, frames):
        translation.append(translation[-1] + rotation[-1] @ np.asarray(step_per_frame, float))
        rotation.append(rotation[-1] @ step_turn)
    return np.array(rotation), np.array(translation)


def _steps_of(rotation, translation, followed=(0, 2, 4, 6, 7), n=200, seed=0, noise_px=0.2):
    """CornerSteps.steps of a synthetic clip: the same points seen in each followed pair of frames."""
    rng = np.random.default_rng(seed)
    pts = np.c_[rng.uniform(-1.5, 1.5, (n, 2)), rng.uniform(1.0, 4.0, n)]  # in frame 0

    def project(t):
        p = (pts - translation[t]) @ rotation[t]  # R_t^T (p - c_t) for every row
        x = p @ K.T
        return x[:, :2] / x[:, 2:] + rng.normal(0, noise_px, (n, 2))
    return [(a, b, project(a), project(b)) for a, b in zip(followed[:-1], followed[1:])]


def test_stepwise_direction_recovers_a_walk_that_the_solver_got_wrong():
    """A camera walking forward while turning (axes change every frame): the solver's rotations
    right, its translations pointing 40 degrees off with the right sizes. The sum of the steps'
    essential matrices points the clip where it went; the sizes come from the solver."""
    rotation, translation = _clip_motion([0.0, 0.03, 0.01], [0.0, 0.0, 0.05])
    wrong = translation @ cv2.Rodrigues(np.array([0.0, np.radians(40), 0.0]))[0].T
    steps = _steps_of(rotation, translation)
    direction = stepwise_direction(steps, step_motions(steps, K, rotation), rotation, wrong)
    truth = translation[-1] / np.linalg.norm(translation[-1])
    assert np.degrees(np.arccos(np.clip(direction @ truth, -1, 1))) < 3.0
    turned = turn_translations(wrong, direction)
    assert np.degrees(np.arccos(np.clip(turned[-1] @ truth / np.linalg.norm(turned[-1]), -1, 1))) < 3.0


def test_stepwise_direction_needs_half_of_the_steps_measured():
    """A camera that only turns measures no step's direction: no direction, whatever the solver
    says; a walk of which only one step of four has parallax is not enough either."""
    rotation, translation = _clip_motion([0.0, 0.03, 0.0], [0.0, 0.0, 0.0])
    solved = np.cumsum(np.tile([0.0, 0.0, 0.01], (8, 1)), axis=0) - [0.0, 0.0, 0.01]
    steps = _steps_of(rotation, translation)
    assert stepwise_direction(steps, step_motions(steps, K, rotation), rotation, solved) is None
    moving = translation.copy()
    moving[7:] += [0.0, 0.0, 0.05]  # only the last step (6 -> 7) moves
    steps = _steps_of(rotation, moving)
    assert stepwise_direction(steps, step_motions(steps, K, rotation), rotation, solved) is None
    assert stepwise_direction([], [], rotation, solved) is None


def test_turn_onto_takes_one_direction_onto_another():
    rng = np.random.default_rng(4)
    for a, b in [rng.normal(size=(2, 3)), (np.array([0.0, 0, 1]), np.array([0.0, 0, -2])),
                 (np.array([1.0, 0, 0]), np.array([3.0, 0, 0]))]:
        turn = turn_onto(a, b)
        np.testing.assert_allclose(turn @ turn.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(turn) == pytest.approx(1.0)
        np.testing.assert_allclose(turn @ a / np.linalg.norm(a), b / np.linalg.norm(b), atol=1e-9)
    assert np.array_equal(turn_onto(np.zeros(3), np.array([0.0, 0, 1])), np.eye(3))


def test_a_clip_whose_lasting_corners_measure_no_direction_is_held_in_place(shipped_engine):
    """pose_epipolar_hold_unmeasured (the default). TUM fr1/rpy from its frame 1 (validation; the camera turns
    fast): the first clip's corners last it, and no essential matrix measures its direction, in
    the plain pass, the guided pass or the steps. Held: its frames keep the first frame's position
    (counted), their rotations stay as solved; off, the solver's translation stands. The second clip
    measures its direction and is the same either way, apart from where it starts."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_tum

    assert PerceptionSettings().pose.epipolar_hold_unmeasured is True
    tum = read_tum(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    poses, status = {}, {}
    for hold in (True, False):
        pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params({"pose_epipolar_hold_unmeasured": hold}))
        out = [r for i in range(1, 16) for r in pipe.push(tum.rgb(i), i * 33_333_333, "cam", tum.intrinsics)]
        poses[hold] = np.array([r.pose.odom_from_camera for r in out])
        status[hold] = pipe.status()
    assert len(poses[True]) == 15
    assert status[True]["pose_epipolar_held"] == 1 and status[False]["pose_epipolar_held"] == 0
    assert status[True]["pose_epipolar_clips"] == status[False]["pose_epipolar_clips"] == 1  # the second clip
    np.testing.assert_allclose(poses[True][:8, :3, 3], poses[True][:1, :3, 3].repeat(8, 0), atol=1e-12)
    assert np.linalg.norm(poses[False][7, :3, 3] - poses[False][0, :3, 3]) > 0.01  # the solver moved it
    np.testing.assert_allclose(poses[True][:, :3, :3], poses[False][:, :3, :3], atol=1e-9)
    second = [np.linalg.inv(p[7]) @ p[8:] for p in (poses[True], poses[False])]  # from the second clip's start
    np.testing.assert_allclose(second[0], second[1], atol=1e-9)


def test_views_too_close_together_for_the_scene_say_nothing_of_the_travel():
    """views_would_measure (rule 70a): essential_motion counts points within 50 baselines, so two views a
    clip's solved travel apart measure it only where that travel is at least 1/50 of the scene's depth."""
    from fourds_ros.perception.epipolar import views_would_measure

    travel = np.zeros((8, 3))
    travel[-1] = [0.0, 0.0, 0.023]  # a robot at 0.1 m/s, 8 frames at 30 Hz
    room = np.full((24, 32), 4.0)  # walls about 4 m away
    assert not views_would_measure(travel, room)
    assert views_would_measure(travel * 5, room)  # 11.5 cm: the views would have seen it
    assert views_would_measure(travel, room / 4)  # a desk 1 m away: so would they here
    assert views_would_measure(travel, np.full((24, 32), np.nan)) and views_would_measure(travel, None)


def test_a_slow_clip_the_views_could_not_measure_keeps_its_solved_travel(shipped_engine):
    """The 7-Scenes kitchen (train) from frame 0: the camera moves 0.4 and 1.1 cm over the first two clips,
    under 1/50 of the kitchen's depth, so the views count too few points to measure it. Both clips were held
    still (published 0 cm); now the solved travel stands (counted as pose_epipolar_unrefuted)."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_7scenes

    seq = read_7scenes(require(SHARED_DATA / "7scenes_redkitchen_f000-299"))
    pipe = PerceptionPipeline(shipped_engine, PerceptionSettings())
    out = {r.stamp_ns: r.pose.odom_from_camera
           for i in range(15) for r in pipe.push(seq.rgb(i), i * 33_333_333, "cam", seq.intrinsics)}
    status = pipe.status()
    assert status["pose_epipolar_held"] == 0 and status["pose_epipolar_unrefuted"] == 2
    for first, last in ((0, 7), (7, 14)):
        published = np.linalg.norm(out[last * 33_333_333][:3, 3] - out[first * 33_333_333][:3, 3])
        true = np.linalg.norm(seq.camera_to_world[last][:3, 3] - seq.camera_to_world[first][:3, 3])
        assert 0.5 * true < published < 2.0 * true, (first, published, true)


def test_the_pipeline_replenishes_corners_below_its_setting(shipped_engine, monkeypatch):
    """pose_epipolar_replenish_below reaches the direction's corner chain (with pose_epipolar_steps; without
    steps nothing is replenished) and, with pose_epipolar_step_rotation, the step rotations' chain over every
    frame (always), and fewer than an essential matrix's minimum is refused."""
    from fourds_ros.perception import pipeline as pl
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_hololens

    seq = read_hololens(require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334"))
    asked, every = [], []
    real = pl.follow_corner_steps

    def follow(*args, replenish_below=0, **kwargs):
        (every if kwargs.get("stride") == 1 else asked).append(replenish_below)
        return real(*args, replenish_below=replenish_below, **kwargs)

    monkeypatch.setattr(pl, "follow_corner_steps", follow)
    default = PerceptionSettings().pose.epipolar_replenish_below
    by_step = {"pose_epipolar_step_rotation": True}
    for params, expected, every_asked in (({}, default, None), ({**by_step}, default, default),
                                          ({"pose_epipolar_replenish_below": 150, **by_step}, 150, 150),
                                          ({"pose_epipolar_replenish_below": 150, "pose_epipolar_steps": False,
                                            **by_step}, 0, 150)):
        asked.clear()
        every.clear()
        pipe = pl.PerceptionPipeline(shipped_engine, PerceptionSettings.from_params(params))
        for i in range(8):
            pipe.push(seq.rgb(i), i * 100_000_000, "cam", seq.intrinsics)
        assert asked and set(asked) == {expected}
        assert set(every) == (set() if every_asked is None else {every_asked})
    with pytest.raises(ValueError):
        PerceptionSettings.from_params({"pose_epipolar_replenish_below": MIN_INLIERS - 1})


def test_corner_steps_are_replenished_where_too_few_last():
    """A real TUM frame shifted 2 px a frame, whose content changes to another scene (the frame
    turned upside down and mirrored) at frame 4: the first frame's corners are lost on the way to frame 4. Replenished, the steps 4 -> 6 -> 7 are
    followed on fresh corners (4 and 2 px); the first-last corners are the same either way (none
    lasted)."""
    root = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    files = sorted((root / "rgb").glob("*.jpg"))
    gray = cv2.cvtColor(cv2.imread(str(files[10])), cv2.COLOR_BGR2GRAY)
    grays = [gray, np.ascontiguousarray(gray[::-1, ::-1])]
    frames = [cv2.warpAffine(grays[t >= 4], np.float32([[1, 0, 2 * t], [0, 1, 0]]), (640, 480)).astype(np.float32)
              for t in range(8)]
    plain = follow_corner_steps(frames, 200)
    fed = follow_corner_steps(frames, 200, replenish_below=MIN_INLIERS)
    assert len(plain.first) == len(fed.first) < MIN_INLIERS
    assert [s[:2] for s in fed.steps] == [(0, 2), (2, 4), (4, 6), (6, 7)]
    for a, b, xa, xb in fed.steps[2:]:
        assert len(xa) >= 50
        np.testing.assert_allclose(np.median(xb - xa, axis=0), [2.0 * (b - a), 0.0], atol=0.1)
    assert all(len(s[2]) < MIN_INLIERS for s in plain.steps[2:])  # without: too few for a step
    first, last = follow_corners(frames, 200)
    np.testing.assert_array_equal(first, plain.first)
    np.testing.assert_array_equal(last, plain.last)


def test_pipeline_sums_the_steps_where_the_first_and_last_frames_measure_nothing(shipped_engine):
    """The HoloLens walk (low frame rate, walking; train scene): no clip keeps enough of its first
    frame's corners for the first-last direction, and with pose_epipolar_steps (the default) the
    steps give it (counted); off, the solver's own direction stands. Sizes are kept either way.
    The corners are followed from where they were (pose_epipolar_rotation_guess off), so that it is
    the steps that measure, and a clip they do not measure keeps its translation
    (pose_epipolar_hold_unmeasured off)."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_hololens

    seq = read_hololens(require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334"))
    assert PerceptionSettings().pose.epipolar_steps is True
    poses, counts = {}, {}
    for steps in (True, False):
        pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params(
            {"pose_epipolar_steps": steps, "pose_epipolar_rotation_guess": False, "pose_epipolar_hold_unmeasured": False}))
        out = [r for i in range(15) for r in pipe.push(seq.rgb(i), i * 100_000_000, "cam", seq.intrinsics)]
        poses[steps] = np.array([r.pose.odom_from_camera[:3, 3] for r in out])
        counts[steps] = (pipe.status()["pose_epipolar_clips"], pipe.status()["pose_epipolar_stepwise"])
    assert counts[True][0] == counts[False][0] == 0  # first and last never measure here
    assert counts[True][1] >= 1 and counts[False][1] == 0
    assert not np.allclose(poses[True], poses[False], atol=1e-4)
    first_clip = slice(0, 8)
    np.testing.assert_allclose(np.linalg.norm(np.diff(poses[True][first_clip], axis=0), axis=1),
                               np.linalg.norm(np.diff(poses[False][first_clip], axis=0), axis=1), rtol=1e-6)


def test_corners_turned_farther_than_lk_reaches_are_followed_from_where_the_rotation_moves_them():
    """A real TUM frame seen by a camera turning 6 degrees a frame (the infinite homography of each
    rotation): LK from where each corner was loses most of them over the two frames it jumps;
    started where the clip's rotation moves them (rotation_guess), it follows them to the last
    frame where the rotation puts them. A guess from a rotation that is far off leaves LK where the
    plain start does or worse, never ahead of it."""
    root = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    gray = cv2.cvtColor(cv2.imread(str(sorted((root / "rgb").glob("*.jpg"))[10])), cv2.COLOR_BGR2GRAY)
    rotation = np.stack([cv2.Rodrigues(np.array([0.0, np.radians(6.0) * t, 0.0]))[0] for t in range(8)])
    k_inv = np.linalg.inv(K)
    # frame t shows what the first camera saw, turned by rotation[t] (first_from_t): x_t = K R_t^T K^-1 x_0
    frames = [cv2.warpPerspective(gray, K @ r.T @ k_inv, (640, 480)).astype(np.float32) for r in rotation]
    keep = np.zeros((480, 640), bool)
    keep[60:420, 200:600] = True  # where the turn keeps the view inside the last frame
    plain = follow_corner_steps(frames, 200, keep)
    guided = follow_corner_steps(frames, 200, keep, predict=rotation_guess(K, rotation))
    assert len(guided.first) >= 50 and len(guided.first) > 2 * len(plain.first)
    expected = rotation_guess(K, rotation)(0, 7, guided.first)
    assert np.median(np.linalg.norm(guided.last - expected, axis=1)) < 1.5  # resampled by the warps
    wrong = rotation_guess(K, rotation[::-1].copy())  # turning the other way
    assert len(follow_corner_steps(frames, 200, keep, predict=wrong).first) <= max(len(plain.first), 10)


def test_pipeline_follows_the_corners_again_from_the_rotation_only_where_they_measured_nothing(shipped_engine):
    """pose_epipolar_rotation_guess (the default). The HoloLens walk (train scene; 4 degrees and 10 cm
    between frames): the plain corners' first and last frames measure no direction, so every clip
    that asks for one is followed again from where its solved rotation moves the corners (counted),
    and then first and last measure. TUM fr1/rpy at 30 Hz, its first two clips: the plain corners
    measure them, they are not followed again, and their poses are the same as with the switch off."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_hololens, read_tum

    assert PerceptionSettings().pose.epipolar_rotation_guess is True
    walk = read_hololens(require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334"))
    tum = read_tum(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    for seq, frames, period in ((walk, len(walk), 100_000_000), (tum, 16, 33_333_333)):
        poses, status = {}, {}
        for guess in (True, False):
            pipe = PerceptionPipeline(shipped_engine,
                                      PerceptionSettings.from_params({"pose_epipolar_rotation_guess": guess}))
            out = [r for i in range(frames) for r in pipe.push(seq.rgb(i), i * period, "cam", seq.intrinsics)]
            poses[guess] = np.array([r.pose.odom_from_camera[:3, 3] for r in out])
            status[guess] = pipe.status()
        if seq is walk:
            assert status[False]["pose_epipolar_clips"] == 0 and status[False]["pose_epipolar_guided"] == 0
            assert status[True]["pose_epipolar_guided"] >= 3  # of its 4 clips
            assert status[True]["pose_epipolar_clips"] >= 1
            assert not np.allclose(poses[True], poses[False], atol=1e-4)
        else:
            assert status[False]["pose_epipolar_clips"] == status[True]["pose_epipolar_clips"] == 2
            assert status[True]["pose_epipolar_guided"] == 0
            np.testing.assert_array_equal(poses[True], poses[False])


def test_passes_over_the_same_images_share_their_corners_and_follow_them_as_alone(monkeypatch):
    """follow_corner_steps(seeded=...): a second pass (here LK started from a guess) reuses the
    corners the first one detected, in the first frame and where it replenished, and follows
    exactly what it would have followed on its own."""
    import fourds_ros.perception.epipolar as epipolar

    root = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    grays = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2GRAY).astype(np.float32)
             for p in sorted((root / "rgb").glob("*.jpg"))[:8]]
    detect, calls = epipolar._seed_corners, []
    monkeypatch.setattr(epipolar, "_seed_corners", lambda *a: calls.append(1) or detect(*a))
    rotation = np.stack([np.eye(3)] * 8)
    alone = follow_corner_steps(grays, 200, replenish_below=500, predict=rotation_guess(K, rotation))
    detected = len(calls)
    assert detected >= 2  # the first frame and at least one replenishment (500 > 200 corners)
    seeded = {}
    follow_corner_steps(grays, 200, replenish_below=500, seeded=seeded)
    calls.clear()
    shared = follow_corner_steps(grays, 200, replenish_below=500, predict=rotation_guess(K, rotation), seeded=seeded)
    assert not calls
    np.testing.assert_array_equal(shared.first, alone.first)
    np.testing.assert_array_equal(shared.last, alone.last)
    assert len(shared.steps) == len(alone.steps)
    for (a, b, xa, xb), (a2, b2, xa2, xb2) in zip(shared.steps, alone.steps):
        assert (a, b) == (a2, b2)
        np.testing.assert_array_equal(xa, xa2)
        np.testing.assert_array_equal(xb, xb2)


def _noisy(rotation, degrees, seed=1):
    """first_from_t rotations with each frame's own error of about `degrees` (the solver's noise)."""
    rng = np.random.default_rng(seed)
    out = [rotation[0]] + [r @ cv2.Rodrigues(rng.normal(0, np.radians(degrees), 3))[0] for r in rotation[1:]]
    return np.array(out)


@pytest.mark.parametrize("step, depth", [([0.0, 0.0, 0.0], (1.0, 4.0)), ([0.0, 0.0, 0.05], (1.0, 4.0)),
                                         ([0.02, 0.0, 0.03], (1.0, 4.0))])
def test_step_rotations_from_corners_recover_a_turn_the_solver_got_wrong(step, depth):
    """Rule 69: a camera turning 2 degrees a frame (a fast hand-held turn), still, walking forward or
    forward and sideways; the solver's rotations 1.5 degrees off a frame. Every step measured by the
    corners (the turn where it explains them, else the essential matrix): each frame's rotation within
    0.2 degrees, where the solved ones were off by about 1.5."""
    from fourds_ros.perception.epipolar import rotation_from_steps

    rotation, translation = _clip_motion([0.0, np.radians(2.0), np.radians(0.5)], step)
    solved = _noisy(rotation, 1.5)
    steps = _steps_of(rotation, translation, followed=tuple(range(8)))
    out, measured = rotation_from_steps(solved, steps, K, np.zeros(8, bool))
    assert measured == 7
    assert max(angle_deg(o, r) for o, r in zip(out, rotation)) < 0.2
    assert max(angle_deg(s, r) for s, r in zip(solved, rotation)) > 1.0


def test_a_sideways_slide_read_as_a_turn_step_by_step_is_bent_back_by_the_clips_two_views():
    """A camera sliding 1 cm a frame sideways past points 2-3 m away while turning 0.5 degrees a frame: frame
    to frame a turn explains the corners to a pixel, and the steps read the slide as a turn (about 0.2
    degrees a frame too much). The first and last views (7 cm apart) measure the translation, and their
    rotation bends the chain back: the clip ends within 0.3 degrees of the truth (rule 69's test 4)."""
    from fourds_ros.perception.epipolar import rotation_from_steps

    rotation, translation = _clip_motion([0.0, np.radians(0.5), 0.0], [0.01, 0.0, 0.0])
    rng = np.random.default_rng(3)
    pts = np.c_[rng.uniform(-1.5, 1.5, (300, 2)), rng.uniform(2.0, 3.0, 300)]

    def project(t):
        x = ((pts - translation[t]) @ rotation[t]) @ K.T
        return x[:, :2] / x[:, 2:] + rng.normal(0, 0.1, (len(pts), 2))
    views = [project(t) for t in range(8)]
    steps = [(t - 1, t, views[t - 1], views[t]) for t in range(1, 8)]
    solved = rotation.copy()  # the solver's own rotation right: the steps alone would spoil it
    unbent, measured = rotation_from_steps(solved, steps, K, np.zeros(8, bool))
    assert measured == 7 and angle_deg(unbent[-1], rotation[-1]) > 0.5
    motion = essential_motion(views[0], views[7], K, rotation[-1])
    assert motion is not None
    bent, _ = rotation_from_steps(solved, steps, K, np.zeros(8, bool), motion.rotation)
    assert angle_deg(bent[-1], rotation[-1]) < 0.3


def test_step_rotations_skip_still_frames_and_keep_the_solved_step_where_nothing_measures():
    """No step into or out of a frame the geometry called still (its identity is its own decision there);
    a step with too few corners keeps the solved step, and the frames after it follow with it."""
    from fourds_ros.perception.epipolar import rotation_from_steps

    rotation, translation = _clip_motion([0.0, np.radians(2.0), 0.0], [0.0, 0.0, 0.0])
    solved = _noisy(rotation, 1.5)
    steps = _steps_of(rotation, translation, followed=tuple(range(8)))
    still = np.zeros(8, bool)
    still[3] = True
    out, measured = rotation_from_steps(solved, steps, K, still)
    assert measured == 5  # 2 -> 3 and 3 -> 4 kept as solved
    np.testing.assert_allclose(out[3].T @ out[2], solved[3].T @ solved[2], atol=1e-9)
    few = [(a, b, xa[:10], xb[:10]) if a == 5 else (a, b, xa, xb) for a, b, xa, xb in steps]
    out, measured = rotation_from_steps(solved, few, K, np.zeros(8, bool))
    assert measured == 6
    np.testing.assert_allclose(out[5].T @ out[6], solved[5].T @ solved[6], atol=1e-9)
    short, _ = rotation_from_steps(solved, steps[:4], K, np.zeros(8, bool))  # every corner lost after frame 4
    np.testing.assert_allclose(short[4].T @ short[7], solved[4].T @ solved[7], atol=1e-9)


def test_the_pipeline_measures_rotation_steps_on_the_camera_images_only_when_asked(shipped_engine):
    """pose_epipolar_step_rotation (off by default, rule 69a): on TUM fr1/rpy's first 15 frames (validation) the
    steps are measured and counted, and the rotations change; off, nothing is counted and the path is the
    shipped one."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.rgbd import read_tum

    assert PerceptionSettings().pose.epipolar_step_rotation is False
    tum = read_tum(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    poses, status = {}, {}
    for on in (False, True):
        pipe = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params({"pose_epipolar_step_rotation": on}))
        out = [r for i in range(15) for r in pipe.push(tum.rgb(i), i * 33_333_333, "cam", tum.intrinsics)]
        poses[on], status[on] = np.array([r.pose.odom_from_camera for r in out]), pipe.status()
    assert status[False]["pose_step_rotations"] == 0 and status[True]["pose_step_rotations"] >= 7
    assert max(angle_deg(a[:3, :3], b[:3, :3]) for a, b in zip(poses[False], poses[True])) > 0.05


def test_frames_followed_by_name_share_the_clips_corners_and_follow_them_as_a_pair_alone(monkeypatch):
    """follow_corners(frames=(t - 1, t), seeded=...): one step of a clip (a relinked frame's), seeded from the
    clip's shared corners by frame, follows what the two images alone would, and a later pass over the clip
    reuses frame t - 1's corners instead of detecting them again."""
    import fourds_ros.perception.epipolar as epipolar

    root = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    grays = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2GRAY) for p in sorted((root / "rgb").glob("*.jpg"))[:8]]
    seeded = {}
    x0, x1 = follow_corners(grays, 200, stride=1, seeded=seeded, frames=(4, 5))
    y0, y1 = follow_corners([grays[4], grays[5]], 200, stride=1)
    assert list(seeded) == [4] and len(x0) > 50
    np.testing.assert_array_equal(x0, y0)
    np.testing.assert_array_equal(x1, y1)
    detect, calls = epipolar._seed_corners, []
    monkeypatch.setattr(epipolar, "_seed_corners", lambda gray, *a: calls.append(gray) or detect(gray, *a))
    follow_corner_steps(grays, 200, replenish_below=500, seeded=seeded)  # replenished at 2 and 4 at least
    assert {0, 2, 4} <= set(seeded) and len(calls) == len(seeded) - 1 and not any(g is grays[4] for g in calls)
