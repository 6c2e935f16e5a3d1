"""Raw sensor_msgs/Image and CompressedImage payloads -> RGB uint8 numpy, without rclpy.

The node passes the message fields (encoding, height, width, step, data bytes); every failure is
an ImageDecodeError whose `kind` (one of DECODE_ERROR_KINDS) names the problem, so the node can log
and count it per kind. Nothing is allocated for a frame before its declared size has been checked
against `max_input_pixels`: for compressed frames the JPEG/PNG header is read first (image_header.py),
so a small file that declares a huge image is refused before the decoder sees it.

Encodings follow ROS's sensor_msgs/image_encodings names:
- 8-bit colour rgb8/bgr8/rgba8/bgra8 (8UC3 taken as OpenCV's BGR), 16-bit rgb16/bgr16/rgba16/bgra16;
- mono8/8UC1, mono16/16UC1 (grey, repeated into three channels);
- Bayer bayer_{rggb,bggr,gbrg,grbg}{8,16}, demosaiced with OpenCV (bilinear);
- YUV 4:2:2 uyvy (= ROS "yuv422") and yuyv (= ROS "yuv422_yuy2"), YUV 4:2:0 nv12 and nv21
  (ITU-R BT.601 limited range, OpenCV's convention for these layouts).
16-bit values become 8 bit linearly: v * 255 / sixteen_bit_max, rounded and clipped. The default
sixteen_bit_max = 65535 uses the whole 16-bit range, the same scale for every frame (no flicker); a
camera that fills only its low 12 bits wants 4095, a 16UC1 depth image in millimetres its range.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import cv2
import numpy as np

from .image_header import ImageHeaderError, KindError, read_compressed_header
from .work_image import WorkImage

# About 4K UHD (3840 x 2160): the default cap on declared width * height of one input frame. At
# this size a decoded frame is 25 MB (RGB uint8); a 20000 x 20000 PNG would be 1.2 GB.
DEFAULT_MAX_INPUT_PIXELS = 3840 * 2160

# Every `kind` an ImageDecodeError can carry, with what it means (for counters and docs).
DECODE_ERROR_KINDS = {
    "unsupported_encoding": "raw Image encoding this decoder does not convert (named in the message)",
    "size": "raw Image data length, step, width or height inconsistent with the encoding",
    "too_large": "declared width x height above max_input_pixels (refused before decoding)",
    "unsupported_format": "CompressedImage bytes that are neither PNG nor JPEG",
    "bad_header": "malformed or truncated PNG/JPEG header, zero size, or odd channels/bit depth",
    "decode_failed": "the decoder (OpenCV) failed on data whose header was acceptable",
}


class ImageDecodeError(KindError):
    """A frame that cannot be decoded; `kind` is one of DECODE_ERROR_KINDS."""


@dataclass(frozen=True)
class _Layout:
    """How one encoding's bytes are laid out and turned into RGB uint8.

    dtype/channels: the array view of one image row (step >= width * channels * itemsize);
    chroma_rows: True for 4:2:0 semi-planar (nv12/nv21), whose buffer has height * 3 / 2 rows;
    to_rgb(array, sixteen_bit_max) -> (H, W, 3) uint8 RGB; array is (rows, W) or (rows, W, channels).
    """

    dtype: str
    channels: int
    to_rgb: Callable[[np.ndarray, int], np.ndarray]
    chroma_rows: bool = False


def _to_8bit(values: np.ndarray, sixteen_bit_max: int) -> np.ndarray:
    """16-bit -> uint8 by v * 255 / sixteen_bit_max (rounded, saturated)."""
    return cv2.convertScaleAbs(values, alpha=255.0 / sixteen_bit_max)


def _copy(sixteen: bool = False) -> Callable[[np.ndarray, int], np.ndarray]:
    """Already RGB (RGB order or none given): one contiguous copy, never a view of the message."""
    def convert(array: np.ndarray, sixteen_bit_max: int) -> np.ndarray:
        rgb = np.array(array, order="C", copy=True)
        return _to_8bit(rgb, sixteen_bit_max) if sixteen else rgb
    return convert


def _grey(sixteen: bool = False) -> Callable[[np.ndarray, int], np.ndarray]:
    def convert(array: np.ndarray, sixteen_bit_max: int) -> np.ndarray:
        grey = _to_8bit(array, sixteen_bit_max) if sixteen else array
        return cv2.cvtColor(np.ascontiguousarray(grey), cv2.COLOR_GRAY2RGB)
    return convert


def _cv(code: int, sixteen: bool = False) -> Callable[[np.ndarray, int], np.ndarray]:
    def convert(array: np.ndarray, sixteen_bit_max: int) -> np.ndarray:
        rgb = cv2.cvtColor(np.ascontiguousarray(array), code)
        return _to_8bit(rgb, sixteen_bit_max) if sixteen else rgb
    return convert


# ROS names the Bayer pattern by its top-left 2x2 block read row by row (rggb: R G / G B); OpenCV's
# classic names use the second row's middle pair, so ROS rggb is OpenCV BayerBG (cv_bridge's mapping,
# checked by the mosaic round trip in test_perception_image.py).
_BAYER_CODES = {"rggb": cv2.COLOR_BayerBG2RGB, "bggr": cv2.COLOR_BayerRG2RGB,
                "gbrg": cv2.COLOR_BayerGR2RGB, "grbg": cv2.COLOR_BayerGB2RGB}

_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout("u1", 3, _copy()),
    "bgr8": _Layout("u1", 3, _cv(cv2.COLOR_BGR2RGB)),
    "rgba8": _Layout("u1", 4, _cv(cv2.COLOR_RGBA2RGB)),
    "bgra8": _Layout("u1", 4, _cv(cv2.COLOR_BGRA2RGB)),
    # No colour order given: taken as OpenCV's BGR, since cv_bridge.cv2_to_imgmsg(frame) with its
    # default "passthrough" publishes an OpenCV frame so (red came out blue when taken as RGB).
    "8UC3": _Layout("u1", 3, _cv(cv2.COLOR_BGR2RGB)),
    "rgb16": _Layout("u2", 3, _copy(True)),
    "bgr16": _Layout("u2", 3, _cv(cv2.COLOR_BGR2RGB, True)),
    "rgba16": _Layout("u2", 4, _cv(cv2.COLOR_RGBA2RGB, True)),
    "bgra16": _Layout("u2", 4, _cv(cv2.COLOR_BGRA2RGB, True)),
    "mono8": _Layout("u1", 1, _grey()),
    "8UC1": _Layout("u1", 1, _grey()),
    "mono16": _Layout("u2", 1, _grey(True)),
    "16UC1": _Layout("u2", 1, _grey(True)),
    "uyvy": _Layout("u1", 2, _cv(cv2.COLOR_YUV2RGB_UYVY)),
    "yuv422": _Layout("u1", 2, _cv(cv2.COLOR_YUV2RGB_UYVY)),  # ROS's yuv422 is UYVY byte order
    "yuyv": _Layout("u1", 2, _cv(cv2.COLOR_YUV2RGB_YUYV)),
    "yuv422_yuy2": _Layout("u1", 2, _cv(cv2.COLOR_YUV2RGB_YUYV)),
    "nv12": _Layout("u1", 1, _cv(cv2.COLOR_YUV2RGB_NV12), chroma_rows=True),
    "nv21": _Layout("u1", 1, _cv(cv2.COLOR_YUV2RGB_NV21), chroma_rows=True),
    **{f"bayer_{pattern}8": _Layout("u1", 1, _cv(code)) for pattern, code in _BAYER_CODES.items()},
    **{f"bayer_{pattern}16": _Layout("u2", 1, _cv(code, True)) for pattern, code in _BAYER_CODES.items()},
}

# Kept for callers that list what is supported: encoding -> channels in one row of the data.
ENCODINGS: dict[str, int] = {name: layout.channels for name, layout in _LAYOUTS.items()}


def _check_geometry(encoding: str, layout: _Layout, height: int, width: int, step: int,
                    max_input_pixels: int) -> int:
    """Raise for a declared geometry that cannot hold this encoding; return the buffer's row count."""
    if height <= 0 or width <= 0:
        raise ImageDecodeError("size", f"empty image {width}x{height}")
    if width * height > max_input_pixels:
        raise ImageDecodeError("too_large", f"{encoding} image {width}x{height} = {width * height} pixels "
                               f"exceeds max_input_pixels {max_input_pixels}")
    row_bytes = width * layout.channels * np.dtype(layout.dtype).itemsize
    if step < row_bytes:
        raise ImageDecodeError("size", f"step {step} < width {width} x {row_bytes // width} bytes ({encoding})")
    subsampled = layout.chroma_rows or layout.channels == 2 and layout.dtype == "u1"
    if (subsampled and width % 2) or (layout.chroma_rows and height % 2):
        raise ImageDecodeError("size", f"{encoding} needs an even width{' and height' * layout.chroma_rows}, "
                               f"got {width}x{height}")
    return height * 3 // 2 if layout.chroma_rows else height


