"""camera_info checks and undistortion, without rclpy.

validate_intrinsics: K must be finite with positive focal lengths and its principal point on the
image; a K calibrated at another resolution is scaled when the image is that calibration resized by
one ratio in x and y (1280x960 -> 640x480), and refused otherwise.

Undistorter: sensor_msgs/CameraInfo distortion models plumb_bob (k1 k2 p1 p2 k3), rational_polynomial
(k1 k2 p1 p2 k3 k4 k5 k6 [s1 s2 s3 s4 [tx ty]]) and equidistant (fisheye k1 k2 k3 k4, cv2.fisheye) -> an undistorted
image and its pinhole K, through cv2.remap maps cached per (model, K, D, size). All-zero distortion
skips the remap. Pixel coordinates follow CameraInfo: pixel (0, 0)'s centre is (0, 0).
"""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

from .work_image import scaled_k

# The kind a validate_intrinsics reason starts with ("<kind>: <detail>"), for counting.
INTRINSICS_REASONS = {
    "scaled": "accepted: K scaled from the calibration size to the image size",
    "malformed": "K is not 3x3 with last row (0, 0, 1)",
    "non_finite": "K holds NaN or inf",
    "non_positive_focal": "fx or fy <= 0",
    "principal_point_outside": "(cx, cy) is not on the image",
    "size_mismatch": "calibration size differs from the image by no single clean ratio",
}
# Distortion coefficients each model reads (sensor_msgs/distortion_models.hpp). rational_polynomial
# may go on with the thin prism (s1-s4: 12) and tilt (tx ty: 14) terms, as OpenCV's calibration
# writes them and image_geometry reads them.
DISTORTION_LENGTHS = {"plumb_bob": (4, 5), "rational_polynomial": (8, 12, 14), "equidistant": (4,)}
# An undistorted view whose focal length is more than this factor off the calibrated one shows a
# sliver of the image blown up (or the image shrunk to a dot): coefficients no real lens has (the
# fuzz test sent k1 = 1e30, which made fx 1e32). The TUM and fisheye lenses in the tests stay within 1.5.
MAX_FOCAL_CHANGE = 8.0
# Fewer output pixels than this fraction mapping onto the image: the remap shows mostly border.
MIN_MAP_COVERAGE = 0.5


def reason_kind(reason: str) -> str:
    """The counting key of a validate_intrinsics reason ('' when K was accepted unchanged)."""
    return reason.split(":", 1)[0]


def validate_intrinsics(k, width: int, height: int, calib_width: int = 0,
                        calib_height: int = 0) -> tuple[np.ndarray | None, str]:
    """(K for an image of width x height, reason): reason is '' when K is used as given,
    'scaled: ...' when it was scaled, and for a refusal K is None and the reason starts with one of
    INTRINSICS_REASONS' kinds. calib_width/height 0 (unset in CameraInfo) means the image size."""
    k = np.asarray(k, dtype=np.float64)
    if k.size != 9:
        return None, f"malformed: K has {k.size} values, not 9"
    k = k.reshape(3, 3)
    if not np.isfinite(k).all():
        return None, f"non_finite: K = {k.ravel().tolist()}"
    if not np.allclose(k[2], (0.0, 0.0, 1.0)):
        return None, f"malformed: K's last row is {k[2].tolist()}, not (0, 0, 1)"
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        return None, f"non_positive_focal: fx {k[0, 0]}, fy {k[1, 1]}"
    reason = ""
    calib_width, calib_height = calib_width or width, calib_height or height
    if (calib_width, calib_height) != (width, height):
        scale = width / calib_width
        if not np.isclose(height / calib_height, scale, rtol=1e-9, atol=0.0):
            return None, (f"size_mismatch: calibrated at {calib_width}x{calib_height}, image is {width}x{height} "
                          f"(x{scale:.4g} in width, x{height / calib_height:.4g} in height)")
        k = scaled_k(k, scale, scale)  # pixel i covers [i - 0.5, i + 0.5): about the image corner
        reason = f"scaled: calibrated at {calib_width}x{calib_height}, image {width}x{height} (x{scale:.4g})"
    cx, cy = k[0, 2], k[1, 2]
    if not (-0.5 <= cx <= width - 0.5 and -0.5 <= cy <= height - 0.5):
        return None, f"principal_point_outside: ({cx:.1f}, {cy:.1f}) on a {width}x{height} image"
    return k, reason


