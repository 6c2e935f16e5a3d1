"""Exploration (session 38): each essential matrix the pipeline solves (first-last and stepwise),
its median translational parallax and the distance its rotation alone moves the corners, with the
guess on; run from frame 0 (one start). Usage: turn_scratch.py BAG_NAME [eval args...]"""
import json
import sys

import numpy as np

sys.path.insert(0, "/work/main")
from fourds_ros import cli  # noqa: E402
from fourds_ros.perception import epipolar, pipeline  # noqa: E402

orig = epipolar.essential_motion
seen = []


def patched(x0, x1, k, expected_rotation=None):
    m = orig(x0, x1, k, expected_rotation)
    seen.append(None if m is None else (m.parallax_px, m.turn_px, int(len(x0))))
    return m


epipolar.essential_motion = patched
pipeline.essential_motion = patched
name = sys.argv[1]
cli.main(["eval", f"/tmp/s37/bags/{name}", "--offline", "--out", f"/tmp/s38/turn/{name}", *sys.argv[2:]])
a = np.array([s[:2] for s in seen if s is not None])
print(f"{name}: solved {len(seen)}, measured {len(a)}; parallax/turn ratio "
      + " ".join(f"{r:.3f}" for r in sorted(a[:, 0] / np.maximum(a[:, 1], 1e-9))[:12]) + " ...")
json.dump(seen, open(f"/tmp/s38/turn/{name}.json", "w"))
