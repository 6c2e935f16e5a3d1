"""The bootstrap intervals beside the issue-17 ratios (fourds_ros/evaluation/uncertainty.py)."""

import numpy as np
import pytest

from fourds_ros.evaluation.metrics import tapvid_from_counts, tapvid_metrics, tapvid_point_counts
from fourds_ros.evaluation.uncertainty import (aj_ratio_interval, block_indices, bootstrap_interval,
                                               mean_ratio_interval)


def test_block_indices_are_runs_of_consecutive_frames():
    rng = np.random.default_rng(1)
    idx = block_indices(20, 8, rng)
    assert len(idx) == 20 and idx.min() >= 0 and idx.max() < 20
    for run in (idx[0:8], idx[8:16]):  # whole blocks: consecutive frames
        assert np.all(np.diff(run) == 1)
    assert len(block_indices(3, 8, rng)) == 3  # a block longer than the recording is the recording


def test_interval_is_reproducible_and_holds_the_estimate():
    values = np.random.default_rng(2).normal(1.0, 0.2, 60)
    a = bootstrap_interval(lambda i: float(values[i].mean()), len(values))
    assert a == bootstrap_interval(lambda i: float(values[i].mean()), len(values))  # fixed seed
    assert a[0] < values.mean() < a[1]
    # The standard error of a mean of 60 values with sigma 0.2 is 0.026: a 90 % interval is about
    # +-0.043 wide; a wrong resampling (e.g. always the same indices) would give zero width.
    assert 0.05 < a[1] - a[0] < 0.13
    assert bootstrap_interval(lambda i: 1.0, 1) is None  # one frame tells nothing
    assert bootstrap_interval(lambda i: float(values[i].mean()), 12, block=8) is None  # nor does one block


def test_a_consistent_gain_is_sure_and_a_mixed_one_is_not():
    rng = np.random.default_rng(3)
    peer = rng.uniform(0.2, 0.3, 80)
    steady = mean_ratio_interval(0.8 * peer * rng.uniform(0.97, 1.03, 80), peer)
    assert steady["interval"][1] < 0.9 and abs(steady["ratio"] - 0.8) < 0.01
    # Same mean ratio, but the gain comes from half the recording (frames 0-39 much better, 40-79
    # worse): the interval must straddle 0.9 and reach well past it.
    mixed_model = np.where(np.arange(80) < 40, 0.3 * peer, 1.3 * peer)
    mixed = mean_ratio_interval(mixed_model, peer)
    assert mixed["interval"][0] < 0.9 < mixed["interval"][1]
    assert mixed["interval"][1] - mixed["interval"][0] > 4 * (steady["interval"][1] - steady["interval"][0])


def test_blocks_widen_the_interval_of_correlated_frames():
    """Errors that drift slowly across the recording (as frames of one view do) are fewer
    independent samples than frames; blocks of 8 must say so, single frames would not."""
    t = np.arange(96)
    peer = np.full(96, 0.25)
    model = 0.2 + 0.08 * np.sin(t / 6.0)
    single = mean_ratio_interval(model, peer, block=1)["interval"]
    blocks = mean_ratio_interval(model, peer, block=8)["interval"]
    assert (blocks[1] - blocks[0]) > 1.3 * (single[1] - single[0])


def test_unpaired_frames_are_left_out():
    r = mean_ratio_interval([0.1, np.nan, 0.2, 0.2], [0.2, 0.2, np.nan, 0.4])
    assert r["n"] == 2 and r["ratio"] == pytest.approx(0.3 / 0.6)
    assert mean_ratio_interval([np.nan], [0.2]) is None


def _counts(gt_xy, noise_px, rng):
    n, t = gt_xy.shape[:2]
    occluded = np.zeros((n, t), bool)
    pred = gt_xy + rng.normal(0, noise_px, gt_xy.shape)
    return tapvid_point_counts(np.zeros(n, int), occluded, gt_xy, occluded, pred) | {"query_t": np.zeros(n, int)}


