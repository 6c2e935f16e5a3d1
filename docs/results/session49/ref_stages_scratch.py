# in-process reference (bench node's pipeline_clip_ms, shipped params) with the node shim's class-level stage wrappers
import importlib
import json
import os
import sys

os.environ["FOURDS_STAGE_TIMES"] = sys.argv[1]
sys.argv.append("fourds_perception")  # the shim installs itself only in "the node"
sys.path.insert(0, os.environ.get("SHIM_DIR", "/tmp/s49/shim"))  # holds stage_times_sitecustomize.py as sitecustomize.py
importlib.import_module("sitecustomize")
from fourds_ros.bench.node import pipeline_clip_ms  # noqa: E402

print(json.dumps(pipeline_clip_ms({}, int(sys.argv[2]))))
