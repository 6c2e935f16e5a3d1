"""Issue #20: compressed and raw frames that declare huge sizes, or corrupt headers, are refused
with a counted ImageDecodeError kind before OpenCV allocates anything; no decoder error escapes."""

import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from fourds_ros.perception.image import (
    DECODE_ERROR_KINDS, DEFAULT_MAX_INPUT_PIXELS, ImageDecodeError, decode_compressed, decode_raw,
)
from fourds_ros.perception.image_header import ImageHeaderError, read_compressed_header

FRAME = Path(__file__).resolve().parents[1] / "samples" / "hololens_000" / "images" / "00305.jpg"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_file(width: int, height: int, idat: bytes, colour: int = 2, depth: int = 8) -> bytes:
    """A well-formed PNG container (valid CRCs) declaring width x height around any IDAT payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_declaring(data: bytes, width: int, height: int) -> bytes:
    """The real JPEG with its SOF0 frame header patched to declare width x height."""
    patched = bytearray(data)
    sof = patched.index(b"\xff\xc0")
    struct.pack_into(">HH", patched, sof + 5, height, width)
    return bytes(patched)


@pytest.fixture(scope="module")
def jpeg_bytes():
    return FRAME.read_bytes()


@pytest.fixture
def no_imdecode(monkeypatch):
    """Fails the test if the decoder is reached: refusals must happen on the header alone."""
    def imdecode(*_):
        raise AssertionError("cv2.imdecode called for a frame that should be refused from its header")
    monkeypatch.setattr(cv2, "imdecode", imdecode)


def test_default_cap_is_4k_uhd():
    assert DEFAULT_MAX_INPUT_PIXELS == 3840 * 2160 == 8_294_400


def test_bomb_files_crash_opencv_itself(jpeg_bytes):
    """The reproduction: these bytes made cv2.imdecode raise cv2.error, which killed the node."""
    with pytest.raises(cv2.error):
        cv2.imdecode(np.frombuffer(jpeg_declaring(jpeg_bytes, 60000, 60000), np.uint8), cv2.IMREAD_COLOR)


def test_jpeg_declaring_60000_squared_is_refused_before_decoding(jpeg_bytes, no_imdecode):
    bomb = jpeg_declaring(jpeg_bytes, 60000, 60000)
    assert 30_000 < len(bomb) < 60_000  # a small real file, as in the report (53 KB there)
    with pytest.raises(ImageDecodeError) as err:
        decode_compressed("jpeg", bomb)
    assert err.value.kind == "too_large" and "60000x60000" in str(err.value)


def test_png_declaring_60000_squared_is_refused_before_decoding(no_imdecode):
    bomb = png_file(60000, 60000, zlib.compress(os.urandom(1_500_000), 0))  # 1.5 MB, as reported
    assert len(bomb) > 1_500_000
    with pytest.raises(ImageDecodeError) as err:
        decode_compressed("png", bomb)
    assert err.value.kind == "too_large"


def test_png_declaring_20000_squared_is_refused_fast(no_imdecode):
    """Under OpenCV's own 2^30 pixel limit, this one decoded to a 1.2 GB frame in 7-8 s."""
    bomb = png_file(20000, 20000, zlib.compress(b"\0" * 60001 * 200))
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError) as err:
        decode_compressed("png", bomb)
    assert err.value.kind == "too_large" and time.perf_counter() - start < 0.1


def test_cap_is_a_parameter(jpeg_bytes):
    """540x360 = 194400 pixels: refused one pixel under it, decoded at it."""
    with pytest.raises(ImageDecodeError, match="max_input_pixels 194399") as err:
        decode_compressed("jpeg", jpeg_bytes, max_input_pixels=540 * 360 - 1)
    assert err.value.kind == "too_large"
    assert decode_compressed("jpeg", jpeg_bytes, max_input_pixels=540 * 360).shape == (360, 540, 3)
    with pytest.raises(ImageDecodeError) as err:
        decode_raw("rgb8", 360, 540, 1620, bytes(360 * 1620), max_input_pixels=540 * 360 - 1)
    assert err.value.kind == "too_large"


