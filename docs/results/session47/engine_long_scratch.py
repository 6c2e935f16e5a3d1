"""Scratch (session 47): the default engine alone in one process for SECONDS, back to back; engine ms
p50 and min per 5 s window, with the host's CPU steal over the window (/proc/stat). Does one process
switch between the fast and slow engine (the host), or keep the one it drew (the process)?
python engine_long_scratch.py SECONDS OUT_JSON [mlock]"""
import json
import sys
import time

import numpy as np

from fourds_ros.bench.node import timed_pipeline


def steal_jiffies():
    f = open("/proc/stat").readline().split()
    return int(f[8])


seconds, out = float(sys.argv[1]), sys.argv[2]
if len(sys.argv) > 3 and sys.argv[3] == "mlock":  # MCL_CURRENT | MCL_FUTURE: no page of the process paged out
    import ctypes
    import os
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(3) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
pipe, _, _ = timed_pipeline({})
backend = pipe.engine
rng = np.random.default_rng(0)
inputs = {n: rng.random(s, dtype=np.float32) for n, s in backend.spec.input_shapes.items()}
for _ in range(3):
    backend.run(inputs)
rows, end = [], time.time() + seconds
while time.time() < end:
    t_win, s0, times = time.time(), steal_jiffies(), []
    while time.time() - t_win < 5:
        t0 = time.perf_counter()
        backend.run(inputs)
        times.append((time.perf_counter() - t0) * 1e3)
    rows.append({"t": round(t_win - end + seconds, 1), "engine_ms_p50": float(np.median(times)),
                 "engine_ms_min": float(min(times)), "engine_ms": [round(t, 1) for t in times], "steal_jiffies": steal_jiffies() - s0})
    print(rows[-1], flush=True)
json.dump(rows, open(out, "w"), indent=1)
