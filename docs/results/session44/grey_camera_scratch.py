"""Colour checks, a bag's frames rewritten one way, then scored with `fourds-ros eval --offline`:
  grey       a monochrome camera (mono8; many robots' global-shutter VO cameras): ITU-R BT.601 luma
             given back as three equal channels, which is what the node makes of mono8;
  greyworld  each frame's channels scaled to equal means (grey-world white balance);
  desat50    half-way between the frame and its grey.

    python docs/results/session44/grey_camera_scratch.py BAG OUT_BAG [grey|greyworld|desat50]
"""
import sys

import cv2
import numpy as np

from fourds_ros.evaluation.bag import Frame, read_bag, write_bag

src, out = sys.argv[1], sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "grey"


def rewrite(rgb: np.ndarray) -> np.ndarray:
    grey = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    if mode == "grey":
        return grey
    if mode == "desat50":
        return ((rgb.astype(np.float32) + grey) / 2).round().astype(np.uint8)
    means = rgb.reshape(-1, 3).mean(0)
    return np.clip(rgb * (means.mean() / np.maximum(means, 1)), 0, 255).round().astype(np.uint8)


data = read_bag(src)
frames = []
for stamp in data.stamps:
    k = data.K.get(stamp, next(iter(data.K.values())))
    frames.append(Frame(stamp_ns=stamp, K=k, image=rewrite(data.images[stamp]),
                        gt_depth=data.gt_depth.get(stamp), gt_pose=data.gt_pose.get(stamp)))
print(write_bag(frames, out), "frames")