def test_raw_image_declaring_huge_size_is_refused_before_reading_data():
    # The data length is wrong too: too_large must win, checked before any buffer is built.
    with pytest.raises(ImageDecodeError) as err:
        decode_raw("rgb8", 60000, 60000, 180000, b"")
    assert err.value.kind == "too_large"


@pytest.mark.parametrize("error", [cv2.error("codec failure"), RuntimeError("codec bug"), MemoryError()])
def test_any_decoder_exception_becomes_decode_failed(jpeg_bytes, monkeypatch, error):
    def imdecode(*_):
        raise error
    monkeypatch.setattr(cv2, "imdecode", imdecode)
    with pytest.raises(ImageDecodeError) as err:
        decode_compressed("jpeg", jpeg_bytes)
    assert err.value.kind == "decode_failed"


def test_corrupt_png_data_is_decode_failed():
    # A valid header over an IDAT that is not zlib data: OpenCV returns None.
    with pytest.raises(ImageDecodeError) as err:
        decode_compressed("png", png_file(32, 32, b"not zlib at all"))
    assert err.value.kind == "decode_failed"


def test_png_chunk_length_past_the_data_is_refused(no_imdecode):
    """Found by the fuzz below: one corrupt IDAT length (0xF1002000) in a 29 KB PNG made OpenCV 5
    allocate 4 GB and spend 4-10 s before failing."""
    png = bytearray(cv2.imencode(".png", cv2.imread(str(FRAME))[100:220, 200:360])[1].tobytes())
    png[33:37] = bytes.fromhex("f1002000")
    with pytest.raises(ImageDecodeError, match="past the end") as err:
        decode_compressed("png", bytes(png))
    assert err.value.kind == "bad_header"


@pytest.mark.parametrize("colour, depth", [(5, 8), (2, 4), (3, 16), (6, 1)])
def test_png_with_odd_channels_or_depth_is_bad_header(colour, depth, no_imdecode):
    with pytest.raises(ImageDecodeError) as err:
        decode_compressed("png", png_file(32, 32, b"", colour, depth))
    assert err.value.kind == "bad_header"


def test_jpeg_with_odd_components_or_empty_height_is_bad_header(jpeg_bytes, no_imdecode):
    two_components = bytearray(jpeg_bytes)
    sof = two_components.index(b"\xff\xc0")
    two_components[sof + 9] = 2
    with pytest.raises(ImageDecodeError, match="2 components") as err:
        decode_compressed("jpeg", bytes(two_components))
    assert err.value.kind == "bad_header"
    with pytest.raises(ImageDecodeError) as err:  # height 0: defined by a DNL marker, refused
        decode_compressed("jpeg", jpeg_declaring(jpeg_bytes, 540, 0))
    assert err.value.kind == "bad_header"


