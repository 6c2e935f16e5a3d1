"""Exploration (session 49): how much would averaging a frame's depth over every clip that holds it
give? Every 8-frame window of a recording through the shipped engine (hop 1); each frame's depth
taken (a) as the shipped node does (hop 7: a clip's last 7 frames, the first clip's all 8), (b) as
the last frame of its own window (a causal hop-1 node), (c) the geometric mean over all windows
holding it (up to 8 positions), (d) the middle positions only (3-4 of 8). Scored like `eval`:
median-scaled and metric AbsRel per frame against the recording's depth (edges eroded for the
kitchen), mean over frames.

usage: python window_ensemble_scratch.py ROOT [ROOT ...]   (7-Scenes / HoloLens / TUM folders)
"""

import sys
from collections import defaultdict

import numpy as np

from fourds_ros.engine import create_engine
from fourds_ros.evaluation.metrics import depth_errors, mean_depth_errors
from fourds_ros.model.default import default_model_dir
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.rgbd import read_sequence

engine = create_engine(default_model_dir(), backend="torch")
pipe = PerceptionPipeline(engine, PerceptionSettings())
T = engine.config.num_frames
for root in sys.argv[1:]:
    seq = read_sequence(root)
    erode = 10 if "7scenes" in root else 0
    n = len(seq)
    rgb = [seq.rgb(i) for i in range(n)]
    pmap = pipe.preprocess.pixel_map(rgb[0].shape[:2])
    k_model = pmap.transform_k(seq.intrinsics)
    video = np.stack([pipe.preprocess(x) for x in rgb])
    by_frame = defaultdict(dict)  # frame -> {position in window: depth}
    for s in range(n - T + 1):
        inputs = {"video": video[None, s:s + T]}
        if pipe.takes_queries:
            inputs["query_points"] = np.zeros((1, engine.spec.num_queries, 3), np.float32)
        depth = pipe._model_depth(engine(inputs), k_model[0, 0])
        for t in range(T):
            by_frame[s + t][t] = depth[t]
    shipped = {}
    for s in range(0, n - T + 1, T - 1):  # hop 7
        for t in range(T if s == 0 else 1, T):
            shipped[s + t] = by_frame[s + t][t]
    ways = {"shipped (hop 7)": shipped,
            "last of own window": {f: d[T - 1] for f, d in by_frame.items() if T - 1 in d},
            "geometric mean, all windows": {f: np.exp(np.nanmean(np.log(np.stack(list(d.values()))), 0))
                                            for f, d in by_frame.items()},
            "middle positions (3, 4)": {f: np.exp(np.nanmean(np.log(np.stack([d[t] for t in (3, 4) if t in d])), 0))
                                        for f, d in by_frame.items() if 3 in d or 4 in d}}
    frames = sorted(shipped)  # scored on the same frames
    gt = {f: seq.depth(f) for f in frames}
    print(f"{root}: {len(frames)} frames scored")
    for name, pred in ways.items():
        rel = mean_depth_errors([depth_errors(pred[f], gt[f], True, erode, pred_K=k_model, gt_K=seq.intrinsics)
                                 for f in frames if f in pred])
        met = mean_depth_errors([depth_errors(pred[f], gt[f], False, erode, pred_K=k_model, gt_K=seq.intrinsics)
                                 for f in frames if f in pred])
        print(f"  {name:30s} relative {rel['abs_rel']:.4f}  metric {met['abs_rel']:.4f}  ({rel['frames']} frames)")
