import time, numpy as np
from fourds_ros.engine import create_engine
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.rgbd import read_tum
import fourds_ros.perception.pipeline as pl
eng=create_engine('/work/main/models/fourds_default', backend='onnxruntime')
seq = read_tum('/work/shared/data/tum_fr1_rpy_f000-079')
imgs=[seq.rgb(i) for i in range(80)]
for stride in (3,1):
  for rep in range(2):
    for corners in (0,200):
        t_pose=[0.0]
        orig=pl.PerceptionPipeline._poses
        def timed(self,*a,**k):
            t=time.perf_counter(); r=orig(self,*a,**k); t_pose[0]+=time.perf_counter()-t; return r
        pl.PerceptionPipeline._poses=timed
        pipe = PerceptionPipeline(eng, PerceptionSettings.from_params({"pose_relink_corners": corners}))
        n=0
        for i in range(0,80,stride):
            n+=len(pipe.push(imgs[i], i*33_333_333, "cam", seq.intrinsics))
        pl.PerceptionPipeline._poses=orig
        clips=pipe.status()
        print(f"stride {stride} corners {corners}: pose {1000*t_pose[0]:.0f} ms total over {n} frames; relinked {clips['pose_relinked']}")
