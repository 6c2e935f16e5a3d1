"""Scratch (session 38, rule 29): the pose step's time in process (ONNX Runtime, the shipped
settings) with pose_epipolar_rotation_guess off and on, on TUM fr1/rpy and the HoloLens walk. Per
clip: PerceptionPipeline._poses timed. Run on idle cores:
python docs/results/session38/cost29_scratch.py"""
import time

import numpy as np

import fourds_ros.perception.pipeline as pl
from fourds_ros.engine import create_engine
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.rgbd import read_hololens, read_tum

engine = create_engine("models/fourds_default", backend="onnxruntime")
recordings = {"tum": read_tum("../shared/data/tum_fr1_rpy_f000-079"),
              "hololens": read_hololens("../shared/data/hololens_dvmvs_000_f00305-00334")}
original = pl.PerceptionPipeline._poses
for name, seq in recordings.items():
    images = [seq.rgb(i) for i in range(len(seq))]
    for rep in range(2):
        for guess in (False, True):
            times = []

            def timed(self, *a, **k):
                t = time.perf_counter()
                r = original(self, *a, **k)
                times.append(time.perf_counter() - t)
                return r

            pl.PerceptionPipeline._poses = timed
            pipe = PerceptionPipeline(engine, PerceptionSettings.from_params({"pose_epipolar_rotation_guess": guess}))
            for i, image in enumerate(images):
                pipe.push(image, i * 33_333_333, "cam", seq.intrinsics)
            pl.PerceptionPipeline._poses = original
            status = pipe.status()
            print(f"{name} rep {rep} guess {guess}: pose step median {1000 * np.median(times):.1f} ms, "
                  f"mean {1000 * np.mean(times):.1f} ms over {len(times)} clips; first-last "
                  f"{status['pose_epipolar_clips']}, stepwise {status['pose_epipolar_stepwise']}, "
                  f"guided {status['pose_epipolar_guided']}")
