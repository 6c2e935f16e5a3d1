"""Scratch (session 45): the in-process pipeline per clip with the tracks' LK window 21 / 31 / 41, interleaved."""
import json
import fourds_ros.perception.track_refine as tr
from fourds_ros.bench.node import pipeline_clip_ms
orig = tr.lk_step
W = {"w": 21}
def lk_step(previous, image, uv, window=tr.LK_WINDOW, levels=tr.LK_LEVELS, *a, **kw):
    return orig(previous, image, uv, W["w"], levels, *a, **kw)
tr.lk_step = lk_step
out = {}
for w in (21, 31, 41, 21, 31, 41):
    W["w"] = w
    row = pipeline_clip_ms({}, 64)
    out.setdefault(w, []).append({k: round(v, 2) for k, v in row.items() if k.endswith("p50")})
    print(w, out[w][-1], flush=True)
json.dump(out, open("lk_window_pipeline_clip_ms.json", "w"), indent=1)
