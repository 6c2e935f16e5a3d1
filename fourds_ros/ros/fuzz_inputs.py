"""Seeded random mutations of valid Image, CompressedImage and CameraInfo messages, for the probe's
"fuzz" step (test_node_fuzz.py). Issue #20: inputs that crashed the node, grew it by gigabytes or
were lost uncounted were all small edits of a valid frame, so every mutation starts from one.

    gen = FuzzInputs(seed=3, size=(48, 64))
    image, info, name = gen.mutation("image", stamp_ns)   # or "compressed", "camera_info", "valid"
    # image: the Image or CompressedImage to send (transport: gen.transport), info: its CameraInfo
    # (valid unless the kind is camera_info), name: which mutation, for the record.

Mutations are picked uniformly from MUTATIONS[kind]; each draws its details from the seeded RNG,
so a seed replays the same messages. Payloads stay small (a few KB) so a 2-core machine can send
hundreds per second; "huge" geometry is declared, never allocated.
"""

from __future__ import annotations

import random
import struct
import zlib

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from . import convert

# Raw encodings with the bytes per pixel of their rows (nv12/nv21 have height * 3 / 2 rows).
RAW_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3, "mono16": 2,
                 "16UC1": 2, "rgb16": 6, "bgra16": 8, "bayer_rggb8": 1, "bayer_grbg8": 1, "bayer_bggr16": 2,
                 "bayer_gbrg16": 2, "yuv422": 2, "uyvy": 2, "yuyv": 2, "yuv422_yuy2": 2, "nv12": 1, "nv21": 1}
# Names a camera or a typo could send that the decoder does not take.
ODD_ENCODINGS = ["32FC1", "64FC1", "16SC1", "8SC3", "jpeg", "RGB8", "rgb8 ", "bayer_rggb", "yuv420", "", "mono",
                 "nv24", "bgr8;jpeg", "ü8", "x" * 300]
HUGE_SIZES = [(60000, 60000), (2**32 - 1, 1), (1, 2**32 - 1), (2**31, 2), (65536, 65536), (3841, 2161)]
DISTORTION_MODELS = ["plumb_bob", "rational_polynomial", "equidistant", "fisheye", "", "radtan", "PLUMB_BOB"]

MUTATIONS = {
    "valid": ["valid"],
    "image": ["encoding", "odd_encoding", "step", "huge", "zero_size", "truncated", "extended", "bigendian",
              "swapped_size", "empty"],
    "compressed": ["format", "truncated", "header_bitflip", "body_bitflip", "png_huge", "jpeg_huge", "empty",
                   "random_bytes", "magic_then_garbage"],
    "camera_info": ["k_non_finite", "k_zero", "k_negative", "principal_point_outside", "k_other_resolution",
                    "distortion_model", "distortion_count", "distortion_huge", "distortion_non_finite",
                    "k_last_row", "info_size"],
}


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


