"""FrameIntake with a real (tiny, random) pipeline and a real InferenceWorker: camera_info checks,
decode errors, late frames, resets, the camera mount and frame accounting, without ROS."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from .conftest import wait_for
from fourds_ros.engine import create_engine
from fourds_ros.perception.camera import Calibration
from fourds_ros.perception.health import NodeHealth, NodeState
from fourds_ros.perception.image import ImageDecodeError
from fourds_ros.perception.intake import MAX_FRAME_ID_CHARS, FrameIntake, image_frame_id
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.preprocess import default_intrinsics
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.perception.worker import InferenceWorker

HZ30 = 33_333_333
T0 = 1_000_000_000_000
FLUSH_S = 0.05
WAIT_S = 4.0
TUM_K = np.array([[517.3, 0.0, 318.6], [0.0, 516.5, 255.3], [0.0, 0.0, 1.0]])
TUM_D = (0.2624, -0.9531, -0.0054, 0.0026, 1.1633)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return create_engine(tiny_model_dir, backend="torch", num_queries=4)


class Rig:
    """The node's wiring of intake, pipeline, worker and health, with the published results kept."""

    def __init__(self, engine, camera_mount=None, start=True, max_waiting_clips=1, camera_info_startup_wait_s=0.0,
                 image_rectified=False):
        # flush_after_s small so that a test can flush after a short idle (the pipeline ignores it);
        # no startup wait unless a test asks, so that frames pushed without camera_info go through at once
        self.settings = PerceptionSettings.from_params(hop=2, max_tracks=4, flush_after_s=FLUSH_S,
                                                       max_waiting_clips=max_waiting_clips,
                                                       camera_info_startup_wait_s=camera_info_startup_wait_s,
                                                       image_rectified=image_rectified)
        self.pipeline = PerceptionPipeline(engine, self.settings)
        self.logged: list[str] = []
        # The node's clock under use_sim_time with a bag's /clock: the newest stamp taken in (the
        # tests' stamps start near 0, hours from the wall clock).
        self.clock_ns = 0
        self.health = NodeHealth(self.logged.append, now_ns=lambda: self.clock_ns)
        self.results = []
        self.restarted: list[bool] = []  # ClipResult.odometry_restarted, per clip run
        self.worker_errors = []
        self.worker = InferenceWorker(self.run_clip, self.worker_errors.append, self.health.counts,
                                      self.settings.clip.max_waiting_clips)
        kw = {} if camera_mount is None else {"camera_mount": camera_mount}
        self.intake = FrameIntake(self.pipeline, self.worker, self.health, self.settings, **kw)
        if start:
            self.worker.start()

    def run_clip(self, clip) -> None:  # as PerceptionNode._run_clip, without the messages (node_run_clip: with)
        t0 = time.perf_counter()
        result = self.pipeline.process(clip)
        self.health.counts["clips"] += 1
        self.results.extend(result.frames)
        self.restarted.append(result.odometry_restarted)
        self.worker.settle(lambda: self.health.record_clip([r.stamp_ns for r in result.frames], result.inference_s,
                                                           time.perf_counter() - t0))

    def image(self, stamp_ns: int, rgb=None, decode=None, frame_id: str = "cam", info: Calibration | None = None,
              paced: bool = True, encoding: str = "rgb8"):
        """One frame as the node takes it in: counted by health, its camera_info first (if any).
        paced: the next frame comes after inference caught up (a camera slower than the model), so
        no clip is superseded; otherwise frames come as fast as the test pushes them."""
        if info is not None:
            self.intake.push_info(stamp_ns, info)
        self.clock_ns = max(self.clock_ns, stamp_ns)
        self.health.frame_received(stamp_ns)
        self.intake.push_image(stamp_ns, frame_id, decode or (lambda budget: (rgb, rgb.shape[:2])), encoding)
        if paced and self.worker.running:
            self.wait_idle()

    def wait_idle(self) -> None:
        assert wait_for(self.worker.idle), "the worker did not catch up"

    def flush(self) -> None:
        """Idle for flush_after_s, then the node's flush timer."""
        self.wait_idle()
        assert wait_for(lambda: self.worker.flush_due(FLUSH_S))
        self.intake.flush_if_idle()
        self.wait_idle()

    def state(self) -> NodeState:
        """What publish_diagnostics knows beside the counters (FrameIntake.report fills in the rest)."""
        return NodeState("active", has_camera_info=self.intake.has_camera_info)

    def values(self) -> dict[str, str]:
        return self.intake.report(self.state())[2]

    def stop(self) -> None:
        self.worker.stop(timeout_s=WAIT_S)



class Publisher:
    """Keeps what is published; the two methods of a publisher that OutputMessages calls."""

    def __init__(self):
        self.msgs = []

    def get_subscription_count(self) -> int:
        return 1

    def publish(self, msg) -> None:
        self.msgs.append(msg)


def node_run_clip(r: Rig) -> dict[str, Publisher]:
    """r's clips run through PerceptionNode._run_clip itself (its counting, DepthFirst, OutputMessages)
    into recording publishers, before r.worker starts. -> the publishers by output key, and "tf"."""
    from types import SimpleNamespace

    from fourds_ros.ros.outputs import OUTPUTS, OutputMessages
    from fourds_ros.ros.perception_node import PerceptionNode

    publishers = {key: Publisher() for key in (*OUTPUTS, "tf")}
    node = SimpleNamespace(pipeline=r.pipeline, worker=r.worker, health=r.health, outputs=OutputMessages(r.settings),
                           publishers_=publishers, tf_publish=publishers["tf"].publish)
    r.worker.run_clip = lambda clip: PerceptionNode._run_clip(node, clip)
    return publishers


def sent(publishers: dict[str, Publisher], key: str) -> list[int]:
    """The stamps (ns) of the messages sent on an output ("path": the poses on the last path)."""
    msgs = publishers[key].msgs
    if key == "path":
        msgs = msgs[-1].poses if msgs else []
    elif key == "tf":
        msgs = [t for transforms in msgs for t in transforms]
    return [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in msgs]


class HeldEngine:
    """The engine, each call of which sets `entered`, then waits for `go` (set: runs at once), and
    raises instead once `fail` is set (then clears it): inference held or failed at a chosen clip."""

    def __init__(self, engine):
        self.engine, self.entered, self.go, self.fail = engine, threading.Event(), threading.Event(), False
        self.go.set()

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def __call__(self, inputs):
        self.entered.set()
        assert self.go.wait(WAIT_S), "the test never released the engine"
        if self.fail:
            self.fail = False
            raise RuntimeError("CUDA error: transient")
        return self.engine(inputs)


@pytest.fixture
def rig(engine):
    rigs = []

    def make(engine=engine, **kw):
        r = Rig(engine, **kw)
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        r.stop()


def image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def square_k(size: int = 64) -> np.ndarray:
    return np.array([[60.0, 0, (size - 1) / 2], [0, 60.0, (size - 1) / 2], [0, 0, 1]])


def stamps(n: int) -> list[int]:
    return [T0 + i * HZ30 for i in range(n)]


def test_every_frame_described_once_and_accounted(rig):
    r = rig()
    calib = Calibration(square_k(), (), "", 64, 64)
    for i, s in enumerate(stamps(11)):  # clips at frames 3, 5, 7, 9; frame 10 waits for the next hop
        r.image(s, image(64, 64, i), info=calib)
    r.wait_idle()
    assert r.intake.has_camera_info
    assert [x.stamp_ns for x in r.results] == stamps(10)
    assert r.intake.pending_frames() == 1
    values = r.values()
    assert values["frames_in"] == "11" and values["frames_out"] == "10" and values["frames_pending"] == "1"
    assert values["frames_unaccounted"] == "0"
    r.flush()  # input idle: a flushed clip describes frame 10
    assert [x.stamp_ns for x in r.results] == stamps(11)
    assert [x.index for x in r.results] == list(range(11))
    c = r.health.counts
    assert c["clips_flushed"] == 1 and c["clips"] == 5 and c["clips_dropped"] == c["frames_dropped"] == 0
    for x in r.results:
        assert x.has_camera_info and np.allclose(x.k, square_k()) and x.frame_id == "cam"
        assert x.depth is not None and x.pose is not None
    values = r.values()
    assert values["frames_out"] == "11" and values["frames_pending"] == "0"
    assert values["frames_unaccounted"] == "0"
    assert values["frames_without_own_camera_info"] == "0"  # each image had its own camera_info
    assert r.health.errors == {} and r.logged == [] and r.worker_errors == []
    assert r.health.level(r.state())[0] == 0  # OK
    r.flush()  # nothing left to describe: no second flush
    assert r.health.counts["clips_flushed"] == 1


