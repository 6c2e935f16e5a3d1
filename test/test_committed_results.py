"""Committed result files that measure the same thing must agree: a study left on an older peer or
model reads a different story from the suite (the frame-rate study kept session 40's ORB VO, which
held the camera still wherever it turned, for six sessions after the suite's peer was fixed)."""

import json

import pytest

from .conftest import REPO

RESULTS = REPO / "docs" / "results"


def test_the_frame_rate_studys_30_hz_rows_are_the_suites_rows():
    suite = {r["recording"]: r for r in json.loads((RESULTS / "suite" / "suite.json").read_text())["rows"]}
    rows = [r for r in json.loads((RESULTS / "frame_rate" / "frame_rate.json").read_text()) if r["stride"] == 1]
    assert rows
    for row in rows:
        same = suite[row["recording"]]
        assert row["depth_abs_rel"] == pytest.approx(same["depth_abs_rel"], rel=0.01), row["recording"]
        if same["orb_ate_starts"] is not None:  # the peer's trajectory on the same frames and starts
            assert row["orb_vo_ate"] == pytest.approx(same["orb_ate_starts"], rel=0.01), row["recording"]
            assert row["ate"] == pytest.approx(same["ate_starts"], rel=0.05), row["recording"]
