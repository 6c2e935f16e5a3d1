"""Scratch (session 47): does what a clip shows change the engine's time? The default engine alone,
blocks alternated between inputs: uniform random frames, the bench's real frames as the pipeline
feeds them (with their chained query points), and a black clip. With ONNX Runtime's
`session.set_denormal_as_zero` (ort_config_sitecustomize.py) or not.
python engine_inputs_scratch.py BLOCKS OUT_JSON"""
import json
import os
import sys
import time

import numpy as np

from fourds_ros.bench.node import _frames, timed_pipeline
from fourds_ros.ros.probe import back_and_forth

blocks, out = int(sys.argv[1]), sys.argv[2]
pipe, _, _ = timed_pipeline({})
engine = pipe.engine
captured = []
run = engine.run
engine.run = lambda inputs: (captured.append({k: v.copy() for k, v in inputs.items()}), run(inputs))[1]
images, k = _frames(64, (480, 640))
i = 0
while len(captured) < 6:
    pipe.add_frame(back_and_forth(images, i), i * 33_333_333, "camera_optical", k)
    clip, _ = None, None
    i += 1
    c, _ = pipe.add_frame(back_and_forth(images, i), i * 33_333_333, "camera_optical", k)
    if c is not None:
        pipe.process(c)
engine.run = run
real = captured[-1]
rng = np.random.default_rng(0)
inputs = {"random": {n: rng.random(v.shape, dtype=np.float32) for n, v in real.items()},
          "real": real,
          "black": {n: (np.zeros_like(v) if n == "video" else v) for n, v in real.items()}}
times = {n: [] for n in inputs}
for b in range(blocks):
    for name, x in inputs.items():
        for _ in range(8):
            t0 = time.perf_counter()
            engine.run(x)
            times[name].append((time.perf_counter() - t0) * 1e3)
res = {"ort_config": os.environ.get("FOURDS_SCRATCH_ORT_CONFIG", ""),
       "engine_ms_p50": {n: float(np.median(t)) for n, t in times.items()}}
json.dump(res, open(out, "w"), indent=1)
print(res, flush=True)