def test_header_reader_on_real_encodings(jpeg_bytes):
    grey = cv2.imread(str(FRAME), cv2.IMREAD_GRAYSCALE)
    colour = cv2.imread(str(FRAME))
    cases = {
        "baseline": (jpeg_bytes, ("jpeg", 540, 360, 3)),
        "progressive": (cv2.imencode(".jpg", colour, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes(),
                        ("jpeg", 540, 360, 3)),
        "grey jpeg": (cv2.imencode(".jpg", grey)[1].tobytes(), ("jpeg", 540, 360, 1)),
        "grey png": (cv2.imencode(".png", grey)[1].tobytes(), ("png", 540, 360, 1)),
        "16-bit png": (cv2.imencode(".png", colour.astype(np.uint16) * 257)[1].tobytes(), ("png", 540, 360, 3)),
    }
    for name, (data, expected) in cases.items():
        header = read_compressed_header(data)
        assert (header.format, header.width, header.height, header.channels) == expected, name


def test_exif_thumbnail_with_a_huge_frame_header_is_skipped(jpeg_bytes):
    """An APP1 segment is skipped by its length, even if it holds a JPEG declaring 60000x60000."""
    thumbnail = jpeg_declaring(jpeg_bytes[:2000], 60000, 60000)
    payload = b"Exif\0\0" + thumbnail
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    with_exif = jpeg_bytes[:2] + app1 + jpeg_bytes[2:]
    header = read_compressed_header(with_exif)
    assert (header.width, header.height) == (540, 360)
    assert decode_compressed("jpeg", with_exif).shape == (360, 540, 3)


def test_every_truncated_header_is_a_clean_error(jpeg_bytes):
    png = cv2.imencode(".png", cv2.imread(str(FRAME)))[1].tobytes()
    sof = jpeg_bytes.index(b"\xff\xc0")
    jpeg_header_end = sof + 2 + struct.unpack(">H", jpeg_bytes[sof + 2:sof + 4])[0]
    for data, header_end in ((jpeg_bytes, jpeg_header_end), (png, 33)):
        for cut in range(header_end):
            with pytest.raises(ImageHeaderError) as err:
                read_compressed_header(data[:cut])
            assert err.value.kind in ("unsupported_format", "bad_header")
        assert read_compressed_header(data[:header_end]).width == 540  # the whole header is enough


def test_random_header_mutations_never_escape_or_exceed_the_cap(jpeg_bytes):
    """Seeded fuzz of the first 700 bytes (all headers live there): decoded or a known kind."""
    rng = np.random.default_rng(20)
    crop = cv2.imread(str(FRAME))[100:220, 200:360]  # 160x120 of the real frame: quick to decode
    jpeg, png = (cv2.imencode(ext, crop)[1].tobytes() for ext in (".jpg", ".png"))
    kinds, deadline = set(), time.monotonic() + 30
    for trial in range(600):
        source = bytearray(jpeg if trial % 2 else png)
        for _ in range(int(rng.integers(1, 4))):
            source[int(rng.integers(0, 700))] = int(rng.integers(0, 256))
        try:
            out = decode_compressed("fuzz", bytes(source), max_input_pixels=200 * 200)
            assert out.dtype == np.uint8 and out.shape[2] == 3 and out.shape[0] * out.shape[1] <= 200 * 200
        except ImageDecodeError as exc:
            kinds.add(exc.kind)
        assert time.monotonic() < deadline
    assert kinds <= set(DECODE_ERROR_KINDS) and {"too_large", "bad_header"} <= kinds, kinds


def progressive_jpeg_repeating_a_scan(width: int, height: int, repeats: int) -> bytes:
    """A flat progressive JPEG of width x height with its shortest refinement scan appended `repeats` more times
    (about 12 bytes each): a small file whose decoding costs each scan over the whole image."""
    data = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    data, scans, pos = data.tobytes(), [], 2
    while data[pos + 1] != 0xD9:  # to EOI
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if data[pos + 1] == 0xDA:  # a scan's entropy data runs to the next marker that is not stuffing or RSTn
            while data[end] != 0xFF or data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                end += 1
            scans.append(data[pos:end])
        pos = end
    return data[:-2] + min(scans[1:], key=len) * repeats + b"\xff\xd9"


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding(no_imdecode):
    """libjpeg decodes every scan over the whole image: 250 KB repeating a refinement scan 20,000 times held the
    node's executor (camera_info, /diagnostics, ~/reset) 21 s and was then described as a good, grey frame."""
    bomb = progressive_jpeg_repeating_a_scan(640, 480, 3000)
    assert len(bomb) < 60_000  # 640x480: within every size cap
    with pytest.raises(ImageDecodeError) as err:
        decode_compressed("jpeg", bomb)
    assert err.value.kind == "bad_header" and "3010 scans" in str(err.value), err.value


def test_progressive_jpegs_still_decode(jpeg_bytes):
    ordinary = progressive_jpeg_repeating_a_scan(64, 48, 0)
    assert 2 <= ordinary.count(b"\xff\xda") <= 20
    assert decode_compressed("jpeg", ordinary).shape == (48, 64, 3)
    assert decode_compressed("jpeg", jpeg_bytes).shape[:2] == (360, 540)  # the shipped sample's baseline frame