def test_a_camera_that_stops_before_a_clip_is_full_loses_none_of_its_frames(rig):
    """Two frames and the camera stops (a micro model's clip is 4): they sat in frames_pending, never described,
    where the docs promise that a stopped camera loses none. The idle flush now describes them (the first frame
    standing in, still, for the clip's missing frames): depth and a pose for each, the first at the chain's start."""
    r = rig()
    calib = Calibration(square_k(), (), "", 64, 64)
    for i, s in enumerate(stamps(2)):
        r.image(s, image(64, 64, i), info=calib)
    r.wait_idle()
    assert r.results == [] and r.intake.pending_frames() == 2
    r.flush()
    assert [x.stamp_ns for x in r.results] == stamps(2) and [x.index for x in r.results] == [0, 1]
    assert all(x.depth is not None and np.isfinite(x.depth).any() and x.pose is not None for x in r.results)
    np.testing.assert_allclose(r.results[0].pose.odom_from_base, np.eye(4), atol=1e-9)  # the chain starts there
    assert np.isfinite(r.results[1].pose.odom_from_camera).all()
    values = r.values()
    assert values["frames_out"] == "2" and values["frames_pending"] == "0" and values["frames_unaccounted"] == "0"
    assert r.health.counts["clips_flushed"] == 1 and r.worker_errors == []


def test_frames_without_their_own_camera_info_are_counted(rig):
    """camera_info with the first of 7 frames only: the other 6 use the latest K, each counted in
    frames_without_own_camera_info (no test noticed the count stop: session 63's mutation review)."""
    r = rig()
    calib = Calibration(square_k(), (), "", 64, 64)
    for i, s in enumerate(stamps(7)):
        r.image(s, image(64, 64, i), info=calib if i == 0 else None)
    r.wait_idle()
    assert r.values()["frames_without_own_camera_info"] == "6"


def test_a_frame_whose_own_camera_info_came_late_with_another_k_is_warned_of(rig):
    """A zoom while camera_info lags (a reliable resend came frames late): the frame took the previous K, and only
    frames_without_own_camera_info counted it; the reset_camera that follows says the camera changed, not that a
    frame was described with the wrong K. Now its own camera_info arriving with another K warns camera_info_late,
    naming the frame and camera_info_wait_s. A constant K arriving after its image, or stamped otherwise, does not."""
    r = rig()
    zoomed = square_k()
    zoomed[0, 0] = zoomed[1, 1] = 90.0
    s = stamps(6)
    r.image(s[0], image(64, 64, 0), info=Calibration(square_k(), (), "", 64, 64))  # its own, first
    for i in (1, 2):  # constant K, each camera_info after its image; the second's stamped 1 ms off (another clock)
        r.image(s[i], image(64, 64, i))
        noise = 1 + 1e-6 * i  # recomputed per message: float noise is the same K
        r.intake.push_info(s[i] + (1_000_000 if i == 2 else 0), Calibration(square_k() * noise, (), "", 64, 64))
    r.image(s[3], image(64, 64, 3))  # the zoom: this frame's own camera_info comes after it
    assert "camera_info_late" not in r.health.errors
    r.intake.push_info(s[3], Calibration(zoomed, (), "", 64, 64))
    r.wait_idle()
    assert r.values()["frames_without_own_camera_info"] == "3"
    assert r.health.errors == {"camera_info_late": 1}, r.logged
    warned = next(line for line in r.logged if "[camera_info_late]" in line)
    assert f"stamp {s[3]} ns" in warned and "fx 90 vs 60" in warned and "camera_info_wait_s" in warned


def test_a_late_camera_info_with_another_size_or_distortion_is_warned_of_too(rig):
    """camera_info_late names another geometry, not only another K: a resolution switch or a new distortion
    model arriving after the frame that took the previous calibration was described with the wrong one too."""
    for late in (Calibration(square_k(), (), "", 96, 72),
                 Calibration(square_k(), (0.1, -0.05, 0.0, 0.0, 0.0), "plumb_bob", 64, 64)):
        r = rig()
        s = stamps(2)
        r.image(s[0], image(64, 64, 0), info=Calibration(square_k(), (), "", 64, 64))
        r.image(s[1], image(64, 64, 1))  # takes the latest calibration: its own comes after it...
        r.intake.push_info(s[1], late)  # ... with another size, or a distortion
        r.wait_idle()
        assert r.health.errors.get("camera_info_late") == 1, (late, r.logged)


def test_a_late_camera_info_without_k_or_for_a_frame_described_without_one_is_no_crash(rig):
    """The late-camera_info check compares the K a frame took with its own: a driver that lost its calibration (K
    all zero: none) after a frame took the latest, or a frame described with the default intrinsics (no camera_info
    yet) whose own came later, has nothing to compare, and raised AttributeError in the camera_info callback."""
    calibrated = Calibration(square_k(), (), "", 64, 64)
    r = rig()
    s = stamps(3)
    r.image(s[0], image(64, 64, 0), info=calibrated)
    r.image(s[1], image(64, 64, 1))  # takes the latest K: its own comes after it...
    r.intake.push_info(s[1], None)  # ... uncalibrated
    r.image(s[2], image(64, 64, 2))
    r.wait_idle()
    assert "camera_info_late" not in r.health.errors
    r = rig(camera_info_startup_wait_s=0.0)
    s = stamps(2)
    r.image(s[0], image(64, 64, 0))  # no camera_info yet: the default intrinsics
    r.intake.push_info(s[0], calibrated)  # its own, late
    r.image(s[1], image(64, 64, 1), info=calibrated)
    r.wait_idle()
    assert "camera_info_late" not in r.health.errors


def test_drain_describes_the_frames_after_the_last_clip_and_those_waiting_for_camera_info(rig):
    """Deactivation (FrameIntake.drain): nothing taken in is left undescribed, whatever the idle
    flush would have done: frames still waiting for a first camera_info and frames after the last
    clip both go out."""
    r = rig(camera_info_startup_wait_s=60.0)
    calib = Calibration(square_k(), (), "", 64, 64)
    first, later = stamps(11)[:2], stamps(11)[2:]
    for i, s in enumerate(first):  # no camera_info yet: they wait
        r.image(s, image(64, 64, i))
    for i, s in enumerate(later, start=2):
        r.image(s, image(64, 64, i), info=calib)
    r.wait_idle()
    assert r.intake.pending_frames() == 1  # frame 10 waits for the next hop
    r.intake.drain()
    r.wait_idle()
    assert [x.stamp_ns for x in r.results] == stamps(11)
    assert r.intake.pending_frames() == 0 and r.values()["frames_unaccounted"] == "0"
    assert r.health.counts["clips_flushed"] == 1


@pytest.mark.parametrize("max_gap_s", [1.0, 0.0])
def test_frames_after_a_reactivation_start_a_sequence_of_their_own_with_no_reset_counted(rig, max_gap_s):
    """Deactivation, a pause, re-activation (FrameIntake.drain between): no clip joins frames from both
    sides of the pause (max_gap_s 0 never resets on a gap), and the pause the node was told to take is no
    reset_gap (it was, WARN on /diagnostics after every re-activation)."""
    r = rig()
    r.pipeline.buffer.max_gap_ns = int(max_gap_s * 1e9)
    calib = Calibration(square_k(), (), "", 64, 64)
    before, after = stamps(5), [s + 120 * 10**9 for s in stamps(5)]
    for i, s in enumerate(before):
        r.image(s, image(64, 64, i), info=calib)
    r.wait_idle()
    r.intake.drain()
    r.wait_idle()
    for i, s in enumerate(after):
        r.image(s, image(64, 64, i), info=calib)
    r.intake.drain()
    r.wait_idle()
    assert [x.stamp_ns for x in r.results] == before + after  # every frame described, once
    assert not [k for k in r.health.counts if k.startswith("reset_")] and r.health.errors == {}
    assert r.health.level(r.state())[0] == 0
    assert r.pipeline.buffer.sequence == 2 and not r.pipeline.buffer.resets


