"""Whether the node's clock moves, without ROS: the rules that time something on the node's clock too (the idle
flush, worker.py; the stall rules, health.py) fall back to steady time alone while it stands still.

    motion = ClockMotion()
    motion.see(node.now_ns, time.monotonic())   # each time the node's clock is read
    motion.still_s(time.monotonic())            # steady seconds since it was last seen to change (None: never)

Why: under use_sim_time a paused bag or simulator, or a bag that ended, stops /clock together with the frames, and a
rule that waited for the node's clock to pass its span too never fired; a fixed clock (a test's) never moves at all.
"""

from __future__ import annotations


class ClockMotion:
    """The node's clock (/clock under use_sim_time) as last read, and when (monotonic s) it was last seen to change.
    moved_at: when it is taken to have last moved before any reading; None: not until two readings differ (a clock
    that never changes is never seen to move). Given, the first reading counts as a change."""

    def __init__(self, moved_at: float | None = None):
        self.seen: int | None = None
        self.moved_at = moved_at

    def see(self, node_ns: int, now: float) -> None:
        """The node's clock read node_ns at `now` (monotonic s)."""
        if node_ns != self.seen and (self.seen is not None or self.moved_at is not None):
            self.moved_at = now
        self.seen = node_ns

    def still_s(self, now: float) -> float | None:
        """Steady seconds since the node's clock was last seen to change; None: never seen to."""
        return None if self.moved_at is None else now - self.moved_at
