"""PerceptionPipeline on a real (tiny, random) checkpoint and real 7-Scenes frames."""

import dataclasses

import cv2
import numpy as np
import pytest

from fourds_ros.engine import create_engine
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.perception.slow_engine import SlowEngine
from fourds_ros.rgbd import seven_scenes_rgb_intrinsics

from .conftest import SHARED_DATA, require

SCENES = SHARED_DATA / "7scenes_redkitchen_f000-299"


class CountingEngine(SlowEngine):
    """A real engine with a call counter (delay 0): checks one engine pass per clip."""

    def __init__(self, engine):
        super().__init__(engine, 0.0)
        self.calls = 0

    def __call__(self, inputs):
        self.calls += 1
        return self.engine(inputs)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return create_engine(tiny_model_dir, backend="torch", num_queries=16)


def scenes_frames(n):
    root = require(SCENES)
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(root.glob("*.color.jpg"))[:n]]
    return frames, seven_scenes_rgb_intrinsics(root)


def test_default_hop_shares_one_frame_between_clips(engine):
    assert engine.config.num_frames == 4
    assert PerceptionPipeline(engine, PerceptionSettings.from_params()).hop == 3
    assert PerceptionPipeline(engine, PerceptionSettings.from_params(hop=2)).hop == 2


def test_every_frame_described_once_with_its_stamp(engine):
    counting = CountingEngine(engine)
    pipe = PerceptionPipeline(counting, PerceptionSettings.from_params(hop=2, max_tracks=12))
    frames, k = scenes_frames(10)
    results = []
    for i, rgb in enumerate(frames):
        results += pipe.push(rgb, 1_000_000_000 + i * 33_000_000, "kitchen_optical", k)
    assert counting.calls == 4  # clips end at frames 3, 5, 7, 9: one engine pass each
    assert [r.index for r in results] == list(range(10))
    assert [r.stamp_ns for r in results] == [1_000_000_000 + i * 33_000_000 for i in range(10)]
    for r in results:
        assert r.frame_id == "kitchen_optical" and r.has_camera_info
        assert r.depth.shape == (32, 32) and r.depth.dtype == np.float32
        assert np.isclose(r.depth_k[0, 0], k[0, 0] * 32 / 480)  # center crop 480x480 -> 32x32
        assert len(r.tracks) == 12 and r.tracks.xyz.shape == (12, 3) and r.tracks.ids.dtype == np.uint32
        z = r.tracks.xyz[:, 2]
        assert np.all(np.isnan(z) | (z > 0))
        assert r.pose.odom_from_camera.shape == (4, 4) and np.all(np.diag(r.pose.covariance) > 0)
    assert np.allclose(results[0].pose.odom_from_camera[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-5)


@pytest.mark.parametrize("refinement", ["flow", "template"])
def test_status_counts_what_placed_the_track_steps_with_flow_refinement(engine, refinement):
    pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(hop=3, max_tracks=12,
                                                                     track_refinement=refinement))
    frames, k = scenes_frames(7)
    for i, rgb in enumerate(frames):
        pipe.push(rgb, i * 33_000_000, "kitchen_optical", k)
    status = pipe.status()
    if refinement != "flow":  # no LK steps to count: the keys are absent, not zero
        assert "track_steps" not in status
        return
    # Two 4-frame clips: at most 3 steps a clip for each of the 12 tracks (those the image can
    # follow), LK's failures among them, and the head's confirmed positions among those.
    assert 0 < status["track_steps"] <= 2 * 3 * 12
    assert 0 <= status["track_steps_head_taken"] <= status["track_steps_lk_lost"] <= status["track_steps"]


def test_camera_resolution_depth_and_disabled_heads(engine):
    pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(hop=4, depth_output_resolution="camera",
                                                       enable_tracks=False, enable_pose=False))
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    results = []
    for i in range(4):
        results += pipe.push(rgb, i * 10**8, "cam")  # no K: the default field of view
    assert len(results) == 4
    r = results[0]
    assert not r.has_camera_info and r.tracks is None and r.pose is None
    assert r.depth.shape == (48, 64)
    assert np.all(np.isnan(r.depth[:, :8])) and np.all(np.isnan(r.depth[:, 56:]))  # outside the crop
    assert np.isfinite(r.depth[:, 8:56]).mean() > 0.5


