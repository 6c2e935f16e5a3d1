"""Image decoding and preprocessing + intrinsics (no rclpy)."""

import cv2
import numpy as np
import pytest

from .conftest import SHARED_DATA, require
from fourds_ros.perception.image import ENCODINGS, ImageDecodeError, decode_compressed, decode_depth, decode_raw, encode_raw
from fourds_ros.perception.preprocess import Preprocessor

SCENES = SHARED_DATA / "7scenes_redkitchen_f000-299"


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_round_trip(rgb, encoding):
    data, step = encode_raw(rgb, encoding)
    assert np.array_equal(decode_raw(encoding, 6, 10, step, data), rgb)


def test_bgr_channel_order_is_swapped(rgb):
    assert np.array_equal(decode_raw("bgr8", 6, 10, 30, rgb.tobytes()), rgb[..., ::-1])


def test_mono8_and_row_padding():
    mono = np.arange(6 * 10, dtype=np.uint8).reshape(6, 10)
    padded = np.zeros((6, 16), np.uint8)
    padded[:, :10] = mono
    out = decode_raw("mono8", 6, 10, 16, padded.tobytes())
    assert out.shape == (6, 10, 3) and np.array_equal(out[..., 1], mono)


def test_bad_inputs_name_their_kind(rgb):
    with pytest.raises(ImageDecodeError) as err:
        decode_raw("32FC1", 6, 10, 40, bytes(240))
    assert err.value.kind == "unsupported_encoding" and "32FC1" in str(err.value)
    with pytest.raises(ImageDecodeError) as err:
        decode_raw("rgb8", 6, 10, 30, rgb.tobytes()[:-1])
    assert err.value.kind == "size"
    with pytest.raises(ImageDecodeError) as err:
        decode_raw("rgb8", 6, 10, 20, bytes(120))
    assert err.value.kind == "size"
    with pytest.raises(ImageDecodeError) as err:
        decode_compressed("jpeg", b"not a jpeg")
    assert err.value.kind == "unsupported_format"


def test_compressed_png_is_lossless_and_rgb(rgb):
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok and np.array_equal(decode_compressed("png", buf.tobytes()), rgb)


def test_supported_encodings_listed():
    assert {"rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1", "nv12", "nv21", "uyvy", "yuyv",
            "yuv422", "yuv422_yuy2", "bayer_rggb8", "bayer_bggr16"} <= set(ENCODINGS)


@pytest.mark.parametrize("policy", ["center_crop", "resize"])
def test_intrinsics_follow_the_pixel_map(policy):
    """A 3-D point projects to the same model pixel through K_model as through K + the map."""
    k = np.array([[585.0, 0, 320], [0, 585.0, 240], [0, 0, 1]])
    pre = Preprocessor((128, 128), policy)
    pmap = pre.pixel_map((480, 640))
    k_model = pmap.transform_k(k)
    points = np.array([[0.3, -0.2, 2.0], [-0.5, 0.4, 3.0], [0, 0, 1.0]])
    uv_in = (k @ points.T).T
    uv_in = uv_in[:, :2] / uv_in[:, 2:]
    uv_model = (k_model @ points.T).T
    uv_model = uv_model[:, :2] / uv_model[:, 2:]
    mx, my = pmap.to_model(uv_in[:, 0], uv_in[:, 1])
    assert np.allclose(np.stack([mx, my], 1), uv_model, atol=1e-9)
    bx, by = pmap.to_input(mx, my)
    assert np.allclose(np.stack([bx, by], 1), uv_in)
    if policy == "center_crop":
        assert np.isclose(k_model[0, 0], k_model[1, 1])  # no anisotropic scaling
        assert pre.crop_box((480, 640)) == (0, 480, 80, 560)


def test_preprocess_real_frame():
    frame = cv2.cvtColor(cv2.imread(str(require(SCENES) / "frame-000000.color.jpg")), cv2.COLOR_BGR2RGB)
    out = Preprocessor((128, 96), "center_crop")(frame)
    assert out.shape == (128, 96, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0 and out.std() > 0.02


def test_depth_images_decode_to_metres_and_bad_ones_are_refused_by_kind():
    """perception.image.decode_depth (metric_scale_source: reference_depth's images): 32FC1 metres,
    16UC1 / mono16 millimetres in either byte order and with row padding; no depth is 0."""
    metres = np.array([[1.5, np.nan], [np.inf, -1.0]], "<f4")
    np.testing.assert_array_equal(decode_depth("32FC1", 2, 2, 8, metres.tobytes()), [[1.5, 0], [0, 0]])
    mm = np.array([[1000, 0], [2500, 65535]], ">u2")
    padded = np.zeros((2, 6), np.uint8)  # a step of 6 bytes for 4 of pixels
    padded[:, :4] = mm.view(np.uint8).reshape(2, 4)
    got = decode_depth("16UC1", 2, 2, 6, padded.tobytes(), is_bigendian=True)
    np.testing.assert_allclose(got, [[1.0, 0], [2.5, 65.535]], rtol=1e-6)
    for args, kind in ((("8UC1", 2, 2, 2, bytes(4)), "unsupported_encoding"), (("mono16", 2, 2, 4, bytes(7)), "size"),
                       (("32FC1", 5000, 5000, 20000, b""), "too_large")):
        with pytest.raises(ImageDecodeError) as err:
            decode_depth(*args, max_input_pixels=10_000_000)
        assert err.value.kind == kind


@pytest.mark.parametrize("hw", [(480, 641), (481, 640), (480, 640), (720, 1280), (333, 517)])
def test_the_pixel_map_is_the_window_the_model_is_fed(hw):
    """The model is fed crop_box's whole-pixel window; the map (and so K, tracks back in camera
    pixels, depth placed at camera resolution) put the window's corner exactly in the middle: half
    an input pixel off wherever the margin was odd (641 x 480, or a division of a camera)."""
    from fourds_ros.perception.preprocess import Preprocessor

    pre = Preprocessor((128, 128))
    y0, y1, x0, x1 = pre.crop_box(hw)
    pmap = pre.pixel_map(hw)
    # the window's first and last pixels land on the model image's first and last
    np.testing.assert_allclose(pmap.to_model(np.array([x0, x1 - 1.0]), np.array([y0, y1 - 1.0])),
                               [[-0.5 + 0.5 * 128 / (x1 - x0), 127.5 - 0.5 * 128 / (x1 - x0)],
                                [-0.5 + 0.5 * 128 / (y1 - y0), 127.5 - 0.5 * 128 / (y1 - y0)]], atol=1e-9)


def test_8uc3_is_read_as_the_bgr_frame_cv_bridge_passthrough_publishes():
    """cv_bridge.cv2_to_imgmsg(frame) (encoding "passthrough") publishes an OpenCV BGR frame as 8UC3;
    read as RGB, red came out blue."""
    bgr_red = np.zeros((2, 2, 3), np.uint8)
    bgr_red[..., 2] = 255
    assert decode_raw("8UC3", 2, 2, 6, bgr_red.tobytes())[0, 0].tolist() == [255, 0, 0]
