import sys, time, json
sys.path.insert(0, "/work/main")
sys.path.insert(0, "/tmp/s40"); import anchor  # noqa
from fourds_ros.evaluation.badja import model_tracker, score_badja_folders
from fourds_ros.evaluation.eval_cli import resolve_model
t0 = time.time()
tr = model_tracker(resolve_model(None), track_refinement=sys.argv[1] if len(sys.argv) > 1 else "flow")
res = score_badja_folders(["/work/shared/data/badja_camel_dog_bear", "/work/shared/data/davis_horsejump-high_badja"], {"fourds": tr, "lk": None})
for name, r in res.items():
    print(name, round(r["pck"], 4), {c: (round(v["pck"], 4), v.get("tracker_counts")) for c, v in r["per_clip"].items()})
print("s", time.time() - t0)
