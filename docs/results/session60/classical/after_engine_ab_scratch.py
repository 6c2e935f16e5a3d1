import sys, time, os
import numpy as np
from fourds_ros import rgbd
from fourds_ros.bench.node import node_pipeline, timed_push
import fourds_ros; tag = os.path.dirname(fourds_ros.__file__)
seq = getattr(rgbd, sys.argv[1])(sys.argv[2])
images = [seq.rgb(i) for i in range(len(seq))]
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 2
after = []; pose = []
for rep in range(reps):
    pipe, _ = node_pipeline({})
    for i, im in enumerate(images):
        t = timed_push(pipe, im, i, seq.intrinsics)
        if t is not None:
            after.append(t[1] - t[2]); pose.append(t[3].get("pose", np.nan))
print(tag.split("/")[-3], "after-engine ms p50 %.1f mean %.1f  pose p50 %.1f" % (1000*np.median(after), 1000*np.mean(after), 1000*np.nanmedian(pose)))
