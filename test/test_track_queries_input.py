"""track_queries clouds as clients send them, topic queries that must not vanish (seeded on an unseen
frame, or added while the inference thread takes the pending ones), and track ids that fit Marker.id."""

import threading
import types

import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2, PointField
from visualization_msgs.msg import MarkerArray

import fourds_ros.perception.tracks as tracks_mod
from fourds_ros.perception.preprocess import Preprocessor
from fourds_ros.perception.settings import TrackSettings
from fourds_ros.perception.tracks import ClipImages, TrackManager, TrackSet
from fourds_ros.ros import convert

NUMPY = {PointField.FLOAT32: "f4", PointField.INT32: "i4", PointField.FLOAT64: "f8", PointField.UINT16: "u2"}


def query_cloud(points, types=(("u", PointField.FLOAT32), ("v", PointField.FLOAT32)), big_endian=False,
                row_pad=0):
    """A track_queries cloud, height len(points) rows of one point each (one row when row_pad is 0),
    each row followed by row_pad bytes of padding; points: [(u, v), ...]."""
    order = ">" if big_endian else "<"
    dtype = np.dtype([(n, order + NUMPY[t]) for n, t in types])
    packed = np.zeros(len(points), dtype)
    packed["u"], packed["v"] = np.array(points, float).T
    fields = [PointField(name=n, offset=dtype.fields[n][1], datatype=t, count=1) for n, t in types]
    height, width = (len(points), 1) if row_pad else (1, len(points))
    row_step = width * dtype.itemsize + row_pad
    rows = np.zeros((height, row_step), np.uint8)
    rows[:, :width * dtype.itemsize] = packed.view(np.uint8).reshape(height, -1)
    return PointCloud2(height=height, width=width, fields=fields, is_bigendian=big_endian,
                       point_step=dtype.itemsize, row_step=row_step, data=rows.tobytes(), is_dense=True)


@pytest.mark.parametrize("extra", [("label", PointField.INT32), ("stamp", PointField.FLOAT64),
                                   ("ring", PointField.UINT16)])
def test_a_query_cloud_with_other_fields_beside_float32_u_v_is_read(extra):
    """The docs promise any cloud with float32 u, v: an INT32 label or FLOAT64 stamp beside them was
    refused, the warning blaming u, v."""
    msg = query_cloud([(100.0, 80.0), (12.5, 7.25)], (("u", PointField.FLOAT32), extra, ("v", PointField.FLOAT32)))
    np.testing.assert_array_equal(convert.track_query_uv(msg), [[100.0, 80.0], [12.5, 7.25]])


def test_a_big_endian_query_cloud_is_read_as_big_endian():
    """is_bigendian was ignored: the bytes were read little-endian, garbage queries and no warning."""
    msg = query_cloud([(100.0, 80.0), (3.0, 4.0)], big_endian=True)
    np.testing.assert_array_equal(convert.track_query_uv(msg), [[100.0, 80.0], [3.0, 4.0]])


def test_a_query_cloud_with_padded_rows_reads_every_row():
    """row_step > width * point_step (PointCloud2 allows it): rows after the first were read from the
    padding, as (0, 0)."""
    msg = query_cloud([(100.0, 80.0), (200.0, 90.0), (5.0, 6.0)], row_pad=8)
    np.testing.assert_array_equal(convert.track_query_uv(msg), [[100.0, 80.0], [200.0, 90.0], [5.0, 6.0]])


def test_a_query_cloud_that_cannot_be_read_is_refused_saying_why():
    f64 = query_cloud([(100.0, 80.0)], (("u", PointField.FLOAT64), ("v", PointField.FLOAT32)))
    with pytest.raises(ValueError, match="track_queries needs float32 fields u, v: u is FLOAT64"):
        convert.track_query_uv(f64)
    short = query_cloud([(1.0, 2.0), (3.0, 4.0)], row_pad=4)
    short.data = bytes(short.data)[:-1]
    with pytest.raises(ValueError, match="bytes of data"):
        convert.track_query_uv(short)
    no_v = query_cloud([(1.0, 2.0)])
    no_v.fields[1].name = "y"
    with pytest.raises(ValueError, match="track_queries needs float32 fields u, v: no field v"):
        convert.track_query_uv(no_v)