def test_time_jump_backwards_restarts_odometry(engine):
    pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(hop=2))
    rgb = np.full((32, 32, 3), 100, np.uint8)
    first = [r for i in range(6) for r in pipe.push(rgb, (10 + i) * 10**8, "cam")]
    looped = [r for i in range(4) for r in pipe.push(rgb, i * 10**8, "cam")]
    assert pipe.buffer.resets["time_backwards"] == 1
    assert len(first) == 6 and len(looped) == 4
    assert np.allclose(looped[0].pose.odom_from_base, np.eye(4), atol=1e-6)  # restarted at identity
    assert looped[0].tracks.ids.min() > first[-1].tracks.ids.max()  # new sequence, new track ids


def test_reset_keeps_a_clip_already_cut(engine):
    """A manual reset between cutting a clip and running it loses no frame: the waiting clip is
    described in the old odometry chain, and the next clip restarts it at identity."""
    pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(hop=2))
    rgb = np.full((32, 32, 3), 100, np.uint8)
    first = [r for i in range(4) for r in pipe.push(rgb, (10 + i) * 10**8, "cam")]
    clip = None
    for i in range(4, 6):
        clip, _ = pipe.add_frame(rgb, (10 + i) * 10**8, "cam")
    assert clip is not None
    pipe.reset("manual")  # the node's ~/reset while `clip` waits for inference
    waiting = pipe.process(clip)
    assert not waiting.odometry_restarted and [r.stamp_ns for r in waiting.frames] == [14 * 10**8, 15 * 10**8]
    after = [pipe.process(c) for i in range(4) if (c := pipe.add_frame(rgb, (20 + i) * 10**8, "cam")[0])]
    assert len(first) == 4 and len(after) == 1 and after[0].odometry_restarted
    assert np.allclose(after[0].frames[0].pose.odom_from_base, np.eye(4), atol=1e-6)


def test_a_reset_cuts_the_frames_since_the_last_clip_into_a_clip_of_their_own(engine):
    """~/reset more often than a clip fills (every 3 frames, 4-frame clips) dropped each reset's frames, so nothing
    was ever described. reset now returns a clip of them, as the buffer's other resets do (the ended sequence's,
    its last frame held still for the frame it lacks). Run after later resets (inference behind), each still
    starts the chain of its own sequence, which its reset ended: no pose gap joins it to the chain before."""
    pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(hop=2))
    stamps = [10**9 + i * 66_666_667 for i in range(9)]
    cut = []
    for burst in range(3):
        for stamp in stamps[3 * burst:3 * burst + 3]:
            rgb = np.random.default_rng(stamp).integers(0, 256, (32, 32, 3), dtype=np.uint8)
            assert pipe.add_frame(rgb, stamp, "cam")[0] is None
        cut.append(pipe.reset("manual"))
    assert pipe.reset("manual") is None  # nothing buffered since: no clip
    results = [pipe.process(clip) for clip in cut]
    assert [r.stamp_ns for result in results for r in result.frames] == stamps
    assert [result.odometry_restarted for result in results] == [True, True, True]
    assert [result.odometry_chain for result in results] == [0, 1, 2]
    status = pipe.status()
    assert status["frames_reset"] == 0 and status["pose_gaps"] == 0 and pipe.buffer.resets["manual"] == 4


