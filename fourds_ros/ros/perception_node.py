"""`fourds_perception`: a lifecycle node that wires ROS to the perception modules.

    ros2 run fourds_ros perception_node --ros-args --params-file config/perception.yaml

configure: settings from parameters, the engine and pipeline, publishers, the inference worker
  (FAILURE with the reason when the model or a parameter is bad; the node keeps running and
  /diagnostics says why).
activate: the subscriptions (image, image/compressed, camera_info[, track_queries]).
deactivate / cleanup: destroy them / release the engine and publishers.

Everything else lives in rclpy-free modules: perception/settings.py (every parameter),
perception/pipeline.py (frames -> clips -> results), perception/worker.py (the inference thread,
its queue and the idle flush), perception/health.py (counters and diagnostics rules) and
ros/outputs.py (results -> messages). Subscription callbacks only decode and buffer frames.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path as PathMsg
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSPresetProfiles
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from ..perception.camera_info_sync import CameraInfoSync, Paired
from ..perception.health import NodeHealth, NodeState
from ..perception.image import ImageDecodeError
from ..perception.pipeline import create_pipeline
from ..perception.worker import InferenceWorker
from . import convert
from .launch_logic import NODE_NAME
from .outputs import TOPICS, OutputMessages
from .parameters import declare_parameters, read_settings

MESSAGE_TYPES = {"depth": Image, "depth_info": CameraInfo, "depth_points": PointCloud2, "tracks": PointCloud2,
                 "markers": MarkerArray, "odometry": Odometry, "pose": PoseStamped, "path": PathMsg}


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
        declare_parameters(self)
        self.health = NodeHealth(self.get_logger().warning)
        self.state_text, self.failure, self.backend_text, self.model_text = "unconfigured", "", "", ""
        self.settings = self.pipeline = self.worker = self.outputs = self.tf_publish = None
        self.subscriptions_: list = []
        self.publishers_: dict = {}
        self.camera_sync = CameraInfoSync(wait_s=0.0)
        self.sync_timer = None  # releases images whose camera_info is overdue (while active)
        self.flush_timer = None  # describes the frames after the last clip once input stops
        self.lock = threading.Lock()  # pipeline buffer (subscriptions) vs reset service
        self.sync_lock = threading.Lock()  # camera_sync: inputs vs deactivation
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.diag_timer = self.create_timer(float(self.get_parameter("diagnostics_period_s").value),
                                            self.publish_diagnostics)
        self.reset_srv = self.create_service(Trigger, "~/reset", self.on_reset)
        self.sub_group = MutuallyExclusiveCallbackGroup()  # inputs run one at a time

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
        self.failure, self.state_text = "", "inactive"
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        self.settings = s = read_settings(self)
        self.pipeline, self.backend_text = create_pipeline(s, log=self.get_logger().info)
        self.model_text = s.model.resolved_path()
        qos = QoSPresetProfiles[s.inputs.output_qos].value
        self.publishers_ = {key: self.create_publisher(MESSAGE_TYPES[key], topic, qos) for key, topic in TOPICS.items()}
        self.tf_publish, tf_text = None, "off (publish_tf false)"
        if s.pose.publish_tf:
            self.tf_publish, tf_text, tf_pub = make_tf_publisher(self, QoSPresetProfiles.DEFAULT.value)
            if tf_pub is not None:
                self.publishers_["tf"] = tf_pub
        self.outputs = OutputMessages(s)
        self.worker = InferenceWorker(self._run_clip, lambda exc: self.health.warn("worker", repr(exc)),
                                      self.health.counts)
        self.worker.start()
        self.get_logger().info(f"configured: backend {self.backend_text}, hop {self.pipeline.hop}, TF {tf_text}")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        s, sub = self.settings, self.create_subscription
        qos = QoSPresetProfiles[s.inputs.image_qos].value
        # Frames the middleware lost before our callback (best-effort under load) are counted too.
        lost = SubscriptionEventCallbacks(message_lost=self.on_message_lost)
        group = {"callback_group": self.sub_group}
        self.subscriptions_ = [
            sub(Image, "image", self.on_image, qos, event_callbacks=lost, **group),
            sub(CompressedImage, "image/compressed", self.on_compressed, qos, event_callbacks=lost, **group),
            sub(CameraInfo, "camera_info", self.on_camera_info, qos, **group),
        ]
        if s.tracks.query_mode == "topic":
            self.subscriptions_.append(sub(PointCloud2, "track_queries", self.on_track_queries, 10, **group))
        self.camera_sync = CameraInfoSync(wait_s=s.clip.camera_info_wait_s)
        if self.camera_sync.wait_s > 0:  # only waiting images need releasing when overdue
            self.sync_timer = self.create_timer(0.05, self.on_sync_timer, **group)
        if s.clip.flush_after_s > 0:
            self.flush_timer = self.create_timer(min(0.1, s.clip.flush_after_s / 4), self.on_flush_timer, **group)
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
        if self.worker is not None:
            self.worker.stop(timeout_s=10)
            self.health.counts["frames_discarded_at_release"] += self.worker.discard()
        self.worker = self.tf_publish = None
        for p in self.publishers_.values():
            self.destroy_publisher(p)
        self.publishers_ = {}
        self.pipeline = None

    # -- inputs ---------------------------------------------------------------------------------
    def on_camera_info(self, msg: CameraInfo) -> None:
        k = convert.k_from_camera_info(msg)
        if k is None:
            self.health.warn("camera_info", "camera_info has an empty K; using the default intrinsics")
        with self.sync_lock:
            for paired in self.camera_sync.push_info(convert.stamp_to_ns(msg.header.stamp), k, time.monotonic()):
                self._add_frame(paired)

    def on_sync_timer(self) -> None:
        with self.sync_lock:
            for paired in self.camera_sync.release(time.monotonic()):
                self._add_frame(paired)

    def on_flush_timer(self) -> None:
        """Input idle with nothing in inference: a clip of the last frames describes the ones after
        the last clip, which would otherwise wait for the next hop or be dropped by a gap reset."""
        if self.pipeline is None or not self.worker.flush_due(self.settings.clip.flush_after_s):
            return
        with self.lock:
            clip = self.pipeline.flush()
        if clip is not None:
            self.health.counts["clips_flushed"] += 1
            self.worker.submit(clip)

    def on_message_lost(self, info) -> None:
        self.health.counts["frames_lost_in_transport"] += int(info.total_count_change)

    def on_image(self, msg: Image) -> None:
        self._on_frame(msg, lambda: convert.image_to_rgb(msg), msg.encoding)

    def on_compressed(self, msg: CompressedImage) -> None:
        self._on_frame(msg, lambda: convert.compressed_to_rgb(msg), f"compressed:{msg.format}")

    def on_track_queries(self, msg: PointCloud2) -> None:
        try:
            cloud = convert.read_cloud(msg)
            uv = np.stack([cloud["u"], cloud["v"]], axis=1)
        except Exception as exc:
            self.health.warn("track_queries", f"track_queries needs float32 fields u, v: {exc}")
            return
        if self.pipeline is not None:
            self.pipeline.add_track_queries(uv)

    def _on_frame(self, msg, decode, encoding: str) -> None:
        stamp_ns = convert.stamp_to_ns(msg.header.stamp)
        self.health.transport_ms.append((time.time_ns() - stamp_ns) / 1e6)
        self.health.counts["frames_in"] += 1
        if self.pipeline is None:
            return
        # With camera_info_wait_s > 0 an image may wait for its own camera_info: camera_info_sync.py.
        with self.sync_lock:
            for paired in self.camera_sync.push_image(stamp_ns, (msg, decode, encoding), time.monotonic()):
                self._add_frame(paired)

    def _add_frame(self, paired: Paired) -> None:
        msg, decode, encoding = paired.item
        pipeline = self.pipeline
        if pipeline is None:
            return
        try:
            rgb = decode()
        except ImageDecodeError as exc:
            self.health.warn(exc.kind, f"dropping frame: {exc}")
            return
        if paired.k is None:
            self.health.warn("no_camera_info", "no camera_info received yet: assuming a "
                             f"{self.settings.clip.default_hfov_deg} deg horizontal field of view")
        elif not paired.exact:
            self.health.counts["frames_without_own_camera_info"] += 1
        with self.lock:
            clip, reason = pipeline.add_frame(rgb, convert.stamp_to_ns(msg.header.stamp), msg.header.frame_id,
                                              paired.k, encoding)
            self.worker.touch()
        if reason:
            self.health.counts[f"reset_{reason}"] += 1
            self.health.warn(f"reset_{reason}", f"clip buffer reset ({reason}) at frame stamp "
                             f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}")
        if clip is not None:
            self.worker.submit(clip)

    def on_reset(self, request, response):
        if self.pipeline is None:
            response.success, response.message = False, "not configured"
            return response
        # A clip already waiting for inference is kept: its frames arrived before the reset and
        # are still described (in the old chain); the reset applies from the next frame on.
        with self.lock:
            self.pipeline.reset("manual")
        self.health.counts["reset_manual"] += 1
        response.success, response.message = True, "odometry and tracks reset"
        return response

    # -- inference thread -----------------------------------------------------------------------
    def _run_clip(self, clip) -> None:
        pipeline, t_start = self.pipeline, time.perf_counter()
        if pipeline is None:
            return
        try:
            result = pipeline.process(clip)
        except Exception as exc:  # keep running; the next clip may be fine
            self.health.warn("inference", f"inference failed: {type(exc).__name__}: {exc}")
            return
        self.health.counts["clips"] += 1
        pubs = self.publishers_
        send = {key: pub.publish for key, pub in pubs.items()}
        send["tf"] = self.tf_publish or (lambda transforms: None)  # no TF library: warned at configure
        try:
            for key, msg in self.outputs.build(result, pipeline.trails(),
                                               lambda key: pubs[key].get_subscription_count() > 0):
                send[key](msg)
        except Exception as exc:
            if self.worker is not None and self.worker.running:
                self.health.warn("publish", f"publishing failed: {type(exc).__name__}: {exc}")
            return
        self.health.record_clip([r.stamp_ns for r in result.frames], result.inference_s,
                                time.perf_counter() - t_start)

    # -- diagnostics ----------------------------------------------------------------------------
    def frames_pending(self) -> int:
        """Frames on their way out: waiting for their camera_info, waiting for or in inference, or,
        with flush_after_s > 0, buffered after the last clip (out by the next hop or the flush)."""
        with self.sync_lock:
            waiting = len(self.camera_sync.waiting)
        if self.pipeline is None or self.worker is None:
            return waiting
        buffered = self.pipeline.undescribed_frames if self.settings.clip.flush_after_s > 0 else 0
        return waiting + buffered + self.worker.pending_frames()

    def publish_diagnostics(self) -> None:
        state = NodeState(self.state_text, self.failure, self.backend_text, self.model_text, self.frames_pending(),
                          sum(self.count_publishers(s.topic_name) for s in self.subscriptions_[:2]),
                          self.camera_sync.latest_k is not None,
                          self.pipeline.status() if self.pipeline is not None else None)
        level, message, values = self.health.report(state)
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: perception", level=bytes([level]),
                                  message=message, hardware_id=self.backend_text or "none",
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=sys.argv if argv is None else argv)
    node = PerceptionNode()
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    if node.get_parameter("autostart").value:
        if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._release()
        node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
