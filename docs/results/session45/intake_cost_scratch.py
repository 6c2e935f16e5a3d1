"""Per-frame intake cost of a JPEG camera with lens distortion, by camera size, in process (session 45):
the node's path before (decode the whole JPEG, undistort at the camera's size, divide in add_frame)
and now (decode at the working size where libjpeg can, divide, undistort the working image).
Prints median ms per frame over 24 frames; `python intake_cost_scratch.py`."""
import time

import cv2
import numpy as np

from fourds_ros.bench.node import source
from fourds_ros.perception.camera import Calibration, CameraIntake
from fourds_ros.perception.image import decode_compressed, decode_compressed_for_work
from fourds_ros.perception.pipeline import create_pipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.perception.work_image import WorkImage
from fourds_ros.ros.probe import load_frames

TUM_D = (0.2624, -0.9531, -0.0054, 0.0026, 1.1633)  # TUM fr1's Kinect: a strong plumb_bob lens
BUDGET = PerceptionSettings().inputs.work_image_max_pixels


def before(pipe, camera, data, calibration, stamp):
    rgb = decode_compressed("jpeg", data)
    rgb, k, _ = camera(rgb, calibration)
    pipe.add_frame(rgb, stamp, "cam", k)


def now(pipe, camera, data, calibration, stamp):
    rgb, camera_hw = decode_compressed_for_work("jpeg", data, BUDGET)
    work = WorkImage.for_size(camera_hw, BUDGET)
    rgb = rgb if rgb.shape[:2] == work.work_hw else work.image(rgb)
    rgb, k, _ = camera(rgb, calibration, camera_hw)
    pipe.add_frame(rgb, stamp, "cam", k, camera_hw=camera_hw)


rows = []
for size in ((480, 640), (720, 1280), (1080, 1920)):
    frames, k = load_frames(source(), size, 24)
    data = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in frames]
    for lens in ((), TUM_D):
        calibration = Calibration(k, lens, "plumb_bob", size[1], size[0])
        row = {"camera": f"{size[1]}x{size[0]}", "lens": "distorted" if lens else "pinhole"}
        for name, path in (("before", before), ("now", now)):
            pipe, _ = create_pipeline(PerceptionSettings(), log=lambda *_: None)
            camera, t = CameraIntake(), []
            for i, d in enumerate(data):
                t0 = time.perf_counter()
                path(pipe, camera, d, calibration, i * 33_333_333)
                if i >= 4:
                    t.append(time.perf_counter() - t0)
            row[name] = round(1e3 * float(np.median(t)), 2)
        rows.append(row)
        print(row, flush=True)
print("| camera | lens | before ms | now ms |\n| --- | --- | --- | --- |")
for r in rows:
    print(f"| {r['camera']} | {r['lens']} | {r['before']} | {r['now']} |")
