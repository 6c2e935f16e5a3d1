"""Scratch: does a plain rclpy subscriber's queue time (callback - DDS reception) grow after minutes?"""
import sys, time, threading
import numpy as np
import rclpy
from rclpy.qos import QoSPresetProfiles
from sensor_msgs.msg import Image, CameraInfo
role, seconds = sys.argv[1], float(sys.argv[2])
rclpy.init()
node = rclpy.create_node(f"q_{role}")
qos = QoSPresetProfiles.DEFAULT.value
if role == "pub":
    pub = node.create_publisher(Image, "image", qos); info = node.create_publisher(CameraInfo, "camera_info", qos)
    arr = np.random.randint(0, 255, (480, 640, 3), np.uint8)
    msg = Image(height=480, width=640, encoding="rgb8", step=1920); msg.data = arr.tobytes()
    t0 = time.monotonic(); n = 0
    while time.monotonic() - t0 < seconds:
        st = node.get_clock().now().to_msg(); msg.header.stamp = st
        info.publish(CameraInfo(header=msg.header)); pub.publish(msg); n += 1
        end = t0 + n / 30
        while time.monotonic() < end: rclpy.spin_once(node, timeout_sec=max(0, end - time.monotonic()))
else:
    work_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 0
    q = []
    def cb(m, inf):
        q.append((time.time_ns() - inf["received_timestamp"]) / 1e6)
        if work_ms: 
            a = np.frombuffer(m.data, np.uint8).reshape(480, 640, 3); t = time.perf_counter()
            while time.perf_counter() - t < work_ms / 1e3: a[::4, ::4].mean()
    node.create_subscription(Image, "image", cb, qos)
    node.create_subscription(CameraInfo, "camera_info", lambda m: None, qos)
    node.create_timer(0.05, lambda: None)
    stop = [False]
    if len(sys.argv) > 4:  # a second thread holding the GIL in bursts, as inference's Python parts do
        def burn():
            while not stop[0]:
                t = time.perf_counter()
                while time.perf_counter() - t < 0.05: sum(range(1000))
                time.sleep(0.1)
        threading.Thread(target=burn, daemon=True).start()
    t0 = time.monotonic(); last = t0
    from rclpy.executors import SingleThreadedExecutor
    ex = SingleThreadedExecutor(); ex.add_node(node)
    while time.monotonic() - t0 < seconds:
        ex.spin_once(timeout_sec=0.5)
        if time.monotonic() - last >= 60:
            last = time.monotonic(); a = np.array(q); q.clear()
            print(f"{(last - t0)/60:.0f} min: {a.size} frames, queue p50 {np.percentile(a,50):.1f} p95 {np.percentile(a,95):.1f} max {a.max():.0f} ms", flush=True)
    stop[0] = True
node.destroy_node(); rclpy.shutdown()
