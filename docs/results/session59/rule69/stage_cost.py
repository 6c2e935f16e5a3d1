"""Rule 69a's cost: the pose stage's (and its epipolar part's) seconds a clip, in process, with
pose_epipolar_step_rotation off and on, alternated over 3 passes of a recording (ONNX Runtime)."""
import sys

import numpy as np

from fourds_ros.engine import create_engine
from fourds_ros.evaluation.bag import CAMERA_FRAME, read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.perception import PerceptionPipeline, PerceptionSettings

bag = read_bag(sys.argv[1])
engine = create_engine(resolve_model(None), backend="onnxruntime")
stages = {False: {"pose": [], "epipolar": []}, True: {"pose": [], "epipolar": []}}
for _ in range(3):
    for on in (False, True):
        pipe = PerceptionPipeline(engine, PerceptionSettings.from_params({"pose_epipolar_step_rotation": on}))
        original = pipe.process

        def timed(clip, on_depth=None, on=on, original=original):
            result = original(clip, on_depth)
            for name in stages[on]:
                stages[on][name].append(result.stage_s.get(name, 0.0) * 1e3)
            return result
        pipe.process = timed
        for stamp in bag.stamps:
            pipe.push(bag.images[stamp], stamp, CAMERA_FRAME, bag.intrinsics(stamp))
for on in (False, True):
    print(f"step rotation {'on ' if on else 'off'}: pose p50 {np.median(stages[on]['pose']):.1f} ms, "
          f"epipolar p50 {np.median(stages[on]['epipolar']):.1f} ms ({len(stages[on]['pose'])} clips)")