def test_a_reset_landing_anywhere_in_the_start_of_a_sequence_still_restarts_odometry(engine):
    """The ~/reset service runs on the executor's thread while the worker may be starting a clip's
    sequence (_start_sequence), which read the restart request and cleared it after: a reset landing
    in between was erased, and odometry never restarted. Here a second reset lands before each line of
    _start_sequence in turn (a trace hook, deterministic): the clip after it restarts every time."""
    import sys

    code = PerceptionPipeline._start_sequence.__code__

    def run(land_at: int | None):
        """-> (the lines of _start_sequence run, whether the reset landed, the clip after it)."""
        pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(hop=2))
        stamps = iter(range(10**9, 2 * 10**9, 33_000_000))

        def clip_of(n: int):  # n more frames -> the clip they complete
            for stamp in (next(stamps) for _ in range(n)):
                rgb = np.random.default_rng(stamp).integers(0, 256, (32, 32, 3), dtype=np.uint8)
                clip, _ = pipe.add_frame(rgb, stamp, "cam")
            return clip

        pipe.process(clip_of(4))
        pipe.reset("manual")
        clip, lines, landed = clip_of(4), set(), []

        def line(frame, event, arg):
            if event == "line":
                lines.add(frame.f_lineno)
                if frame.f_lineno == land_at and not landed:
                    pipe.reset("manual")
                    landed.append(land_at)
            return line

        previous = sys.gettrace()
        sys.settrace(lambda frame, event, arg: line if frame.f_code is code else None)
        try:
            pipe.process(clip)
        finally:
            sys.settrace(previous)
        return lines, bool(landed), pipe.process(clip_of(4))

    lines, _, _ = run(None)
    not_restarted = []
    for at in sorted(lines):
        _, landed, after = run(at)
        assert landed
        if not (after.odometry_restarted and np.allclose(after.frames[0].pose.odom_from_base, np.eye(4), atol=1e-6)):
            not_restarted.append(at - code.co_firstlineno)
    assert len(lines) >= 5 and not_restarted == [], "a reset landing at these lines of _start_sequence was lost"


@pytest.mark.parametrize(("refinement", "fallback", "made"), [("template", True, True), ("template", False, True),
                                                              ("none", False, False)])
def test_gray_made_once_on_arrival_only_when_the_tracks_match_on_images(engine, refinement, fallback, made):
    from fourds_ros.perception.track_refine import gray, gray8
    from fourds_ros.perception.tracks import ClipImages

    frames, k = scenes_frames(1)
    pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(track_refinement=refinement,
                                                                     track_image_fallback=fallback))
    pipe.add_frame(frames[0], 0, "camera", k)
    frame = pipe.buffer.frames[-1]
    assert (frame.gray is not None) == made
    if made:
        assert frame.gray.dtype == np.uint8 and np.array_equal(frame.gray, gray8(frames[0]))
        images = ClipImages([frames[0]], [frame.gray])
        assert images.gray8(0) is frame.gray and images[0] is frame.gray  # used, not converted again
        assert images.gray(0) is images.gray(0) and np.array_equal(images.gray(0), gray(frames[0]))  # float once


def test_depth_is_handed_over_before_tracks_and_pose_and_the_messages_split_by_part(engine):
    """process(on_depth=...) gives the frames' depth before tracks and pose exist (the node sends
    it then); the finished results are the same as without the callback, and the output messages
    split into the depth part and the rest with nothing sent twice or left out."""
    from fourds_ros.ros.outputs import PARTS, OutputMessages

    frames, k = scenes_frames(4)
    settings = PerceptionSettings.from_params(max_tracks=12)
    plain, early = PerceptionPipeline(engine, settings), PerceptionPipeline(engine, settings)
    seen = []

    def on_depth(partial):  # a snapshot: the same FrameResult objects get tracks and pose later
        seen.append([(r.depth is not None, r.tracks is None, r.pose is None) for r in partial.frames])

    for i, rgb in enumerate(frames):
        clip_a, _ = plain.add_frame(rgb, i * 33_000_000, "cam", k)
        clip_b, _ = early.add_frame(rgb, i * 33_000_000, "cam", k)
    a, b = plain.process(clip_a), early.process(clip_b, on_depth=on_depth)
    assert seen == [[(True, True, True)] * 4]
    for ra, rb in zip(a.frames, b.frames):
        assert np.array_equal(ra.depth, rb.depth, equal_nan=True)
        assert np.allclose(ra.tracks.u, rb.tracks.u) and np.allclose(ra.pose.odom_from_camera, rb.pose.odom_from_camera)

    def keys(parts):
        return [key for key, _ in OutputMessages(settings).build(b, {}, lambda key: True, parts)]

    everything = keys(PARTS)
    assert everything.count("tracks") == 4 and everything.count("markers") == 1  # markers: the newest frame's
    one_trail = {0: np.zeros((2, 2))}  # track 0's recent input pixels
    markers = dict(OutputMessages(settings).build(b, one_trail, lambda key: True))["markers"].markers
    assert len(markers) == 2 and markers[1].header.stamp.nanosec == b.frames[-1].stamp_ns % 10**9
    depth_first = keys(("depth",)) + keys(("tracks", "pose"))
    assert sorted(depth_first) == sorted(everything)
    assert set(keys(("depth",))) == {"depth", "depth_info", "depth_points"}
    assert "path" in keys(("tracks", "pose")) and "depth" not in keys(("tracks", "pose"))
    with pytest.raises(ValueError, match="unknown output parts"):
        keys(("depth", "colour"))
    # the path, up to path_max_length poses, is sent only while someone subscribes, and keeps its
    # poses meanwhile: a subscriber that comes later gets all of them
    outputs = OutputMessages(settings)
    unwatched = [key for key, _ in outputs.build(b, {}, lambda key: key != "path")]
    assert "path" not in unwatched and unwatched.count("odometry") == 4
    assert b.odometry_restarted  # the first clip starts the path; a next clip of the same chain adds to it
    watched = dict(outputs.build(dataclasses.replace(b, odometry_restarted=False), {}, lambda key: True))
    assert len(watched["path"].poses) == 8


