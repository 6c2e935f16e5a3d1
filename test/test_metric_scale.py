"""The metric scale from a reference odometry (perception/metric_scale.py): the camera's travel by
the reference (lever arm, interpolation, gaps), which clips count, the scale they give, bad
reference input; and, on real frames with the shipped model, that the pipeline's depth and clip
motion are the unscaled ones times the scale in effect."""

import math

import numpy as np
import pytest
import transforms3d.euler as euler

from fourds_ros.perception.metric_scale import MAX_BRACKET_NS, MAX_HOLD_NS, ReferenceScale
from fourds_ros.perception.odometry import default_base_from_camera, quat_xyzw

from .conftest import SHARED_DATA, require

MS = 10**6
UNIT = np.array([0.0, 0.0, 0.0, 1.0])


def scale_of(**kw) -> ReferenceScale:
    return ReferenceScale(**{"min_distance_m": 0.05, "max_rotation_deg": 5.0, "window": 5, "min_clips": 2, **kw})


def mount(x: float) -> np.ndarray:
    """The REP-103 camera mounted x metres ahead of the base's centre."""
    m = default_base_from_camera()
    m[0, 3] = x
    return m


def test_travel_is_the_camera_centre_so_a_base_turning_in_place_moves_an_offset_camera():
    ref = scale_of()
    ref.add(0, [0, 0, 0], UNIT)
    ref.add(100 * MS, [0, 0, 0], quat_xyzw(euler.euler2mat(0, 0, math.pi / 2)))  # yaw 90 degrees in place
    distance, turned = ref.camera_travel(0, 100 * MS, mount(0.5))
    assert distance == pytest.approx(0.5 * math.sqrt(2)) and turned == pytest.approx(math.pi / 2)
    distance, _ = ref.camera_travel(0, 100 * MS, mount(0.0))
    assert distance == pytest.approx(0.0, abs=1e-12)


def test_travel_is_interpolated_between_samples_and_extrapolated_only_briefly_after_the_newest():
    ref = scale_of()
    for i in range(5):  # 1 m/s along x, a sample every 100 ms
        ref.add(i * 100 * MS, [0.1 * i, 0, 0], UNIT)
    assert ref.camera_travel(50 * MS, 250 * MS, mount(0))[0] == pytest.approx(0.2)
    # The clip's last frame a little after the newest sample: it goes on at the last step's speed,
    # 0.5 m at 1 m/s. This was 0.4, the newest sample standing in: every clip ending so came out
    # short by speed x lag, the same way each time, and the median scale with it (-4 % at 50 Hz).
    assert ref.camera_travel(0, 400 * MS + MAX_HOLD_NS, mount(0))[0] == pytest.approx(0.5)
    assert ref.camera_travel(0, 400 * MS + MAX_HOLD_NS + 1, mount(0)) is None
    assert ref.camera_travel(-1, 100 * MS, mount(0)) is None  # before the first sample
    ref.add(400 * MS + MAX_BRACKET_NS + 1, [9, 0, 0], UNIT)  # a gap in the reference: no measurement inside it
    assert ref.camera_travel(0, 500 * MS, mount(0)) is None
    # After a gap the last step is no velocity (here 17 m/s): the newest sample is held as before.
    newest = 400 * MS + MAX_BRACKET_NS + 1
    assert ref.camera_travel(newest, newest + MAX_HOLD_NS, mount(0))[0] == pytest.approx(0.0, abs=1e-12)


def test_a_clip_ending_after_the_newest_reference_sample_keeps_its_scale():
    """Wheel odometry at 50 and 20 Hz, 8-frame clips at 30 Hz each processed before the sample after
    its last frame arrived, the model's travel exact: the scale is 1 (it was 0.967 and 0.902 with
    the newest sample standing in for the last frame)."""
    for odom_hz in (50, 20):
        ref = scale_of(min_clips=1, window=40)
        period, speed, added = 10**9 // odom_hz, 0.5, -(10**9 // odom_hz)  # 0.5 m/s straight ahead
        for t0 in np.sort(np.random.default_rng(odom_hz).uniform(1e9, 9e9, 40)).astype(int):
            t1 = t0 + 7 * 10**9 // 30
            while added + period <= t1:  # the samples up to the clip's last frame, not the one after it
                added += period
                ref.add(added, [speed * added / 1e9, 0, 0], UNIT)
            assert ref.observe(t0, t1, np.array([0, 0, speed * (t1 - t0) / 1e9]), mount(0))
        assert ref.clips_used == 40 and ref.scale == pytest.approx(1.0, abs=1e-9)


def test_scale_is_the_median_ratio_of_the_clips_that_moved_enough_and_turned_little():
    ref = scale_of()
    for i in range(40):
        ref.add(i * 100 * MS, [0.1 * i, 0, 0], UNIT)  # 1 m/s straight ahead
    model = np.array([0.0, 0.0, 0.1])  # the model's camera moved 0.1 m forward where the reference moved 0.2
    assert ref.observe(0, 200 * MS, model, mount(0)) and ref.scale == 1.0  # 1 of min_clips 2: still the model's
    assert ref.observe(200 * MS, 400 * MS, model, mount(0)) and ref.scale == pytest.approx(2.0)
    assert ref.observe(400 * MS, 600 * MS, model * 0.8, mount(0))  # 2.5
    assert ref.scale == pytest.approx(2.0)  # the median, not the mean
    # Not counted: a reference travel below min_distance_m; the model did not move; a ratio no
    # scale error explains; stamps the reference does not cover.
    assert not ref.observe(0, 40 * MS, model, mount(0))
    assert not ref.observe(0, 200 * MS, np.zeros(3), mount(0))
    assert not ref.observe(0, 200 * MS, model / 100, mount(0))
    assert not ref.observe(0, 10**10, model, mount(0))
    assert ref.clips_used == 3 and ref.clips_seen == 6 and ref.scale == pytest.approx(2.0)


