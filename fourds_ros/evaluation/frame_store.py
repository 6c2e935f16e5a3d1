"""A recording's frames held compact and unpacked on each read. No rclpy.

Why: eval held every frame of a bag decoded (an RGB image and float32 ground-truth depth, 2.1 MB a 640x480
frame), and a full-length recording (3000 frames) needed over 12 GB: an out-of-memory kill with no report.
`FrameStore` is a dict whose values may be given packed: a compressed bag's image as its JPEG/PNG bytes
(`Encoded`), ground-truth depth zlib-compressed (`Deflated`, lossless: the same bits come back). A reader
gets the array, the same every time; only the one it read last is kept unpacked.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Deflated:
    """An array kept zlib-compressed: the 7-Scenes kitchen's float32 depth to a tenth (fast level 1)."""

    data: bytes
    dtype: str
    shape: tuple[int, ...]

    @classmethod
    def of(cls, array: np.ndarray) -> Deflated:
        array = np.ascontiguousarray(array)
        return cls(zlib.compress(array.tobytes(), 1), array.dtype.str, array.shape)

    def unpack(self) -> np.ndarray:
        # bytearray: a writable array, as the one that was packed
        return np.frombuffer(bytearray(zlib.decompress(self.data)), self.dtype).reshape(self.shape)


@dataclass(frozen=True)
class Encoded:
    """Image file bytes (JPEG/PNG) and the decoder that reads them (the bag reader's, with the run's settings)."""

    data: bytes
    decode: Callable[[bytes], np.ndarray]

    def unpack(self) -> np.ndarray:
        return self.decode(self.data)


class FrameStore(MutableMapping):
    """stamp -> array, as a dict; a value set packed (anything with unpack(): Deflated, Encoded) is held so and
    unpacked when read, the last one read kept (a scorer reads a frame's depth several times in a row)."""

    def __init__(self, items: Mapping | None = None):
        self._held: dict = {}
        self._last: tuple = (None, None)  # (the packed value, its array)
        self.update(items or {})

    def __getitem__(self, stamp) -> np.ndarray:
        held = self._held[stamp]
        if not hasattr(held, "unpack"):
            return held
        last = self._last  # one read of it: another thread's read may replace it meanwhile
        if last[0] is not held:
            last = self._last = (held, held.unpack())
        return last[1]

    def __setitem__(self, stamp, value) -> None:
        self._held[stamp] = value

    def __delitem__(self, stamp) -> None:
        del self._held[stamp]

    def __contains__(self, stamp) -> bool:  # Mapping's would unpack the value
        return stamp in self._held

    def __iter__(self) -> Iterator:
        return iter(self._held)

    def __len__(self) -> int:
        return len(self._held)

    def __repr__(self) -> str:
        return f"FrameStore({len(self)} frames)"


class Lookup(Sequence):
    """mapping.get(key) for each of `keys`, read when indexed: a list of a recording's frames (metrics'
    geometric_tracks takes its depth so) that does not hold them all unpacked at once."""

    def __init__(self, mapping: Mapping, keys: Sequence):
        self._mapping, self._keys = mapping, list(keys)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._mapping.get(k) for k in self._keys[i]]
        return self._mapping.get(self._keys[i])

    def __len__(self) -> int:
        return len(self._keys)


class TimedReads:
    """Frames read from a recording with their reading time (a compressed bag's decoding, depth's unzipping) summed
    apart, so that a method's wall time is its own: read when used, the decoding went into the model's and the
    peers' fps and latency (LK 830 -> 143 fps on TUM; review)."""

    def __init__(self) -> None:
        self.s = 0.0

    def __call__(self, frames: Mapping, stamp) -> np.ndarray:
        t0 = time.perf_counter()
        frame = frames[stamp]
        self.s += time.perf_counter() - t0
        return frame