def test_depth_first_sends_depth_once_and_leaves_it_to_the_rest_when_sending_fails(engine):
    from fourds_ros.ros.outputs import OUTPUTS, PARTS, DepthFirst, OutputMessages

    class Recorder:  # a publisher's two methods that OutputMessages calls
        def __init__(self, key, sent, fail=False):
            self.key, self.sent, self.fail = key, sent, fail

        def get_subscription_count(self):
            return 1

        def publish(self, msg):
            if self.fail:
                raise RuntimeError("publisher gone")
            self.sent.append(self.key)

    frames, k = scenes_frames(4)
    settings = PerceptionSettings.from_params(max_tracks=12)
    for fail in (False, True):
        pipe, sent, warnings = PerceptionPipeline(engine, settings), [], []
        publishers = {key: Recorder(key, sent, fail and key == "depth") for key in OUTPUTS}
        outputs = OutputMessages(settings)
        send_depth = DepthFirst(outputs, publishers, lambda kind, text, w=warnings: w.append((kind, text)))
        for i, rgb in enumerate(frames):
            clip, _ = pipe.add_frame(rgb, i * 33_000_000, "cam", k)
        result = pipe.process(clip, on_depth=send_depth)
        before = list(sent)
        assert send_depth.rest == (PARTS if fail else ("tracks", "pose"))
        assert ("odometry" in before) is False  # the depth went (or was tried) before any pose existed
        if not fail:
            assert before.count("depth") == 4 and not warnings
        else:
            assert warnings and warnings[0][0] == "publish" and "publisher gone" in warnings[0][1]
        publishers["depth"].fail = False
        depth_s = send_depth.seconds
        send_depth.send_rest(result, {})
        assert sent.count("depth") == 4 and sent.count("odometry") == 4  # each frame's depth sent exactly once
        # the sending is timed, the depth's and the rest's together, and reported with the clip's stages
        assert 0 < depth_s < send_depth.seconds
        assert send_depth.stages(result) == {**result.stage_s, "send": send_depth.seconds} and "pose" in result.stage_s


