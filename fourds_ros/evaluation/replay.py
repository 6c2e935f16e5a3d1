"""Replay a bag through the real node over DDS and record its outputs (the only rclpy module in
fourds_ros.evaluation; rclpy is imported inside `Replayer`, so importing this module and
calling `run_dds` from the evaluator does not load rclpy: replay runs in its own process).

  python -m fourds_ros.evaluation.replay --bag BAG --out OUT.mcap --timing T.json --rate max ...

Rates: "max" publishes as fast as the node keeps up, with back-pressure so no clip is ever
dropped: the frame that completes a clip is published only once every earlier clip has been
answered on every scored topic, its pose too (the frames before it still flow while the node
infers), so a clip never meets another one in the node's clip queue and the node runs as one
that keeps up with its camera. "bag" keeps the bag's own timing; a number is a fixed rate in Hz. With "bag"
or a fixed rate the node drops clips when it falls behind, and that is what gets measured.

Outputs (depth, depth/camera_info, tracks, pose, odometry; not /diagnostics, whose last values go to the
timing JSON) are recorded as the raw CDR bytes the node sent, stamped with their arrival time, into one
.mcap (rosbags writer).
Timing (publish and arrival wall time per input stamp) goes to a JSON file.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .bag import CAMERA_INFO_TOPIC, COMPRESSED_TOPIC, IMAGE_TOPIC, BagData, BagError, cloud_fields, \
    image_from_msg, open_reader, pose_from_msg, stamp_of
from .. import ros_env
from ..argtypes import frame_count
from ..perception.clip_buffer import ClipSchedule, default_hop
from .predictions import Predictions

RECORDED = {  # node topic -> msgtype
    "/depth/image": "sensor_msgs/msg/Image",
    "/depth/camera_info": "sensor_msgs/msg/CameraInfo",
    "/tracks": "sensor_msgs/msg/PointCloud2",
    "/pose": "geometry_msgs/msg/PoseStamped",
    "/odometry": "nav_msgs/msg/Odometry",
}
SCORED = ("/depth/image", "/tracks", "/pose")
# How long a frame's answer waits for a scored topic the node has not yet been seen to publish
# (a head it does not run never answers).
ANSWER_GRACE_S = 3.0
READ_BACK = SCORED + ("/depth/camera_info",)
# The drain ends once no output has come for this long after the last frame was answered.
DRAIN_QUIET_S = 0.5


class ReplayError(RuntimeError):
    """The node did not come up, stalled, or the replay could not run; the message says which."""


def _load_ros_type(msgtype: str):
    pkg, _, name = msgtype.split("/")
    return getattr(__import__(f"{pkg}.msg", fromlist=[name]), name)


def load_replay_frames(bag_path: str, max_frames: int | None = None) -> tuple[list, str]:
    """The bag's image messages with their camera_info, as CDR bytes: -> ([(stamp, image, camera_info
    or None)], image msgtype)."""
    reader = open_reader(bag_path)
    frames: list[tuple[int, bytes, bytes | None]] = []
    try:
        topics = {c.topic: c for c in reader.connections}
        image_topic = IMAGE_TOPIC if IMAGE_TOPIC in topics else COMPRESSED_TOPIC if COMPRESSED_TOPIC in topics else None
        if image_topic is None:
            raise BagError(f"{bag_path}: no {IMAGE_TOPIC} or {COMPRESSED_TOPIC} to replay")
        infos: dict[int, bytes] = {}
        conns = [topics[image_topic]] + ([topics[CAMERA_INFO_TOPIC]] if CAMERA_INFO_TOPIC in topics else [])
        for conn, _, raw in reader.messages(connections=conns):
            stamp = stamp_of(reader.deserialize(raw, conn.msgtype).header)
            if conn.topic == CAMERA_INFO_TOPIC:
                infos[stamp] = bytes(raw)
            elif max_frames is None or len(frames) < max_frames:
                frames.append((stamp, bytes(raw), None))
    finally:
        reader.close()
    if not frames:
        raise BagError(f"{bag_path}: no frames to replay")
    image_type = "sensor_msgs/msg/CompressedImage" if image_topic == COMPRESSED_TOPIC else "sensor_msgs/msg/Image"
    info_stamps = sorted(infos)
    frames.sort(key=lambda frame: frame[0])  # in stamp order, as read_bag scores them (a recorder logs on arrival)
    return [(s, img, nearest_info(infos, info_stamps, s)) for s, img, _ in frames], image_type


def nearest_info(infos: dict[int, bytes], info_stamps: list[int], stamp: int) -> bytes | None:
    """The camera_info nearest in time to an image (info_stamps: infos' stamps, sorted), as
    BagData.intrinsics takes it offline: a driver's camera_info rarely carries the image's exact
    stamp, and by exact stamp such a bag was replayed with none, the node falling back to its
    default field of view."""
    if not info_stamps:
        return None
    i = bisect.bisect_left(info_stamps, stamp)
    near = min(info_stamps[max(0, i - 1): i + 1], key=lambda t: abs(t - stamp))
    return infos[near]


class Replayer:
    """One replay in this process: publishes images + camera_info to the node under `namespace`
    and records its outputs (raw CDR with arrival times). Steps: ready, prime, publish, drain."""

    def __init__(self, image_type: str, namespace: str, stall_s: float):
        import rclpy
        from rclpy.qos import HistoryPolicy, QoSPresetProfiles, QoSProfile, ReliabilityPolicy

        from .bag import typestore

        rclpy.init(args=[])
        self.rclpy, self.ts, self.stall_s, self.image_type = rclpy, typestore(), stall_s, image_type
        self.node = node = rclpy.create_node("fourds_eval_replay")
        reliable = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        self.ns = ns = ("/" + namespace.strip("/")) if namespace.strip("/") else ""
        image_topic = COMPRESSED_TOPIC if image_type.endswith("CompressedImage") else IMAGE_TOPIC
        self.image_pub = node.create_publisher(_load_ros_type(image_type), ns + image_topic, reliable)
        self.info_pub = node.create_publisher(_load_ros_type("sensor_msgs/msg/CameraInfo"), ns + CAMERA_INFO_TOPIC,
                                              reliable)
        # The bag's time, as `ros2 bag play --clock` gives it to a node with use_sim_time (node_command):
        # the node measures its latency against the stamps it is sent (health.STAMP_OFF_CLOCK_S).
        self.clock_type = _load_ros_type("rosgraph_msgs/msg/Clock")
        self.clock_pub = node.create_publisher(self.clock_type, clock_topic(ns), reliable)
        self.received: list[tuple[str, int, bytes]] = []
        self.arrivals: dict[int, int] = {}  # input stamp -> wall ns of the first scored output for it
        self.answers: dict[int, set[str]] = {}  # input stamp -> the scored topics that answered it
        self.kinds_seen: set[str] = set()  # the scored topics this node publishes, as far as seen
        for topic, msgtype in RECORDED.items():
            node.create_subscription(_load_ros_type(msgtype), ns + topic, self._recorder(topic), reliable, raw=True)
        # The node's image subscription keeps the last `history` samples (node_command: image_qos
        # DEFAULT). A burst longer than that overwrites the oldest frames before the node's
        # callback takes them (it lost frame 0 in about half the runs), so at most `history`
        # frames are ever in flight.
        self.history = QoSPresetProfiles.DEFAULT.value.depth
        self.stalled = 0

    def _recorder(self, topic: str):
        def callback(raw: bytes):
            now = time.time_ns()
            self.received.append((topic, now, bytes(raw)))
            if topic in SCORED:
                # header stamp: the CDR header starts after the 4-byte encapsulation: sec int32, nanosec uint32
                sec, nsec = int.from_bytes(raw[4:8], "little", signed=True), int.from_bytes(raw[8:12], "little")
                stamp = sec * 1_000_000_000 + nsec
                self.arrivals.setdefault(stamp, now)
                self.answers.setdefault(stamp, set()).add(topic)
                self.kinds_seen.add(topic)
        return callback

    def answered(self, stamp: int) -> bool:
        """Every output of the frame `stamp` arrived: each scored topic the node has been seen to
        publish (and, until all of SCORED have been seen, ANSWER_GRACE_S after its first output for
        any other to come). Why: the node sends depth first and the tracks and pose after them;
        "max" back-pressure released on depth would send the next clip while the node still
        computes this one's pose, and the node, behind, would skip work it does when it keeps up
        (the epipolar direction: TUM's ATE 0.023 through DDS against 0.014 offline, session 31)."""
        topics = self.answers.get(stamp)
        if not topics or not self.kinds_seen <= topics:
            return False
        return len(self.kinds_seen) == len(SCORED) or self.past_grace(stamp)

    def past_grace(self, stamp: int) -> bool:
        """ANSWER_GRACE_S have passed since the frame `stamp`'s first output (False before it has one)."""
        first = self.arrivals.get(stamp)
        return first is not None and time.time_ns() - first > ANSWER_GRACE_S * 1e9

    def answer_count(self) -> int:
        """Scored outputs received so far (progress for wait_until)."""
        return sum(len(t) for t in self.answers.values())

    def spin(self, timeout_s: float) -> None:
        self.rclpy.spin_once(self.node, timeout_sec=timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        """Until the node subscribes to the images and publishes its outputs (model loaded, active)."""
        t0, node, ns = time.monotonic(), self.node, self.ns
        while (self.image_pub.get_subscription_count() == 0 or self.info_pub.get_subscription_count() == 0
               or node.count_publishers(ns + "/depth/image") + node.count_publishers(ns + "/pose") == 0):
            self.spin(0.1)
            if time.monotonic() - t0 > timeout_s:
                self.close()
                raise ReplayError(f"the perception node did not come up within {timeout_s:.0f} s "
                                  "(no subscriber on the image topic); see node.log")

    def publish_clock(self, stamp_ns: int) -> None:
        msg = self.clock_type()
        msg.clock.sec, msg.clock.nanosec = stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000
        self.clock_pub.publish(msg)

    def prime(self, camera_info: bytes | None, first_stamp: int) -> None:
        """The node keeps the latest camera_info and its callbacks may run in any order: the first
        frame's camera_info first, so that no frame is processed with assumed intrinsics. The
        clock first too, so that no frame meets a node clock still at 0."""
        self.publish_clock(first_stamp)
        for _ in range(3 if camera_info is not None else 0):
            self.info_pub.publish(camera_info)
            self.spin(0.05)
        time.sleep(0.5)  # let discovery settle in both directions
        for _ in range(20):
            self.spin(0.01)

    def wait_until(self, done, progress=lambda: None) -> bool:
        """Spin until done(); False after stall_s without progress() changing (outputs lost)."""
        last, t_last = progress(), time.monotonic()
        while not done():
            self.spin(0.01)
            if progress() != last:
                last, t_last = progress(), time.monotonic()
            if time.monotonic() - t_last > self.stall_s:
                self.stalled += 1
                return False
        return True

    def drain(self, last_stamp: int | None) -> None:
        """Wait until the last frame is answered on every scored topic (answered(); when no clip ends
        there, the node describes it once its input has been idle for flush_after_s), or, once it has
        any answer, for ANSWER_GRACE_S at most (a node sends depth alone where its tracks or pose stage
        failed, or no pose after a reset); then until no message has come for DRAIN_QUIET_S (the
        /odometry and camera_info that trail them). Why: the node sends a clip's tracks and pose after
        its depth, 0.3 s later on a loaded 2-core host; a drain that waited for the depth and then 20
        callbacks lost the last frame's pose, and TUM's ATE over DDS was scored on 21 frames against
        offline's 22 (CI, session 57)."""
        if last_stamp is not None:
            self.wait_until(lambda: self.answered(last_stamp) or self.past_grace(last_stamp), self.answer_count)
        received, quiet_until = len(self.received), time.monotonic() + DRAIN_QUIET_S
        while time.monotonic() < quiet_until:
            self.spin(0.02)
            if len(self.received) != received:
                received, quiet_until = len(self.received), time.monotonic() + DRAIN_QUIET_S

    def restamped(self, raw: bytes | None, msgtype: str, shift_ns: int) -> bytes | None:
        return _restamp(self.ts, raw, msgtype, shift_ns) if raw is not None and shift_ns else raw

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.shutdown()


def publish_frames(rp: Replayer, frames: list, rate: str, schedule: ClipSchedule, loops: int,
                   timeout_s: float, shift_ns: int = 0) -> tuple[dict[int, int], list[int]]:
    """Publish every frame (`loops` times, later loops restamped; every stamp moved by shift_ns) at
    `rate`: "max" with
    back-pressure (a clip-completing frame waits until every earlier clip is answered on every
    scored topic (Replayer.answered), and at most
    rp.history frames are in flight), "bag" (the bag's timing) or a number of Hz.
    -> (wall ns each stamp was published, stamps in publishing order)."""
    from tqdm import tqdm

    published: dict[int, int] = {}
    order, clip_ends, count = [], [], {}  # count: stamp -> frames published up to and including it
    given_up = 0  # frames taken as answered after a stall
    plan = [f for _ in range(max(1, loops)) for f in frames]
    period = frames[-1][0] - frames[0][0] + (frames[1][0] - frames[0][0] if len(frames) > 1 else 33_000_000)
    t0, stamp0 = time.monotonic(), frames[0][0]

    def answered() -> int:  # frames published up to the last answered clip end
        return max((count[s] for s in clip_ends if s in rp.arrivals), default=0)

    # The bar goes to stderr, which the caller inherits: `make demo` shows replay progress.
    for i, (stamp, img, info) in enumerate(tqdm(plan, desc="replay", unit="frame",
                                                disable=not os.environ.get("FOURDS_PROGRESS"))):
        shift = shift_ns + (i // len(frames)) * period  # later loops: new stamps, or the node sees time going back
        img, info, stamp = rp.restamped(img, rp.image_type, shift), rp.restamped(
            info, "sensor_msgs/msg/CameraInfo", shift), stamp + shift
        completes = schedule.push() > 0
        if rate == "max":
            # (the lambdas run inside wait_until, in this iteration: the defaults only pin that down)
            if completes and not rp.wait_until(lambda ends=clip_ends: all(rp.answered(s) for s in ends),
                                               rp.answer_count):
                clip_ends = [s for s in clip_ends if s in rp.arrivals]  # outputs lost: counted as dropped
            if not rp.wait_until(lambda g=given_up: len(order) + 1 - max(answered(), g) <= rp.history):
                given_up = len(order)  # the answer got lost: count frames so far as answered
        else:
            due = t0 + ((stamp - stamp0) / 1e9 if rate == "bag" else i / float(rate))
            while time.monotonic() < due:
                rp.spin(max(0.0, min(0.002, due - time.monotonic())))
        rp.publish_clock(stamp)
        if info is not None:
            rp.info_pub.publish(info)
        rp.image_pub.publish(img)
        published[stamp] = time.time_ns()
        order.append(stamp)
        count[stamp] = len(order)
        if completes:
            clip_ends.append(stamp)
        rp.spin(0)
        if time.monotonic() - t0 > timeout_s:
            break
    return published, order


def frames_in_clips(frames: int, clip_length: int, hop: int) -> int:
    """How many of the first `frames` frames a clip completes while they are streamed (clips end at
    frame clip_length - 1 + k hop); the rest wait for the node's idle flush once the stream stops,
    a second later: the end of the replay, which latency figures leave out."""
    return 0 if frames < clip_length else clip_length + (frames - clip_length) // hop * hop


def write_recording(received: list[tuple[str, int, bytes]], out_mcap: str | Path, ts) -> None:
    """The recorded outputs, in arrival order, as one .mcap (rosbags writer)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    out_mcap = Path(out_mcap)
    tmp = out_mcap.with_name(out_mcap.stem + "_rosbag2")
    shutil.rmtree(tmp, ignore_errors=True)
    with Writer(tmp, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {t: writer.add_connection(t, m, typestore=ts) for t, m in RECORDED.items()}
        for topic, now, raw in sorted(received, key=lambda r: r[1]):
            writer.write(conns[topic], now, raw)
    if out_mcap.exists():
        out_mcap.unlink()
    shutil.move(str(next(tmp.glob("*.mcap"))), out_mcap)
    shutil.rmtree(tmp, ignore_errors=True)


def replay_and_record(bag_path: str, out_mcap: str, timing_json: str, rate: str = "max", clip_length: int = 16,
                      hop: int = 8, timeout_s: float = 300.0, stall_s: float = 30.0, ready_timeout_s: float = 120.0,
                      max_frames: int | None = None, loops: int = 1, namespace: str = "", shift_s: float = 0.0,
                      cpu_pid: int | None = None) -> dict:
    """In this process: publish the bag's images + camera_info, record the node's outputs.
    shift_s: seconds added to every stamp (a warm-up ahead of the measured runs, bench/replay.py).
    cpu_pid: the node's process; its CPU seconds over the timed stream are `node_cpu_s` (None if unreadable).
    namespace: the node's namespace; inputs and outputs live under it so that other nodes on the
    same ROS domain cannot mix in (outputs are recorded under their plain names).
    Returns the timing summary (also written to timing_json)."""
    frames, image_type = load_replay_frames(bag_path, max_frames)
    rp = Replayer(image_type, namespace, stall_s)
    rp.wait_ready(ready_timeout_s)
    rp.prime(frames[0][2], frames[0][0] + round(shift_s * 1e9))
    diagnostics = NodeDiagnostics(rp.node, rp.ns)
    cpu0, t0 = _process_cpu_seconds(cpu_pid), time.monotonic()
    published, order = publish_frames(rp, frames, rate, ClipSchedule(clip_length, hop), loops, timeout_s,
                                      round(shift_s * 1e9))
    rp.drain(order[-1])  # fewer frames than a clip too: the node's idle flush describes them (a padded clip)
    wall_s = time.monotonic() - t0
    # The node's CPU over wall_s alone: read around this whole process it also held start-up, discovery,
    # priming and the wait for diagnostics, and CPU % over wall_s read 18-30 % high.
    node_cpu_s = _process_cpu_seconds(cpu_pid) - cpu0
    node_cpu_s = node_cpu_s if np.isfinite(node_cpu_s) else None  # no pid, or it had gone: JSON has no NaN
    diagnostics_after = diagnostics.wait_fresh(rp.node, timeout_s=3.0)  # the node's own counts
    rp.close()
    write_recording(rp.received, out_mcap, rp.ts)
    timing = {"published_ns": {str(k): v for k, v in published.items()},
              "arrival_ns": {str(k): v for k, v in rp.arrivals.items()},
              "frames_published": len(order), "wall_s": wall_s, "node_cpu_s": node_cpu_s, "rate": rate,
              "stalled": rp.stalled,
              "clip_length": clip_length, "hop": hop, "messages_recorded": len(rp.received),
              # The node's own counts: frames_in below frames_published means frames were lost
              # before its image callback (the intermittent first-frame loss), not by the pipeline.
              "node_diagnostics": diagnostics_after,
              "frames_describable": len(order),
              "frames_in_clips": frames_in_clips(len(order), clip_length, hop)}
    Path(timing_json).write_text(json.dumps(timing))
    return timing


class NodeDiagnostics:
    """The perception node's latest /diagnostics values (its status named '<ns>/<NODE_NAME>:
    perception'), and how many such messages have arrived."""

    def __init__(self, node, ns: str):
        from diagnostic_msgs.msg import DiagnosticArray

        from ..ros.launch_logic import NODE_NAME

        self.name = f"{ns}/{NODE_NAME}: perception"
        self.values: dict[str, str] = {}
        self.messages = 0
        self.sub = node.create_subscription(DiagnosticArray, "/diagnostics", self._on_message, 10)

    def _on_message(self, msg) -> None:
        for status in msg.status:
            if status.name == self.name:
                self.values = {kv.key: kv.value for kv in status.values}
                self.messages += 1

    def wait_fresh(self, node, timeout_s: float) -> dict[str, str]:
        """The next message's values (the latest known ones after timeout_s)."""
        import rclpy

        seen, t0 = self.messages, time.monotonic()
        while self.messages == seen and time.monotonic() - t0 < timeout_s:
            rclpy.spin_once(node, timeout_sec=0.1)
        return dict(self.values)


def _restamp(ts, raw: bytes, msgtype: str, shift_ns: int) -> bytes:
    msg = ts.deserialize_cdr(raw, msgtype)
    s = stamp_of(msg.header) + shift_ns
    msg.header.stamp.sec, msg.header.stamp.nanosec = s // 1_000_000_000, s % 1_000_000_000
    return bytes(ts.serialize_cdr(msg, msgtype))


# ------------------------------------------------------------------------------- no rclpy below
def predictions_from_outputs(mcap: str | Path, timing: dict | None = None,
                             base_from_camera: np.ndarray | None = None) -> Predictions:
    """Recorded node outputs -> Predictions (same structure as the offline path).

    /pose carries odom_from_base; odom_from_camera = odom_from_base @ base_from_camera (the node's
    default REP-103 optical-to-body rotation unless given). Latency per frame: arrival of its
    first output minus the publish time of its image (wall clock, same machine).
    """
    from ..perception.odometry import default_base_from_camera

    base_from_camera = default_base_from_camera() if base_from_camera is None else base_from_camera
    preds = Predictions(name="fourds")
    reader = open_reader(mcap)
    try:
        conns = [c for c in reader.connections if c.topic in READ_BACK]
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            s = stamp_of(msg.header)
            if conn.topic == "/depth/image":
                preds.depth[s] = image_from_msg(msg)
            elif conn.topic == "/depth/camera_info":
                preds.depth_K[s] = np.asarray(msg.k, float).reshape(3, 3)
            elif conn.topic == "/tracks":
                f = cloud_fields(msg)
                preds.tracks[s] = {"ids": f["track_id"].astype(np.int64),
                                   "uv": np.stack([f["u"], f["v"]], 1).astype(np.float64).reshape(-1, 2),
                                   "visible": f["visible"].astype(bool),
                                   "confidence": f.get("confidence", np.ones(len(f["u"]))).astype(float)}
            elif conn.topic == "/pose":
                preds.poses[s] = pose_from_msg(msg.pose.position, msg.pose.orientation) @ base_from_camera
    finally:
        reader.close()
    if timing:
        pub = {int(k): v for k, v in timing["published_ns"].items()}
        arr = {int(k): v for k, v in timing["arrival_ns"].items()}
        # latency over the frames a clip completed while the bag played (not those the idle flush described)
        in_clips = set(sorted(pub, key=pub.get)[: int(timing.get("frames_in_clips", len(pub)))])
        preds.latency_ms = {s: (arr[s] - pub[s]) / 1e6 for s in arr if s in in_clips}
        preds.frames_in = int(timing["frames_published"])
        preds.wall_s = float(timing["wall_s"])
        describable = sorted(pub, key=pub.get)[: int(timing.get("frames_describable", len(pub)))]
        preds.dropped = sum(1 for s in describable if s not in arr)
    return preds


def node_command(model_dir, backend: str = "torch", hop: int = 0, extra: dict | None = None,
                 namespace: str = "", compressed: bool = False) -> list[str]:
    """The node with autostart, reliable image QoS (a benchmark must not lose frames in transport),
    the bag's image transport (compressed: image/compressed) and its inputs remapped to the bag's
    topics, all under `namespace` when given. Built by launch_logic, the one builder of the node's
    command line."""
    from ..ros.launch_logic import command_line, module_command, node_plan, topic_remappings

    ns = ("/" + namespace.strip("/")) if namespace.strip("/") else ""
    params = {"model": str(model_dir), "autostart": True, "backend": backend, "hop": hop, "use_sim_time": True,
              "image_qos": "DEFAULT", "image_transport": "compressed" if compressed else "raw", **(extra or {})}
    remappings = topic_remappings(ns + IMAGE_TOPIC, ns + CAMERA_INFO_TOPIC)
    if clock_topic(ns) != "/clock":  # the replay's own clock, so runs on one domain do not share one
        remappings.append(("/clock", clock_topic(ns)))
    plan = node_plan(overrides=params, namespace=namespace, remappings=remappings)
    return command_line(plan, executable=module_command())


def clock_topic(ns: str) -> str:
    """The replay's /clock: under the run's namespace ("/ns"), since runs on one ROS domain each keep
    their own bag time."""
    return ns + "/clock" if ns else "/clock"


def ros_environment(env: dict | None = None) -> dict:
    """Loopback-only discovery, our ament prefix, and this process's private ROS domain (ros_env.private_domain),
    never the caller's ROS_DOMAIN_ID: a bag replayed on a robot's computer put its odom -> base_link on the
    robot's /tf, its frames on the robot's topics."""
    return ros_env.ros_environment(ros_env.private_domain(), base=env)


def proc_cpu_seconds(stat_path: str | Path, tick: int | None = None) -> float:
    """user + system CPU seconds so far of a process or thread, from its Linux /proc stat file
    (/proc/PID/stat or /proc/PID/task/TID/stat; fields after the parenthesised command name).
    Raises OSError when it has gone. tick: clock ticks a second (default SC_CLK_TCK)."""
    fields = Path(stat_path).read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / (tick or os.sysconf("SC_CLK_TCK"))


def _process_cpu_seconds(pid: int | None) -> float:
    """proc_cpu_seconds of a process; NaN without a pid or once it has gone."""
    try:
        return proc_cpu_seconds(f"/proc/{pid}/stat") if pid is not None else float("nan")
    except (OSError, IndexError, ValueError):
        return float("nan")


class NodeProcess:
    """The perception node as a subprocess; stopped with SIGINT (then SIGTERM), never SIGKILL."""

    def __init__(self, cmd: list[str], env: dict, log_path: Path):
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        """ReplayError when the node ended before it was stopped (a crash mid-run): what it
        described until then is not the run's measurement."""
        rc = self.proc.poll()
        if rc is not None:
            self.log.flush()
            tail = self.log_path.read_text()[-3000:]
            raise ReplayError(f"the node exited ({rc}) before the run ended; node log tail:\n{tail}")

    def stop(self) -> int | None:
        ros_env.stop_ros_process(self.proc)
        self.log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def replay_subprocess(bag_path, out_mcap: Path, timing_json: Path, env: dict, rate: str, clip_length: int,
                      hop: int, timeout_s: float, max_frames: int | None = None, loops: int = 1,
                      node: NodeProcess | None = None, namespace: str = "", shift_s: float = 0.0) -> dict:
    cmd = [sys.executable, "-m", "fourds_ros.evaluation.replay", "--bag", str(bag_path), "--out", str(out_mcap),
           "--timing", str(timing_json), "--rate", str(rate), "--clip-length", str(clip_length), "--hop", str(hop),
           "--timeout", str(timeout_s), "--loops", str(loops), "--namespace", namespace, "--shift-s", str(shift_s)]
    if max_frames is not None:
        cmd += ["--max-frames", str(max_frames)]
    if node is not None:
        cmd += ["--cpu-of-pid", str(node.proc.pid)]
    # FOURDS_PROGRESS=1 (make demo): the child's progress bar goes straight to our stderr.
    show_progress = bool(env.get("FOURDS_PROGRESS"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                            stderr=None if show_progress else subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s + 180)
    except subprocess.TimeoutExpired as exc:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        raise ReplayError(f"replay did not finish within {timeout_s + 180:.0f} s:\n{out[-2000:]}") from exc
    except BaseException:  # Ctrl-C on eval alone, or any error here: the replay (a DDS participant) went on
        ros_env.stop_ros_process(proc)  # for up to its ready timeout, and wrote a recording after eval had exited
        raise
    if proc.returncode != 0:
        node_log = node.log_path.read_text()[-3000:] if node is not None else ""
        raise ReplayError(f"replay failed ({proc.returncode}):\n{out[-3000:]}\nnode log tail:\n{node_log}")
    return json.loads(Path(timing_json).read_text())


def clip_geometry(model_dir, hop: int) -> tuple[int, int]:
    config = json.loads((Path(model_dir) / "config.json").read_text())
    clip_length = int(config["num_frames"])
    return clip_length, hop or default_hop(clip_length)


def unique_namespace() -> str:
    """A namespace no other run on this ROS domain uses (pid + random suffix)."""
    import secrets

    return f"fourds_eval_{os.getpid()}_{secrets.token_hex(3)}"


def run_dds(bag: BagData, bag_path, model_dir, out_mcap, backend: str = "torch", rate: str = "max", hop: int = 0,
            timeout_s: float = 300.0, env: dict | None = None, max_frames: int | None = None,
            params: dict | None = None) -> Predictions:
    """Node subprocess + replay/record subprocess; returns the recorded Predictions."""
    out_mcap = Path(out_mcap)
    out_dir = out_mcap.parent
    env = ros_environment(env)
    clip_length, hop_eff = clip_geometry(model_dir, hop)
    namespace = unique_namespace()
    command = node_command(model_dir, backend, hop, extra=params, namespace=namespace, compressed=bag.compressed)
    with NodeProcess(command, env, out_dir / "node.log") as node:
        timing = replay_subprocess(bag_path, out_mcap, out_dir / "replay_timing.json", env, rate, clip_length,
                                   hop_eff, timeout_s, max_frames=len(bag.stamps), node=node, namespace=namespace)
        node.check_alive()  # a node that crashed mid-run: no report scored on what it managed before
    if timing["frames_published"] < len(bag.stamps):  # --timeout ended the stream: a report of part of the bag
        raise ReplayError(f"the replay published {timing['frames_published']} of the recording's {len(bag.stamps)} "
                          f"frames within --timeout {timeout_s:g} s: give a longer --timeout (a recording at "
                          "--rate bag takes its own length), or --max-frames")
    # /pose is the base's pose, made with the run's own mount (--param base_from_camera): turned back
    # with the default one, a team's mounted camera was scored on a frame that is neither (offline
    # scores the camera's).
    preds = predictions_from_outputs(out_mcap, timing, base_from_camera=node_mount(params))
    # The node's counters that the offline path reads from PerceptionPipeline.status() (the rest
    # of its /diagnostics stays in replay_timing.json).
    diagnostics = timing.get("node_diagnostics") or {}
    preds.status = {k: int(v) for k, v in diagnostics.items()
                    if k.startswith(("track_steps", "pose_epipolar")) and v.isdigit()}
    preds.engine = diagnostics.get("backend", "")  # the engine the node runs (engine.describe())
    preds.depth_range = node_depth_range(params)
    return preds


def node_depth_range(params: dict | None) -> tuple[float, float]:
    """The node's (min_depth, max_depth) under these parameters: what its depth images' -inf / +inf mean."""
    from ..perception import PerceptionSettings

    depth = PerceptionSettings.from_params(params).depth
    return depth.min_depth, depth.max_depth


def node_mount(params: dict | None) -> np.ndarray:
    """The node's base_from_camera (4x4) under these node parameters, as the offline pipeline takes it
    (the replay publishes no /tf_static, so the node's mount is its parameter)."""
    from ..perception import PerceptionSettings
    from ..perception.odometry import transform_from_xyz_quat

    return transform_from_xyz_quat(PerceptionSettings.from_params(params).pose.base_from_camera)


def replay_rate(value: str) -> str:
    """An argparse type for --rate: 'max', 'bag' or a rate in Hz above 0, as given. Checked where the
    option is given: the replay child parsed it once the node was up and its model loaded (a typo
    was a child's traceback; 0 divided by zero)."""
    if value in ("max", "bag"):
        return value
    try:
        hz = float(value)
    except ValueError:
        hz = float("nan")
    if not (np.isfinite(hz) and hz > 0):
        raise argparse.ArgumentTypeError(f"{value!r} is not 'max', 'bag' or a rate in Hz above 0")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fourds_ros.evaluation.replay")
    parser.add_argument("--bag", required=True)
    parser.add_argument("--out", required=True, help="outputs .mcap to write")
    parser.add_argument("--timing", required=True)
    parser.add_argument("--rate", default="max", type=replay_rate)
    parser.add_argument("--clip-length", type=int, default=16)
    parser.add_argument("--hop", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--max-frames", type=frame_count, default=None)
    parser.add_argument("--loops", type=int, default=1)
    parser.add_argument("--namespace", default="")
    parser.add_argument("--shift-s", type=float, default=0.0, help="seconds added to every stamp")
    parser.add_argument("--cpu-of-pid", type=int, default=None, help="the node's pid: its CPU over the timed stream")
    args = parser.parse_args(argv)
    try:
        t = replay_and_record(args.bag, args.out, args.timing, args.rate, args.clip_length, args.hop,
                              args.timeout, max_frames=args.max_frames, loops=args.loops, namespace=args.namespace,
                              shift_s=args.shift_s, cpu_pid=args.cpu_of_pid)
    except (BagError, ReplayError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 1
    print(f"published {t['frames_published']} frames, outputs for {len(t['arrival_ns'])}, {t['wall_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
