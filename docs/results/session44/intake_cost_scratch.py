"""Per-frame intake cost by camera size: CDR bytes -> rclpy Image -> numpy RGB -> pipeline.add_frame."""
import time, sys
import numpy as np
from rclpy.serialization import serialize_message, deserialize_message
from sensor_msgs.msg import Image
from fourds_ros.ros import convert
from fourds_ros.ros.probe import load_frames
from fourds_ros.perception.pipeline import create_pipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.bench.node import source, pipeline_clip_ms
budget = int(sys.argv[1]) if len(sys.argv) > 1 else None
for size in ((480, 640), (720, 1280), (1080, 1920)):
    frames, k = load_frames(source(), size, 24)
    params = {} if budget is None else {"work_image_max_pixels": budget}
    pipe, _ = create_pipeline(PerceptionSettings.from_params(params), log=lambda *_: None)
    t = {"deserialize": [], "to_rgb": [], "add_frame": []}
    for i, rgb in enumerate(frames):
        data, step = rgb.tobytes(), rgb.shape[1] * 3
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=step, data=data)
        raw = serialize_message(msg)
        t0 = time.perf_counter(); m = deserialize_message(raw, Image); t1 = time.perf_counter()
        arr = convert.image_to_rgb(m); t2 = time.perf_counter()
        pipe.add_frame(arr, i * 33_333_333, "cam", k); t3 = time.perf_counter()
        if i >= 4:
            t["deserialize"].append(t1 - t0); t["to_rgb"].append(t2 - t1); t["add_frame"].append(t3 - t2)
    print(size, {n: round(1e3 * float(np.median(v)), 2) for n, v in t.items()})