def test_each_clip_says_how_long_its_stages_took(engine):
    """ClipResult.stage_s: the seconds of the CPU stages after the engine (what /diagnostics and
    `bench node` report per stage). Each timed stage ran, took time, and they fit inside the clip's
    own time; the epipolar direction is part of the pose; a disabled head's stage is not timed."""
    import time

    from fourds_ros.perception.pipeline import STAGES

    frames, k = scenes_frames(7)
    pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(max_tracks=12, hop=3))
    timed = []
    for i, rgb in enumerate(frames):
        clip, _ = pipe.add_frame(rgb, i * 33_000_000, "cam", k)
        if clip is not None:
            t0 = time.perf_counter()
            result = pipe.process(clip)
            timed.append((time.perf_counter() - t0, result))
    assert len(timed) == 2
    for wall_s, result in timed:
        assert {"refine", "tracks_update", "pose"} <= set(result.stage_s) <= set(STAGES), result.stage_s
        assert all(v > 0 for v in result.stage_s.values()), result.stage_s
        after_engine = sum(v for name, v in result.stage_s.items() if name != "epipolar")
        assert after_engine + result.inference_s <= wall_s, (result.stage_s, wall_s)
        assert result.stage_s.get("epipolar", 0.0) <= result.stage_s["pose"]
    assert timed[0][1].stage_s is not timed[1][1].stage_s  # each clip its own
    no_tracks = PerceptionPipeline(engine, PerceptionSettings.from_params(enable_tracks=False, pose_source="head", hop=3))
    for i, rgb in enumerate(frames[:4]):
        clip, _ = no_tracks.add_frame(rgb, i * 33_000_000, "cam", k)
    assert set(no_tracks.process(clip).stage_s) <= {"pose", "epipolar"}


def test_the_pose_geometry_solves_on_tracks_that_enable_tracks_false_does_not_publish(engine):
    """enable_tracks false with the geometric pose (the default fused): the tracks are made for the
    pose and not published. Before, the engine's placeholder queries (every one at pixel (0, 0))
    were the pose's tracks: PnP failed on every frame and relinked steps stood in for it."""
    frames, k = scenes_frames(7)
    results = {}
    for enable in (True, False):
        pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(enable_tracks=enable, hop=3))
        solved = []
        for i, rgb in enumerate(frames):
            clip, _ = pipe.add_frame(rgb, i * 33_000_000, "cam", k)
            if clip is not None:
                out = pipe.process(clip)
                solved += [f.pose.odom_from_camera for f in out.frames]
                published = [f.tracks for f in out.frames]
        results[enable] = solved, published, pipe.pose_relinked
    assert all(t is not None for t in results[True][1]) and all(t is None for t in results[False][1])
    assert results[False][2] == results[True][2]  # no more relinked steps than with tracks published
    np.testing.assert_allclose(results[False][0], results[True][0], atol=1e-9)  # the same pose either way


@pytest.mark.parametrize("source", ["model", "reference_odometry"])
def test_configure_says_whose_metres_the_outputs_are_in(tiny_model_dir, source):
    """With the model's own metres the team is told, once, that they hold on scenes like the
    training rooms only and how to take the wheels' instead; /diagnostics carries the source."""
    from fourds_ros.perception.pipeline import MODEL_METRES_NOTE, create_pipeline

    said = []
    pipe, _ = create_pipeline(PerceptionSettings.from_params(model=str(tiny_model_dir), backend="torch",
                                                             metric_scale_source=source), log=said.append)
    assert (MODEL_METRES_NOTE in said) == (source == "model")
    assert pipe.isolate_stages  # the node's pipeline keeps a clip's other outputs when a stage raises
    status = pipe.status()
    assert status.get("metric_scale_source", status["metres_from"]) == source
    # a reference's metres are in effect only once it has counted clips: until then the model's
    assert status["metres_from"] == source if source == "model" else status["metres_from"].startswith("model (")


def test_configure_says_which_backend_auto_chose_and_why_through_the_nodes_logger(tiny_model_dir, monkeypatch):
    """backend auto: the factory's choice and each skip's reason reach the node's own logger (they went to Python
    logging, which a ROS node does not show: a GPU robot's log never said why TensorRT was skipped). Here
    TensorRT is made to fail as a broken install does; its reason is a warning, the choice an info line."""
    from fourds_ros.engine import factory
    from fourds_ros.perception.pipeline import create_pipeline

    real = factory._Builder.__call__

    def broken_tensorrt(self, name):
        if name == "tensorrt":
            raise factory.EngineError("libnvinfer.so.10: cannot open shared object file")
        return real(self, name)

    monkeypatch.setattr(factory._Builder, "__call__", broken_tensorrt)
    info, warn = [], []
    create_pipeline(PerceptionSettings.from_params(model=str(tiny_model_dir), backend="auto"), info.append, warn.append)
    assert any("skipping tensorrt: libnvinfer.so.10" in m for m in warn), warn
    assert any(m.startswith("backend auto chose onnxruntime") and "libnvinfer" in m for m in info), info


