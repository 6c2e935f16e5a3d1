"""Scratch (session 46): the in-process pipeline, paced, beside the 30 Hz camera's process (bench node's
reference, pipeline_beside_camera_ms), in a process that
  none:      never imports rclpy (bench node's reference);
  spinning:  also has an rclpy node with no subscription spun by a SingleThreadedExecutor on a thread;
  receiving: ... whose node receives every frame (sensor_msgs/Image + camera_info, DEFAULT QoS, the
             frame's bytes read as the node reads them).
Does receiving the stream in the pipeline's own process slow its engine as the node's does?
python receive_in_process_scratch.py MODE OUT_JSON"""
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

from fourds_ros.bench.node import pipeline_beside_camera_ms
from fourds_ros.ros.harness import ros_env

mode, out = sys.argv[1], Path(sys.argv[2])
env = ros_env(86, "")
got = {"image": 0}
if mode != "none":
    os.environ.update({k: v for k, v in env.items() if k.startswith(("ROS_", "FASTDDS", "RMW"))})
    import numpy as np
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSPresetProfiles
    from sensor_msgs.msg import CameraInfo, Image

    def on_image(msg):
        got["image"] += 1
        np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)  # as convert.image_for_work reads it

    rclpy.init()
    node = rclpy.create_node("receiver")
    if mode == "receiving":
        qos = QoSPresetProfiles.DEFAULT.value
        node.create_subscription(Image, "image", on_image, qos)
        node.create_subscription(CameraInfo, "camera_info", lambda m: None, qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
with tempfile.TemporaryDirectory() as tmp:
    res = pipeline_beside_camera_ms({}, 30.0, 12.0, Path(tmp), env)
res.update(mode=mode, received=got["image"])
out.write_text(json.dumps(res))
print(json.dumps(res), flush=True)
os._exit(0)  # the executor thread is a daemon; rclpy's context ends with the process
