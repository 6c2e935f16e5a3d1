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

from .clip_buffer import OUT_OF_ORDER_NS


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
        self.k_by_stamp: OrderedDict[int, np.ndarray | None] = OrderedDict()
        self.latest_k: np.ndarray | None = None
        self.latest_stamp: int | None = None
        self.waiting: deque[tuple[int, float, Any]] = deque()  # (stamp_ns, arrival s, item)

    def push_info(self, stamp_ns: int, k: np.ndarray | None, now_s: float) -> list[Paired]:
        """A camera_info arrived (k None: it had an empty K). -> images released, in order."""
        self._check_time(stamp_ns)
        self.k_by_stamp[stamp_ns] = k
        while len(self.k_by_stamp) > self.cache:
            self.k_by_stamp.popitem(last=False)
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
            return Paired(item, self.k_by_stamp[stamp_ns], True)
        return Paired(item, self.latest_k, False)