def test_track_queries_before_the_first_image_are_bounded_and_the_newest_kept(engine):
    """track_query_mode topic, queries arriving while the camera is down: only the newest
    num_queries can be seeded, and no more are kept (every message was, for as long as it lasted)."""
    pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(track_query_mode="topic", max_tracks=16))
    for i in range(1000):
        pipe.add_track_queries(np.full((5, 2), float(i)))
    kept = pipe._early_queries
    assert 16 <= len(kept) < 16 + 5 and kept[-1, 0] == 999.0
    frames, k = scenes_frames(1)
    pipe.push(frames[0], 1_000_000_000, "kitchen_optical", k)
    assert not len(pipe._early_queries) and len(pipe.tracks.pending_topic_queries) == 16
    assert pipe.status()["track_queries_refused_over_capacity"] == 5000 - 16  # counted, not silently gone


def test_a_mount_given_while_a_clip_of_earlier_frames_waits_applies_from_the_frames_after_it(engine):
    """The node gives TF's mount (or another camera's) on the image thread while a clip of earlier
    frames may still wait for inference: that clip's odometry read the new mount (review of session
    54's diff). A clip's odometry now reads the mount its frames came with."""
    from fourds_ros.perception.odometry import default_base_from_camera

    frames, k = scenes_frames(12)
    pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(hop=4))
    clips = []
    for i, rgb in enumerate(frames):
        clip, _ = pipe.add_frame(rgb, i * 33_333_333, "cam", k)
        if clip is not None:
            clips.append(clip)
        if i == 4:  # after the first clip's frames, before it runs
            ahead = default_base_from_camera()
            ahead[:3, 3] = (0.3, 0.0, 0.2)
            pipe.set_camera_mount(ahead)
    assert len(clips) >= 2
    pipe.process(clips[0])
    np.testing.assert_allclose(pipe.odometry.base_from_camera, default_base_from_camera())  # its frames' mount
    pipe.process(clips[1])
    np.testing.assert_allclose(pipe.odometry.base_from_camera[:3, 3], (0.3, 0.0, 0.2))


def test_out_of_range_depth_is_marked_only_in_the_published_image(engine):
    """min_depth / max_depth cutting part of the view at each end: the published image marks those
    pixels -inf / +inf (REP 117), while the tracks' xyz and the pose read them as no depth, as
    before: no infinite xyz, and the same xyz and pose as with depth not published (at scale 1 the
    pose solves on the very array the image is made from, so a mark written into it would move them)."""
    frames, k = scenes_frames(7)
    runs = {}
    for enable in (True, False):
        pipe = PerceptionPipeline(engine, PerceptionSettings.from_params(hop=3, min_depth=0.4, max_depth=0.9,
                                                                         enable_depth=enable))
        runs[enable] = [r for i, rgb in enumerate(frames) for r in pipe.push(rgb, i * 33_000_000, "cam", k)]
    marked = np.stack([r.depth for r in runs[True]])
    assert np.isneginf(marked).mean() > 0.05 and np.isposinf(marked).mean() > 0.05
    assert all(r.depth is None for r in runs[False])
    z = np.concatenate([r.tracks.xyz[:, 2] for r in runs[True]])
    assert np.isnan(z).any() and not np.isinf(z).any()  # tracks out of range: unknown, as before
    for a, b in zip(runs[True], runs[False], strict=True):
        np.testing.assert_array_equal(a.tracks.xyz, b.tracks.xyz)
        np.testing.assert_allclose(a.pose.odom_from_camera, b.pose.odom_from_camera, atol=1e-9)


