"""What a consumer reads in the node's messages (ros/convert.py, no DDS): TF's and the odometry's
rotation in ROS order x, y, z, w, their frames, the odometry's twist and its covariance, depth_info's
P and K, depth's byte order, depth_points' pixels and colour, stamps to the nanosecond."""

from types import SimpleNamespace

import numpy as np
from transforms3d.euler import euler2mat

from fourds_ros.ros import convert, tf_static

# A rotation whose quaternion has four distinct components (any order mix-up shows), and a translation.
T = np.eye(4)
T[:3, :3] = euler2mat(0.3, -0.5, 1.1)
T[:3, 3] = (1.5, -0.25, 0.75)


def _matrix(translation, rotation) -> np.ndarray:
    return tf_static.matrix_from_ros((translation.x, translation.y, translation.z),
                                     (rotation.x, rotation.y, rotation.z, rotation.w))


def test_stamps_round_trip_to_the_nanosecond():
    ns = 1_700_000_000_123_456_789
    stamp = convert.ns_to_stamp(ns)
    assert (stamp.sec, stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert convert.stamp_to_ns(stamp) == ns


def test_tf_odom_to_base_is_the_transform_in_ros_xyzw_order():
    msg = convert.transform_stamped(T, 5, "odom", "base_link")
    assert (msg.header.frame_id, msg.child_frame_id) == ("odom", "base_link")
    np.testing.assert_allclose(_matrix(msg.transform.translation, msg.transform.rotation), T, atol=1e-9)


def test_odometry_carries_pose_twist_and_their_covariances_where_nav_msgs_puts_them():
    covariance = np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    twist_covariance = np.diag([11.0, 12.0, 13.0, 14.0, 15.0, 16.0])
    est = SimpleNamespace(odom_from_base=T, covariance=covariance, twist=np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
                          twist_covariance=twist_covariance)
    msg = convert.odometry(est, 1_000_000_007, "odom", "base_link")
    assert (msg.header.frame_id, msg.child_frame_id) == ("odom", "base_link")
    assert convert.stamp_to_ns(msg.header.stamp) == 1_000_000_007
    np.testing.assert_allclose(_matrix(msg.pose.pose.position, msg.pose.pose.orientation), T, atol=1e-9)
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    assert (lin.x, lin.y, lin.z, ang.x, ang.y, ang.z) == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    np.testing.assert_array_equal(np.reshape(msg.pose.covariance, (6, 6)), covariance)
    np.testing.assert_array_equal(np.reshape(msg.twist.covariance, (6, 6)), twist_covariance)


def test_depth_info_has_k_row_major_and_p_as_k_with_no_translation():
    """image_geometry's PinholeCameraModel (depth_image_proc, rviz) projects with P, not K."""
    k = np.array([[500.0, 0.0, 319.5], [0.0, 480.0, 239.5], [0.0, 0.0, 1.0]])
    info = convert.camera_info(k, 480, 640, 5, "camera_optical")
    np.testing.assert_array_equal(np.reshape(info.k, (3, 3)), k)
    np.testing.assert_array_equal(np.reshape(info.p, (3, 4)), np.hstack([k, np.zeros((3, 1))]))
    np.testing.assert_array_equal(np.reshape(info.r, (3, 3)), np.eye(3))
    assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
    assert list(convert.camera_info(k, 480, 640, 5, "c", [0.1, -0.2, 0.0, 0.0, 0.05]).d) == [0.1, -0.2, 0.0, 0.0, 0.05]


def test_depth_image_is_little_endian_32fc1_metres():
    depth = np.arange(6, dtype=np.float32).reshape(2, 3)
    msg = convert.depth_image(depth, 5, "camera_optical")
    assert (msg.encoding, msg.is_bigendian, msg.step, msg.height, msg.width) == ("32FC1", 0, 12, 2, 3)
    np.testing.assert_array_equal(np.frombuffer(bytes(msg.data), "<f4").reshape(2, 3), depth)


def test_depth_points_back_project_each_pixel_with_its_own_colour():
    """A non-square image with one valid pixel at row 2, column 5: the point is at its (u, v) = (5, 2),
    coloured 0x00RRGGBB (PCL's rgb field)."""
    k = np.array([[100.0, 0.0, 3.0], [0.0, 80.0, 1.0], [0.0, 0.0, 1.0]])
    depth = np.full((4, 8), np.nan, np.float32)
    depth[2, 5] = 2.0
    rgb = np.zeros((4, 8, 3), np.uint8)
    rgb[2, 5] = (200, 100, 7)
    cloud = convert.read_cloud(convert.depth_points(depth, k, rgb, 1, 5, "camera_optical"))
    assert len(cloud) == 1
    np.testing.assert_allclose([cloud["x"][0], cloud["y"][0], cloud["z"][0]],
                               [(5 - 3.0) / 100.0 * 2.0, (2 - 1.0) / 80.0 * 2.0, 2.0], rtol=1e-6)
    assert int(np.array(cloud["rgb"][0], np.float32).view(np.uint32)) == (200 << 16) | (100 << 8) | 7
