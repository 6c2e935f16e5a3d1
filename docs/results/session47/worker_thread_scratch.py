"""Scratch (session 47): does the in-process pipeline's engine slow down when it runs on a worker thread
(as the node's does, perception/worker.py) instead of the process's main thread? Beside the 30 Hz camera
(bench node's reference, pipeline_beside_camera_ms), nobody subscribed.
python worker_thread_scratch.py main|worker OUT_JSON"""
import json
import sys
import tempfile
import threading
from pathlib import Path

from fourds_ros.bench.node import pipeline_beside_camera_ms
from fourds_ros.ros.harness import ros_env

mode, out = sys.argv[1], Path(sys.argv[2])
env = ros_env(87, "")
res = {}


def run():
    with tempfile.TemporaryDirectory() as tmp:
        res.update(pipeline_beside_camera_ms({}, 30.0, 12.0, Path(tmp), env))


if mode == "main":
    run()
else:
    t = threading.Thread(target=run, name="fourds_infer")
    t.start()
    t.join()
res.update(mode=mode)
out.write_text(json.dumps(res))
print(json.dumps(res), flush=True)
