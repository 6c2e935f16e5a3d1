"""camera_info checks and undistortion, without rclpy.

validate_intrinsics: K must be finite with positive focal lengths and its principal point on the
image (on the full sensor when the image is a window of it, REP-104's roi); a K calibrated at another
resolution is scaled when the image is that calibration resized by one ratio in x and y
(1280x960 -> 640x480), and refused otherwise.

Undistorter: sensor_msgs/CameraInfo distortion models plumb_bob and rational_polynomial (both OpenCV's
pinhole model: k1 k2 p1 p2 [k3 [k4 k5 k6 [s1 s2 s3 s4 [tx ty]]]], 4, 5, 8, 12 or 14 coefficients) and
equidistant (fisheye k1 k2 k3 k4, cv2.fisheye) -> an undistorted image and its pinhole K, through
cv2.remap maps cached per (model, K, D, size). All-zero distortion skips the remap. Pixel coordinates
follow CameraInfo: pixel (0, 0)'s centre is (0, 0).
"""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

from .work_image import scaled_k

# The kind a validate_intrinsics reason starts with ("<kind>: <detail>"), for counting.
INTRINSICS_REASONS = {
    "scaled": "accepted: K scaled from the calibration size to the image size",
    "malformed": "K is not 3x3 with last row (0, 0, 1), or the roi or binning is no window of the sensor",
    "non_finite": "K holds NaN or inf",
    "non_positive_focal": "fx or fy <= 0",
    "principal_point_outside": "(cx, cy) is not on the image (on the sensor, for a window of it)",
    "size_mismatch": "calibration size differs from the image by no single clean ratio",
}
# Distortion coefficients each model reads (sensor_msgs/distortion_models.hpp). plumb_bob and
# rational_polynomial are one model to OpenCV, which reads D at any of OPENCV_PINHOLE_LENGTHS (thin
# prism s1-s4: 12, tilt tx ty: 14); image_geometry passes D to it at whatever length it came, and
# drivers rely on that: Orbbec's labels its 8 coefficients plumb_bob (refused, its K was lost too).
OPENCV_PINHOLE_LENGTHS = (4, 5, 8, 12, 14)
DISTORTION_LENGTHS = {"plumb_bob": OPENCV_PINHOLE_LENGTHS, "rational_polynomial": OPENCV_PINHOLE_LENGTHS,
                      "equidistant": (4,)}
# An undistorted view whose focal length is more than this factor off the calibrated one shows a
# sliver of the image blown up (or the image shrunk to a dot): coefficients no real lens has (the
# fuzz test sent k1 = 1e30, which made fx 1e32). The TUM and fisheye lenses in the tests stay within 1.5.
MAX_FOCAL_CHANGE = 8.0
# Fewer output pixels than this fraction mapping onto the image: the remap shows mostly border.
MIN_MAP_COVERAGE = 0.5
# Undistorting a point iterates: OpenCV's default 5 iterations leave a point near the edge of a strongly
# distorted image pixels off (hundreds on a wide barrel lens), in camera.Lens and in the alpha-0 view alike.
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-9)


def reason_kind(reason: str) -> str:
    """The counting key of a validate_intrinsics reason ('' when K was accepted unchanged)."""
    return reason.split(":", 1)[0]


