"""The camera image the pipeline works on: above work_image_max_pixels, scaled down once on arrival.

The model sees an 8x128x128 clip whatever the camera sends, but the pipeline's classical steps (the
tracks' LK steps and templates, the image fallback, the pose's corners, its relinking) work on the
camera's own pixels, and their cost grows with them: on the 2-core CPU the track refinement took
8 / 17 / 57 ms a clip and the pose 24 / 42 / 57 ms at 640x480 / 1280x720 / 1920x1080, so that a
1080p camera left the node at its 233 ms budget per clip (docs/benchmarks.md, session 44).
A frame larger than the budget is divided by the smallest whole number that brings it under (area
interpolation) with its K, the pipeline runs on that working image, and its results are mapped
back into the camera's pixels (tracks' u v, K, depth at camera resolution) here. Every recording
the package was measured on is at most 854x480, under the default budget, so none of its figures
changed. In the node the division comes first: a JPEG is decoded at its working size where libjpeg
can (image.decode_compressed_for_work), and lens undistortion (camera.py) runs on the working image.

    work = WorkImage.for_size((1080, 1920), 589_824)   # -> 540 x 960, half of each side
    rgb, k = work.image(rgb), work.k_to_work(k)
    result = work.result_to_camera(result, depth_at_camera_resolution=False)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class WorkImage:
    """camera_hw: the (upright) camera image's (H, W); work_hw: the image the pipeline works on."""

    camera_hw: tuple[int, int]
    work_hw: tuple[int, int]

    @classmethod
    def for_size(cls, camera_hw: tuple[int, int], max_pixels: int) -> WorkImage:
        """The working size of a camera image: itself when it has at most max_pixels (0: no limit),
        else divided by the smallest whole number that brings it to at most max_pixels. Whole
        numbers because OpenCV's area interpolation has a fast path for them: 1280x720 -> 640x360
        took 0.1 ms, -> 1024x576 3.5 ms, more than the 1.3 ms all of a 720p frame's intake took
        unscaled (2-core CPU; docs/benchmarks.md, session 44)."""
        h, w = (int(v) for v in camera_hw)
        if max_pixels <= 0 or h * w <= max_pixels:
            return cls((h, w), (h, w))
        n = math.ceil(math.sqrt(h * w / max_pixels))
        while round(h / n) * round(w / n) > max_pixels:
            n += 1
        return cls((h, w), (max(1, round(h / n)), max(1, round(w / n))))

    @property
    def scaled(self) -> bool:
        return self.work_hw != self.camera_hw

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Working pixels per camera pixel, along x and y (equal to within one pixel's rounding)."""
        return self.work_hw[1] / self.camera_hw[1], self.work_hw[0] / self.camera_hw[0]

    def image(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, C) camera image -> the working image."""
        if not self.scaled:
            return rgb
        h, w = self.work_hw
        return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)

    def pixels_to_work(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera pixel coordinates -> working ones (OpenCV's resize maps centres: x' = (x + 0.5) s - 0.5)."""
        sx, sy = self.scale_xy
        return (np.asarray(u, float) + 0.5) * sx - 0.5, (np.asarray(v, float) + 0.5) * sy - 0.5

    def pixels_to_camera(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sx, sy = self.scale_xy
        return (np.asarray(u, float) + 0.5) / sx - 0.5, (np.asarray(v, float) + 0.5) / sy - 0.5

    def k_to_work(self, k: np.ndarray | None) -> np.ndarray | None:
        return k if k is None or not self.scaled else scaled_k(k, *self.scale_xy)

    def k_to_camera(self, k: np.ndarray) -> np.ndarray:
        sx, sy = self.scale_xy
        return np.asarray(k, float) if not self.scaled else scaled_k(k, 1 / sx, 1 / sy)

    def result_to_camera(self, result, depth_at_camera_resolution: bool):
        """A pipeline FrameResult of the working image -> the same in the camera's pixels: its K, the
        tracks' u v, and with depth_at_camera_resolution (depth_output_resolution: camera) its depth
        image brought from the working resolution to the camera's (nearest: no depth mixed across
        an edge), with its K and colour. Depth at the model's resolution keeps its own K; xyz,
        poses and covariances do not depend on pixels. A copy."""
        if not self.scaled:
            return result
        changes = {"k": self.k_to_camera(result.k)}
        if result.depth is not None and depth_at_camera_resolution:
            h, w = self.camera_hw
            changes.update(depth=cv2.resize(result.depth, (w, h), interpolation=cv2.INTER_NEAREST_EXACT),
                           depth_k=self.k_to_camera(result.depth_k),
                           depth_rgb=None if result.depth_rgb is None
                           else cv2.resize(result.depth_rgb, (w, h), interpolation=cv2.INTER_LINEAR))
        if result.tracks is not None:
            u, v = self.pixels_to_camera(result.tracks.u, result.tracks.v)
            changes["tracks"] = dataclasses.replace(result.tracks, u=u.astype(np.float32), v=v.astype(np.float32))
        return dataclasses.replace(result, **changes)


def scaled_k(k: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """K of an image resized by (sx, sy) (pixel centres as cv2.resize maps them)."""
    out = np.asarray(k, float).copy()
    out[0] *= sx
    out[1] *= sy
    out[0, 2] += (sx - 1) / 2
    out[1, 2] += (sy - 1) / 2
    out[2] = (0.0, 0.0, 1.0)
    return out
