"""Scratch: what publishing a clip's 7 depth images (32FC1 640x480) costs the publisher, with a subscriber in another process."""
import os, sys, time, subprocess, numpy as np, rclpy
from sensor_msgs.msg import Image
if sys.argv[1:] == ["sub"]:
    rclpy.init(); n = rclpy.create_node("sub"); c = [0]
    n.create_subscription(Image, "depth", lambda m: c.__setitem__(0, c[0] + 1), 10)
    t = time.time()
    while time.time() - t < 25: rclpy.spin_once(n, timeout_sec=0.1)
    print("sub got", c[0]); sys.exit(0)
rclpy.init(); n = rclpy.create_node("pub"); pub = n.create_publisher(Image, "depth", 10)
sub = subprocess.Popen([sys.executable, __file__, "sub"])
while pub.get_subscription_count() == 0: time.sleep(0.1)
time.sleep(1)
for H, W in [(480, 640), (240, 320), (128, 128)]:
    d = np.random.rand(H, W).astype("<f4")
    ts_build, ts_pub = [], []
    for i in range(40):
        t0 = time.perf_counter()
        msgs = [Image(height=H, width=W, encoding="32FC1", step=W * 4, data=d.tobytes()) for _ in range(7)]
        t1 = time.perf_counter()
        for m in msgs: pub.publish(m)
        t2 = time.perf_counter(); ts_build.append(t1 - t0); ts_pub.append(t2 - t1)
        time.sleep(0.2)
    print(H, W, "build ms p50", round(np.median(ts_build) * 1e3, 2), "publish 7 ms p50", round(np.median(ts_pub) * 1e3, 2))
sub.send_signal(2); sub.wait()
