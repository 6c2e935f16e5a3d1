"""`fourds_perception` (`ros2 run fourds_ros perception_node`): a lifecycle node that wires ROS to the perception modules.

configure: settings, engine + pipeline, publishers, inference worker (FAILURE with the reason; the process stays up and
  /diagnostics says why). activate: subscriptions to the image (one transport), camera_info [, track_queries]
  [, reference_odom] [, /tf: publish_tf's watch for another odom -> base source], /tf_static, the bond
  nav2_lifecycle_manager waits for (FAILURE, with the reason, undoes them). deactivate / cleanup: undo them.
The logic is in rclpy-free modules: perception/{settings,pipeline,intake,worker,health}.py, ros/outputs.py."""

from __future__ import annotations

import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger

from ..perception.health import NodeHealth, NodeState
from ..perception.intake import FrameIntake
from ..perception.pipeline import ClipFailed, create_pipeline
from ..perception.worker import InferenceWorker
from . import convert
from .launch_logic import NODE_NAME
from .manager_bond import ManagerBond
from .node_lifetime import init_ros, release_warning, ros_arguments, run_until_shutdown, watch_clock_jumps
from .outputs import DepthFirst, OutputMessages
from .parameters import declare_parameters, read_at_start, read_settings
from .transforms import CameraMount, create_publishers, create_subscriptions

RELEASE_WAIT_S = 10.0  # cleanup / shutdown waits this long for the running clip and the queued ones
SIGNAL_RELEASE_WAIT_S = 3.0  # at a signal, for the running clip only: launch SIGTERMs 5 s after its SIGINT


