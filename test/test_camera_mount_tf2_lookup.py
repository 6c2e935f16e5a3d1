"""CameraMount's tf2_ros path (_Tf2Listener), the one a ROS install with tf2_ros takes. tf2_ros cannot be installed
here, so a test double of the module records what is asked and answers with a geometry_msgs Transform; the mount is
pitched 20 degrees, so a w-first quaternion (transforms3d's order) read as ROS's x, y, z, w shows."""
import dataclasses
import sys
import types

import numpy as np
from geometry_msgs.msg import TransformStamped

from fourds_ros.perception.settings import PoseSettings
from fourds_ros.ros.transforms import CameraMount

# base_link -> camera_optical: 10 cm up, the REP-103 optical rotation then tilted 20 deg down (pitch about
# base y): x, y, z, w. (The bare optical rotation (-0.5, 0.5, -0.5, 0.5) reads the same rotation in either
# quaternion order, so it cannot tell them apart.)
_c, _s = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))
R_BASE_OPTICAL = np.array([[_c, 0.0, _s], [0.0, 1.0, 0.0], [-_s, 0.0, _c]]) @ np.array(
    [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
Q_XYZW = __import__("fourds_ros.perception.odometry", fromlist=["quat_xyzw"]).quat_xyzw(R_BASE_OPTICAL)


def fake_tf2_ros(asked):
    class Buffer:
        def can_transform(self, target, source, _time):
            asked.append((target, source))
            return (target, source) == ("base_link", "camera_optical")

        def lookup_transform(self, target, source, _time):
            msg = TransformStamped()
            msg.header.frame_id, msg.child_frame_id = target, source
            msg.transform.translation.z = 0.1
            r = msg.transform.rotation
            r.x, r.y, r.z, r.w = (float(v) for v in Q_XYZW)
            return msg

    class TransformListener:
        def __init__(self, buffer, node, spin_thread=True):
            self.unregistered = False

        def unregister(self):
            self.unregistered = True

    return types.SimpleNamespace(Buffer=Buffer, TransformListener=TransformListener)


def test_the_tf2_ros_lookup_gives_base_from_camera_with_ros_quaternion_order(monkeypatch):
    asked = []
    monkeypatch.setitem(sys.modules, "tf2_ros", fake_tf2_ros(asked))
    node = types.SimpleNamespace(get_logger=lambda: types.SimpleNamespace(warning=print, info=print))
    mount = CameraMount(node, dataclasses.replace(PoseSettings(), camera_mount_timeout_s=5.0))
    found = mount.resolve("camera_optical", 0)
    assert asked[0] == ("base_link", "camera_optical")  # target base, source camera: T_base_camera
    assert found is not None and np.allclose(found[:3, :3], R_BASE_OPTICAL, atol=1e-9), found
    assert np.allclose(found[:3, 3], [0.0, 0.0, 0.1])
    assert mount.state == "/tf_static base_link -> camera_optical"
    mount.destroy()
    assert mount.listener is None


def test_the_base_from_camera_parameter_is_read_x_y_z_w():
    """base_from_camera [x, y, z, qx, qy, qz, qw]: 90 deg about z maps the camera's x onto the base's y. (The
    default, the optical rotation (-0.5, 0.5, -0.5, 0.5), is the same rotation read w-first: no test with it
    can tell the orders apart.)"""
    from fourds_ros.perception.odometry import transform_from_xyz_quat
    s = np.sqrt(0.5)
    m = transform_from_xyz_quat([1.0, 2.0, 3.0, 0.0, 0.0, s, s])
    np.testing.assert_allclose(m[:3, :3] @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(m[:3, 3], [1.0, 2.0, 3.0])
    tilted = transform_from_xyz_quat([0.0, 0.0, 0.0, *Q_XYZW])
    np.testing.assert_allclose(tilted[:3, :3], R_BASE_OPTICAL, atol=1e-12)
