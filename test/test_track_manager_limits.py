"""TrackManager at its limits: queries over track_max_tracks counted one by one, track_max_tracks capped at the engine's
num_queries, trails only where a track was seen, and track_min_visibility inclusive (a head saturating at exactly the
threshold keeps its track)."""

from __future__ import annotations

import numpy as np
import pytest

from fourds_ros.perception.preprocess import Preprocessor
from fourds_ros.perception.settings import TrackSettings
from fourds_ros.perception.tracks import TrackManager


def test_every_query_over_max_tracks_is_counted():
    pmap = Preprocessor((64, 64), "center_crop").pixel_map((64, 64))
    tm = TrackManager(8, (64, 64), TrackSettings(max_tracks=2, query_mode="topic", refinement="none",
                                                 image_fallback=False, max_deviation_px=0.0))
    tm.add_topic_queries(np.array([[8.0, 8.0], [56.0, 8.0], [8.0, 56.0], [56.0, 56.0], [32.0, 32.0]]))
    _, slots = tm.make_queries([0, 1, 2, 3], np.zeros((64, 64, 3), np.float32), pmap)
    counts = tm.query_counts()
    assert (slots >= 0).sum() == 2
    assert counts["track_queries_refused_over_max_tracks"] == 3, counts
    assert sum(counts.values()) == 3, counts  # each query seeded or refused for one reason

def test_max_tracks_over_num_queries_fills_every_query_slot_and_no_more():
    pmap = Preprocessor((32, 32), "center_crop").pixel_map((32, 32))
    tm = TrackManager(8, (32, 32), TrackSettings(max_tracks=64, query_mode="grid", refinement="none",
                                                 image_fallback=False))
    assert tm.max_tracks == 8
    points, slots = tm.make_queries([0, 1, 2, 3], np.zeros((32, 32, 3), np.float32), pmap)
    assert points.shape == (8, 3) and (slots >= 0).all() and len(tm.tracks) == 8

def test_a_trail_grows_only_where_the_track_is_visible():
    pmap = Preprocessor((32, 32), "center_crop").pixel_map((32, 32))
    tm = TrackManager(4, (32, 32), TrackSettings(max_tracks=4, query_mode="topic", refinement="none",
                                                 image_fallback=False, max_deviation_px=0.0))
    tm.add_topic_queries(np.array([[10.0, 12.0]]))
    indices = [0, 1, 2, 3]
    _, slots = tm.make_queries(indices, np.zeros((32, 32, 3), np.float32), pmap)
    (track_id,) = slots[slots >= 0]
    xy = np.zeros((4, 4, 2), np.float32)
    xy[0] = [(10.0, 12.0), (25.0, 3.0), (11.0, 12.0), (12.0, 12.0)]  # frame 1: hidden, and elsewhere
    vis = np.ones((4, 4), np.float32)
    vis[0, 1] = 0.0
    tm.update(slots, xy, vis, np.full_like(vis, 0.9), indices, indices, pmap)
    assert tm.trails()[int(track_id)] == [(10.0, 12.0), (11.0, 12.0), (12.0, 12.0)]

@pytest.mark.parametrize("threshold", [0.5, 1.0])
def test_a_visibility_equal_to_the_threshold_is_visible_and_keeps_the_track(threshold):
    pmap = Preprocessor((32, 32), "center_crop").pixel_map((32, 32))
    tm = TrackManager(4, (32, 32), TrackSettings(max_tracks=4, query_mode="topic", refinement="none",
                                                 image_fallback=False, max_deviation_px=0.0, min_visibility=threshold))
    tm.add_topic_queries(np.array([[10.0, 12.0]]))
    indices = [0, 1, 2, 3]
    _, slots = tm.make_queries(indices, np.zeros((32, 32, 3), np.float32), pmap)
    (track_id,) = slots[slots >= 0]
    xy = np.zeros((4, 4, 2), np.float32)
    xy[:, :] = (10.0, 12.0)
    vis = np.full((4, 4), threshold, np.float32)
    sets = tm.update(slots, xy, vis, np.full_like(vis, 0.9), indices, indices, pmap)
    assert all(ts.visible.tolist() == [True] for ts in sets), [ts.visible for ts in sets]
    assert list(tm.tracks) == [track_id]  # carried to the next clip, not lost and re-seeded