def decode_raw(encoding: str, height: int, width: int, step: int, data: bytes | memoryview, *,
               is_bigendian: bool = False, max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS,
               sixteen_bit_max: int = 65535) -> np.ndarray:
    """A sensor_msgs/Image payload -> (height, width, 3) uint8 RGB (a copy, safe to keep).

    Raises ImageDecodeError: 'unsupported_encoding' naming the encoding, 'too_large' when
    width * height > max_input_pixels (checked before touching the data), 'size' when the data
    length is not rows * step or step is too small for width.
    """
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        depth = " (a depth image: remap `image` to the colour camera's topic)" if encoding in _DEPTH_LAYOUTS else ""
        raise ImageDecodeError("unsupported_encoding", f"unsupported image encoding {encoding!r}{depth}; supported: "
                               f"{', '.join(_LAYOUTS)}")
    rows = _check_geometry(encoding, layout, height, width, step, max_input_pixels)
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != rows * step:
        raise ImageDecodeError("size", f"data length {buf.size} != {rows} rows x step {step} = {rows * step}")
    itemsize = np.dtype(layout.dtype).itemsize
    row_bytes = buf.reshape(rows, step)[:, : width * layout.channels * itemsize]
    byte_order = ">" if is_bigendian else "<"
    values = np.ascontiguousarray(row_bytes).view(byte_order + layout.dtype)
    if itemsize > 1:
        values = values.astype(layout.dtype, copy=False)  # native byte order for OpenCV
    if layout.channels > 1:
        values = values.reshape(rows, width, layout.channels)
    try:
        return layout.to_rgb(values, sixteen_bit_max)
    except cv2.error as exc:
        raise ImageDecodeError("decode_failed", f"OpenCV cannot convert {encoding} {width}x{height}: {exc}") from exc