class PerceptionNode(LifecycleNode):
    def __init__(self, init_args: list[str] | None = None, **kwargs):  # init_args: rclpy.init's (None: sys.argv)
        super().__init__(NODE_NAME, **kwargs)
        self.ros_arguments = ros_arguments(init_args, kwargs)  # the rules and params files rcl applied
        declare_parameters(self)
        self.health = NodeHealth(self.get_logger().warning, now_ns=lambda: self.get_clock().now().nanoseconds)
        self.clock_jumps = watch_clock_jumps(self, self.health.clock_jumped)
        self.state_text, self.failure, self.backend_text, self.model_text = "unconfigured", "", "", ""
        self.settings = self.pipeline = self.worker = self.intake = self.outputs = self.tf_publish = None
        self.mount, self.bond = None, ManagerBond(self, self.get_logger().warning)
        self.subscriptions_, self.publishers_, self.timers_ = [], {}, []
        # Timers on the steady clock: under use_sim_time a stopped /clock must not stop the idle flush or diagnostics.
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.at_start = read_at_start(self)  # autostart, diagnostics_period_s
        self.diag_timer = self.create_timer(self.at_start.diagnostics.period_s, self.publish_diagnostics, clock=self.steady)
        self.reset_srv = self.create_service(Trigger, "~/reset", self.on_reset)

    # -- lifecycle ------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # a bad model or parameter must not crash the process
            self.failure = f"configure failed: {type(exc).__name__}: {exc}"
            self.state_text = "unconfigured (configure failed)"
            if self.context.ok():
                self.get_logger().error(self.failure)
            else:  # a SIGTERM during configure fails it at the next publisher it makes: no fault of the node's
                self.get_logger().info(f"configure stopped by the shutdown ({type(exc).__name__})")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.failure, self.state_text = "", "inactive"
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        self.settings = s = read_settings(self)
        self.pipeline, self.backend_text = create_pipeline(s, self.get_logger().info, self.get_logger().warning)
        self.model_text = s.model.resolved_path()
        self.health.set_limits(s.diagnostics)
        self.publishers_, self.tf_publish, tf_text = create_publishers(self, s, self.pipeline.enabled["pose"])
        self.outputs = OutputMessages(s)
        self.worker = InferenceWorker(self._run_clip, lambda exc: self.health.warn("worker", repr(exc)),
                                      self.health.counts, s.clip.max_waiting_clips)
        self.pipeline.behind = self.worker.clip_waiting  # a newer clip waits: optional work is skipped
        self.intake = FrameIntake(self.pipeline, self.worker, self.health, s,
                                  lambda frame_id, stamp: self.mount.resolve(frame_id, stamp) if self.mount else None)
        self.worker.start()
        self.get_logger().info(f"configured: backend {self.backend_text}, hop {self.pipeline.hop}, TF {tf_text}")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._activate()
        except Exception as exc:  # raised to rclpy, the inputs made so far fed a node it had put back to unconfigured
            self.failure = f"activate failed: {type(exc).__name__}: {exc}"
            self.get_logger().error(self.failure)
            self._stop_inputs()
            self.state_text = "inactive (activate failed)"
            return TransitionCallbackReturn.FAILURE
        self.failure, self.state_text = "", "active"
        self.bond.start()  # last: nav2_lifecycle_manager forms it once activation has returned
        return super().on_activate(state)

    def _activate(self) -> None:
        s = self.settings
        create_subscriptions(self, s, self.subscriptions_)  # the image's first: publish_diagnostics counts its publishers
        self.mount = CameraMount(self, s.pose, self.intake.parameter_mount_kept)
        if s.clip.camera_info_wait_s > 0 or s.clip.camera_info_startup_wait_s > 0:  # waiting images, released when overdue
            self.timers_.append(self.create_timer(0.05, self.intake.release_overdue, clock=self.steady))
        if s.clip.flush_after_s > 0:
            self.timers_.append(self.create_timer(min(0.1, s.clip.flush_after_s / 4), self.intake.flush_if_idle,
                                                  clock=self.steady))
        self.health.activated()

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self.state_text = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.failure, self.state_text = "", "unconfigured"  # a failed activation is no longer what is wrong
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self._release()
        self.state_text = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _stop_inputs(self) -> None:
        self.bond.stop()
        for s in self.subscriptions_:
            self.destroy_subscription(s)
        for timer in self.timers_:
            self.destroy_timer(timer)
        self.subscriptions_, self.timers_ = [], []
        if self.intake is not None:  # before the mount goes: the frames it describes may ask for it
            self.intake.drain()
        if self.mount is not None:
            self.mount.destroy()

    def _release(self) -> None:
        discarded = self.pipeline.pending_frames if self.pipeline is not None else 0  # buffered: flush had no clip
        if self.worker is not None:
            signalled = getattr(self, "stop_requested", False) or not self.context.ok()  # run_until_shutdown's
            wait_s = SIGNAL_RELEASE_WAIT_S if signalled else RELEASE_WAIT_S
            if not self.worker.stop(wait_s, not signalled):
                release_warning(self, f"the running clip did not end within {wait_s:g} s: dropped")
            discarded += self.worker.discard()
        if self.pipeline is not None:  # its counters end with it: their totals, after the clips stop() ran
            self.health.carry(self.pipeline.status())
        self.health.counts["frames_discarded_at_release"] += discarded  # buffered ones were left unaccounted
        if discarded:  # shutdown or cleanup with frames not described: say so
            release_warning(self, f"released with {discarded} frames buffered or queued for inference: discarded")
        for p in self.publishers_.values():
            self.destroy_publisher(p)
        self.publishers_ = {}
        self.pipeline = self.worker = self.intake = self.tf_publish = None

    def on_camera_info(self, msg: CameraInfo, info) -> None:  # two arguments: rclpy passes the MessageInfo
        if self.intake is not None:
            self.intake.push_info(convert.stamp_to_ns(msg.header.stamp), convert.calibration(msg), convert.publisher_gid(info))

    def on_image(self, msg: Image, info) -> None:  # two arguments: rclpy passes the MessageInfo
        self._on_frame(msg, info, lambda _budget: convert.image_for_work(msg, self.settings.inputs), msg.encoding)

    def on_compressed(self, msg: CompressedImage, info) -> None:
        self._on_frame(msg, info, lambda budget: convert.compressed_for_work(msg, budget, self.settings.inputs),
                       f"compressed:{msg.format}")

    def _on_frame(self, msg, info, decode, encoding: str) -> None:
        stamp_ns = convert.stamp_to_ns(msg.header.stamp)
        if not self.health.frame_received(stamp_ns, convert.publisher_gid(info), info.get("publication_sequence_number"),
                                          info.get("received_timestamp")):
            return  # another image publisher's, beside the one followed: counted rejected (health.py INTERLEAVED_S)
        if (intake := self.intake) is None:
            self.health.counts["frames_ignored"] += 1
            return
        intake.push_image(stamp_ns, msg.header.frame_id, decode, encoding)

    def on_track_queries(self, msg: PointCloud2) -> None:
        intake = self.intake
        try:
            if intake is not None:  # bad clouds, or (image_rotation) queries before any image: refused
                intake.add_track_queries(convert.track_query_uv(msg), convert.stamp_to_ns(msg.header.stamp))
        except ValueError as exc:
            self.health.warn("track_queries", str(exc))

    def on_reset(self, request, response):
        if self.intake is not None:
            self.intake.reset("manual")
        response.success = self.intake is not None
        response.message = "odometry and tracks reset" if response.success else "not configured"
        return response

    def _run_clip(self, clip) -> None:
        # Frames are counted through worker.settle, which takes them out of inference in the same step:
        # /diagnostics never sees them pending and counted at once (frames_unaccounted below 0).
        pipeline, worker, tf_publish, counts = self.pipeline, self.worker, self.tf_publish, self.health.counts
        if pipeline is None or worker is None:
            return
        t_start = time.perf_counter()

        def warn_unless_stopping(category: str, text: str) -> None:  # stopping: its publishers are going
            if worker.running:
                self.health.warn(category, text)
        send_depth = DepthFirst(self.outputs, self.publishers_, warn_unless_stopping)  # a costmap waits for depth
        try:
            result = pipeline.process(clip, on_depth=send_depth)
        except ClipFailed as exc:  # keep running; the next clip may be fine
            worker.settle(lambda: counts.update(frames_failed=clip.new_frames))
            sent = "" if "depth" in send_depth.rest else "; its depth was sent"  # a costmap has that much
            if not worker.abandoned:  # counted in a row too: an engine failing on every clip is ERROR
                self.health.clip_failed(exc.stage, f"{exc}{sent}")
            return
        if worker.abandoned:  # the release gave up on it: its frames are counted discarded, its publishers gone
            return
        counts["clips"] += 1
        try:
            with pipeline.odometry_current(result) as (pose, tf):  # a ~/reset waits until these poses are out
                send_depth.send_rest(result, pipeline.trails(), tf_publish if tf else None, pose=pose)
        except Exception as exc:
            worker.settle(lambda: counts.update(frames_failed=len(result.frames)))
            warn_unless_stopping("publish", f"publishing failed: {type(exc).__name__}: {exc}")
            return
        worker.settle(lambda: self.health.record_clip(
            [r.stamp_ns for r in result.frames], result.inference_s, time.perf_counter() - t_start,
            blind=result.blind, partly_blind=result.partly_blind, stage_s=send_depth.stages(result),
            failed=result.failed, warnings=result.warnings))

    def publish_diagnostics(self) -> None:
        if not self.context.ok():  # a timer firing while the process shuts down
            return
        intake = self.intake  # configured: it fills in the pending frames and the pipeline's counters
        publishers = self.count_publishers(self.subscriptions_[0].topic_name) if self.subscriptions_ else 0
        state = NodeState(self.state_text, self.failure, self.backend_text, self.model_text, image_publishers=publishers,
                          has_camera_info=intake is not None and intake.has_camera_info)
        level, message, values = intake.report(state) if intake is not None else self.health.report(state)
        values["camera_mount"] = self.mount.state if self.mount is not None else "not looked up (inactive)"
        values["manager_bond"] = self.bond.state
        self.diag_pub.publish(convert.diagnostics(f"{self.get_fully_qualified_name()}: perception", level, message,
                                                  self.backend_text or "none", values, self.get_clock().now().to_msg()))


def main(argv: list[str] | None = None, exiting: bool = False) -> int:
    if (exit_code := init_ros(sys.argv if argv is None else argv)) is not None:
        return exit_code
    node = PerceptionNode(init_args=argv)  # the rules and params files init_ros applied
    run_until_shutdown(node, node.at_start.model.autostart, exiting)  # exiting: the process ends after (entry)
    return 0


if __name__ == "__main__":
    sys.exit(main(exiting=True))
