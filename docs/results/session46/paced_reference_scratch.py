"""Scratch (session 46): the in-process pipeline's clip and engine time with clips back to back (the
node bench's reference) and paced as a live 30 Hz camera paces them (a clip every hop / 30 s, the
core idle in between), alternated in blocks: python paced_reference_scratch.py [ROUNDS]"""
import json
import sys
import time

import numpy as np

from fourds_ros.bench.node import _frames, _push, timed_pipeline

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
pipe, backend, _ = timed_pipeline({})
images, k = _frames(64, (480, 640))
period = pipe.hop / 30.0
out = {"backend": backend, "hop": pipe.hop, "period_s": period, "rows": []}
i = 0
for r in range(rounds):
    for mode in (("back_to_back", "paced") if r % 2 == 0 else ("paced", "back_to_back")):
        process, engine = [], []
        t_next = time.perf_counter()
        while len(process) < 16:
            timing = _push(pipe, images[i % len(images)], i, k)
            i += 1
            if timing is None:
                continue
            process.append(timing[1] * 1e3)
            engine.append(timing[2] * 1e3)
            if mode == "paced":
                t_next += period
                time.sleep(max(0.0, t_next - time.perf_counter()))
        row = {"round": r, "mode": mode, "pipeline_ms_p50": float(np.median(process[1:])),
               "engine_ms_p50": float(np.median(engine[1:]))}
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
print(json.dumps(out))
