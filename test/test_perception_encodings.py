"""Issue #20: the encodings cameras send (Bayer, YUV 4:2:2, NV12/NV21, 16-bit grey) decode to RGB.

Each test writes a real frame (samples/hololens_000) into the encoding by the byte layout
sensor_msgs/image_encodings defines, written here with numpy and independent of OpenCV's naming,
then checks decode_raw gives the colours back. The wrong layout (R and B swapped, U and V swapped,
a Bayer pattern one pixel off) must do clearly worse, so a naming slip cannot pass.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest

from fourds_ros.perception.image import ENCODINGS, ImageDecodeError, decode_raw

FRAME = Path(__file__).resolve().parents[1] / "samples" / "hololens_000" / "images" / "00305.jpg"
CHANNEL = {"r": 0, "g": 1, "b": 2}


@pytest.fixture(scope="module")
def rgb():
    return cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)  # 360 x 540, both even


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


def bayer_mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """ROS names the 2x2 block row by row: rggb = R G on even rows, G B on odd rows."""
    mosaic = np.empty(rgb.shape[:2], rgb.dtype)
    for (dy, dx), colour in zip([(0, 0), (0, 1), (1, 0), (1, 1)], pattern):
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, CHANNEL[colour]]
    return mosaic


def bt601_limited(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U (Cb), V (Cr) as float, ITU-R BT.601 studio range (Y 16-235, chroma 16-240)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return y, u, v


def to_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def yuv422(rgb: np.ndarray, order: str) -> bytes:
    """Packed 4:2:2, chroma averaged over horizontal pixel pairs; order 'uyvy' or 'yuyv'."""
    y, u, v = bt601_limited(rgb)
    u2, v2 = (to_u8((c[:, 0::2] + c[:, 1::2]) / 2) for c in (u, v))
    y0, y1 = to_u8(y[:, 0::2]), to_u8(y[:, 1::2])
    planes = {"uyvy": (u2, y0, v2, y1), "yuyv": (y0, u2, y1, v2)}[order]
    return np.stack(planes, axis=2).tobytes()  # (H, W/2, 4) = one macropixel per pixel pair


def yuv420sp(rgb: np.ndarray, chroma_first: str) -> bytes:
    """Semi-planar 4:2:0: the Y plane, then interleaved chroma averaged over 2x2 blocks;
    nv12 interleaves U then V, nv21 V then U."""
    y, u, v = bt601_limited(rgb)
    def half(c):
        return to_u8((c[0::2, 0::2] + c[0::2, 1::2] + c[1::2, 0::2] + c[1::2, 1::2]) / 4)
    pair = (half(u), half(v)) if chroma_first == "u" else (half(v), half(u))
    return to_u8(y).tobytes() + np.stack(pair, axis=2).tobytes()


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_8bit_round_trip(rgb, pattern):
    height, width = rgb.shape[:2]
    out = decode_raw(f"bayer_{pattern}8", height, width, width, bayer_mosaic(rgb, pattern).tobytes())
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert mae(out, rgb) < 3.0  # measured 1.8: demosaicing error on a real frame
    # The pattern shifted by one column (what a ROS/OpenCV naming slip does) is far off.
    shifted = {"rggb": "grbg", "grbg": "rggb", "bggr": "gbrg", "gbrg": "bggr"}[pattern]
    wrong = decode_raw(f"bayer_{shifted}8", height, width, width, bayer_mosaic(rgb, pattern).tobytes())
    assert mae(wrong, rgb) > 3 * mae(out, rgb)


@pytest.mark.parametrize("pattern", ["rggb", "gbrg"])
@pytest.mark.parametrize("bigendian", [False, True])
def test_bayer_16bit_round_trip(rgb, pattern, bigendian):
    height, width = rgb.shape[:2]
    mosaic = bayer_mosaic(rgb, pattern).astype(np.uint16) * 257  # full 16-bit range
    data = mosaic.astype(">u2" if bigendian else "<u2").tobytes()
    out = decode_raw(f"bayer_{pattern}16", height, width, width * 2, data, is_bigendian=bigendian)
    assert mae(out, rgb) < 3.0


@pytest.mark.parametrize("encoding, order", [("uyvy", "uyvy"), ("yuv422", "uyvy"), ("yuyv", "yuyv"),
                                             ("yuv422_yuy2", "yuyv")])
def test_yuv422_round_trip(rgb, encoding, order):
    height, width = rgb.shape[:2]
    out = decode_raw(encoding, height, width, width * 2, yuv422(rgb, order))
    assert mae(out, rgb) < 3.0  # chroma subsampling + rounding on a real frame
    assert np.abs(out.reshape(-1, 3).mean(0) - rgb.reshape(-1, 3).mean(0)).max() < 1.5  # colour balance kept
    other = {"uyvy": "yuyv", "yuyv": "uyvy"}[order]
    assert mae(decode_raw(encoding, height, width, width * 2, yuv422(rgb, other)), rgb) > 20


@pytest.mark.parametrize("encoding", ["nv12", "nv21"])
def test_yuv420_semi_planar_round_trip(rgb, encoding):
    height, width = rgb.shape[:2]
    first = "u" if encoding == "nv12" else "v"
    out = decode_raw(encoding, height, width, width, yuv420sp(rgb, first))
    assert mae(out, rgb) < 3.0
    assert np.abs(out.reshape(-1, 3).mean(0) - rgb.reshape(-1, 3).mean(0)).max() < 1.5
    swapped = decode_raw(encoding, height, width, width, yuv420sp(rgb, "v" if first == "u" else "u"))
    assert mae(swapped, rgb) > 3 * mae(out, rgb)  # U and V swapped: reds turn blue


def test_nv12_with_padded_rows(rgb):
    """step > width pads every row of both planes (a common hardware stride)."""
    height, width = rgb.shape[:2]
    step = width + 28
    planes = np.frombuffer(yuv420sp(rgb, "u"), np.uint8).reshape(height * 3 // 2, width)
    padded = np.zeros((height * 3 // 2, step), np.uint8)
    padded[:, :width] = planes
    out = decode_raw("nv12", height, width, step, padded.tobytes())
    assert np.array_equal(out, decode_raw("nv12", height, width, width, planes.tobytes()))


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_uses_the_full_16bit_range(rgb, bigendian):
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    data = (grey.astype(np.uint16) * 257).astype(">u2" if bigendian else "<u2").tobytes()
    out = decode_raw("mono16", height, width, width * 2, data, is_bigendian=bigendian)
    assert np.array_equal(out[..., 0], grey) and np.array_equal(out[..., 2], grey)  # v / 257 exactly


def test_16uc1_scaled_by_sixteen_bit_max(rgb):
    """A 12-bit camera in a 16-bit container: sixteen_bit_max=4095 maps it back to 0-255."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    twelve_bit = np.round(grey.astype(np.float64) * 4095 / 255).astype(np.uint16)
    out = decode_raw("16UC1", height, width, width * 2, twelve_bit.tobytes(), sixteen_bit_max=4095)
    assert np.abs(out[..., 1].astype(int) - grey).max() <= 1
    # The default (full 16-bit range) leaves such a camera dark, but never wraps or saturates.
    assert decode_raw("16UC1", height, width, width * 2, twelve_bit.tobytes()).max() == round(4095 / 257)


