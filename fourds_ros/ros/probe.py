"""A camera + observer process for node tests and the node benchmark (real DDS).

    python -m fourds_ros.ros.probe --plan plan.json --out result.json

The plan is a list of steps run in order; the probe publishes `image` (raw or compressed) and
`camera_info` and records everything the node publishes (depth, tracks, odometry, TF,
diagnostics...) as JSON summaries: type, stamp, frame_id, sizes, encodings, fields.

Steps:
  {"frames": N, "rate": HZ, "source": "synthetic"|"black"|"half_black"|DIR (a 7-Scenes, HoloLens or TUM folder,
   or *.color.jpg frames),
   "encoding": "rgb8", "compressed": false, "size": [H, W], "camera_info": true,
   "distortion": null|[K1, K2, P1, P2, K3] (camera_info's plumb_bob lens), "stamp_offset_s": 0.0,
   "corrupt": null|"length", "skip": [I, ...], "late_at": null|I,
   "reference_odom": null|SPEED, "reference_bad_at": null|I, "reference_depth": null|METRES,
   "first_info_after_s": null|S}
                               (skip: frames not sent, as if lost in transport; late_at:  frame I's stamp is 1.5
                               periods ahead, so frame I+1 arrives with an older stamp than it;
                               first_info_after_s: the first frame's camera_info is sent S seconds after
                               its image, as when the camera_info subscription matches or is served late;
                               reference_odom: with each frame, a nav_msgs/Odometry on reference_odom of
                               the base moving along x at SPEED m/s, stamped as the frame, the one at
                               reference_bad_at with an all-zero orientation; reference_depth: with each
                               frame, a 16UC1 depth image of the frame's size, all at METRES, on
                               reference_depth, the one at reference_bad_at in an unsupported encoding)
  {"tf_static": [{"parent": P, "child": C, "translation": [x, y, z], "rotation": [x, y, z, w]}]}
                               latched on /tf_static (as robot_state_publisher does from a URDF)
  {"wait": SECONDS}            keep recording
  {"wait_for": TOPIC, "count": N, "timeout": S}
  {"wait_idle": true, "timeout": S}  until every input sent is acknowledged by the node's reliable
                               subscriptions, then until /diagnostics say the node has caught up (frames_in
                               and frames_out unchanged for 1 s, frames_pending 0), then 0.5 s more
  {"wait_for_subscribers": ["image", "camera_info", ...], "timeout": S}  until the node's
                               subscriptions and its depth publisher are matched, and our recorders of
                               its outputs (and of /tf) have matched its publishers (DDS does not
                               deliver samples sent before that; the node subscribes only once
                               configured + active); "outputs": false: the subscriptions only
                               (a subscriber that is not the node publishes no depth); "subscribers": N:
                               N subscriptions on each (another instance of the node active too)
  {"lifecycle": "configure"|"activate"|"deactivate"|"cleanup"}  (lifecycle_msgs/ChangeState)
  {"get_state": true}  {"reset": true}  {"get_parameters": [names]}  {"signal": "SIGTERM"} (to the node)
  {"wait_for_exit": true, "timeout": S}  until the node's process (--node-pid) has ended, after a signal: its exit
                               (the release, then the interpreter's and DDS's teardown) takes seconds on a loaded host
  {"set_parameters": {name: value}}  (rcl_interfaces/SetParameters, as `ros2 param set`; the event
                               holds each parameter's successful and reason)
  {"track_queries": [[u, v], ...], "fields": ["u", "v"]}  a PointCloud2 of float32 columns on
                               track_queries (other field names make a malformed cloud)
  {"fuzz": N, "seed": S, "kinds": ["image", "compressed", "camera_info", "valid"], "rate": HZ,
   "transport": "raw"|"compressed", "size": [H, W], "max_ahead": 0}  N seeded mutations (fuzz_inputs.py),
                               each a frame and its camera_info, at most HZ; stamps one period apart,
                               continuing the previous fuzz step's; published[] says what went where.
                               max_ahead > 0: wait (up to 2 s) while more frames than that are sent but
                               not yet in the node's /diagnostics frames_in (+ counted loss): reliable
                               QoS keeps 10, so a slow node then loses nothing
  {"node_rss": LABEL}          the node's VmRSS (kB) from /proc (harness passes --node-pid) into events
  {"offer": TOPIC, "qos": PRESET}  one more publisher on an input TOPIC (camera_info, image, track_queries,
                               reference_odom, reference_depth) with a QoS preset (e.g. SENSOR_DATA), kept to
                               the end: a camera driver whose QoS the node's subscription may not match
  {"count_publishers": TOPIC, "expect": N, "timeout": S}  how many publishers TOPIC has (the graph's
                               count), into events: once it is N (discovery takes a moment to see a
                               publisher come or go), or after S seconds (default 5) whatever it is
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry, Path as PathMsg
from rclpy.node import Node
from rclpy.qos import QoSPresetProfiles
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from visualization_msgs.msg import MarkerArray

from ..perception.image import encode_raw
from . import convert
from .harness import perception_status
from .launch_logic import NODE_NAME
from .outputs import OUTPUTS


def load_frames(source: str, size: tuple[int, int], count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """-> RGB uint8 frames and their 3x3 K."""
    h, w = size
    f = w / (2 * np.tan(np.radians(30)))
    size_k = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])  # 60 degrees wide
    if source == "black":  # a covered lens
        return [np.zeros((h, w, 3), np.uint8)] * count, size_k
    if source in ("synthetic", "half_black"):  # half_black: the lower half of the lens covered
        rows, cols = np.mgrid[0:h, 0:w]
        frames = []
        for i in range(count):  # a moving gradient with a bright square: deterministic, textured
            img = np.stack([(cols + 4 * i) % 256, (rows * 2) % 256, np.full_like(rows, 128)], axis=2).astype(np.uint8)
            y, x = (h // 4 + 2 * i) % (h - 20), (w // 3 + 3 * i) % (w - 20)
            img[y:y + 20, x:x + 20] = 255
            if source == "half_black":
                img[h // 2:] = 0
            frames.append(img)
        return frames, size_k
    import cv2

    from ..rgbd import DatasetFormatError, read_sequence, seven_scenes_rgb_intrinsics

    try:
        sequence = read_sequence(source)  # a 7-Scenes, HoloLens or TUM folder: its RGB frames and their K
    except DatasetFormatError:  # a folder of frame-*.color.jpg alone (no depth or poses): its frames
        root = Path(source)
        frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(root.glob("*.color.jpg"))[:count]]
        if not frames:
            raise
        k = seven_scenes_rgb_intrinsics(root) if (root / "camera-intrinsics.txt").exists() else None
        return fit_frames(frames, k, size)
    frames = [sequence.rgb(i) for i in range(min(count, len(sequence)))]
    return fit_frames(frames, sequence.intrinsics, size)


def fit_frames(frames: list[np.ndarray], k: np.ndarray | None, size: tuple[int, int]):
    """Real frames as a camera of another resolution sends them: the centre cropped to the size's
    aspect, then scaled to it (one factor on both axes, so K stays a pinhole with square pixels):
    a 640x480 recording becomes a 1280x720 camera's frames. -> (frames, K or None)."""
    import cv2

    h, w = size
    if not frames or frames[0].shape[:2] == (h, w):
        return frames, k
    fh, fw = frames[0].shape[:2]
    ch, cw = (fh, round(fh * w / h)) if fw * h > fh * w else (round(fw * h / w), fw)  # the crop, at size's aspect
    y0, x0 = (fh - ch) // 2, (fw - cw) // 2
    scale = w / cw
    fitted = [cv2.resize(f[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_AREA if scale < 1
                         else cv2.INTER_LINEAR) for f in frames]
    if k is not None:
        from ..perception.work_image import scaled_k

        k = np.asarray(k, float).copy()
        k[0, 2] -= x0
        k[1, 2] -= y0
        k = scaled_k(k, scale, scale)
    return fitted, k


def back_and_forth(frames: list, i: int):
    """Frame i of a folder shorter than the stream, played forwards, backwards, forwards...: no
    jump back to its first frame, which would look like a cut."""
    cycle = len(frames) + max(len(frames) - 2, 0)
    j = i % cycle
    return frames[j] if j < len(frames) else frames[cycle - j]


def reference_depth(stamp_ns: int, hw: tuple[int, int], metres: float, bad: bool = False) -> Image:
    """An RGB-D camera's depth registered to the frame: 16UC1 millimetres, all at `metres` (bad: a
    1-channel 8-bit encoding no depth has)."""
    h, w = hw
    mm = np.full((h, w), round(metres * 1000), "<u2")
    if bad:
        return Image(header=convert.header(stamp_ns, "camera_optical"), height=h, width=w, encoding="8UC1",
                     is_bigendian=0, step=w, data=np.zeros(h * w, np.uint8).tobytes())
    return Image(header=convert.header(stamp_ns, "camera_optical"), height=h, width=w, encoding="16UC1",
                 is_bigendian=0, step=w * 2, data=mm.tobytes())


def reference_odometry(stamp_ns: int, x: float, bad: bool = False) -> Odometry:
    """The base at (x, 0, 0), not turned (bad: an all-zero orientation, as a driver that never set it)."""
    msg = Odometry(header=convert.header(stamp_ns, "odom"), child_frame_id="base_link")
    msg.pose.pose.position.x = x
    msg.pose.pose.orientation.w = 0.0 if bad else 1.0
    return msg


def summarise(topic: str, msg) -> dict:
    out = {"topic": topic, "type": type(msg).__name__, "recv_ns": time.time_ns()}
    if hasattr(msg, "header"):
        out["stamp_ns"] = convert.stamp_to_ns(msg.header.stamp)
        out["frame_id"] = msg.header.frame_id
    if isinstance(msg, Image):
        depth = np.frombuffer(bytes(msg.data), "<f4") if msg.encoding == "32FC1" else None
        out.update(encoding=msg.encoding, height=msg.height, width=msg.width, step=msg.step,
                   data_len=len(msg.data))
        if depth is not None:
            out["finite"] = int(np.isfinite(depth).sum())
            sample = depth[::16]  # a cheap median (the node benchmark receives 30 of these a second)
            out["median"] = float(np.median(sample[np.isfinite(sample)])) if np.isfinite(sample).any() else None
    elif isinstance(msg, CameraInfo):
        out.update(height=msg.height, width=msg.width, k=list(msg.k))
    elif isinstance(msg, PointCloud2):
        cloud = convert.read_cloud(msg)
        out.update(width=msg.width, height=msg.height, point_step=msg.point_step,
                   fields=[[f.name, f.datatype, f.offset] for f in msg.fields])
        if "track_id" in cloud.dtype.names:
            out.update(track_ids=cloud["track_id"].tolist(), visible=cloud["visible"].tolist(),
                       u=cloud["u"].tolist(), v=cloud["v"].tolist())
    elif isinstance(msg, Odometry):
        p = msg.pose.pose
        out.update(child_frame_id=msg.child_frame_id, position=[p.position.x, p.position.y, p.position.z],
                   orientation=[p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w],
                   pose_cov_diag=[msg.pose.covariance[i * 7] for i in range(6)])
    elif isinstance(msg, PathMsg):
        out["poses"] = len(msg.poses)
    elif isinstance(msg, DiagnosticArray):
        out["status"] = [{"name": s.name, "level": int.from_bytes(s.level, "little") if isinstance(s.level, bytes)
                          else int(s.level), "message": s.message,
                          "values": {kv.key: kv.value for kv in s.values}} for s in msg.status]
    elif type(msg).__name__ == "TFMessage":
        out["transforms"] = [{"parent": t.header.frame_id, "child": t.child_frame_id,
                              "stamp_ns": convert.stamp_to_ns(t.header.stamp)} for t in msg.transforms]
    elif isinstance(msg, MarkerArray):
        out["markers"] = len(msg.markers)
    return out


def is_idle(diagnostics: list[dict], quiet_s: float = 1.0, namespace: str = "") -> bool:
    """/diagnostics records (oldest first) say the node in `namespace` has caught up: two messages at
    least quiet_s apart with the same frames_in and frames_out and nothing pending. (Not input_rate_hz:
    two timer callbacks run back to back after a stall report 0 Hz over a few milliseconds.)"""
    def counts(record):
        values = (perception_status(record, namespace) or {}).get("values", {})
        return values.get("frames_in"), values.get("frames_out"), values.get("frames_pending")

    diagnostics = [r for r in diagnostics if perception_status(r, namespace) is not None]
    if len(diagnostics) < 2:
        return False
    last = counts(diagnostics[-1])
    if last[0] is None or last[2] != "0":
        return False
    return any(counts(r) == last and diagnostics[-1]["recv_ns"] - r["recv_ns"] >= quiet_s * 1e9
               for r in diagnostics[:-1])


def node_rss_kb(pid: int) -> int:
    """VmRSS of process `pid` in kB (-1 when unknown or gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1


def process_ended(pid: int) -> bool:
    """Process `pid` has exited: gone, or a zombie its parent (the harness) has not reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


class Probe(Node):
    node_pid = 0  # the node's process id (--node-pid), for node_rss steps

    def __init__(self, ns: str = "", topics: list[str] | None = None):
        super().__init__("fourds_probe")
        self.records: list[dict] = []
        self.published: list[dict] = []
        pre = f"/{ns.strip('/')}/" if ns.strip("/") else "/"
        # Reliable publishers match both SENSOR_DATA (best-effort) and DEFAULT (reliable) readers.
        camera = QoSPresetProfiles.DEFAULT.value
        # The node's input topic -> our publisher on it: wait_for_subscribers names them, wait_idle waits for all.
        self.input_publishers = {topic: self.create_publisher(kind, pre + topic, camera) for topic, kind in (
            ("image", Image), ("image/compressed", CompressedImage), ("camera_info", CameraInfo),
            ("track_queries", PointCloud2), ("reference_odom", Odometry), ("reference_depth", Image))}
        self.image_pub, self.compressed_pub, self.info_pub, self.queries_pub, self.reference_pub, \
            self.reference_depth_pub = self.input_publishers.values()
        self.prefix, self.offered = pre, []
        outputs = dict(OUTPUTS.values())  # topic -> type, as the node publishes them
        record = set(topics) if topics else set(outputs) | {"/diagnostics", "/tf"}
        self.recorders, self.optional_recorders = {}, {}  # the node's output topic -> our subscription recording it
        for topic, kind in outputs.items():
            if topic not in record:
                continue
            self.recorders[topic] = self.create_subscription(kind, pre + topic,
                                                             lambda m, t=topic: self.records.append(summarise(t, m)), 50)
        if "/diagnostics" in record:
            self.create_subscription(DiagnosticArray, "/diagnostics",
                                     lambda m: self.records.append(summarise("/diagnostics", m)), 10)
        try:
            from tf2_msgs.msg import TFMessage

            if "/tf" in record:  # matched like the outputs, where the graph has a /tf publisher (publish_tf)
                self.optional_recorders["/tf"] = self.create_subscription(
                    TFMessage, "/tf", lambda m: self.records.append(summarise("/tf", m)), 100)
        except ImportError:
            pass
        self.node_namespace, self.node_path = ns, pre + NODE_NAME  # the perception node's
        self.depth_topic = pre + OUTPUTS["depth"][0]

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=min(0.05, max(0.0, end - time.monotonic())))

    def call(self, srv_type, name: str, request, timeout: float = 20.0):
        client = self.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"service {name} not available")
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.05)
        self.destroy_client(client)
        if not future.done():
            raise RuntimeError(f"service {name} timed out")
        return future.result()

    def stream(self, step: dict, clock: dict) -> None:
        size = tuple(step.get("size", (480, 640)))
        frames, k = load_frames(step.get("source", "synthetic"), size, int(step["frames"]))
        frames = [back_and_forth(frames, i) for i in range(int(step["frames"]))] if frames else frames
        rate = float(step.get("rate", 15.0))
        encoding = step.get("encoding", "rgb8")
        offset_ns = int(float(step.get("stamp_offset_s", 0.0)) * 1e9)
        jpeg: dict[int, bytes] = {}
        start = time.monotonic()
        for i, rgb in enumerate(frames):
            stamp_ns = time.time_ns() + offset_ns + (int(1.5e9 / rate) if i == step.get("late_at") else 0)
            if i in step.get("skip", ()):
                self.spin_for(max(0.0, start + (i + 1) / rate - time.monotonic()))
                continue
            if step.get("reference_odom") is not None:
                self.reference_pub.publish(reference_odometry(stamp_ns, float(step["reference_odom"]) * i / rate,
                                                              i == step.get("reference_bad_at")))
            if step.get("reference_depth") is not None:
                self.reference_depth_pub.publish(reference_depth(stamp_ns, rgb.shape[:2], float(step["reference_depth"]),
                                                                 i == step.get("reference_bad_at")))
            info = (convert.camera_info(k, rgb.shape[0], rgb.shape[1], stamp_ns, "camera_optical", step.get("distortion"))
                    if step.get("camera_info", True) and k is not None else None)
            info_after_s = step.get("first_info_after_s") if i == 0 else None
            if info is not None and info_after_s is None:
                self.info_pub.publish(info)
            if step.get("compressed"):
                import cv2

                if id(rgb) not in jpeg:  # encoded once: a camera encodes in hardware, off our 2 cores
                    jpeg[id(rgb)] = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
                msg = CompressedImage(header=convert.header(stamp_ns, "camera_optical"), format="jpeg",
                                      data=jpeg[id(rgb)])
                self.compressed_pub.publish(msg)
            else:
                if encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
                    data, row_step = encode_raw(rgb, encoding)
                else:  # an unsupported encoding, with a payload that fits it
                    data, row_step = rgb[..., :2].tobytes(), rgb.shape[1] * 2
                if step.get("corrupt") == "length":
                    data = data[: len(data) // 2]
                msg = Image(header=convert.header(stamp_ns, "camera_optical"), height=rgb.shape[0],
                            width=rgb.shape[1], encoding=encoding, step=row_step, data=data)
                self.image_pub.publish(msg)
            if info is not None and info_after_s is not None:
                self.spin_for(float(info_after_s))
                self.info_pub.publish(info)
            self.published.append({"stamp_ns": stamp_ns, "encoding": encoding, "size": list(rgb.shape[:2])})
            self.spin_for(max(0.0, start + (i + 1) / rate - time.monotonic()))

    def fuzz(self, step: dict) -> None:
        """Mutated frames at `rate`, each with a camera_info of its stamp. Stamps advance exactly one
        period per message: wall-clock jitter on a loaded machine would read as loss in the node's
        stamp-gap count."""
        from .fuzz_inputs import FuzzInputs

        rate = float(step.get("rate", 150.0))
        gen = FuzzInputs(int(step.get("seed", 0)), tuple(step.get("size", (48, 64))), step.get("transport", "raw"))
        kinds = step.get("kinds", ["image", "compressed", "camera_info"])
        topic, ahead = "image" if gen.transport == "raw" else "image/compressed", int(step.get("max_ahead", 0))
        # Flow control may run stamps ahead of the wall clock: the next step continues them (never back).
        t0 = max(time.time_ns(), getattr(self, "fuzz_next_ns", 0))
        for i in range(int(step["fuzz"])):
            stamp_ns = self.fuzz_next_ns = t0 + int(i * 1e9 / rate)
            self.fuzz_next_ns += int(1e9 / rate)
            end = time.monotonic() + 2.0
            while ahead and self.frames_ahead(topic) > ahead and time.monotonic() < end:
                rclpy.spin_once(self, timeout_sec=0.01)
            kind = gen.rng.choice(kinds)
            image, info, name = gen.mutation(kind, stamp_ns)
            self.info_pub.publish(info)
            raw = isinstance(image, Image)
            (self.image_pub if raw else self.compressed_pub).publish(image)
            self.published.append({"stamp_ns": stamp_ns, "topic": "image" if raw else "image/compressed",
                                   "kind": kind, "mutation": name})
            self.spin_for(1.0 / rate)

    def frames_ahead(self, topic: str) -> int:
        """Frames published on `topic` that the node's latest /diagnostics has not counted in."""
        sent = sum(p.get("topic") == topic for p in self.published)
        for r in reversed(self.records):
            status = perception_status(r, self.node_namespace) if r["topic"] == "/diagnostics" else None
            if status is not None:
                values = status["values"]
                return sent - int(values.get("frames_in", 0)) - int(values.get("frames_missing_by_stamp", 0))
        return sent

    # Plan steps by key, each a method `_<key>(step) -> event dict or None`.
    STEPS = ("frames", "wait_for_subscribers", "wait_for", "wait_idle", "wait", "lifecycle", "get_state",
             "track_queries", "tf_static", "fuzz", "node_rss", "reset", "get_parameters", "set_parameters",
             "signal", "wait_for_exit", "count_publishers", "offer")

    def run(self, plan: list[dict]) -> dict:
        events = []
        for step in plan:
            kind = next((k for k in self.STEPS if k in step), None)
            if kind is None:
                raise ValueError(f"unknown probe step {step}")
            event = getattr(self, f"_{kind}")(step)
            if event is not None:
                events.append(event)
        return {"published": self.published, "records": self.records, "events": events}

    def _spin_until(self, done, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not done():
            rclpy.spin_once(self, timeout_sec=0.05)
        return done()

    def _frames(self, step: dict) -> None:
        self.stream(step, {})

    def _offer(self, step: dict) -> None:
        kinds = {"camera_info": CameraInfo, "image": Image, "track_queries": PointCloud2, "reference_odom": Odometry,
                 "reference_depth": Image}
        self.offered.append(self.create_publisher(kinds[step["offer"]], self.prefix + step["offer"],
                                                  QoSPresetProfiles[step["qos"]].value))

    def _wait(self, step: dict) -> None:
        self.spin_for(float(step["wait"]))

    def _wait_for(self, step: dict) -> None:
        self._spin_until(lambda: sum(r["topic"] == step["wait_for"] for r in self.records) >= step.get("count", 1),
                         float(step.get("timeout", 30)))

    def _wait_idle(self, step: dict) -> None:
        end = time.monotonic() + float(step.get("timeout", 30))
        # Unchanged counts for 1 s are no proof that every frame has arrived: a fragment lost on a loaded host is sent
        # again only at the writer's next heartbeat (3 s by default). So first every input we sent is acknowledged
        # (in the node's subscription queue, where its executor takes it); the quiet second is timed from then.
        self._spin_until(self.inputs_acknowledged, end - time.monotonic())
        start = len(self.records)
        self._spin_until(lambda: is_idle([r for r in self.records[start:] if r["topic"] == "/diagnostics"],
                                         namespace=self.node_namespace),
                         end - time.monotonic())
        self.spin_for(0.5)  # outputs published just before that message, on other topics

    def inputs_acknowledged(self) -> bool:
        """Every message our input publishers sent is acknowledged by every reliable reader matched (a reader that
        is gone, or never matched, holds none back)."""
        from rclpy.duration import Duration

        return all(p.wait_for_all_acked(Duration(seconds=0)) for p in (*self.input_publishers.values(), *self.offered))

    def _wait_for_subscribers(self, step: dict) -> None:
        wanted = [self.input_publishers[t] for t in step["wait_for_subscribers"]]
        end = time.monotonic() + float(step.get("timeout", 60))
        # ...and our recorders must have matched the node's output publishers too (discovery is not
        # symmetric; outputs sent before that are lost), then a moment to settle.
        at_least = int(step.get("subscribers", 1))
        ok = self._spin_until(lambda: all(p.get_subscription_count() >= at_least for p in wanted),
                              end - time.monotonic()) \
            and (not step.get("outputs", True)
                 or self._spin_until(lambda: self.count_publishers(self.depth_topic) and self.outputs_matched(),
                                     end - time.monotonic()))
        if not ok:
            raise RuntimeError(f"no subscriber on {step['wait_for_subscribers']} or the node's outputs not matched "
                               "within the timeout")
        self.spin_for(0.5)

    def outputs_matched(self) -> bool:
        """Every recorder of the node's outputs has matched the node's publisher of its topic (the node makes them all
        at configure). The depth publisher in the graph was all that was waited for, then 0.5 s: neither says that our
        odometry or TF reader has matched its writer (a later discovery message, slower on a loaded host), and what
        the node sends before that is lost. A best-effort publisher (output_qos SENSOR_DATA), which no reliable
        recorder matches, is not waited for."""
        from rclpy.qos import ReliabilityPolicy

        for topic, recorder in [*self.recorders.items(), *self.optional_recorders.items()]:
            offered = self.get_publishers_info_by_topic(recorder.topic_name)
            reliable = sum(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in offered)
            if (not offered and topic in self.recorders) or recorder.get_publisher_count() < reliable:
                return False
        return True

    def _lifecycle(self, step: dict) -> dict:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP}
        req = ChangeState.Request()
        req.transition.id = ids[step["lifecycle"]]
        res = self.call(ChangeState, self.node_path + "/change_state", req)
        return {"lifecycle": step["lifecycle"], "success": bool(res.success), "t_ns": time.time_ns()}

    def _count_publishers(self, step: dict) -> dict:
        topic, expect = step["count_publishers"], step.get("expect")
        self._spin_until(lambda: expect is not None and self.count_publishers(topic) == expect,
                         float(step.get("timeout", 5)))
        return {"publishers": {topic: self.count_publishers(topic)}}

    def _get_state(self, step: dict) -> dict:
        from lifecycle_msgs.srv import GetState

        res = self.call(GetState, self.node_path + "/get_state", GetState.Request())
        return {"state": res.current_state.label, "t_ns": time.time_ns()}

    def _track_queries(self, step: dict) -> dict:
        uv = np.asarray(step["track_queries"], np.float32).reshape(-1, 2)
        names = step.get("fields", ["u", "v"])
        self.queries_pub.publish(convert.point_cloud(
            {names[0]: uv[:, 0], names[1]: uv[:, 1]}, [(names[0], PointField.FLOAT32), (names[1], PointField.FLOAT32)],
            time.time_ns(), "camera_optical"))
        return {"track_queries": len(uv), "t_ns": time.time_ns()}

    def _tf_static(self, step: dict) -> None:
        from .tf_static import make_transform, matrix_from_ros, publish_static

        self.tf_broadcaster = publish_static(self, [make_transform(
            t["parent"], t["child"], matrix_from_ros(t["translation"], t["rotation"])) for t in step["tf_static"]])

    def _fuzz(self, step: dict) -> None:
        self.fuzz(step)

    def _node_rss(self, step: dict) -> dict:
        return {"node_rss": step["node_rss"], "kb": node_rss_kb(self.node_pid), "t_ns": time.time_ns()}

    def _signal(self, step: dict) -> dict:
        """Send the node a signal (e.g. SIGTERM while it infers), as a process manager would."""
        import os
        import signal

        os.kill(self.node_pid, getattr(signal, step["signal"]))
        return {"signal": step["signal"], "t_ns": time.time_ns()}

    def _wait_for_exit(self, step: dict) -> None:
        self._spin_until(lambda: process_ended(self.node_pid), float(step.get("timeout", 30)))

    def _reset(self, step: dict) -> dict:
        from std_srvs.srv import Trigger

        res = self.call(Trigger, self.node_path + "/reset", Trigger.Request())
        return {"reset": bool(res.success), "message": res.message, "t_ns": time.time_ns()}

    def _get_parameters(self, step: dict) -> dict:
        from rcl_interfaces.srv import GetParameters

        res = self.call(GetParameters, self.node_path + "/get_parameters",
                        GetParameters.Request(names=list(step["get_parameters"])))
        # ParameterValue: the field that holds the value depends on its type (1 bool ... 4 string)
        values = [[v.bool_value, v.integer_value, v.double_value, v.string_value][{1: 0, 2: 1, 3: 2, 4: 3}.get(v.type, 3)]
                  for v in res.values]
        return {"parameters": dict(zip(step["get_parameters"], values))}

    def _set_parameters(self, step: dict) -> dict:
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()
                                                    for name, value in step["set_parameters"].items()])
        res = self.call(SetParameters, self.node_path + "/set_parameters", request)
        return {"set_parameters": {name: {"successful": bool(r.successful), "reason": r.reason}
                                   for name, r in zip(step["set_parameters"], res.results)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fourds_ros.ros.probe")
    parser.add_argument("--plan", required=True, help="JSON file with the list of steps")
    parser.add_argument("--out", required=True)
    parser.add_argument("--namespace", default="")
    parser.add_argument("--topics", default="", help="comma-separated outputs to record (default: all)")
    parser.add_argument("--node-pid", type=int, default=0, help="the node's process id (node_rss steps)")
    args, ros_args = parser.parse_known_args(argv)
    rclpy.init(args=ros_args)
    probe = Probe(args.namespace, [t for t in args.topics.split(",") if t])
    probe.node_pid = args.node_pid
    try:
        result = probe.run(json.loads(Path(args.plan).read_text()))
        Path(args.out).write_text(json.dumps(result))
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