def test_a_turning_clip_does_not_count():
    ref = scale_of()
    for i in range(3):  # 0.2 m ahead while turning 10 degrees over the clip
        ref.add(i * 100 * MS, [0.1 * i, 0, 0], quat_xyzw(euler.euler2mat(0, 0, math.radians(5 * i))))
    assert not ref.observe(0, 200 * MS, np.array([0, 0, 0.1]), mount(0))
    wide = scale_of(max_rotation_deg=11.0)
    for i in range(3):
        wide.add(i * 100 * MS, [0.1 * i, 0, 0], quat_xyzw(euler.euler2mat(0, 0, math.radians(5 * i))))
    assert wide.observe(0, 200 * MS, np.array([0, 0, 0.1]), mount(0))


def test_the_diagnostics_hint_names_the_turn_gate_when_it_refused_the_clips():
    """A robot driving 0.2 m a clip while turning 10 degrees (metric_scale_max_rotation_deg 5): every
    clip refused for its turn. The WARN told it 'a robot standing, or slower than that a clip'; it
    now counts the clips the turn gate refused and names the gate and the largest turn."""
    from fourds_ros.perception.health import REFERENCE_WARN_AFTER_CLIPS, WARN, NodeHealth, NodeState

    ref = scale_of(min_clips=5)
    clips = 5 + REFERENCE_WARN_AFTER_CLIPS
    for i in range(2 * clips + 1):  # 1 m/s ahead, turning 50 degrees a second
        ref.add(i * 100 * MS, [0.1 * i, 0, 0], quat_xyzw(euler.euler2mat(0, 0, math.radians(5 * i))))
    for c in range(clips):
        assert not ref.observe(2 * c * 100 * MS, 2 * (c + 1) * 100 * MS, np.array([0, 0, 0.1]), mount(0))
    status = {**ref.status(), "metric_scale_source": "reference_odometry",
              "metres_from": "model (reference_odometry: 0 of 5 clips counted yet)"}  # as the pipeline adds them
    assert status["metric_scale_clips_turned"] == clips and status["metric_scale_largest_turn_deg"] == 10.0
    level, message = NodeHealth(lambda m: None).level(NodeState("active", pipeline_status=status))
    assert level == WARN and "standing" not in message
    assert (f"covered {clips} of them (its stamps must bracket the clip's), and {clips} turned more than the 5.0 "
            "degrees a clip may (metric_scale_max_rotation_deg), up to 10.0 in one (the longest moved 0.2 m") in message


def test_bad_reference_poses_are_refused_with_a_reason():
    ref = scale_of()
    assert ref.add(0, [0, 0, 0], UNIT) is None
    assert "non-finite" in ref.add(10 * MS, [np.nan, 0, 0], UNIT)
    assert "unit quaternion" in ref.add(20 * MS, [0, 0, 0], np.zeros(4))
    assert "not after" in ref.add(0, [0, 0, 0], UNIT)
    # Time going back by more than a second is a new recording (a bag loop): the reference restarts.
    ref.add(5 * 10**9, [1, 0, 0], UNIT)
    assert ref.add(10 * MS, [0, 0, 0], UNIT) is None
    assert ref.camera_travel(0, 5 * 10**9, mount(0)) is None


def test_settings_refuse_a_reference_scale_without_the_pose():
    from fourds_ros.perception.settings import PerceptionSettings

    with pytest.raises(ValueError, match="enable_pose"):
        PerceptionSettings.from_params(metric_scale_source="reference_odometry", enable_pose=False)
    with pytest.raises(ValueError, match="metric_scale_min_clips"):
        PerceptionSettings.from_params(metric_scale_source="reference_odometry", metric_scale_min_clips=10,
                                       metric_scale_window=5)


