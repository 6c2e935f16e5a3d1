"""Issue #20: camera_info that would give silently wrong geometry is refused or corrected.

Reproduced: NaN/inf in K reached depth/camera_info and made every track's xyz NaN; K for 1280x960
was used on 640x480 images; fisheye and strong plumb_bob distortion were ignored.
"""


from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from fourds_ros.perception.calibration import (
    INTRINSICS_REASONS, DistortionError, Undistorter, check_distortion, reason_kind, remap_to_pinhole,
    validate_intrinsics,
)
from fourds_ros.perception.camera import Calibration, CameraIntake, sensor_to_image

from .conftest import SHARED_DATA, require

TUM = SHARED_DATA / "tum_fr1_rpy_f000-079"
# TUM RGB-D "Freiburg 1 RGB" calibration (the data set README): strong lens distortion.
TUM_K = np.array([[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1]])
TUM_D = np.array([0.2624, -0.9531, -0.0054, 0.0026, 1.1633])


def kinds_of(reason: str) -> str:
    kind = reason_kind(reason)
    assert kind in INTRINSICS_REASONS, reason
    return kind


def test_good_k_is_used_as_given():
    k, reason = validate_intrinsics(TUM_K, 640, 480, 640, 480)
    assert reason == "" and np.array_equal(k, TUM_K)
    k, reason = validate_intrinsics(TUM_K.ravel().tolist(), 640, 480)  # calibration size unset (0)
    assert reason == "" and np.array_equal(k, TUM_K)


@pytest.mark.parametrize("index, value", [(0, np.nan), (2, np.inf), (5, -np.inf), (4, np.nan)])
def test_non_finite_k_is_refused(index, value):
    bad = TUM_K.ravel().copy()
    bad[index] = value
    k, reason = validate_intrinsics(bad, 640, 480)
    assert k is None and kinds_of(reason) == "non_finite"


@pytest.mark.parametrize("fx, fy", [(0.0, 516.5), (517.3, -1.0)])
def test_non_positive_focal_is_refused(fx, fy):
    bad = TUM_K.copy()
    bad[0, 0], bad[1, 1] = fx, fy
    k, reason = validate_intrinsics(bad, 640, 480)
    assert k is None and kinds_of(reason) == "non_positive_focal"


@pytest.mark.parametrize("cx, cy", [(700.0, 255.3), (318.6, -3.0), (639.6, 255.3)])
def test_principal_point_off_the_image_is_refused(cx, cy):
    bad = TUM_K.copy()
    bad[0, 2], bad[1, 2] = cx, cy
    k, reason = validate_intrinsics(bad, 640, 480)
    assert k is None and kinds_of(reason) == "principal_point_outside"
    bad[0, 2], bad[1, 2] = 639.4, 0.0  # last pixel's centre region and the top row are on the image
    assert validate_intrinsics(bad, 640, 480)[0] is not None


def test_malformed_k_is_refused():
    assert kinds_of(validate_intrinsics(np.zeros(6), 640, 480)[1]) == "malformed"
    bottom = TUM_K.copy()
    bottom[2] = (0, 0, 0)
    assert kinds_of(validate_intrinsics(bottom, 640, 480)[1]) == "malformed"


def test_k_for_twice_the_resolution_is_scaled_to_project_the_same_points():
    """K calibrated at 1280x960, images at 640x480 (binned): a 3-D point lands on the same
    physical spot of the sensor, i.e. its pixel scales about the image corner."""
    k_full = np.array([[1034.6, 0, 637.7], [0, 1033.0, 511.1], [0, 0, 1]])
    k, reason = validate_intrinsics(k_full, 640, 480, 1280, 960)
    assert kinds_of(reason) == "scaled" and "1280x960" in reason
    points = np.array([[0.3, -0.2, 2.0], [-0.5, 0.4, 3.0], [0.0, 0.0, 1.0]])
    full = (k_full @ points.T).T
    half = (k @ points.T).T
    full, half = full[:, :2] / full[:, 2:], half[:, :2] / half[:, 2:]
    assert np.allclose(half, (full + 0.5) / 2 - 0.5, atol=1e-9)


