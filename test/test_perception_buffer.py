"""Clip buffer, track bookkeeping and odometry chaining (no rclpy)."""

import numpy as np
import pytest
import transforms3d.euler as euler

from fourds_ros.perception.clip_buffer import OUT_OF_ORDER, ClipBuffer, ClipQueue, Frame, supersede
from fourds_ros.perception.odometry import OdometryChain, default_base_from_camera, transform_from_xyz_quat
from fourds_ros.perception.preprocess import Preprocessor
from fourds_ros.perception.settings import TrackSettings
from fourds_ros.perception.tracks import TRACK_ID_LIMIT, TrackManager, motion_outliers

MS = 1_000_000


def track_settings(**kw) -> TrackSettings:
    """TrackSettings with refinement, the image fallback and the jump rule off unless asked for."""
    return TrackSettings(**{"refinement": "none", "image_fallback": False, "max_deviation_px": 0.0, **kw})


def frame(stamp_ms, shape=(4, 6, 3), encoding="rgb8", frame_id="cam", k=None):
    return Frame(np.zeros(shape, np.uint8), stamp_ms * MS, frame_id, k, encoding=encoding)


def test_clips_every_hop_frames_with_overlap():
    buf = ClipBuffer(4, 2)
    clips = []
    for i in range(10):
        clip, reason = buf.push(frame(i * 33))
        assert reason is None
        if clip:
            clips.append(clip)
    assert [[f.index for f in c.frames] for c in clips] == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
    assert [c.new_frames for c in clips] == [4, 2, 2, 2]
    assert len(buf.frames) == 4  # bounded: drop-oldest


