import sys, time, numpy as np
from fourds_ros.evaluation.bag import read_scored_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.evaluation.eval_cli import resolve_model, NODE_BACKEND
from fourds_ros.perception import PerceptionSettings
name = sys.argv[1]
s = PerceptionSettings()
bag = read_scored_bag(f"/tmp/s68/h_fly/bags/{name}", s.inputs)
t = time.time()
p = run_offline(bag, resolve_model(None), NODE_BACKEND, s)
print(name, NODE_BACKEND, p.engine, time.time() - t, len(p.depth))
st = sorted(set(p.depth) & set(bag.gt_depth))
np.savez_compressed(f"/tmp/s68/h_fly/work/{name}.npz", stamps=np.array(st), pred=np.stack([p.depth[x] for x in st]),
    predK=np.stack([p.depth_K[x] for x in st]), gt=np.stack([bag.gt_depth[x] for x in st]),
    gtK=np.stack([bag.gt_intrinsics(x) for x in st]), rng=np.array(p.depth_range))