def camera_info(width, height, roi=(0, 0, 0, 0), binning=(0, 0)):
    """The CameraInfo fields camera.camera_info_window reads."""
    x, y, w, h = roi
    return SimpleNamespace(width=width, height=height, binning_x=binning[0], binning_y=binning[1],
                           roi=SimpleNamespace(x_offset=x, y_offset=y, width=w, height=h))


def test_principal_point_off_a_window_of_the_sensor_is_checked_against_the_sensor():
    """REP-104: the roi may be any window of the sensor. A camera reading the lower strip of its
    1280x960 sensor (the floor ahead) has its principal point above the image; checked against the
    window, its good K was refused (principal_point_outside) and the 60 degree default used instead."""
    from fourds_ros.perception.camera import sensor_extent

    k_sensor = np.array([[1000.0, 0, 639.5], [0, 1000.0, 479.5], [0, 0, 1]])
    strip = camera_info(1280, 960, roi=(0, 600, 1280, 360))
    extent = sensor_extent(strip)
    assert np.allclose(extent, (0.0, -600 / 360, 1.0, 1.0))
    k = sensor_to_image(k_sensor, (0, 600), (1, 1))  # as ros.convert.calibration brings it to the window
    accepted, reason = validate_intrinsics(k, 1280, 360, 1280, 360, extent)
    assert reason == "" and np.array_equal(accepted, k)
    half, reason = validate_intrinsics(k, 640, 180, 1280, 360, extent)  # the window resized: scaled, still on it
    assert kinds_of(reason) == "scaled" and np.isclose(half[1, 2], (k[1, 2] + 0.5) / 2 - 0.5)
    rgb = np.random.default_rng(0).integers(30, 255, (360, 1280, 3), np.uint8)
    calibration = Calibration(k, (), "", 1280, 360, sensor_extent=extent)
    assert np.array_equal(CameraIntake()(rgb, calibration)[1], k)
    lens = Calibration(k, (-0.1, 0.02, 0.0, 0.0, 0.0), "plumb_bob", 1280, 360, sensor_extent=extent)
    for image, camera_hw in ((rgb, None), (rgb[::2, ::2], (360, 1280))):  # undistorted at full and working size
        out, new_k, problem = CameraIntake()(image, lens, camera_hw)
        assert problem == "" and out.shape == image.shape and new_k[1, 2] < -0.5  # off the image, on the sensor
    # Off the sensor too (above its top row): refused as before.
    above = sensor_to_image(k_sensor + [[0, 0, 0], [0, 0, -530.0], [0, 0, 0]], (0, 600), (1, 1))
    k_refused, reason = validate_intrinsics(above, 1280, 360, 1280, 360, extent)
    assert k_refused is None and kinds_of(reason) == "principal_point_outside" and "sensor" in reason
    # Binned, or no window: the sensor is the image.
    assert sensor_extent(camera_info(1280, 960)) is None
    assert np.allclose(sensor_extent(camera_info(1280, 960, binning=(2, 2))), (0, 0, 1, 1))


@pytest.mark.parametrize("calib", [(1280, 720), (640, 481), (1000, 480)])
def test_calibration_size_without_one_clean_ratio_is_refused(calib):
    k, reason = validate_intrinsics(TUM_K, 640, 480, *calib)
    assert k is None and kinds_of(reason) == "size_mismatch"