def test_16bit_colour_round_trip(rgb):
    height, width = rgb.shape[:2]
    bgr16 = (rgb[..., ::-1].astype(np.uint16) * 257).tobytes()
    assert np.array_equal(decode_raw("bgr16", height, width, width * 6, bgr16), rgb)


def test_odd_width_or_height_for_subsampled_layouts_is_a_size_error():
    with pytest.raises(ImageDecodeError) as err:
        decode_raw("yuyv", 4, 5, 10, bytes(40))
    assert err.value.kind == "size" and "even" in str(err.value)
    with pytest.raises(ImageDecodeError) as err:
        decode_raw("nv21", 5, 4, 4, bytes(28))
    assert err.value.kind == "size"
    with pytest.raises(ImageDecodeError) as err:  # nv12 needs height * 3 / 2 rows of data
        decode_raw("nv12", 4, 4, 4, bytes(16))
    assert err.value.kind == "size"


@pytest.mark.parametrize("encoding", ["32FC1", "yuv444", "bayer_rggb32", "", "jpeg"])
def test_unknown_encoding_is_named(encoding):
    with pytest.raises(ImageDecodeError) as err:
        decode_raw(encoding, 4, 4, 16, bytes(64))
    assert err.value.kind == "unsupported_encoding" and repr(encoding) in str(err.value)


def test_every_listed_encoding_decodes_a_tiny_frame():
    """No entry in the table is broken: a 2x2 frame of each decodes to (2, 2, 3) uint8."""
    for encoding, channels in ENCODINGS.items():
        itemsize = 2 if "16" in encoding else 1
        rows = 3 if encoding in ("nv12", "nv21") else 2
        step = 2 * channels * itemsize
        out = decode_raw(encoding, 2, 2, step, bytes(range(rows * step)))
        assert out.shape == (2, 2, 3) and out.dtype == np.uint8, encoding
