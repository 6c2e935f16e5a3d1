# Exploration shim (session 49): per-stage times of each clip inside the perception node's process,
# written as JSON at exit to $FOURDS_STAGE_TIMES. Only in the node's process.
import os
import sys

if os.environ.get("FOURDS_STAGE_TIMES") and any("fourds_perception" in a for a in sys.argv):
    import atexit
    import json
    import time

    from fourds_ros.perception import pipeline as _pl
    from fourds_ros.perception.tracks import TrackManager
    from fourds_ros.ros import outputs as _out

    times = {"process": [], "engine": [], "refine": [], "update": [], "pose": [], "epipolar": [],
             "depth_publish": [], "rest_publish": []}

    def wrap(owner, name, key):
        method = getattr(owner, name)

        def call(*args, **kwargs):
            t0 = time.perf_counter()
            out = method(*args, **kwargs)
            times[key].append(time.perf_counter() - t0)
            if key == "process":
                times["engine"].append(out.inference_s)
            return out
        setattr(owner, name, call)

    wrap(_pl.PerceptionPipeline, "process", "process")
    wrap(_pl.PerceptionPipeline, "_poses", "pose")
    wrap(_pl.PerceptionPipeline, "_epipolar", "epipolar")
    wrap(TrackManager, "refine", "refine")
    wrap(TrackManager, "update", "update")
    wrap(_out.DepthFirst, "__call__", "depth_publish")
    wrap(_out.OutputMessages, "publish", "rest_publish")
    atexit.register(lambda: json.dump(times, open(os.environ["FOURDS_STAGE_TIMES"], "w")))