def blob_image(points_xy: np.ndarray, width: int, height: int, sigma: float = 1.5) -> np.ndarray:
    """Gaussian dots (peak 255) centred on sub-pixel positions, as an RGB uint8 image."""
    image = np.zeros((height, width))
    for x, y in points_xy:  # each dot drawn in its own window of +-4 sigma
        x0, x1 = max(int(x - 4 * sigma), 0), min(int(x + 4 * sigma) + 2, width)
        y0, y1 = max(int(y - 4 * sigma), 0), min(int(y + 4 * sigma) + 2, height)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        dot = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
        image[y0:y1, x0:x1] = np.maximum(image[y0:y1, x0:x1], dot)
    grey = np.round(image * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def centroids(image: np.ndarray, around: np.ndarray, radius: int = 5) -> np.ndarray:
    grey = image[..., 0].astype(np.float64)
    found = []
    for x, y in around:
        x0, y0 = int(round(x)), int(round(y))
        window = grey[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1]
        ys, xs = np.mgrid[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1]
        found.append(((xs * window).sum() / window.sum(), (ys * window).sum() / window.sum()))
    return np.array(found)


def scene_points(k: np.ndarray, width: int, height: int, margin: float) -> np.ndarray:
    """3-D points (z = 1) whose pinhole projections form a grid over the image's inner part."""
    us, vs = np.meshgrid(np.linspace(margin * width, (1 - margin) * width, 7),
                         np.linspace(margin * height, (1 - margin) * height, 5))
    rays = np.linalg.inv(k) @ np.stack([us.ravel(), vs.ravel(), np.ones(us.size)])
    return rays.T


def check_round_trip(undistorter, k, d, model, width, height, distorted_xy, points):
    image = blob_image(distorted_xy, width, height)
    out, new_k = undistorter(image, k, d, model)
    expected = (new_k @ points.T).T
    expected = expected[:, :2] / expected[:, 2:]
    inside = (expected[:, 0] > 8) & (expected[:, 0] < width - 9) & (expected[:, 1] > 8) & (expected[:, 1] < height - 9)
    assert inside.sum() >= 20
    error = np.linalg.norm(centroids(out, expected[inside]) - expected[inside], axis=1)
    print(f"{model}: {inside.sum()} points, max error {error.max():.3f} px")
    assert error.max() < 0.5, error.max()


def test_tum_plumb_bob_point_maps_to_its_undistorted_projection():
    points = scene_points(TUM_K, 640, 480, 0.1)
    distorted, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), TUM_K, TUM_D)
    undistorted_pinhole = (TUM_K @ points.T).T[:, :2]
    # The reproduction: TUM's distortion moves points by several pixels if ignored.
    assert np.linalg.norm(distorted[:, 0] - undistorted_pinhole, axis=1).max() > 5
    check_round_trip(Undistorter(), TUM_K, TUM_D, "plumb_bob", 640, 480, distorted[:, 0], points)


def test_rational_polynomial_point_maps_to_its_undistorted_projection():
    # An 8-coefficient lens (k1 k2 p1 p2 k3 k4 k5 k6) of the size depth cameras report.
    d = np.array([0.55, -2.6, 0.0008, -0.0003, 1.55, 0.43, -2.42, 1.47])
    k = np.array([[605.0, 0, 639.2], [0, 604.8, 366.1], [0, 0, 1]])
    points = scene_points(k, 1280, 720, 0.15)
    distorted, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), k, d)
    check_round_trip(Undistorter(), k, d, "rational_polynomial", 1280, 720, distorted[:, 0], points)


def test_rational_polynomial_with_thin_prism_and_tilt_terms_is_undistorted():
    """12 (thin prism s1-s4) and 14 (tilt tx ty) coefficients, as OpenCV's calibration writes them
    and image_geometry reads them, were refused (the default intrinsics used instead)."""
    d8 = np.array([0.55, -2.6, 0.0008, -0.0003, 1.55, 0.43, -2.42, 1.47])
    k = np.array([[605.0, 0, 639.2], [0, 604.8, 366.1], [0, 0, 1]])
    frame = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    expected, expected_k = Undistorter()(frame, k, d8, "rational_polynomial")
    out, new_k = Undistorter()(frame, k, np.r_[d8, np.zeros(6)], "rational_polynomial")
    assert np.array_equal(new_k, expected_k) and np.array_equal(out, expected)
    d12 = np.r_[d8, 0.01, -0.002, 0.005, 0.001]  # moves points by up to 5 px against d8
    points = scene_points(k, 1280, 720, 0.15)
    distorted, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), k, d12)
    check_round_trip(Undistorter(), k, d12, "rational_polynomial", 1280, 720, distorted[:, 0], points)


