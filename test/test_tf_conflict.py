"""publish_tf's watch for another source of odom -> base_link on /tf (ros/tf_conflict.py): the node's own
transforms are told apart by stamp and pose, other transforms on /tf are not counted, and on real DDS a
second publisher (a wheel controller, or a second instance of this node) turns /diagnostics WARN with
errors_tf_conflict and a log line that says what to do (publish_tf)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import numpy as np
import pytest

from fourds_ros.ros.harness import perception_status, process_environment, run_node

from .conftest import stop_process

pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs missing: run tools/build_tf2_msgs.sh <venv>")

START = [{"wait_for": "/diagnostics", "timeout": 60}]
PARAMS = {"num_queries": 16, "hop": 2, "diagnostics_period_s": 0.5}

# A base controller's /tf: argv[1] is a JSON list of messages, each a list of [parent, child] transforms,
# sent in turn at 50 Hz, stamped now (as diff_drive_controller stamps odom -> base_link).
TF_PUBLISHER = textwrap.dedent("""
    import json
    import sys

    import rclpy
    from geometry_msgs.msg import TransformStamped
    from rclpy.qos import QoSPresetProfiles
    from tf2_msgs.msg import TFMessage

    from fourds_ros.ros.spin import spin_until_shutdown

    messages = json.loads(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("wheel_controller")
    pub = node.create_publisher(TFMessage, "/tf", QoSPresetProfiles.DEFAULT.value)
    sent = [0]

    def tick():
        transforms = []
        for parent, child in messages[sent[0] % len(messages)]:
            t = TransformStamped()
            t.header.stamp = node.get_clock().now().to_msg()
            t.header.frame_id, t.child_frame_id = parent, child
            t.transform.translation.x = 0.01 * sent[0]
            t.transform.rotation.w = 1.0
            transforms.append(t)
        pub.publish(TFMessage(transforms=transforms))
        sent[0] += 1

    node.create_timer(0.02, tick)
    try:
        spin_until_shutdown(lambda: rclpy.spin(node), node.context)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
""")


def run_beside(tf_messages: list, params: dict, tmp_path, ros_env, frames: int = 10, subscribers: int = 1):
    """The node (default publish_tf: true) described `frames` frames while another process published
    `tf_messages` on /tf (none: the node alone). subscribers: the probe's frames wait until each of image and
    camera_info has that many (another instance of the node, active too)."""
    plan = START + [{"wait_for_subscribers": ["image", "camera_info"], "subscribers": subscribers, "timeout": 60},
                    {"frames": frames, "rate": 15, "size": [120, 160]},
                    {"wait_idle": True, "timeout": 30},
                    {"wait": 1.0}]
    other = None
    if tf_messages:
        other = subprocess.Popen([sys.executable, "-c", TF_PUBLISHER, json.dumps(tf_messages)],
                                 env=process_environment(ros_env), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
    try:
        run = run_node(plan, params, tmp_path, ros_env)
    finally:
        if other is not None:
            stop_process(other)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    if other is not None:
        assert other.returncode == 0, other.stderr.read()
    return run


def test_a_wheel_controller_publishing_odom_to_base_link_turns_diagnostics_warn(tiny_model_dir, ros_env, tmp_path):
    """diff_drive_controller's default: odom -> base_link on /tf beside this node's (publish_tf: true):
    tf2 users see base_link jump between the two, so the node counts it, WARNs and says what to do."""
    run = run_beside([[["odom", "base_link"]]], {"model": str(tiny_model_dir), **PARAMS}, tmp_path, ros_env)
    diag = run.last_diagnostics()
    values = diag["values"]
    assert int(values.get("errors_tf_conflict", 0)) > 0, values
    assert diag["level"] == 1 and "tf_conflict" in diag["message"], diag
    assert "[tf_conflict] odom -> base_link is also published on /tf by the node /wheel_controller" in run.node_log
    assert "Set publish_tf: false on all but one source" in run.node_log, run.node_log
    assert values["frames_out"] == "10", values  # the node keeps going


def test_a_node_without_poses_leaves_tf_to_the_wheels_and_reports_no_conflict(tiny_model_dir, ros_env, tmp_path):
    """enable_pose: false (depth only; the wheel odometry owns odom -> base_link), publish_tf left at its
    default: the node sends no transform, so the wheel controller's are no conflict (the watch counted
    them, WARN and "set publish_tf: false", for a node that published nothing on /tf)."""
    run = run_beside([[["odom", "base_link"]]], {"model": str(tiny_model_dir), **PARAMS, "enable_pose": False},
                     tmp_path, ros_env)
    diag = run.last_diagnostics()
    values = diag["values"]
    assert values["frames_out"] == "10" and "errors_tf_conflict" not in values, values
    assert diag["level"] == 0 and "tf_conflict" not in run.node_log, diag
    assert "TF off (no poses" in run.node_log, run.node_log


def test_the_node_alone_reports_no_conflict_with_its_own_transforms(tiny_model_dir, ros_env, tmp_path):
    """Its own odom -> base_link comes back through the /tf watch on every clip: never counted."""
    run = run_beside([], {"model": str(tiny_model_dir), **PARAMS}, tmp_path, ros_env, frames=16)
    values = run.last_diagnostics()["values"]
    own = [t for r in run.records("/tf") for t in r["transforms"] if (t["parent"], t["child"]) == ("odom", "base_link")]
    assert len(own) == 16 and values["frames_out"] == "16", (len(own), values)  # 7 clips of 4 frames at hop 2
    assert "errors_tf_conflict" not in values and "tf_conflict" not in run.node_log, values


def test_other_transforms_on_tf_do_not_count(tiny_model_dir, ros_env, tmp_path):
    """robot_state_publisher's base_link -> wheel, alone and in one message with map -> odom (both frame
    names in its bytes: deserialized, and still not odom -> base_link)."""
    messages = [[["base_link", "wheel_left_link"], ["base_link", "wheel_right_link"]],
                [["map", "odom"], ["base_link", "caster_link"]],
                [["odom", "base_link_inertia"]]]
    run = run_beside(messages, {"model": str(tiny_model_dir), **PARAMS}, tmp_path, ros_env)
    values = run.last_diagnostics()["values"]
    assert values["frames_out"] == "10" and "errors_tf_conflict" not in values, values
    assert "tf_conflict" not in run.node_log, run.node_log


def test_a_urdf_parent_of_base_link_on_tf_static_is_a_conflict(tiny_model_dir, ros_env, tmp_path):
    """robot_state_publisher puts a URDF's fixed joints on /tf_static: base_footprint -> base_link there (a robot
    whose URDF root is base_footprint, as Nav2 robots have it) beside this node's odom -> base_link gives
    base_link two parents, and tf2 keeps one. The watch read /tf alone: no count, no WARN, no word."""
    footprint = {"parent": "base_footprint", "child": "base_link", "translation": [0.0, 0.0, 0.1],
                 "rotation": [0.0, 0.0, 0.0, 1.0]}
    plan = START + [{"tf_static": [footprint]},
                    {"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
                    {"frames": 10, "rate": 15, "size": [120, 160]},
                    {"wait_idle": True, "timeout": 30},
                    {"wait": 1.0}]
    run = run_node(plan, {"model": str(tiny_model_dir), **PARAMS}, tmp_path, ros_env)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    diag = run.last_diagnostics()
    values = diag["values"]
    # counted for each of the node's 10 transforms that tf2 cannot hold beside the static parent
    assert int(values.get("errors_tf_conflict", 0)) >= 10 and diag["level"] == 1, diag
    assert "base_link is also given the parent base_footprint on /tf_static by the node /fourds_probe" in run.node_log
    assert "Set base_frame to the root of the robot's tree (base_footprint" in run.node_log
    assert values["frames_out"] == "10", values  # the node keeps going


def test_a_second_instance_of_the_node_on_the_same_tf_is_named(tiny_model_dir, ros_env, tmp_path):
    """Two cameras, two instances (namespace rear for the second, as README's "Several cameras"), both
    with publish_tf: true: each sees the other's odom -> base_link and names it. (Both take the probe's
    frames here, so their stamps match; their poses differ with the rear camera's mount.)"""
    from fourds_ros.ros.harness import write_params
    from fourds_ros.ros.launch_logic import command_line, module_command, node_plan

    rear_params = {"model": str(tiny_model_dir), **PARAMS, "base_from_camera": [-0.2, 0.0, 0.3, 0.0, 0.0, 1.0, 0.0]}
    rear_plan = node_plan([write_params(tmp_path / "rear.yaml", rear_params)], namespace="rear",
                          remappings=[("image", "/image"), ("camera_info", "/camera_info")])
    log_path = tmp_path / "rear.log"
    with open(log_path, "w") as log:
        rear = subprocess.Popen(command_line(rear_plan, module_command()), env=process_environment(ros_env),
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "configured:" not in log_path.read_text() and time.monotonic() < deadline and rear.poll() is None:
            time.sleep(0.1)
        # both instances take every frame: the rear's first clip (its first transform) came after the front's
        # last when it was only configured, not yet subscribed, as the probe began (a CI run under load)
        run = run_beside([], {"model": str(tiny_model_dir), **PARAMS}, tmp_path / "front", ros_env, subscribers=2)
    finally:
        stop_process(rear)
    for namespace in ("", "rear"):
        last = [s for r in run.records("/diagnostics") if (s := perception_status(r, namespace)) is not None][-1]
        assert int(last["values"].get("errors_tf_conflict", 0)) > 0 and last["level"] == 1, last
    assert "by another instance of this node, /rear/fourds_perception" in run.node_log, run.node_log
    assert "by another instance of this node, /fourds_perception" in log_path.read_text()


class FakeNode:
    """What TfConflictWatch asks of its node: its names, and the ROS graph's /tf publishers."""

    def __init__(self, publishers=()):
        self.publishers = [SimpleNamespace(endpoint_gid=list(gid), node_name=name, node_namespace=ns)
                           for gid, ns, name in publishers]

    def get_name(self):
        return "fourds_perception"

    def get_fully_qualified_name(self):
        return "/front/fourds_perception"

    def get_publishers_info_by_topic(self, topic):
        assert topic in ("/tf", "/tf_static")
        return self.publishers


def transform(parent: str, child: str, stamp_ns: int, x: float = 0.0):
    from fourds_ros.ros import convert

    matrix = np.eye(4)
    matrix[0, 3] = x
    return convert.transform_stamped(matrix, stamp_ns, parent, child)


def serialized(*transforms) -> bytes:
    from rclpy.serialization import serialize_message
    from tf2_msgs.msg import TFMessage

    return serialize_message(TFMessage(transforms=list(transforms)))


def make_watch(publishers=()):
    from fourds_ros.ros.tf_conflict import TfConflictWatch

    sent, warned = [], []
    watch = TfConflictWatch(FakeNode(publishers), sent.append, "odom", "base_link",
                            lambda kind, message, log_now=False: warned.append((kind, message)))
    return watch, sent, warned


def info(gid: bytes) -> dict:
    return {"publisher_gid": {"implementation_identifier": "rmw_fastrtps_cpp", "data": gid}}


def test_own_transforms_are_told_apart_by_stamp_and_pose():
    watch, sent, warned = make_watch()
    own = transform("odom", "base_link", 1_000_000_123, x=0.5)
    watch([own])
    assert sent == [[own]]
    watch.on_tf(serialized(own), info(b"\x01" * 16))
    assert warned == []
    # the same stamp with another pose (a second instance on the same camera), another stamp, "/odom"
    for other in (transform("odom", "base_link", 1_000_000_123, x=0.6), transform("odom", "base_link", 2),
                  transform("/odom", "/base_link", 3)):
        watch.on_tf(serialized(other), info(b"\x02" * 16))
    assert [kind for kind, _ in warned] == ["tf_conflict"] * 3, warned
    assert "by another publisher" in warned[0][1] and "publish_tf: false" in warned[0][1]


def test_only_messages_naming_the_base_frame_are_deserialized():
    watch, _, warned = make_watch()
    for message in (serialized(transform("map", "odom", 1)),
                    serialized(transform("odom", "base_link_inertia", 1))):  # "base_link\0" not in it
        watch.on_tf(message, info(b"\x02" * 16))
    assert watch.deserialized == 0
    watch.on_tf(serialized(transform("map", "odom", 1), transform("base_link", "wheel_left_link", 1)), {})
    assert watch.deserialized == 1 and warned == []  # robot_state_publisher's: read, and no conflict


def test_another_parent_of_the_base_frame_is_a_conflict():
    """A second instance given its own odom_frame (the warning's old advice) published odom_front -> base_link:
    base_link had two parents, which tf2 cannot hold, and neither node said so."""
    watch, _, warned = make_watch()
    watch.on_tf(serialized(transform("odom_front", "base_link", 1)), info(b"\x02" * 16))
    watch.on_tf(serialized(transform("/base_footprint", "/base_link", 2)), info(b"\x02" * 16))
    assert [kind for kind, _ in warned] == ["tf_conflict"] * 2, warned
    assert "base_link is also given the parent odom_front on /tf" in warned[0][1]
    assert "tf2 keeps one parent a frame" in warned[0][1] and "its own base_frame" in warned[0][1]
    assert "the parent base_footprint" in warned[1][1]


def test_a_static_parent_of_the_base_frame_counts_with_every_transform_sent_after_it():
    """tf2 holds a /tf_static transform for good: base_footprint -> base_link there conflicts with each odom ->
    base_link the node sends later (one count at the static message ended the WARN while the two parents
    stayed). The URDF's base_link -> camera_link and the node's own camera mount on /tf_static are no conflict."""
    watch, sent, warned = make_watch()
    watch.on_tf_static(serialized(transform("base_link", "camera_link", 0), transform("base_link", "camera_optical", 0)),
                       info(b"\x02" * 16))
    watch([transform("odom", "base_link", 1)])
    assert warned == [] and len(sent) == 1
    watch.on_tf_static(serialized(transform("base_footprint", "base_link", 0)), info(b"\x02" * 16))
    for stamp in (2, 3):
        watch([transform("odom", "base_link", stamp)])
    assert [kind for kind, _ in warned] == ["tf_conflict"] * 3 and len(sent) == 3, warned
    assert all("base_link is also given the parent base_footprint on /tf_static" in text for _, text in warned)
    assert "Set base_frame to the root of the robot's tree (base_footprint" in warned[0][1]
    watch.on_tf(serialized(transform("odom", "base_link", 3)), info(b"\x01" * 16))  # its own, read back on /tf
    assert len(warned) == 3


def test_the_own_ledger_is_bounded():
    from fourds_ros.ros.tf_conflict import OWN_KEPT

    watch, _, warned = make_watch()
    for i in range(OWN_KEPT + 50):
        watch([transform("odom", "base_link", i)])
    assert len(watch.own) == len(watch.own_order) == OWN_KEPT
    watch.on_tf(serialized(transform("odom", "base_link", OWN_KEPT + 49)), info(b"\x01" * 16))
    assert warned == []


def test_the_other_publisher_is_named_from_the_ros_graph():
    controller, rear, twin = b"\x03" * 16, b"\x04" * 16, b"\x05" * 16
    watch, _, warned = make_watch([(controller, "/", "controller_manager"), (rear, "/rear", "fourds_perception"),
                                   (twin, "/front", "fourds_perception")])
    for gid in (controller, rear, twin):
        watch.names.next_lookup.clear()  # LOOKUP_EVERY_S later
        watch.on_tf(serialized(transform("odom", "base_link", 7)), info(gid))
    messages = [m for _, m in warned]
    assert "by the node /controller_manager" in messages[0], messages
    assert "by another instance of this node, /rear/fourds_perception" in messages[1], messages
    assert "of the same name (give each its own namespace)" in messages[2], messages


def test_a_message_with_several_foreign_parents_counts_once():
    """tf_conflict is counted per /tf message (its docstring: 'one count a message'): a wheel controller's message
    carrying odom -> base_link and base_footprint -> base_link is one conflict, not two."""
    watch, _, warned = make_watch()
    watch.on_tf(serialized(transform("odom", "base_link", 5), transform("base_footprint", "base_link", 5),
                           transform("odom_front", "base_link", 5)), info(b"\x02" * 16))
    assert [kind for kind, _ in warned] == ["tf_conflict"]
    own = transform("odom", "base_link", 9, x=0.25)
    watch([own])  # ours first in the message: skipped, the foreign one after it counted once
    watch.on_tf(serialized(own, transform("odom_front", "base_link", 9), transform("odom", "base_link", 10)),
                info(b"\x02" * 16))
    assert len(warned) == 2 and "odom_front" in warned[1][1]


def test_a_bag_loop_replaying_the_same_transforms_is_no_tf_conflict():
    """ros2 bag play --loop publishes the same odom -> base_link transforms again at each loop (the same stamps and
    poses: identical input). Forgetting the oldest copy forgot the key while a newer copy was still to be read back:
    the node's own transforms were logged as 'another instance of this node of the same name' (58 times in 25
    loops over DDS)."""
    watch, _, warned = make_watch()
    # a 3.2 s bag at 10 Hz (32 poses a loop); each clip's 8 poses go out together and are then read back
    loop = [transform("odom", "base_link", 1_765_000_000_000_000_000 + i * 100_000_000, x=0.01 * i) for i in range(32)]
    for _ in range(12):
        for clip in range(4):
            ts = loop[8 * clip: 8 * clip + 8]
            watch(ts)
            for t in ts:
                watch.on_tf(serialized(t), info(b"\x01" * 16))  # read back by the node's own /tf subscription
    assert warned == []


def test_a_publisher_named_after_the_first_conflict_is_logged_at_once():
    """The first foreign transform can arrive before discovery lists its publisher's node: that conflict is logged
    as 'another publisher', and the rate limit then kept the name out of the log for its period (CI's runs of
    the wheel-controller test above, 2 of 9). Once the graph names it, that line is logged at once, and once."""
    from fourds_ros.perception.health import NodeHealth
    from fourds_ros.ros.tf_conflict import TfConflictWatch

    controller = b"\x03" * 16
    node = FakeNode()
    logged = []
    health = NodeHealth(logged.append, log_every_s=60.0)
    watch = TfConflictWatch(node, lambda transforms: None, "odom", "base_link", health.warn)
    watch.on_tf(serialized(transform("odom", "base_link", 7)), info(controller))  # not yet discovered
    node.publishers = FakeNode([(controller, "/", "wheel_controller")]).publishers
    for stamp in (8, 9, 10):
        watch.names.next_lookup.clear()  # LOOKUP_EVERY_S later
        watch.on_tf(serialized(transform("odom", "base_link", stamp)), info(controller))
    assert health.errors["tf_conflict"] == 4
    assert len(logged) == 2, logged
    assert "by another publisher" in logged[0] and "by the node /wheel_controller" in logged[1], logged


def test_a_publisher_the_graph_has_not_named_yet_is_asked_again():
    """Discovery can list a /tf endpoint before its node's name (rmw's _NODE_NAMESPACE_UNKNOWN_/_NODE_NAME_UNKNOWN_):
    that placeholder was cached against the gid, and every later line named it (1 of 4 runs at 5 kHz). It is now
    asked again, and the name is logged once known."""
    from fourds_ros.perception.health import NodeHealth
    from fourds_ros.ros.tf_conflict import TfConflictWatch

    controller = b"\x06" * 16
    node = FakeNode([(controller, "_NODE_NAMESPACE_UNKNOWN_", "_NODE_NAME_UNKNOWN_")])
    logged = []
    watch = TfConflictWatch(node, lambda transforms: None, "odom", "base_link", NodeHealth(logged.append).warn)
    watch.on_tf(serialized(transform("odom", "base_link", 7)), info(controller))
    node.publishers = FakeNode([(controller, "/", "wheel_odom")]).publishers
    watch.names.next_lookup.clear()  # LOOKUP_EVERY_S later
    watch.on_tf(serialized(transform("odom", "base_link", 8)), info(controller))
    assert "by another publisher" in logged[0] and "by the node /wheel_odom" in logged[-1], logged
    assert not any("UNKNOWN" in line for line in logged), logged

