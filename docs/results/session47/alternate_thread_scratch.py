"""Scratch (session 47): one process, one pipeline (created on the main thread, as the node creates it
at configure), clips back to back; blocks of 12 clips alternate between the main thread and a persistent
worker thread fed by a queue (as perception/worker.py runs the node's clips). No camera beside.
Engine ms p50 per block. python alternate_thread_scratch.py BLOCKS OUT_JSON"""
import json
import queue
import sys
import threading
import time
from pathlib import Path

import numpy as np

from fourds_ros.bench.node import _frames, _push, timed_pipeline
from fourds_ros.ros.probe import back_and_forth

blocks, out = int(sys.argv[1]), Path(sys.argv[2])
pipe, _, _ = timed_pipeline({})
images, k = _frames(64, (480, 640))
state = {"i": 0}


def block(n_clips=12):
    got = []
    while len(got) < n_clips:
        t = _push(pipe, back_and_forth(images, state["i"]), state["i"], k)
        state["i"] += 1
        if t is not None:
            got.append(t[2] * 1e3)
    return got


jobs, done = queue.Queue(), queue.Queue()
threading.Thread(target=lambda: [done.put(block()) for _ in iter(jobs.get, None)], daemon=True).start()
block()  # warm-up
rows = []
for b in range(blocks):
    where = "main" if b % 2 == 0 else "worker"
    if where == "main":
        eng = block()
    else:
        jobs.put(1)
        eng = done.get()
    rows.append({"block": b, "thread": where, "engine_ms_p50": float(np.median(eng))})
    print(rows[-1], flush=True)
summary = {w: float(np.median([r["engine_ms_p50"] for r in rows if r["thread"] == w])) for w in ("main", "worker")}
out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
print(summary)