def test_aj_ratio_interval_pairs_the_points():
    rng = np.random.default_rng(4)
    gt_xy = rng.uniform(20, 200, (60, 1, 2)) + np.cumsum(rng.normal(0, 2, (60, 10, 2)), axis=1)
    good, bad = _counts(gt_xy, 1.0, rng), _counts(gt_xy, 6.0, rng)
    r = aj_ratio_interval(good, bad)
    assert r["ratio"] > 1.5 and r["interval"][0] > 1.2 and r["n"] == 60
    with pytest.raises(ValueError, match="same queries"):
        aj_ratio_interval(good, _counts(gt_xy[:30], 1.0, rng))


def test_summed_point_counts_score_a_subset_as_tapvid_metrics_does():
    rng = np.random.default_rng(6)
    n, t = 25, 12
    args = (rng.integers(0, t, n), rng.random((n, t)) < 0.3, rng.uniform(0, 256, (n, t, 2)), rng.random((n, t)) < 0.3)
    pred = args[2] + rng.normal(0, 5, (n, t, 2))
    rows = rng.integers(0, n, n)  # a bootstrap resample: points repeated and left out
    subset = tapvid_metrics(*(a[rows] for a in args), pred[rows])
    assert tapvid_from_counts(tapvid_point_counts(*args, pred), rows) == pytest.approx(subset)


def test_the_report_pairs_model_and_constant_by_stamp_and_the_suite_shows_it():
    from fourds_ros.evaluation.report import target_intervals
    from fourds_ros.evaluation.suite import Recording, suite_row

    rng = np.random.default_rng(5)
    peer = rng.uniform(0.2, 0.3, 24)
    frames = [{"stamp_ns": s, "abs_rel": 0.7 * p, "metric_abs_rel": 2.0 * p} for s, p in enumerate(peer)]
    constant = [{"stamp_ns": s, "abs_rel": p, "metric_abs_rel": p} for s, p in enumerate(peer)]
    constant.append({"stamp_ns": 99, "abs_rel": 5.0, "metric_abs_rel": 5.0})  # no model frame: not paired
    report = {"_depth_per_frame": frames, "peers": {"constant_depth": {"_depth_per_frame": constant}},
              "pose_over_starts": {"fourds": {"ate": [0.03, 0.02, None], "ate_mean": 0.025},
                                   "orb_vo": {"ate": [0.02, 0.025, 0.02], "ate_mean": 0.0217}}}
    report["uncertainty"] = target_intervals(report)
    assert report["uncertainty"]["depth"]["ratio"] == pytest.approx(0.7)
    assert report["uncertainty"]["metric_depth"]["ratio"] == pytest.approx(2.0)
    assert report["uncertainty"]["depth"]["n"] == 24 and "tracks" not in report["uncertainty"]
    row = suite_row(Recording("r", "tum", "p", "s"), "validation", report, "r")
    assert row["intervals"]["depth"]["interval"] == pytest.approx((0.7, 0.7))  # every frame exactly 0.7x
    # the pose: the mean ratio, and the range of the per-start ratios that could be formed
    assert row["intervals"]["pose"]["ratio"] == pytest.approx(0.025 / 0.0217)
    assert row["intervals"]["pose"]["interval"] == pytest.approx((0.8, 1.5))


def test_pck_ratio_pools_the_clip_points_and_pairs_the_frames():
    from fourds_ros.evaluation.uncertainty import pck_ratio_interval

    model = {f: {"pck": p, "points": n} for f, p, n in [(5, 1.0, 10), (10, 0.5, 20), (15, 0.0, 0), (20, 0.8, 10)]}
    peer = {f: {"pck": p, "points": n} for f, p, n in [(5, 0.5, 10), (10, 0.5, 20), (15, None, 0), (20, 0.4, 10)]}
    r = pck_ratio_interval(model, peer)
    # frames 5, 10, 20 (frame 15 scored no point): (10 + 10 + 8) / (5 + 10 + 4) correct points
    assert r["n"] == 3 and r["ratio"] == pytest.approx(28 / 19)
    assert r["interval"][0] <= r["ratio"] <= r["interval"][1]
    assert pck_ratio_interval(model, {}) is None


def test_interval_is_the_90_percent_one():
    """report.md prints "90 %" from LEVEL: the tails cut must be 5 % each (an 80 % interval still passed the
    width checks above)."""
    lo, hi = bootstrap_interval(lambda i: float(i[0]), 1000)  # a uniform draw of 0..999
    assert lo == pytest.approx(50, abs=20) and hi == pytest.approx(949, abs=20)
