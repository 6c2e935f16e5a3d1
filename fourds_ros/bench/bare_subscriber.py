"""A process that subscribes to the camera as the perception node does and does nothing else.

`fourds-ros bench node --beside-subscriber` times the in-process pipeline beside the camera's
process and this one: the CPU that receiving 640x480 frames over DDS takes from the engine on a
small computer, whoever receives them. What the node adds over that reference is its own work
(intake, preprocessing, publishing, its threads). Run as
`python -m fourds_ros.bench.bare_subscriber --seconds S [--transport raw|jpeg] [--qos DEFAULT]`;
prints {"image": N, "camera_info": M} (messages received) as JSON when done or stopped (SIGINT).
"""

from __future__ import annotations

import argparse
import json
import time

from ..argtypes import positive_float


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSPresetProfiles
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    parser = argparse.ArgumentParser(prog="python -m fourds_ros.bench.bare_subscriber", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=positive_float, required=True, help="how long to receive")
    parser.add_argument("--transport", default="raw", choices=["raw", "jpeg"])
    parser.add_argument("--qos", default="DEFAULT", help="QoS preset, as the node's image_qos")
    args = parser.parse_args(argv)
    rclpy.init()
    node = rclpy.create_node("fourds_bare_subscriber")
    counts = {"image": 0, "camera_info": 0}

    def count(name):
        def received(_msg):
            counts[name] += 1
        return received

    qos = QoSPresetProfiles[args.qos].value
    raw = args.transport == "raw"
    node.create_subscription(Image if raw else CompressedImage, "image" if raw else "image/compressed",
                             count("image"), qos)
    node.create_subscription(CameraInfo, "camera_info", count("camera_info"), qos)
    end = time.monotonic() + args.seconds
    try:
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):  # SIGINT / SIGTERM: stopped early, still report
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