@pytest.mark.parametrize("ahead_s", [0.8, 3.0])
def test_one_frame_stamped_ahead_costs_only_itself(rig, ahead_s):
    """A 20 Hz camera, one frame (8 of 30) stamped 0.8 s or 3 s ahead (clip_buffer.StampHold): that frame is
    dropped and counted (frames_rejected, stamp_outlier WARN), every other frame is described, no reset,
    the odometry chain never restarts. Before, +0.8 s made the next 16 good frames "late" (dropped), and +3 s
    reset the buffer twice (gap, time going backwards) and restarted the odometry at identity."""
    r = rig()
    calib = Calibration(square_k(), (), "", 64, 64)
    good = [T0 + i * 50_000_000 for i in range(30)]
    sent = list(good)
    sent[8] += int(ahead_s * 1e9)
    for i, s in enumerate(sent):
        r.image(s, image(64, 64, i), info=calib)
    r.intake.drain()
    r.wait_idle()
    assert [x.stamp_ns for x in r.results] == good[:8] + good[9:]
    values = r.values()
    assert values["frames_rejected"] == "1" and values["frames_out_of_order"] == "0", values
    assert r.health.errors["stamp_outlier"] == 1 and values["frames_unaccounted"] == "0"
    assert not [k for k in r.health.counts if k.startswith("reset_")], dict(r.health.counts)
    assert r.restarted[0] and not any(r.restarted[1:]), r.restarted


def test_overload_accounts_for_every_frame(rig):
    """Frames pushed faster than inference: clips are superseded, and each frame is described once
    or counted as dropped (frames described by no clip), never both and never lost."""
    r = rig()
    for i, s in enumerate(stamps(21)):
        r.image(s, image(64, 64, i), paced=False)
    r.flush()
    c = r.health.counts
    described = [x.stamp_ns for x in r.results]
    assert described == sorted(set(described))  # in order, none twice
    assert len(described) + c["frames_dropped"] == 21
    assert c["clips"] + c["clips_dropped"] == 9 + 1  # clips at frames 3, 5, ..., 19 and one flushed
    assert r.values()["frames_unaccounted"] == "0"
    assert stamps(21)[-1] in described


def test_decode_error_counts_a_rejected_frame(rig):
    r = rig()

    def bad(budget):
        raise ImageDecodeError("size", "data length 100 != step 192 * height 64")

    ss = stamps(5)
    for i, s in enumerate(ss):
        if i == 2:
            r.image(s, decode=bad)
        else:
            r.image(s, image(64, 64, i))
    r.wait_idle()
    assert r.health.counts["frames_rejected"] == 1
    assert r.health.errors["size"] == 1
    assert any(m.startswith("[size] dropping frame") for m in r.logged)
    assert [x.stamp_ns for x in r.results] == [ss[0], ss[1], ss[3], ss[4]]  # the other four: one clip
    values = r.values()
    assert values["frames_rejected"] == "1" and values["errors_size"] == "1"
    assert values["frames_unaccounted"] == "0"


def test_non_finite_k_is_counted_and_the_default_intrinsics_used(rig):
    r = rig()
    k = square_k()
    k[0, 0] = np.nan
    bad = Calibration(k, (), "", 64, 64)
    for i, s in enumerate(stamps(4)):
        r.image(s, image(64, 64, i), info=bad)
    r.wait_idle()
    assert r.health.errors["camera_info_non_finite"] == 4
    assert any(m.startswith("[camera_info_non_finite]") and "default intrinsics" in m for m in r.logged)
    assert len(r.results) == 4  # the frames still go through
    default = default_intrinsics((64, 64), r.settings.clip.default_hfov_deg)
    for x in r.results:
        assert not x.has_camera_info
        assert np.allclose(x.k, default)
    assert r.values()["frames_unaccounted"] == "0"


@pytest.mark.parametrize("kind", ["non_finite", "uncalibrated"])
def test_a_camera_info_without_a_usable_k_is_counted_once_a_frame_and_not_called_in_use(rig, kind):
    """A NaN K, or K all zero (REP-104's uncalibrated camera: convert.calibration gives None): each frame
    is counted once, under its own cause (all zero was counted twice, also as "no camera_info received
    yet", which was false), and /diagnostics says camera_info "no", since the default intrinsics are in
    use (a NaN K said "yes"). A calibrated camera_info afterwards: "yes"."""
    r = rig()
    k = square_k()
    k[0, 0] = np.nan
    bad = Calibration(k, (), "", 64, 64) if kind == "non_finite" else None
    for i, s in enumerate(stamps(4)):
        if bad is None:
            r.intake.push_info(s, None)
        r.image(s, image(64, 64, i), info=bad)
    r.wait_idle()
    errors = dict(r.health.errors)
    assert errors == {f"camera_info_{kind}": 4}, errors
    assert r.values()["camera_info"] == "no (default intrinsics)" and not r.intake.has_camera_info
    if kind == "uncalibrated":
        assert any("uncalibrated camera" in m and "no camera_info received" not in m for m in r.logged), r.logged
    r.image(stamps(5)[-1], image(64, 64, 4), info=Calibration(square_k(), (), "", 64, 64))
    r.wait_idle()
    assert r.values()["camera_info"] == "yes" and r.intake.has_camera_info


def test_no_camera_info_warns_and_uses_default_intrinsics(rig):
    r = rig()
    for i, s in enumerate(stamps(4)):
        r.image(s, image(48, 64, i))
    r.wait_idle()
    assert r.health.errors["no_camera_info"] == 4 and not r.intake.has_camera_info
    assert all(np.allclose(x.k, default_intrinsics((48, 64), 60.0)) for x in r.results) and len(r.results) == 4


def test_at_startup_a_frame_ahead_of_the_first_camera_info_is_described_with_it(rig):
    """The startup wait: the first frames arrive before any camera_info (the two
    subscriptions deliver independently) and are described with the camera's K once it comes, not
    with the default intrinsics; frames that come later without their own camera_info take it too."""
    r = rig(camera_info_startup_wait_s=5.0)  # long, so that a slow host cannot end it mid-test
    first = stamps(4)
    for i, s in enumerate(first[:2]):
        r.image(s, image(64, 64, i))
    assert r.intake.pending_frames() == 2 and not r.results  # waiting, not described with a default K
    r.intake.push_info(first[0], Calibration(square_k(), (), "", 64, 64))
    for i, s in enumerate(first[2:], start=2):
        r.image(s, image(64, 64, i))
    r.wait_idle()
    assert len(r.results) == 4 and all(x.has_camera_info and np.allclose(x.k, square_k()) for x in r.results)
    assert r.health.errors["no_camera_info"] == 0 and r.values()["frames_unaccounted"] == "0"


def test_camera_info_after_the_first_images_starts_a_new_clip_counted_as_a_reset(rig):
    """camera_info later than the startup wait: the frames before it had the default K, and a clip
    mixing them with the K'd frames took its depth scale and the pose's camera from the default K
    (test_depth_camera.py). The buffer resets there; the frame after the last clip of the default K
    is described by a clip of the default K's last frames, as any reset's are (ClipBuffer.push)."""
    calib = Calibration(square_k(), (), "", 64, 64)
    r = rig()
    for i, s in enumerate(stamps(9)):  # a clip at frame 3; frame 4 buffered when camera_info comes
        r.image(s, image(64, 64, i), info=calib if i >= 5 else None)
    r.wait_idle()
    assert [x.stamp_ns for x in r.results] == stamps(9)
    assert all(x.has_camera_info == (x.stamp_ns >= stamps(9)[5]) for x in r.results)
    values = r.values()
    assert values["resets_camera"] == "1" and values["frames_reset"] == "0", values
    assert values["frames_unaccounted"] == "0"


def test_plumb_bob_distortion_gives_the_undistorted_k(rig):
    r = rig()
    calib = Calibration(TUM_K, TUM_D, "plumb_bob", 640, 480)
    raw = [image(480, 640, i) for i in range(4)]
    for rgb, s in zip(raw, stamps(4)):
        r.image(s, rgb, info=calib)
    r.wait_idle()
    expected, _ = cv2.getOptimalNewCameraMatrix(TUM_K, np.array(TUM_D), (640, 480), 0.0, (640, 480))
    assert len(r.results) == 4 and r.health.errors == {}
    for x in r.results:
        assert x.has_camera_info
        assert np.allclose(x.k, expected, atol=1e-6)
        assert not np.allclose(x.k, TUM_K, atol=1.0)  # not the distorted camera's K
    assert r.values()["frames_unaccounted"] == "0"


def test_plumb_bob_image_is_undistorted_before_the_pipeline(rig):
    r = rig()
    calib = Calibration(TUM_K, TUM_D, "plumb_bob", 640, 480)
    raw = image(480, 640, 7)
    seen = []
    add_frame = r.pipeline.add_frame

    def spy(rgb, *args, **kw):
        seen.append(rgb)
        return add_frame(rgb, *args, **kw)

    r.pipeline.add_frame = spy
    r.image(T0, raw, info=calib)
    assert len(seen) == 1 and seen[0].shape == raw.shape and not np.array_equal(seen[0], raw)


