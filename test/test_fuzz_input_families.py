"""Each fuzz mutation breaks what its name says (no ROS, under a second), and the fuzz run's seeds draw every
family: test_node_fuzz counts the families it sent by name, and a family that sends a valid message proves nothing."""
import math
import struct
from collections import defaultdict

import numpy as np
import pytest

from fourds_ros.ros.fuzz_inputs import HUGE_SIZES, MUTATIONS, RAW_ENCODINGS, FuzzInputs

from .test_node_fuzz import SIZE


def drawn(kind: str, n: int = 400, seed: int = 7) -> dict[str, list]:
    gen, out = FuzzInputs(seed, SIZE, "raw"), defaultdict(list)
    for i in range(n):
        image, info, name = gen.mutation(kind, 10**9 + i)
        out[name].append((image, info, gen))
    assert set(out) == set(MUTATIONS[kind]), set(MUTATIONS[kind]) ^ set(out)
    return out


def test_every_image_mutation_breaks_what_its_name_says():
    h, w = SIZE
    for name, samples in drawn("image").items():
        for msg, _, _ in samples:
            bpp = RAW_ENCODINGS.get(msg.encoding)
            rows = msg.height * 3 // 2 if msg.encoding in ("nv12", "nv21") else msg.height
            expected = {
                "encoding": bpp is not None and len(msg.data) == rows * msg.step == rows * msg.width * bpp,
                "odd_encoding": bpp is None,
                "step": bpp is not None and msg.step != msg.width * bpp,
                "huge": (msg.width, msg.height) in HUGE_SIZES,
                "zero_size": msg.width == 0 or msg.height == 0,
                "truncated": len(msg.data) < rows * msg.step,
                "extended": len(msg.data) > rows * msg.step,
                "bigendian": msg.is_bigendian != 0,
                "swapped_size": (msg.height, msg.width) == (w, h),
                "empty": len(msg.data) == 0,
            }[name]
            assert expected, (name, msg.encoding, msg.width, msg.height, msg.step, len(msg.data))


def test_every_compressed_mutation_breaks_what_its_name_says():
    for name, samples in drawn("compressed").items():
        for msg, _, gen in samples:
            data = bytes(msg.data)
            if name == "truncated":
                assert len(data) < max(len(gen.jpeg), len(gen.png)) and (gen.jpeg.startswith(data) or gen.png.startswith(data))
            elif name in ("header_bitflip", "body_bitflip"):
                assert data not in (gen.jpeg, gen.png)
            elif name == "png_huge":
                width, height = struct.unpack(">II", data[16:24])
                assert data[12:16] == b"IHDR" and min(width, height) >= 20000
            elif name == "jpeg_huge":
                sof = data.find(b"\xff\xc0")
                assert struct.unpack(">HH", data[sof + 5:sof + 9]) == (60000, 60000)
            elif name == "empty":
                assert data == b""
            elif name == "magic_then_garbage":
                assert data.startswith((b"\x89PNG", b"\xff\xd8")) and data not in (gen.jpeg, gen.png)


def test_every_camera_info_mutation_breaks_what_its_name_says():
    h, w = SIZE
    expected_d = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
    for name, samples in drawn("camera_info").items():
        hits = []
        for _, info, _ in samples:
            k = np.array(info.k, dtype=float)
            hits.append({
                "k_non_finite": not np.isfinite(k).all(),
                "k_zero": k[0] == 0 or k[4] == 0,
                "k_negative": k[0] < 0 or k[4] < 0,
                "principal_point_outside": not (0 <= k[2] < w and 0 <= k[5] < h) or k[2] < 0,
                "k_other_resolution": (info.width, info.height) != (w, h),
                "distortion_model": True,  # may draw a valid model: a name-only family
                "distortion_count": len(info.d) != expected_d.get(info.distortion_model, 5),
                "distortion_huge": any(abs(v) >= 5.0 or 0 < abs(v) < 1e-300 for v in info.d),
                "distortion_non_finite": not all(math.isfinite(v) for v in info.d),
                "k_last_row": list(k[6:9]) != [0.0, 0.0, 1.0],
                "info_size": (info.width, info.height) != (w, h) or (info.width, info.height) == (1, 1),
            }[name])
        # distortion_huge may zero every coefficient (p = 0.3 each): most samples, not all
        assert all(hits) if name != "distortion_huge" else sum(hits) > len(hits) // 2, name


@pytest.mark.parametrize("transport, seed", [("raw", 20), ("compressed", 21)])
def test_the_fuzz_runs_seeds_draw_every_family(transport, seed):
    """What test_node_fuzz's run sends (probe.fuzz: the kind, then the mutation, from one seeded RNG):
    a seed that skipped a family would leave it untested."""
    from .test_node_fuzz import MUTATIONS_PER_RUN

    gen = FuzzInputs(seed, SIZE, transport)
    kinds = ["compressed" if transport == "compressed" else "image", "camera_info"]
    names = set()
    for i in range(MUTATIONS_PER_RUN):
        names.add(gen.mutation(gen.rng.choice(kinds), i)[2])
    assert names == set(MUTATIONS[kinds[0]]) | set(MUTATIONS["camera_info"])


def test_k_last_row_always_breaks_the_last_row():
    """k_last_row once set k[6] or k[7] to 0.0, their own value, in 2 of 9 draws: a valid K sent as a broken one."""
    for _, info, _ in drawn("camera_info", 1500)["k_last_row"]:
        assert list(info.k)[6:9] != [0.0, 0.0, 1.0], list(info.k)
