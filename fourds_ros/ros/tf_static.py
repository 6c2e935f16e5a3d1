"""Static transforms (the camera mount) on /tf_static: look up, publish.

tf2_ros is used when it is importable (a real ROS install): Buffer + TransformListener for the
lookup, StaticTransformBroadcaster for publishing. Without it (the PyPI ROS wheels have no
tf2_ros) a small listener on /tf_static (tf2_msgs/TFMessage, transient_local + reliable, depth 100
as tf2 uses) stores the static transforms and composes chains itself (`chain_transform`).

    lookup_static(node, "base_link", "camera_color_optical_frame", timeout_s=2.0) -> 4x4 | None
    publish_static(node, [make_transform("base_link", "camera_link", T)]) -> keep the result alive

Matrices are 4x4 numpy arrays T_parent_child: they map points in the child frame into the parent
frame. ROS quaternions are x, y, z, w; transforms3d's are w, x, y, z (converted here only).

CLI (debugging, and the two-process test): python -m fourds_ros.ros.tf_static publish FILE.json
| lookup PARENT CHILD [--timeout S].
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from transforms3d.quaternions import mat2quat, quat2mat

TF_STATIC_TOPIC = "/tf_static"
TF_STATIC_DEPTH = 100


def matrix_from_ros(translation, rotation_xyzw) -> np.ndarray:
    """geometry_msgs Transform fields (x, y, z) + quaternion (x, y, z, w) -> 4x4."""
    x, y, z, w = (float(v) for v in rotation_xyzw)
    matrix = np.eye(4)
    matrix[:3, :3] = quat2mat([w, x, y, z])
    matrix[:3, 3] = [float(v) for v in translation]
    return matrix


def ros_from_matrix(matrix) -> tuple[list[float], list[float]]:
    """4x4 -> (translation xyz, quaternion xyzw), the order of geometry_msgs/Transform."""
    w, x, y, z = mat2quat(np.asarray(matrix)[:3, :3])
    return [float(v) for v in np.asarray(matrix)[:3, 3]], [float(x), float(y), float(z), float(w)]


def _to_root(edges: dict, frame: str) -> list[tuple[str, np.ndarray]]:
    """[(frame, T_frame_start) ...] from `frame` up to its root; T composes the path so far."""
    path, matrix, seen = [(frame, np.eye(4))], np.eye(4), {frame}
    while frame in edges:
        parent, t_parent_frame = edges[frame]
        if parent in seen:  # a cycle in bad input: stop rather than loop forever
            break
        matrix = t_parent_frame @ matrix
        frame = parent
        seen.add(frame)
        path.append((frame, matrix))
    return path


def chain_transform(edges: dict, parent: str, child: str) -> np.ndarray | None:
    """T_parent_child through the tree `edges` {child_frame: (parent_frame, T_parent_child)}:
    up from both frames to their nearest common ancestor. None when they are not connected."""
    from_child = _to_root(edges, child)
    from_parent = dict(_to_root(edges, parent))
    for ancestor, t_ancestor_child in from_child:
        if ancestor in from_parent:
            return np.linalg.inv(from_parent[ancestor]) @ t_ancestor_child
    return None


def make_transform(parent: str, child: str, matrix, stamp=None):
    """geometry_msgs/TransformStamped for T_parent_child (stamp: builtin_interfaces/Time)."""
    from geometry_msgs.msg import TransformStamped

    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    if stamp is not None:
        msg.header.stamp = stamp
    (msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z), \
        (msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z,
         msg.transform.rotation.w) = ros_from_matrix(matrix)
    return msg


def _edge(msg) -> tuple[str, tuple[str, np.ndarray]]:
    t, r = msg.transform.translation, msg.transform.rotation
    return msg.child_frame_id.lstrip("/"), (msg.header.frame_id.lstrip("/"),
                                            matrix_from_ros((t.x, t.y, t.z), (r.x, r.y, r.z, r.w)))


def static_qos():
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=TF_STATIC_DEPTH, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def have_tf2_ros() -> bool:
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return False
    return True


def ancestors(edges: dict, frame: str) -> list[str]:
    """[frame, its parent, ..., the root of its tree] in `edges` {child_frame: (parent_frame, T)}."""
    return [name for name, _ in _to_root(edges, frame)]


class StaticTransformListener:
    """The fallback listener: every transform seen on /tf_static, by child frame. `edges` keeps the
    latest one a child was given; `parents` every parent it was given (two publishers that give a
    child different parents: tf2 keeps only the latest, and `edges` alone would hide the other)."""

    def __init__(self, node):
        from tf2_msgs.msg import TFMessage

        self.edges: dict = {}
        self.parents: dict[str, set[str]] = {}
        self.subscription = node.create_subscription(TFMessage, TF_STATIC_TOPIC, self._on_message, static_qos())

    def _on_message(self, msg) -> None:
        for child, edge in map(_edge, msg.transforms):
            self.edges[child] = edge
            self.parents.setdefault(child, set()).add(edge[0])

    def lookup(self, parent: str, child: str) -> np.ndarray | None:
        return chain_transform(self.edges, parent.lstrip("/"), child.lstrip("/"))

    def destroy(self, node) -> None:
        node.destroy_subscription(self.subscription)


class StaticBroadcaster:
    """The fallback broadcaster: like tf2_ros's, it republishes every transform sent so far in one
    latched message (a later subscriber gets them all; a new child frame does not drop older)."""

    def __init__(self, node):
        from tf2_msgs.msg import TFMessage

        self._message_type, self._by_child = TFMessage, {}
        self.publisher = node.create_publisher(TFMessage, TF_STATIC_TOPIC, static_qos())

    def sendTransform(self, transforms) -> None:  # noqa: N802 (tf2_ros's name)
        self._by_child.update((t.child_frame_id, t) for t in transforms)
        self.publisher.publish(self._message_type(transforms=list(self._by_child.values())))


def release_broadcaster(node, broadcaster) -> None:
    """Destroy a broadcaster's /tf_static publisher (ours: `publisher`; tf2_ros's: `pub_tf`)."""
    publisher = getattr(broadcaster, "publisher", None) or getattr(broadcaster, "pub_tf", None)
    if publisher is not None:
        node.destroy_publisher(publisher)


def publish_static(node, transforms, broadcaster=None):
    """Publish TransformStamped messages on /tf_static; returns the broadcaster, which must stay
    referenced (pass it back to add transforms to the same latched message)."""
    if broadcaster is None:
        if have_tf2_ros():
            from tf2_ros import StaticTransformBroadcaster

            broadcaster = StaticTransformBroadcaster(node)
        else:
            broadcaster = StaticBroadcaster(node)
    broadcaster.sendTransform(list(transforms))
    return broadcaster


def _tf2_lookup(helper, executor, parent: str, child: str, deadline: float) -> np.ndarray | None:
    import rclpy.time
    from tf2_ros import Buffer, TransformListener

    buffer = Buffer()
    listener = TransformListener(buffer, helper)  # noqa: F841 (kept alive while spinning)
    while time.monotonic() < deadline:
        if buffer.can_transform(parent, child, rclpy.time.Time()):
            t = buffer.lookup_transform(parent, child, rclpy.time.Time()).transform
            return matrix_from_ros((t.translation.x, t.translation.y, t.translation.z),
                                   (t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w))
        executor.spin_once(timeout_sec=0.05)
    return None


def _fallback_lookup(helper, executor, parent: str, child: str, deadline: float) -> np.ndarray | None:
    listener = StaticTransformListener(helper)
    while time.monotonic() < deadline:
        found = listener.lookup(parent, child)
        if found is not None:
            return found
        executor.spin_once(timeout_sec=0.05)
    return listener.lookup(parent, child)


def lookup_static(node, parent: str, child: str, timeout_s: float = 2.0) -> np.ndarray | None:
    """T_parent_child from /tf_static, waiting up to timeout_s; None when it does not resolve.
    Safe inside one of `node`'s callbacks (e.g. on_configure): it listens with a short-lived
    helper node in the same context, spun by its own executor, so `node`'s executor is not needed."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    helper = rclpy.create_node(f"{node.get_name()}_tf_static_lookup", namespace=node.get_namespace(),
                               context=node.context, start_parameter_services=False)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(helper)
    deadline = time.monotonic() + max(0.0, float(timeout_s))
    try:
        lookup = _tf2_lookup if have_tf2_ros() else _fallback_lookup
        return lookup(helper, executor, parent.lstrip("/"), child.lstrip("/"), deadline)
    finally:
        executor.remove_node(helper)
        executor.shutdown()
        helper.destroy_node()


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fourds_ros.ros.tf_static", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="latch transforms until SIGINT")
    pub.add_argument("file", help='JSON list of {"parent", "child", "translation": [x,y,z], "rotation": [x,y,z,w]}')
    look = sub.add_parser("lookup", help="print T_parent_child as JSON (exit 1 when unresolved)")
    look.add_argument("parent")
    look.add_argument("child")
    look.add_argument("--timeout", type=float, default=5.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from .spin import spin_until_shutdown

    args = _cli(sys.argv[1:] if argv is None else argv)
    rclpy.init()
    node = rclpy.create_node(f"fourds_tf_static_{args.command}")
    try:
        if args.command == "lookup":
            found = lookup_static(node, args.parent, args.child, args.timeout)
            print(json.dumps({"matrix": None if found is None else found.tolist()}), flush=True)
            return 0 if found is not None else 1
        broadcaster = None
        for item in json.loads(open(args.file).read()):  # one call each: exercises the merge
            matrix = matrix_from_ros(item["translation"], item["rotation"])
            broadcaster = publish_static(node, [make_transform(item["parent"], item["child"], matrix)], broadcaster)
        print("published", flush=True)
        spin_until_shutdown(lambda: rclpy.spin(node), node.context)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
