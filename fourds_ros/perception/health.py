"""What the node reports on /diagnostics, without ROS: counters, rate-limited warnings, latency
windows and the rules that set the status level.

    health = NodeHealth(log_warning=node.get_logger().warning)
    health.counts["frames_in"] += 1
    health.warn("bad_encoding", "dropping frame: ...")   # counted; logged at most every 10 s per kind
    level, message, values = health.report(state)         # level: OK | WARN | ERROR

Levels: ERROR while the node is unusable (configure failed); WARN when any input was bad, frames
were dropped, or more than LOST_WARN_FRACTION of the input was lost in transport; OK otherwise.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
LOG_EVERY_S = 10.0  # bad-input warnings: once per kind, then at most every 10 s
LOST_WARN_FRACTION = 0.05  # of the frames sent, lost before our callback (best-effort QoS)


@dataclass
class NodeState:
    """What the node knows that the counters do not."""

    state: str  # lifecycle state as text
    failure: str = ""  # why configure failed ("" when it did not)
    backend: str = ""
    model: str = ""
    frames_pending: int = 0
    image_publishers: int = 0
    has_camera_info: bool = False
    pipeline_status: dict | None = None  # PerceptionPipeline.status()


def percentile(window, q: float) -> str:
    return f"{np.percentile(list(window), q):.2f}" if window else "nan"


class NodeHealth:
    def __init__(self, log_warning: Callable[[str], None], log_every_s: float = LOG_EVERY_S):
        self.log_warning = log_warning
        self.log_every_s = log_every_s
        self.counts: Counter[str] = Counter()  # frames_in, frames_out, clips, frames_dropped, ...
        self.errors: Counter[str] = Counter()  # bad input per kind
        self._last_log: dict[str, float] = {}
        self.inference_ms: deque = deque(maxlen=50)
        self.latency_ms: deque = deque(maxlen=200)  # input stamp -> publish, wall clock
        # newest frame of a clip: its stamp -> all of the clip published (buffer wait excluded)
        self.clip_latency_ms: deque = deque(maxlen=200)
        self.transport_ms: deque = deque(maxlen=200)  # input stamp -> subscription callback
        self.process_ms: deque = deque(maxlen=200)  # pipeline.process + publish, per clip
        self._last_rates: tuple[float, int, int] | None = None

    def warn(self, kind: str, message: str) -> None:
        """Count a problem of `kind`; log it the first time and then at most every log_every_s."""
        self.errors[kind] += 1
        now = time.monotonic()
        if now - self._last_log.get(kind, -1e9) >= self.log_every_s:
            self._last_log[kind] = now
            self.log_warning(f"[{kind}] {message} (seen {self.errors[kind]}x)")

    def record_clip(self, stamps_ns: list[int], inference_s: float, process_s: float) -> None:
        """A clip's frames were published: latencies of each frame and of the clip as a whole.
        Counted together, so a diagnostics message never sees a clip's frames out without its
        clip latency."""
        now_ns = time.time_ns()
        self.inference_ms.append(inference_s * 1e3)
        self.process_ms.append(process_s * 1e3)
        self.latency_ms.extend((now_ns - s) / 1e6 for s in stamps_ns)
        if stamps_ns:
            self.clip_latency_ms.append((now_ns - stamps_ns[-1]) / 1e6)
            self.counts["frames_out"] += len(stamps_ns)

    def level(self, state: NodeState) -> tuple[int, str]:
        if state.failure:
            return ERROR, state.failure
        lost = self.counts["frames_lost_in_transport"]
        sent = self.counts["frames_in"] + lost
        problems = [f"{k}: {v}" for k, v in sorted(self.errors.items())]
        if self.counts["frames_dropped"]:
            problems.append(f"dropped {self.counts['frames_dropped']} frames")
        if sent and lost > LOST_WARN_FRACTION * sent:
            problems.append(f"lost {lost} of {sent} frames in transport")
        if problems:
            return WARN, f"{state.state}; " + ", ".join(problems)
        return OK, state.state

    def rates(self) -> tuple[float, float]:
        """Input and output frames per second since the last call."""
        now, fin, fout = time.monotonic(), self.counts["frames_in"], self.counts["frames_out"]
        last, self._last_rates = self._last_rates, (now, fin, fout)
        if last is None or now <= last[0]:
            return 0.0, 0.0
        return (fin - last[1]) / (now - last[0]), (fout - last[2]) / (now - last[0])

    def report(self, state: NodeState) -> tuple[int, str, dict[str, str]]:
        """-> (level, message, key-value pairs) for one DiagnosticStatus."""
        level, message = self.level(state)
        in_rate, out_rate = self.rates()
        c = self.counts
        values = {
            "state": state.state, "backend": state.backend, "model": state.model,
            "input_rate_hz": f"{in_rate:.2f}", "output_rate_hz": f"{out_rate:.2f}",
            "inference_latency_ms": f"{np.mean(self.inference_ms):.2f}" if self.inference_ms else "nan",
            "latency_p50_ms": percentile(self.latency_ms, 50), "latency_p95_ms": percentile(self.latency_ms, 95),
            "clip_latency_p50_ms": percentile(self.clip_latency_ms, 50),
            "clip_latency_p95_ms": percentile(self.clip_latency_ms, 95),
            "input_transport_ms": percentile(self.transport_ms, 50),
            "process_publish_ms": percentile(self.process_ms, 50),
            **{k: c[k] for k in ("frames_in", "frames_out", "clips", "frames_dropped", "frames_lost_in_transport",
                                 "clips_dropped", "clips_flushed")},
            "frames_pending": state.frames_pending,  # 0 once the node has caught up with its input
            "resets": sum(v for k, v in c.items() if k.startswith("reset_")),
            "image_publishers": state.image_publishers,  # publishers discovered on the image topic
            "camera_info": "yes" if state.has_camera_info else "no (default intrinsics)",
            "frames_without_own_camera_info": c["frames_without_own_camera_info"],
        }
        values.update({f"resets_{k[6:]}": v for k, v in c.items() if k.startswith("reset_")})
        values.update({f"errors_{k}": v for k, v in self.errors.items()})
        values.update(state.pipeline_status or {})
        return level, message, {k: str(v) for k, v in values.items()}
