"""Scratch (session 42): what building a clip's messages costs (no DDS), TUM bag, shipped defaults."""
import time
import numpy as np
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.engine import create_engine
from fourds_ros.perception import PerceptionPipeline, PerceptionSettings
from fourds_ros.ros.outputs import OutputMessages

bag = read_bag("/tmp/s37/bags/tum30")
settings = PerceptionSettings()
pipe = PerceptionPipeline(create_engine("models/fourds_default", "onnxruntime"), settings)
outs = OutputMessages(settings)
clips, proc = [], []
for s in bag.stamps:
    clip, _ = pipe.add_frame(bag.images[s], s, "camera", bag.intrinsics(s))
    if clip is not None:
        t0 = time.perf_counter(); res = pipe.process(clip); proc.append(time.perf_counter() - t0)
        clips.append(res)
for name, wanted in (("bench (depth, tracks, odometry)", {"depth", "tracks", "odometry", "depth_info", "pose", "tf"}),
                     ("everything", None)):
    times = []
    for res in clips:
        t0 = time.perf_counter()
        n = sum(1 for _ in outs.build(res, pipe.trails(), (lambda k: wanted is None or k in wanted)))
        times.append(time.perf_counter() - t0)
    print(f"{name}: build p50 {np.median(times)*1e3:.2f} ms/clip ({n} msgs); process p50 {np.median(proc)*1e3:.1f} ms")
from collections import defaultdict
per = defaultdict(list)
for res in clips:
    it = outs.build(res, pipe.trails(), lambda k: True)
    while True:
        t0 = time.perf_counter()
        try:
            key, _ = next(it)
        except StopIteration:
            break
        per[key].append(time.perf_counter() - t0)
print({k: round(sum(v) / len(clips) * 1e3, 2) for k, v in per.items()})