def test_a_rectified_image_takes_p_and_is_not_undistorted_again(rig):
    """image_proc's image_rect comes with the raw camera's camera_info (its distortion, and P for the
    rectified image): undistorted a second time, features moved 17-21 px, silently."""
    p = cv2.getOptimalNewCameraMatrix(TUM_K, np.array(TUM_D), (640, 480), 0.0, (640, 480))[0]
    calib = Calibration(TUM_K, TUM_D, "plumb_bob", 640, 480, p=p)
    for rectified in (False, True):
        r = rig(image_rectified=rectified)
        seen = []

        def spy(rgb, *args, add_frame=r.pipeline.add_frame, seen=seen, **kw):
            seen.append(rgb)
            return add_frame(rgb, *args, **kw)

        r.pipeline.add_frame = spy
        rect = image(480, 640, 11)
        for s in stamps(4):
            r.image(s, rect, info=calib)
        r.wait_idle()
        assert np.array_equal(seen[0], rect) == rectified  # not warped again when rectified
        assert np.allclose(r.results[0].k, p, atol=1e-6)  # P either way: undistorting raw gives P's view too


@pytest.mark.parametrize(("image_topic", "rectified", "warned"), [("/cam/image_rect", False, True),
                                                                   ("/cam/image_rect", True, False),
                                                                   ("/cam/image_raw", False, False)])
def test_an_image_rect_with_a_lens_in_its_camera_info_is_warned_of_a_second_undistortion(rig, image_topic, rectified,
                                                                                         warned):
    """By its name the image is image_proc's rectified one, beside the driver's camera_info with its lens: with
    image_rectified off it is undistorted a second time. Counted and named now; a raw image is not warned."""
    calib = Calibration(TUM_K, TUM_D, "plumb_bob", 640, 480)
    r = rig(image_rectified=rectified)
    r.intake.subscribed(image_topic, "/cam/camera_info")
    for s in stamps(4):
        r.image(s, image(480, 640, 3), info=calib)
    r.wait_idle()
    assert bool(r.health.errors["image_rect_undistorted_again"]) == warned
    assert any("set image_rectified: true" in m for m in r.logged) == warned


@pytest.mark.parametrize(("encoding", "warned"), [("16UC1", 1), ("mono16", 0)])
def test_a_16uc1_image_is_taken_as_grey_with_one_warning_that_it_may_be_a_depth_topic(rig, encoding, warned):
    """A depth camera's topic given as the image read as a dark camera ("too dark or flat to see"), which sent a
    team after its lens: the encoding depth cameras publish is named once."""
    r = rig()
    for s in stamps(4):
        r.image(s, image(64, 64, 1), encoding=encoding)
    r.wait_idle()
    assert r.health.errors["depth_encoding_on_image"] == warned
    assert len(r.results) == 4  # described either way


def test_the_no_camera_info_warning_names_the_topic_listened_on(rig):
    r = rig()
    r.intake.subscribed("/cam/color/image_raw", "/cam/color/camera_info")
    r.image(stamps(1)[0], image(64, 64, 1))
    assert any("no camera_info received yet on /cam/color/camera_info" in m for m in r.logged), r.logged


def test_the_no_publisher_warning_names_the_image_topic_subscribed(rig):
    """A camera driver gone, or the image remapped to a topic nobody publishes: the WARN names the resolved topic
    (FrameIntake.subscribed), which publish_diagnostics does not pass."""
    r = rig()
    r.intake.subscribed("/cam/color/image_raw", "/cam/color/camera_info")
    r.health.stall_warn_s = 0.01
    r.health.activated()
    time.sleep(0.05)
    level, message, _ = r.intake.report(r.state())
    assert level == 1 and "no publisher on the image topic /cam/color/image_raw and no frame for 0 s" in message, \
        message


@pytest.mark.parametrize("transport", ["raw", "jpeg"])
def test_a_large_camera_is_divided_before_its_undistortion(rig, transport):
    """A 1280x720 camera with lens distortion: the pipeline gets the 640x360 working image (a JPEG
    decoded at that size), undistorted there, and the results carry the undistorted camera's K."""
    from fourds_ros.perception.image import decode_compressed_for_work

    r = rig()
    k = TUM_K * [[2], [2], [1]] + [[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]]  # TUM's camera at twice its size
    calib = Calibration(k, TUM_D, "plumb_bob", 1280, 720)
    seen = []
    add_frame = r.pipeline.add_frame

    def spy(rgb, *args, **kw):
        seen.append((rgb.shape[:2], kw.get("camera_hw")))
        return add_frame(rgb, *args, **kw)

    r.pipeline.add_frame = spy
    for i, s in enumerate(stamps(4)):
        rgb = cv2.resize(image(360, 640, i), (1280, 720))
        data = cv2.imencode(".jpg", rgb)[1].tobytes()
        decode = (lambda b, rgb=rgb: (rgb, rgb.shape[:2])) if transport == "raw" else \
            (lambda b, data=data: decode_compressed_for_work("jpeg", data, b))
        r.image(s, decode=decode, info=calib)
    r.wait_idle()
    assert seen == [((360, 640), (720, 1280))] * 4 and r.health.errors == {}
    expected, _ = cv2.getOptimalNewCameraMatrix(k, np.array(TUM_D), (1280, 720), 0.0, (1280, 720))
    assert len(r.results) == 4
    for x in r.results:  # the camera's undistorted K, made at the working size: within a pixel
        np.testing.assert_allclose(x.k, expected, atol=1.0)
        assert not np.allclose(x.k, k, atol=5.0)


def test_k_calibrated_at_twice_the_resolution_is_scaled(rig):
    r = rig()
    k = np.array([[1000.0, 0, 639.5], [0, 1000.0, 479.5], [0, 0, 1]])
    calib = Calibration(k, (), "", 1280, 960)
    for i, s in enumerate(stamps(4)):
        r.image(s, image(480, 640, i), info=calib)
    r.wait_idle()
    assert len(r.results) == 4 and r.health.errors == {}
    for x in r.results:
        assert x.has_camera_info
        assert np.isclose(x.k[0, 0], 500.0) and np.isclose(x.k[1, 1], 500.0)
        assert np.isclose(x.k[0, 2], 319.5) and np.isclose(x.k[1, 2], 239.5)


def test_k_for_another_aspect_is_refused(rig):
    r = rig()
    calib = Calibration(square_k(), (), "", 64, 64)  # calibrated 64x64, images 48x64
    for i, s in enumerate(stamps(4)):
        r.image(s, image(48, 64, i), info=calib)
    r.wait_idle()
    assert r.health.errors["camera_info_size_mismatch"] == 4
    assert all(not x.has_camera_info for x in r.results) and len(r.results) == 4


def test_swapped_stamps_drop_one_frame_without_reset(rig):
    r = rig()
    ss = stamps(10)
    order = ss[:4] + [ss[5], ss[4]] + ss[6:]  # frame 4 arrives after frame 5
    for i, s in enumerate(order):
        r.image(s, image(64, 64, i))
    r.wait_idle()
    status = r.pipeline.status()
    assert status["frames_out_of_order"] == 1
    assert status["frames_reset"] == 0 and sum(r.pipeline.buffer.resets.values()) == 0
    assert not any(k.startswith("reset_") for k in r.health.counts)
    assert r.health.errors["out_of_order"] == 1
    r.flush()
    described = [x.stamp_ns for x in r.results]
    assert described == [s for s in ss if s != ss[4]]  # 9 frames, in order, one sequence
    values = r.values()
    assert values["frames_out_of_order"] == "1" and values["frames_unaccounted"] == "0"
    assert values["frames_in"] == "10" and values["frames_out"] == "9"


def test_a_short_bag_on_loop_restarts_at_each_loop_and_a_late_frame_stays_late(rig):
    """`ros2 bag play --loop` of a bag of 1 s or less steps back by under 1 s: every frame after the first
    loop was dropped as out of order (WARN), none described. Each loop is a new recording now (time_backwards,
    odometry restarted at identity), every frame described; a single frame as far back, between frames that
    go on, is still one late frame (out_of_order), the odometry not restarted."""
    r = rig()
    bag = stamps(8)  # 0.27 s at 30 Hz
    for loop in range(3):
        for i, s in enumerate(bag):
            r.image(s, image(64, 64, 8 * loop + i))
    r.flush()
    assert r.health.counts["reset_time_backwards"] == 2 and r.pipeline.status()["frames_out_of_order"] == 0
    assert [x.stamp_ns for x in r.results] == bag * 3
    assert r.restarted == [True, False, False, True, False, False, True, False, False]  # first clip of each loop
    values = r.values()
    assert values["frames_out"] == "24" and values["frames_unaccounted"] == "0" and values["frames_pending"] == "0"
    late = rig()
    ss = stamps(20)
    order = ss[:15] + [ss[1]] + ss[15:]  # one frame 0.47 s late, back to the recording's second
    for i, s in enumerate(order):
        late.image(s, image(64, 64, i))
    late.flush()
    assert late.pipeline.status()["frames_out_of_order"] == 1 and late.health.errors["out_of_order"] == 1
    assert not any(k.startswith("reset_") for k in late.health.counts)
    assert [x.stamp_ns for x in late.results] == ss and late.restarted.count(True) == 1