class FuzzInputs:
    def __init__(self, seed: int, size: tuple[int, int] = (48, 64), transport: str = "raw",
                 frame_id: str = "camera_optical"):
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.size, self.transport, self.frame_id = tuple(size), transport, frame_id
        h, w = self.size
        rows, cols = np.mgrid[0:h, 0:w]
        self.rgb = np.stack([cols * 4 % 256, rows * 4 % 256, np.full_like(rows, 128)], axis=2).astype(np.uint8)
        self.jpeg = cv2.imencode(".jpg", self.rgb)[1].tobytes()
        self.png = cv2.imencode(".png", self.rgb)[1].tobytes()
        f = w / (2 * np.tan(np.radians(30)))
        self.k = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])

    # -- valid messages -------------------------------------------------------------------------
    def image(self, stamp_ns: int) -> Image:
        h, w = self.size
        return Image(header=convert.header(stamp_ns, self.frame_id), height=h, width=w, encoding="rgb8",
                     step=w * 3, data=self.rgb.tobytes())

    def compressed(self, stamp_ns: int, data: bytes | None = None, fmt: str = "jpeg") -> CompressedImage:
        return CompressedImage(header=convert.header(stamp_ns, self.frame_id), format=fmt,
                               data=self.jpeg if data is None else data)

    def info(self, stamp_ns: int) -> CameraInfo:
        h, w = self.size
        return convert.camera_info(self.k, h, w, stamp_ns, self.frame_id)

    def frame(self, stamp_ns: int):
        return self.image(stamp_ns) if self.transport == "raw" else self.compressed(stamp_ns)

    # -- mutations ------------------------------------------------------------------------------
    def mutation(self, kind: str, stamp_ns: int):
        """-> (image message, camera_info, mutation name). For kind camera_info the image is a valid
        frame on self.transport; otherwise the camera_info is valid."""
        name = self.rng.choice(MUTATIONS[kind])
        if kind == "camera_info":
            return self.frame(stamp_ns), self._info(name, stamp_ns), name
        if kind == "image":
            return self._image(name, stamp_ns), self.info(stamp_ns), name
        if kind == "compressed":
            return self._compressed(name, stamp_ns), self.info(stamp_ns), name
        return self.frame(stamp_ns), self.info(stamp_ns), name

    def _bytes(self, n: int) -> bytes:
        return self.np_rng.integers(0, 256, n, dtype=np.uint8).tobytes()

    def _image(self, name: str, stamp_ns: int) -> Image:
        rng = self.rng
        h, w = self.size
        encoding = rng.choice(list(RAW_ENCODINGS))
        step = w * RAW_ENCODINGS[encoding]
        rows = h * 3 // 2 if encoding in ("nv12", "nv21") else h
        data = self._bytes(rows * step)  # a payload that fits the encoding: decodable noise
        msg = Image(header=convert.header(stamp_ns, self.frame_id), height=h, width=w, encoding=encoding,
                    step=step, data=data)
        if name == "odd_encoding":
            printable = "".join(chr(rng.randint(33, 126)) for _ in range(rng.randint(1, 12)))
            msg.encoding = rng.choice([*ODD_ENCODINGS, printable])
        elif name == "step":
            msg.step = rng.choice([0, 1, step - 1, step + 1, step * 2, 2**32 - 1])
        elif name == "huge":
            msg.width, msg.height = rng.choice(HUGE_SIZES)
            msg.step = min(2**32 - 1, msg.width * RAW_ENCODINGS[encoding])
        elif name == "zero_size":
            msg.width, msg.height = rng.choice([(0, h), (w, 0), (0, 0)])
        elif name == "truncated":
            msg.data = data[: rng.randrange(len(data))]
        elif name == "extended":
            msg.data = data + self._bytes(rng.randint(1, 4096))
        elif name == "bigendian":
            msg.is_bigendian = rng.choice([1, 255])
        elif name == "swapped_size":
            msg.width, msg.height = h, w
        elif name == "empty":
            msg.data = b""
        return msg

    def _compressed(self, name: str, stamp_ns: int) -> CompressedImage:
        rng = self.rng
        base = rng.choice([self.jpeg, self.png])
        data, fmt = base, "jpeg" if base is self.jpeg else "png"
        if name == "format":
            fmt = rng.choice(["", "png", "jpeg", "rgb8; jpeg compressed bgr8", "tiff", "bmp", "x" * 200])
        elif name == "truncated":
            data = base[: rng.randrange(len(base))]
        elif name in ("header_bitflip", "body_bitflip"):
            raw = bytearray(base)
            span = min(len(raw), 64) if name == "header_bitflip" else len(raw)
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(span)] ^= 1 << rng.randrange(8)
            data = bytes(raw)
        elif name == "png_huge":  # IHDR declaring 20000x20000 (or more), valid CRC, the real image data after it
            side = rng.choice([20000, 60000, 2**31 - 1])
            ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            data = self.png[:8] + ihdr + self.png[33:]
        elif name == "jpeg_huge":  # SOF0 declaring 60000x60000 in a real JPEG
            raw = bytearray(self.jpeg)
            sof = raw.find(b"\xff\xc0")
            raw[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
            data = bytes(raw)
        elif name == "empty":
            data = b""
        elif name == "random_bytes":
            data = self._bytes(rng.randint(1, 2048))
        elif name == "magic_then_garbage":
            data = rng.choice([b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"\xff\xd8\xff"]) + self._bytes(rng.randint(0, 512))
        return self.compressed(stamp_ns, data, fmt)

    def _info(self, name: str, stamp_ns: int) -> CameraInfo:
        rng = self.rng
        h, w = self.size
        msg = self.info(stamp_ns)
        k = self.k.ravel().copy()
        if name == "k_non_finite":
            k[rng.choice([0, 2, 4, 5])] = rng.choice([np.nan, np.inf, -np.inf])
        elif name == "k_zero":
            k[rng.choice([[0], [4], [0, 4], list(range(9))])] = 0.0
        elif name == "k_negative":
            k[rng.choice([0, 4])] *= -1
        elif name == "principal_point_outside":
            k[2], k[5] = rng.choice([(w + 10.0, k[5]), (k[2], -5.0), (1e9, 1e9), (-0.6, k[5])])
        elif name == "k_other_resolution":  # a clean ratio (scaled) or none (refused)
            msg.width, msg.height = rng.choice([(w * 2, h * 2), (w * 4, h * 4), (w * 2, h * 3), (w + 1, h),
                                                (1280, 960)])
        elif name == "k_last_row":
            index = rng.choice([6, 7, 8])  # a value the row's entry never has (0, 0, 1): always a broken K
            k[index] = rng.choice([1.0, 2.0, -1.0] if index < 8 else [0.0, 2.0, -1.0])
        elif name == "info_size":
            msg.width, msg.height = rng.choice([(0, 0), (2**32 - 1, 2**32 - 1), (1, 1), (w, 0)])
        if name.startswith("distortion"):
            msg.distortion_model = rng.choice(DISTORTION_MODELS) if name == "distortion_model" else \
                rng.choice(DISTORTION_MODELS[:3])
            count = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}.get(msg.distortion_model, 5)
            if name == "distortion_count":
                count = rng.choice([1, 2, 3, 6, 7, 9, 14, 100])
            d = [rng.uniform(-0.3, 0.3) for _ in range(count)]
            if name == "distortion_huge":
                d = [rng.choice([1e30, -1e30, 1e300, 5.0, -50.0, 1e5, 5e-324]) * (rng.random() < 0.7) for _ in d]
            elif name == "distortion_non_finite":
                d[rng.randrange(count)] = rng.choice([np.nan, np.inf, -np.inf])
            msg.d = [float(v) for v in d]
        msg.k = [float(v) for v in k]
        return msg
