"""Pairs images with the camera_info of the same stamp. No rclpy.

Images and camera_info come on two topics, delivered independently: a camera_info sample that
reliable DDS has to resend arrived a few hundred ms after its image (on loopback, 4 frames late at
15 Hz), and pairing that image with the previous K scales its depth wrongly when K has changed.
With wait_s > 0 an image whose own camera_info has not arrived yet waits (in arrival order, so
frames stay in order) until:
  - its camera_info arrives (exact pairing),
  - a camera_info with a later stamp arrives (its own was lost or never sent), or
  - it has waited `wait_s` (the stream stalled, or its stamps never match the images'),
and then takes the latest K. wait_s 0 (the node's default) never waits: own K if it has arrived,
else the latest.

The cache keeps each camera_info at least CACHE_KEEP_S after it arrived. A second publisher on the
camera_info topic (two drivers on one topic) is compared with the first: InfoPublishers says what differs; and
"the latest" is the latest of the publisher whose camera_info the last image paired with exactly.

Startup is the exception: before any camera_info has arrived, images wait up to `startup_wait_s`
(counted from the first image) for the first one, whatever wait_s is. The two subscriptions match
their publishers and deliver independently, so a stream's first image can come before its
camera_info and would otherwise be described with the default intrinsics. The wait happens once: a
camera that sends no camera_info has its first `startup_wait_s` of images delayed, then released
with the default intrinsics, and is never delayed again.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from .clip_buffer import OUT_OF_ORDER_NS, SAME_K_RTOL
from .recent_publishers import RecentPublishers

# Cached camera_infos are evicted past the last `cache` only once they arrived more than CACHE_KEEP_S ago, and at most
# CACHE_MAX are kept. By count alone (30), a second camera_info publisher at 3 kHz evicted an image's own camera_info
# within 10 ms, and 57 of 225 frames took that publisher's K. By arrival, not by stamp: a publisher's stamps far
# ahead would age every other entry at once. 4096: 1.4 s of a 3 kHz flood, 400 kB of calibrations.
CACHE_KEEP_S = 2.0
CACHE_MAX = 4096
# camera_info publishers (DDS writers) whose calibrations are compared: those heard within the last INFO_PUBLISHERS_S,
# at most INFO_PUBLISHERS_KEPT (a driver respawning for weeks is a new writer each time).
INFO_PUBLISHERS_S = 2.0
INFO_PUBLISHERS_KEPT = 16
# A frame without its own camera_info takes the latest K of the publisher that last paired exactly while that one is
# still sending (heard within this of the newest camera_info; a 4 Hz camera_info is the slowest it serves), else the
# latest K of any: a restarted driver's new calibration then applies from its first camera_info (session 69's
# review: with the dead driver kept for INFO_PUBLISHERS_S, 45 of 90 frames took its K).
OWN_CURRENT_S = 0.25
K_ENTRIES = (("fx", (0, 0)), ("fy", (1, 1)), ("cx", (0, 2)), ("cy", (1, 2)))


def sibling_camera_info_topic(image_topic: str) -> str:
    """The camera_info topic of a camera's image topic, by image_transport's rule (getCameraInfoTopic):
    the image's sibling, `/cam/color/image_raw` -> `/cam/color/camera_info`; a transport's `/compressed`
    is dropped first; a bare name (`image`) -> `camera_info`."""
    head, sep, _ = image_topic.rstrip("/").removesuffix("/compressed").rpartition("/")
    return f"{head}/camera_info" if sep else "camera_info"


def looks_rectified(image_topic: str) -> bool:
    """The topic is by its name image_proc's rectified image (`image_rect`, `image_rect_color`, ..., or its
    `/compressed` transport)."""
    return image_topic.rstrip("/").removesuffix("/compressed").rpartition("/")[2].startswith("image_rect")


@dataclass
class Paired:
    item: Any  # whatever the caller pushed with the image
    k: np.ndarray | None  # 3x3 K; None: no camera_info has arrived (or it had an empty K)
    exact: bool  # K came from the camera_info with the image's own stamp


class CameraInfoSync:
    """Not thread-safe: the node serialises calls with a lock (released images must stay in order)."""

    def __init__(self, wait_s: float = 0.0, startup_wait_s: float = 0.0, cache: int = 30, max_waiting: int = 30):
        self.wait_s = wait_s
        self.startup_wait_s = startup_wait_s
        self.first_image_s: float | None = None  # the first image's arrival opens the startup wait
        self.cache = cache
        self.max_waiting = max_waiting
        # stamp -> (calibration, arrival s, publisher)
        self.k_by_stamp: OrderedDict[int, tuple[Any, float, Any]] = OrderedDict()
        self.publishers = InfoPublishers()
        # The publisher of the camera_info the last image paired with exactly: an image without its own takes that
        # publisher's latest (one publisher: the latest), not another's that floods the topic. None: not known.
        self.own_publisher = None
        self.differs: tuple[Any, str] | None = None  # the last push_info's InfoPublishers.add
        # Frames paired without their own camera_info, with a K: stamp -> the calibration they took (the last `cache`).
        # Their own arriving later with other geometry is the one case where taking the latest gave a frame a wrong K
        # (a zoom or recalibration while camera_info lags): `late`, the last push_info's (stamp, the calibration taken).
        self.took_latest: OrderedDict[int, Any] = OrderedDict()
        self.late: tuple[int, Any] | None = None
        self.latest_k: np.ndarray | None = None
        self.latest_stamp: int | None = None
        self.waiting: deque[tuple[int, float, Any]] = deque()  # (stamp_ns, arrival s, item)

    def push_info(self, stamp_ns: int, k: np.ndarray | None, now_s: float, publisher=None) -> list[Paired]:
        """A camera_info arrived (k None: it had an empty K; publisher: its DDS writer, None or '' not known).
        -> images released, in order. `differs` says whether another publisher's calibration differs."""
        self._check_time(stamp_ns)
        self.differs = self.publishers.add(publisher, k, now_s) if publisher else None
        self.late = (stamp_ns, self.took_latest.pop(stamp_ns)) if stamp_ns in self.took_latest else None
        cached = self.k_by_stamp
        cached[stamp_ns] = (k, now_s, publisher)
        while len(cached) > self.cache and (len(cached) > CACHE_MAX
                                            or now_s - next(iter(cached.values()))[1] > CACHE_KEEP_S):
            cached.popitem(last=False)
        self.latest_k = k
        self.latest_stamp = stamp_ns if self.latest_stamp is None else max(self.latest_stamp, stamp_ns)
        return self.release(now_s)

    def push_image(self, stamp_ns: int, item: Any, now_s: float) -> list[Paired]:
        """An image arrived. -> images released, in order (this one among them unless it waits)."""
        if self.first_image_s is None:
            self.first_image_s = now_s
        self._check_time(stamp_ns)
        if not self._waits(now_s):
            return [*self.release(now_s, flush=True), self._pair(stamp_ns, item)]
        self.waiting.append((stamp_ns, now_s, item))
        return self.release(now_s)

    def release(self, now_s: float, flush: bool = False) -> list[Paired]:
        """Images that need wait no longer (all of them with flush), oldest first. Call it
        periodically too, so a stalled camera_info stream cannot hold images back."""
        out = []
        while self.waiting:
            stamp, arrived, item = self.waiting[0]
            if self.latest_stamp is None:  # waiting at startup for the first camera_info
                ready = flush or not self._waits(now_s) or len(self.waiting) > self.max_waiting
            else:
                ready = (flush or stamp in self.k_by_stamp or stamp <= self.latest_stamp
                         or now_s - arrived >= self.wait_s or len(self.waiting) > self.max_waiting)
            if not ready:
                break
            self.waiting.popleft()
            out.append(self._pair(stamp, item))
        return out

    def _check_time(self, stamp_ns: int) -> None:
        """A stamp far behind the newest camera_info's: time went back (a bag loop, a camera's or a
        simulator's clock restarted). The newest stamp starts over just before it, as ClipBuffer's
        sequence does: kept, every later image counted as 'its camera_info is late' and was paired at
        once with the previous camera's K, and wait_s never applied again."""
        if self.latest_stamp is not None and self.latest_stamp - stamp_ns > OUT_OF_ORDER_NS:
            self.k_by_stamp.clear()  # the old timeline's stamps name other frames now
            self.took_latest.clear()
            self.latest_stamp = stamp_ns - 1

    def _waits(self, now_s: float) -> bool:
        """Whether an image arriving now waits for camera_info."""
        if self.latest_stamp is not None:
            return self.wait_s > 0
        return self.first_image_s is not None and now_s - self.first_image_s < self.startup_wait_s

    def clear(self) -> list[Paired]:
        """Release everything still waiting (deactivation)."""
        return self.release(0.0, flush=True)

    def _pair(self, stamp_ns: int, item: Any) -> Paired:
        if stamp_ns in self.k_by_stamp:
            k, _, self.own_publisher = self.k_by_stamp[stamp_ns]
            return Paired(item, k, True)
        heard = self.publishers.last  # heard within INFO_PUBLISHERS_S, the most recently heard last
        own = heard.get(self.own_publisher)
        current = own is not None and next(reversed(heard.values()))[1] - own[1] <= OWN_CURRENT_S
        k = own[0] if current else self.latest_k
        if k is not None:  # a frame with no K at all is warned of already (no_camera_info, camera_info_uncalibrated)
            self.took_latest[stamp_ns] = k
            if len(self.took_latest) > self.cache:
                self.took_latest.popitem(last=False)
        return Paired(item, k, False)


