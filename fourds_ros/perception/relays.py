"""Image publishers that forward another's frames (a relay: a republisher, a throttle), told apart by their stamps. No
rclpy.

A relay copies its source's header, stamp included, and sends each frame after its source did: its stamps repeat
stamps already heard from another publisher. A camera's own stamps are new when heard. health.NodeHealth prefers a
relay's source to the relay when choosing whom to follow (_to_follow): a relay heard before a camera's restarted driver
(a new writer) was followed over it, the camera's own frames, late, in the clips, odometry and TF (session 72).
"""

from __future__ import annotations

from collections import OrderedDict, deque

from .recent_publishers import RecentPublishers

# Each publisher's latest stamps heard first from it, kept to recognise a relay's repeats of them: 64 frames, 2 s of a
# 30 Hz camera (1 s at 60 Hz), the most a relay may lag its source and be recognised; `ros2 topic relay` and
# image_transport republish lag by a few ms. Per publisher, not in one window: a second publisher flooding the topic
# pushed a camera's stamps out of a shared one within a second.
STAMPS_KEPT = 64
# A relay once this many of its frames in a row repeated one other publisher's stamps, and no longer from its first
# frame that did not: one repeat is a coincidence (two clocks meeting, a stamp rounded to the ms). Nor once that one
# repeated one of its stamps, while both are remembered: two drivers stamping from one trigger (a stereo pair on one
# topic) repeat each other's, whichever frame comes first, and reading the one heard second as a relay would switch the
# node between them whenever their order turns; so does a relay whose lag is within the jitter (or whose source's frame
# once came after its own), told by timing alone then, as before.
RELAY_REPEATS = 2


class Relays:
    """Which image publishers relay another's frames. Each frame is O(1): a dict look-up and at most one stamp in and
    one out; memory is bounded by STAMPS_KEPT stamps for each of at most `kept` publishers heard within `window_s`."""

    def __init__(self, window_s: float, kept: int) -> None:
        self._first: OrderedDict[int, object] = OrderedDict()  # stamp -> the publisher it was first heard from
        # publisher -> (its stamps heard first from it: deque, the publisher its latest frames repeated, how many in a
        # row, its latest stamp, the publishers it repeated a stamp of: keys of a dict, the most recent last), when it
        # was last heard
        self._publishers = RecentPublishers(window_s, kept)
        self._kept = kept

    def heard(self, publisher, stamp_ns: int, now_s: float) -> None:
        """A frame of `publisher` stamped `stamp_ns` came at now_s."""
        entry = self._publishers.get(publisher)
        own, source, repeats, last, repeated = entry[0] if entry else (deque(), None, 0, None, {})
        first = self._first.get(stamp_ns)
        if first is None:
            self._remember(publisher, own, stamp_ns)
        # Only a stamp past its own latest: a driver stamping every frame 0 (or one constant) repeats the first such
        # driver's stamp, and read as its relay; a relay of a bag played with --loop is one again from the loop's second
        # frame.
        if first is not None and first != publisher and (last is None or stamp_ns > last):
            repeats, source = (repeats + 1 if first == source else 1), first
            repeated.pop(first, None)  # put back last: the dict runs oldest first, and is cut there
            repeated[first] = None  # only whether it ever did counts (source)
            if len(repeated) > self._kept:
                del repeated[next(iter(repeated))]
        else:
            repeats = 0
        self._publishers.heard(publisher, (own, source, repeats, stamp_ns, repeated), now_s)

    def source(self, publisher):
        """The publisher whose stamps `publisher`'s latest RELAY_REPEATS frames repeated, where that one never repeated
        one of `publisher`'s while both were heard (RELAY_REPEATS), or None: not a relay."""
        entry = self._publishers.get(publisher)
        if not entry or entry[0][2] < RELAY_REPEATS:
            return None
        source = entry[0][1]
        back = self._publishers.get(source)
        # Ever, not within window_s: two triggered drivers whose arrival order holds for longer than window_s, then
        # turns (load on one), were read as a relay of the other in turn, the node switched between them each time.
        return None if back is not None and publisher in back[0][4] else source

    def relays_one_of(self, publisher, among) -> bool:
        """Whether `publisher` relays one of `among`."""
        return (source := self.source(publisher)) is not None and source in among

    def _remember(self, publisher, own: deque, stamp_ns: int) -> None:
        """`stamp_ns` heard first from `publisher`: kept, its oldest such stamp beyond STAMPS_KEPT forgotten."""
        self._first[stamp_ns] = publisher
        own.append(stamp_ns)
        if len(own) > STAMPS_KEPT and self._first.get(oldest := own.popleft()) == publisher:
            del self._first[oldest]
        # The stamps of publishers no longer heard (forgotten by _publishers: a respawned driver's old writers) are
        # forgotten oldest first: memory stays bounded whatever comes.
        while len(self._first) > STAMPS_KEPT * self._kept:
            self._first.popitem(last=False)
