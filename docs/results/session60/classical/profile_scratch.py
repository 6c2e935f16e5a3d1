import cProfile, pstats, sys, time
import numpy as np
sys.path.insert(0, "tools")
from fourds_ros import rgbd
from fourds_ros.bench.node import node_pipeline, timed_push
seq = getattr(rgbd, sys.argv[1])(sys.argv[2])
images = [seq.rgb(i) for i in range(len(seq))]
pipe, _ = node_pipeline({})
st = {}
def run():
    for i, im in enumerate(images):
        t = timed_push(pipe, im, i, seq.intrinsics)
        if t is not None:
            for k, v in t[3].items(): st.setdefault(k, []).append(v)
run()  # warm
pipe, _ = node_pipeline({}); st.clear()
pr = cProfile.Profile(); pr.enable(); run(); pr.disable()
print({k: round(1000*float(np.median(v)),1) for k, v in st.items()}, len(st.get("pose", [])))
pstats.Stats(pr).sort_stats("tottime").print_stats(30)
