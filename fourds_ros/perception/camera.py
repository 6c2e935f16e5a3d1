"""A frame's camera model, checked before the frame enters the pipeline (no rclpy).

    camera = CameraIntake()
    rgb, k, problem = camera(rgb, Calibration(k, d, "plumb_bob", 640, 480))
    rgb, k, problem = camera(work_rgb, calibration, camera_hw=(1080, 1920))  # a divided image
    # k: the K of the returned (undistorted) image, or None (use the default field of view);
    # problem: '' or 'camera_info_<kind>: <detail>' (kinds: non_finite, size_mismatch, bad_distortion, ...)

Why: a K that is NaN, meant for another resolution, or paired with lens distortion the model never
saw gives wrong geometry without any error. Here K is validated and scaled to the image
(calibration.validate_intrinsics), and distorted images are undistorted (calibration.Undistorter),
so every published output's camera_info (zero distortion) is true.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .calibration import UNDISTORT_CRITERIA, DistortionError, Undistorter, remap_to_pinhole, validate_intrinsics
from .work_image import scaled_k


@dataclass(frozen=True)
class Calibration:
    """sensor_msgs/CameraInfo's intrinsics. k: 3x3; d: distortion coefficients (may be empty);
    width, height: the calibration's image size (0: unset, taken as the image's); p: the 3x3 left
    of its projection matrix P (the rectified image's intrinsics), None when P is all zero;
    sensor_extent: where the full sensor lies when the image is a window of it (sensor_extent()),
    None when the image is the whole sensor; malformed: why the camera_info is no calibration whatever
    its K (its roi or binning is no window of its own sensor: window_problem), '' when it is one."""

    k: np.ndarray
    d: tuple = ()
    model: str = ""
    width: int = 0
    height: int = 0
    p: np.ndarray | None = None
    sensor_extent: tuple[float, float, float, float] | None = None
    malformed: str = ""

    def rectified(self) -> Calibration:
        """The calibration of the rectified image (image_proc's image_rect): P's intrinsics and no
        distortion; K's where P is unset."""
        return Calibration(self.k if self.p is None else self.p, (), "", self.width, self.height,
                           sensor_extent=self.sensor_extent, malformed=self.malformed)


@dataclass(frozen=True)
class Lens:
    """The lens the latest frame was undistorted for, at the camera image's size: k and d, the
    camera's own; pinhole_k, the undistorted view's (the K the pipeline's outputs carry). Maps pixels
    between the two views. Why: the pipeline works on the undistorted view, while a client that
    overlays tracks on the camera's own image, or asks to track a pixel of it, reads that image's
    pixels; on TUM's Kinect the two differ by 9 px near a corner, on a wide lens by 30."""

    k: np.ndarray
    d: np.ndarray
    model: str
    pinhole_k: np.ndarray
    size: tuple[int, int]  # the camera image's (width, height)

    def to_undistorted(self, uv: np.ndarray) -> np.ndarray:
        """(N, 2) pixels of the camera's image -> the same points in the undistorted view (NaN stays NaN)."""
        def undistort(points):
            if self.model == "equidistant":
                return cv2.fisheye.undistortPoints(points, self.k, self.d, P=self.pinhole_k)
            return cv2.undistortPoints(points, self.k, self.d, R=None, P=self.pinhole_k, criteria=UNDISTORT_CRITERIA)
        return _map_finite(uv, undistort)

    def same_as(self, other: Lens | None) -> bool:
        return (other is not None and self.model == other.model and self.size == other.size
                and np.array_equal(self.k, other.k)
                and np.array_equal(self.d, other.d) and np.array_equal(self.pinhole_k, other.pinhole_k))

    def depth_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps (float32) that bring an image of the camera's own pixels (a depth registered to
        the colour image) into the undistorted view."""
        return remap_to_pinhole(self.k, self.d, self.model, self.pinhole_k, self.size)

    def to_raw(self, uv: np.ndarray) -> np.ndarray:
        """(N, 2) pixels of the undistorted view -> the same points in the camera's image (NaN stays NaN)."""
        def distort(points):
            rays = cv2.convertPointsToHomogeneous(points) @ np.linalg.inv(self.pinhole_k).T
            normalised = rays[:, :, :2] / rays[:, :, 2:]
            if self.model == "equidistant":
                return cv2.fisheye.distortPoints(normalised, self.k, self.d)
            return cv2.projectPoints(cv2.convertPointsToHomogeneous(normalised), np.zeros(3), np.zeros(3), self.k,
                                     self.d)[0]
        return _map_finite(uv, distort)


def _map_finite(uv: np.ndarray, mapping) -> np.ndarray:
    """mapping((M, 1, 2) float64 points) -> (M, 1, 2), applied to the finite rows of (N, 2) uv."""
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    out = uv.copy()
    finite = np.isfinite(uv).all(1)
    if finite.any():
        out[finite] = np.asarray(mapping(uv[finite].reshape(-1, 1, 2)), np.float64).reshape(-1, 2)
    return out


def sensor_to_image(k: np.ndarray, offset: tuple[int, int], binning: tuple[int, int]) -> np.ndarray:
    """Intrinsics of the full sensor brought to an image cut at `offset` (x, y) and binned, pixel
    centres at integers (a binned pixel's centre is the middle of the b sensor pixels it covers)."""
    k = np.array(k, float)
    for axis, (o, b) in enumerate(zip(offset, binning)):
        k[axis, 2] = (k[axis, 2] - o + 0.5) / b - 0.5
        k[axis, :2] = k[axis, :2] / b
    return k


def camera_info_window(msg) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    """A CameraInfo's region of interest and binning, REP-104: (offset (x, y), binning (x, y), the
    image's (width, height)), or None for the full sensor unbinned. K and P are the full sensor's;
    sensor_to_image brings them to the image. (A ROS 2 or ROS 1 message, or any object with its fields.)"""
    width, height = int(msg.width), int(msg.height)
    bx, by = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    roi = msg.roi
    cut = bool(roi.width and roi.height)
    if not cut and bx == 1 and by == 1:
        return None
    offset = (int(roi.x_offset), int(roi.y_offset)) if cut else (0, 0)
    width, height = (int(roi.width), int(roi.height)) if cut else (width, height)
    return offset, (bx, by), (width // bx, height // by)


def window_problem(msg) -> str:
    """Why a CameraInfo's roi or binning is no window of its own sensor (width x height), or '': a
    binning past the pixels it bins, or an roi reaching off the sensor (each checked where the sizes are
    set; an roi of width or height 0 is the whole sensor). Why: binning 1000 on 640x480 made a 0x0 image,
    read as "size unset", and an roi at x_offset 10^6 moved the allowed principal point with it
    (sensor_extent): either K (fx 0.5; cx -999680) was used without a word."""
    window = camera_info_window(msg)
    if window is None:
        return ""
    offset, binning, binned = window
    roi, sensor = msg.roi, (int(msg.width), int(msg.height))
    cut = (int(roi.width), int(roi.height)) if roi.width and roi.height else (0, 0)
    problems = []
    for axis, name in enumerate(("width", "height")):
        xy = "xy"[axis]
        if cut[axis] and sensor[axis] and offset[axis] + cut[axis] > sensor[axis]:
            problems.append(f"roi {xy}_offset {offset[axis]} + {name} {cut[axis]} reaches past the sensor's "
                            f"{name} {sensor[axis]}")
        unbinned = cut[axis] or sensor[axis]
        if unbinned and not binned[axis]:
            problems.append(f"binning_{xy} {binning[axis]} is more than the {unbinned} pixels it bins ({name} 0)")
    return "; ".join(problems)


def sensor_extent(msg) -> tuple[float, float, float, float] | None:
    """The full sensor (CameraInfo's width x height) as (left, top, right, bottom) in units of the
    width and height of the image its roi and binning cut (the image: (0, 0, 1, 1)), or None for the
    whole sensor unbinned: Calibration.sensor_extent. Why: a window may leave the optical centre
    out (a camera reading the strip of its sensor that sees the floor), so K's principal point is
    checked against the sensor, not the image; in units of the image, it holds at any image scale."""
    window = camera_info_window(msg)
    if window is None:
        return None
    (ox, oy), (bx, by), (width, height) = window
    if not (msg.width and msg.height and width and height):  # sizes unset: no sensor to place the image in
        return None
    span_x, span_y = width * bx, height * by  # the sensor pixels the image covers
    return -ox / span_x, -oy / span_y, (int(msg.width) - ox) / span_x, (int(msg.height) - oy) / span_y


class CameraIntake:
    def __init__(self):
        self.undistort = Undistorter()
        # The latest frame's lens (None: not undistorted): the node maps the tracks' published pixels
        # and the queried ones with it. Set per frame, read by the inference thread: one reference,
        # replaced whole.
        self.lens: Lens | None = None
        self._depth_maps: tuple[Lens, tuple[np.ndarray, np.ndarray]] | None = None

    def undistort_depth(self, depth: np.ndarray) -> np.ndarray:
        """(H, W) metres registered to the camera's colour image -> the same in the undistorted view the
        colour frames are in (the latest frame's lens; unchanged without one). Nearest, not linear: a
        depth interpolated across an edge is a surface that is not there. Why: the reference depth
        (metric_scale_source: reference_depth) is compared with the model's depth pixel by pixel, and
        off by TUM's lens it read a slanted floor's depth 1 % off."""
        lens = self.lens
        if lens is None or depth.shape != lens.size[::-1]:  # another size: the pipeline refuses it, saying why
            return depth
        if self._depth_maps is None or self._depth_maps[0] is not lens:
            self._depth_maps = lens, lens.depth_maps()
        map_x, map_y = self._depth_maps[1]
        return cv2.remap(depth, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)

    def __call__(self, rgb: np.ndarray, calibration: Calibration | None, camera_hw: tuple[int, int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None, str]:
        """rgb: (H, W, 3) uint8, the camera's image or, given the camera image's (H, W) camera_hw, its
        working image (work_image.py). -> (image for the pipeline, its 3x3 K or None, problem) where
        problem is '' or 'camera_info_<kind>: <detail>' (count by the part before the colon).
        camera_info describes the camera's image; a working image is undistorted at its own size
        (4.0 ms a 1920x1080 frame against 0.7 ms at 960x540 on the 2-core CPU)."""
        rgb, k, problem, lens = self._undistorted(rgb, calibration, camera_hw)
        # Replaced whole, once per frame (the inference thread reads it), and kept while the same lens
        # comes again, so that what is cached for it (undistort_depth's maps) stays valid.
        self.lens = self.lens if lens is not None and lens.same_as(self.lens) else lens
        return rgb, k, problem

    def _undistorted(self, rgb: np.ndarray, calibration: Calibration | None, camera_hw: tuple[int, int] | None
                     ) -> tuple[np.ndarray, np.ndarray | None, str, Lens | None]:
        if calibration is None:
            return rgb, None, "", None
        if calibration.malformed:
            return rgb, None, f"camera_info_malformed: {calibration.malformed}", None
        height, width = camera_hw or rgb.shape[:2]
        camera_k, reason = validate_intrinsics(calibration.k, width, height, calibration.width, calibration.height,
                                               calibration.sensor_extent)
        if camera_k is None:
            return rgb, None, f"camera_info_{reason}", None
        sx, sy = rgb.shape[1] / width, rgb.shape[0] / height
        k = scaled_k(camera_k, sx, sy) if (sx, sy) != (1, 1) else camera_k
        try:
            undistorted, pinhole_k = self.undistort(rgb, k, calibration.d, calibration.model, calibration.sensor_extent)
        except DistortionError as exc:
            return rgb, None, f"camera_info_{exc.kind}: {exc}", None
        if undistorted is rgb:  # no distortion: no lens
            return rgb, pinhole_k, "", None
        lens = Lens(camera_k, np.asarray(calibration.d, np.float64), calibration.model,
                    scaled_k(pinhole_k, 1 / sx, 1 / sy), (width, height))
        return undistorted, pinhole_k, "", lens