def test_manual_reset_describes_the_buffered_frames_first(rig):
    r = rig()
    for i, s in enumerate(stamps(5)):  # clip at frame 3 (4 frames); frame 4 buffered
        r.image(s, image(64, 64, i))
    assert r.pipeline.pending_frames == 1
    r.intake.reset("manual")  # frame 4 is cut into a clip of its own, as at the buffer's other resets
    assert r.pipeline.status()["frames_reset"] == 0
    assert r.health.counts["reset_manual"] == 1
    assert r.pipeline.pending_frames == 0
    r.wait_idle()
    assert [x.stamp_ns for x in r.results] == stamps(5)  # the waiting clip and the buffered frame described
    values = r.values()
    assert values["frames_reset"] == "0" and values["resets_manual"] == "1"
    assert values["frames_unaccounted"] == "0"
    # after the reset a new sequence starts: 4 more frames make a full clip again
    for i, s in enumerate(stamps(9)[5:]):
        r.image(s, image(64, 64, 10 + i))
    r.wait_idle()
    assert [x.stamp_ns for x in r.results] == stamps(9)
    assert r.values()["frames_unaccounted"] == "0"


def test_manual_reset_restarts_odometry_at_the_next_sequence(rig):
    r = rig()
    for i, s in enumerate(stamps(6)):
        r.image(s, image(64, 64, i))
    r.wait_idle()
    r.intake.reset("manual")
    for i, s in enumerate(stamps(10)[6:]):
        r.image(s, image(64, 64, 10 + i))
    r.wait_idle()
    assert r.restarted == [True, False, True]  # first clip, hop clip, first clip after the reset
    assert r.pipeline.status()["pose_gaps"] == 0


@pytest.mark.parametrize("reset", ["manual", "time_backwards"])
def test_reset_while_the_first_clip_waits_sends_its_depth_but_no_pose(rig, reset):
    """A clip already waiting at a reset (~/reset, or a bag loop's time going backwards) is still
    described: its frames came before the reset, and their depth and tracks go out. After ~/reset its
    poses do not: they would continue the odometry chain the reset ended, on odometry, TF and the path,
    after the service had returned. At a bag loop its odometry and pose do (no one was told the chain ended;
    the worker runs clips in order, so they precede the new chain's): they were withheld too, unsaid, 18-24 %
    of a looped 3 s bag's odometry. Its TF does not (odometry_current). The clips after the reset restart odometry at identity, also when that
    waiting clip was itself the first of its sequence."""
    r = rig(start=False, max_waiting_clips=2)  # inference behind: the first clip waits in the queue
    publishers = node_run_clip(r)
    for i, s in enumerate(stamps(4)):
        r.image(s, image(64, 64, i))
    assert len(r.worker.queue) == 1
    if reset == "manual":
        r.intake.reset("manual")
        after = stamps(9)[5:]
    else:  # a bag loop: time jumps back 10 s
        after = [s - 10_000_000_000 for s in stamps(4)]
    for i, s in enumerate(after):
        r.image(s, image(64, 64, 10 + i))
    assert r.health.counts[f"reset_{reset}"] == 1
    r.worker.start()
    r.wait_idle()
    assert sent(publishers, "depth") == sent(publishers, "tracks") == stamps(4) + after
    posed = after if reset == "manual" else stamps(4) + after
    assert sent(publishers, "odometry") == posed
    # TF never: after a loop's /clock jump back, tf2 keeps the old chain's last transform as its newest and
    # refuses the new chain's as older than its cache
    assert sent(publishers, "tf") == sent(publishers, "path") == after  # the last path: the new chain's alone
    first = publishers["odometry"].msgs[len(posed) - len(after)].pose.pose.position
    assert np.allclose([first.x, first.y, first.z], 0.0, atol=1e-6)  # restarted at identity
    values = r.values()
    assert values["frames_out"] == "8" and values["frames_unaccounted"] == "0"  # described all the same
    assert r.pipeline.status()["pose_gaps"] == 0


def test_resets_more_often_than_a_clip_fills_still_describe_every_frame(rig):
    """A behaviour tree calling ~/reset on every tick (5 Hz into a 15 Hz camera: 3 frames between resets, the
    tiny model's clips 4 frames): each reset dropped the frames buffered since the last clip, so no clip ever
    filled and nothing was described (13 s of frames_out frozen, 202 frames counted as frames_reset, and the
    stall WARN blamed inference). The frames before each reset are described by a clip of their own, as at
    the buffer's other resets: their depth and tracks go out, their poses (of the chain each reset ended) do
    not, and the first clip after the last reset starts the odometry at identity without a pose gap."""
    r = rig(start=False)
    publishers = node_run_clip(r)
    r.worker.start()
    ss = stamps(19)
    for burst in range(5):
        for i in range(3 * burst, 3 * burst + 3):
            r.image(ss[i], image(64, 64, i))
        r.intake.reset("manual")
    for i in range(15, 19):  # a full clip after the last reset
        r.image(ss[i], image(64, 64, i))
    r.wait_idle()
    assert sent(publishers, "depth") == sent(publishers, "tracks") == ss
    assert sent(publishers, "odometry") == sent(publishers, "tf") == sent(publishers, "path") == ss[15:]
    first = publishers["odometry"].msgs[0].pose.pose.position
    assert np.allclose([first.x, first.y, first.z], 0.0, atol=1e-6)
    values = r.values()
    assert values["frames_out"] == "19" and values["frames_reset"] == "0" and values["resets_manual"] == "5"
    assert values["frames_unaccounted"] == "0" and values["frames_dropped"] == "0"
    # each clip cut at a reset started the chain that reset ended (withheld), never continued an older one
    assert values["pose_gaps"] == "0" and values["clips_pose_withheld"] == "5", values


def test_after_a_reset_returns_no_pose_of_the_old_chain_is_published(rig, engine):
    """~/reset with one clip in inference and one waiting: both were sent whole after the reset had
    said 'odometry and tracks reset', two clips of the old chain on odometry, TF and the path. Their
    depth and tracks still go out; the first clip after the reset starts the path at identity."""
    held = HeldEngine(engine)
    r = rig(engine=held, start=False)
    publishers = node_run_clip(r)
    r.worker.start()
    ss = stamps(16)
    for i in range(8):  # clips of frames 0-3, 2-5 and 4-7: the old chain
        r.image(ss[i], image(64, 64, i))
    held.go.clear()
    held.entered.clear()
    for i in (8, 9):  # the clip of frames 6-9 goes to inference, held there
        r.image(ss[i], image(64, 64, i), paced=False)
    assert held.entered.wait(WAIT_S)
    for i in (10, 11):  # the clip of frames 8-11 waits behind it
        r.image(ss[i], image(64, 64, i), paced=False)
    assert len(r.worker.queue) == 1
    r.intake.reset("manual")
    held.go.set()
    r.wait_idle()
    for i in range(12, 16):  # the first clip after the reset
        r.image(ss[i], image(64, 64, i))
    r.wait_idle()
    assert sent(publishers, "depth") == sent(publishers, "tracks") == ss
    assert sent(publishers, "odometry") == sent(publishers, "pose") == sent(publishers, "tf") == ss[:8] + ss[12:]
    assert sent(publishers, "path") == ss[12:]
    first = publishers["odometry"].msgs[8].pose.pose.position
    assert np.allclose([first.x, first.y, first.z], 0.0, atol=1e-6)
    values = r.values()
    assert values["frames_out"] == "16" and values["frames_unaccounted"] == "0"