def test_pipeline_depth_and_clip_motion_are_the_unscaled_ones_times_the_scale():
    """Real frames (TUM fr1/rpy, the first 22), the shipped model: one run with the model's metres,
    one with the ground truth as the reference odometry and the gates open. Each clip's depth and
    the motion between its frames are the first run's times the scale in effect for that clip."""
    from fourds_ros.engine import create_engine
    from fourds_ros.perception import PerceptionPipeline, PerceptionSettings
    from fourds_ros.rgbd import read_sequence

    seq = read_sequence(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    common = {"track_image_fallback": False, "track_refinement": "none"}
    model = PerceptionSettings().model.resolved_path()
    plain = PerceptionPipeline(create_engine(model, "onnxruntime"), PerceptionSettings.from_params(**common))
    scaled = PerceptionPipeline(create_engine(model, "onnxruntime"), PerceptionSettings.from_params(
        **common, metric_scale_source="reference_odometry", metric_scale_min_distance_m=0.0,
        metric_scale_max_rotation_deg=180.0, metric_scale_min_clips=1))
    in_effect = []
    for i in range(22):
        stamp, rgb = int(i * 1e9 / 30), seq.rgb(i)
        odom_from_base = seq.camera_to_world[i] @ scaled.odometry.camera_from_base
        scaled.add_reference_odometry(stamp, odom_from_base[:3, 3], quat_xyzw(odom_from_base[:3, :3]))
        clip_a, _ = plain.add_frame(rgb, stamp, "camera", seq.intrinsics)
        clip_b, _ = scaled.add_frame(rgb, stamp, "camera", seq.intrinsics)
        if clip_a is None:
            continue
        in_effect.append(scaled.reference_scale.scale)
        a, b = plain.process(clip_a).frames, scaled.process(clip_b).frames
        assert np.nanmedian(b[-1].depth / a[-1].depth) == pytest.approx(in_effect[-1], rel=1e-4)
        step = [np.linalg.inv(r[0].pose.odom_from_camera) @ r[-1].pose.odom_from_camera for r in (a, b)]
        np.testing.assert_allclose(step[1][:3, :3], step[0][:3, :3], atol=1e-4)
        np.testing.assert_allclose(step[1][:3, 3], in_effect[-1] * step[0][:3, 3], atol=2e-4)
    assert len(in_effect) == 3 and in_effect[0] == 1.0 and in_effect[1] != 1.0


def test_min_and_max_depth_cut_the_published_metres_and_the_pose_is_as_without_a_scale():
    """The range is in the published metres: a factor 0.5 with min_depth 1.5 / max_depth 2.6
    publishes what the model's metres in [3, 5.2] are, halved (0.5 is exact in float32: the cut
    matches to the bit). It was cut in the model's metres first ([1.5, 2.6]) and then scaled, so a
    model reading 2.4x too far lost true 2.1-5 m to max_depth 5 under the reference scale 1/2.4. The
    pose still solves in the model's metres on the pixels it would without a scale ([1.5, 2.6]
    here): the reference scale is measured on its travel. Real frames (TUM fr1/rpy, the first 10;
    the model's depth 1.9-3.7 m there), the shipped model."""
    from fourds_ros.engine import create_engine
    from fourds_ros.perception import PerceptionPipeline, PerceptionSettings
    from fourds_ros.rgbd import read_sequence

    seq = read_sequence(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    engine = create_engine(PerceptionSettings().model.resolved_path(), "onnxruntime")

    def run(**params):
        pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(
            track_image_fallback=False, track_refinement="none", **params))
        return [r for i in range(10) for r in pipe.push(seq.rgb(i), int(i * 1e9 / 30), "camera", seq.intrinsics)]

    scaled = run(metric_scale_factor=0.5, min_depth=1.5, max_depth=2.6)
    depth_as = run(min_depth=3.0, max_depth=5.2)  # the published range in the model's metres
    pose_as = run(min_depth=1.5, max_depth=2.6)  # the same range in the model's metres: the pose's
    assert len(scaled) == len(depth_as) == 8  # one clip of 8 frames
    for part in (depth_as, pose_as):  # each range cuts part of the view
        assert 0.05 < np.isfinite(np.stack([r.depth for r in part])).mean() < 0.95
    for r, d, p in zip(scaled, depth_as, pose_as):
        np.testing.assert_array_equal(r.depth, d.depth * np.float32(0.5))  # NaN where NaN
        np.testing.assert_array_equal(r.tracks.xyz, d.tracks.xyz * 0.5)
        np.testing.assert_allclose(r.pose.odom_from_camera[:3, 3], 0.5 * p.pose.odom_from_camera[:3, 3], atol=1e-6)
    moved = [np.linalg.norm(part[-1].pose.odom_from_camera[:3, 3]) for part in (pose_as, depth_as)]
    assert min(moved) > 0.02 and abs(moved[0] - moved[1]) > 1e-3  # the pose moves, and with the pixels it has


def test_the_dds_replay_refuses_a_reference_scale_it_cannot_feed(tmp_path):
    from fourds_ros.evaluation.bag import BagError
    from fourds_ros.evaluation.eval_cli import evaluate

    for source in ("reference_odometry", "reference_depth"):
        with pytest.raises(BagError, match="--offline"):
            evaluate(tmp_path / "no_bag", None, tmp_path / "out", offline=False, params={"metric_scale_source": source})


def test_a_calibrated_factor_scales_depth_and_motion_and_starts_the_reference_scale():
    """metric_scale_factor: with the model's metres, each clip's depth and its motion are the
    unscaled ones times the factor (rotations unchanged), diagnostics say so; reference_odometry
    starts from it instead of 1 until it has measured (real frames: TUM fr1/rpy, shipped model)."""
    from fourds_ros.engine import create_engine
    from fourds_ros.perception import PerceptionPipeline, PerceptionSettings
    from fourds_ros.rgbd import read_sequence

    seq = read_sequence(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    common = {"track_image_fallback": False, "track_refinement": "none"}
    engine = create_engine(PerceptionSettings().model.resolved_path(), "onnxruntime")
    plain = PerceptionPipeline(engine, PerceptionSettings.from_params(**common))
    factored = PerceptionPipeline(engine, PerceptionSettings.from_params(**common, metric_scale_factor=0.4))
    for i in range(15):
        stamp, rgb = int(i * 1e9 / 30), seq.rgb(i)
        clip_a, _ = plain.add_frame(rgb, stamp, "camera", seq.intrinsics)
        clip_b, _ = factored.add_frame(rgb, stamp, "camera", seq.intrinsics)
        if clip_a is None:
            continue
        a, b = plain.process(clip_a).frames, factored.process(clip_b).frames
        assert np.nanmedian(b[-1].depth / a[-1].depth) == pytest.approx(0.4, rel=1e-5)
        step = [np.linalg.inv(r[0].pose.odom_from_camera) @ r[-1].pose.odom_from_camera for r in (a, b)]
        np.testing.assert_allclose(step[1][:3, :3], step[0][:3, :3], atol=1e-4)
        np.testing.assert_allclose(step[1][:3, 3], 0.4 * step[0][:3, 3], atol=2e-4)
    assert factored.status()["metric_scale"] == 0.4 and "metric_scale" not in plain.status()
    assert (factored.status()["metres_from"], plain.status()["metres_from"]) == ("metric_scale_factor", "model")
    reference = PerceptionPipeline(engine, PerceptionSettings.from_params(
        metric_scale_source="reference_odometry", metric_scale_factor=0.4))
    assert reference.reference_scale.scale == 0.4


def test_calibrate_scale_finds_the_factor_that_eval_then_applies(tmp_path):
    """`fourds-ros calibrate-scale` on real frames of a scene the model never trained on (TUM
    fr1/rpy, validation) finds the desk's factor; `--check` scores it on another recording of the
    desk, and `eval --param metric_scale_factor` with it scores that recording as --check said.
    (Whether the factor helps there depends on the views: frames 40-54 look down at the floor, where
    the model's own metres are nearer right, 0.51 with and without it; model card, session 43.)"""
    import json

    from fourds_ros.cli import main as cli

    tum = str(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    for name, cut in (("fit", ["--max-frames", "15"]), ("other", ["--start", "40", "--max-frames", "15"])):
        assert cli(["bag", "convert", "--format", "tum", tum, str(tmp_path / name), *cut]) == 0
    assert cli(["calibrate-scale", str(tmp_path / "fit"), "--check", str(tmp_path / "other"),
                "--json", str(tmp_path / "scale.json")]) == 0
    result = json.loads((tmp_path / "scale.json").read_text())
    assert 0.2 < result["factor"] < 0.7  # the desk reads 1.4-5x too far in the model's own metres
    fitted, checked = result["fitted"], result["checked"]
    assert fitted["after"]["metric_abs_rel"] < 0.5 * fitted["before"]["metric_abs_rel"]
    assert result["frame_scale_p10"] <= result["factor"] <= result["frame_scale_p90"]
    assert checked["after"]["abs_rel"] == pytest.approx(checked["before"]["abs_rel"])  # relative depth: untouched
    report = tmp_path / "report"
    assert cli(["eval", str(tmp_path / "other"), "--offline", "--out", str(report), "--param",
                f"metric_scale_factor={result['factor']}"]) == 0
    scored = json.loads((report / "report.json").read_text())
    assert scored["depth"]["metric"]["abs_rel"] == pytest.approx(checked["after"]["metric_abs_rel"], rel=1e-6)
    constant = scored["peers"]["constant_depth"]["depth"]["metric"]["abs_rel"]
    assert constant == pytest.approx(checked["after"]["constant_metric_abs_rel"], rel=1e-6)


def test_depth_reference_scale_is_each_clips_median_ratio_where_both_have_depth():
    from fourds_ros.perception.metric_scale import DepthReferenceScale

    rng = np.random.default_rng(0)
    own = rng.uniform(1.0, 4.0, (3, 16, 16))
    scale = DepthReferenceScale(initial=0.7)
    assert not scale.measure([0, 1, 2], own) and scale.scale == 0.7  # no reference yet: the factor holds
    for t in range(3):
        ref = own[t] * 0.5
        ref[:8] = 0.0  # the sensor sees nothing on half the view (glass, range): those pixels do not count
        scale.add(t * 33_000_000, ref)
    assert scale.measure([0, 33_000_000, 66_000_000], own) and scale.scale == pytest.approx(0.5)
    scale.add(100_000_000, own[0] * 100)  # a glitch: 200x the last measured scale
    assert not scale.measure([100_000_000], own[:1]) and scale.scale == pytest.approx(0.5)
    sparse = np.zeros((16, 16))
    sparse[0, :5] = 1.0  # 2 % of the view
    scale.add(200_000_000, sparse)
    assert not scale.measure([200_000_000], own[:1])
    assert not scale.measure([200_000_000 + 30_000_000], own[:1])  # 30 ms from the nearest reference: none
    status = scale.status()
    assert {k: status[k] for k in ("metric_scale", "metric_scale_motion", "metric_scale_clips_used",
                                   "metric_scale_clips_seen")} == {"metric_scale": 0.5, "metric_scale_motion": 0.5,
                                                                   "metric_scale_clips_used": 1,
                                                                   "metric_scale_clips_seen": 5}
    windowed = DepthReferenceScale(initial=1.0, window=3)  # the motion's scale: the median of the last 3 clips
    assert windowed.motion_scale == 1.0
    for t, ratio in enumerate((0.4, 0.8, 0.5, 0.9)):
        windowed.add(t, own[0] * ratio)
        assert windowed.measure([t], own[:1]) and windowed.scale == pytest.approx(ratio)
    assert windowed.motion_scale == pytest.approx(0.8)  # median of 0.8, 0.5, 0.9


def test_depth_reference_scale_refuses_a_wrong_first_clip_and_follows_time_going_back():
    """A first reference clip in the wrong units (millimetres published as 32FC1 metres) was taken
    unchecked, and every right clip after it refused against it: the depth went out 1000x too far
    (NaN beyond max_depth). And after time went back (a bag loop), new reference depth was evicted
    as the oldest stamp as soon as it came, leaving the scale frozen."""
    from fourds_ros.perception.metric_scale import DepthReferenceScale

    own = np.random.default_rng(1).uniform(1.0, 4.0, (1, 16, 16))
    scale = DepthReferenceScale(initial=1.0)
    scale.add(0, own[0] * 1000)
    assert not scale.measure([0], own) and scale.scale == 1.0
    scale.add(33_000_000, own[0] * 0.6)
    assert scale.measure([33_000_000], own) and scale.scale == pytest.approx(0.6)
    looped = DepthReferenceScale(initial=1.0)
    second = 1_000_000_000
    for i in range(100):  # 100 frames at 30 Hz, ten seconds in: every store slot filled
        looped.add(10 * second + i * 33_000_000, own[0] * 0.5)
    assert looped.measure([10 * second + 99 * 33_000_000], own) and looped.scale == pytest.approx(0.5)
    looped.add(5_000_000, own[0] * 0.25)  # the recording starts again
    assert looped.measure([5_000_000], own) and looped.scale == pytest.approx(0.25)


def test_reference_depth_puts_the_new_scene_in_metres_offline(tmp_path):
    """metric_scale_source: reference_depth on real frames of the validation desk, its ground-truth
    depth standing in for an RGB-D camera's: the metres come right where the model's own are 1.5-6x
    too far, relative depth and tracks untouched; a depth image of another size is refused."""
    import json

    from fourds_ros.cli import main as cli
    from fourds_ros.engine import create_engine
    from fourds_ros.perception import PerceptionPipeline, PerceptionSettings

    bag = tmp_path / "desk"
    assert cli(["bag", "convert", "--format", "tum", str(require(SHARED_DATA / "tum_fr1_rpy_f000-079")), str(bag),
                "--max-frames", "15"]) == 0
    reports = {}
    for source in ("model", "reference_depth"):
        out = tmp_path / source
        assert cli(["eval", str(bag), "--offline", "--out", str(out), "--param", f"metric_scale_source={source}"]) == 0
        reports[source] = json.loads((out / "report.json").read_text())
    own, ref = (reports[k]["depth"] for k in ("model", "reference_depth"))
    assert ref["metric"]["abs_rel"] < 0.5 * own["metric"]["abs_rel"]
    assert ref["metric"]["abs_rel"] < 1.3 * ref["abs_rel"]  # about as good as a per-frame median scale
    assert ref["abs_rel"] == pytest.approx(own["abs_rel"])
    assert reports["reference_depth"]["tracks"]["aj"] == pytest.approx(reports["model"]["tracks"]["aj"])
    assert "Metric scale from the reference depth" in (tmp_path / "reference_depth" / "report.md").read_text()
    pipeline = PerceptionPipeline(create_engine(PerceptionSettings().model.resolved_path(), "onnxruntime"),
                                  PerceptionSettings.from_params(metric_scale_source="reference_depth"))
    # Before any colour frame there is no size to check against: not used (an unregistered 848x480 depth that
    # came first was stored unchecked and could set the first clip's scale), counted on /diagnostics.
    assert pipeline.add_reference_depth(0, np.ones((480, 848))) is None
    assert not pipeline.reference_depth._depth and pipeline.status()["reference_depth_before_colour"] == 1
    pipeline.add_frame(np.zeros((480, 640, 3), np.uint8), 0, "camera")
    assert "registered to the colour image" in pipeline.add_reference_depth(0, np.ones((240, 320)))
    assert pipeline.add_reference_depth(0, np.ones((480, 640))) is None
    assert list(pipeline.reference_depth._depth) == [0]


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_each_reference_reports_its_age_and_whether_its_scale_is_in_effect():
    """/diagnostics' metric_scale_reference_age_s: seconds since the reference's last sample was taken
    (odometry: a pose not refused; depth: an image added), nan before any; in_effect once the clips its
    scale needs counted (odometry: metric_scale_min_clips; depth: one)."""
    from fourds_ros.perception.metric_scale import DepthReferenceScale

    clock = FakeClock()
    ref = scale_of(clock=clock)
    status = ref.status()
    assert math.isnan(status["metric_scale_reference_age_s"]) and not ref.in_effect
    assert (status["metric_scale_min_clips"], status["metric_scale_clips_described"]) == (2, 0)
    for i in range(10):
        ref.add(i * 100 * MS, [0.1 * i, 0, 0], UNIT)
    clock.t += 3.5
    assert ref.add(10**9, [np.nan, 0, 0], UNIT) is not None  # refused: no sample taken
    assert ref.status()["metric_scale_reference_age_s"] == 3.5
    assert not ref.observe(0, 10 * MS, np.array([0, 0, 0.1]), mount(0))  # too short: described, not counted
    assert ref.observe(0, 200 * MS, np.array([0, 0, 0.1]), mount(0)) and not ref.in_effect  # 1 of 2
    assert ref.observe(200 * MS, 400 * MS, np.array([0, 0, 0.1]), mount(0)) and ref.in_effect
    assert ref.status()["metric_scale_clips_described"] == 3
    depth = DepthReferenceScale(clock=clock)
    own = np.full((1, 8, 8), 2.4)
    assert math.isnan(depth.status()["metric_scale_reference_age_s"])
    depth.add(0, np.full((8, 8), 1000.0))  # a 32FC1 depth in mm: taken, and refused per clip
    clock.t += 1.25
    assert not depth.measure([0], own) and not depth.in_effect
    status = depth.status()
    assert (status["metric_scale_reference_age_s"], status["metric_scale_min_clips"],
            status["metric_scale_clips_described"]) == (1.25, 1, 1)
    depth.add(10**8, np.full((8, 8), 1.0))
    assert depth.measure([10**8], own) and depth.in_effect
    assert depth.status()["metric_scale_reference_age_s"] == 0.0


def shipped_onnx():
    from fourds_ros.engine import create_engine
    from fourds_ros.perception import PerceptionSettings

    return create_engine(PerceptionSettings().model.resolved_path(), "onnxruntime")


def test_metres_from_is_a_reference_only_once_its_scale_is_in_effect():
    """metres_from said reference_odometry from configure on, while the outputs were in the model's
    metres until metric_scale_min_clips clips counted (or for good: no reference message, no clip
    through the gates, every reference depth refused). It says whose metres are in effect, and how far
    the reference is; metric_scale_source says which was asked for."""
    from fourds_ros.perception import PerceptionPipeline, PerceptionSettings

    def pipeline(**params) -> PerceptionPipeline:
        return PerceptionPipeline(engine, PerceptionSettings.from_params(**params))

    engine = shipped_onnx()
    odom = pipeline(metric_scale_source="reference_odometry", metric_scale_min_clips=2)
    assert odom.status()["metres_from"] == "model (reference_odometry: 0 of 2 clips counted yet)"
    assert odom.status()["metric_scale_source"] == "reference_odometry"
    factored = pipeline(metric_scale_source="reference_odometry", metric_scale_factor=0.4)
    assert factored.status()["metres_from"] == "metric_scale_factor (reference_odometry: 0 of 5 clips counted yet)"
    for i in range(10):
        odom.add_reference_odometry(i * 100 * MS, np.array([0.1 * i, 0, 0]), UNIT)
    base_from_camera = odom.odometry.base_from_camera
    assert odom.reference_scale.observe(0, 200 * MS, np.array([0, 0, 0.1]), base_from_camera)
    assert odom.status()["metres_from"] == "model (reference_odometry: 1 of 2 clips counted yet)"
    assert odom.reference_scale.observe(200 * MS, 400 * MS, np.array([0, 0, 0.1]), base_from_camera)
    assert odom.status()["metres_from"] == "reference_odometry" and odom.status()["metric_scale"] == 2.0
    depth = pipeline(metric_scale_source="reference_depth")
    depth.reference_depth.add(0, np.full((8, 8), 1000.0))  # a 32FC1 depth in mm: every clip refuses it
    assert not depth.reference_depth.measure([0], np.full((1, 8, 8), 2.4))
    assert depth.status()["metres_from"] == "model (reference_depth: 0 of 1 clips counted yet)"
    depth.reference_depth.add(10**8, np.full((8, 8), 1.2))
    assert depth.reference_depth.measure([10**8], np.full((1, 8, 8), 2.4))
    assert depth.status()["metres_from"] == "reference_depth"
    plain = pipeline().status()  # the model's metres: as before, nothing about a reference
    assert plain["metres_from"] == "model" and not any(k.startswith("metric_scale") for k in plain)


@pytest.fixture
def node_clock(monkeypatch):
    """The node's monotonic clock as health.py and metric_scale.py see it (the time module left alone)."""
    from types import SimpleNamespace

    from fourds_ros.perception import health as health_module
    from fourds_ros.perception import metric_scale as scale_module

    clock = FakeClock()
    monkeypatch.setattr(health_module, "time", SimpleNamespace(monotonic=clock, time_ns=lambda: 10**12))
    monkeypatch.setattr(scale_module, "time", SimpleNamespace(monotonic=clock))
    return clock


def described(engine, clock: FakeClock, source: str, clips: int, reference=None):
    """-> (pipeline, its node's health) after `clips` clips of 7 new frames at 30 Hz, the model's
    camera 0.1 m ahead in each, the frames arriving meanwhile; reference(pipeline, stamp_ns) feeds a
    reference sample with each frame."""
    from fourds_ros.perception import PerceptionPipeline, PerceptionSettings
    from fourds_ros.perception.health import NodeHealth

    p = PerceptionPipeline(engine, PerceptionSettings.from_params(metric_scale_source=source))
    start = clock.t  # the node's clock runs with the frames, as a live camera's does (fixed, the stamps ran up to
    # 9 s ahead of it: session 68's rule names stamps ahead of the node's clock)
    health = NodeHealth(lambda m: None, now_ns=lambda: 10**12 + round((clock.t - start) * 1e9))
    for k in range(clips):
        for i in range(7):
            stamp = (k * 7 + i) * 33_333_333
            clock.t += 1 / 30
            health.frame_received(10**12 + stamp)
            if reference is not None:
                reference(p, stamp)
        if p.reference_scale is not None:  # as _poses does for each clip
            t0 = (k * 7 - 7) * 33_333_333
            p.reference_scale.observe(t0, t0 + 233_333_333, np.array([0, 0, 0.1]), p.odometry.base_from_camera)
        if p.reference_depth is not None:  # as _clip_scale does (the model reads 2.4 m)
            p.reference_depth.measure([k * 7 * 33_333_333], np.full((1, 8, 8), 2.4))
    return p, health


def level(p, health) -> tuple[int, str]:
    from fourds_ros.perception.health import NodeState

    return health.level(NodeState("active", pipeline_status=p.status()))


def test_diagnostics_warn_while_the_reference_odometry_is_not_heard_or_has_gone_silent(node_clock):
    """The reviewer's cases, the pipeline's status read by the node's health: reference_odom
    remapped wrong (nothing ever arrives) while 40 clips are described; the reference stopping while
    the camera goes on (its last scale was kept for good, silently). Both were OK with metres_from
    naming the reference. The model's own metres, on the same input: OK."""
    from fourds_ros.perception.health import OK, WARN

    engine = shipped_onnx()
    assert level(*described(engine, node_clock, "model", 40)) == (OK, "active")
    result = level(*described(engine, node_clock, "reference_odometry", 40))  # remapped wrong: nothing arrives
    assert result[0] == WARN and "metres from model (reference_odometry: 0 of 5 clips counted yet) after 40 " \
        "clips (nothing received on reference_odom" in result[1], result

    def wheels(p, stamp: int) -> None:  # 0.6 m/s straight ahead, a sample with each frame
        p.add_reference_odometry(stamp, np.array([0.6 * stamp / 1e9, 0, 0]), UNIT)

    p, health = described(engine, node_clock, "reference_odometry", 40, wheels)
    assert p.status()["metres_from"] == "reference_odometry" and level(p, health) == (OK, "active")
    stopped_at = node_clock.t
    for _ in range(120):  # the wheels' publisher stops; the camera goes on for 4 s
        node_clock.t += 1 / 30
        health.frame_received(10**12)
    result = level(p, health)
    assert result[0] == WARN and "reference_odometry silent for 4 s" in result[1], result
    assert p.status()["metric_scale_reference_age_s"] == pytest.approx(node_clock.t - stopped_at, abs=0.01)


def test_diagnostics_warn_while_every_reference_depth_is_refused(node_clock):
    """A 32FC1 reference depth published in millimetres: taken, fresh, and refused by every clip
    (1000x off); the outputs stayed in the model's metres with /diagnostics OK and metres_from
    reference_depth."""
    from fourds_ros.perception.health import WARN

    def millimetres(p, stamp: int) -> None:
        p.reference_depth.add(stamp, np.full((8, 8), 1000.0))

    p, health = described(shipped_onnx(), node_clock, "reference_depth", 40, millimetres)
    assert p.reference_depth.clips_seen == 40 and p.reference_depth.clips_used == 0
    result = level(p, health)
    assert result[0] == WARN and "metres from model (reference_depth: 0 of 1 clips counted yet)" in result[1], result
    assert "in mm" in result[1]
    assert p.status()["metric_scale_reference_age_s"] < 0.1  # heard, and not silent


def test_a_reference_with_a_model_that_lacks_the_head_it_is_compared_with_is_refused(tmp_path):
    """reference_odometry compares the reference's travel with the model's pose, reference_depth its
    depth with the model's. (The settings refuse enable_pose / enable_depth false.) A model without that
    head was accepted, its reference never counted a clip, and nothing said why. Refused at configure."""
    from fourds_ros.engine import create_engine
    from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, save_checkpoint
    from fourds_ros.perception import PerceptionPipeline, PerceptionSettings

    for source, head in (("reference_odometry", "pose"), ("reference_depth", "depth")):
        heads = {name: h for name, h in default_heads(32, 2).items() if name != head}
        cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), patch_size=(2, 16, 16), heads=heads)
        engine = create_engine(save_checkpoint(init_weights(FourDS(cfg), seed=0), tmp_path / head), backend="torch",
                               num_queries=4)
        with pytest.raises(ValueError, match=f"{source} compares the reference with the model's {head}"):
            PerceptionPipeline(engine, PerceptionSettings.from_params(metric_scale_source=source))
        PerceptionPipeline(engine, PerceptionSettings())  # the model's own metres: fine


def test_the_report_names_the_reference_asked_for_while_its_scale_is_not_in_effect():
    """report.md names the reference from metric_scale_source (what was asked); metres_from says what
    is in effect, the model's while no clip has counted, and a depth reference read as odometry."""
    from fourds_ros.evaluation.report import scale_lines

    status = {"metric_scale": 1.0, "metric_scale_clips_used": 0, "metric_scale_clips_seen": 0,
              "metres_from": "model (reference_depth: 0 of 1 clips counted yet)", "metric_scale_source": "reference_depth"}
    assert scale_lines(status)[0] == "Metric scale from the reference depth: 1.0 (clips counted: 0 of 0 it covered)."
    assert scale_lines({"metres_from": "model"}) == []


# Blind frames (too dark or flat to see: InputSettings.min_image_texture) against a reference. A fake
# engine of 8 frames at 32x32: depth 2.0 m where a frame is seen, and a pose head moving the camera
# 0.1 m forward a frame, the truth in both.
FAKE_T, FAKE_HW, FAKE_STEP = 8, 32, 0.1


class BlindingEngine:
    """2.0 m on frames it sees, `invented` m on black ones (a model's guess in the dark); the pose head's
    camera 0.1 m further forward (optical z) each frame."""

    def __init__(self, invented: float = 2.0):
        from types import SimpleNamespace

        from fourds_ros.model import DepthHeadConfig, ModelConfig, PoseHeadConfig

        self.invented = invented
        self.config = ModelConfig(size="micro", num_frames=FAKE_T, image_size=(FAKE_HW, FAKE_HW),
                                  patch_size=(2, 8, 8),
                                  heads={"depth": DepthHeadConfig(32, 2), "pose": PoseHeadConfig(32, 2)})
        self.spec = SimpleNamespace(input_shapes={"video": (1, FAKE_T, FAKE_HW, FAKE_HW, 3)}, num_queries=0)

    def __call__(self, inputs):
        video = inputs["video"][0]
        seen = video.reshape(len(video), -1).max(axis=1) > 0
        translation = np.zeros((1, FAKE_T, 3), np.float32)
        translation[0, :, 2] = FAKE_STEP * np.arange(FAKE_T)
        depth = np.where(seen, 2.0, self.invented).astype(np.float32)[None, :, None, None]
        return {"depth": depth * np.ones((1, FAKE_T, FAKE_HW, FAKE_HW), np.float32),
                "pose_rotation": np.broadcast_to(np.eye(3, dtype=np.float32), (1, FAKE_T, 3, 3)).copy(),
                "pose_translation": translation, "pose_log_variance": np.full((1, FAKE_T, 2), -4.0, np.float32)}


def blinding_run(p, blind, reference) -> list:
    """The clips' results for frames i (blind[i]: black, else random texture, 64x64) at 30 Hz;
    reference(p, i, stamp_ns) feeds the reference with each frame."""
    rng = np.random.default_rng(0)
    k = np.array([[40.0, 0, 31.5], [0, 40.0, 31.5], [0, 0, 1]])
    results = []
    for i, dark in enumerate(blind):
        stamp = i * 33_000_000
        reference(p, i, stamp)
        rgb = np.zeros((64, 64, 3), np.uint8) if dark else rng.integers(0, 255, (64, 64, 3), np.uint8)
        clip, _ = p.add_frame(rgb, stamp, "cam", k)
        if clip is not None:
            results.append(p.process(clip))
    return results


def test_reference_odometry_measures_a_clip_going_blind_only_up_to_its_last_frame_seen():
    """The clip's last 4 of 8 frames black: its motion is held at frame 3, 0.3 m, while the reference's
    travel was taken over the whole clip, 0.7 m: the scale counted was 2.33 for a truth of 1, and the
    next clip's depth was published at 4.67 m for 2 m. A clip that sees only its first frame measures
    no travel, and is not offered."""
    from fourds_ros.perception import PerceptionPipeline, PerceptionSettings

    def wheels(p, i, stamp):  # the base 0.1 m a frame straight ahead (the camera's optical z)
        p.add_reference_odometry(stamp, np.array([FAKE_STEP * i, 0, 0]), UNIT)

    def pipeline():
        return PerceptionPipeline(BlindingEngine(), PerceptionSettings.from_params(
            hop=FAKE_T, pose_source="head", metric_scale_source="reference_odometry", metric_scale_min_clips=1,
            metric_scale_window=2))

    p = pipeline()
    first, second = blinding_run(p, [4 <= i < FAKE_T for i in range(2 * FAKE_T)], wheels)
    assert first.blind == 4 and second.blind == 0
    assert list(p.reference_scale.ratios) == [pytest.approx(1.0, rel=1e-6)] * 2  # the blind clip's first
    assert p.reference_scale.scale == pytest.approx(1.0, rel=1e-6)
    assert [float(np.nanmedian(r.depth)) for r in second.frames] == [pytest.approx(2.0, rel=1e-6)] * FAKE_T
    p = pipeline()
    (only_first,) = blinding_run(p, [i >= 1 for i in range(FAKE_T)], wheels)
    assert only_first.blind == FAKE_T - 1
    assert p.reference_scale.clips_offered == 0 and not p.reference_scale.ratios and p.reference_scale.scale == 1.0


def test_reference_depth_is_measured_on_the_frames_seen_only():
    """An RGB-D sensor measures in the dark; the model's depth of a black frame is its invention (8 m
    here, published NaN). Measured too, it set the seen frames' metres (the median over the clip's frames):
    0.625 m and 0.25 m published for 1 m with 4 and 6 of 8 frames black. A clip with no frame seen measures nothing: the scale stays."""
    from fourds_ros.perception import PerceptionPipeline, PerceptionSettings

    def sensor(p, i, stamp):  # the truth: 1 m everywhere, dark or not
        p.add_reference_depth(stamp, np.full((64, 64), 1.0, np.float32))

    for n_blind in (0, 4, 6):
        p = PerceptionPipeline(BlindingEngine(invented=8.0), PerceptionSettings.from_params(
            hop=FAKE_T, pose_source="head", metric_scale_source="reference_depth"))
        (result,) = blinding_run(p, [i >= FAKE_T - n_blind for i in range(FAKE_T)], sensor)
        assert result.blind == n_blind
        assert p.reference_depth.scale == pytest.approx(0.5, rel=1e-6), n_blind
        seen = [float(np.nanmedian(r.depth)) for r in result.frames if np.isfinite(r.depth).any()]
        assert seen == [pytest.approx(1.0, rel=1e-6)] * (FAKE_T - n_blind), n_blind
    p = PerceptionPipeline(BlindingEngine(invented=8.0), PerceptionSettings.from_params(
        hop=FAKE_T, pose_source="head", metric_scale_source="reference_depth"))
    _, dark = blinding_run(p, [i >= FAKE_T for i in range(2 * FAKE_T)], sensor)  # the first clip seen
    assert dark.blind == FAKE_T and p.reference_depth.clips_used == 1
    assert p.reference_depth.scale == pytest.approx(0.5, rel=1e-6)
    assert p.reference_depth.motion_scale == pytest.approx(0.5, rel=1e-6)


def test_metric_scale_min_clips_is_checked_against_the_window_for_reference_odometry_only():
    """metric_scale_min_clips is reference_odometry's (reference_depth takes its first clip's scale), yet
    it was checked against metric_scale_window for every source: reference_depth with a window of 1 or
    3 (under the default min_clips 5) failed to configure."""
    from fourds_ros.perception import PerceptionSettings

    for window in (1, 3):
        settings = PerceptionSettings.from_params(metric_scale_source="reference_depth", metric_scale_window=window)
        assert settings.scale.window == window and settings.scale.min_clips == 5
    with pytest.raises(ValueError, match=r"metric_scale_min_clips \(5\) must not exceed metric_scale_window \(3\)"):
        PerceptionSettings.from_params(metric_scale_source="reference_odometry", metric_scale_window=3,
                                       metric_scale_min_clips=5)


def test_reference_depth_further_than_20_ms_is_not_paired():
    """A depth image pairs with a frame within 20 ms (DEPTH_MAX_DT_NS): one a second older, paired, set a wrong
    metric scale while the camera moved (session 63's mutation review)."""
    from fourds_ros.perception.metric_scale import DepthReferenceScale

    ms = 1_000_000
    ref = DepthReferenceScale()
    ref.add(0, np.full((8, 8), 2.0))
    assert not ref.measure([1000 * ms + i * 33 * ms for i in range(4)], np.ones((4, 8, 8))) and ref.scale == 1.0
    ref.add(1000 * ms + 15 * ms, np.full((8, 8), 2.0))
    assert ref.measure([1000 * ms], np.ones((1, 8, 8))) and ref.scale == 2.0



def test_the_turn_gate_reads_the_rotation_of_the_sample_nearer_the_clips_last_frame():
    """Samples 400 ms apart (bracketing, under MAX_BRACKET_NS), the base turning 90 deg between them; a
    clip from the first sample to 350 ms (nearer the second) turned 90 deg by the reference, not 0."""
    ref = ReferenceScale(min_distance_m=0.0, max_rotation_deg=30.0, window=5, min_clips=1)
    from transforms3d.quaternions import axangle2quat

    q90 = axangle2quat([0, 0, 1], math.pi / 2)  # w x y z
    assert ref.add(0, np.zeros(3), np.array([0.0, 0, 0, 1])) is None
    assert ref.add(400 * MS, np.array([0.4, 0, 0]), np.r_[q90[1:], q90[0]]) is None
    distance, turned = ref.camera_travel(0, 350 * MS, np.eye(4))
    assert abs(distance - 0.35) < 1e-9
    assert abs(math.degrees(turned) - 90.0) < 1e-6
    assert not ref.observe(0, 350 * MS, np.array([0.35, 0, 0]), np.eye(4))  # over max_rotation_deg
    assert ref.clips_turned == 1


def test_a_clip_that_drives_straight_is_not_counted_as_turned():
    """metric_scale_clips_turned (and health's hint that names the turn gate) counts only the clips
    refused for turning more than max_rotation_deg."""
    ref = ReferenceScale(min_distance_m=0.1, max_rotation_deg=30.0, window=5, min_clips=1)
    for i in range(5):
        assert ref.add(i * 100 * MS, np.array([0.1 * i, 0, 0]), np.array([0.0, 0, 0, 1])) is None
    assert ref.observe(0, 400 * MS, np.array([0.2, 0, 0]), np.eye(4))
    assert ref.clips_turned == 0 and ref.clips_used == 1 and abs(ref.scale - 2.0) < 1e-9
    assert ref.status()["metric_scale_clips_turned"] == 0


def test_a_depth_clip_is_checked_against_the_windows_scale_not_the_configured_factor():
    """After clips that put the scene at 10x the model's metres (metric_scale_factor 1), a clip reading
    0.2x (a glitch, 50x off the window) is refused, while a clip at 25x (2.5x off the window, 25x off
    the factor) counts."""
    from fourds_ros.perception.metric_scale import DepthReferenceScale

    ref = DepthReferenceScale(initial=1.0, window=5)
    own = np.ones((1, 8, 8), np.float32)
    stamp = 0
    for ratio in (8.0, 10.0, 12.0):
        stamp += 100 * MS
        ref.add(stamp, np.full((8, 8), ratio, np.float32))
        assert ref.measure([stamp], own)
    stamp += 100 * MS
    ref.add(stamp, np.full((8, 8), 0.2, np.float32))
    assert not ref.measure([stamp], own) and ref.motion_scale == 10.0
    stamp += 100 * MS
    ref.add(stamp, np.full((8, 8), 25.0, np.float32))
    assert ref.measure([stamp], own) and ref.scale == 25.0
