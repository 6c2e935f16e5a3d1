"""Scratch: the node's intake -> worker -> pipeline at 60 Hz (overload: clips shed) for N minutes,
without ROS. RSS and tracemalloc's top growth between minute 1 and the end."""
import sys, time, threading, tracemalloc, resource
import numpy as np
from fourds_ros.perception.camera import Calibration
from fourds_ros.perception.health import NodeHealth
from fourds_ros.perception.intake import FrameIntake
from fourds_ros.perception.pipeline import create_pipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.perception.worker import InferenceWorker

minutes, rate = float(sys.argv[1]), float(sys.argv[2])
s = PerceptionSettings.from_params()
pipeline, _ = create_pipeline(s, log=lambda m: None)
health = NodeHealth(lambda m: None)
def run_clip(clip):
    t = time.perf_counter()
    r = pipeline.process(clip)
    health.record_clip([f.stamp_ns for f in r.frames], 0.1, time.perf_counter() - t)
worker = InferenceWorker(run_clip, print, health.counts, s.clip.max_waiting_clips)
intake = FrameIntake(pipeline, worker, health, s)
worker.start()
k = np.array([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])
rng = np.random.default_rng(0)
base = (rng.random((480 + 64, 640 + 64, 3)) * 255).astype(np.uint8)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
tracemalloc.start(10)
t0 = time.monotonic(); n = 0; snap1 = None
while time.monotonic() - t0 < minutes * 60:
    stamp = time.time_ns()
    dx = n % 64
    frame = np.ascontiguousarray(base[dx // 2: dx // 2 + 480, dx: dx + 640])
    intake.push_info(stamp, Calibration(k, (), "", 640, 480))
    intake.push_image(stamp, "cam", lambda f=frame: f.copy(), "rgb8")
    n += 1
    if snap1 is None and time.monotonic() - t0 > 60:
        snap1 = tracemalloc.take_snapshot(); rss1 = rss(); print("minute 1 rss", round(rss1, 1), flush=True)
    if n % int(rate * 60) == 0:
        print("minute", round((time.monotonic() - t0) / 60, 1), "rss", round(rss(), 1), "frames", n, dict(health.counts), flush=True)
    time.sleep(max(0, t0 + n / rate - time.monotonic()))
snap2 = tracemalloc.take_snapshot()
print("end rss", round(rss(), 1))
for st in snap2.compare_to(snap1, "traceback")[:8]:
    print(st)
    for line in st.traceback.format()[-6:]:
        print("   ", line)
worker.stop()