def validate_intrinsics(k, width: int, height: int, calib_width: int = 0, calib_height: int = 0,
                        sensor_extent: tuple[float, float, float, float] | None = None
                        ) -> tuple[np.ndarray | None, str]:
    """(K for an image of width x height, reason): reason is '' when K is used as given,
    'scaled: ...' when it was scaled, and for a refusal K is None and the reason starts with one of
    INTRINSICS_REASONS' kinds. calib_width/height 0 (unset in CameraInfo) means the image size.
    sensor_extent: where the principal point may lie, the full sensor as (left, top, right, bottom)
    in units of the image's width and height (camera.sensor_extent), when the image is a window of
    the sensor; None: the image itself, (0, 0, 1, 1)."""
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
    # A window (roi) of the sensor may leave the optical centre out: a camera reading a strip of it.
    left, top, right, bottom = sensor_extent or (0.0, 0.0, 1.0, 1.0)
    x0, x1, y0, y1 = left * width - 0.5, right * width - 0.5, top * height - 0.5, bottom * height - 0.5
    if not (x0 <= cx <= x1 and y0 <= cy <= y1):
        where = "" if sensor_extent is None else f" cut from a sensor at x {x0:.1f}..{x1:.1f}, y {y0:.1f}..{y1:.1f}"
        return None, f"principal_point_outside: ({cx:.1f}, {cy:.1f}) on a {width}x{height} image{where}"
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

    def __call__(self, rgb: np.ndarray, k: np.ndarray, d, model: str,
                 sensor_extent: tuple[float, float, float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(undistorted image, its K). With no distortion, the same array and K (no remap, no copy).
        sensor_extent: as validate_intrinsics', for an image that is a window of the sensor."""
        d = check_distortion(model, d)
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        if d.size == 0:
            return rgb, k
        height, width = rgb.shape[:2]
        # K to a millionth of a pixel: a driver that recomputes K for each message (float noise, the
        # same camera to ClipBuffer) rebuilt the maps for every frame, 1.6 ms a 640x480 frame.
        key = (model, np.round(k, 6).tobytes(), d.tobytes(), width, height, sensor_extent)
        if key in self.maps:
            self.maps.move_to_end(key)
        else:
            try:
                self.maps[key] = undistortion_maps(k, d, model, width, height, sensor_extent)
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


def undistortion_maps(k: np.ndarray, d: np.ndarray, model: str, width: int, height: int,
                      sensor_extent: tuple[float, float, float, float] | None = None):
    """Fixed-point remap maps and the new pinhole K: the node's undistortion (Undistorter), also used
    by the dataset readers (fourds_ros.rgbd) so that a recording is scored as the node sees it.

    plumb_bob / rational_polynomial: the view of only valid pixels (cv2.getOptimalNewCameraMatrix's
    alpha 0, checked on the maps: valid_pixels_view), so no black border enters the model as image
    content. equidistant: the pinhole view keeps the fisheye's own K (its centre resolution; a
    pinhole cannot show the far periphery, and the view it shows lies inside the fisheye image).
    cv2.fisheye.estimateNewCameraMatrixForUndistortRectify is not used: for a wide (T265-like) lens
    it put the principal point off the image.

    Coefficients no lens has (huge, or of the wrong sign for their size) made OpenCV return a new K
    with negative or 1e-37 focal lengths, or maps pointing off the image: DistortionError
    'bad_distortion' when the new K fails validate_intrinsics (its principal point held to
    sensor_extent, as the camera's was), its focal length changes by more than MAX_FOCAL_CHANGE, or
    under MIN_MAP_COVERAGE of the output comes from the image.
    """
    size = (width, height)
    try:
        if model == "equidistant":
            new_k = k.copy()
            map_x, map_y = remap_to_pinhole(k, d, model, new_k, size)
        else:
            new_k, map_x, map_y = valid_pixels_view(k, d, width, height)
    except cv2.error as exc:
        raise DistortionError("bad_distortion", f"OpenCV cannot undistort {model} D={d.tolist()}: {exc}") from exc
    new_k = np.asarray(new_k, dtype=np.float64)
    checked, reason = validate_intrinsics(new_k, width, height, sensor_extent=sensor_extent)
    if checked is None:
        raise DistortionError("bad_distortion", f"{model} D={d.tolist()} gives an undistorted K that fails ({reason})")
    change = np.array([new_k[0, 0] / k[0, 0], new_k[1, 1] / k[1, 1]])
    if not (np.all(change <= MAX_FOCAL_CHANGE) and np.all(change >= 1 / MAX_FOCAL_CHANGE)):
        raise DistortionError("bad_distortion", f"{model} D={d.tolist()} changes the focal length by "
                              f"x{change.max():.3g} / x{change.min():.3g} when undistorted (not a real lens)")
    inside = _on_image(map_x, map_y, width, height).mean()
    if inside < MIN_MAP_COVERAGE:
        raise DistortionError("bad_distortion", f"{model} D={d.tolist()}: only {inside:.0%} of the undistorted "
                              "view comes from the image")
    map1, map2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)  # fixed point: remap twice as fast
    return map1, map2, new_k


def _on_image(map_x: np.ndarray, map_y: np.ndarray, width: int, height: int) -> np.ndarray:
    """Which output pixels of float remap maps take their value from the image (pixel i covers
    [i - 0.5, i + 0.5)). Read on the float maps: the fixed-point ones saturate (k1 = 1e30 made every
    entry 0, "on the image")."""
    return (map_x >= -0.5) & (map_x < width - 0.5) & (map_y >= -0.5) & (map_y < height - 0.5)


def valid_pixels_view(k: np.ndarray, d: np.ndarray, width: int, height: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(new K, float map_x, map_y) of the undistorted view that shows only pixels of the image, for
    OpenCV's pinhole model (plumb_bob, rational_polynomial).

    cv2.getOptimalNewCameraMatrix (alpha 0) where every output pixel of its maps is on the image, so
    that every lens it gets right (TUM's, the Azure's) keeps its K, and the recordings' figures, bit
    for bit. Elsewhere its 9 points a side, undistorted with the default 5 iterations, stopped short:
    on a wide barrel lens (1280x720, fx 500, k1 -0.35, k2 0.12) fx came 383 where 453 shows only the
    image, and 12 % of the view (108 whole columns) was black border, fed to the model as content
    and seeding the pose's corners on its edge. There: the same rectangle from every border pixel,
    undistorted to convergence (_inner_rectangle_k)."""
    size = (width, height)
    new_k, _ = cv2.getOptimalNewCameraMatrix(k, d, size, 0.0, size)
    map_x, map_y = remap_to_pinhole(k, d, "plumb_bob", new_k, size)
    if _on_image(map_x, map_y, width, height).all():
        return new_k, map_x, map_y
    new_k = _inner_rectangle_k(k, d, width, height)
    return (new_k, *remap_to_pinhole(k, d, "plumb_bob", new_k, size))


def _inner_rectangle_k(k: np.ndarray, d: np.ndarray, width: int, height: int) -> np.ndarray:
    """The pinhole K that maps the largest axis-aligned rectangle inside the undistorted image border
    onto the whole image, as getOptimalNewCameraMatrix's alpha 0 does (from its 9 points a side),
    from every border pixel undistorted with UNDISTORT_CRITERIA. A lens whose border does not enclose
    such a rectangle (coefficients no lens has) gives a K that validate_intrinsics refuses."""
    xs, ys = np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
    sides = (np.c_[np.zeros(height), ys], np.c_[np.full(height, width - 1.0), ys],
             np.c_[xs, np.zeros(width)], np.c_[xs, np.full(width, height - 1.0)])
    border = cv2.undistortPoints(np.concatenate(sides)[:, None], k, d, R=None, P=None, criteria=UNDISTORT_CRITERIA)
    left, right, top, bottom = np.split(border.reshape(-1, 2), np.cumsum([height, height, width]))
    x0, x1 = left[:, 0].max(), right[:, 0].min()  # normalised coordinates: the rectangle's sides
    y0, y1 = top[:, 1].max(), bottom[:, 1].min()
    with np.errstate(divide="ignore", invalid="ignore"):  # a degenerate rectangle: inf or NaN, refused
        fx, fy = (width - 1) / (x1 - x0), (height - 1) / (y1 - y0)
        return np.array([[fx, 0.0, -fx * x0], [0.0, fy, -fy * y0], [0.0, 0.0, 1.0]])
