"""The one structure every method's outputs are scored from: the offline pipeline, the outputs
recorded from the node over DDS, and the classical peers all produce `Predictions`. No rclpy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Predictions:
    """Outputs keyed by input-frame stamp (ns).

    depth:  stamp -> (h, w) float32 metres (any resolution; scored on the ground-truth grid)
    depth_K: stamp -> (3, 3) intrinsics of that depth image, where it covers only part of the camera
            image (e.g. the model's centre crop); absent: the depth spans the whole image
    tracks: stamp -> {"ids": (N,) int, "uv": (N, 2) float input-image pixels (x, y),
                      "visible": (N,) bool, optionally "confidence": (N,) float}
    poses:  stamp -> (4, 4) odom_from_camera (any fixed world frame; aligned with Sim(3) to score)
    latency_ms: stamp -> input-to-output latency (ms), where measured
    wall_s: wall time spent producing all outputs; frames_in: frames fed; dropped: frames fed that
    never got an output; status: the pipeline's counters at the end (offline: PerceptionPipeline.status(),
    e.g. the metric scale with a reference odometry); engine: the inference engine that ran, as it
    describes itself (e.g. "onnxruntime (CPU, fp32)"; backend auto names no backend), "" for a peer.
    depth_range: (min_depth, max_depth) metres that the depth's -inf / +inf stand for (REP 117: a reading
    below / above the node's range); None: the depth has no such marks.
    """

    name: str = "fourds"
    depth: dict[int, np.ndarray] = field(default_factory=dict)
    depth_K: dict[int, np.ndarray] = field(default_factory=dict)
    tracks: dict[int, dict] = field(default_factory=dict)
    poses: dict[int, np.ndarray] = field(default_factory=dict)
    latency_ms: dict[int, float] = field(default_factory=dict)
    wall_s: float | None = None
    frames_in: int = 0
    dropped: int | None = None
    status: dict = field(default_factory=dict)
    engine: str = ""
    depth_range: tuple[float, float] | None = None

    def output_stamps(self) -> set[int]:
        return set(self.depth) | set(self.tracks) | set(self.poses)

    def performance(self) -> dict:
        lat = np.asarray(list(self.latency_ms.values()), float)
        n_out = len(self.output_stamps())
        return {
            "fps": float(n_out / self.wall_s) if self.wall_s and n_out else None,
            "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
            "latency_ms_p95": float(np.percentile(lat, 95)) if lat.size else None,
            "dropped": int(self.dropped) if self.dropped is not None else max(0, self.frames_in - n_out),
            "frames_in": int(self.frames_in),
            "frames_out": n_out,
        }


def track_queries(tracks: dict[int, dict], image_hw: tuple[int, int] | None = None) -> dict[int, tuple[int, float, float]]:
    """track id -> (stamp, u, v) of its first observation, taken as the query the method answered
    (a method's output at its query frame is its query point, visible by definition as in TAP-Vid,
    whatever visibility it reports there). Peers are asked the same queries, so everyone tracks
    the same points. With image_hw (H, W), observations outside the image are not queries."""
    queries: dict[int, tuple[int, float, float]] = {}
    for stamp in sorted(tracks):
        tr = tracks[stamp]
        for tid, (u, v) in zip(tr["ids"], tr["uv"]):
            inside = image_hw is None or (-0.5 <= u <= image_hw[1] - 0.5 and -0.5 <= v <= image_hw[0] - 0.5)
            if int(tid) not in queries and np.isfinite(u) and np.isfinite(v) and inside:
                queries[int(tid)] = (stamp, float(u), float(v))
    return queries


def grid_queries(stamp: int, width: int, height: int, n: int = 64) -> dict[int, tuple[int, float, float]]:
    """An even grid of n queries on one frame (used when the method under test made no tracks)."""
    side = int(np.ceil(np.sqrt(n)))
    us = (np.arange(side) + 0.5) * width / side
    vs = (np.arange(side) + 0.5) * height / side
    pts = [(u, v) for v in vs for u in us][:n]
    return {i: (stamp, float(u), float(v)) for i, (u, v) in enumerate(pts)}
