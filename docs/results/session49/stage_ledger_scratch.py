"""Session 49: the ledger of the node's clip against the in-process pipeline, stage by stage (medians over
the rows of stage_rows.sh: the node's live 30 Hz rows, raw and JPEG, and the references timed around them)."""
import glob
import json
import sys

import numpy as np

root = sys.argv[1] if len(sys.argv) > 1 else "stages"
STAGES = ("engine", "refine", "update", "pose", "epipolar")


def medians(path):
    t = json.load(open(path))
    n = min(len(t["process"]), 120)  # the node's 30 s live step: the first ~128 clips
    a = {k: np.array(v[2:n]) * 1e3 for k, v in t.items() if k != "rest_publish" and v}
    # what process() does besides the named stages (preprocessing, queries, depth outputs), clip by clip
    a["other"] = a["process"] - sum(a[k] for k in ("engine", "refine", "update", "pose", "depth_publish") if k in a)
    return {k: float(np.median(v)) for k, v in a.items()}


refs = [medians(p) for p in sorted(glob.glob(f"{root}/ref*.json"))]
nodes = [medians(p) for p in sorted(glob.glob(f"{root}/node_*.json"))]
benches = [[r for r in json.load(open(p))["rows"] if r["step"] == "live"][0]
           for p in sorted(glob.glob(f"{root}/bench_node_*.json"))]
ref = {k: float(np.median([r[k] for r in refs])) for k in ("process", *STAGES, "other")}
node = {k: float(np.median([r[k] for r in nodes])) for k in ("process", *STAGES, "depth_publish", "other")}
clip = float(np.median([b["clip_latency_ms_p50"] for b in benches]))
publish = float(np.median([b["process_publish_ms"] for b in benches]))
print(f"{'part':34s} {'node ms':>8s} {'in process ms':>14s} {'node adds ms':>12s}")
for k in STAGES:
    print(f"{k + (' (within pose)' if k == 'epipolar' else ''):34s} {node[k]:8.1f} {ref[k]:14.1f} {node[k] - ref[k]:12.1f}")
rest, rest_ref = node["other"], ref["other"]
print(f"{'depth sent (inside process)':34s} {node['depth_publish']:8.1f} {0:14.1f} {node['depth_publish']:12.1f}")
print(f"{'rest of process (preprocess, ...)':34s} {rest:8.1f} {rest_ref:14.1f} {rest - rest_ref:12.1f}")
print("(each line a median over clips and rows, so the parts need not add up to process)")
print(f"{'process':34s} {node['process']:8.1f} {ref['process']:14.1f} {node['process'] - ref['process']:12.1f}")
print(f"{'tracks, odometry, TF sent':34s} {publish - node['process']:8.1f} {0:14.1f} {publish - node['process']:12.1f}")
print(f"{'newest frame stamp -> clip started':34s} {clip - publish:8.1f} {0:14.1f} {clip - publish:12.1f}")
print(f"{'node clip (stamp -> all sent)':34s} {clip:8.1f} {ref['process']:14.1f} {clip - ref['process']:12.1f}"
      f"  (+{100 * (clip / ref['process'] - 1):.0f} %)")
print(f"rows: {len(nodes)} node, {len(refs)} reference")
