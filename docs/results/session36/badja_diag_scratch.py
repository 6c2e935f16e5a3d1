"""Scratch (session 36): where the flow tracker loses PCK on BADJA (validation): per annotated frame,
ours against LK, and the error growth. Run: python docs/results/session36/badja_diag_scratch.py"""
import json
import sys

import numpy as np

from fourds_ros.evaluation.badja import find_clips, model_tracker, score_badja
from fourds_ros.evaluation.datasets import load_badja
from fourds_ros.model.default import default_model_dir

folders = ["../shared/data/davis_horsejump-high_badja", "../shared/data/badja_camel_dog_bear"]
tracker = model_tracker(default_model_dir(), "onnxruntime" if "--ort" in sys.argv else "torch",
                        track_refinement="flow")
out = {}
for clip in find_clips(folders):
    b = load_badja(clip)
    ours, lk = score_badja(b, tracker), score_badja(b, None)
    rows = []
    for f in sorted(ours["per_frame"]):
        rows.append((f, ours["per_frame"][f]["pck"], lk["per_frame"][f]["pck"], ours["per_frame"][f]["points"]))
    out[clip.name] = {"ours": ours["pck"], "lk": lk["pck"], "counts": ours.get("tracker_counts"), "frames": rows}
    print(clip.name, f"ours {ours['pck']:.3f} lk {lk['pck']:.3f}", ours.get("tracker_counts"))
    for f, a, c, n in rows:
        print(f"  frame {f:3d} ours {a:.2f} lk {c:.2f} points {n}")
json.dump(out, open("/tmp/badja_diag.json", "w"), indent=1, default=float)
