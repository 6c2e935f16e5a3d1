"""Scratch (session 47): the shipped default engine alone (ONNX Runtime, CPU, the node's settings) in a
fresh process, 30 clips back to back after 3 warm-up clips, no camera beside: engine ms p50 per process.
Is the engine's speed a lottery drawn per process (the in-process reference read engine 41 or 52 ms in
the same quarter hour)? python engine_process_scratch.py LABEL OUT_JSONL"""
import json
import sys
import time

import numpy as np

from fourds_ros.bench.node import timed_pipeline

label, out = sys.argv[1], sys.argv[2]
pipe, _, _ = timed_pipeline({})
backend = pipe.engine
rng = np.random.default_rng(0)
inputs = {n: rng.random(s, dtype=np.float32) for n, s in backend.spec.input_shapes.items()}
times = []
for i in range(33):
    t0 = time.perf_counter()
    backend.run(inputs)
    if i >= 3:
        times.append((time.perf_counter() - t0) * 1e3)
row = {"label": label, "engine_ms_p50": float(np.median(times)), "engine_ms_min": float(min(times))}
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
print(row, flush=True)