# Depth images (REP-118 32FC1 metres; 16UC1 / mono16 millimetres, as OpenNI and RealSense publish them):
# encoding -> (layout, metres per unit). to_rgb is unused: depth stays one channel.
_DEPTH_LAYOUTS = {"32FC1": (_Layout("f4", 1, None), 1.0), "16UC1": (_Layout("u2", 1, None), 1e-3),
                  "mono16": (_Layout("u2", 1, None), 1e-3)}


def decode_depth(encoding: str, height: int, width: int, step: int, data: bytes | memoryview, *,
                 is_bigendian: bool = False, max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> np.ndarray:
    """A depth sensor_msgs/Image payload -> (height, width) float32 metres, 0 where the sensor has
    none (0, NaN or inf). ImageDecodeError as decode_raw: 'unsupported_encoding', 'too_large', 'size'."""
    if encoding not in _DEPTH_LAYOUTS:
        raise ImageDecodeError("unsupported_encoding",
                               f"unsupported depth encoding {encoding!r}; supported: {', '.join(_DEPTH_LAYOUTS)}")
    layout, metres = _DEPTH_LAYOUTS[encoding]
    rows = _check_geometry(encoding, layout, height, width, step, max_input_pixels)
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != rows * step:
        raise ImageDecodeError("size", f"data length {buf.size} != {rows} rows x step {step} = {rows * step}")
    row_bytes = buf.reshape(rows, step)[:, : width * np.dtype(layout.dtype).itemsize]
    values = np.ascontiguousarray(row_bytes).view((">" if is_bigendian else "<") + layout.dtype)
    depth = values.astype(np.float32) * np.float32(metres)
    return np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(0))


def decode_compressed(fmt: str, data: bytes | memoryview, *, max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS,
                      sixteen_bit_max: int = 65535) -> np.ndarray:
    """A sensor_msgs/CompressedImage payload (JPEG or PNG, told apart by their magic bytes; `fmt` is
    only quoted in errors) -> (H, W, 3) uint8 RGB.

    The header is parsed first: 'unsupported_format' (neither PNG nor JPEG), 'bad_header'
    (malformed, zero size, odd channels or bit depth) and 'too_large' (declared width * height >
    max_input_pixels) are raised before cv2.imdecode runs; any decoder failure is 'decode_failed'.
    """
    return decode_compressed_for_work(fmt, data, 0, max_input_pixels=max_input_pixels,
                                      sixteen_bit_max=sixteen_bit_max)[0]