@pytest.mark.parametrize("bad, reason", [
    (frame(3100, shape=(8, 6, 3)), "resolution"),
    (frame(3100, encoding="bgr8"), "encoding"),
    (frame(10), "time_backwards"),
    (frame(5000), "gap"),
])
def test_resets(bad, reason):
    buf = ClipBuffer(4, 2, max_gap_s=1.0)
    for i in range(3):
        buf.push(frame(3000 + i * 33))
    clip, got = buf.push(bad)
    # the ended sequence's 3 frames, fewer than a clip, described by a clip that ends on its last frame held still
    assert got == reason and clip.new_frames == 3 and clip.sequence == 0 and buf.frames_reset == 0
    assert [f.stamp_ns // MS for f in clip.frames] == [3000, 3033, 3066, 3066] and clip.output_t == [0, 1, 2]
    assert buf.resets[reason] == 1 and len(buf.frames) == 1 and buf.sequence == 1
    outs = [buf.push(frame(bad.stamp_ns // MS + 33 * (i + 1), bad.rgb.shape, bad.encoding))[0] for i in range(3)]
    assert outs[-1] is not None and outs[-1].new_frames == 4 and outs[-1].sequence == 1


K = np.array([[5.0, 0, 2.5], [0, 5.0, 1.5], [0, 0, 1]])


@pytest.mark.parametrize("before, after", [
    ({}, {"k": K}),  # camera_info arriving after the first images (they had the default K)
    ({"k": K}, {"k": K * [[1.01], [1.01], [1]]}),  # another K
    ({"k": K}, {}),  # camera_info refused from here on: the default K
    ({}, {"frame_id": "rear"}),  # a topic mux switching cameras
])
def test_a_camera_change_resets_and_float_noise_in_k_does_not(before, after):
    """A clip takes its depth scale and the pose's camera from its first frame's K: a clip mixing
    the default K with camera_info's (camera_info later than the first images) had the later
    frames' depth off by 1.85x, and a mux's clip mixed two cameras."""
    buf = ClipBuffer(4, 2)
    for i in range(3):  # K recomputed per message: float noise is the same camera
        noisy = {**before, "k": before["k"] * (1 + 1e-6 * i)} if "k" in before else before
        assert buf.push(frame(i * 33, **noisy)) == (None, None)
    ended, reason = buf.push(frame(100, **after))
    assert reason == "camera" and ended.new_frames == 3 and all(f.stamp_ns < 100 * MS for f in ended.frames)
    assert buf.resets == {"camera": 1} and buf.frames_reset == 0 and buf.sequence == 1
    clip = [buf.push(frame(133 + 33 * i, **after)) for i in range(3)][-1][0]
    assert [f.stamp_ns // MS for f in clip.frames] == [100, 133, 166, 199] and clip.new_frames == 4


def test_a_late_frame_is_dropped_and_counted_without_a_reset():
    """Two frames with swapped stamps used to reset the buffer (4 frames lost, odometry restarted)."""
    buf = ClipBuffer(4, 2, max_gap_s=1.0)
    stamps = [0, 33, 100, 66, 133, 166, 200]  # 66 arrives after 100
    results = [buf.push(frame(s)) for s in stamps]
    assert results[3] == (None, OUT_OF_ORDER)
    assert buf.frames_out_of_order == 1 and sum(buf.resets.values()) == 0 and buf.sequence == 0
    clips = [c for c, _ in results if c]
    assert [[f.stamp_ns // MS for f in c.frames] for c in clips] == [[0, 33, 100, 133], [100, 133, 166, 200]]


def test_a_repeated_stamp_is_dropped_and_counted_without_a_reset():
    """A driver that sends a frame twice with one stamp: described twice, it gave two different
    odom -> base_link transforms of one stamp (tf2 keeps the first and warns TF_REPEATED_DATA)."""
    buf = ClipBuffer(4, 2, max_gap_s=1.0)
    results = [buf.push(frame(s)) for s in [0, 33, 66, 66, 100, 133, 166]]
    assert results[3] == (None, OUT_OF_ORDER)
    assert buf.frames_out_of_order == 1 and sum(buf.resets.values()) == 0
    clips = [c for c, _ in results if c]
    assert [[f.stamp_ns // MS for f in c.frames] for c in clips] == [[0, 33, 66, 100], [66, 100, 133, 166]]


def test_frames_dropped_by_a_reset_are_counted_and_pending_frames_known():
    buf = ClipBuffer(4, 2, max_gap_s=1.0)
    for i in range(3):
        buf.push(frame(i * 33))
    assert buf.pending == 3  # before the first clip every buffered frame waits for it
    buf.push(frame(3 * 33))  # first clip: all four described
    buf.push(frame(4 * 33))
    assert buf.pending == 1
    buf.reset("manual")
    assert buf.frames_reset == 1 and buf.pending == 0
    buf.push(frame(5000))
    ended, _ = buf.push(frame(9000))  # a gap: the one frame of the new sequence, described as the reset's clip
    assert ended.new_frames == 1 and ended.frames[-1].stamp_ns == 5000 * MS
    assert buf.frames_reset == 1 and buf.resets["gap"] == 1


@pytest.mark.parametrize("resumed", [frame(8000), frame(10), frame(3300, frame_id="rear")])
def test_a_reset_describes_the_ended_sequences_frames_no_clip_had(resumed):
    """A gap, a bag loop or a camera change dropped the frames after the last clip (frames_reset)
    whenever the stream came back before the idle flush (1 s of wall clock): `ros2 bag play --loop`
    lost each pass's tail, --rate 2 every pause of 1-2 s. The reset's push returns the clip that
    describes them, as a flush does."""
    buf = ClipBuffer(4, 2, max_gap_s=1.0)
    clips = [buf.push(frame(3000 + i * 33))[0] for i in range(7)]  # clips at frames 3 and 5; frame 6 waits
    assert [c.new_frames for c in clips if c] == [4, 2] and buf.pending == 1
    ended, reason = buf.push(resumed)
    assert reason in ("gap", "time_backwards", "camera") and buf.resets[reason] == 1
    assert ended.sequence == 0 and ended.new_frames == 1
    assert [f.stamp_ns // MS for f in ended.frames] == [3099, 3132, 3165, 3198]
    assert buf.frames_reset == 0 and buf.sequence == 1 and len(buf.frames) == 1 and buf.pending == 1


@pytest.mark.parametrize("stamp, reason", [(3165, OUT_OF_ORDER), (10, "time_backwards")])
def test_a_step_back_in_time_is_judged_before_a_change_of_camera(stamp, reason):
    """The stamp was checked after the camera: a mux switching to a hardware-synchronised camera
    described a stamp twice (two odom -> base_link of one stamp), and a camera restarted with new
    intrinsics and its clock at 0 glued the new trajectory onto the old odometry chain (a `camera`
    reset, no restart). A frame not newer than the last is judged by its stamp first."""
    buf = ClipBuffer(4, 2, max_gap_s=1.0)
    for i in range(6):
        buf.push(frame(3000 + i * 33))
    assert buf.push(frame(stamp, frame_id="rear", k=np.eye(3)))[1] == reason


def test_a_repeated_stamp_just_after_a_manual_reset_is_still_out_of_order():
    buf = ClipBuffer(4, 2, max_gap_s=1.0)
    for i in range(6):
        buf.push(frame(i * 33))
    buf.reset("manual")
    assert buf.push(frame(165)) == (None, OUT_OF_ORDER) and buf.frames_out_of_order == 1
    assert buf.push(frame(198)) == (None, None) and buf.pending == 1


def test_a_newer_clip_describes_the_frames_of_the_clip_it_supersedes():
    buf = ClipBuffer(4, 2)
    clips = [c for c, _ in (buf.push(frame(i * 33)) for i in range(10)) if c]
    first, a, b, c = clips
    merged, lost = supersede(a, b)  # a (new frames 4, 5) never ran: b (6, 7) describes them too
    assert (merged.new_frames, lost) == (4, 0)
    assert [f.index for f in merged.frames[-merged.new_frames:]] == [4, 5, 6, 7] and b.new_frames == 2
    merged, lost = supersede(merged, c)  # 4, 5 have left c's window: only 6, 7 carry over
    assert (merged.new_frames, lost) == (4, 2)
    buf.reset("manual")
    after = [c for c, _ in (buf.push(frame(400 + i * 33)) for i in range(4)) if c][0]
    assert supersede(b, after) == (after, 2)  # another sequence: nothing shared


def test_clip_queue_keeps_a_burst_and_supersedes_beyond_capacity():
    buf = ClipBuffer(4, 2)
    first, a, b, c = [c for c, _ in (buf.push(frame(i * 33)) for i in range(10)) if c]
    queue = ClipQueue(capacity=2)
    assert queue.put(first) == (False, 0) and queue.put(a) == (False, 0)
    assert queue.put(b) == (True, 0)  # full: b supersedes a and describes its frames too
    assert queue.put(c) == (True, 2)  # c supersedes the merged clip; frames 4, 5 are lost
    assert queue.take() is first
    last = queue.take()
    assert [f.index for f in last.frames[-last.new_frames:]] == [6, 7, 8, 9]
    assert queue.take() is None and len(queue) == 0


def test_hop_out_of_range():
    with pytest.raises(ValueError):
        ClipBuffer(4, 5)


def test_track_ids_continue_across_overlap_and_lost_tracks_are_reseeded():
    pmap = Preprocessor((32, 32), "resize").pixel_map((64, 64))
    manager = TrackManager(6, (32, 32), track_settings(max_tracks=4, query_mode="grid"))
    image = np.zeros((32, 32, 3), np.float32)
    q, ids = manager.make_queries([0, 1, 2, 3], image, pmap)
    assert q.shape == (6, 3) and list(ids[:4]) == [0, 1, 2, 3] and list(ids[4:]) == [-1, -1]
    assert np.all(q[:4, 0] == 0)
    # Every track moves +1 px in x per frame; track 2 becomes invisible in the last frame.
    xy = np.repeat(q[:, None, [2, 1]], 4, axis=1) + np.array([1.0, 0.0]) * np.arange(4)[None, :, None]
    vis = np.ones((6, 4))
    vis[2, 3] = 0.0
    sets = manager.update(ids, xy, vis, np.full((6, 4), 0.9), [0, 1, 2, 3], [0, 1, 2, 3], pmap)
    assert len(sets) == 4 and list(sets[3].ids) == [0, 1, 2, 3]
    assert list(sets[3].visible) == [True, True, False, True]
    # u, v are input pixels: model x + 3 -> input (x + 3.5) * 2 - 0.5
    assert np.allclose(sets[3].u[0], (xy[0, 3, 0] + 0.5) * 2 - 0.5)
    # Next clip overlaps frames 2, 3: the survivors are queried at frame 3 (t = 1), same ids.
    q2, ids2 = manager.make_queries([2, 3, 4, 5], image, pmap)
    assert set(ids2[:3]) == {0, 1, 3}
    for tid, row in zip(ids2[:3], q2[:3]):
        assert row[0] == 1 and np.isclose(row[2], xy[tid, 3, 0])
    assert ids2[3] >= 4  # the lost track's slot got a new id
    assert manager.lost == 1
    # No overlap at all: nothing continues.
    _, ids3 = manager.make_queries([10, 11, 12, 13], image, pmap)
    assert not set(ids3[ids3 >= 0]) & set(ids2[ids2 >= 0])


def test_track_ids_wrap_below_the_id_limit_past_the_live_ones():
    """Ids are published as uint32 (track_id) and int32 (Marker.id): counting past 2^32 (months of a
    covered lens reseeding every clip) made every clip fail to pack them. They wrap at TRACK_ID_LIMIT
    (2^31, which both hold), skipping ids still in use."""
    pmap = Preprocessor((32, 32), "resize").pixel_map((64, 64))
    manager = TrackManager(6, (32, 32), track_settings(max_tracks=4, query_mode="grid"))
    image = np.zeros((32, 32, 3), np.float32)
    manager.next_id = TRACK_ID_LIMIT - 2
    _, ids = manager.make_queries([0, 1, 2, 3], image, pmap)
    assert list(ids[:4]) == [TRACK_ID_LIMIT - 2, TRACK_ID_LIMIT - 1, 0, 1]
    xy = np.zeros((6, 4, 2))
    sets = manager.update(ids, xy, np.ones((6, 4)), np.full((6, 4), 0.9), [0, 1, 2, 3], [0, 1, 2, 3], pmap)
    assert list(sets[0].ids) == [TRACK_ID_LIMIT - 2, TRACK_ID_LIMIT - 1, 0, 1]
    manager.next_id = TRACK_ID_LIMIT - 1  # the next free ids, past the three still live: 2, 3
    manager.tracks.pop(TRACK_ID_LIMIT - 2)
    assert [manager._new_id() for _ in range(2)] == [2, 3]


def camera_pan(n=6, t=5, step=(2.0, -1.0), seed=0):
    """(n, t, 2) tracks that all move by `step` per frame (a panning camera), with a little noise."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(20, 100, (n, 1, 2))
    return start + np.array(step) * np.arange(t)[None, :, None] + rng.normal(0, 0.3, (n, t, 2))


def test_motion_outliers_flag_a_track_that_jumps_off_the_common_motion_from_the_jump_on():
    xy = camera_pan()
    xy[3, 2:] += np.array([12.0, 5.0])  # track 3 jumps between frames 1 and 2, then moves along
    visible = np.ones((6, 5), bool)
    out = motion_outliers(xy, visible, np.zeros(6, np.int64), max_deviation=6.0)
    assert out[3].tolist() == [False, False, True, True, True]
    assert not out[np.arange(6) != 3].any()
    # The same jump under the threshold, or a common jump of every track (the camera turned), is none.
    assert not motion_outliers(xy, visible, np.zeros(6, np.int64), max_deviation=20.0).any()
    turn = camera_pan()
    turn[:, 2:] += np.array([12.0, 5.0])
    assert not motion_outliers(turn, visible, np.zeros(6, np.int64), max_deviation=6.0).any()


def test_motion_outliers_judge_only_steps_between_observed_frames_after_the_query():
    xy = camera_pan()
    xy[0, 1] += 30.0  # before track 0's query frame (2): the head's guess there is not judged
    xy[1, 3:] += 30.0  # track 1 jumps into frame 3, but it was invisible in frame 2: not judged
    xy[2, 4] += 30.0  # track 2 jumps into frame 4 from its query frame 3, invisible there: judged
    visible = np.ones((6, 5), bool)
    visible[1, 2] = False
    visible[2, 3] = False
    query_t = np.array([2, 0, 3, 0, 0, 0])
    out = motion_outliers(xy, visible, query_t, max_deviation=6.0)
    assert out.sum(axis=1).tolist() == [0, 0, 1, 0, 0, 0] and out[2, 4]
    # Fewer than 4 tracks in a step: no median to compare against.
    assert not motion_outliers(xy[:3], visible[:3], query_t[:3], max_deviation=6.0).any()


def test_track_manager_retires_a_jumped_track_and_reseeds_its_slot():
    pmap = Preprocessor((32, 32), "resize").pixel_map((64, 64))
    image = np.zeros((32, 32, 3), np.float32)
    outputs = {}
    for max_deviation in (0.0, 4.0):
        manager = TrackManager(6, (32, 32), track_settings(max_tracks=6, max_deviation_px=max_deviation))
        q, ids = manager.make_queries([0, 1, 2, 3], image, pmap)
        xy = np.repeat(q[:, None, [2, 1]], 4, axis=1) + np.array([0.5, 0.0]) * np.arange(4)[None, :, None]
        xy[1, 2:] += np.array([6.0, 6.0])  # track 1 latches onto another point in frame 2
        sets = manager.update(ids, xy, np.ones((6, 4)), np.full((6, 4), 0.9), [0, 1, 2, 3], [0, 1, 2, 3], pmap)
        outputs[max_deviation] = (sets, manager)
    sets, manager = outputs[4.0]
    assert [s.visible[1] for s in sets] == [True, True, False, False]
    assert all(s.visible[np.arange(6) != 1].all() for s in sets)
    assert 1 not in manager.tracks and manager.lost == 1
    _, ids2 = manager.make_queries([3, 4, 5, 6], image, pmap)
    assert 1 not in ids2 and ids2.max() >= 6  # its slot got a new track
    sets_off, manager_off = outputs[0.0]
    assert all(s.visible.all() for s in sets_off) and manager_off.lost == 0
    with pytest.raises(ValueError, match="track_max_deviation_px"):
        TrackManager(6, (32, 32), track_settings(max_tracks=6, max_deviation_px=-1.0))


def test_no_track_is_visible_on_an_unseen_frame_and_none_is_seeded_there():
    """A covered lens: the head still calls points visible on black frames (62 of 63 did on the
    shipped model). Unseen frames show no track, and a track seeded on one is no point at all: it
    is lost at the clip's end and its slot re-seeded."""
    pmap = Preprocessor((32, 32), "resize").pixel_map((64, 64))
    manager = TrackManager(6, (32, 32), track_settings(max_tracks=4, query_mode="grid"))
    image = np.zeros((32, 32, 3), np.float32)
    q, ids = manager.make_queries([0, 1, 2, 3], image, pmap)
    xy = np.repeat(q[:, None, [2, 1]], 4, axis=1)
    unseen = np.array([False, False, True, False])
    sets = manager.update(ids, xy, np.ones((6, 4)), np.full((6, 4), 0.9), [0, 1, 2, 3], [0, 1, 2, 3], pmap,
                          unseen=unseen)
    assert [int(s.visible.sum()) for s in sets] == [4, 4, 0, 4]
    assert np.all(sets[2].confidence == 0) and np.all(sets[3].confidence > 0)
    assert manager.lost == 0  # seen again in the last frame: kept
    # The next clip starts on an unseen frame: its seeds show nothing, and are replaced.
    unseen = np.array([True, True, False, False])
    q2, ids2 = manager.make_queries([4, 5, 6, 7], image, pmap)  # no overlap: 4 new seeds at frame 4
    assert not set(ids2[ids2 >= 0]) & set(ids[ids >= 0])
    xy2 = np.repeat(q2[:, None, [2, 1]], 4, axis=1)
    sets = manager.update(ids2, xy2, np.ones((6, 4)), np.full((6, 4), 0.9), [4, 5, 6, 7], [0, 1, 2, 3], pmap,
                          unseen=unseen)
    assert all(not s.visible.any() for s in sets)
    assert manager.lost == 4 + 4 and not manager.tracks  # the first clip's and the void seeds
    # Without `unseen` the same outputs are visible throughout: the rule is what hides them.
    plain = TrackManager(6, (32, 32), track_settings(max_tracks=4, query_mode="grid"))
    q3, ids3 = plain.make_queries([4, 5, 6, 7], image, pmap)
    sets = plain.update(ids3, np.repeat(q3[:, None, [2, 1]], 4, axis=1), np.ones((6, 4)), np.full((6, 4), 0.9),
                        [4, 5, 6, 7], [0, 1, 2, 3], pmap)
    assert all(s.visible.all() for s in sets)


def test_tracks_followed_on_the_image_are_not_queried_and_count_against_max_tracks():
    pmap = Preprocessor((32, 32), "resize").pixel_map((64, 64))
    image = np.zeros((32, 32, 3), np.float32)
    manager = TrackManager(6, (32, 32), track_settings(max_tracks=4, query_mode="grid"))
    _, ids = manager.make_queries([0, 1, 2, 3], image, pmap)
    assert (ids >= 0).sum() == 4
    for track in manager.tracks.values():
        track.frame_index = 3
    followed = [int(ids[0]), int(ids[1])]
    for tid in followed:
        manager.tracks[tid].on_image = True
    q, ids2 = manager.make_queries([3, 4, 5, 6], image, pmap)
    # The two others are queried again; no seed replaces the followed two, nor lands on them.
    assert sorted(ids2[ids2 >= 0].tolist()) == sorted(set(ids[:4].tolist()) - set(followed))
    assert all(tid in manager.tracks for tid in followed)
    # Once they are back with the model, the next clip queries all four again.
    for tid in followed:
        manager.tracks[tid].on_image = False
    _, ids3 = manager.make_queries([3, 4, 5, 6], image, pmap)
    assert sorted(ids3[ids3 >= 0].tolist()) == sorted(ids[:4].tolist())


def test_feature_and_topic_seeds():
    rng = np.random.default_rng(0)
    image = np.zeros((32, 32, 3), np.float32)
    image[4:28, 4:28] = 1.0  # a bright square: four strong corners
    pmap = Preprocessor((32, 32), "resize").pixel_map((32, 32))
    features = TrackManager(8, (32, 32), track_settings(max_tracks=4, query_mode="features"))
    q, ids = features.make_queries([0, 1], image, pmap)
    corners = q[ids >= 0][:, 1:]
    square = np.array([[4, 4], [4, 27], [27, 4], [27, 27]])
    assert len(corners) == 4
    assert all(np.abs(square - c).max(axis=1).min() <= 2 for c in corners)
    topic = TrackManager(8, (32, 32), track_settings(max_tracks=4, query_mode="topic"))
    _, ids = topic.make_queries([0, 1], image, pmap)
    assert np.all(ids == -1)  # nothing requested yet
    topic.add_topic_queries(np.array([[3.0, 4.0], [20.0, 21.0]]))
    q, ids = topic.make_queries([0, 1], rng.random((32, 32, 3)).astype(np.float32), pmap)
    assert (ids >= 0).sum() == 2 and np.allclose(q[:2, 1:], [[4, 3], [21, 20]])


def constant_motion(t_frames, step):
    """Relative poses T_first_from_t of a camera moving `step` (4x4) per frame."""
    rel = [np.eye(4)]
    for _ in range(t_frames - 1):
        rel.append(rel[-1] @ step)
    rel = np.stack(rel)
    return rel[:, :3, :3], rel[:, :3, 3]


def test_odometry_chains_overlapping_clips_exactly():
    step = np.eye(4)
    step[:3, :3] = euler.euler2mat(0.0, 0.02, 0.0)
    step[:3, 3] = (0.0, 0.0, 0.1)  # 10 cm forward along the optical axis per frame
    chain = OdometryChain(rotation_var_floor=1e-4, translation_var_floor=1e-3)
    rot, trans = constant_motion(4, step)
    logvar = np.full((4, 2), -20.0)  # tiny head variance: the floor applies
    estimates = []
    for start in range(0, 8, 2):  # clips [0..3], [2..5], [4..7], [6..9] with hop 2
        indices = list(range(start, start + 4))
        out_t = [0, 1, 2, 3] if start == 0 else [2, 3]
        estimates += chain.add_clip(indices, [i * 33 * MS for i in indices], rot, trans, logvar, out_t)
    assert len(estimates) == 10 and chain.gaps == 0
    expected = np.eye(4)
    b = default_base_from_camera()
    for est in estimates:
        assert np.allclose(est.odom_from_camera, b @ expected, atol=1e-9)
        expected = expected @ step
    # The camera moves along its optical z, which is the base's x (REP-103).
    assert estimates[1].odom_from_base[0, 3] > 0.09 and abs(estimates[1].odom_from_base[2, 3]) < 1e-9
    # the arc's velocity (the step's SE(3) logarithm), 0.1 m over 0.033 s times (a/2) cot(a/2) for the 0.02 rad pitch
    assert np.isclose(estimates[1].twist[0], 0.1 * 0.01 / np.tan(0.01) / 0.033, rtol=1e-6)
    cov = [np.diag(e.covariance) for e in estimates]
    assert np.all(cov[-1] > cov[1]) and np.isclose(cov[1][0], 1e-3)  # accumulates from the floor


def test_odometry_variance_scales_multiply_the_published_covariance_and_leave_the_poses():
    """pose_rotation_var_scale / pose_translation_var_scale: each clip's variances times the factors
    (before the floors), so every covariance and twist covariance scales; no pose moves."""
    step = transform_from_xyz_quat([0.02, 0.0, 0.1, 0.0, 0.01, 0.0, 1.0])
    rot, trans = constant_motion(8, step)
    logvar = np.tile(np.log([1e-4, 1e-3]), (8, 1))
    runs = {}
    for scales in ((1.0, 1.0), (10.0, 5.0)):
        chain = OdometryChain(rotation_var_floor=0.0, translation_var_floor=0.0, rotation_var_scale=scales[0],
                              translation_var_scale=scales[1])
        runs[scales] = [e for start in (0, 7) for e in chain.add_clip(
            list(range(start, start + 8)), [i * 33 * MS for i in range(start, start + 8)], rot, trans, logvar,
            list(range(8)) if start == 0 else list(range(1, 8)))]
    plain, scaled = runs[(1.0, 1.0)], runs[(10.0, 5.0)]
    for a, b in zip(plain, scaled):
        np.testing.assert_allclose(a.odom_from_base, b.odom_from_base, atol=1e-12)
        np.testing.assert_allclose(a.twist, b.twist, atol=1e-12)
    # the camera's covariance in the base frame: translation block x5, rotation block x10 while no rotation
    # variance is carried yet (the first clip); in the twist (frame 8: the second clip's first step) the
    # rotation block x10, and the linear block x5 but for the step's rotation variance that the logarithm
    # carries into it (over half the step's translation: x10 for that small part)
    factors = [5, 5, 5, 10, 10, 10]
    np.testing.assert_allclose(np.diag(scaled[7].covariance), np.diag(plain[7].covariance) * factors, rtol=1e-9)
    twist_ratio = np.diag(scaled[8].twist_covariance) / np.diag(plain[8].twist_covariance)
    np.testing.assert_allclose(twist_ratio[3:], 10, rtol=1e-9)
    assert np.all((twist_ratio[:3] >= 5) & (twist_ratio[:3] < 5.01)), twist_ratio
    # later the position block also carries the rotation variance of the poses before it (x10)
    ratio = np.diag(scaled[-1].covariance) / np.diag(plain[-1].covariance)
    assert np.all((ratio[:3] > 5) & (ratio[:3] < 10)) and np.allclose(ratio[3:], 10, rtol=1e-9)


def test_odometry_gap_continues_from_newest_pose():
    chain = OdometryChain()
    rot, trans = constant_motion(4, transform_from_xyz_quat([0, 0, 0.1, 0, 0, 0, 1]))
    logvar = np.zeros((4, 2))
    first = chain.add_clip([0, 1, 2, 3], [0, 1, 2, 3], rot, trans, logvar, [0, 1, 2, 3])
    later = chain.add_clip([8, 9, 10, 11], [8, 9, 10, 11], rot, trans, logvar, [0, 1, 2, 3])
    assert chain.gaps == 1
    assert np.allclose(later[0].odom_from_camera, first[-1].odom_from_camera)
    # The first frame after the gap has no measured motion: its twist is unknown (it read zero with
    # the clip's confidence, and an EKF fusing it braked the robot); the next is measured again.
    assert np.allclose(later[0].twist_covariance, np.diag([1e3] * 6)) and not later[0].twist.any()
    assert later[1].twist[0] > 0  # 0.1 m a frame forward (the base's x)


def test_the_twist_is_the_bases_own_for_a_camera_mounted_ahead_of_it():
    """A camera 0.3 m ahead of base_link on a robot turning on the spot at 1 rad/s: the base does
    not move, so its twist is (0, 0, 0, 0, 0, 1). The camera's velocity rotated into the base's axes
    read vy 0.3 m/s, which robot_localization (config/robot_localization_ekf.yaml fuses vx vy vz)
    took for the robot sliding sideways at every turn."""
    mount = default_base_from_camera()
    mount[:3, 3] = (0.3, 0.0, 0.2)  # forward of and above base_link
    dt, rate = 0.1, 1.0
    turn = np.eye(4)
    turn[:3, :3] = euler.euler2mat(0.0, 0.0, rate * dt)  # the base turning about its z
    step = np.linalg.inv(mount) @ turn @ mount  # the same motion seen from the camera
    rot, trans = constant_motion(4, step)
    chain = OdometryChain()
    chain.set_base_from_camera(mount)
    out = chain.add_clip([0, 1, 2, 3], [round(i * dt * 1e9) for i in range(4)], rot, trans, np.zeros((4, 2)),
                         [0, 1, 2, 3])
    for est in out[1:]:
        np.testing.assert_allclose(est.twist, [0, 0, 0, 0, 0, rate], atol=1e-9)
        np.testing.assert_allclose(est.odom_from_base[:3, 3], 0.0, atol=1e-9)  # turning on the spot


def test_odometry_aligns_a_clip_on_the_frames_it_shares_with_the_trajectory():
    """A clip whose head output is off by one rotation for the whole clip (E @ T_first_from_t, a
    40-degree error) still continues the trajectory without a step: it is aligned on its shared
    frames, not hung on its first frame (which put E on the seam)."""
    step = np.eye(4)
    step[:3, :3] = euler.euler2mat(0.0, 0.05, 0.0)
    step[:3, 3] = (0.02, 0.0, 0.1)
    rot, trans = constant_motion(8, step)
    chain = OdometryChain()
    logvar = np.zeros((8, 2))
    first = chain.add_clip(list(range(8)), list(range(8)), rot, trans, logvar, list(range(8)))
    error = np.eye(4)
    error[:3, :3] = euler.euler2mat(0.4, 0.5, 0.3)  # ~40 degrees
    assert np.degrees(np.arccos((np.trace(error[:3, :3]) - 1) / 2)) > 35
    rel = np.stack([np.eye(4)] * 8)
    rel[:, :3, :3], rel[:, :3, 3] = rot, trans
    wrong = error @ rel
    later = chain.add_clip(list(range(4, 12)), list(range(4, 12)), wrong[:, :3, :3], wrong[:, :3, 3], logvar,
                           [4, 5, 6, 7])
    expected = first[-1].odom_from_camera
    for est in later:
        expected = expected @ step
        assert np.allclose(est.odom_from_camera, expected, atol=1e-9)


def test_flush_describes_the_frames_after_the_last_clip_once():
    buf = ClipBuffer(4, 3, max_gap_s=0)
    for i in range(4):
        buf.push(frame(i))
    assert buf.flush() is None  # the clip at frame 3 described all four: nothing after it
    for i in (4, 5):
        buf.push(frame(i))
    assert buf.pending == 2
    clip = buf.flush()
    assert [f.stamp_ns for f in clip.frames[-clip.new_frames:]] == [frame(4).stamp_ns, frame(5).stamp_ns]
    assert len(clip.frames) == 4 and buf.pending == 0 and buf.flush() is None
    # The stream goes on: the next clip comes a hop after the flushed one and describes only its new frames.
    clips = [buf.push(frame(i))[0] for i in (6, 7, 8)]
    assert clips[:2] == [None, None] and clips[2].new_frames == 3


def test_a_sequence_shorter_than_a_clip_is_described_by_the_flush():
    """A camera that stopped after fewer frames than a clip (or a triggered camera's short burst): its frames
    were never described and sat in frames_pending. The flush describes them with the last frame standing in,
    still, for the frames after it (the first stays first, where a new chain starts); the stream then goes on a
    hop after that clip, and a second short flush describes only the frames after the first."""
    buf = ClipBuffer(4, 3, max_gap_s=0)
    assert all(buf.push(frame(i))[0] is None for i in range(2)) and buf.pending == 2
    clip = buf.flush()
    assert [f.stamp_ns // MS for f in clip.frames] == [0, 1, 1, 1] and clip.output_t == [0, 1]
    assert clip.frames[1] is clip.frames[3] and buf.pending == 0 and buf.flush() is None
    buf.push(frame(2))
    again = buf.flush()
    assert [f.stamp_ns // MS for f in again.frames] == [0, 1, 2, 2] and again.output_t == [2]
    assert supersede(clip, again)[0].output_t == [0, 1, 2]  # run late: the newer describes both
    buf = ClipBuffer(4, 3, max_gap_s=0)
    for i in range(2):
        buf.push(frame(i))
    buf.flush()
    clips = [buf.push(frame(i))[0] for i in (2, 3, 4)]  # a hop (3) after the flushed clip
    assert clips[:2] == [None, None] and [f.stamp_ns // MS for f in clips[2].frames] == [1, 2, 3, 4]
    assert clips[2].new_frames == 3


def test_an_invisible_track_has_no_xyz():
    """An occluded track's pixel shows the occluder: back-projected there, it was published 2 m in
    front of the wall point it tracks (a point cloud consumer does not read the visible field)."""
    from fourds_ros.perception.pipeline import PerceptionPipeline
    from fourds_ros.perception.preprocess import default_intrinsics
    from fourds_ros.perception.tracks import TrackSet

    pmap = Preprocessor((128, 128), "center_crop").pixel_map((480, 640))
    depth = np.full((128, 128), 3.0, np.float32)
    depth[40:90, 40:90] = 1.0  # an occluder at 1 m over the tracked wall point at 3 m
    u, v = pmap.to_input(np.array([64.0, 64.0]), np.array([64.0, 64.0]))
    ts = TrackSet(np.array([7, 8], np.uint32), u.astype(np.float32), v.astype(np.float32),
                  np.full((2, 3), np.nan, np.float32), np.array([False, True]), np.array([0.1, 0.9], np.float32))
    xyz = PerceptionPipeline._track_xyz(ts, depth, default_intrinsics((480, 640)), pmap)
    assert np.isnan(xyz[0]).all() and xyz[1, 2] == pytest.approx(1.0)


def test_topic_queries_that_are_not_seeded_are_counted_by_why():
    """track_query_mode topic: a point a client asked to track is seeded or counted on /diagnostics
    (before, a query outside the image, on the robot, on a live track, over max_tracks or over the
    engine's query count vanished without a trace)."""
    pmap = Preprocessor((32, 32), "resize").pixel_map((32, 32))
    image = np.zeros((32, 32, 3), np.float32)
    topic = TrackManager(16, (32, 32), track_settings(max_tracks=4, query_mode="topic"))
    assert set(topic.query_counts().values()) == {0}
    topic.add_topic_queries(np.array([[-5.0, 3.0], [40.0, 2.0], [10.0, 10.0], [10.2, 10.1]]))  # 2 outside, 1 twin
    excluded = np.zeros((32, 32), bool)
    excluded[25:, :] = True  # the robot's bumper along the bottom
    topic.add_topic_queries(np.array([[5.0, 28.0], [3.0, 3.0], [20.0, 3.0], [3.0, 20.0], [20.0, 20.0]]))
    _, ids = topic.make_queries([0, 1], image, pmap, excluded)
    counts = topic.query_counts()
    assert (ids >= 0).sum() == 4
    assert counts["track_queries_refused_outside_model_window"] == 2
    assert counts["track_queries_refused_near_a_live_track"] == 1
    assert counts["track_queries_refused_on_robot"] == 1
    assert counts["track_queries_refused_over_max_tracks"] == 1
    topic.add_topic_queries(np.zeros((20, 2)))  # the engine takes 16
    assert topic.query_counts()["track_queries_refused_over_capacity"] == 4
    assert TrackManager(8, (32, 32), track_settings(max_tracks=4, query_mode="grid")).query_counts() == {}


def _stream(hold, stamps):
    """Each stamp through the hold: -> (items taken, in order; outliers found)."""
    taken, outliers = [], []
    for s in stamps:
        now, outlier = hold.push(s, s)
        taken += now
        if outlier is not None:
            outliers.append(outlier)
    return taken, outliers


def test_stamp_hold_drops_a_frame_stamped_ahead_of_both_neighbours_and_takes_a_real_jump():
    """StampHold: a steady 20 Hz stream passes untouched (nothing held); one frame stamped 0.8 s or 3 s ahead
    is held and, when the next frame continues the stream, handed back as an outlier; a real jump (a pause:
    the next frame continues after it) is taken with the next frame, in order; release() takes a held frame
    when no next frame comes."""
    from fourds_ros.perception.clip_buffer import StampHold

    period, start = 50_000_000, 1_000_000_000_000
    steady = [start + i * period for i in range(40)]
    assert _stream(StampHold(), steady) == (steady, [])
    for ahead_s in (0.8, 3.0):
        stamps = list(steady)
        stamps[8] += int(ahead_s * 1e9)
        taken, outliers = _stream(StampHold(), stamps)
        assert outliers == [stamps[8]] and taken == steady[:8] + steady[9:]
    paused = steady[:10] + [s + 5 * 10**9 for s in steady[10:]]
    hold = StampHold()
    taken, outliers = _stream(hold, paused[:11])
    assert taken == paused[:10] and not outliers and hold.held is not None  # waits for the next frame's word
    taken, outliers = _stream(hold, paused[11:])
    assert taken == paused[10:] and not outliers and hold.held is None
    hold = StampHold()
    _stream(hold, paused[:11])
    assert hold.release() == [paused[10]] and hold.release() == [] and hold.held is None
    looped = StampHold()  # a bag loop: the new recording's stamps are watched from its start
    loop = [s - 10**9 + 7 for s in steady[:20]]
    taken, outliers = _stream(looped, steady[:20] + loop[:10] + [loop[10] + 3 * 10**9] + loop[11:])
    assert outliers == [loop[10] + 3 * 10**9] and taken == steady[:20] + loop[:10] + loop[11:]
    loop_after_jump = StampHold()  # a frame held when the recording loops: taken, unjudged, before the new one
    taken, outliers = _stream(loop_after_jump, steady[:10] + [steady[10] + 5 * 10**9] + loop[:3])
    assert not outliers and taken == steady[:10] + [steady[10] + 5 * 10**9] + loop[:3]
    late = StampHold()  # a frame late for both: taken as it comes (the buffer drops it), the held one judged next
    taken, outliers = _stream(late, steady[:8] + [steady[8] + 10**9, steady[3], steady[8]])
    assert outliers == [steady[8] + 10**9] and taken == steady[:8] + [steady[3], steady[8]]


def _starts(hold, stamps):
    """Each stamp through the hold: -> (items taken, in order; outliers; the items that started a recording)."""
    taken, outliers, starts = [], [], []
    for s in stamps:
        now, outlier = hold.push(s, s)
        taken += now
        outliers += [] if outlier is None else [outlier]
        starts += [] if hold.recording_start is None else [hold.recording_start]
    return taken, outliers, starts


def test_stamp_hold_takes_a_short_bag_on_loop_as_new_recordings():
    """A bag of 1 s or less on `ros2 bag play --loop` steps back by under 1 s (OUT_OF_ORDER_NS): every loop after
    the first was dropped as late. Frames going on forward from the step back (BACK_CONFIRM_FRAMES in a row) are
    a new recording, started at the first of them; none is lost, and the hold is empty after each loop."""
    from fourds_ros.perception.clip_buffer import BACK_CONFIRM_FRAMES, StampHold

    bag = [10**12 + i * 50 * MS for i in range(16)]  # 0.75 s at 20 Hz
    hold = StampHold()
    taken, outliers, starts = _starts(hold, bag)
    assert taken == bag and not outliers and not starts
    for _ in range(2):  # loops 2 and 3: found at their BACK_CONFIRM_FRAMES-th frame, then taken at once
        taken, outliers, starts = _starts(hold, bag[:BACK_CONFIRM_FRAMES - 1])
        assert taken == [] and hold.pending == BACK_CONFIRM_FRAMES - 1 and not starts
        taken, outliers, starts = _starts(hold, bag[BACK_CONFIRM_FRAMES - 1:])
        assert taken == bag and not outliers and starts == [bag[0]] and hold.pending == 0
    clock_back = StampHold()  # a camera clock stepped back by 0.6 s and going on: a new recording too
    stepped = bag[:10] + [s - 600 * MS for s in bag[10:]]
    assert _starts(clock_back, stepped) == (stepped, [], [stepped[10]])
    with pytest.raises(ValueError, match="back_confirm"):
        StampHold(back_confirm=1)


@pytest.mark.parametrize("late", [[5], [4, 5], [5, 4], [5, 4, 4], [0], [9]],
                         ids=["one", "two_in_order", "two_swapped", "repeated", "first", "repeated_newest"])
def test_stamp_hold_keeps_late_frames_late(late):
    """Frames behind the newest one that the stream then leaves behind (the next frame is newer than the newest)
    are late frames, handed on in their place for the buffer to drop and count: no new recording, whether one
    frame, two, out of order among themselves, a repeated stamp, or one as old as the recording's first."""
    from fourds_ros.perception.clip_buffer import StampHold

    steady = [10**12 + i * 50 * MS for i in range(20)]
    stream = steady[:10] + [steady[i] for i in late] + steady[10:]
    assert _starts(StampHold(), stream) == (stream, [], [])
    hold = StampHold()  # the input stops while they wait: release() takes them (late, the buffer drops them)
    taken, outliers, starts = _starts(hold, stream[:10 + len(late)])
    waiting = hold.pending
    assert waiting >= 1 and not outliers and not starts
    assert taken + hold.release() == stream[:10 + len(late)] and hold.pending == 0
    assert waiting == 10 + len(late) - len(taken)  # held: the late frames not yet left behind


def test_clip_buffer_told_of_a_new_recording_restarts_at_a_small_step_back():
    """ClipBuffer.new_recording: the next frame not newer than the last restarts the sequence (time_backwards);
    untold, the same 0.5 s step back is a late frame; told, a newer next frame restarts nothing."""
    def frame(ms):
        return Frame(np.zeros((8, 8, 3), np.uint8), 10**12 + ms * MS, "cam")

    buf = ClipBuffer(4, 3)
    for ms in range(0, 400, 50):
        buf.push(frame(ms))
    assert buf.push(frame(-150 + 400)) == (None, OUT_OF_ORDER)
    buf.new_recording()
    assert buf.push(frame(-150 + 400))[1] == "time_backwards" and buf.resets["time_backwards"] == 1
    assert buf.push(frame(300)) == (None, None)
    buf.new_recording()
    assert buf.push(frame(350))[1] is None and buf.push(frame(200)) == (None, OUT_OF_ORDER)  # told once only


# Behaviours no test caught breaking (session 63's mutation review: each test fails on its mutant).


def test_base_from_camera_parameter_is_x_y_z_qx_qy_qz_qw():
    """The shipped mount's quaternion reordered is its own negative (the same rotation): only a mount without
    that symmetry shows the order the parameter is documented in."""
    import transforms3d.quaternions as tq

    from fourds_ros.perception.odometry import quat_xyzw

    q_wxyz = np.array([0.9, 0.1, -0.3, 0.2]) / np.linalg.norm([0.9, 0.1, -0.3, 0.2])
    t = transform_from_xyz_quat([0.3, 0.0, 0.4, *q_wxyz[1:], q_wxyz[0]])
    assert np.allclose(t[:3, :3], tq.quat2mat(q_wxyz)) and np.allclose(t[:3, 3], [0.3, 0, 0.4])
    assert np.allclose(quat_xyzw(t[:3, :3]), [*q_wxyz[1:], q_wxyz[0]])


def test_a_slow_steady_camera_is_never_held():
    """A stamp counts as ahead of its neighbours past max(250 ms, 8 median steps): a steady 2 Hz camera's
    frames are each taken at once (with 250 ms alone, every other frame waited half a second)."""
    from fourds_ros.perception.clip_buffer import StampHold

    hold, stamps = StampHold(), [i * 500 * MS for i in range(10)]
    assert [hold.push(s, s) for s in stamps] == [([s], None) for s in stamps]


def test_a_new_camera_size_with_the_same_working_image_resets():
    """A 640x360 camera switched to 1280x720 (same frame_id and field of view) is divided to the same working
    image and K: only the camera's size tells them apart, and a clip mixing them maps pixels back 2x off."""
    from fourds_ros.perception.work_image import WorkImage

    k360 = np.array([[300.0, 0, 319.5], [0, 300.0, 179.5], [0, 0, 1]])
    work = WorkImage.for_size((720, 1280), 640 * 360)
    buf, img = ClipBuffer(4, 3), np.zeros((360, 640, 3), np.uint8)
    for i in range(3):
        buf.push(Frame(img, i * 33 * MS, "cam", k360))
    k720 = np.array([[600.0, 0, 639.5], [0, 600.0, 359.5], [0, 0, 1]])
    _, reason = buf.push(Frame(img, 99 * MS, "cam", work.k_to_work(k720), camera_hw=(720, 1280)))
    assert reason == "resolution"


def test_shared_frames_anchor_the_clip_on_their_mean():
    """With a hop below T - 1 a clip shares several frames with the chain: the anchor is their proposals' mean."""
    chain = OdometryChain(base_from_camera=np.eye(4))
    rot, lv = np.repeat(np.eye(3)[None], 4, 0), np.full((4, 2), -10.0)
    chain.add_clip([0, 1, 2, 3], [i * 100 * MS for i in range(4)], rot,
                   np.array([[0, 0, 0.1 * i] for i in range(4)]), lv, [0, 1, 2, 3])
    out = chain.add_clip([2, 3, 4, 5], [i * 100 * MS for i in (2, 3, 4, 5)], rot,
                         np.array([[0, 0, 0.0], [0, 0, 0.2], [0, 0, 0.3], [0, 0, 0.4]]), lv, [2, 3])
    assert np.isclose(out[0].odom_from_camera[2, 3], 0.45)  # anchors 0.2 and 0.1 averaged: 0.15 + 0.3


def test_one_frame_stamped_ahead_is_not_a_new_recording():
    """A 30 Hz stream with one frame stamped 200 ms ahead (under HOLD_MIN_STEP_NS, so taken): the frames after
    it are behind it but newer than the frames before it. Late frames (as before), not a bag loop: the backward
    hold first took them for one and restarted the buffer and the odometry at identity (session 67's regression
    review). A 0.5 s bag on --loop still starts a new recording at its loop."""
    from fourds_ros.perception.clip_buffer import StampHold

    period = 33_333_333
    stamps = [k * period for k in range(20)]
    stamps[10] += 200_000_000
    hold, starts = StampHold(), []
    for i, s in enumerate(stamps):
        hold.push(s, i)
        starts += [] if hold.recording_start is None else [hold.recording_start]
    assert starts == []
    loop, starts = StampHold(), []
    for i, s in enumerate([k * period for k in range(15)] * 2):
        loop.push(s, i)
        starts += [] if loop.recording_start is None else [loop.recording_start]
    assert starts == [15]
