"""Scratch (session 47): the default engine alone in one process; blocks of 12 runs alternate between
back to back and paced as a 30 Hz camera paces the node's clips (a sleep of 0.19 s before each run, the
cores idle as between the node's clips). Engine ms p50 per mode over all blocks, plus the blocks.
python engine_paced_scratch.py BLOCKS OUT_JSON   (ORT config entries: ort_config_sitecustomize.py)"""
import json
import os
import sys
import time

import numpy as np

from fourds_ros.bench.node import timed_pipeline

blocks, out = int(sys.argv[1]), sys.argv[2]
pipe, _, _ = timed_pipeline({})
engine = pipe.engine
rng = np.random.default_rng(0)
inputs = {n: rng.random(s, dtype=np.float32) for n, s in engine.spec.input_shapes.items()}
for _ in range(3):
    engine.run(inputs)
times = {"back_to_back": [], "paced": []}
rows = []
for b in range(blocks):
    mode = "paced" if b % 2 else "back_to_back"
    got = []
    for _ in range(12):
        if mode == "paced":
            time.sleep(0.19)
        t0 = time.perf_counter()
        engine.run(inputs)
        got.append((time.perf_counter() - t0) * 1e3)
    times[mode] += got
    rows.append({"block": b, "mode": mode, "engine_ms_p50": float(np.median(got))})
summary = {m: float(np.median(v)) for m, v in times.items()}
res = {"ort_config": os.environ.get("FOURDS_SCRATCH_ORT_CONFIG", ""), "summary": summary, "blocks": rows}
json.dump(res, open(out, "w"), indent=1)
print(res["ort_config"], summary, [round(r["engine_ms_p50"], 1) for r in rows], flush=True)