# libjpeg's scaled inverse DCT decodes straight to 1/2, 1/4 or 1/8 of each side (ceil).
_JPEG_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_compressed_for_work(fmt: str, data: bytes | memoryview, work_max_pixels: int, *,
                               max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS, sixteen_bit_max: int = 65535
                               ) -> tuple[np.ndarray, tuple[int, int]]:
    """decode_compressed for a pipeline that works on at most work_max_pixels (work_image.py) ->
    (RGB, the image's own (H, W)). A JPEG above the budget whose working size is 1/2, 1/4 or 1/8 of
    each side comes decoded at that size (libjpeg skips the detail the division would average away:
    a 1920x1080 frame took 3.5 ms against 8.7 ms to decode and divide on the 2-core CPU, within 0.2
    grey levels of the divided image on average; docs/benchmarks.md, session 45); any other image comes
    at its own size, for the caller to divide. A 16-bit PNG (mono16 through image_transport's png)
    becomes 8 bit as decode_raw does, by sixteen_bit_max. Errors as decode_compressed."""
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        header = read_compressed_header(data if isinstance(data, bytes) else bytes(data))
    except ImageHeaderError as exc:
        raise ImageDecodeError(exc.kind, f"compressed image (format {fmt!r}, {buf.size} bytes): {exc}") from exc
    if header.width * header.height > max_input_pixels:
        raise ImageDecodeError("too_large", f"{header.format} declares {header.width}x{header.height} = "
                               f"{header.width * header.height} pixels, above max_input_pixels {max_input_pixels}")
    camera_hw = (header.height, header.width)
    work = WorkImage.for_size(camera_hw, work_max_pixels)
    divisor = round(header.width / work.work_hw[1])
    reduced = (header.format == "jpeg" and divisor in _JPEG_REDUCED
               and work.work_hw == (-(-header.height // divisor), -(-header.width // divisor)))
    try:
        # ANYDEPTH: IMREAD_COLOR alone divides 16 bit by 256, ignoring the camera's own range (a
        # 12-bit camera came 16x too dark).
        image = cv2.imdecode(buf, _JPEG_REDUCED[divisor] if reduced else cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except Exception as exc:  # cv2.error, or anything else the codec raises: one counted kind
        raise ImageDecodeError("decode_failed", f"cannot decode {header.format} ({buf.size} bytes): {exc}") from exc
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise ImageDecodeError("decode_failed", f"cannot decode compressed image (format {fmt!r}, {buf.size} bytes)")
    if not reduced:
        camera_hw = image.shape[:2]
    elif image.shape[:2] != work.work_hw:  # the decoder turned it (EXIF orientation), or the header lied
        if image.shape[:2] != work.work_hw[::-1]:
            raise ImageDecodeError("decode_failed", f"decoded {image.shape[1]}x{image.shape[0]} at 1/{divisor} "
                                   f"of a {header.width}x{header.height} {header.format}")
        camera_hw = camera_hw[::-1]
    if camera_hw[0] * camera_hw[1] > max_input_pixels:  # defence in depth: the header lied
        raise ImageDecodeError("too_large", f"decoded {camera_hw[1]}x{camera_hw[0]} exceeds max_input_pixels")
    if image.dtype == np.uint16:
        image = _to_8bit(image, sixteen_bit_max)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), tuple(camera_hw)


def encode_raw(rgb: np.ndarray, encoding: str) -> tuple[bytes, int]:
    """(H, W, 3) uint8 RGB -> (data, step) in an 8-bit rgb/bgr/rgba/bgra/mono encoding; the inverse
    of decode_raw for those (for tests and the stream publisher)."""
    if encoding in ("mono8", "8UC1"):
        out = rgb.mean(axis=2).round().astype(np.uint8)[..., None]
    elif encoding == "rgb8":
        out = rgb
    elif encoding in ("bgr8", "8UC3"):  # 8UC3: OpenCV's order, as decode_raw reads it
        out = rgb[..., ::-1]
    elif encoding in ("rgba8", "bgra8"):
        colour = rgb if encoding == "rgba8" else rgb[..., ::-1]
        out = np.concatenate([colour, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    else:
        raise ValueError(f"encode_raw does not write {encoding!r}")
    out = np.ascontiguousarray(out)
    return out.tobytes(), out.shape[1] * out.shape[2]
