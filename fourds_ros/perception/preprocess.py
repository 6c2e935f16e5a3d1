"""Frames -> model input, with intrinsics transformed to match.

Policy (`crop`):
  center_crop (default): crop the largest centred window with the model's aspect ratio, then
    resize to the model size. No distortion; the borders outside the window are not seen.
  resize: resize the whole frame to the model size (anisotropic scaling when aspects differ).
Both are an affine pixel map x_model = sx * x_in + ox, y_model = sy * y_in + oy (pixel centres
handled with the +0.5 convention), so K and track coordinates map exactly both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

POLICIES = ("center_crop", "resize")


@dataclass(frozen=True)
class PixelMap:
    """x_model = sx * x_in + ox ; y_model = sy * y_in + oy (continuous pixel coordinates, where
    pixel i covers [i, i+1) and its centre is i + 0.5)."""

    sx: float
    sy: float
    ox: float
    oy: float

    def to_model(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.sx * (x + 0.5) + self.ox - 0.5, self.sy * (y + 0.5) + self.oy - 0.5

    def to_input(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (x + 0.5 - self.ox) / self.sx - 0.5, (y + 0.5 - self.oy) / self.sy - 0.5

    def transform_k(self, k: np.ndarray) -> np.ndarray:
        """3x3 K of the input image -> K of the model image (principal point in pixel-index
        coordinates, as in sensor_msgs/CameraInfo)."""
        a = np.array([[self.sx, 0, self.sx * 0.5 + self.ox - 0.5],
                      [0, self.sy, self.sy * 0.5 + self.oy - 0.5], [0, 0, 1]])
        # K maps to pixel-index coordinates c: c_model = sx * (c_in + 0.5) + ox - 0.5.
        return a @ np.asarray(k, dtype=np.float64)


class Preprocessor:
    """(H_in, W_in, 3) uint8 RGB -> (H, W, 3) float32 in [0, 1] at the model size."""

    def __init__(self, model_hw: tuple[int, int], policy: str = "center_crop"):
        if policy not in POLICIES:
            raise ValueError(f"preprocessing policy must be one of {POLICIES}, got {policy!r}")
        self.model_hw = (int(model_hw[0]), int(model_hw[1]))
        self.policy = policy

    def pixel_map(self, input_hw: tuple[int, int]) -> PixelMap:
        h_in, w_in = input_hw
        h, w = self.model_hw
        if self.policy == "resize":
            return PixelMap(w / w_in, h / h_in, 0.0, 0.0)
        scale = max(h / h_in, w / w_in)  # the crop window fills the model image
        return PixelMap(scale, scale, (w - scale * w_in) / 2, (h - scale * h_in) / 2)

    def crop_box(self, input_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of the input window that the model sees."""
        h_in, w_in = input_hw
        if self.policy == "resize":
            return 0, h_in, 0, w_in
        h, w = self.model_hw
        scale = max(h / h_in, w / w_in)
        ch, cw = round(h / scale), round(w / scale)
        y0, x0 = (h_in - ch) // 2, (w_in - cw) // 2
        return y0, y0 + ch, x0, x0 + cw

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = self.crop_box(rgb.shape[:2])
        h, w = self.model_hw
        window = rgb[y0:y1, x0:x1]
        if window.shape[:2] != (h, w):
            window = cv2.resize(window, (w, h), interpolation=cv2.INTER_AREA)
        return window.astype(np.float32) * np.float32(1 / 255)


def default_intrinsics(input_hw: tuple[int, int], hfov_deg: float = 60.0) -> np.ndarray:
    """A pinhole K for frames without camera_info: principal point at the centre and the given
    horizontal field of view. Depth and tracks xyz are only approximate with it."""
    h, w = input_hw
    f = (w / 2) / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]], dtype=np.float64)


def backproject(u: np.ndarray, v: np.ndarray, z: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pixels (u, v) at depth z (each (N,), NaN allowed) through the 3x3 K -> (N, 3) points in the
    camera optical frame (x right, y down, z forward)."""
    k = np.asarray(k, float)
    x = (np.asarray(u) - k[0, 2]) / k[0, 0] * z
    y = (np.asarray(v) - k[1, 2]) / k[1, 1] * z
    return np.stack([x, y, np.asarray(z, float) * np.ones_like(x)], axis=-1)


def sample_nearest(image: np.ndarray, x: np.ndarray, y: np.ndarray, fill) -> np.ndarray:
    """image (H, W) at pixels (x, y) (arrays of one shape; pixel centres at integers), nearest pixel:
    an array of that shape and the image's dtype, `fill` outside the image or where x or y is not
    finite."""
    h, w = image.shape[:2]
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    col = np.round(np.where(ok, x, -1)).astype(int)
    row = np.round(np.where(ok, y, -1)).astype(int)
    inside = ok & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    out = np.full(x.shape, fill, dtype=image.dtype)
    out[inside] = image[row[inside], col[inside]]
    return out


def image_texture(video: np.ndarray) -> np.ndarray:
    """video: (T, H, W, 3) float in [0, 1], model images -> (T,) texture: the 90th percentile of
    the gradient magnitude of the grey image smoothed by a Gaussian (sigma 1.5 px), in grey
    levels (0-255) per model pixel. The smoothing takes out sensor noise, which has no structure
    to track; the percentile asks for texture on a tenth of the image at least. Measured:
    real frames of 21 recordings 5.6 or more; a covered lens 0.06, a uniform grey 0.09, a room at
    5 % of its light 0.6-0.85 (model card, session 22)."""
    grey = np.asarray(video, np.float32) @ np.float32([0.299 * 255, 0.587 * 255, 0.114 * 255])  # (T, H, W)
    magnitude = np.empty_like(grey)
    for t, frame in enumerate(grey):
        smooth = cv2.GaussianBlur(frame, (0, 0), 1.5)
        # Sobel's 3x3 kernel weighs the central difference by 8: /8 gives grey levels per pixel.
        magnitude[t] = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    flat = magnitude.reshape(len(grey), -1)
    k = int(0.9 * (flat.shape[1] - 1))  # the 90th percentile's rank (lower)
    return np.partition(flat, k, axis=1)[:, k] / np.float32(8)
