"""Declared size of a PNG or JPEG from its header bytes alone, so a frame can be refused before
cv2.imdecode allocates it (OpenCV has no header-only API).

PNG: the 8-byte signature, then the IHDR chunk (width, height, bit depth, colour type; PNG 1.2
section 11.2.2), and every chunk's length checked against the data (lengths only, no CRCs). JPEG: the marker segments after SOI up to the first SOFn frame header (sample
precision, lines, samples per line, component count; ITU-T T.81 section B.2.2); APPn/COM/DQT/DHT
segments (an EXIF thumbnail included) are skipped by their length. Anything else is refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> allowed bit depths (PNG 1.2, table 11.1).
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# Non-differential frame headers a single-frame decoder (libjpeg) reads: baseline, extended,
# progressive, lossless, and their arithmetic-coded forms. Differential SOF5-7/SOF13-15 (hierarchical
# JPEG, several frames) are refused.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB}
_JPEG_DIFFERENTIAL_SOF = {0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF}
# Markers without a length field: TEM, RST0-7 (and SOI, which would be a second image start).
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
# libjpeg decodes each scan of a progressive JPEG over the whole image: a 250 KB file repeating a 12-byte refinement
# scan 20,000 times held the node's executor 21 s (minutes at 1 MB). Baseline files have 1 scan, progressive
# encoders about 10 (every JPEG in ../shared has 1); an EXIF thumbnail adds its own.
MAX_JPEG_SCANS = 100


class KindError(ValueError):
    """Bad input with the `kind` the node counts it under (errors_<kind> on /diagnostics)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class ImageHeaderError(KindError):
    """A header that cannot be trusted; kind is 'unsupported_format' or 'bad_header'."""


@dataclass(frozen=True)
class ImageHeader:
    format: str  # "png" or "jpeg"
    width: int
    height: int
    channels: int
    bit_depth: int


def read_compressed_header(data: bytes) -> ImageHeader:
    """The declared geometry of PNG or JPEG bytes; ImageHeaderError when neither or malformed."""
    if data.startswith(PNG_SIGNATURE):
        return read_png_header(data)
    if data.startswith(b"\xff\xd8"):
        return read_jpeg_header(data)
    raise ImageHeaderError("unsupported_format", f"neither PNG nor JPEG (starts {data[:8].hex() or 'empty'})")


def read_png_header(data: bytes) -> ImageHeader:
    if len(data) < 33:  # signature 8 + length 4 + type 4 + IHDR 13 + CRC 4
        raise ImageHeaderError("bad_header", f"PNG truncated before the end of IHDR ({len(data)} bytes)")
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    if chunk_type != b"IHDR" or length != 13:
        raise ImageHeaderError("bad_header", f"PNG first chunk is {chunk_type!r} of {length} bytes, not IHDR of 13")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if colour not in _PNG_DEPTHS or depth not in _PNG_DEPTHS[colour]:
        raise ImageHeaderError("bad_header", f"PNG colour type {colour} with bit depth {depth} is not valid PNG")
    if compression or filtering or interlace > 1:
        raise ImageHeaderError("bad_header", "PNG compression/filter/interlace method not defined by PNG 1.2")
    header = _checked(ImageHeader("png", width, height, _PNG_CHANNELS[colour], depth))
    _check_png_chunks(data)
    return header


def _check_png_chunks(data: bytes) -> None:
    """Every chunk's declared length must fit in the data: OpenCV 5 allocates a chunk's declared
    length before reading it, so one corrupt length field in a 29 KB file cost 4 GB of memory."""
    pos = 8
    while pos + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[pos:pos + 8])
        if length > 0x7FFFFFFF or pos + 12 + length > len(data):
            raise ImageHeaderError("bad_header", f"PNG chunk {chunk_type!r} at byte {pos} declares {length} bytes, "
                                   f"past the end of the {len(data)}-byte data")
        if chunk_type == b"IEND":
            return
        pos += 12 + length


def read_jpeg_header(data: bytes) -> ImageHeader:
    pos = 2  # after SOI
    while True:
        marker, pos = _next_jpeg_marker(data, pos)
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD8, 0xD9, 0xDA):
            raise ImageHeaderError("bad_header", f"JPEG marker FF{marker:02X} before any frame header (SOFn)")
        if pos + 2 > len(data):
            raise ImageHeaderError("bad_header", f"JPEG truncated in the FF{marker:02X} segment length")
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if length < 2 or pos + length > len(data):
            raise ImageHeaderError("bad_header", f"JPEG segment FF{marker:02X} length {length} runs past the data")
        if marker in _JPEG_DIFFERENTIAL_SOF:
            raise ImageHeaderError("bad_header", f"hierarchical JPEG (SOF FF{marker:02X}) is not supported")
        if marker in _JPEG_SOF:
            # FF DA starts a scan: in entropy-coded data an FF is followed by 00 or RSTn, so this counts scans
            if (scans := data.count(b"\xff\xda")) > MAX_JPEG_SCANS:
                raise ImageHeaderError("bad_header", f"JPEG with {scans} scans (more than {MAX_JPEG_SCANS}): each is "
                                       "decoded over the whole image, so it would hold the node for seconds")
            return _jpeg_frame(data[pos + 2:pos + length])
        pos += length


def _next_jpeg_marker(data: bytes, pos: int) -> tuple[int, int]:
    """(marker byte, position after it); fill bytes 0xFF before a marker are allowed (T.81 B.1.1.2)."""
    if pos >= len(data) or data[pos] != 0xFF:
        raise ImageHeaderError("bad_header", f"JPEG: no marker at byte {pos} (truncated or corrupt)")
    while pos < len(data) and data[pos] == 0xFF:
        pos += 1
    if pos >= len(data) or data[pos] == 0x00:
        raise ImageHeaderError("bad_header", f"JPEG truncated or corrupt at byte {pos}")
    return data[pos], pos + 1


def _jpeg_frame(frame: bytes) -> ImageHeader:
    if len(frame) < 6:
        raise ImageHeaderError("bad_header", "JPEG frame header shorter than 6 bytes")
    precision, height, width, components = struct.unpack(">BHHB", frame[:6])
    if precision not in (8, 12, 16) or components not in (1, 3, 4):
        raise ImageHeaderError("bad_header", f"JPEG with {components} components of {precision} bits is not an image "
                               "this node reads (1, 3 or 4 components of 8, 12 or 16 bits)")
    if len(frame) != 6 + 3 * components:
        raise ImageHeaderError("bad_header", f"JPEG frame header length does not match its {components} components")
    return _checked(ImageHeader("jpeg", width, height, components, precision))


def _checked(header: ImageHeader) -> ImageHeader:
    # JPEG height 0 means "defined later by a DNL marker"; neither format allows width 0.
    if header.width <= 0 or header.height <= 0:
        raise ImageHeaderError("bad_header", f"{header.format} declares an empty {header.width}x{header.height} image")
    return header