def test_the_path_starts_again_when_the_first_clip_after_a_reset_fails(rig, engine):
    """The path was cleared only by the result that restarted odometry: when that clip's inference
    failed, the next clips of the new chain were appended to the old chain's path (frames 0-7, then
    12-15). The path follows the odometry chain each result belongs to."""
    failing = HeldEngine(engine)
    r = rig(engine=failing, start=False)
    publishers = node_run_clip(r)
    r.worker.start()
    ss = stamps(16)
    for i in range(8):
        r.image(ss[i], image(64, 64, i))
    assert sent(publishers, "path") == ss[:8]
    r.intake.reset("manual")
    failing.fail = True  # the clip of frames 8-11, the first of the new chain
    for i in range(8, 16):
        r.image(ss[i], image(64, 64, i))
    r.wait_idle()
    assert r.health.counts["frames_failed"] == 4 and r.health.errors["inference"] == 1
    assert sent(publishers, "path") == sent(publishers, "odometry")[8:] == ss[12:]
    assert r.values()["frames_unaccounted"] == "0"


def test_outside_a_node_a_stage_that_raises_fails_the_clip(engine, monkeypatch):
    """Stage isolation is the node's (create_pipeline): offline evaluation, the tools and the tests get the
    exception as ClipFailed naming the stage, so no score is made of the clips that survived."""
    from fourds_ros.perception.pipeline import ClipFailed, PerceptionPipeline

    pipeline = PerceptionPipeline(engine, PerceptionSettings())
    assert pipeline.isolate_stages is False

    def pose_raises(*args, **kwargs):
        raise ValueError("a stage broke")

    monkeypatch.setattr(pipeline, "_poses", pose_raises)
    with pytest.raises(ClipFailed, match="pose failed: ValueError: a stage broke") as failed:
        for i, stamp in enumerate(stamps(8)):
            pipeline.push(image(64, 64, i), stamp, "cam")
    assert failed.value.stage == "pose"


@pytest.mark.parametrize("stage, other", [("pose", "tracks"), ("tracks", "odometry")])
def test_a_stage_that_raises_is_named_and_the_clip_sends_the_rest(rig, monkeypatch, stage, other):
    """A clip whose pose stage raised was logged as 'inference failed' (session 40: the stage is named), and its
    tracks were lost with it: only the depth, sent first, went out. Now each stage stands on its own: a pose
    that raises costs the clip's odometry only, tracks that raise its tracks only (the pose falls back to its
    head); the stage is named on /diagnostics and the frames count as out."""
    r = rig(start=False)
    r.pipeline.isolate_stages = True  # as create_pipeline makes the node's
    publishers = node_run_clip(r)

    def stage_raises(*args, **kwargs):
        raise ValueError("a stage broke")

    monkeypatch.setattr(r.pipeline, {"pose": "_poses", "tracks": "_tracks"}[stage], stage_raises)
    warnings = []
    r.health.log_warning = warnings.append
    r.worker.start()
    ss = stamps(8)
    for i in range(8):
        r.image(ss[i], image(64, 64, i))
    r.wait_idle()
    described = ss[:8 - r.intake.pending_frames()]
    assert len(described) >= 4
    assert r.health.errors[stage] >= 2 and r.health.errors["inference"] == 0  # every clip, none an inference
    assert r.health.counts["frames_failed"] == 0 and r.health.counts["frames_out"] == len(described)
    assert sent(publishers, "depth") == sent(publishers, other) == described
    assert sent(publishers, "odometry" if stage == "pose" else "tracks") == []
    assert [w for w in warnings if w.startswith(f"[{stage}]")] == [
        f"[{stage}] {stage} failed: ValueError: a stage broke; the clip's other outputs were sent (seen 1x)"]
    values = r.values()
    assert values["frames_unaccounted"] == "0" and values[f"clips_{stage}_failed"] == str(r.health.errors[stage])


def test_a_report_never_sees_a_clip_counted_and_still_in_inference(rig):
    """The node counted a clip's frames (frames_out, or frames_failed) before the worker took them
    out of inference, and /diagnostics read the pending frames and the counters apart: a report in
    between read frames_unaccounted -4. Now the frames move in one step (InferenceWorker.settle) and
    FrameIntake.report reads under the same lock: here the worker stops right after counting, while
    the diagnostics (another thread) report."""
    r = rig(start=False)
    node_run_clip(r)
    counted, resume = threading.Event(), threading.Event()
    record_clip = r.health.record_clip

    def record_then_hold(*args, **kw):
        record_clip(*args, **kw)
        counted.set()
        assert resume.wait(WAIT_S)

    r.health.record_clip = record_then_hold
    r.worker.start()
    for i, s in enumerate(stamps(4)):  # one clip, four frames
        r.image(s, image(64, 64, i), paced=False)
    assert counted.wait(WAIT_S)
    seen = []
    diagnostics = threading.Thread(target=lambda: seen.append(r.values()["frames_unaccounted"]))
    diagnostics.start()
    # Time for a report that does not wait for the clip to read it half-moved; one that waits reads
    # the same either way.
    diagnostics.join(0.5)
    resume.set()
    diagnostics.join(WAIT_S)
    r.wait_idle()
    assert seen == ["0"]
    values = r.values()
    assert values["frames_out"] == "4" and values["frames_pending"] == "0" and values["frames_unaccounted"] == "0"


def test_reset_before_the_first_clip_describes_every_buffered_frame(rig):
    r = rig()
    for i, s in enumerate(stamps(3)):
        r.image(s, image(64, 64, i))
    r.intake.reset("manual")
    assert r.pipeline.status()["frames_reset"] == 0
    r.wait_idle()
    assert [x.stamp_ns for x in r.results] == stamps(3) and r.values()["frames_unaccounted"] == "0"


