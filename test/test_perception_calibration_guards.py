"""The undistortion's guards: a recalibration that changes D alone gets new maps, a lens that zooms the view past
MAX_FOCAL_CHANGE and a fisheye whose view is mostly border are bad_distortion."""
from __future__ import annotations

import numpy as np
import pytest

from fourds_ros.perception.calibration import DistortionError, Undistorter, undistortion_maps

K = np.array([[300.0, 0, 319.5], [0, 300.0, 239.5], [0, 0, 1]])


def test_a_new_distortion_with_the_same_k_is_not_undistorted_with_the_old_maps():
    """A camera recalibrated in place (set_camera_info: same K, new D) must be undistorted with the new D:
    the cache key holds D as well as K."""
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    und = Undistorter()
    first, k1 = und(rgb, K, [-0.2, 0.05, 0, 0, 0], "plumb_bob")
    second, k2 = und(rgb, K, [0.1, -0.02, 0, 0, 0], "plumb_bob")
    fresh, k3 = Undistorter()(rgb, K, [0.1, -0.02, 0, 0, 0], "plumb_bob")
    np.testing.assert_array_equal(k2, k3)
    np.testing.assert_array_equal(second, fresh)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("d", [[5.0, 0, 0, 0, 0], [0, 0, 0, 0, 100.0]])
def test_a_lens_that_zooms_the_view_more_than_max_focal_change_is_bad_distortion(d):
    """Coefficients that make the alpha-0 view 8x (or 557x) the calibrated focal length show a sliver of
    the image blown up: refused, not fed to the model."""
    with pytest.raises(DistortionError) as exc:
        undistortion_maps(K, np.array(d), "plumb_bob", 640, 480)
    assert exc.value.kind == "bad_distortion" and "focal length" in str(exc.value)


def test_a_fisheye_whose_view_is_mostly_border_is_bad_distortion():
    """equidistant keeps the camera's K, so only the map coverage catches coefficients that leave most
    of the undistorted view outside the image (k1 = 2: 43 %)."""
    with pytest.raises(DistortionError) as exc:
        undistortion_maps(K, np.array([2.0, 0, 0, 0]), "equidistant", 640, 480)
    assert exc.value.kind == "bad_distortion" and "comes from the image" in str(exc.value)
