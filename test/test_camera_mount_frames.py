"""ros/transforms.py CameraMount against /tf_static as its listener gives it (no DDS: the listener,
the broadcaster and the clock are stand-ins): when the lookup window starts, and publish_camera_mount
beside a camera driver that publishes its own tree (realsense2_camera; test/realsense_like.py)."""

import dataclasses

import numpy as np
import pytest

from fourds_ros.perception.odometry import default_base_from_camera
from fourds_ros.perception.settings import PoseSettings
from fourds_ros.ros import tf_static, transforms
from fourds_ros.ros.transforms import CameraMount

OPTICAL = "camera_color_optical_frame"
# realsense2_camera's own static tree (frame -> parent), as its /tf_static gives it
DRIVER_TREE = {"camera_color_frame": "camera_link", OPTICAL: "camera_color_frame"}


class Node:
    """What CameraMount asks of its node here: a logger (the listener and broadcaster are stand-ins)."""

    def __init__(self):
        self.warnings: list[str] = []

    def get_logger(self):
        return self

    def warning(self, text: str) -> None:
        self.warnings.append(text)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TfStatic:
    """/tf_static as StaticTransformListener gives it: `edges` (child -> (parent, T), the latest),
    `parents` (child -> every parent given); `give` is a message arriving, `listener` the stand-in's
    class (every listener made hears everything given, before or after)."""

    def __init__(self):
        self.edges, self.parents = {}, {}
        tf = self

        class Listener:
            def __init__(self, node):
                self.edges, self.parents = tf.edges, tf.parents

            def lookup(self, parent: str, child: str):
                return tf_static.chain_transform(self.edges, parent, child)

            def destroy(self, node) -> None:
                pass

        self.listener = Listener
        self.published: list = []  # [(parent, child), ...] per publish_static call
        self.released = 0
        self.clock = Clock()

    def give(self, child: str, parent: str, matrix=None) -> None:
        self.edges[child] = (parent, np.eye(4) if matrix is None else matrix)
        self.parents.setdefault(child, set()).add(parent)

    def publish_static(self, node, transforms_, broadcaster=None):
        self.published.append([(t.header.frame_id, t.child_frame_id) for t in transforms_])
        return broadcaster or object()

    def release_broadcaster(self, node, broadcaster) -> None:
        self.released += 1


@pytest.fixture
def tf(monkeypatch) -> TfStatic:
    world = TfStatic()
    monkeypatch.setattr(transforms.time, "monotonic", world.clock)
    monkeypatch.setattr(tf_static, "have_tf2_ros", lambda: False)
    monkeypatch.setattr(tf_static, "StaticTransformListener", world.listener)
    monkeypatch.setattr(tf_static, "publish_static", world.publish_static)
    monkeypatch.setattr(tf_static, "release_broadcaster", world.release_broadcaster)
    return world


def test_the_lookup_window_starts_at_the_first_camera_frame_not_at_activation(tf):
    """A camera (or `ros2 bag play`) started 3 s after activation, camera_mount_timeout_s 2 s, whose
    /tf_static comes 0.13 s after its first image: the window had closed at activation + 2 s, the
    first frame's one lookup missed, and the mount was base_from_camera for the whole run."""
    node, clock = Node(), tf.clock
    mount = CameraMount(node, dataclasses.replace(PoseSettings(), camera_mount_timeout_s=2.0))
    clock.now += 3.0
    assert mount.resolve("camera_optical") is None and mount.state == "pending (looking up /tf_static)"
    clock.now += 0.13
    tf.give("camera_optical", "base_link", default_base_from_camera())
    found = mount.resolve("camera_optical")
    np.testing.assert_allclose(found, default_base_from_camera())
    assert mount.state == "/tf_static base_link -> camera_optical" and node.warnings == []


def test_the_window_also_runs_in_the_frames_stamps_for_a_slowed_or_paused_bag(tf):
    """The window ran on the steady clock alone: a bag played at --rate 0.5 (or paused) whose /tf_static
    comes 1.5 s of its own time after its first image brought it 3 s later in wall time, after the
    2 s window, and the URDF mount was lost for the run. It ends when both clocks have passed it."""
    node, clock = Node(), tf.clock
    mount = CameraMount(node, dataclasses.replace(PoseSettings(), camera_mount_timeout_s=2.0))
    first = 10**12
    assert mount.resolve("camera_optical", first) is None
    clock.now += 2.5  # 2.5 s of wall time, 1.25 s of the bag's
    assert mount.resolve("camera_optical", first + 1_250_000_000) is None and mount.state.startswith("pending")
    clock.now += 0.5
    tf.give("camera_optical", "base_link", default_base_from_camera())
    found = mount.resolve("camera_optical", first + 1_500_000_000)
    np.testing.assert_allclose(found, default_base_from_camera())
    assert node.warnings == []
    # Both passed: the window ends, as on the steady clock alone before.
    other = CameraMount(node, dataclasses.replace(PoseSettings(), camera_mount_timeout_s=2.0))
    assert other.resolve("cam_b", first) is None
    clock.now += 2.5
    assert other.resolve("cam_b", first + 2_100_000_000) is None
    assert other.state == "base_from_camera parameter (base_link -> cam_b not on /tf_static)"


