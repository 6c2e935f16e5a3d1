"""Scratch (session 46): the node under bench node's live 30 Hz raw camera, its outputs subscribed by
the camera's process (as bench node runs it) or not (the probe then reads /diagnostics only): does
delivering depth, tracks and odometry to another process slow the node's engine?
python no_output_subscriber_scratch.py ROUNDS OUT_JSON"""
import json
import sys
import tempfile
from pathlib import Path

from fourds_ros.bench.node import OUTPUTS, source
from fourds_ros.ros.harness import ros_env, run_node

rounds, out = int(sys.argv[1]), Path(sys.argv[2])
env = ros_env(88, "")
plan = [{"wait_for": "/diagnostics", "timeout": 180}, {"wait_for_subscribers": ["image", "camera_info"], "timeout": 120},
        {"frames": 600, "rate": 30.0, "source": source(), "encoding": "rgb8", "size": [480, 640]},
        {"wait_idle": True, "timeout": 30}]
rows = []
with tempfile.TemporaryDirectory() as tmp:
    for r in range(rounds):
        for mode in (("outputs", "diagnostics_only") if r % 2 == 0 else ("diagnostics_only", "outputs")):
            topics = [*OUTPUTS, "/diagnostics"] if mode == "outputs" else ["/diagnostics"]
            run = run_node(plan, {"diagnostics_period_s": 0.5}, Path(tmp) / f"{r}_{mode}", env, probe_timeout_s=300,
                           probe_topics=topics)
            v = run.last_diagnostics()["values"]
            row = {"round": r, "mode": mode, **{k: v[k] for k in ("inference_latency_ms", "clip_latency_p50_ms",
                                                                   "process_publish_ms", "frames_in", "frames_out")}}
            rows.append(row)
            print(json.dumps(row), flush=True)
out.write_text(json.dumps(rows, indent=1))
