"""Per-frame intake cost: rclpy deserialisation of a 640x480 rgb8 Image + the node's conversion and add_frame."""
import time, numpy as np
from rclpy.serialization import serialize_message, deserialize_message
from sensor_msgs.msg import Image, CameraInfo
from fourds_ros.ros import convert
rng = np.random.default_rng(0)
arr = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
msg = Image(height=480, width=640, encoding="rgb8", step=640*3, data=arr.tobytes())
raw = serialize_message(msg)
info = CameraInfo(height=480, width=640, k=[500.,0,320,0,500,240,0,0,1])
rawi = serialize_message(info)
def t(f, n=200):
    f(); t0=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-t0)/n*1e3
print("deserialize image ms", t(lambda: deserialize_message(raw, Image)))
print("deserialize info ms", t(lambda: deserialize_message(rawi, CameraInfo)))
m = deserialize_message(raw, Image)
print("type of data", type(m.data))
print("bytes(data) ms", t(lambda: bytes(m.data)))
print("image_to_rgb ms", t(lambda: convert.image_to_rgb(m)))
from fourds_ros.perception.pipeline import PerceptionPipeline
import inspect; print(inspect.signature(PerceptionPipeline.__init__))
