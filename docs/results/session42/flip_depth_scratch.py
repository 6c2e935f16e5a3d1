"""Scratch (session 42): depth averaged with the mirrored clip's (test-time flip), TUM (validation)."""
import sys
import numpy as np
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation import offline
from fourds_ros.evaluation.report import score_depth
from fourds_ros.perception import PerceptionSettings
from fourds_ros import engine as engine_mod

real_create = engine_mod.create_engine
MODE = sys.argv[2]

class Flipped:
    def __init__(self, inner):
        self.inner = inner
    def __getattr__(self, name):
        return getattr(self.inner, name)
    def __call__(self, inputs):
        out = self.inner(inputs)
        if MODE == "off":
            return out
        w = inputs["video"].shape[3]
        mirrored = {"video": np.ascontiguousarray(inputs["video"][:, :, :, ::-1])}
        if "query_points" in inputs:
            q = inputs["query_points"].copy(); q[..., 2] = (w - 1) - q[..., 2]; mirrored["query_points"] = q
        d2 = self.inner(mirrored)["depth"][:, :, :, ::-1]
        out = dict(out)
        out["depth"] = np.exp((np.log(out["depth"]) + np.log(d2)) / 2) if MODE == "geo" else (out["depth"] + d2) / 2
        return out

engine_mod.create_engine = lambda *a, **k: Flipped(real_create(*a, **k))
bag = read_bag(sys.argv[1])
preds = offline.run_offline(bag, "models/fourds_default", "onnxruntime", PerceptionSettings())
out, _ = score_depth(bag, preds, int(sys.argv[3]) if len(sys.argv) > 3 else 0)
print(sys.argv[1], MODE, f"relative {out['abs_rel']:.4f} metric {out['metric']['abs_rel']:.4f}")
