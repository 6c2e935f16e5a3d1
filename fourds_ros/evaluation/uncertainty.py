"""How sure a ratio to a peer is: paired bootstrap intervals for the issue-17 targets. No rclpy.

Why: a target is a ratio of two averages on one recording (the model's depth AbsRel over the
constant's, its AJ over LK's), and one recording is a sample. The shipped model met the depth
target on the validation recording by 0.0003 of AbsRel (0.899x against 0.90x): whether the next
recording of that camera passes depends on how much the ratio moves with which frames and points
happened to be recorded, and a bare pass or FAIL does not say. The interval says it.

How: the bootstrap resamples what the score averages over and recomputes the ratio, 1000 times:
- depth (median-scaled and metric): frames, in blocks of BLOCK_FRAMES consecutive frames (a moving
  block bootstrap), because neighbouring frames share a clip and a view, and their errors move
  together; resampling single frames would pretend 80 frames are 80 independent views;
- tracks (AJ): query points, each with its whole track (TAP-Vid's AJ pools its points);
- BADJA PCK: annotated frames (a clip has 9-17, several frames apart).
The model and its peer are resampled together (paired): a hard stretch of frames weighs on both,
as it does in the ratio itself. The percentile interval at LEVEL is reported beside the ratio;
the targets themselves stay judged on the ratio (the issue's definition).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .metrics import tapvid_from_counts

LEVEL = 0.9  # the interval's coverage
RESAMPLES = 1000  # enough for the 5th and 95th percentiles to two digits
SEED = 0  # fixed: the same report twice gives the same interval
# About one clip of the default model (8 frames, consecutive clips share one): frames closer than
# this share an engine call or its neighbour's.
BLOCK_FRAMES = 8


def block_indices(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) indices into 0..n-1: random runs of `block` consecutive indices (the last run cut),
    the moving block bootstrap's resample. block 1: the plain bootstrap."""
    block = max(1, min(int(block), n))
    starts = rng.integers(0, n - block + 1, size=-(-n // block))
    return (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]


def bootstrap_interval(statistic: Callable[[np.ndarray], float | None], n: int, block: int = 1,
                       resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED
                       ) -> tuple[float, float] | None:
    """The `level` percentile interval of statistic(indices) over block resamples of range(n);
    None with fewer than two blocks (one block resamples to itself: a zero-width interval that
    would claim certainty) or when no resample gives a finite value."""
    if n < 2 * max(1, block):
        return None
    rng = np.random.default_rng(seed)
    values = [statistic(block_indices(n, block, rng)) for _ in range(resamples)]
    values = np.array([v for v in values if v is not None and np.isfinite(v)], float)
    if not len(values):
        return None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def mean_ratio_interval(model: np.ndarray, peer: np.ndarray, block: int = BLOCK_FRAMES) -> dict | None:
    """Paired per-frame values in time order (e.g. AbsRel of the model and of the constant on
    the same frames): the ratio of their means and its interval. None when nothing is paired."""
    model, peer = np.asarray(model, float), np.asarray(peer, float)
    paired = np.isfinite(model) & np.isfinite(peer)
    model, peer = model[paired], peer[paired]
    if not len(model) or not peer.mean() > 0:
        return None
    interval = bootstrap_interval(lambda i: _ratio(model[i].mean(), peer[i].mean()), len(model), block)
    return {"ratio": float(model.mean() / peer.mean()), "interval": interval, "resampled": "frames",
            "block": min(block, len(model)), "n": int(len(model))}


def aj_ratio_interval(model: dict, peer: dict) -> dict | None:
    """model, peer: the same queries' per-point TAP-Vid counts (score_tracks' `_point_counts`:
    metrics.tapvid_point_counts plus each point's query_t; rows are the same points). The ratio of
    AJs and its interval over resampled points, each resample a sum of rows. None when either AJ
    is undefined."""
    if not np.array_equal(model["query_t"], peer["query_t"]):
        raise ValueError("AJ ratio interval: the model and the peer were not scored on the same queries")
    ours, theirs = tapvid_from_counts(model)["aj"], tapvid_from_counts(peer)["aj"]
    if ours is None or theirs is None or not theirs > 0:
        return None

    def ratio(rows):
        a, b = tapvid_from_counts(model, rows)["aj"], tapvid_from_counts(peer, rows)["aj"]
        return None if a is None or b is None else _ratio(a, b)

    n = len(model["query_t"])
    return {"ratio": float(ours / theirs), "interval": bootstrap_interval(ratio, n), "resampled": "points",
            "block": 1, "n": int(n)}


def pck_ratio_interval(model: dict, peer: dict) -> dict | None:
    """model, peer: one BADJA clip's per annotated frame {frame: {pck, points}} (badja.score_badja),
    the same joints scored in both. -> the ratio of the clip's PCKs (pooled over its points) and its
    interval over resampled frames; None when the peer scored nothing."""
    frames = sorted(f for f in set(model) & set(peer) if model[f]["points"] and peer[f]["points"])
    def correct(d):
        return np.array([d[f]["pck"] * d[f]["points"] for f in frames], float)

    return mean_ratio_interval(correct(model), correct(peer), block=1) if frames else None