def test_plumb_bob_with_8_12_or_14_coefficients_is_undistorted_as_opencv_reads_it():
    """Orbbec's ROS 2 driver labels its lenses plumb_bob with 8 coefficients (k1 k2 p1 p2 k3 k4 k5 k6),
    and image_geometry hands D to OpenCV at any length OpenCV reads. Refused, the camera_info's K
    went too: the 60 degree default put metric depth 1.6x off on an 86 degree Gemini 2 class camera."""
    k = np.array([[686.0, 0, 641.3], [0, 686.2, 362.8], [0, 0, 1]])
    d5 = (0.08, -0.11, 0.0004, -0.0002, 0.045)
    frame = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    expected, expected_k, _ = CameraIntake()(frame, Calibration(k, d5, "plumb_bob", 1280, 720))
    for model in ("plumb_bob", "rational_polynomial"):
        for d in (d5, d5 + (0.0,) * 3, d5 + (0.0,) * 7, d5 + (0.0,) * 9):  # Orbbec fills k4..k6 with 0
            out, new_k, problem = CameraIntake()(frame, Calibration(k, d, model, 1280, 720))
            assert problem == "" and np.array_equal(new_k, expected_k) and np.array_equal(out, expected)
    d8 = np.r_[d5, 0.02, -0.01, 0.01]  # k4..k6 read, not dropped: they move these points by up to 4.5 px
    points = scene_points(k, 1280, 720, 0.15)
    distorted, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), k, d8)
    check_round_trip(Undistorter(), k, d8, "plumb_bob", 1280, 720, distorted[:, 0], points)


def test_a_wide_barrel_lens_undistorts_to_valid_pixels_only():
    """alpha 0 promises only valid pixels. On a wide barrel lens (1280x720, fx 500, k1 -0.35 k2 0.12)
    cv2.getOptimalNewCameraMatrix's border undistortion (5 iterations) stopped short: fx 383, and
    12.3 % of the frame (108 whole columns) was black border, fed to the model as image content."""
    k = np.array([[500.0, 0, 639.5], [0, 500.0, 359.5], [0, 0, 1]])
    d = np.array([-0.35, 0.12, 0.0, 0.0, 0.0])
    frame = np.random.default_rng(0).integers(30, 256, (720, 1280, 3), dtype=np.uint8)  # never black
    out, new_k = Undistorter()(frame, k, d, "plumb_bob")
    black = out.max(axis=2) == 0
    assert black.mean() < 0.005 and not black.all(axis=0).any()
    # The largest view of only the image's pixels (from the border undistorted to convergence).
    np.testing.assert_allclose([new_k[0, 0], new_k[1, 1]], 453.3, rtol=0.005)
    map_x, map_y = remap_to_pinhole(k, d, "plumb_bob", new_k, (1280, 720))
    assert map_x.min() >= -0.5 and map_x.max() < 1279.5 and map_y.min() >= -0.5 and map_y.max() < 719.5


@pytest.mark.parametrize("model, k, d, size", [
    ("plumb_bob", TUM_K, TUM_D, (640, 480)),
    ("plumb_bob", TUM_K, (-0.35, 0.12, 0.0, 0.0, 0.0), (640, 480)),  # test_lens_pixels' plumb_bob_wide
    ("rational_polynomial", np.array([[605.0, 0, 639.2], [0, 604.8, 366.1], [0, 0, 1]]),
     (0.55, -2.6, 0.0008, -0.0003, 1.55, 0.43, -2.42, 1.47), (1280, 720)),
])
def test_lenses_opencv_undistorts_to_valid_pixels_keep_its_k(model, k, d, size):
    """Where getOptimalNewCameraMatrix's view is all image, its K is kept bit for bit: no recording's
    K, and so no evaluation figure, moves with the wide lens's fix."""
    expected, _ = cv2.getOptimalNewCameraMatrix(k, np.array(d), size, 0.0, size)
    _, new_k = Undistorter()(np.zeros((size[1], size[0], 3), np.uint8), k, d, model)
    assert np.array_equal(new_k, expected)


