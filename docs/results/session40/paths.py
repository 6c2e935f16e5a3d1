import sys
sys.path.insert(0, "/work/main")
from fourds_ros.engine import create_engine
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.rgbd import read_tum
eng = create_engine("/work/main/models/fourds_default", backend="torch")
tum = read_tum("/work/shared/data/tum_fr1_rpy_f000-079")
for stride in (1, 2, 3):
    tot = {}
    for start in range(6):
        pipe = PerceptionPipeline(eng, PerceptionSettings())
        idx = list(range(start, 80, stride))
        n = 0
        for j, i in enumerate(idx):
            n += len(pipe.push(tum.rgb(i), (j + 1) * 33_333_333 * stride, "cam", tum.intrinsics))
        st = pipe.status()
        for k in ("pose_epipolar_clips", "pose_epipolar_stepwise", "pose_epipolar_guided", "pose_epipolar_held", "pose_relinked", "pose_head_overruled", "pose_geometry_gated"):
            tot[k] = tot.get(k, 0) + st[k]
        tot["clips"] = tot.get("clips", 0) + n // 7
    print(stride, tot)
