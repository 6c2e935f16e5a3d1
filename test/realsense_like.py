"""A camera driver stand-in for test_install_node: publishes like realsense2_camera and records
what the perception node answers. Run as `python test/realsense_like.py OUT.json FRAMES RATE`.

Like realsense2_camera (color stream, default settings): 640x480 rgb8 on
/camera/color/image_raw with SYSTEM_DEFAULT QoS (its image_qos default), the image_transport
sibling /camera/color/image_raw/compressed (JPEG), /camera/color/camera_info with DEFAULT QoS,
header.stamp = now and frame_id camera_color_optical_frame; and, latched on /tf_static, its own
camera_link -> camera_color_frame -> camera_color_optical_frame plus the base_link -> camera_link
mount that a robot's URDF (robot_state_publisher) gives."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.qos import qos_profile_system_default
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

FRAMES_DIR = Path(__file__).resolve().parents[1] / "samples" / "hololens_000" / "images"
FRAME_ID = "camera_color_optical_frame"
WIDTH, HEIGHT = 640, 480


def load_frames(count: int) -> list[np.ndarray]:
    """The sample's frames at 640x480 RGB, played forwards then backwards (no jump in motion)."""
    frames = [cv2.cvtColor(cv2.resize(cv2.imread(str(p)), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA),
                           cv2.COLOR_BGR2RGB) for p in sorted(FRAMES_DIR.glob("*.jpg"))]
    loop = frames + frames[::-1]
    return [loop[i % len(loop)] for i in range(count)]


def camera_info(stamp, fx: float = 615.0) -> CameraInfo:
    info = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model="plumb_bob", d=[0.0] * 5)
    info.header.stamp, info.header.frame_id = stamp, FRAME_ID
    info.k = [fx, 0.0, WIDTH / 2, 0.0, fx, HEIGHT / 2, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, WIDTH / 2, 0.0, 0.0, fx, HEIGHT / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    return info


def spin_until(node, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not condition():
        rclpy.spin_once(node, timeout_sec=0.05)
    return condition()


def main(out_path: str, count: int, rate_hz: float) -> int:
    rclpy.init()
    node = rclpy.create_node("realsense_like_camera")
    raw = node.create_publisher(Image, "/camera/color/image_raw", qos_profile_system_default)
    compressed = node.create_publisher(CompressedImage, "/camera/color/image_raw/compressed",
                                       qos_profile_system_default)
    info_pub = node.create_publisher(CameraInfo, "/camera/color/camera_info", 10)
    from fourds_ros.ros.tf_static import make_transform, publish_static

    optical = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], float)  # REP-103
    mount = np.eye(4)
    mount[:3, 3] = (0.2, 0.0, 0.5)  # the camera 20 cm ahead of and 50 cm above the base
    broadcaster = publish_static(node, [make_transform("base_link", "camera_link", mount),  # noqa: F841
                                        make_transform("camera_link", "camera_color_frame", np.eye(4)),
                                        make_transform("camera_color_frame", FRAME_ID, optical)])
    seen = {"depth": [], "odometry": [], "diagnostics": 0, "camera_mount": ""}
    stamp_ns = lambda m: m.header.stamp.sec * 10**9 + m.header.stamp.nanosec  # noqa: E731
    depth = node.create_subscription(Image, "/depth/image", lambda m: seen["depth"].append(stamp_ns(m)), 50)
    odometry = node.create_subscription(Odometry, "/odometry", lambda m: seen["odometry"].append(stamp_ns(m)), 50)

    def on_diagnostics(msg):
        seen["diagnostics"] = 1
        for status in msg.status:
            seen["camera_mount"] = next((kv.value for kv in status.values if kv.key == "camera_mount"),
                                        seen["camera_mount"])

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    # The node is up (model loaded, active) when it reports diagnostics and subscribes to a transport and to
    # camera_info, and our recorders have matched its depth and odometry publishers (a frame sent or described
    # before a match is lost: the subscriptions come one after another, discovery is slower on a loaded host).
    ready = spin_until(node, lambda: seen["diagnostics"] and (raw.get_subscription_count()
                                                              or compressed.get_subscription_count())
                       and info_pub.get_subscription_count() and depth.get_publisher_count()
                       and odometry.get_publisher_count(), 180)
    published = []
    for frame in load_frames(count) if ready else []:
        stamp = node.get_clock().now().to_msg()
        msg = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3, data=frame.tobytes())
        msg.header.stamp, msg.header.frame_id = stamp, FRAME_ID
        jpeg = CompressedImage(format="rgb8; jpeg compressed bgr8",
                               data=cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))[1].tobytes())
        jpeg.header = msg.header
        raw.publish(msg)
        compressed.publish(jpeg)
        info_pub.publish(camera_info(stamp))
        published.append(stamp_ns(msg))
        spin_until(node, lambda: False, 1.0 / rate_hz)
    spin_until(node, lambda: set(published) <= set(seen["odometry"]) and set(published) <= set(seen["depth"]), 30)
    spin_until(node, lambda: False, 1.5)  # one more /diagnostics with the mount's final state
    Path(out_path).write_text(json.dumps({"ready": bool(ready), "published": published, **seen}))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
