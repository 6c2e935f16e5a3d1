"""Tracks at hop 7 vs smaller hops on the same first-clip points (same seeds, same ids)."""
import sys
import numpy as np
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.report import score_tracks
from fourds_ros.evaluation.predictions import track_queries
from fourds_ros.perception import PerceptionSettings
from fourds_ros.model.default import default_model_dir

bag = read_bag(sys.argv[1])
model = default_model_dir()
runs = {}
for hop in [int(h) for h in sys.argv[2:]]:
    print('run', hop, flush=True)
    import os, yaml
    extra = {k: yaml.safe_load(v) for k, v in (kv.split('=') for kv in os.environ.get('PARAMS', '').split()) }
    s = PerceptionSettings.from_params(hop=hop, **extra)
    runs[hop] = run_offline(bag, model, "onnxruntime", s)
first = bag.stamps[0]
base = runs[max(runs)]
q_all = track_queries(base.tracks, bag.image_hw)
common = {tid: q for tid, q in q_all.items() if q[0] == first}
for hop, p in runs.items():
    qs = track_queries(p.tracks, bag.image_hw)
    same = sum(1 for tid, q in common.items() if tid in qs and np.allclose(qs[tid][1:], q[1:]))
    sc = score_tracks(bag, p, common)
    print(f"hop {hop}: first-clip points {len(common)} (same query in this run: {same}); AJ {sc['aj']:.4f} "
          f"delta {sc['delta_avg']:.4f} OA {sc['oa']:.4f} within16 {sc['pts_within_16']:.3f}; all points {len(qs)}")

from fourds_ros.evaluation.peers import lk_tracks
from fourds_ros.evaluation.predictions import Predictions
for hop, p in runs.items():
    qs = track_queries(p.tracks, bag.image_hw)
    later = {tid: q for tid, q in qs.items() if q[0] != first}
    lk = lk_tracks(bag.stamps, bag.images, later)
    for name, pr in (("model", p), ("lk", lk)):
        sc = score_tracks(bag, pr, later)
        print(f"hop {hop} later-seeded {len(later)} {name}: AJ {sc['aj']:.4f} delta {sc['delta_avg']:.4f} OA {sc['oa']:.4f} "
              f"w1 {sc['pts_within_1']:.3f} w16 {sc['pts_within_16']:.3f} evaluated {sc['evaluated']}")