def test_camera_mount_reaches_the_odometry(rig):
    mount = np.eye(4)
    mount[:3, 3] = (0.1, -0.2, 0.3)
    mount[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
    asked = []
    lock = threading.Lock()

    def camera_mount(frame_id, stamp_ns):
        with lock:
            asked.append(frame_id)
            return mount if len(asked) == 2 else None  # newly known at the second frame

    r = rig(camera_mount=camera_mount)
    before = r.pipeline.odometry.base_from_camera.copy()
    assert not np.allclose(before, mount)
    r.image(T0, image(64, 64, 0), frame_id="cam_optical")
    r.image(T0 + HZ30, image(64, 64, 1), frame_id="cam_optical")  # TF's mount: this frame and the next carry it
    assert not r.results and np.allclose(r.pipeline.odometry.base_from_camera, before)  # no clip read it yet
    for i in (2, 3):
        r.image(T0 + i * HZ30, image(64, 64, i), frame_id="cam_optical")  # None: the mount is kept
    assert r.results  # the first clip ran, on frames that came with the mount
    assert np.allclose(r.pipeline.odometry.base_from_camera, mount)
    assert np.allclose(r.pipeline.odometry.camera_from_base, np.linalg.inv(mount))
    assert asked == ["cam_optical"] * 4


def described_with_frame_id(rig, frame_id: str):
    """Four frames whose header.frame_id is `frame_id`, flushed -> (the rig, the frames the mount was asked for)."""
    asked = []
    r = rig(camera_mount=lambda f, _stamp: asked.append(f))
    for i, stamp in enumerate(stamps(4)):
        r.image(stamp, image(64, 64, i), frame_id=frame_id)
    r.flush()
    return r, asked


def test_an_image_without_a_frame_id_is_described_in_camera_frame_and_counted(rig):
    """A driver that leaves header.frame_id empty: its outputs had an empty frame that rviz, Nav2 and
    TF cannot place (tf2 refuses a transform to ''). They are now in camera_frame, and the frames are
    counted and logged as bad input."""
    r, asked = described_with_frame_id(rig, "")
    assert r.results and {res.frame_id for res in r.results} == {"camera_optical_frame"}
    assert set(asked) == {"camera_optical_frame"}
    assert r.health.errors["no_frame_id"] == 4 and any("header.frame_id" in line for line in r.logged)


def test_a_frame_id_with_a_leading_slash_is_described_without_it_and_counted(rig):
    """ROS 1 recordings and ros1_bridge carry '/openni_rgb_optical_frame': the outputs went out in a
    frame tf2 refuses to look up (rviz and Nav2 could not place them). tf2 drops the '/' from a
    transform's frames, so the outputs and the mount lookup do too. A correction, not a fault: counted
    and said once, with no lasting WARN (every frame of such a recording has it)."""
    r, asked = described_with_frame_id(rig, "/cam_optical")
    assert r.results and {res.frame_id for res in r.results} == {"cam_optical"}
    assert set(asked) == {"cam_optical"}
    assert r.values()["frames_frame_id_slash"] == "4" and "frame_id_slash" not in r.health.errors
    assert sum("'/cam_optical'" in line for line in r.logged) == 1
    assert "frame_id" not in r.intake.report(r.state())[1]  # the WARN's reasons (here: no camera_info only)


@pytest.mark.parametrize("frame_id", ["x" * 100_000, "cam\x00optical", "cam\noptical"])
def test_an_overlong_or_unprintable_frame_id_is_bad_input_and_not_copied_into_the_outputs(rig, frame_id):
    """A 100 kB header.frame_id was copied into every output (tracks/markers once per track: 6.5 MB a
    clip); a control character makes no frame name either."""
    r, _ = described_with_frame_id(rig, frame_id)
    assert r.results and {res.frame_id for res in r.results} == {"camera_optical_frame"}
    assert r.health.errors["bad_frame_id"] == 4
    assert all(len(line) < 1000 for line in r.logged)


def test_image_frame_id_keeps_a_plain_frame_and_says_why_it_changed_any_other():
    assert image_frame_id("camera_color_optical_frame", "fallback") == ("camera_color_optical_frame", None)
    assert image_frame_id("x" * MAX_FRAME_ID_CHARS, "fallback")[1] is None
    assert image_frame_id("//a/b", "fallback")[0] == "a/b"
    for bad, kind in (("", "no_frame_id"), ("/", "no_frame_id"), ("x" * (MAX_FRAME_ID_CHARS + 1), "bad_frame_id"),
                      ("a\tb", "bad_frame_id"), ("/a\x7f", "bad_frame_id")):
        frame, problem = image_frame_id(bad, "fallback")
        assert frame == "fallback" and problem[0] == kind, bad


def test_rejected_frames_are_not_asked_for_a_camera_mount(rig):
    asked = []
    r = rig(camera_mount=lambda f, _stamp: asked.append(f))

    def bad(budget):
        raise ImageDecodeError("unsupported_encoding", "bayer_xyz16")

    r.image(T0, decode=bad)
    assert asked == [] and r.health.counts["frames_rejected"] == 1
    assert r.values()["frames_unaccounted"] == "0"


@pytest.mark.parametrize("image_rotation, advised", [(0, True), (180, False)])
def test_a_rolled_mount_parameter_advises_image_rotation_at_configure(engine, image_rotation, advised):
    """No URDF looked up (camera_mount_timeout_s 0), base_from_camera says the camera is upside down: with
    image_rotation 0 the node says to set 180 as soon as it is configured; with 180 it says nothing."""
    from transforms3d.quaternions import mat2quat

    from fourds_ros.perception.image_rotation import upright_from_camera

    base_from_upright = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
    w, x, y, z = mat2quat(base_from_upright @ upright_from_camera(2)[:3, :3])  # transforms3d is w-first
    settings = PerceptionSettings.from_params(base_from_camera=[0.0, 0.0, 0.1, x, y, z, w],
                                              image_rotation=image_rotation, camera_mount_timeout_s=0.0)
    logged = []
    health = NodeHealth(logged.append)
    worker = InferenceWorker(lambda clip: None, logged.append, health.counts, 1)
    FrameIntake(PerceptionPipeline(engine, settings), worker, health, settings)
    assert (health.errors["image_rotation"] == 1) == advised, (health.errors, logged)
    assert any("image_rotation: 180" in line for line in logged) == advised


UPRIGHT = [-0.5, 0.5, -0.5, 0.5]  # base_from_camera's default rotation: an upright camera looking forward


@pytest.mark.parametrize("image_rotation", [90, 180, 270])
@pytest.mark.parametrize("base_from_camera", [None, [0.0, 0.0, 0.0] + UPRIGHT, [0.2, 0.0, 0.5] + UPRIGHT])
def test_a_mount_parameter_that_tf_may_replace_advises_no_image_rotation_at_configure(engine, image_rotation,
                                                                                      base_from_camera):
    """base_from_camera, left at its default, set to it, or set to the camera's place with the default
    rotation, with the mount looked up on /tf_static (camera_mount_timeout_s > 0): a camera set to
    image_rotation 180 whose URDF mount comes later is not told to set 0 at configure (TF's mount is judged when it
    comes, the parameter when the lookup finds none: test_node_inputs). A translation alone was judged."""
    mount = {} if base_from_camera is None else {"base_from_camera": base_from_camera}
    settings = PerceptionSettings.from_params(image_rotation=image_rotation, **mount)
    logged = []
    health = NodeHealth(logged.append)
    worker = InferenceWorker(lambda clip: None, logged.append, health.counts, 1)
    FrameIntake(PerceptionPipeline(engine, settings), worker, health, settings)
    assert health.errors["image_rotation"] == 0 and not logged, logged


@pytest.mark.parametrize("no_lookup", [{"camera_mount_timeout_s": 0.0}, {"publish_camera_mount": True}])
def test_the_default_mount_is_judged_at_configure_where_no_lookup_replaces_it(engine, no_lookup):
    """Where the mount is not looked up (camera_mount_timeout_s 0) or is published from base_from_camera, the
    odometry uses the default (an upright camera) for good: image_rotation 180 disagrees with it, and is said at
    configure (as before the default went unjudged)."""
    settings = PerceptionSettings.from_params(image_rotation=180, **no_lookup)
    logged = []
    health = NodeHealth(logged.append)
    worker = InferenceWorker(lambda clip: None, logged.append, health.counts, 1)
    intake = FrameIntake(PerceptionPipeline(engine, settings), worker, health, settings)
    assert health.errors["image_rotation"] == 1 and "image_rotation: 0 (set: 180)" in logged[0], logged
    intake.parameter_mount_kept()  # a lookup that ended without TF's mount judges the parameter the same way
    assert health.errors["image_rotation"] == 2


def test_camera_info_roi_and_binning_bring_k_to_the_image_sent():
    """REP-104: K and P are of the full, unbinned sensor; roi and binning say which pixels the
    image holds. Ignored, an ROI of the calibration's aspect read as a resize (fx halved: depth,
    points and odometry 2x off) and binning refused the calibration (default field of view)."""
    from sensor_msgs.msg import CameraInfo

    from fourds_ros.ros.convert import calibration

    k = [1000.0, 0, 639.5, 0, 1000.0, 479.5, 0, 0, 1]
    msg = CameraInfo(width=1280, height=960, k=k, p=k[:3] + [0] + k[3:6] + [0] + k[6:] + [0])
    full = calibration(msg)
    assert (full.width, full.height) == (1280, 960) and np.allclose(full.k, np.reshape(k, (3, 3)))
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 320, 240, 640, 480
    cut = calibration(msg)
    assert (cut.width, cut.height) == (640, 480)
    np.testing.assert_allclose(cut.k, [[1000, 0, 319.5], [0, 1000, 239.5], [0, 0, 1]])
    np.testing.assert_allclose(cut.p, cut.k)
    msg.roi.width = msg.roi.height = 0  # the whole sensor, binned 2 x 1
    msg.binning_x, msg.binning_y = 2, 1
    binned = calibration(msg)
    assert (binned.width, binned.height) == (640, 960)
    np.testing.assert_allclose(binned.k, [[500, 0, 319.5], [0, 1000, 479.5], [0, 0, 1]])
    assert calibration(CameraInfo(width=640, height=480)) is None  # uncalibrated: K all zero


def test_a_window_of_the_sensor_that_leaves_the_optical_centre_out_keeps_its_k():
    """A camera reading the lower strip of its sensor (roi; REP-104 allows any window): its K, brought
    to the window, has the principal point above the image, and the on-image check refused it (the
    default 60-degree K instead: depth and odometry off). The point is checked on the sensor now."""
    from sensor_msgs.msg import CameraInfo

    from fourds_ros.perception.camera import CameraIntake
    from fourds_ros.ros.convert import calibration

    k = [1000.0, 0, 639.5, 0, 1000.0, 479.5, 0, 0, 1]
    msg = CameraInfo(width=1280, height=960, k=k)
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 0, 600, 1280, 360
    strip = calibration(msg)
    rgb = np.zeros((360, 1280, 3), np.uint8)
    _, used, problem = CameraIntake()(rgb, strip)
    assert problem == "" and np.allclose(used, [[1000, 0, 639.5], [0, 1000, -120.5], [0, 0, 1]])
    msg.roi.y_offset = 0  # the K of another sensor, whose centre is far below this one's
    msg.k = [1000.0, 0, 639.5, 0, 1000.0, 1500.0, 0, 0, 1]
    assert CameraIntake()(rgb, calibration(msg))[2].startswith("camera_info_principal_point_outside")


@pytest.mark.parametrize("fields, roi, named", [
    ({"binning_x": 1000, "binning_y": 1000}, {}, "binning_x 1000 is more than the 64 pixels"),
    ({"binning_x": 2, "binning_y": 128}, {}, "binning_y 128 is more than the 64 pixels"),
    ({}, {"x_offset": 10**6, "width": 64, "height": 64}, "roi x_offset 1000000 + width 64 reaches past"),
    ({}, {"y_offset": 33, "width": 32, "height": 32}, "roi y_offset 33 + height 32 reaches past"),
])
def test_a_camera_info_whose_binning_or_roi_is_off_its_own_sensor_is_malformed(rig, fields, roi, named):
    """Binning 1000 on a 640x480 camera_info made the image 0x0, read as "size unset": unchecked, its K
    (fx 0.5, the principal point at the corner) was used without a word; an roi at x_offset 10^6 moved
    the principal point's allowed range with it (cx -999680, used). Each is a malformed camera_info now:
    counted once a frame, the default intrinsics used, as for any other K refused."""
    from fourds_ros.ros import convert

    msg = convert.camera_info(square_k(), 64, 64, 0, "cam")
    for name, value in fields.items():
        setattr(msg, name, value)
    for name, value in roi.items():
        setattr(msg.roi, name, value)
    r = rig()
    for i, s in enumerate(stamps(4)):
        r.image(s, image(64, 64, i), info=convert.calibration(msg))
    r.wait_idle()
    assert dict(r.health.errors) == {"camera_info_malformed": 4}, dict(r.health.errors)
    assert any(m.startswith("[camera_info_malformed]") and named in m and "default intrinsics" in m
               for m in r.logged), r.logged
    default = default_intrinsics((64, 64), r.settings.clip.default_hfov_deg)
    assert len(r.results) == 4 and all(not x.has_camera_info and np.allclose(x.k, default) for x in r.results)
    assert r.values()["camera_info"] == "no (default intrinsics)" and r.values()["frames_unaccounted"] == "0"


def test_a_12_bit_camera_fills_the_grey_range_with_its_own_bit_depth():
    """A 12-bit camera publishing mono16 fills 0-4095: divided by 65535 it read 16x too dark (a
    frame's texture under min_image_texture: called blind). image_16bit_max is the sensor's range."""
    from sensor_msgs.msg import Image

    from fourds_ros.ros.convert import image_for_work

    values = np.array([[0, 1024], [2048, 4095]], np.uint16)
    msg = Image(height=2, width=2, encoding="mono16", step=4)
    msg.data = values.tobytes()
    for full_range, bright in ((65535, 16), (4095, 255)):
        inputs = PerceptionSettings.from_params(image_16bit_max=full_range).inputs
        rgb, hw = image_for_work(msg, inputs)
        assert hw == (2, 2) and rgb[1, 1].tolist() == [bright] * 3


def test_a_12_bit_camera_over_png_takes_its_bit_depth_as_over_raw_images():
    """image_transport's png of a mono16 frame is a 16-bit PNG: decoded to 8 bit by OpenCV (/256),
    image_16bit_max was ignored and a 12-bit camera came 16x too dark over compressed."""
    from sensor_msgs.msg import CompressedImage, Image

    from fourds_ros.ros.convert import compressed_for_work, image_for_work

    ramp = np.tile(np.linspace(0, 4095, 640).round().astype(np.uint16), (48, 1))
    raw = Image(height=48, width=640, encoding="mono16", step=1280)
    raw.data = ramp.tobytes()
    png = CompressedImage(format="mono16; png compressed ")
    png.data = cv2.imencode(".png", ramp)[1].tobytes()
    inputs = PerceptionSettings.from_params(image_16bit_max=4095).inputs
    (expected, _), (got, hw) = image_for_work(raw, inputs), compressed_for_work(png, 0, inputs)
    assert hw == (48, 640) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected).max() <= 1 and got.max() == 255