class DistortionError(ValueError):
    """Distortion the Undistorter cannot apply; kind 'unsupported_distortion_model' or 'bad_distortion'."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def check_distortion(model: str, d) -> np.ndarray:
    """D as float64 for `model`; raises DistortionError for an unknown model, a wrong coefficient
    count or non-finite values. An empty D (or model '') is read as no distortion."""
    d = np.asarray(d if d is not None else [], dtype=np.float64).ravel()
    if np.isfinite(d).all() and not np.any(d):  # empty or all zero: nothing to undo
        return np.zeros(0)
    if model not in DISTORTION_LENGTHS:
        raise DistortionError("unsupported_distortion_model",
                              f"distortion model {model!r} is not one of {', '.join(DISTORTION_LENGTHS)}")
    if d.size not in DISTORTION_LENGTHS[model]:
        raise DistortionError("bad_distortion", f"{model} takes {DISTORTION_LENGTHS[model]} coefficients, got {d.size}")
    if not np.isfinite(d).all():
        raise DistortionError("bad_distortion", f"distortion holds NaN or inf: {d.tolist()}")
    return d


class Undistorter:
    """Undistorts frames with remap maps cached per (model, K, D, size), at most `max_cached`
    (a 4K map pair is about 50 MB)."""

    def __init__(self, max_cached: int = 2):
        self.max_cached = max_cached
        self.maps: OrderedDict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
        self.maps_built = 0

    def __call__(self, rgb: np.ndarray, k: np.ndarray, d, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(undistorted image, its K). With no distortion, the same array and K (no remap, no copy)."""
        d = check_distortion(model, d)
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        if d.size == 0:
            return rgb, k
        height, width = rgb.shape[:2]
        key = (model, k.tobytes(), d.tobytes(), width, height)
        if key in self.maps:
            self.maps.move_to_end(key)
        else:
            try:
                self.maps[key] = undistortion_maps(k, d, model, width, height)
            except DistortionError as exc:  # cached too: a bad camera_info repeats with every frame
                self.maps[key] = exc
            self.maps_built += 1
            while len(self.maps) > self.max_cached:
                self.maps.popitem(last=False)
        if isinstance(self.maps[key], DistortionError):
            raise self.maps[key]
        map1, map2, new_k = self.maps[key]
        out = cv2.remap(rgb, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return out, new_k.copy()


def remap_to_pinhole(k: np.ndarray, d: np.ndarray, model: str, new_k: np.ndarray, size: tuple[int, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (float32) from an image of `size` (width, height) taken through the lens (k, d,
    model) to the pinhole view of new_k: the colour frames' (undistortion_maps) and a depth registered
    to them (camera.Lens.depth_maps) alike."""
    if model == "equidistant":
        return cv2.fisheye.initUndistortRectifyMap(k, d, np.eye(3), new_k, size, cv2.CV_32FC1)
    return cv2.initUndistortRectifyMap(k, d, None, new_k, size, cv2.CV_32FC1)


def undistortion_maps(k: np.ndarray, d: np.ndarray, model: str, width: int, height: int):
    """Fixed-point remap maps and the new pinhole K: the node's undistortion (Undistorter), also used
    by the dataset readers (fourds_ros.rgbd) so that a recording is scored as the node sees it.

    plumb_bob / rational_polynomial: cv2.getOptimalNewCameraMatrix with alpha 0 keeps only valid
    pixels, so no black border enters the model as image content. equidistant: the pinhole view
    keeps the fisheye's own K (its centre resolution; a pinhole cannot show the far periphery, and
    the view it shows lies inside the fisheye image). cv2.fisheye.estimateNewCameraMatrixFor-
    UndistortRectify is not used: for a wide (T265-like) lens it put the principal point off the image.

    Coefficients no lens has (huge, or of the wrong sign for their size) made OpenCV return a new K
    with negative or 1e-37 focal lengths, or maps pointing off the image: DistortionError
    'bad_distortion' when the new K fails validate_intrinsics, its focal length changes by more than
    MAX_FOCAL_CHANGE, or under MIN_MAP_COVERAGE of the output comes from the image.
    """
    size = (width, height)
    try:
        if model == "equidistant":
            new_k = k.copy()
        else:
            new_k, _ = cv2.getOptimalNewCameraMatrix(k, d, size, 0.0, size)
        map_x, map_y = remap_to_pinhole(k, d, model, new_k, size)
    except cv2.error as exc:
        raise DistortionError("bad_distortion", f"OpenCV cannot undistort {model} D={d.tolist()}: {exc}") from exc
    new_k = np.asarray(new_k, dtype=np.float64)
    checked, reason = validate_intrinsics(new_k, width, height)
    if checked is None:
        raise DistortionError("bad_distortion", f"{model} D={d.tolist()} gives an undistorted K that fails ({reason})")
    change = np.array([new_k[0, 0] / k[0, 0], new_k[1, 1] / k[1, 1]])
    if not (np.all(change <= MAX_FOCAL_CHANGE) and np.all(change >= 1 / MAX_FOCAL_CHANGE)):
        raise DistortionError("bad_distortion", f"{model} D={d.tolist()} changes the focal length by "
                              f"x{change.max():.3g} / x{change.min():.3g} when undistorted (not a real lens)")
    # Checked on the float maps: the fixed-point ones saturate (k1 = 1e30 made every entry 0, "on the image").
    inside = ((map_x >= -0.5) & (map_x < width - 0.5) & (map_y >= -0.5) & (map_y < height - 0.5)).mean()
    if inside < MIN_MAP_COVERAGE:
        raise DistortionError("bad_distortion", f"{model} D={d.tolist()}: only {inside:.0%} of the undistorted "
                              "view comes from the image")
    map1, map2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)  # fixed point: remap twice as fast
    return map1, map2, new_k
