"""ros/tf_static.py: chain composition (pure) and a real-DDS lookup between two processes."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap

import numpy as np

from fourds_ros.ros_env import run_ros_process
from fourds_ros.ros.tf_static import chain_transform, matrix_from_ros, ros_from_matrix

S = math.sqrt(0.5)
# A RealSense-like mount: camera_link 10 cm ahead and 20 cm up of base_link, yawed 90 deg left;
# the optical frame is z forward, x right, y down (REP 103), quaternion x, y, z, w.
BASE_TO_LINK = ([0.1, 0.0, 0.2], [0.0, 0.0, S, S])
LINK_TO_OPTICAL = ([0.0, 0.015, 0.0], [-0.5, 0.5, -0.5, 0.5])

# A late subscriber to /tf_static (tf2's QoS) that prints the child frames of the first latched message
# holding argv[1], then exits (1 when none came in argv[2] seconds). A static broadcaster must send every
# transform it holds in each message: tf2 listeners and rosbag keep the latest message, and a lookup that
# reads all 100 latched messages (ours, the test above) would not notice one that sent only the newest.
LATE_SUBSCRIBER = textwrap.dedent("""
    import json
    import sys
    import time

    import rclpy
    from tf2_msgs.msg import TFMessage

    from fourds_ros.ros.tf_static import TF_STATIC_TOPIC, static_qos

    rclpy.init()
    node = rclpy.create_node("late_tf_static_subscriber")
    found = []
    node.create_subscription(TFMessage, TF_STATIC_TOPIC, lambda msg: found.append(
        sorted(t.child_frame_id for t in msg.transforms)), static_qos())
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline and not any(sys.argv[1] in children for children in found):
        rclpy.spin_once(node, timeout_sec=0.1)
    holding = [children for children in found if sys.argv[1] in children]
    print(json.dumps(holding[0] if holding else None), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    sys.exit(0 if holding else 1)
""")


def test_ros_quaternions_are_xyzw():
    """90 deg about z, given x,y,z,w as ROS does, maps the x axis onto y (w-first would not)."""
    matrix = matrix_from_ros([1, 2, 3], [0, 0, S, S])
    np.testing.assert_allclose(matrix[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(matrix[:3, 3], [1, 2, 3])
    translation, rotation = ros_from_matrix(matrix)
    np.testing.assert_allclose(translation, [1, 2, 3])
    np.testing.assert_allclose(np.abs(rotation), [0, 0, S, S], atol=1e-12)


def _mount_edges():
    return {"camera_link": ("base_link", matrix_from_ros(*BASE_TO_LINK)),
            "camera_optical": ("camera_link", matrix_from_ros(*LINK_TO_OPTICAL)),
            "wheel": ("base_link", matrix_from_ros([0, 0.3, 0], [0, 0, 0, 1]))}


def test_chain_composes_down_up_and_across():
    edges = _mount_edges()
    expected = matrix_from_ros(*BASE_TO_LINK) @ matrix_from_ros(*LINK_TO_OPTICAL)
    np.testing.assert_allclose(chain_transform(edges, "base_link", "camera_optical"), expected, atol=1e-12)
    np.testing.assert_allclose(chain_transform(edges, "camera_optical", "base_link"), np.linalg.inv(expected),
                               atol=1e-12)
    # siblings meet at base_link: wheel -> optical = inv(base->wheel) @ base->optical
    across = np.linalg.inv(edges["wheel"][1]) @ expected
    np.testing.assert_allclose(chain_transform(edges, "wheel", "camera_optical"), across, atol=1e-12)
    np.testing.assert_allclose(chain_transform(edges, "camera_link", "camera_link"), np.eye(4))
    # the optical z axis (viewing direction) points along base_link's +y after the 90 deg yaw
    np.testing.assert_allclose(expected[:3, 2], [0, 1, 0], atol=1e-12)


def test_chain_of_unconnected_frames_is_none():
    edges = _mount_edges()
    assert chain_transform(edges, "base_link", "map") is None
    edges["odom_child"] = ("odom", np.eye(4))
    assert chain_transform(edges, "base_link", "odom_child") is None
    edges["a"], edges["b"] = ("b", np.eye(4)), ("a", np.eye(4))  # a cycle does not hang
    assert chain_transform(edges, "base_link", "a") is None


def test_lookup_across_processes_on_real_dds(ros_env, tmp_path):
    """One process latches the mount on /tf_static (two publish calls: the second must not drop
    the first), another joins later and looks up base_link -> camera_optical."""
    mount = tmp_path / "mount.json"
    mount.write_text(json.dumps([
        {"parent": "base_link", "child": "camera_link", "translation": BASE_TO_LINK[0], "rotation": BASE_TO_LINK[1]},
        {"parent": "camera_link", "child": "camera_optical", "translation": LINK_TO_OPTICAL[0],
         "rotation": LINK_TO_OPTICAL[1]},
    ]))
    publisher = subprocess.Popen([sys.executable, "-m", "fourds_ros.ros.tf_static", "publish", str(mount)],
                                 env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert publisher.stdout.readline().strip() == "published"
        lookup = run_ros_process([sys.executable, "-m", "fourds_ros.ros.tf_static", "lookup", "base_link",
                                 "camera_optical", "--timeout", "20"], ros_env, 60)
        assert lookup.returncode == 0, lookup.stdout + lookup.stderr
        found = np.array(json.loads(lookup.stdout.strip().splitlines()[-1])["matrix"])
        expected = matrix_from_ros(*BASE_TO_LINK) @ matrix_from_ros(*LINK_TO_OPTICAL)
        np.testing.assert_allclose(found, expected, atol=1e-9)
        missing = run_ros_process([sys.executable, "-m", "fourds_ros.ros.tf_static", "lookup", "base_link",
                                  "no_such_frame", "--timeout", "1"], ros_env, 60)
        assert missing.returncode == 1 and json.loads(missing.stdout)["matrix"] is None
        late = run_ros_process([sys.executable, "-c", LATE_SUBSCRIBER, "camera_optical", "20"], ros_env, 60)
        assert late.returncode == 0, late.stdout + late.stderr
        assert json.loads(late.stdout.strip().splitlines()[-1]) == ["camera_link", "camera_optical"]
    finally:
        publisher.send_signal(signal.SIGINT)
        assert publisher.wait(timeout=20) == 0


# A node releasing its camera mount: release_broadcaster destroys the latched /tf_static publisher (else a
# withdrawn mount stays latched, and a listener started later sees two parents for the camera's frame). Then,
# as an install without tf2_msgs (tools/build_tf2_msgs.sh skipped): CameraMount with publish_camera_mount
# keeps giving None (the base_from_camera parameter) for every frame, warns once and says why in `state`.
RELEASE_AND_NO_TF2_MSGS = textwrap.dedent("""
    import dataclasses
    import json
    import sys

    import numpy as np
    import rclpy

    from fourds_ros.perception.settings import PoseSettings
    from fourds_ros.ros import tf_static

    rclpy.init()
    node = rclpy.create_node("mount_release_probe")
    broadcaster = tf_static.publish_static(node, [tf_static.make_transform("base_link", "cam", np.eye(4))])
    before = node.count_publishers(tf_static.TF_STATIC_TOPIC)
    tf_static.release_broadcaster(node, broadcaster)
    after = node.count_publishers(tf_static.TF_STATIC_TOPIC)
    sys.modules["tf2_msgs"] = sys.modules["tf2_msgs.msg"] = None  # import tf2_msgs.msg now raises ImportError
    from fourds_ros.ros.transforms import CameraMount

    mount = CameraMount(node, dataclasses.replace(PoseSettings(), publish_camera_mount=True))
    resolved = [mount.resolve(frame_id, 1) for frame_id in ("cam", "cam", "other_cam")]
    print(json.dumps({"publishers": [before, after], "resolved": [r is None for r in resolved],
                      "state": mount.state}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
""")


def test_a_released_mount_leaves_tf_static_and_no_tf2_msgs_keeps_the_parameter(ros_env):
    run = run_ros_process([sys.executable, "-c", RELEASE_AND_NO_TF2_MSGS], ros_env, 60)
    assert run.returncode == 0, run.stdout + run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["publishers"] == [1, 0]
    assert found["resolved"] == [True, True, True] and "tf2_msgs missing" in found["state"], found
    assert run.stderr.count("camera mount not published") == 1, run.stderr  # warned once, not every frame