def test_track_markers_outlive_the_clip_period_of_a_slow_camera():
    """The trail markers are sent once a clip; they expired after 0.5 s while a 10 Hz camera's clips
    (hop 7) come every 0.7 s, so rviz showed no trails for a third of the time. The set's first
    marker (DELETEALL) replaces the previous set; the lifetime only clears them after the node stops."""
    from fourds_ros.ros.convert import track_markers

    markers = track_markers({3: np.zeros((2, 3)), 4: np.ones((3, 3))}, T0, "cam").markers
    assert markers[0].action == markers[0].DELETEALL
    hop_period_10hz_s = 7 / 10
    assert all(m.lifetime.sec + m.lifetime.nanosec / 1e9 > 2 * hop_period_10hz_s for m in markers[1:])


def test_a_track_of_unknown_depth_gets_no_trail_marker():
    """A trail was drawn at a made-up 1 m where its track's depth is unknown (not visible, out of range, a
    blind frame): real-looking geometry in rviz where the tracks cloud says NaN. Now such a track has no trail."""
    from fourds_ros.perception.tracks import TrackSet
    from fourds_ros.ros.outputs import trails_xyz

    k = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    tracks = TrackSet(ids=np.array([1, 2], np.uint32), u=np.zeros(2, np.float32), v=np.zeros(2, np.float32),
                      xyz=np.array([[0.0, 0.0, 2.5], [np.nan, np.nan, np.nan]], np.float32),
                      visible=np.array([True, False]), confidence=np.ones(2, np.float32))
    trails = {1: np.array([[32.0, 24.0], [42.0, 24.0]]), 2: np.array([[10.0, 10.0], [12.0, 10.0]])}
    out = trails_xyz(trails, tracks, k)
    assert list(out) == [1]
    np.testing.assert_allclose(out[1], [[0.0, 0.0, 2.5], [0.25, 0.0, 2.5]])


def test_a_frame_held_for_its_stamp_is_pending_and_accounted(rig):
    """A frame stamped ahead waits in the StampHold for the next frame's word: until then /diagnostics
    counts it in frames_pending, so frames_unaccounted stays 0 (it read 1 while a frame was held)."""
    r = rig()
    calib = Calibration(square_k(), (), "", 64, 64)
    for i in range(6):
        r.image(T0 + i * 50_000_000, image(64, 64, i), info=calib)
    r.image(T0 + 6 * 50_000_000 + 3 * 10**9, image(64, 64, 6), info=calib)  # held: 3 s ahead
    assert r.intake.stamps.held is not None
    values = r.values()
    assert values["frames_unaccounted"] == "0", values
    assert int(values["frames_pending"]) >= 1, values


def test_a_frame_held_for_its_stamp_when_the_input_stops_is_described_at_drain(rig):
    """The camera stops (deactivation) right after a frame that jumped ahead: no next frame will judge
    it, so drain takes it (StampHold.release) and describes it with the others; none stays pending."""
    r = rig()
    calib = Calibration(square_k(), (), "", 64, 64)
    sent = [T0 + i * 50_000_000 for i in range(6)] + [T0 + 5 * 50_000_000 + 3 * 10**9]
    for i, s in enumerate(sent):
        r.image(s, image(64, 64, i), info=calib)
    r.intake.drain()
    r.wait_idle()
    assert [x.stamp_ns for x in r.results] == sent
    values = r.values()
    assert values["frames_pending"] == "0" and values["frames_unaccounted"] == "0", values


def test_a_ros1_bridged_reference_odometry_on_the_published_transform_is_a_tf_conflict(rig):
    """reference_odom stamped "/odom" -> "/base_link" (ros1_bridge) is the odom -> base_link this node
    publishes (tf2 drops the slash): warned as tf_conflict, as the unslashed names are."""
    r = rig()
    r.intake.push_reference_odometry(T0, np.zeros(3), np.array([0.0, 0, 0, 1]), ("/odom", "/base_link"))
    assert r.health.errors["tf_conflict"] == 1, dict(r.health.errors)


def test_a_camera_info_window_off_its_sensor_is_malformed_for_a_rectified_image_too(rig):
    """image_rectified: true (an image_rect topic) takes the camera_info's rectified form (Calibration.rectified):
    it must keep the refusal of a binning off the sensor, or binning 1000 on 64x64 gives a 0x0 "size unset"
    calibration whose K is used without a word (session 70's mutation review)."""
    from fourds_ros.ros import convert

    msg = convert.camera_info(square_k(), 64, 64, 0, "cam")
    msg.binning_x = msg.binning_y = 1000
    r = rig(image_rectified=True)
    for i, s in enumerate(stamps(4)):
        r.image(s, image(64, 64, i), info=convert.calibration(msg))
    r.wait_idle()
    assert dict(r.health.errors) == {"camera_info_malformed": 4}, dict(r.health.errors)