class InfoPublishers:
    """The camera_info publishers (DDS writers) heard within INFO_PUBLISHERS_S and the calibration each sent last.
    add(publisher, calibration, now_s) -> (another publisher, what differs in words) when one heard since this one's
    previous message (the two interleave) last sent another calibration, else None. Two drivers on one topic each send
    their own K, and a frame took the camera_info of its own stamp, else the latest, of either: with one at 3 kHz, 57
    of 225 frames took its 90-degree K, then 74 buffer resets followed, and /diagnostics said only reset_camera. A
    driver restarting with a new calibration is a new writer after the old one's last message: no interleave, no
    warning. One publisher costs a dict update per message."""

    def __init__(self) -> None:
        # publisher -> (calibration, arrival s), the least recently heard first
        self.last = RecentPublishers(INFO_PUBLISHERS_S, INFO_PUBLISHERS_KEPT)

    def add(self, publisher, calibration, now_s: float) -> tuple[Any, str] | None:
        last = self.last
        before = last.heard(publisher, calibration, now_s)
        if len(last) == 1 or before is None:
            return None
        previous = before[1]
        for other, (theirs, at) in last.items():
            if other != publisher and at >= previous and (differs := calibration_difference(calibration, theirs)):
                return other, differs
        return None


def other_geometry(a, b) -> bool:
    """Whether two camera_infos' calibrations (camera.Calibration) describe other geometry: another K beyond float
    noise (SAME_K_RTOL, as clip_buffer.same_camera), image size or distortion. A driver that recomputes a constant K
    per message is the same geometry."""
    return (not np.allclose(a.k, b.k, rtol=SAME_K_RTOL) or (a.width, a.height) != (b.width, b.height)
            or a.model != b.model or len(a.d) != len(b.d) or not np.allclose(a.d, b.d, rtol=SAME_K_RTOL))


def calibration_difference(a, b) -> str:
    """What differs between two camera_infos' calibrations (camera.Calibration, or None for K all zero), in words
    ("fx 37 vs 21.3, size 160x120 vs 320x240"); '' when nothing does."""
    if a is None or b is None:
        return "" if a is b else "K all zero vs set"
    parts = []
    if not np.array_equal(a.k, b.k, equal_nan=True):
        parts = [f"{name} {a.k[i]:.4g} vs {b.k[i]:.4g}" for name, i in K_ENTRIES if a.k[i] != b.k[i]] or ["K"]
    if (a.width, a.height) != (b.width, b.height):
        parts.append(f"size {a.width}x{a.height} vs {b.width}x{b.height}")
    if a.model != b.model or not np.array_equal(a.d, b.d, equal_nan=True):
        parts.append("distortion")
    return ", ".join(parts)
