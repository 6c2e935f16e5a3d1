"""Another source of odom_frame -> base_frame on /tf while this node publishes it (publish_tf).

tf2 keeps whichever odom -> base_link came last, so with two sources (a second instance of this node
for a second camera, or the base's wheel controller: diff_drive_controller publishes odom -> base_link
by default) base_link jumps between two estimates for every tf2 user, and nothing else says so.

`TfConflictWatch` is the node's TF publish function: it remembers each odom -> base transform it
publishes (stamp and pose, the last OWN_KEPT), then publishes it. While the node is active it also
reads /tf, and an odom -> base transform that is not one of its own is counted and logged as
health.warn("tf_conflict") with what to do. tf2_ros is not needed (the PyPI ROS wheels lack it), and
rclpy gives no publisher its own gid, so a transform is told to be ours by its stamp and pose; a copy
of one of ours, same stamp and same pose, is not told apart, and moves nothing for tf2 either.

Any other parent of base_frame counts too (another instance with its own odom_frame gave base_link two
parents, which tf2 cannot hold, and went unseen), on /tf_static as well: robot_state_publisher puts a URDF's
fixed joints there, base_footprint -> base_link among them where the URDF's root is base_footprint, and tf2 holds
a static transform for good, so each transform this node sends after it is counted (one count at the static
message alone ended the WARN 30 s later while base_link kept its two parents).

Cost per /tf message (a robot_state_publisher may send hundreds a second): messages arrive serialized
(raw=True) and only those that hold the base frame's name (a substring test, under 1 us) are
deserialized (30 us for one transform, 160 us for six): robot_state_publisher's base_link -> wheel
messages are (about 3 ms a second at 50 Hz), its other transforms stop at the byte test.
"""

from __future__ import annotations

import struct
import threading
from collections import Counter, deque

from .publisher_names import PublisherNames
from .tf_static import TF_STATIC_TOPIC, static_qos

# How many of this node's own transforms are remembered. Our own messages wait at most in the /tf
# subscription's queue (keep last 10 of the node's /tf QoS), so any of ours still to be read is among
# our last 10 transforms; 256 (a few seconds of a 60 Hz camera) leaves room for bursts.
OWN_KEPT = 256
UNNAMED = "another publisher"  # a publisher the ROS graph does not list (yet: discovery lags the first messages)
NAMED_KEPT = 64  # publishers remembered as named in a log line (bounded: a graph's /tf publishers are few)
_KEY = struct.Struct("<q7d")  # stamp_ns, translation xyz, rotation xyzw: exact, NaN included


def _key(transform) -> bytes:
    t, r = transform.transform.translation, transform.transform.rotation
    return _KEY.pack(_stamp_ns(transform), t.x, t.y, t.z, r.x, r.y, r.z, r.w)


def _stamp_ns(transform) -> int:
    s = transform.header.stamp
    return s.sec * 1_000_000_000 + s.nanosec


def _frames(transform) -> tuple[str, str]:
    # tf2 strips a leading slash: "/odom" -> "/base_link" is the same transform to its users
    return transform.header.frame_id.lstrip("/"), transform.child_frame_id.lstrip("/")


