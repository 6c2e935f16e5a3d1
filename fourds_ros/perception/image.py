"""Raw sensor_msgs/Image and CompressedImage payloads -> RGB uint8 numpy, without rclpy.

The node passes the message fields (encoding, height, width, step, data bytes); every failure is
an ImageDecodeError whose `kind` names the problem, so the node can log and count it per kind.
"""

from __future__ import annotations

import numpy as np

# encoding -> (channels, RGB channel order taken from the source)
ENCODINGS: dict[str, tuple[int, tuple[int, ...] | None]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, None),
    "8UC3": (3, (0, 1, 2)),  # no colour order given: taken as RGB
    "8UC1": (1, None),
}


class ImageDecodeError(ValueError):
    """A frame that cannot be decoded. kind: 'encoding', 'size' or 'compressed'."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def decode_raw(encoding: str, height: int, width: int, step: int, data: bytes | memoryview) -> np.ndarray:
    """A sensor_msgs/Image payload -> (height, width, 3) uint8 RGB (a copy, safe to keep).

    Raises ImageDecodeError('encoding') for an unsupported encoding and ('size') when the data
    length does not match height * step or step is too small for width.
    """
    if encoding not in ENCODINGS:
        raise ImageDecodeError(
            "encoding", f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}"
        )
    channels, order = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ImageDecodeError("size", f"empty image {width}x{height}")
    if step < width * channels:
        raise ImageDecodeError("size", f"step {step} < width {width} x {channels} channels")
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != height * step:
        raise ImageDecodeError(
            "size", f"data length {buf.size} != height {height} x step {step} = {height * step}"
        )
    rows = buf.reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if order is None:
        return np.repeat(rows, 3, axis=2)
    return np.ascontiguousarray(rows[..., list(order)])


def decode_compressed(fmt: str, data: bytes | memoryview) -> np.ndarray:
    """A sensor_msgs/CompressedImage payload (jpeg/png) -> (H, W, 3) uint8 RGB."""
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if image is None:
        raise ImageDecodeError("compressed", f"cannot decode compressed image (format {fmt!r}, {buf.size} bytes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode_raw(rgb: np.ndarray, encoding: str) -> tuple[bytes, int]:
    """(H, W, 3) uint8 RGB -> (data, step) in `encoding`; the inverse of decode_raw (for tests
    and the stream publisher)."""
    channels, order = ENCODINGS[encoding]
    if order is None:
        out = rgb.mean(axis=2).round().astype(np.uint8)[..., None]
    else:
        out = rgb[..., list(np.argsort(order))] if channels == 3 else np.concatenate(
            [rgb[..., list(np.argsort(order))], np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    out = np.ascontiguousarray(out)
    return out.tobytes(), out.shape[1] * channels
