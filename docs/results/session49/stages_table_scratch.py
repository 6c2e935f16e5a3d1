import json, sys, numpy as np
for path in sys.argv[1:]:
    t = json.load(open(path)); n = min(len(t["process"]), 120)
    a = {k: np.array(v[2:n]) * 1e3 for k, v in t.items() if k != "rest_publish"}
    other = a["process"] - a["engine"] - a["refine"] - a["update"] - a["pose"] - (a["depth_publish"] if len(a["depth_publish"]) else 0)
    print(path, "clips", n - 2, " ".join(f"{k} {np.median(v):.1f}" for k, v in a.items() if len(v)), f"other {np.median(other):.1f}")
