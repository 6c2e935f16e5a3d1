"""Image decoding a camera's bytes can vary in: big-endian 16-bit pixels, mono16 depth in millimetres, JPEGs whose
EXIF turns them."""
from __future__ import annotations

import numpy as np
import pytest

from fourds_ros.perception.image import decode_depth, decode_raw


@pytest.mark.parametrize("encoding, channels", [("mono16", 1), ("16UC1", 1), ("rgb16", 3), ("bgra16", 4)])
def test_big_endian_16_bit_images_read_as_their_little_endian_twins(encoding, channels):
    """Values whose two bytes differ (a 12-bit camera's 0x0FA0): the existing tests use v * 257, whose
    bytes are equal, so they pass whatever the byte order is read as."""
    values = np.array([[0x0010, 0x0FA0, 0x1234], [0x8000, 0x00FF, 0xFF00]], np.uint16)
    image = np.repeat(values[..., None], channels, axis=2) if channels > 1 else values
    step = 3 * channels * 2
    little = decode_raw(encoding, 2, 3, step, image.astype("<u2").tobytes(), sixteen_bit_max=4095)
    big = decode_raw(encoding, 2, 3, step, image.astype(">u2").tobytes(), is_bigendian=True, sixteen_bit_max=4095)
    np.testing.assert_array_equal(big, little)
    assert little[0, 1, 0] == 249 and little[0, 0, 0] == 1  # 0x0FA0 = 4000: 4000 * 255 / 4095 = 249; 16 -> 1


def test_mono16_depth_is_millimetres_as_16uc1():
    """Drivers that label millimetre depth mono16 (as 16UC1): 1500 -> 1.5 m, not 1500 m."""
    mm = np.array([[0, 1500], [65535, 700]], np.uint16)
    for encoding in ("16UC1", "mono16"):
        depth = decode_depth(encoding, 2, 2, 4, mm.astype("<u2").tobytes())
        np.testing.assert_allclose(depth, [[0, 1.5], [65.535, 0.7]], rtol=1e-6)


def _jpeg_with_exif_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    import struct

    import cv2
    jpg = cv2.imencode(".jpg", rgb[..., ::-1])[1].tobytes()
    tiff = (b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0x0112, 3, 1, orientation)
            + struct.pack("<I", 0))
    app1 = b"Exif\x00\x00" + tiff
    return jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpg[2:]


@pytest.mark.parametrize("work_max_pixels", [0, 100_000])  # full size; decoded at 1/2 by libjpeg
def test_an_exif_rotated_jpeg_reports_the_size_it_decodes_to(work_max_pixels):
    """A 640x480 JPEG whose EXIF says "rotate 90" decodes to 480x640 (OpenCV applies the orientation):
    the camera size handed on must be the decoded one, or the intake divides and undistorts a turned
    image with the other aspect."""
    from fourds_ros.perception.image import decode_compressed_for_work

    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, :320] = (255, 0, 0)
    out, camera_hw = decode_compressed_for_work("jpeg", _jpeg_with_exif_orientation(rgb, 6), work_max_pixels)
    assert camera_hw == (640, 480)
    assert out.shape[:2] == ((640, 480) if work_max_pixels == 0 else (320, 240))