class TfConflictWatch:
    """publish(list[TransformStamped]) for the node (records its own odom -> base transforms, then sends
    them with `publish`), and `subscribe()`: the /tf watch, made at activation. warn(kind, message): the
    node's health.warn. admit(stamp_ns) -> whether a transform may go out (None: each one; the node's: a
    tf_stamps.TfStampGate, which withholds those that would rewrite the past tf2 holds, before they are
    recorded). The publish side runs on the inference thread, the watch on the executor's."""

    def __init__(self, node, publish, odom_frame: str, base_frame: str, warn, admit=None):
        self.node, self.publish, self.warn, self.admit = node, publish, warn, admit
        self.frames = (odom_frame, base_frame)
        # CDR strings end with a NUL: "base_link\0" is not found in "base_link_inertia\0"
        self.needles = (base_frame.encode() + b"\0", odom_frame.encode() + b"\0")
        self.own_order: deque[bytes] = deque()
        self.own: Counter[bytes] = Counter()  # a multiset: a bag loop publishes the same transforms again
        self.lock = threading.Lock()
        # who publishes a gid on /tf, from the ROS graph, asked rarely: an unnamed foreign publisher (its node not
        # yet discovered, or a plain DDS writer) must not cost a graph query per message
        self.names = PublisherNames(node)
        # publishers named in a log line: a conflict seen before discovery had named its publisher was logged as
        # "another publisher", and the rate limit then kept the name out of the log for log_every_s
        self.named_in_log: set[str] = set()
        self.deserialized = 0  # /tf and /tf_static messages that passed the byte test (for the cost, in tests)
        # (transform, publisher gid) of a parent of base_frame seen on /tf_static: tf2 keeps it, so it conflicts
        # with every transform sent after it. Replaced whole (read on the inference thread).
        self.static_conflict: tuple | None = None

    def __call__(self, transforms) -> None:
        if self.admit is not None:
            transforms = [t for t in transforms if self.admit(_stamp_ns(t))]
            if not transforms:
                return
        keys = [_key(t) for t in transforms if _frames(t) == self.frames]
        with self.lock:  # before publishing: our own message may be read back before publish() returns
            for key in keys:
                self.own[key] += 1
                self.own_order.append(key)
            while len(self.own_order) > OWN_KEPT:
                old = self.own_order.popleft()
                self.own[old] -= 1
                if not self.own[old]:
                    del self.own[old]
        self.publish(transforms)
        if keys and (static := self.static_conflict) is not None:
            self._conflict(*static, topic=TF_STATIC_TOPIC)

    def subscribe(self) -> list:
        """The /tf and /tf_static subscriptions (the caller destroys them at deactivation). /tf with the node's
        /tf QoS (reliable): a best-effort /tf writer reaches no tf2 listener (they are reliable) and makes nothing
        jump. /tf_static as tf2 reads it (reliable, transient_local: the URDF's transforms latched before)."""
        from rclpy.qos import QoSPresetProfiles
        from tf2_msgs.msg import TFMessage

        self.static_conflict = None  # learnt again: the latched /tf_static comes with the new subscription
        return [self.node.create_subscription(TFMessage, "/tf", self.on_tf, QoSPresetProfiles.DEFAULT.value, raw=True),
                self.node.create_subscription(TFMessage, TF_STATIC_TOPIC, self.on_tf_static, static_qos(), raw=True)]

    def on_tf_static(self, data: bytes, info) -> None:
        """A parent of base_frame on /tf_static (no transform there is this node's own) is kept, and counted again
        with each transform the node sends (__call__)."""
        gid = (info.get("publisher_gid") or {}).get("data")
        for transform in self._base_transforms(data):
            self.static_conflict = (transform, gid)
            self._conflict(transform, gid, topic=TF_STATIC_TOPIC)
            return  # one count a message

    def _base_transforms(self, data: bytes) -> list:
        """The transforms to base_frame in a serialized TFMessage; only messages that name it are deserialized."""
        if self.needles[0] not in data:  # the base frame's name: any transform to it may have another parent
            return []
        from rclpy.serialization import deserialize_message
        from tf2_msgs.msg import TFMessage

        self.deserialized += 1
        return [t for t in deserialize_message(data, TFMessage).transforms if _frames(t)[1] == self.frames[1]]

    def on_tf(self, data: bytes, info) -> None:  # two arguments: rclpy passes the MessageInfo
        for transform in self._base_transforms(data):
            if _frames(transform)[0] == self.frames[0]:
                with self.lock:
                    if _key(transform) in self.own:
                        continue
            self._conflict(transform, (info.get("publisher_gid") or {}).get("data"))
            return  # one count a message

    def _conflict(self, transform, gid, topic: str = "/tf") -> None:
        odom, base = self.frames
        parent, s = _frames(transform)[0], transform.header.stamp
        who = self._publisher(gid, topic)
        newly_named = who != UNNAMED and who not in self.named_in_log
        if newly_named and len(self.named_in_log) < NAMED_KEPT:
            self.named_in_log.add(who)
        what = (f"{odom} -> {base} is also published on {topic} by {who} (stamp {s.sec}.{s.nanosec:09d} is "
                f"not one of this node's): tf2 users see {base} jump between the two" if parent == odom else
                f"{base} is also given the parent {parent} on {topic} by {who}, besides this node's "
                f"{odom}: tf2 keeps one parent a frame, so {base} jumps between the two trees")
        # a URDF's parent of base_frame: the node's transform belongs above the tree's root, not beside it
        advice = (f"Set base_frame to the root of the robot's tree ({parent} or a frame above it), or publish_tf: "
                  "false" if topic == TF_STATIC_TOPIC and parent != odom else
                  "Set publish_tf: false on all but one source (with an EKF such as robot_localization owning the "
                  "transform, fuse each instance's `odometry` topic), or give each instance its own base_frame")
        self.warn("tf_conflict", f"{what}. {advice}", log_now=newly_named)

    def _publisher(self, gid, topic: str = "/tf") -> str:
        """Who publishes `gid` on `topic`, in words, from the ROS graph (publisher_names.PublisherNames)."""
        name = self.names.node_of(topic, str(bytes(gid)) if gid is not None else "")
        if name is None:
            return UNNAMED
        if name == self.node.get_fully_qualified_name():  # two instances without their own namespaces
            return f"another instance of this node of the same name (give each its own namespace), {name}"
        if name.rsplit("/", 1)[-1] == self.node.get_name():
            return f"another instance of this node, {name}"
        return f"the node {name}"
