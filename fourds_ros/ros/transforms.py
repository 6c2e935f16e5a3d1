"""The node's input subscriptions, output publishers and TF: odom -> base on /tf, and the camera's
mount (base -> camera) from /tf_static.

Why look the mount up: a base_from_camera parameter that disagrees with the robot's URDF moves
every odometry pose without any error; Isaac ROS Visual SLAM reads the mount from TF the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..perception.camera_info_sync import sibling_camera_info_topic
from ..perception.odometry import transform_from_xyz_quat
from ..perception.settings import PerceptionSettings, PoseSettings
from ..perception.tf_stamps import TfStampGate
from . import convert, tf_static
from .outputs import OUTPUTS
from .publisher_names import PublisherNames
from .tf_conflict import TfConflictWatch


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


def create_publishers(node, settings: PerceptionSettings, pose_made: bool = True) -> tuple[dict, object, str]:
    """The node's output publishers (outputs.OUTPUTS, output_qos) and TF. -> (publishers by output
    key, publish(list[TransformStamped]) or None, what publishes TF). TF's publish is a
    tf_conflict.TfConflictWatch: it remembers the node's own odom -> base transforms, for the /tf watch
    that create_subscriptions makes, and sends none that tf2 would take as a rewrite of its past (tf_stamps.TfStampGate:
    a camera's stamps stepped back while the node's clock did not). pose_made: the pipeline makes poses (enable_pose and a pose head);
    without them the node sends no odom -> base, so it has no TF to publish and no conflict to watch for
    (the watch reported one, WARN, against the wheel odometry a depth-only node leaves TF to)."""
    from rclpy.qos import QoSPresetProfiles

    qos = QoSPresetProfiles[settings.inputs.output_qos].value
    publishers = {key: node.create_publisher(kind, topic, qos) for key, (topic, kind) in OUTPUTS.items()}
    if not settings.pose.publish_tf:
        return publishers, None, "off (publish_tf false)"
    if not pose_made:
        return publishers, None, "off (no poses: enable_pose false, or the model has no pose head)"
    tf_publish, tf_text, tf_pub = make_tf_publisher(node, QoSPresetProfiles.DEFAULT.value)
    if tf_pub is not None:
        publishers["tf"] = tf_pub
    if tf_publish is not None:
        odom, base = settings.pose.odom_frame, settings.pose.base_frame
        gate = TfStampGate(f"{odom} -> {base}", node.health.warn)  # a camera's stamps stepping back: not on /tf
        tf_publish = TfConflictWatch(node, tf_publish, odom, base, node.health.warn,
                                     lambda stamp_ns: gate.admit(stamp_ns, node.health.clock_jumps_at(stamp_ns)))
    return publishers, tf_publish, tf_text


def image_topic(node, transport: str) -> str:
    """The image topic the node subscribes (the compressed transport's ends in `/compressed`): named in warnings
    as subscribed (a raw publisher on its base topic is no publisher of it)."""
    return node.resolve_topic_name("image/compressed" if transport == "compressed" else "image")


def remapped(argv: list[str]) -> list[str]:
    """The names the remapping rules in argv's `--ros-args` blocks (ended by `--`) map from: `-r camera_info:=x` and
    `--remap fourds_perception:camera_info:=x` give `camera_info` and `fourds_perception:camera_info`."""
    names, inside = [], False
    for token, after in zip(argv, [*argv[1:], ""]):
        inside = token == "--ros-args" or (inside and token != "--")
        if inside and token in ("-r", "--remap") and ":=" in after:
            names.append(after.split(":=")[0])
    return names


def camera_info_topic(node, transport: str, argv: list[str]) -> str:
    """camera_info's topic: where a remapping rule puts it (one naming it, even to its own name: `camera_info:=
    /camera_info` at the root), else the sibling of the image topic subscribed, as image_transport's
    CameraSubscriber pairs them. argv: the arguments rcl took the node's rules from (node.ros_arguments: sys.argv
    under launch and `ros2 run`, main's argv where a program embeds the node). Why: remapping the image alone
    (`image:=/camera/color/image_raw`, or `image/compressed:=...` for the compressed transport) left camera_info on
    /camera_info, and the node described every frame with the default intrinsics."""
    info = node.resolve_topic_name("camera_info")
    expanded = node.resolve_topic_name("camera_info", only_expand=True)
    if info != expanded or any(rule.rsplit(":", 1)[-1] in ("camera_info", expanded) for rule in remapped(argv)):
        return info
    return sibling_camera_info_topic(image_topic(node, transport))


def create_subscriptions(node, settings: PerceptionSettings, made: list) -> None:
    """The node's inputs, at activation, appended to `made` one by one (so that a failure half-way
    leaves nothing the caller cannot destroy): the image (one transport) first in `made`, though made after
    camera_info (see below), camera_info [, track_queries] [, reference_odom | reference_depth] [, /tf and /tf_static:
    publish_tf's watch for another source of odom -> base]. Their callbacks run one at a time (one executor
    thread)."""
    from nav_msgs.msg import Odometry
    from rclpy.event_handler import SubscriptionEventCallbacks
    from rclpy.qos import QoSPresetProfiles
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

    s = settings
    qos = QoSPresetProfiles[s.inputs.image_qos].value
    image_qos = f"image_qos {s.inputs.image_qos} (a best-effort camera needs SENSOR_DATA)"
    # Frames the middleware lost before our callback (best-effort under load) are counted too.
    frame_events = {"message_lost": node.health.frames_lost}
    # camera_info's subscription first: a single-threaded executor takes the ready ones in the order they were
    # made, and with the image's first a frame and its own camera_info arriving together were taken image
    # first (16 of 20 frames of an idle subscriber), so the first frame after a zoom got the old K.
    resolved = {"camera_info": camera_info_topic(node, s.inputs.image_transport,
                                                 node.ros_arguments)}  # the others as remapped
    node.intake.subscribed(image_topic(node, s.inputs.image_transport), resolved["camera_info"])
    node.health.name_publishers = PublisherNames(node)  # who a second publisher on the image or camera_info is
    wanted = [(CameraInfo, "camera_info", node.on_camera_info, qos, image_qos, {}),
              (Image, "image", node.on_image, qos, image_qos, frame_events) if s.inputs.image_transport == "raw" else
              (CompressedImage, "image/compressed", node.on_compressed, qos, image_qos, frame_events)]
    if s.tracks.query_mode == "topic":
        wanted.append((PointCloud2, "track_queries", node.on_track_queries, 10, "RELIABLE, depth 10", {}))
    if s.scale.source == "reference_odometry":  # the robot's own odometry, for the metric scale
        wanted.append((Odometry, "reference_odom", lambda m: node.intake.push_reference_odometry(
            *convert.odometry_pose(m), frames=(m.header.frame_id, m.child_frame_id)), 50, "RELIABLE, depth 50", {}))
    if s.scale.source == "reference_depth":  # an RGB-D camera's registered depth, for the metric scale
        wanted.append((Image, "reference_depth", lambda m: node.intake.push_reference_depth(
            convert.stamp_to_ns(m.header.stamp), lambda: convert.depth_to_metres(m, s.inputs.max_input_pixels)),
            qos, image_qos, {}))
    start = len(made)
    for kind, topic, callback, qos_or_depth, asked, events in wanted:
        # Every input reports a publisher it cannot match (its messages never arrive): camera_info's went
        # unreported, and the node described every frame on assumed intrinsics with no word of the QoS.
        made.append(node.create_subscription(
            kind, resolved.get(topic, topic), callback, qos_or_depth, event_callbacks=SubscriptionEventCallbacks(
                incompatible_qos=incompatible_qos_report(node, topic, asked), **events)))
    made.insert(start, made.pop(start + 1))  # the image's first in `made`: publish_diagnostics counts its publishers
    if isinstance(node.tf_publish, TfConflictWatch):  # made at configure when publish_tf is on
        made.extend(node.tf_publish.subscribe())


def incompatible_qos_report(node, topic: str, asked: str):
    """The incompatible-QoS event callback of the subscription to `topic` (asked: its QoS, in words): counted
    (/diagnostics WARN) and logged with the topic's name; the image's as incompatible_qos, which the stall
    warning names as the cause of no frame arriving, another input's as incompatible_qos_<topic>."""
    kind = "incompatible_qos" if topic.startswith("image") else f"incompatible_qos_{topic}"
    return lambda _info: node.health.warn(kind, f"the {topic} publisher's QoS does not match {asked}: "
                                          f"no {topic} messages arrive")


class CameraMount:
    """base_frame -> the images' frame_id: looked up on /tf_static for camera_mount_timeout_s from the
    first frame of each frame_id (frames keep flowing meanwhile, with base_from_camera), or published
    from base_from_camera when publish_camera_mount is set and /tf_static gives that frame no parent
    (a camera driver's own tree does; tf2 keeps one parent per frame). `resolve(frame_id)` is called
    per frame and returns a 4x4 T_base_camera the first time TF provides one, else None. Another
    frame_id (a camera switch) is looked up (or published) anew, and its frames use base_from_camera
    meanwhile: the first camera's mount, kept, read the second's forward motion as backward. Without
    tf2_msgs (an install that skipped tools/build_tf2_msgs.sh, which configure allows: TF is then not
    published) the mount is base_from_camera, and `state` says why. parameter_kept(): called where a lookup
    ends without TF's mount (the odometry keeps base_from_camera: FrameIntake.parameter_mount_kept)."""

    def __init__(self, node, settings: PoseSettings, parameter_kept: Callable[[], None] = lambda: None):
        self.node, self.base, self.parameter_kept = node, settings.base_frame, parameter_kept
        self.parameter = transform_from_xyz_quat(settings.base_from_camera)
        self.publish = settings.publish_camera_mount
        self.timeout_s = settings.camera_mount_timeout_s
        self.deadline = 0.0  # set at each frame_id's first frame (_switch): steady clock
        self.stamp_deadline: int | None = None  # and in the frames' stamps (ns)
        self.frame_id: str | None = None  # the camera the state is about
        self.listener = self.broadcaster = None
        self.published: dict = {}  # frame_id -> the TransformStamped published for it now
        self.ours: set[str] = set()  # frame_ids given base_frame as parent by this node (it hears its own)
        if self.publish or self.timeout_s > 0:
            self.state = "pending (publishing base_from_camera)" if self.publish else "pending (looking up /tf_static)"
            try:
                self.listener = self._make_listener(node)
            except ImportError as exc:
                self._without_tf2_msgs(exc)
        else:
            self.state = "base_from_camera parameter"

    def _make_listener(self, node):
        # Publishing needs our own listener, whose `parents` say whether the camera's frame has one
        # already. Looking up: tf2_ros where installed (it also follows /tf); else our listener.
        if not self.publish and tf_static.have_tf2_ros():
            return _Tf2Listener(node)
        return tf_static.StaticTransformListener(node)

    def resolve(self, frame_id: str, stamp_ns: int | None = None) -> np.ndarray | None:
        """stamp_ns: the frame's stamp; the lookup window ends when both camera_mount_timeout_s of the
        steady clock and of the stamps have passed since the camera's first frame: a bag played at
        --rate 0.5, or paused, brings its /tf_static later in wall time than in its own, and lost
        the mount by the steady clock alone."""
        switched = self._switch(frame_id, stamp_ns)
        found = self._resolve(frame_id, stamp_ns)
        # while the new camera's mount is unknown its frames use the parameter, as the first camera's did
        return self.parameter if found is None and switched else found

    def _switch(self, frame_id: str, stamp_ns: int | None) -> bool:
        """A camera's first frame starts its lookup window; another camera than the one the state is
        about goes back to pending, as the first one was. -> whether the odometry holds TF's mount of
        the previous camera (to be replaced meanwhile)."""
        previous, self.frame_id = self.frame_id, frame_id
        if previous == frame_id or not (self.publish or self.listener is not None):
            return False  # the same camera, or no TF (the parameter for every camera)
        # From the camera's first frame, not from activation: a camera (or `ros2 bag play`) started
        # later than the timeout after activation got one lookup, and lost its mount for the whole run
        # when its /tf_static came a few milliseconds after its first image.
        self.deadline = time.monotonic() + self.timeout_s
        self.stamp_deadline = None if stamp_ns is None else stamp_ns + int(self.timeout_s * 1e9)
        if previous is None:
            return False  # the first camera: pending since activation
        from_tf = self.state.startswith("/tf_static")
        self.state = "pending (publishing base_from_camera)" if self.publish else "pending (looking up /tf_static)"
        return from_tf

    def _resolve(self, frame_id: str, stamp_ns: int | None) -> np.ndarray | None:
        if self.publish:
            self._publish(frame_id)
            return None
        if not self.state.startswith("pending"):
            return None
        found = self.listener.lookup(self.base, frame_id)
        if found is not None:
            self.state = f"/tf_static {self.base} -> {frame_id}"
            return found
        stamps_passed = self.stamp_deadline is None or stamp_ns is None or stamp_ns > self.stamp_deadline
        if time.monotonic() > self.deadline and stamps_passed:
            self.state = f"base_from_camera parameter ({self.base} -> {frame_id} not on /tf_static)"
            # A log warning, not a diagnostics WARN: a robot without a URDF is a normal set-up.
            self.node.get_logger().warning(f"no {self.base} -> {frame_id} on /tf_static after the mount timeout: "
                                           "using the base_from_camera parameter")
            self.parameter_kept()
        return None

    def _publish(self, frame_id: str) -> None:
        """base_frame -> frame_id from base_from_camera, published at the camera's first frame unless
        /tf_static gives frame_id another parent, then or later (checked every frame: a driver's
        /tf_static may come after its first image). tf2 keeps one parent per frame, whichever came
        last: a second one broke the driver's tree (realsense2_camera: camera_link ->
        camera_color_frame -> camera_color_optical_frame) for some listeners and this link for others."""
        others = self.listener.parents.get(frame_id, set()) - ({self.base} if frame_id in self.ours else set())
        if others:
            if self.state.startswith("pending") or frame_id in self.published:  # once a camera
                self._not_published(frame_id, sorted(others)[0])
            return
        if not self.state.startswith("pending"):
            return
        # A camera already in the latched message (back to it, two cameras alternating on one topic) sends nothing:
        # the whole message went out again at every frame.
        if frame_id not in self.published:
            transform = tf_static.make_transform(self.base, frame_id, self.parameter)
            try:  # the same broadcaster: one latched message with every camera's mount
                self.broadcaster = tf_static.publish_static(self.node, [transform], self.broadcaster)
            except ImportError as exc:  # raised here, in the image callback, it ended the executor
                self._without_tf2_msgs(exc)
                return
            self.published[frame_id] = transform
            self.ours.add(frame_id)
        self.state = f"base_from_camera parameter, published as {self.base} -> {frame_id}"

    def _not_published(self, frame_id: str, parent: str) -> None:
        """frame_id has `parent` on /tf_static: base_frame -> frame_id is not published (withdrawn where
        it was: late subscribers then get the driver's tree alone), the odometry keeps base_from_camera,
        and the log says what to do, once a camera, like the other mount warnings."""
        withdrawn = self.published.pop(frame_id, None) is not None
        if withdrawn:
            tf_static.release_broadcaster(self.node, self.broadcaster)  # its latched message goes with it
            self.broadcaster = None
            if self.published:  # the other cameras' mounts stay
                self.broadcaster = tf_static.publish_static(self.node, list(self.published.values()))
        tree = tf_static.ancestors(self.listener.edges, parent)
        self.state = f"base_from_camera parameter (not published: {frame_id} has the parent {parent} on /tf_static)"
        advice = (f"it reaches {self.base} there already: set publish_camera_mount: false to use that mount"
                  if self.base in tree else f"set the camera's mount in the robot's URDF (robot_state_publisher), "
                  f"or publish {self.base} -> {tree[-1]} (the root of the camera's tree)")
        done = "withdrew" if withdrawn else "not publishing"
        self.node.get_logger().warning(
            f"publish_camera_mount: {frame_id} already has the parent {parent} on /tf_static (a camera driver's "
            f"own tree?): {done} {self.base} -> {frame_id}, a second parent (tf2 keeps one, and one of the trees "
            f"would break); the odometry uses base_from_camera. To place the camera on {self.base}, {advice}")

    def _without_tf2_msgs(self, exc: ImportError) -> None:
        """No /tf_static without tf2_msgs: the mount is the parameter from now on (resolve() stops
        asking, so this is said once an activation)."""
        self.state = "base_from_camera parameter (tf2_msgs missing: run tools/build_tf2_msgs.sh)"
        if not self.publish:  # a published mount was base_from_camera all along (judged at configure)
            self.parameter_kept()
        self.node.get_logger().warning(f"camera mount not {'published' if self.publish else 'looked up'} on "
                                       f"/tf_static: {type(exc).__name__}: {exc}; using base_from_camera "
                                       "(tf2_msgs missing: run tools/build_tf2_msgs.sh)")
        self.publish = False  # nothing to publish without tf2_msgs, for this camera or another

    def destroy(self) -> None:
        """Deactivation: the lookup stops, and the published mount's /tf_static publisher goes (each
        activation publishes it again at its first frame, so activations do not add publishers)."""
        if self.listener is not None:
            self.listener.destroy(self.node)
            self.listener = None
        if self.broadcaster is not None:
            tf_static.release_broadcaster(self.node, self.broadcaster)
            self.broadcaster = None
        if self.state.startswith("pending"):  # resolve() asks nothing any more
            self.state = "not found before deactivation"


class _Tf2Listener:
    """tf2_ros's buffer and listener behind StaticTransformListener's lookup (non-blocking: the
    node's executor fills the buffer)."""

    def __init__(self, node):
        from tf2_ros import Buffer, TransformListener

        self.buffer = Buffer()
        self.tf_listener = TransformListener(self.buffer, node, spin_thread=False)

    def lookup(self, parent: str, child: str) -> np.ndarray | None:
        from rclpy.time import Time

        if not self.buffer.can_transform(parent, child, Time()):
            return None
        t = self.buffer.lookup_transform(parent, child, Time()).transform
        return tf_static.matrix_from_ros((t.translation.x, t.translation.y, t.translation.z),
                                         (t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w))

    def destroy(self, node) -> None:
        self.tf_listener.unregister()