def test_the_window_still_ends_camera_mount_timeout_s_after_the_first_frame(tf):
    node, clock = Node(), tf.clock
    mount = CameraMount(node, dataclasses.replace(PoseSettings(), camera_mount_timeout_s=2.0))
    clock.now += 10.0
    assert mount.resolve("camera_optical") is None
    clock.now += 1.9
    assert mount.resolve("camera_optical") is None and mount.state.startswith("pending")
    clock.now += 0.2
    assert mount.resolve("camera_optical") is None and mount.resolve("camera_optical") is None
    assert mount.state == "base_from_camera parameter (base_link -> camera_optical not on /tf_static)"
    assert len(node.warnings) == 1 and "after the mount timeout" in node.warnings[0], node.warnings


def publishing(node) -> CameraMount:
    return CameraMount(node, dataclasses.replace(PoseSettings(), publish_camera_mount=True))


def test_a_frame_the_camera_driver_gives_a_parent_is_not_given_a_second_one(tf):
    """realsense2_camera publishes camera_link -> camera_color_frame -> camera_color_optical_frame: the
    node's base_link -> camera_color_optical_frame was a second parent, and tf2 keeps one (the driver's
    tree or the node's link broke, whichever came first). Now nothing is published, the log says what
    to do once, and the camera_mount value names it."""
    for child, parent in DRIVER_TREE.items():  # latched by the driver, running before the node
        tf.give(child, parent)
    node = Node()
    mount = publishing(node)
    for _ in range(3):
        assert mount.resolve(OPTICAL) is None  # the odometry keeps base_from_camera
    assert tf.published == [], tf.published
    assert mount.state == f"base_from_camera parameter (not published: {OPTICAL} has the parent camera_color_frame " \
                          "on /tf_static)"
    assert len(node.warnings) == 1 and f"not publishing base_link -> {OPTICAL}" in node.warnings[0], node.warnings
    assert "URDF (robot_state_publisher), or publish base_link -> camera_link (the root" in node.warnings[0]


def test_a_driver_tree_that_reaches_base_frame_already_is_named(tf):
    for child, parent in {**DRIVER_TREE, "camera_link": "base_link"}.items():
        tf.give(child, parent)
    node = Node()
    mount = publishing(node)
    assert mount.resolve(OPTICAL) is None and tf.published == []
    assert len(node.warnings) == 1 and "set publish_camera_mount: false" in node.warnings[0], node.warnings


def test_a_frame_without_a_parent_is_published_and_withdrawn_when_a_parent_comes_later(tf):
    """publish_camera_mount as before for a frame /tf_static gives no parent (its own edge coming
    back is not another parent); a driver's /tf_static that comes after the first frame (a bag) takes
    it back, the other camera's mount staying published."""
    node = Node()
    mount = publishing(node)
    assert mount.resolve("cam_b") is None and mount.resolve(OPTICAL) is None
    assert tf.published == [[("base_link", "cam_b")], [("base_link", OPTICAL)]]
    assert mount.state == f"base_from_camera parameter, published as base_link -> {OPTICAL}"
    tf.give("cam_b", "base_link")  # its own messages, heard back
    tf.give(OPTICAL, "base_link")
    assert mount.resolve(OPTICAL) is None and node.warnings == [] and tf.released == 0
    for child, parent in DRIVER_TREE.items():
        tf.give(child, parent)
    for _ in range(3):
        assert mount.resolve(OPTICAL) is None
    assert tf.released == 1 and tf.published[-1] == [("base_link", "cam_b")], tf.published
    assert mount.state.startswith(f"base_from_camera parameter (not published: {OPTICAL} has the parent")
    assert len(node.warnings) == 1 and f"withdrew base_link -> {OPTICAL}" in node.warnings[0], node.warnings


def test_the_listener_keeps_every_parent_a_frame_was_given():
    """Two publishers give a frame different parents: `edges` holds the latest, `parents` both."""
    from tf2_msgs.msg import TFMessage  # built by tools/build_tf2_msgs.sh where ROS has none

    class Subscriber:
        def create_subscription(self, *args):
            return None

    heard = tf_static.StaticTransformListener(Subscriber())
    for parent in ("camera_color_frame", "base_link"):
        heard._on_message(TFMessage(transforms=[tf_static.make_transform(parent, OPTICAL, np.eye(4))]))
    assert heard.edges[OPTICAL][0] == "base_link"
    assert heard.parents == {OPTICAL: {"camera_color_frame", "base_link"}}
    assert tf_static.ancestors({OPTICAL: ("camera_color_frame", np.eye(4)),
                                "camera_color_frame": ("camera_link", np.eye(4))}, OPTICAL) == \
        [OPTICAL, "camera_color_frame", "camera_link"]


def test_cameras_alternating_on_one_topic_publish_their_mounts_once(tf):
    """Two cameras' frames alternating on one topic: each switch went back to pending and sent the whole latched
    /tf_static message again, every frame (30 Hz to every tf2 listener)."""
    mount = publishing(Node())
    for _ in range(50):
        assert mount.resolve("cam_a") is None and mount.resolve("cam_b") is None
    assert tf.published == [[("base_link", "cam_a")], [("base_link", "cam_b")]]
    assert mount.state == "base_from_camera parameter, published as base_link -> cam_b"
