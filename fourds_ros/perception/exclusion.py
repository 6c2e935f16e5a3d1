"""The parts of the camera's image that show the robot itself (InputSettings.exclude_boxes), as a mask
of the model image: no track is seeded or kept there, and no depth is published there.

Why: points on the robot's own body move with the camera. The pose solver reads tracks that stay
put as a still camera, so a chassis over the bottom 45 % of a moving recording froze its odometry
(TUM fr1/rpy: 97 % of frames read still, rotation ratio 0.00; 30 %: ratio 0.61), and a costmap fed
the body's depth marks the robot as its own obstacle (models/fourds_default/README.md, session 23).
"""

from __future__ import annotations

import numpy as np

from .image_rotation import camera_hw, camera_pixels
from .preprocess import PixelMap


def box_list(values: list[float]) -> np.ndarray:
    """[x0, y0, x1, y1, ...] fractions -> (N, 4) boxes of positive area (zero-area ones dropped)."""
    boxes = np.asarray(values, float).reshape(-1, 4)
    return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]


def excluded_model_pixels(boxes: np.ndarray, model_hw: tuple[int, int], pmap: PixelMap, turns: int = 0,
                          upright_hw: tuple[int, int] | None = None) -> np.ndarray | None:
    """(H_m, W_m) bool, True where a model pixel's centre falls in a box of the camera's image, or None
    when there is no box. pmap maps model pixels to the (upright) input image of upright_hw; turns:
    image_rotation's quarter turns, undone to reach the camera's own image."""
    if not len(boxes):
        return None
    ys, xs = np.mgrid[0:model_hw[0], 0:model_hw[1]].astype(float)
    return _in_boxes(boxes, *pmap.to_input(xs, ys), turns, upright_hw)


def excluded_input_pixels(boxes: np.ndarray, upright_hw: tuple[int, int], turns: int = 0) -> np.ndarray | None:
    """(H, W) bool over the upright input image of upright_hw, True where a pixel's centre falls in a
    box of the camera's image (also outside the model's window), or None when there is no box."""
    if not len(boxes):
        return None
    v, u = np.mgrid[0:upright_hw[0], 0:upright_hw[1]].astype(float)
    return _in_boxes(boxes, u, v, turns, upright_hw)


def _in_boxes(boxes: np.ndarray, u: np.ndarray, v: np.ndarray, turns: int, upright_hw: tuple[int, int] | None
              ) -> np.ndarray:
    """Upright input pixels (u, v) -> bool of their shape: inside a box of the camera's own image."""
    u, v = camera_pixels(u, v, turns, upright_hw)
    hw = camera_hw(upright_hw, turns)
    fx, fy = (u + 0.5) / hw[1], (v + 0.5) / hw[0]  # pixel centres as fractions of the camera image
    inside = np.zeros(np.shape(u), bool)
    for x0, y0, x1, y1 in boxes:
        inside |= (fx >= x0) & (fx < x1) & (fy >= y0) & (fy < y1)
    return inside
