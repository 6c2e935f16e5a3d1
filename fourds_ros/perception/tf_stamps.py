"""Which of the node's odom -> base transforms may go out on /tf, by their stamps, without rclpy.

tf2 keys a transform by its stamp and keeps the last 10 s of each frame's transforms. A live camera whose stamps
step back (its driver restarted with its own clock, a PTP resync, a USB camera's device clock reset) while the
node's clock goes on starts a new recording and a new odometry chain (clip_buffer's time_backwards), whose
transforms are stamped at times tf2 users already hold: each one is TF_REPEATED_DATA or a second transform
among the first chain's, and a lookup at such a time teleported to the new chain's pose. `TfStampGate` withholds
a transform stamped at or before the newest one published (counted, health.warn "tf_stamps_back") until the
stamps pass it; the depth, tracks and odometry topics go on, the new chain's own stamps.

Not withheld across a jump of the node's clock (a bag loop or seek under use_sim_time, a simulator reset):
tf2 listeners clear their buffers at a jump back, so the newest published is forgotten there too. A transform
of a frame taken in before the jump (a clip still in inference) goes out as before, and does not count as the
newest: after a loop's /clock jump its stamp, near the bag's end, would have held back the whole new loop.
Restamping the withheld transforms (now, or past the newest) was not taken: a tf2 lookup at an image's stamp,
the one depth, tracks and odometry carry, would then answer with another frame's pose.
"""

from __future__ import annotations

from collections.abc import Callable

TF_STAMPS_BACK = "tf_stamps_back"  # health.warn's kind for a withheld transform: /diagnostics errors_tf_stamps_back


def rewrites_tf_past(stamp_ns: int, newest_ns: int | None) -> bool:
    """Whether a transform stamped `stamp_ns` lies at or before `newest_ns`, the newest one published since the
    node's clock last jumped (None: none): tf2 would take it as a rewrite of the past it holds."""
    return newest_ns is not None and stamp_ns <= newest_ns


class TfStampGate:
    """admit(stamp_ns, jumps) per transform, on the one thread that publishes TF. jumps: (the node's clock jumps
    so far, those counted when the transform's frame came in): NodeHealth.clock_jumps_at. what: the transform
    in words ("odom -> base_link"); warn(kind, message): the node's health.warn."""

    def __init__(self, what: str, warn: Callable[[str, str], None]):
        self.what, self.warn = what, warn
        self.newest_ns: int | None = None  # the newest transform published since the clock jump counted in `jumps`
        self.jumps = 0
        self.withheld = 0

    def admit(self, stamp_ns: int, jumps: tuple[int, int]) -> bool:
        now_jumps, came_in_jumps = jumps
        if now_jumps != self.jumps:  # the clock jumped: tf2 listeners forgot the newest published too
            self.newest_ns, self.jumps = None, now_jumps
        if came_in_jumps != now_jumps:  # taken in before the jump: sent as before, not the newest of this clock
            return True
        if rewrites_tf_past(stamp_ns, self.newest_ns):
            self.withheld += 1
            self.warn(TF_STAMPS_BACK, f"{self.what} stamped {(self.newest_ns - stamp_ns) / 1e9:.3f} s before the newest "
                      f"one published withheld from /tf: the camera's stamps stepped back while this node's clock did "
                      f"not (a camera driver restarted with its own clock, a PTP resync, a device clock reset), and tf2 "
                      f"users would take it as a rewrite of the past they hold. Depth, tracks and odometry (a new chain) "
                      f"are published; TF resumes once the stamps pass the newest published")
            return False
        self.newest_ns = stamp_ns
        return True