def test_track_ids_wrap_where_the_tracks_marker_id_still_holds_them():
    """Marker.id is int32, the cloud's track_id uint32: ids wrapped at 2^32, so from 2^31 a track's
    marker id went negative (or, with ROS_PYTHON_CHECK_FIELDS=1, raised and lost the clip's outputs)."""
    tm = TrackManager(4, (64, 64), TrackSettings())
    tm.next_id = 2**31 - 2
    ids = np.array([tm._new_id() for _ in range(3)], np.uint32)
    assert ids.tolist() == [2**31 - 2, 2**31 - 1, 0]
    tm.next_id = tracks_mod.TRACK_ID_LIMIT - 1  # the largest id the manager gives
    ids = np.array([tm._new_id(), 7], np.uint32)
    n = len(ids)
    tracks = TrackSet(ids, np.float32([10, 20]), np.float32([10, 20]), np.full((n, 3), 1.0, np.float32),
                      np.ones(n, bool), np.full(n, 0.9, np.float32))
    cloud_ids = convert.read_cloud(convert.tracks_cloud(tracks, 0, "cam"))["track_id"].tolist()
    markers = convert.track_markers({int(i): np.ones((2, 3)) for i in ids}, 0, "cam")
    received = deserialize_message(serialize_message(markers), MarkerArray)
    assert [m.id for m in received.markers[1:]] == cloud_ids == ids.tolist()


def textured(h=240, w=320, seed=0):
    noise = np.random.default_rng(seed).random((h, w)).astype(np.float32)
    image = cv2.GaussianBlur(noise, (0, 0), 3)
    image = (255 * (image - image.min()) / np.ptp(image)).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=2)


def run_clip(tm, pmap, image, indices, unseen):
    """One clip of a static scene: the head keeps each query where it is, visible where not unseen."""
    q, slots = tm.make_queries(indices, np.zeros((*tm.model_hw, 3), np.float32), pmap)
    n_frames = len(indices)
    xy = np.repeat(q[:, None, [2, 1]], n_frames, axis=1)
    vis = np.ones((tm.num_queries, n_frames), np.float32)
    vis[:, unseen] = 0
    images = ClipImages([np.zeros_like(image) if u else image for u in unseen])
    xy = tm.refine(slots, xy, vis, images, indices, pmap)
    tm.update(slots, xy, vis, np.full_like(vis, 0.9), indices, list(range(1, n_frames)), pmap, images,
              unseen=unseen)
    return q, slots


def test_a_topic_query_seeded_on_an_unseen_frame_is_asked_again_next_clip():
    """A query seeded on a frame too dark to see is no point: it was voided, dropped at the clip's end
    and, topic queries being used up, never seeded again nor counted, though the frames after show it."""
    image = textured()
    pmap = Preprocessor((128, 128), "center_crop").pixel_map(image.shape[:2])
    tm = TrackManager(8, (128, 128), TrackSettings(max_tracks=8, query_mode="topic"))
    tm.add_topic_queries(np.array([[170.0, 120.0]]))
    n_frames = 8
    _, slots = run_clip(tm, pmap, image, list(range(n_frames)), np.arange(n_frames) == 0)
    assert (slots >= 0).sum() == 1 and not tm.tracks  # voided on the dark frame, dropped
    np.testing.assert_allclose(tm.pending_topic_queries, [[170.0, 120.0, 0]])  # queued again, in input pixels
    q, slots = run_clip(tm, pmap, image, list(range(n_frames - 1, 2 * n_frames - 1)), np.zeros(n_frames, bool))
    assert (slots >= 0).sum() == 1
    np.testing.assert_allclose(pmap.to_input(q[0, 2], q[0, 1]), (170.0, 120.0), atol=1e-3)  # float32 queries
    assert list(tm.tracks) == [int(slots[0])] and not tm.pending_topic_queries  # followed now: not asked again
    assert tm.tracks[int(slots[0])].request is None


def test_queries_queued_again_keep_the_pending_bound():
    """The queries queued again are the oldest: past num_queries they go first, counted over_capacity."""
    tm = TrackManager(4, (32, 32), TrackSettings(max_tracks=4, query_mode="topic"))
    tm.add_topic_queries(np.arange(6.0).reshape(3, 2))
    tm.add_topic_queries(np.array([[10.0, 11.0], [12.0, 13.0]]), requeue=True)
    assert tm.pending_topic_queries == [(12.0, 13.0, 0), (0.0, 1.0, 0), (2.0, 3.0, 0), (4.0, 5.0, 0)]
    assert tm.query_counts()["track_queries_refused_over_capacity"] == 1