def test_a_model_without_the_enabled_heads_fails_configure_or_says_what_is_not_published(tmp_path):
    """A backbone-only model configured, reported healthy and published nothing (after ONNX Runtime refused
    its graph with no output); one with a depth head only dropped tracks and pose without a word."""
    from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, save_checkpoint
    from fourds_ros.perception.pipeline import create_pipeline

    def model(name, heads):
        cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), patch_size=(2, 16, 16), heads=heads)
        return save_checkpoint(init_weights(FourDS(cfg), seed=0), tmp_path / name)

    settings = PerceptionSettings.from_params({"model": str(model("backbone", {})), "backend": "torch"})
    with pytest.raises(ValueError, match="none of the enabled outputs' heads .* it would publish nothing"):
        create_pipeline(settings, log=lambda _: None)
    from fourds_ros.engine import EngineError
    from fourds_ros.engine.export import export_onnx
    from fourds_ros.evaluation.bag import BagData
    from fourds_ros.evaluation.offline import run_offline
    from fourds_ros.model import CheckpointError, load_checkpoint

    with pytest.raises(CheckpointError, match="it would publish nothing"):  # eval --offline: it scored nothing
        run_offline(BagData(tmp_path / "bag"), tmp_path / "backbone", "torch", settings)
    with pytest.raises(EngineError, match="no heads"):  # export-onnx wrote a graph of no output
        export_onnx(load_checkpoint(tmp_path / "backbone"), tmp_path / "backbone.onnx")
    assert not (tmp_path / "backbone.onnx").exists()
    warned = []
    depth_only = {"depth": default_heads(32, 2)["depth"]}
    settings = PerceptionSettings.from_params({"model": str(model("depth", depth_only)), "backend": "torch"})
    pipeline, _ = create_pipeline(settings, log=lambda _: None, warn=warned.append)
    assert pipeline.enabled == {"depth": True, "tracks": False, "pose": False}
    assert len(warned) == 1 and "no tracks or pose head" in warned[0] and "enable_tracks: false" in warned[0]
    silent = []
    settings = PerceptionSettings.from_params({"model": str(model("depth2", depth_only)), "backend": "torch",
                                               "enable_tracks": False, "enable_pose": False})
    create_pipeline(settings, log=lambda _: None, warn=silent.append)
    assert silent == []  # what the settings asked for: nothing to say


def test_a_short_sequences_padding_does_not_pull_its_motion(shipped_engine):
    """A camera stopped after 3 frames: its flushed clip repeats the last frame 5 times. Fitted as real frames
    by the motion smoothing (pose_smoothing_order 2), that padding pulled the last real frame's travel 41 %
    short on the kitchen. The padding is unseen now: three real frames are fitted exactly by the smoothing's
    polynomial, so the poses are those of no smoothing (order 0)."""
    scenes = require(SHARED_DATA / "7scenes_redkitchen_f000-299")
    k = seven_scenes_rgb_intrinsics(scenes)
    images = [cv2.cvtColor(cv2.imread(str(scenes / f"frame-{i * 12:06d}.color.jpg")), cv2.COLOR_BGR2RGB)
              for i in range(3)]

    def travel(order: int) -> np.ndarray:
        pipeline = PerceptionPipeline(shipped_engine, PerceptionSettings.from_params(pose_smoothing_order=order))
        for i, image in enumerate(images):
            assert pipeline.push(image, (i + 1) * 132_000_000, "cam", k) == []
        frames = pipeline.process(pipeline.flush()).frames
        assert len(frames) == 3
        # the padding is no blind frame: the epipolar direction still runs on the first and last views
        assert pipeline.status()["pose_epipolar_clips"] == 1
        return np.array([f.pose.odom_from_camera[:3, 3] for f in frames])

    smoothed, unsmoothed = travel(2), travel(0)
    assert np.linalg.norm(unsmoothed[2] - unsmoothed[0]) > 0.005  # the camera moved
    np.testing.assert_allclose(smoothed, unsmoothed, atol=2e-4)


def test_a_short_sequences_padding_is_stamped_on_at_the_real_step():
    """The smoothing fits in time only where stamps increase: the padding's repeated stamp turned a short
    sequence with a dropped frame into frame counts (16 % off). It goes on at the real frames' median step."""
    from fourds_ros.perception.pipeline import padded_stamps

    assert padded_stamps([0, 33, 66, 200, 233, 233, 233, 233], 3) == [0, 33, 66, 200, 233, 266, 299, 332]
    assert padded_stamps([5, 5, 5], 2) == [5, 6, 7]  # one real frame: any increasing stamps
    assert padded_stamps([0, 33, 66], 0) == [0, 33, 66]
