"""`fourds_perception`: a lifecycle node, a thin rclpy adapter around PerceptionPipeline.

    ros2 run fourds_ros perception_node --ros-args --params-file config/perception.yaml

configure: load the checkpoint + inference backend, create publishers (FAILURE with the reason
  when the model or a parameter is bad; the node keeps running and /diagnostics says why).
activate: create the subscriptions (image, image/compressed, camera_info[, track_queries]).
deactivate / cleanup: destroy them / release the engine and publishers.

Threads: subscription callbacks only decode and buffer frames; a completed clip goes to a
two-clip queue that an inference thread drains (clip_buffer.ClipQueue). When it is full the
newest waiting clip is superseded by the next: that clip also describes the superseded clip's
frames still in its window, the rest are counted as dropped. So latency stays bounded under
overload, and a burst of frames loses nothing.
Every parameter is documented in config/perception.yaml.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, deque
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry, Path as PathMsg
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSPresetProfiles
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from ..perception.camera_info_sync import CameraInfoSync, Paired
from ..perception.clip_buffer import ClipQueue
from ..perception.image import ImageDecodeError
from ..perception.odometry import transform_from_xyz_quat
from ..perception.pipeline import PerceptionPipeline, PipelineSettings
from . import convert
from .launch_logic import NODE_NAME

QOS_NAMES = ("SENSOR_DATA", "DEFAULT", "SYSTEM_DEFAULT", "BEST_AVAILABLE")
LOG_EVERY_S = 10.0  # bad-input warnings: once per kind, then at most every 10 s


def default_model_dir() -> str:
    """<share>/models/fourds_default when installed, else the source tree's models/."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("fourds_ros")) / "models" / "fourds_default")
    except Exception:  # not installed into an ament prefix
        pass
    candidates.append(Path(__file__).resolve().parents[2] / "models" / "fourds_default")
    return next((str(c) for c in candidates if (c / "config.json").exists()), "")


PARAMETERS = {
    "model": "",  # filled with default_model_dir() at declaration
    "backend": "auto",
    "device": "auto",
    "num_queries": 64,
    "autostart": True,
    "hop": 0,
    "enable_depth": True,
    "enable_tracks": True,
    "enable_pose": True,
    "image_qos": "SENSOR_DATA",
    "output_qos": "DEFAULT",
    "crop_policy": "center_crop",
    "max_gap_s": 1.0,
    "flush_after_s": 1.0,
    "depth_output_resolution": "model",
    "min_depth": 0.01,
    "max_depth": 100.0,
    "depth_points_step": 2,
    "depth_points_rgb": True,
    "default_hfov_deg": 60.0,
    "camera_info_wait_s": 0.0,
    "max_tracks": 64,
    "track_query_mode": "grid",
    "track_min_visibility": 0.5,
    "track_refinement": "template",
    "track_max_deviation_px": 10.0,
    "track_image_fallback": True,
    "track_trail_length": 8,
    "publish_tf": True,
    "odom_frame": "odom",
    "base_frame": "base_link",
    "base_from_camera": [0.0, 0.0, 0.0, -0.5, 0.5, -0.5, 0.5],
    "pose_rotation_var_floor": 1e-6,
    "pose_translation_var_floor": 1e-6,
    "path_max_length": 1000,
    "diagnostics_period_s": 1.0,
    "debug_inference_delay_ms": 0.0,
}


def make_tf_publisher(node, qos):
    """-> (publish(list[TransformStamped]) or None, description, rclpy publisher to destroy or
    None). tf2_ros when importable, else a plain tf2_msgs/TFMessage publisher on /tf, else None
    (TF skipped, with a warning)."""
    try:
        from tf2_ros import TransformBroadcaster

        broadcaster = TransformBroadcaster(node)
        return broadcaster.sendTransform, "tf2_ros.TransformBroadcaster", getattr(broadcaster, "pub_tf", None)
    except ImportError:
        pass
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        node.get_logger().warning("neither tf2_ros nor tf2_msgs is importable: TF is not published "
                                  "(run tools/build_tf2_msgs.sh)")
        return None, "none (tf2_msgs missing)", None
    publisher = node.create_publisher(TFMessage, "/tf", qos)
    return ((lambda transforms: publisher.publish(TFMessage(transforms=list(transforms)))),
            "/tf TFMessage publisher", publisher)


class PerceptionNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default_model_dir() if name == "model" else default)
        self.counts: Counter[str] = Counter()  # frames_in, frames_out, clips, dropped_frames, ...
        self.errors: Counter[str] = Counter()  # bad input per kind
        self._last_log: dict[str, float] = {}
        self.state_text = "unconfigured"
        self.failure = ""
        self.backend_text = ""
        self.pipeline: PerceptionPipeline | None = None
        self.tf_publish = None
        self.lock = threading.Lock()  # pipeline buffer (subscriptions) vs reset service
        self.clip_queue = ClipQueue(capacity=2)
        self.frames_in_inference = 0  # the running clip's new frames (guarded by clip_queue_cv)
        self.clip_queue_cv = threading.Condition()
        self.worker: threading.Thread | None = None
        self.running = False
        self.subscriptions_: list = []
        self.publishers_: dict = {}
        self.camera_sync = CameraInfoSync(wait_s=float(self.p("camera_info_wait_s")))
        self.sync_timer = None  # releases images whose camera_info is overdue (while active)
        self.flush_timer = None  # describes the frames after the last clip once input stops
        self.last_activity = time.monotonic()  # a frame buffered or a clip finished
        self.inference_ms: deque = deque(maxlen=50)
        self.latency_ms: deque = deque(maxlen=200)  # input stamp -> publish, wall clock
        # newest frame of a clip: its stamp -> all of the clip published (buffer wait excluded)
        self.clip_latency_ms: deque = deque(maxlen=200)
        self.transport_ms: deque = deque(maxlen=200)  # input stamp -> subscription callback
        self.process_ms: deque = deque(maxlen=200)  # pipeline.process + publish, per clip
        self.rate_marks: deque = deque(maxlen=2)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.diag_timer = self.create_timer(float(self.p("diagnostics_period_s")), self.publish_diagnostics)
        self.reset_srv = self.create_service(Trigger, "~/reset", self.on_reset)
        self.sub_group = MutuallyExclusiveCallbackGroup()
        # Inputs run one at a time in sub_group; the lock also covers deactivation (default group).
        self.sync_lock = threading.Lock()

    def p(self, name):
        return self.get_parameter(name).value

    def warn_once(self, kind: str, message: str) -> None:
        """Count a problem of `kind`; log it the first time and then at most every LOG_EVERY_S."""
        self.errors[kind] += 1
        now = time.monotonic()
        if now - self._last_log.get(kind, -1e9) >= LOG_EVERY_S:
            self._last_log[kind] = now
            self.get_logger().warning(f"[{kind}] {message} (seen {self.errors[kind]}x)")

    # -- lifecycle ------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # a bad model or parameter must not crash the process
            self.failure = f"configure failed: {type(exc).__name__}: {exc}"
            self.state_text = "unconfigured (configure failed)"
            self.get_logger().error(self.failure)
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.failure = ""
        self.state_text = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        from ..engine import create_engine

        for name in ("image_qos", "output_qos"):
            if self.p(name) not in QOS_NAMES:
                raise ValueError(f"{name} must be one of {QOS_NAMES}, got {self.p(name)!r}")
        model = self.p("model")
        if not model:
            raise ValueError("parameter 'model' is empty and no default model is installed")
        engine = create_engine(model, backend=self.p("backend"), device=self.p("device"),
                               num_queries=int(self.p("num_queries")))
        self.backend_text = engine.describe()
        if float(self.p("debug_inference_delay_ms")) > 0:
            from ..perception.slow_engine import SlowEngine

            engine = SlowEngine(engine, float(self.p("debug_inference_delay_ms")) / 1e3)
            self.backend_text = engine.describe()
            self.get_logger().warning(f"debug_inference_delay_ms set: {self.backend_text}")
        base_from_camera = list(self.p("base_from_camera"))
        if len(base_from_camera) != 7:
            raise ValueError("base_from_camera must be [x, y, z, qx, qy, qz, qw]")
        settings = PipelineSettings(
            hop=int(self.p("hop")), enable_depth=self.p("enable_depth"), enable_tracks=self.p("enable_tracks"),
            enable_pose=self.p("enable_pose"), crop_policy=self.p("crop_policy"), max_gap_s=float(self.p("max_gap_s")),
            max_tracks=int(self.p("max_tracks")), track_query_mode=self.p("track_query_mode"),
            track_min_visibility=float(self.p("track_min_visibility")),
            track_refinement=self.p("track_refinement"),
            track_max_deviation_px=float(self.p("track_max_deviation_px")),
            track_image_fallback=bool(self.p("track_image_fallback")),
            depth_output_resolution=self.p("depth_output_resolution"), min_depth=float(self.p("min_depth")),
            max_depth=float(self.p("max_depth")), default_hfov_deg=float(self.p("default_hfov_deg")),
            base_from_camera=transform_from_xyz_quat(base_from_camera),
            pose_rotation_var_floor=float(self.p("pose_rotation_var_floor")),
            pose_translation_var_floor=float(self.p("pose_translation_var_floor")),
        )
        self._warm_up(engine)
        self.pipeline = PerceptionPipeline(engine, settings)
        self.pipeline.tracks.trail_length = int(self.p("track_trail_length"))
        qos = QoSPresetProfiles[self.p("output_qos")].value
        pub = self.create_publisher
        self.publishers_ = {
            "depth": pub(Image, "depth", qos), "depth_info": pub(CameraInfo, "depth/camera_info", qos),
            "depth_points": pub(PointCloud2, "depth/points", qos), "tracks": pub(PointCloud2, "tracks", qos),
            "markers": pub(MarkerArray, "tracks/markers", qos), "odometry": pub(Odometry, "odometry", qos),
            "pose": pub(PoseStamped, "pose", qos), "path": pub(PathMsg, "path", qos),
        }
        self.tf_publish, self.tf_text = (None, "off (publish_tf false)")
        if self.p("publish_tf"):
            self.tf_publish, self.tf_text, tf_pub = make_tf_publisher(self, QoSPresetProfiles.DEFAULT.value)
            if tf_pub is not None:
                self.publishers_["tf"] = tf_pub
        self.path = PathMsg()
        self.path.header.frame_id = self.p("odom_frame")
        self.running = True
        self.worker = threading.Thread(target=self._inference_loop, name="fourds_inference", daemon=True)
        self.worker.start()
        self.get_logger().info(
            f"configured: model {model}, backend {self.backend_text}, clip "
            f"{'x'.join(map(str, engine.config.clip_shape[:3]))}, hop {self.pipeline.hop}, TF {self.tf_text}")

    def _warm_up(self, engine) -> None:
        """One inference at configure time, so the first clip does not pay for lazy allocation
        (and a backend that cannot run fails configure, not the first clip)."""
        inputs = {"video": np.zeros((1, *engine.config.clip_shape), np.float32)}
        if "tracks" in engine.config.heads:
            inputs["query_points"] = np.zeros((1, engine.spec.num_queries, 3), np.float32)
        t0 = time.perf_counter()
        engine(inputs)
        self.get_logger().info(f"warm-up inference: {(time.perf_counter() - t0) * 1e3:.1f} ms")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        qos = QoSPresetProfiles[self.p("image_qos")].value
        sub = self.create_subscription
        # Frames the middleware lost before our callback (best-effort under load) are counted too.
        lost = SubscriptionEventCallbacks(message_lost=self.on_message_lost)
        self.subscriptions_ = [
            sub(Image, "image", self.on_image, qos, callback_group=self.sub_group, event_callbacks=lost),
            sub(CompressedImage, "image/compressed", self.on_compressed, qos, callback_group=self.sub_group,
                event_callbacks=lost),
            sub(CameraInfo, "camera_info", self.on_camera_info, qos, callback_group=self.sub_group),
        ]
        if self.p("track_query_mode") == "topic":
            self.subscriptions_.append(sub(PointCloud2, "track_queries", self.on_track_queries, 10,
                                           callback_group=self.sub_group))
        self.camera_sync = CameraInfoSync(wait_s=float(self.p("camera_info_wait_s")))
        if self.camera_sync.wait_s > 0:  # only waiting images need releasing when overdue
            self.sync_timer = self.create_timer(0.05, self.on_sync_timer, callback_group=self.sub_group)
        if self.flush_after_s > 0:
            self.flush_timer = self.create_timer(min(0.1, self.flush_after_s / 4), self.on_flush_timer,
                                                 callback_group=self.sub_group)
        self.state_text = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self.state_text = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.state_text = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self._release()
        self.state_text = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _stop_inputs(self) -> None:
        for s in self.subscriptions_:
            self.destroy_subscription(s)
        self.subscriptions_ = []
        for timer in (self.sync_timer, self.flush_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self.sync_timer = self.flush_timer = None
        with self.sync_lock:
            for paired in self.camera_sync.clear():  # frames that arrived are still described
                self._add_frame(paired)

    def _release(self) -> None:
        self.running = False
        with self.clip_queue_cv:
            self.clip_queue.clear()
            self.clip_queue_cv.notify_all()
        if self.worker is not None and self.worker is not threading.current_thread():
            self.worker.join(timeout=10)
        self.worker = None
        self.tf_publish = None
        for p in self.publishers_.values():
            self.destroy_publisher(p)
        self.publishers_ = {}
        self.pipeline = None

    # -- inputs ---------------------------------------------------------------------------------
    def on_camera_info(self, msg: CameraInfo) -> None:
        k = convert.k_from_camera_info(msg)
        if k is None:
            self.warn_once("camera_info", "camera_info has an empty K; using the default intrinsics")
        with self.sync_lock:
            for paired in self.camera_sync.push_info(convert.stamp_to_ns(msg.header.stamp), k, time.monotonic()):
                self._add_frame(paired)

    def on_sync_timer(self) -> None:
        with self.sync_lock:
            for paired in self.camera_sync.release(time.monotonic()):
                self._add_frame(paired)

    @property
    def flush_after_s(self) -> float:
        return float(self.p("flush_after_s"))

    def on_flush_timer(self) -> None:
        """Input idle for flush_after_s with nothing in inference: a clip of the last frames
        describes the ones after the last clip, which would otherwise wait for the next hop (a
        stopped camera, the end of a bag) or be dropped by a gap reset."""
        if self.pipeline is None or time.monotonic() - self.last_activity < self.flush_after_s:
            return
        with self.clip_queue_cv:
            if self.frames_in_inference or self.clip_queue:
                return
        with self.lock:
            clip = self.pipeline.flush()
        if clip is not None:
            self.counts["clips_flushed"] += 1
            self._enqueue(clip)

    def on_message_lost(self, info) -> None:
        self.counts["frames_lost_in_transport"] += int(info.total_count_change)

    def on_image(self, msg: Image) -> None:
        self._on_frame(msg, lambda: convert.image_to_rgb(msg), msg.encoding)

    def on_compressed(self, msg: CompressedImage) -> None:
        self._on_frame(msg, lambda: convert.compressed_to_rgb(msg), f"compressed:{msg.format}")

    def on_track_queries(self, msg: PointCloud2) -> None:
        try:
            cloud = convert.read_cloud(msg)
            uv = np.stack([cloud["u"], cloud["v"]], axis=1)
        except Exception as exc:
            self.warn_once("track_queries", f"track_queries needs float32 fields u, v: {exc}")
            return
        if self.pipeline is not None:
            self.pipeline.tracks.add_topic_queries(uv)

    def _on_frame(self, msg, decode, encoding: str) -> None:
        received = time.monotonic_ns()
        self.transport_ms.append((time.time_ns() - convert.stamp_to_ns(msg.header.stamp)) / 1e6)
        self.counts["frames_in"] += 1
        self.rate_marks.append(received)
        if self.pipeline is None:
            return
        # With camera_info_wait_s > 0 an image may wait for its own camera_info: camera_info_sync.py.
        stamp_ns = convert.stamp_to_ns(msg.header.stamp)
        with self.sync_lock:
            for paired in self.camera_sync.push_image(stamp_ns, (msg, decode, encoding, received), time.monotonic()):
                self._add_frame(paired)

    def _add_frame(self, paired: Paired) -> None:
        msg, decode, encoding, received = paired.item
        pipeline = self.pipeline
        if pipeline is None:
            return
        try:
            rgb = decode()
        except ImageDecodeError as exc:
            self.warn_once(exc.kind, f"dropping frame: {exc}")
            return
        if paired.k is None:
            self.warn_once("no_camera_info", "no camera_info received yet: assuming a "
                           f"{self.p('default_hfov_deg')} deg horizontal field of view")
        elif not paired.exact:
            self.counts["frames_without_own_camera_info"] += 1
        stamp_ns = convert.stamp_to_ns(msg.header.stamp)
        with self.lock:
            clip, reason = pipeline.add_frame(rgb, stamp_ns, msg.header.frame_id, paired.k, encoding, received)
            self.last_activity = time.monotonic()
        if reason:
            self.counts[f"reset_{reason}"] += 1
            self.warn_once(f"reset_{reason}", f"clip buffer reset ({reason}) at frame stamp "
                           f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}")
        if clip is not None:
            self._enqueue(clip)

    def _enqueue(self, clip) -> None:
        with self.clip_queue_cv:
            superseded, lost = self.clip_queue.put(clip)
            self.counts["clips_dropped"] += int(superseded)
            self.counts["frames_dropped"] += lost
            self.clip_queue_cv.notify()

    def on_reset(self, request, response):
        if self.pipeline is None:
            response.success, response.message = False, "not configured"
            return response
        # A clip already waiting for inference is kept: its frames arrived before the reset and
        # are still described (in the old chain); the reset applies from the next frame on, and
        # the path restarts with the odometry chain (ClipResult.odometry_restarted).
        with self.lock:
            self.pipeline.reset("manual")
        self.counts["reset_manual"] += 1
        response.success, response.message = True, "odometry and tracks reset"
        return response

    # -- inference thread -----------------------------------------------------------------------
    def _inference_loop(self) -> None:
        while True:
            with self.clip_queue_cv:
                while self.running and not self.clip_queue:
                    self.clip_queue_cv.wait(timeout=0.5)
                if not self.running:
                    return
                clip = self.clip_queue.take()
                self.frames_in_inference = clip.new_frames
            try:
                self._run_clip(clip)
            finally:
                with self.clip_queue_cv:
                    self.frames_in_inference = 0
                self.last_activity = time.monotonic()

    def _run_clip(self, clip) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        t_start = time.perf_counter()
        try:
            result = pipeline.process(clip)
        except Exception as exc:  # keep running; the next clip may be fine
            self.warn_once("inference", f"inference failed: {type(exc).__name__}: {exc}")
            return
        self.inference_ms.append(result.inference_s * 1e3)
        self.counts["clips"] += 1
        try:
            self._publish(result)
            self.process_ms.append((time.perf_counter() - t_start) * 1e3)
        except Exception as exc:
            if self.running:
                self.warn_once("publish", f"publishing failed: {type(exc).__name__}: {exc}")

    def _publish(self, result) -> None:
        pubs = self.publishers_
        odom_frame, base_frame = self.p("odom_frame"), self.p("base_frame")
        if result.odometry_restarted:
            self.path.poses = []
        for r in result.frames:
            stamp, frame_id = r.stamp_ns, r.frame_id
            if r.depth is not None:
                h, w = r.depth.shape
                pubs["depth"].publish(convert.depth_image(r.depth, stamp, frame_id))
                pubs["depth_info"].publish(convert.camera_info(r.depth_k, h, w, stamp, frame_id))
                if pubs["depth_points"].get_subscription_count() > 0:  # only computed when wanted
                    rgb = r.depth_rgb if self.p("depth_points_rgb") else None
                    pubs["depth_points"].publish(convert.depth_points(
                        r.depth, r.depth_k, rgb, max(1, int(self.p("depth_points_step"))), stamp, frame_id))
            if r.tracks is not None:
                pubs["tracks"].publish(convert.tracks_cloud(r.tracks, stamp, frame_id))
                if pubs["markers"].get_subscription_count() > 0 and self.pipeline is not None:
                    pubs["markers"].publish(convert.track_markers(self._trails_xyz(r), stamp, frame_id))
            if r.pose is not None:
                odom = convert.odometry(r.pose, stamp, odom_frame, base_frame)
                pubs["odometry"].publish(odom)
                pose = convert.pose_stamped(r.pose.odom_from_base, stamp, odom_frame)
                pubs["pose"].publish(pose)
                self.path.header.stamp = pose.header.stamp
                self.path.poses.append(pose)
                if self.tf_publish is not None:
                    self.tf_publish([convert.transform_stamped(r.pose.odom_from_base, stamp, odom_frame, base_frame)])
            self.latency_ms.append((time.time_ns() - stamp) / 1e6)
        if any(r.pose is not None for r in result.frames):
            # Once per clip, not per frame: a long Path is costly to serialise.
            del self.path.poses[: max(0, len(self.path.poses) - int(self.p("path_max_length")))]
            pubs["path"].publish(self.path)
        if result.frames:
            # Counted together at the clip's end, so a diagnostics message never sees a clip's
            # frames out without its clip latency (the bench read nan between the two).
            self.clip_latency_ms.append((time.time_ns() - result.frames[-1].stamp_ns) / 1e6)
            self.counts["frames_out"] += len(result.frames)

    def _trails_xyz(self, r) -> dict[int, np.ndarray]:
        """Trails of live tracks at each track's current depth (1 m when unknown)."""
        depth_by_id = {int(i): float(z) for i, z in zip(r.tracks.ids, r.tracks.xyz[:, 2]) if np.isfinite(z)}
        out = {}
        for tid, uv in self.pipeline.tracks.trails().items():
            uv = np.asarray(uv)
            z = depth_by_id.get(tid, 1.0)
            out[tid] = np.stack([(uv[:, 0] - r.k[0, 2]) / r.k[0, 0] * z, (uv[:, 1] - r.k[1, 2]) / r.k[1, 1] * z,
                                 np.full(len(uv), z)], axis=1)
        return out

    # -- diagnostics ----------------------------------------------------------------------------
    def frames_pending(self) -> int:
        """Frames on their way out: waiting for their camera_info, in a clip waiting for or in
        inference (not yet counted out or dropped), or, with flush_after_s > 0, buffered after the
        last clip (they come out by the next hop or the idle flush)."""
        with self.sync_lock:
            waiting = len(self.camera_sync.waiting)
        buffered = self.pipeline.buffer.undescribed if self.pipeline is not None and self.flush_after_s > 0 else 0
        with self.clip_queue_cv:
            return waiting + buffered + self.frames_in_inference + sum(c.new_frames for c in self.clip_queue.clips)

    def publish_diagnostics(self) -> None:
        now = time.monotonic()
        last = getattr(self, "_diag_last", None)
        self._diag_last = (now, self.counts["frames_in"], self.counts["frames_out"])
        in_rate = out_rate = 0.0
        if last is not None and now > last[0]:
            in_rate = (self.counts["frames_in"] - last[1]) / (now - last[0])
            out_rate = (self.counts["frames_out"] - last[2]) / (now - last[0])
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: perception",
                                  hardware_id=self.backend_text or "none")
        if self.failure:
            status.level, status.message = DiagnosticStatus.ERROR, self.failure
        elif self.errors or self.counts["frames_dropped"]:
            status.level = DiagnosticStatus.WARN
            status.message = f"{self.state_text}; " + ", ".join(
                f"{k}: {v}" for k, v in sorted(self.errors.items()))
            if self.counts["frames_dropped"]:
                status.message += f"; dropped {self.counts['frames_dropped']} frames"
        else:
            status.level, status.message = DiagnosticStatus.OK, self.state_text
        ms = list(self.inference_ms)
        lat = list(self.latency_ms)
        clip = list(self.clip_latency_ms)
        values = {
            "state": self.state_text,
            "backend": self.backend_text,
            "model": str(self.p("model")),
            "input_rate_hz": f"{in_rate:.2f}",
            "output_rate_hz": f"{out_rate:.2f}",
            "inference_latency_ms": f"{np.mean(ms):.2f}" if ms else "nan",
            "latency_p50_ms": f"{np.percentile(lat, 50):.2f}" if lat else "nan",
            "latency_p95_ms": f"{np.percentile(lat, 95):.2f}" if lat else "nan",
            "clip_latency_p50_ms": f"{np.percentile(clip, 50):.2f}" if clip else "nan",
            "clip_latency_p95_ms": f"{np.percentile(clip, 95):.2f}" if clip else "nan",
            "input_transport_ms": f"{np.median(self.transport_ms):.2f}" if self.transport_ms else "nan",
            "process_publish_ms": f"{np.median(self.process_ms):.2f}" if self.process_ms else "nan",
            "frames_in": self.counts["frames_in"],
            "frames_out": self.counts["frames_out"],
            "clips": self.counts["clips"],
            "frames_dropped": self.counts["frames_dropped"],
            "frames_lost_in_transport": self.counts["frames_lost_in_transport"],
            "clips_dropped": self.counts["clips_dropped"],
            "clips_flushed": self.counts["clips_flushed"],
            # 0 once the node has caught up with its input
            "frames_pending": self.frames_pending(),
            "resets": sum(v for k, v in self.counts.items() if k.startswith("reset_")),
            # Publishers this node has discovered on image + image/compressed (0 while inactive).
            "image_publishers": sum(self.count_publishers(s.topic_name) for s in self.subscriptions_[:2]),
            "camera_info": "yes" if self.camera_sync.latest_k is not None else "no (default intrinsics)",
            "frames_without_own_camera_info": self.counts["frames_without_own_camera_info"],
        }
        values.update({f"resets_{k[6:]}": v for k, v in self.counts.items() if k.startswith("reset_")})
        values.update({f"errors_{k}": v for k, v in self.errors.items()})
        if self.pipeline is not None:
            values["pose_gaps"] = self.pipeline.odometry.gaps
            values["tracks_live"] = len(self.pipeline.tracks.tracks)
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=sys.argv if argv is None else argv)
    node = PerceptionNode()
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    if node.p("autostart"):
        if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.running = False
        node._release()
        node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