def test_a_query_added_while_the_clip_takes_the_pending_ones_is_not_lost(monkeypatch):
    """The subscription thread adds a query between the inference thread's read of the pending
    queries and their clear: it was neither seeded, nor pending, nor counted."""
    pmap = Preprocessor((32, 32), "center_crop").pixel_map((32, 32))
    tm = TrackManager(8, (32, 32), TrackSettings(max_tracks=8, query_mode="topic", refinement="none",
                                                 image_fallback=False, max_deviation_px=0.0))
    tm.add_topic_queries(np.array([[5.0, 5.0]]))  # query A, before the clip
    real_array, raced = np.array, []

    def array_then_subscriber_runs(obj, *args, **kwargs):
        out = real_array(obj, *args, **kwargs)
        if not raced and isinstance(obj, list) and obj and tuple(obj[0]) == (5.0, 5.0):  # the pending queries
            raced.append(True)
            thread = threading.Thread(target=tm.add_topic_queries, args=(real_array([[25.0, 25.0]]),))  # query B
            thread.start()
            thread.join(timeout=5)
            assert not thread.is_alive(), "add_topic_queries blocked"
        return out

    fake_np = types.SimpleNamespace(**{n: getattr(np, n) for n in dir(np) if not n.startswith("__")})
    fake_np.array = array_then_subscriber_runs
    monkeypatch.setattr(tracks_mod, "np", fake_np)
    _, slots = tm.make_queries([0, 1, 2, 3], np.zeros((32, 32, 3), np.float32), pmap)
    monkeypatch.setattr(tracks_mod, "np", np)
    assert raced, "the interleaving was not forced"
    seeded = [(round(t.x, 3), round(t.y, 3)) for t in tm.tracks.values()]
    assert seeded == [(5.0, 5.0)] and (slots >= 0).sum() == 1
    assert tm.pending_topic_queries == [(25.0, 25.0, 0)]  # B waits for the next clip
    assert not any(tm.query_counts().values())


def test_a_stamped_topic_query_is_seeded_on_the_frame_it_was_asked_on():
    """Every topic query was seeded on the next clip's first frame: 0-13 frames (0.43 s at 30 Hz) before the image
    the client clicked, so on a moving camera the track followed another point for good (18 px off at 3 px a frame,
    a review of threads, session 67). A query stamped with its image's stamp is seeded on that frame of the clip
    (t), tracked from there on, not before; one stamped after the clip's newest frame waits for the next clip;
    an unstamped one (0) keeps the clip's first frame."""
    from fourds_ros.perception.tracks import query_frame

    stamps = [1000 + 33 * i for i in range(8)]
    assert [query_frame(stamps, s) for s in (0, 5, 1000, 1100, 1132, 1133, 1231, 10**6)] == [0, 0, 0, 3, 4, 4, 7, 7]
    assert query_frame(None, 1100) == 0
    pmap = Preprocessor((32, 32), "center_crop").pixel_map((32, 32))
    tm = TrackManager(8, (32, 32), TrackSettings(max_tracks=8, query_mode="topic", refinement="none",
                                                 image_fallback=False, max_deviation_px=0.0))
    tm.add_topic_queries(np.array([[5.0, 5.0], [20.0, 20.0], [25.0, 10.0]]), stamps_ns=[stamps[5], 0, stamps[-1] + 33])
    indices = list(range(10, 18))
    q, slots = tm.make_queries(indices, np.zeros((32, 32, 3), np.float32), pmap, clip_stamps=stamps)
    seeded = {(round(float(x)), round(float(y))): int(t) for t, y, x in q[slots >= 0]}
    assert seeded == {(5, 5): 5, (20, 20): 0}
    assert tm.pending_topic_queries == [(25.0, 10.0, stamps[-1] + 33)]  # the next clip's
    track = next(t for t in tm.tracks.values() if round(t.x) == 5)
    assert track.frame_index == indices[5]
    xy = np.repeat(q[:, None, [2, 1]], 8, axis=1)
    vis = np.ones((8, 8), np.float32)
    sets = tm.update(slots, xy, vis, np.full_like(vis, 0.9), indices, list(range(8)), pmap)
    asked_at_5 = [track.id in set(s.ids[s.visible].tolist()) for s in sets]
    assert asked_at_5 == [False] * 5 + [True] * 3  # from the frame it was asked on


def test_a_topic_query_stamped_on_another_clock_is_seeded():
    """A client stamping with its own now() (wall time) while the frames carry a bag's stamps: the query waited
    for a frame newer than 2026 for ever, uncounted (two reviews, session 67). One stamped more than
    STAMP_OFF_CLOCK_NS past the clip is seeded as an unstamped one is, and counted."""
    import time

    pmap = Preprocessor((32, 32), "center_crop").pixel_map((32, 32))
    tm = TrackManager(8, (32, 32), TrackSettings(max_tracks=8, query_mode="topic", refinement="none",
                                                 image_fallback=False, max_deviation_px=0.0))
    tm.add_topic_queries(np.array([[16.0, 16.0]]), stamps_ns=[time.time_ns()])
    bag0 = 1_305_031_102_175_304_000
    seeded = 0
    for clip in range(5):
        stamps = [bag0 + (clip * 7 + i) * 33_333_333 for i in range(8)]
        _, slots = tm.make_queries(list(range(clip * 7, clip * 7 + 8)), np.zeros((32, 32, 3), np.float32), pmap,
                                   clip_stamps=stamps)
        seeded += int((slots >= 0).sum())
    assert seeded >= 1 and not tm.pending_topic_queries
    assert tm.query_counts()["track_queries_stamp_off_clock"] == 1
