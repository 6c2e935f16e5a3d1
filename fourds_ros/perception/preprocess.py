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
        """The map of the window __call__ feeds the model (crop_box, resized to the model size):
        taken from that window's whole-pixel corner, so K and the pixels agree even where the
        window cannot sit exactly in the middle (an odd margin: half an input pixel off before)."""
        y0, y1, x0, x1 = self.crop_box(input_hw)
        h, w = self.model_hw
        sx, sy = w / (x1 - x0), h / (y1 - y0)
        return PixelMap(sx, sy, -x0 * sx, -y0 * sy)

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


def texture_map(video: np.ndarray) -> np.ndarray:
    """video: (T, H, W, 3) float in [0, 1], model images -> (T, H, W) float32: the gradient
    magnitude of the grey image smoothed by a Gaussian (sigma 1.5 px), in grey levels (0-255) per
    model pixel. The smoothing takes out sensor noise, which has no structure to track."""
    grey = np.asarray(video, np.float32) @ np.float32([0.299 * 255, 0.587 * 255, 0.114 * 255])  # (T, H, W)
    magnitude = np.empty_like(grey)
    for t, frame in enumerate(grey):
        smooth = cv2.GaussianBlur(frame, (0, 0), 1.5)
        # Sobel's 3x3 kernel weighs the central difference by 8: /8 gives grey levels per pixel.
        magnitude[t] = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)) / 8
    return magnitude


def _cells(x: np.ndarray, cells: int) -> np.ndarray:
    """(T, H, W) -> (T, cells, cells, N): the values of each cell (the rows and columns that do
    not divide evenly are left out)."""
    t_len, h, w = x.shape
    ch, cw = h // cells, w // cells
    grid = x[:, :ch * cells, :cw * cells].reshape(t_len, cells, ch, cells, cw)
    return grid.transpose(0, 1, 3, 2, 4).reshape(t_len, cells, cells, ch * cw)


def texture_of(magnitude: np.ndarray, cells: int = 1) -> np.ndarray:
    """magnitude: (T, H, W) texture_map -> texture, the 90th percentile (lower rank) of each frame
    ((T,), cells=1) or of each of its cells x cells cells ((T, cells, cells)). The percentile
    asks for texture on a tenth of the area at least. Measured on whole model images: real frames
    of 21 recordings 5.6 or more; a covered lens 0.06, a uniform grey 0.09, a room at 5 % of its
    light 0.6-0.85 (model card, session 22)."""
    texture = _percentile_90(_cells(magnitude, cells))
    return texture[:, 0, 0] if cells == 1 else texture


def _percentile_90(values: np.ndarray) -> np.ndarray:
    """The 90th percentile (lower rank) over the last axis."""
    k = int(0.9 * (values.shape[-1] - 1))
    return np.partition(values, k, axis=-1)[..., k]


def view_texture(magnitude: np.ndarray, ignored: np.ndarray | None = None) -> np.ndarray:
    """magnitude: (T, H, W) texture_map; ignored: (H, W) bool model pixels that are not the camera's
    view (exclude_boxes: the robot's own body) -> (T,) texture_of the rest. Measured with the body, a
    robot facing a blank wall (or with its lens covered above the bumper) read its own textured
    chassis and was never blind: the model's invented depth went out, the head's phantom motion too."""
    if ignored is None or ignored.all():
        return texture_of(magnitude)
    return _percentile_90(magnitude[:, ~ignored])


# A frame is partly blind when this share of its cells (PARTLY_BLIND_CELLS x PARTLY_BLIND_CELLS)
# has less than half the texture a frame needs (InputSettings.min_image_texture). Measured on
# 1,528 real frames (TUM, the kitchen, the HoloLens walk, 18 videos; model card, session 24): at
# most 12 % of the cells were below half (sky, blank walls: up to 31 % below the full
# threshold); the lower half of the lens covered makes 50 %.
PARTLY_BLIND_CELLS = 4
PARTLY_BLIND_SHARE = 0.25


def partly_blind(magnitude: np.ndarray, min_texture: float, ignored: np.ndarray | None = None) -> np.ndarray:
    """magnitude: (T, H, W) texture_map; ignored: (H, W) bool model pixels whose cells do not
    count (exclude_boxes: the robot's own body) -> (T,) bool: PARTLY_BLIND_SHARE or more of the
    counted cells have texture below min_texture / 2."""
    cells = texture_of(magnitude, PARTLY_BLIND_CELLS) < min_texture / 2  # (T, c, c)
    counted = np.ones(cells.shape[1:], bool)
    if ignored is not None:  # a cell mostly on the robot's body is not the camera's view
        counted = _cells(ignored[None], PARTLY_BLIND_CELLS)[0].mean(-1) <= 0.5
    if not counted.any():
        return np.zeros(len(magnitude), bool)
    return cells[:, counted].mean(1) >= PARTLY_BLIND_SHARE
