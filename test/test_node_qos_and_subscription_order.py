"""The node's publishers' QoS (outputs take output_qos, /tf stays reliable) and the order of its subscriptions
(ros/transforms.py), with a recording stand-in for the node (no DDS)."""
import dataclasses
import types

import pytest

from rclpy.qos import ReliabilityPolicy

from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.ros.transforms import create_publishers, create_subscriptions


class RecordingNode:
    def __init__(self):
        self.publishers, self.subscriptions = [], []
        self.health = types.SimpleNamespace(warn=lambda *a: None, frames_lost=lambda *a: None)
        self.on_camera_info = self.on_image = self.on_compressed = self.on_track_queries = lambda *a: None
        self.tf_publish = None
        self.intake = types.SimpleNamespace(subscribed=lambda image, info: None)
        self.ros_arguments = []  # no remapping rules

    def resolve_topic_name(self, topic, only_expand=False):  # rclpy's, in the root namespace without remappings
        return "/" + topic

    def create_publisher(self, kind, topic, qos):
        self.publishers.append((kind, topic, qos))
        return (kind, topic, qos)

    def create_subscription(self, kind, topic, callback, qos, event_callbacks=None):
        self.subscriptions.append((kind, topic, qos))
        return types.SimpleNamespace(topic_name=topic, qos=qos)


def settings(**inputs):
    s = PerceptionSettings()
    return dataclasses.replace(s, inputs=dataclasses.replace(s.inputs, **inputs))


def test_outputs_take_output_qos_and_tf_stays_reliable():
    """output_qos SENSOR_DATA (a lossy link to RViz): every output best effort, /tf reliable as tf2 listens."""
    node = RecordingNode()
    publishers, tf_publish, _ = create_publishers(node, settings(output_qos="SENSOR_DATA", image_qos="DEFAULT"))
    assert tf_publish is not None and "tf" in publishers
    by_topic = {topic: qos for _, topic, qos in node.publishers}
    assert by_topic.pop("/tf").reliability == ReliabilityPolicy.RELIABLE
    assert by_topic and all(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in by_topic.values()), by_topic


def test_the_image_subscription_is_first_in_made_for_every_transport():
    """publish_diagnostics counts the publishers of made[0]'s topic as image_publishers."""
    for transport, topic in (("raw", "image"), ("compressed", "image/compressed")):
        node, made = RecordingNode(), []
        create_subscriptions(node, settings(image_transport=transport), made)
        assert made[0].topic_name == topic, [m.topic_name for m in made]
        # camera_info's made first, on the image's sibling
        assert [t for _, t, _ in node.subscriptions][:2] == ["/camera_info", topic]


def test_a_compressed_image_publisher_with_the_wrong_qos_counts_as_the_images():
    """The stall warning names incompatible_qos as why no frame arrives: the compressed transport's too."""
    from fourds_ros.ros.transforms import incompatible_qos_report
    warned = []
    node = types.SimpleNamespace(health=types.SimpleNamespace(warn=lambda kind, text: warned.append(kind)))
    for topic in ("image", "image/compressed", "camera_info"):
        incompatible_qos_report(node, topic, "DEFAULT")(None)
    assert warned == ["incompatible_qos", "incompatible_qos", "incompatible_qos_camera_info"]


@pytest.mark.parametrize(("args", "transport", "image", "info"), [
    # the image remapped alone: camera_info is its sibling, as image_transport pairs them
    (["-r", "image:=/cam/color/image_raw"], "raw", "/cam/color/image_raw", "/cam/color/camera_info"),
    # `ros2 run ... -p image_transport:=compressed -r image/compressed:=...`: stayed on /camera_info
    (["-r", "image/compressed:=/cam/image_raw/compressed"], "compressed", "/cam/image_raw/compressed",
     "/cam/camera_info"),
    # camera_info remapped on purpose to its own root name (`camera_info_topic:=/camera_info`): the node listened
    # on /cam/camera_info (the regression review's catch)
    (["-r", "image:=/cam/image_rect", "-r", "camera_info:=/camera_info"], "raw", "/cam/image_rect", "/camera_info"),
    (["-r", "__ns:=/x", "-r", "image:=cam/image_raw"], "raw", "/x/cam/image_raw", "/x/cam/camera_info"),
    ([], "raw", "/image", "/camera_info"),
])
def test_camera_info_follows_its_remapping_else_the_subscribed_images_sibling(ros_env, monkeypatch, args, transport,
                                                                              image, info):
    """A real rclpy node resolving the remappings as launch and `ros2 run` give them (the process's arguments)."""
    import rclpy
    from rclpy.node import Node

    from fourds_ros.ros.node_lifetime import ros_arguments

    argv = ["perception_node", "--ros-args", *args]
    monkeypatch.setattr("sys.argv", argv)
    context = rclpy.Context()
    rclpy.init(args=argv, context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = Node("fourds_perception", context=context)
    seen = {}
    node.health = types.SimpleNamespace(warn=lambda *a: None, frames_lost=lambda *a: None)
    node.on_camera_info = node.on_image = node.on_compressed = node.on_track_queries = lambda *a: None
    node.tf_publish, node.ros_arguments = None, ros_arguments(None, {})  # main()'s: sys.argv
    node.intake = types.SimpleNamespace(subscribed=lambda image_topic, info_topic: seen.update(image=image_topic,
                                                                                              info=info_topic))
    try:
        made = []
        create_subscriptions(node, settings(image_transport=transport), made)
        assert {m.topic_name for m in made} == {image, info}
        assert seen == {"image": image, "info": info}  # the topic subscribed, named in warnings
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_remapping_rules_are_read_from_ros_args_blocks_only():
    from fourds_ros.ros.transforms import remapped

    argv = ["perception_node", "-r", "camera_info:=/not_a_rule", "--ros-args", "-r", "image:=/cam/image_raw",
            "--remap", "fourds_perception:camera_info:=/camera_info", "-p", "hop:=3", "--", "-r", "x:=y",
            "--ros-args", "-r", "/tf:=tf"]
    assert remapped(argv) == ["image", "fourds_perception:camera_info", "/tf"]