def test_equidistant_fisheye_point_maps_to_its_undistorted_projection():
    # A wide fisheye (848x800, ~170 deg) like a RealSense T265's: the equidistant (Kannala-Brandt) model.
    k = np.array([[285.7, 0, 418.9], [0, 285.9, 405.0], [0, 0, 1]])
    d = np.array([-0.0062, 0.0427, -0.0402, 0.0072])
    points = scene_points(k, 848, 800, 0.3)
    distorted, _ = cv2.fisheye.projectPoints(points[None], np.zeros(3), np.zeros(3), k, d)
    assert np.linalg.norm(distorted[0] - (k @ points.T).T[:, :2], axis=1).max() > 20  # ignoring it: far off
    check_round_trip(Undistorter(), k, d, "equidistant", 848, 800, distorted[0], points)


def test_maps_are_cached_per_camera_info():
    undistorter = Undistorter(max_cached=2)
    image = np.zeros((48, 64, 3), np.uint8)
    k = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    for i in range(3):  # a driver that recomputes K for each message: float noise, the same camera
        undistorter(image, k * [[1 + 1e-12 * i], [1], [1]], TUM_D, "plumb_bob")
    assert undistorter.maps_built == 1  # was 3: the maps rebuilt for every frame
    undistorter(image, k * [[1.01], [1], [1]], TUM_D, "plumb_bob")  # another camera_info
    undistorter(image, k, TUM_D, "plumb_bob")
    assert undistorter.maps_built == 2 and len(undistorter.maps) == 2
    undistorter(np.zeros((96, 128, 3), np.uint8), k * [[2], [2], [1]], TUM_D, "plumb_bob")
    assert len(undistorter.maps) == 2  # bounded: the oldest entry went


def test_zero_distortion_is_a_fast_path_without_remap():
    undistorter = Undistorter()
    frame = np.zeros((480, 640, 3), np.uint8)
    for d, model in (([0.0] * 5, "plumb_bob"), ([], ""), ([0.0] * 4, "equidistant"), (None, "unknown")):
        out, k = undistorter(frame, TUM_K, d, model)
        assert out is frame and np.array_equal(k, TUM_K)
    assert undistorter.maps_built == 0


def test_real_tum_frame_undistorts_without_black_border():
    frame = cv2.cvtColor(cv2.imread(str(sorted((require(TUM) / "rgb").glob("*.jpg"))[0])), cv2.COLOR_BGR2RGB)
    out, new_k = Undistorter()(frame, TUM_K, TUM_D, "plumb_bob")
    assert out.shape == frame.shape and out.dtype == np.uint8
    # alpha 0: every output pixel comes from the image, so no all-black rows or columns at the edges.
    for edge in (out[0], out[-1], out[:, 0], out[:, -1]):
        assert (edge.max(axis=1) > 0).mean() > 0.95
    assert validate_intrinsics(new_k, 640, 480)[1] == ""  # the new K passes our own checks


@pytest.mark.parametrize("model, d, kind", [
    ("kannala_brandt8", [0.1] * 8, "unsupported_distortion_model"),
    ("plumb_bob", [0.1, 0.2, 0.3], "bad_distortion"),
    ("plumb_bob", [0.1] * 6, "bad_distortion"),  # lengths OpenCV does not read
    ("rational_polynomial", [0.1] * 9, "bad_distortion"),
    ("plumb_bob", [0.1] * 15, "bad_distortion"),
    ("equidistant", [0.1] * 5, "bad_distortion"),
    ("plumb_bob", [0.1, np.nan, 0, 0, 0], "bad_distortion"),
])
def test_bad_distortion_is_a_named_error(model, d, kind):
    with pytest.raises(DistortionError) as err:
        check_distortion(model, d)
    assert err.value.kind == kind
