"""The publishers (DDS writers) of a topic heard recently, and what each sent last. No rclpy.

A topic's publishers are told apart by their messages' publisher_gid (rclpy's MessageInfo). Each respawn of a camera
driver or replay of a bag is a new writer, so they are remembered only while heard recently and only the most recent
few: one entry per writer grew for the whole activation. health.NodeHealth keeps the image publishers (when each was
first heard), camera_info_sync.InfoPublishers the camera_info publishers (the calibration each sent last).
"""

from __future__ import annotations

from collections import OrderedDict


class RecentPublishers(OrderedDict):
    """publisher -> (value, when last heard: s), the least recently heard first: those heard within `window_s` of
    the newest message, at most `kept` (the most recently heard). Forgetting happens as one is heard. Any key does:
    NodeHealth keeps pairs of image publishers so too (their switches)."""

    def __init__(self, window_s: float, kept: int) -> None:
        super().__init__()
        self.window_s, self.kept = window_s, kept

    def heard(self, publisher, value, now_s: float) -> tuple | None:
        """`publisher` sent `value` at now_s -> its entry before, (value, when heard), None where it has none; the
        entry may be older than window_s where nothing was heard since. Those heard longer ago are forgotten."""
        before = self.pop(publisher, None)
        self[publisher] = (value, now_s)
        while len(self) > self.kept or now_s - next(iter(self.values()))[1] > self.window_s:
            self.popitem(last=False)
        return before
