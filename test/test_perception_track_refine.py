"""Template refinement of track positions, on a real HoloLens frame (MIT sample shipped in the repo)
shifted by known sub-pixel amounts."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from fourds_ros.engine import create_engine
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.preprocess import Preprocessor
from fourds_ros.perception.track_refine import (TemplateRefiner, forward_backward_agrees, gray, gray8, lk_step,
                                                make_refiner, neighbour_steps)
from fourds_ros.perception.settings import PerceptionSettings, TrackSettings
from fourds_ros.perception.tracks import VIEW_MARGIN, ClipImages, TrackManager, in_window, scene_motion

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "hololens_000" / "images"


@pytest.fixture(scope="module")
def frame():
    path = sorted(SAMPLE.glob("*"))[0]
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def track_settings(**kw) -> TrackSettings:
    """TrackSettings with refinement, the image fallback and the jump rule off unless asked for."""
    return TrackSettings(**{"refinement": "none", "image_fallback": False, "max_deviation_px": 0.0, **kw})


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The image content moved by (dx, dy) pixels (bilinear)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def textured_points(image: np.ndarray, n: int, margin: int) -> np.ndarray:
    """(n, 2) (u, v) Shi-Tomasi corners at least `margin` px from the border."""
    corners = cv2.goodFeaturesToTrack(image.astype(np.uint8), 200, 0.01, 20).reshape(-1, 2)
    h, w = image.shape
    inside = (corners[:, 0] > margin) & (corners[:, 0] < w - margin) & \
        (corners[:, 1] > margin) & (corners[:, 1] < h - margin)
    return corners[inside][:n]


def test_refine_recovers_a_subpixel_shift_from_a_coarse_guess(frame):
    refiner = TemplateRefiner(half_size=10, search_radius=12, min_score=0.6)
    first = gray(frame)
    dx, dy = 3.3, -2.6
    moved = gray(shifted(frame, dx, dy))
    points = textured_points(first, 10, 40)
    assert len(points) >= 5
    errors_before, errors_after = [], []
    for u, v in points:
        template = refiner.template(first, u, v)
        assert template is not None and template.shape == (21, 21)
        guess = (u + dx + 5.7, v + dy - 4.45)  # the head's coarse prediction, 7.3 px off; the
        # fractions make the match fall between pixels of the window sampled around the guess
        ru, rv, score = refiner.refine(moved, template, *guess)
        assert score > 0.9
        errors_before.append(np.hypot(guess[0] - u - dx, guess[1] - v - dy))
        errors_after.append(np.hypot(ru - u - dx, rv - v - dy))
    assert np.median(errors_after) < 0.25, errors_after
    assert max(errors_after) < 0.6


def test_refine_keeps_the_guess_when_nothing_matches(frame):
    refiner = TemplateRefiner(min_score=0.6)
    first = gray(frame)
    u, v = textured_points(first, 1, 40)[0]
    template = refiner.template(first, u, v)
    noise = np.random.default_rng(0).uniform(0, 255, first.shape).astype(np.float32)
    ru, rv, score = refiner.refine(noise, template, u + 2.0, v + 1.0)
    assert (ru, rv) == (u + 2.0, v + 1.0) and score < 0.6
    # Off the image (the search window would leave it) or a NaN guess: unchanged, no score.
    ru, rv, score = refiner.refine(first, template, 3.0, 3.0)
    assert (ru, rv) == (3.0, 3.0) and np.isnan(score)
    assert np.isnan(refiner.refine(first, template, float("nan"), v)[2])


def test_no_template_at_the_border_or_on_a_flat_patch(frame):
    refiner = TemplateRefiner(half_size=10)
    first = gray(frame)
    assert refiner.template(first, 5.0, 100.0) is None
    assert refiner.template(np.full((100, 100), 128, np.float32), 50.0, 50.0) is None
    with pytest.raises(ValueError):
        TemplateRefiner(half_size=0)


def shifted_clip(frame: np.ndarray, refinement: str):
    """Four frames, each the first moved by +2.4 px in x per frame, and a TrackManager (8 tracks,
    `refinement`) seeded on corners of the first: -> pmap, manager, frames, queries, slot_ids, used."""
    h, w = frame.shape[:2]
    pmap = Preprocessor((128, 128), "center_crop").pixel_map((h, w))
    manager = TrackManager(8, (128, 128), track_settings(max_tracks=8, query_mode="features", refinement=refinement))
    frames = [shifted(frame, 2.4 * t, 0.0) for t in range(4)]
    model_first = cv2.resize(frame[:, (w - h) // 2:(w + h) // 2], (128, 128)).astype(np.float32) / 255
    queries, slot_ids = manager.make_queries([0, 1, 2, 3], model_first, pmap)
    return pmap, manager, frames, queries, slot_ids, np.flatnonzero(slot_ids >= 0)


def test_track_manager_refines_after_the_query_frame_where_visible(frame):
    """Four frames, each the first moved by +2.4 px in x per frame; the head's positions are 4 px
    off. Refinement brings them to the truth, except where the head says the point is not visible
    and at the query frame itself."""
    h = frame.shape[0]
    pmap, manager, frames, queries, slot_ids, used = shifted_clip(frame, "template")
    assert used.size >= 4
    qx, qy = queries[:, 2], queries[:, 1]
    qu, qv = pmap.to_input(qx, qy)
    true_u = qu[:, None] + 2.4 * np.arange(4)[None]  # (Q, T) input pixels
    true_x, true_y = pmap.to_model(true_u, np.repeat(qv[:, None], 4, axis=1))
    off_x, _ = pmap.to_model(true_u + 4.0, np.repeat(qv[:, None], 4, axis=1))
    head_xy = np.stack([off_x, true_y], axis=-1).astype(np.float32)  # 4 input px off in x
    head_xy[:, 0] = np.stack([qx, qy], axis=-1)  # the head returns the query at its frame
    visibility = np.ones((8, 4), np.float32)
    visibility[used[0], 2] = 0.0
    refined = manager.refine(slot_ids, head_xy, visibility, ClipImages(frames), [0, 1, 2, 3], pmap)
    reach = 10 + 12 + 6  # template + search + the head's offset and motion, input px
    templated = [q for q in used if manager.tracks[int(slot_ids[q])].template is not None
                 and reach < qv[q] < h - reach]
    assert len(templated) >= 4
    error = np.hypot(*(np.stack(pmap.to_input(refined[..., 0], refined[..., 1]), -1)
                       - np.stack([true_u, np.repeat(qv[:, None], 4, axis=1)], -1)).transpose(2, 0, 1))
    for q in templated:
        for t in (1, 2, 3):
            if (q, t) == (used[0], 2):  # not visible: the head's position stands
                assert np.allclose(refined[q, t], head_xy[q, t])
            else:
                assert error[q, t] < 0.5, (q, t, error[q, t])
        assert np.allclose(refined[q, 0], head_xy[q, 0])  # the query frame is never moved
    # Without a refiner the head's positions pass through unchanged.
    plain = TrackManager(8, (128, 128), track_settings(max_tracks=8))
    assert plain.refine(slot_ids, head_xy, visibility, ClipImages([]), [0, 1, 2, 3], pmap) is head_xy


def test_lk_step_follows_a_shift_and_says_where_it_failed(frame):
    first = gray(frame)
    moved = gray(shifted(frame, 3.3, -2.6))
    points = textured_points(first, 10, 40)
    end, ok = lk_step(first, moved, points)
    assert ok.all()
    error = np.hypot(*(end - points - (3.3, -2.6)).T)
    assert np.median(error) < 0.05 and error.max() < 0.4, error
    # No finite start, a patch that is noise in the next frame, or an end off the image: not ok,
    # and the start is kept.
    noise = np.random.default_rng(0).uniform(0, 255, first.shape).astype(np.float32)
    starts = np.array([[np.nan, 50.0], points[0], [1.0, 200.0]])
    end, ok = lk_step(first, np.concatenate([noise[:, :320], gray(shifted(frame, -6.0, 0.0))[:, 320:]], 1), starts)
    assert not ok[0] and np.isnan(end[0, 0])
    if points[0][0] < 300:  # the second start lies on the noise half
        assert not ok[1] and np.array_equal(end[1], points[0])
    assert not ok[2] and np.array_equal(end[2], starts[2])


@pytest.mark.parametrize("exposure", [0.5, 0.8, 1.15])
def test_lk_step_follows_a_shift_through_a_change_of_exposure(frame, exposure):
    """The light or the exposure changes between two frames while the view moves by (2.2, -1.4) px.
    LK assumes that a point keeps its brightness; with match_exposure the next frame first takes
    the previous one's grey levels (one gain and offset), and the step is found. Without it the
    steps go astray (the 0.5 case: most are lost or land tens of pixels off)."""
    rng = np.random.default_rng(0)
    first = gray(frame)
    changed = np.clip(shifted(frame, 2.2, -1.4).astype(float) * exposure + rng.normal(0, 2, frame.shape), 0, 255)
    moved = gray(changed.round().astype(np.uint8))
    points = textured_points(first, 20, 40)
    end, ok = lk_step(first, moved, points, match_exposure=True)
    error = np.hypot(*(end - points - (2.2, -1.4)).T)
    assert ok.mean() >= 0.9 and np.median(error[ok]) < 0.2, (ok.mean(), error)
    if exposure == 0.5:
        end, ok = lk_step(first, moved, points)
        error = np.hypot(*(end - points - (2.2, -1.4)).T)
        assert ok.mean() < 0.9 or np.median(error[ok]) > 1.0, (ok.mean(), error)


@pytest.mark.parametrize("exposure", [1.0, 0.6])
def test_follow_gives_the_same_pixels_on_uint8_and_float32_grays(frame, exposure):
    """A clip's grays are uint8 (ClipImages.gray8: no conversion in every LK step); follow must place every
    track exactly where it did on float32 grays: LK, the exposure match (0.6: the light falls between the
    frames), the template confirmation where LK fails (a noise frame before) and the neighbours' step."""
    moved8 = np.clip(shifted(frame, 2.0, 1.0).astype(float) * exposure, 0, 255).round().astype(np.uint8)
    first8, moved8 = gray8(frame), gray8(moved8)
    points = textured_points(first8.astype(np.float32), 12, 60)
    head = points + (6.0, 1.0)
    refiner = make_refiner("flow")
    templates = [refiner.template(gray(frame), u, v) for u, v in points]
    assert sum(t is not None for t in templates) >= 6
    noise8 = np.random.default_rng(1).uniform(0, 255, first8.shape).astype(np.uint8)
    noise8[:, 320:] = first8[:, 320:]  # LK fails on the left half only: the rest fall back
    for previous8 in (first8, noise8):
        as_uint8 = refiner.follow(previous8, moved8, points, head, np.ones(len(points), bool), templates)
        as_float = refiner.follow(previous8.astype(np.float32), moved8.astype(np.float32), points, head,
                                  np.ones(len(points), bool), templates)
        np.testing.assert_array_equal(as_uint8, as_float)
    lk8, _ = lk_step(first8, moved8, points, match_exposure=True)
    np.testing.assert_array_equal(lk8, lk_step(first8.astype(np.float32), moved8.astype(np.float32), points,
                                               match_exposure=True)[0])


def test_follow_takes_lk_where_it_holds_and_the_template_near_the_head_where_it_fails(frame):
    """TemplateRefiner.follow, one frame moved by (2.0, 1.0) px, the head 4 px off. flow: every
    point LK follows from its previous position is where LK puts it, with or without a template
    (here none: template refinement then leaves the head's offset). Where LK fails (the previous
    frame is noise), flow refines the head against the template, exactly as template does."""
    first = gray(frame)
    moved = gray(shifted(frame, 2.0, 1.0))
    points = textured_points(first, 12, 60)
    truth, head = points + (2.0, 1.0), points + (6.0, 1.0)
    visible = np.ones(len(points), bool)
    no_templates = [None] * len(points)
    flow, template = make_refiner("flow"), make_refiner("template")
    out = flow.follow(first, moved, points, head, visible, no_templates)
    lk, ok = lk_step(first, moved, points)
    assert ok.all() and np.array_equal(out, lk)
    assert np.median(np.hypot(*(out - truth).T)) < 0.1
    assert np.array_equal(template.follow(None, moved, points, head, visible, no_templates), head)
    templates = [flow.template(first, u, v) for u, v in points]
    matched = [j for j, tpl in enumerate(templates) if tpl is not None]
    assert len(matched) >= 6
    noise = np.random.default_rng(1).uniform(0, 255, first.shape).astype(np.float32)
    out = flow.follow(noise, moved, points, head, visible, templates)
    np.testing.assert_array_equal(out, template.follow(None, moved, points, head, visible, templates))
    assert np.median(np.hypot(*(out[matched] - truth[matched]).T)) < 0.3
    # A point the head calls invisible, with LK failing, keeps the head's position.
    hidden = ~visible
    assert np.array_equal(flow.follow(noise, moved, points, head, hidden, templates), head)


def test_the_forward_backward_check_refuses_a_step_that_does_not_lead_back(frame):
    """LK's true steps of a (3.3, -2.6) px shift lead back to where they started; a step that
    landed 12 px off (on other content) does not; rows LK did not follow never agree."""
    first = gray(frame)
    moved = gray(shifted(frame, 3.3, -2.6))
    points = textured_points(first, 10, 40)
    end, ok = lk_step(first, moved, points)
    assert ok.all() and forward_backward_agrees(first, moved, points, end, ok, 1.0).all()
    assert not forward_backward_agrees(first, moved, points, end + (12.0, 0.0), ok, 1.0).any()
    assert not forward_backward_agrees(first, moved, points, end, np.zeros(len(points), bool), 1.0).any()


def test_flow_with_the_lk_check_treats_a_refused_step_as_lk_lost(frame, monkeypatch):
    """track_lk_check_px: where every step leads back the tracks are LK's, as without the check;
    a step the check refuses goes the way of an LK failure (here: the neighbours' step), and is
    counted with them."""
    import fourds_ros.perception.track_refine as track_refine

    first = gray(frame)
    moved = gray(shifted(frame, 2.0, 1.0))
    points = textured_points(first, 12, 60)
    head, visible = points + (6.0, 1.0), np.ones(len(points), bool)
    checked, plain = make_refiner("flow", lk_check_px=1.0), make_refiner("flow")
    assert checked.lk_check_px == 1.0 and plain.lk_check_px == 0.0
    no_templates = [None] * len(points)
    out = checked.follow(first, moved, points, head, visible, no_templates)
    np.testing.assert_array_equal(out, plain.follow(first, moved, points, head, visible, no_templates))
    assert checked.counts["track_steps_lk_lost"] == 0
    refuse_first = lambda previous, image, uv, moved, tracked, max_px: tracked & (np.arange(len(tracked)) > 0)  # noqa: E731
    monkeypatch.setattr(track_refine, "forward_backward_agrees", refuse_first)
    out = checked.follow(first, moved, points, head, visible, no_templates)
    assert checked.counts["track_steps_lk_lost"] == 1
    assert np.hypot(*(out[0] - (points[0] + (2.0, 1.0)))) < 0.3  # the neighbours' step, not the head's


def test_flow_moves_an_unconfirmed_lost_track_with_its_neighbours(frame):
    """LK fails on a point hidden behind noise, and its template does not match there either: the
    head's (4 px off) position is not taken; the point moves by its neighbours' LK step instead."""
    first = gray(frame)
    points = textured_points(first, 12, 60)
    moved = gray(shifted(frame, 2.0, 1.0))
    u, v = points[0].round().astype(int)
    moved[v - 20:v + 21, u - 20:u + 21] = np.random.default_rng(2).uniform(0, 255, (41, 41))
    hidden = np.hypot(*(points - points[0]).T) < 30  # the points under the noise
    _, ok = lk_step(first, moved, points)
    assert not ok[0] and ok[~hidden].all()
    flow = make_refiner("flow")
    templates = [flow.template(first, u, v) for u, v in points]
    head = points + (6.0, 1.0)
    out = flow.follow(first, moved, points, head, np.ones(len(points), bool), templates)
    assert np.hypot(*(out[0] - (points[0] + (2.0, 1.0)))) < 0.3  # the neighbours' step, not the head
    assert np.median(np.hypot(*(out[~hidden] - (points[~hidden] + (2.0, 1.0))).T)) < 0.1


def test_neighbour_steps_are_local_medians():
    """Tracks on the left move right and those on the right move left (a turning camera's or a
    limb's motion is not one shift): each point takes the median step of its own nearest ones."""
    rng = np.random.default_rng(0)
    prev = np.c_[np.r_[rng.uniform(0, 100, 20), rng.uniform(300, 400, 20)], rng.uniform(0, 100, 40)]
    moved = prev + np.where(prev[:, :1] < 200, [3.0, 0.0], [-3.0, 0.0])
    moved[0] += 50.0  # one wild step: the median ignores it
    tracked = np.ones(40, bool)
    tracked[5] = False  # not followed: not a neighbour
    moved[5] = np.nan
    steps = neighbour_steps(np.array([[50.0, 50.0], [350.0, 50.0], [np.nan, 1.0]]), prev, moved, tracked, 8)
    np.testing.assert_allclose(steps[:2], [[3.0, 0.0], [-3.0, 0.0]])
    assert np.isnan(steps[2]).all()
    with pytest.raises(ValueError):
        TemplateRefiner(neighbours=0)


def test_track_manager_with_flow_follows_the_clip_frame_to_frame(frame):
    """The TrackManager's flow path: from each query point, LK through the clip, so a head that is
    4 px off everywhere (and calls one point invisible) still ends within a fraction of a pixel."""
    pmap, manager, frames, queries, slot_ids, used = shifted_clip(frame, "flow")
    qx, qy = queries[:, 2], queries[:, 1]
    qu, qv = pmap.to_input(qx, qy)
    true_u = qu[:, None] + 2.4 * np.arange(4)[None]
    off_x, true_y = pmap.to_model(true_u + 4.0, np.repeat(qv[:, None], 4, axis=1))
    head_xy = np.stack([off_x, true_y], axis=-1).astype(np.float32)
    visibility = np.ones((8, 4), np.float32)
    visibility[used[0], 2] = 0.0  # LK does not ask the head
    refined = manager.refine(slot_ids, head_xy, visibility, ClipImages(frames), [0, 1, 2, 3], pmap)
    ru, rv = pmap.to_input(refined[used, 1:, 0], refined[used, 1:, 1])
    error = np.hypot(ru - true_u[used, 1:], rv - qv[used, None])
    assert np.median(error) < 0.2 and error.max() < 1.0, error
    assert np.allclose(refined[used, 0], head_xy[used, 0])  # the query frame is never moved


def test_pipeline_rejects_an_unknown_refinement(tiny_model_dir):
    engine = create_engine(tiny_model_dir, backend="torch", num_queries=4)
    with pytest.raises(ValueError, match="track_refinement"):
        PerceptionPipeline(engine, PerceptionSettings.from_params(track_refinement="lk"))


def test_scene_motion_is_the_similarity_of_the_tracks_ignoring_outliers():
    rng = np.random.default_rng(0)
    before = rng.uniform(0, 500, (20, 2))
    angle, scale, shift = np.radians(3.0), 1.02, np.array([7.0, -4.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    after = before @ rotation.T + shift
    after[:4] += rng.uniform(30, 60, (4, 2))  # four tracks that jumped
    motion = scene_motion(before, after)
    assert np.allclose(motion[:, :2], rotation, atol=1e-3) and np.allclose(motion[:, 2], shift, atol=0.5)
    assert scene_motion(before[:3], after[:3]) is None  # too few tracks to tell the scene's motion


def _edge_and_middle_seeds(frame):
    """Textured points of the sample: one near the crop's right edge (it leaves the model's view as the clip
    pans) and up to 12 in the middle; with the frame's pixel map."""
    h, w = frame.shape[:2]
    pmap = Preprocessor((128, 128), "center_crop").pixel_map((h, w))
    points = textured_points(gray(frame), 100, 30)
    rows = (points[:, 1] > 40) & (points[:, 1] < h - 40)
    edge = points[rows & (points[:, 0] > 360) & (points[:, 0] < 400)][:1]
    middle = points[rows & (points[:, 0] > 130) & (points[:, 0] < 300)][:12]
    return pmap, edge, middle


def panning_clip(frame, pmap, manager, seeds_uv, first, step, t_len=8, unseen=None):
    """The camera pans: frame t is the sample moved by step * (first + t) px in x. The head is
    faked (what cannot run here without a model): it returns every query's true position while
    the point is at least VIEW_MARGIN inside the model window; beyond, it latches onto the
    window's edge and still calls the point visible, as the real head can. unseen: (T,) bool,
    frames that come black (the head calls nothing visible there). -> (sets, slot_ids,
    true_u (Q, T), true_v (Q, T))."""
    unseen = np.zeros(t_len, bool) if unseen is None else np.asarray(unseen, bool)
    images = ClipImages([np.zeros_like(frame) if unseen[t] else shifted(frame, step * (first + t), 0.0)
                         for t in range(t_len)])
    indices = list(range(first, first + t_len))
    if seeds_uv is not None:
        manager.add_topic_queries(seeds_uv)
    queries, slot_ids = manager.make_queries(indices, np.zeros((128, 128, 3), np.float32), pmap)
    qu, qv = pmap.to_input(queries[:, 2], queries[:, 1])
    t = np.arange(t_len)[None]
    true_u = qu[:, None] + step * (t - queries[:, :1])  # from each query's frame on
    true_v = np.repeat(qv[:, None], t_len, axis=1)
    head_xy = np.stack(pmap.to_model(true_u, true_v), axis=-1).astype(np.float32)
    head_xy[..., 0] = np.minimum(head_xy[..., 0], 127.0 - VIEW_MARGIN)
    visibility = np.ones(head_xy.shape[:2], np.float32)
    visibility[:, unseen] = 0.0
    xy = manager.refine(slot_ids, head_xy, visibility, images, indices, pmap)
    sets = manager.update(slot_ids, xy, visibility, np.full_like(visibility, 0.9), indices,
                          list(range(1, t_len)), pmap, images, unseen=unseen)
    return sets, slot_ids, true_u, true_v


@pytest.mark.parametrize("refinement", ["template", "flow"])
def test_one_dark_frame_mid_clip_leaves_the_tracks_with_the_model(frame, refinement):
    """A frame that comes black in the middle of a clip (a flicker, a dropped exposure) while the
    camera pans 14 px a frame: the model sees the frames after it, so its tracks stay its own,
    visible again on their true positions, and queried by the next clip. Before, every track was
    handed to the image there: followed without the scene's motion, most were lost, and those
    left on the image took the next clip's query slots."""
    h, w = frame.shape[:2]
    pmap = Preprocessor((128, 128), "center_crop").pixel_map((h, w))
    points = textured_points(gray(frame), 100, 30)
    middle = points[(points[:, 1] > 40) & (points[:, 1] < h - 40) & (points[:, 0] > 130) & (points[:, 0] < 300)][:12]
    assert len(middle) >= 8
    manager = TrackManager(16, (128, 128), track_settings(max_tracks=16, query_mode="topic", refinement=refinement,
                                                          image_fallback=True))
    unseen = np.arange(8) == 3
    sets, slot_ids, true_u, true_v = panning_clip(frame, pmap, manager, middle, 0, 14.0, unseen=unseen)
    assert not sets[2].visible.any()  # frame 3: nothing is seen on a black frame
    for t, ts in enumerate(sets[3:], 4):
        inside = in_window(np.stack(pmap.to_model(true_u[:, t], true_v[:, t]), -1), (128, 128), VIEW_MARGIN)
        rows = np.flatnonzero(inside[: len(ts.ids)])
        assert ts.visible[rows].all(), t
        assert np.hypot(ts.u[rows] - true_u[rows, t], ts.v[rows] - true_v[rows, t]).max() < 0.5, t
    assert not any(track.on_image for track in manager.tracks.values())
    _, next_slots, _, _ = panning_clip(frame, pmap, manager, None, 7, 14.0)
    assert set(next_slots[next_slots >= 0]) == set(manager.tracks)  # every live track queried again


def test_a_track_that_leaves_the_models_view_is_followed_on_the_image_and_dropped_off_it(frame):
    """A 540x360 frame; the model sees its centre 360x360. The camera pans so that the scene
    moves 14 px right per frame, further than the template search (12 px) reaches without the
    scene's motion: a point near the crop's right edge leaves the model's view but not the
    image. With the fallback it stays published, visible, on its true position, and is not
    queried; without, the head's latched position is published."""
    w = frame.shape[1]
    pmap, edge, middle = _edge_and_middle_seeds(frame)
    assert len(edge) == 1 and len(middle) >= 8
    seeds = np.concatenate([edge, middle])
    results = {}
    for fallback in (True, False):
        manager = TrackManager(16, (128, 128), track_settings(max_tracks=16, query_mode="topic", refinement="template", image_fallback=fallback))
        sets, slot_ids, true_u, true_v = panning_clip(frame, pmap, manager, seeds, 0, 14.0)
        results[fallback] = manager, sets, slot_ids, true_u, true_v
    manager, sets, slot_ids, true_u, true_v = results[True]
    edge_id = int(slot_ids[0])
    exits = int(np.argmin(in_window(np.stack(pmap.to_model(true_u[0], true_v[0]), -1), (128, 128), VIEW_MARGIN)))
    assert 1 < exits < 7  # the point leaves the model's view mid-clip (and stays in the image)
    for t, ts in enumerate(sets, 1):
        row = list(ts.ids).index(edge_id)
        assert ts.visible[row], t
        assert np.hypot(ts.u[row] - true_u[0, t], ts.v[row] - true_v[0, t]) < 0.5, t
    assert manager.tracks[edge_id].on_image
    off_manager, off_sets = results[False][:2]
    assert abs(off_sets[-1].u[0] - true_u[0, -1]) > 10  # where the head latched
    # Next clip: the followed track is not queried, but published.
    sets, slot_ids, true_u, true_v = panning_clip(frame, pmap, manager, None, 7, 14.0)
    assert edge_id not in slot_ids
    u_edge = seeds[0, 0] + 14.0 * np.arange(8, 15)
    followed = 0
    for t, ts in enumerate(sets, 1):
        row = list(ts.ids).index(edge_id)
        if u_edge[t - 1] < w - 1 - 22:  # template and search window inside the image
            assert ts.visible[row] and abs(ts.u[row] - u_edge[t - 1]) < 0.5, t
            followed += 1
    assert followed >= 2
    # The pan carried it off the image: dropped, its slot free for a new seed.
    assert edge_id not in manager.tracks and manager.lost >= 1


def test_tracks_the_model_calls_invisible_are_visible_where_their_template_matches_and_given_back(frame):
    """The head calls two points invisible for two frames in the middle of the view. The
    image still shows the first (a false occlusion call): it stays visible on its true position.
    The second is covered in those frames: invisible there, found again after. The model takes
    both back (they are queried) in the next clip."""
    h, w = frame.shape[:2]
    pmap = Preprocessor((128, 128), "center_crop").pixel_map((h, w))
    points = textured_points(gray(frame), 60, 30)
    middle = points[(points[:, 0] > 150) & (points[:, 0] < 330) & (points[:, 1] > 40) & (points[:, 1] < h - 40)][:6]
    assert len(middle) == 6
    manager = TrackManager(8, (128, 128), track_settings(max_tracks=8, query_mode="topic", refinement="template", image_fallback=True))
    manager.add_topic_queries(middle)
    queries, slot_ids = manager.make_queries(list(range(8)), np.zeros((128, 128, 3), np.float32), pmap)
    qu, qv = pmap.to_input(queries[:, 2], queries[:, 1])
    true_u = qu[:, None] + 3.0 * np.arange(8)[None]
    frames = [shifted(frame, 3.0 * t, 0.0) for t in range(8)]
    for t in (3, 4):  # the second point covered by a flat grey block
        u, v = int(round(true_u[1, t])), int(round(qv[1]))
        frames[t][v - 15:v + 16, u - 15:u + 16] = 128
    images = ClipImages(frames)
    head_xy = np.stack(pmap.to_model(true_u, np.repeat(qv[:, None], 8, axis=1)), -1).astype(np.float32)
    visibility = np.ones((8, 8), np.float32)
    visibility[:2, 3:5] = 0.0
    head_xy[:2, 3:5] += 9.0  # and the head's positions there are off
    xy = manager.refine(slot_ids, head_xy, visibility, images, list(range(8)), pmap)
    sets = manager.update(slot_ids, xy, visibility, np.full((8, 8), 0.9), list(range(8)), list(range(1, 8)),
                          pmap, images)
    for q in (0, 1):
        track_id = int(slot_ids[q])
        for t, ts in enumerate(sets, 1):
            row = list(ts.ids).index(track_id)
            if q == 1 and t in (3, 4):
                assert not ts.visible[row], t
            else:
                assert ts.visible[row] and abs(ts.u[row] - true_u[q, t]) < 0.5 and abs(ts.v[row] - qv[q]) < 0.5, (q, t)
        assert not manager.tracks[track_id].on_image  # matched in view at the clip's end: given back
    _, slot_ids2 = manager.make_queries(list(range(7, 15)), np.zeros((128, 128, 3), np.float32), pmap)
    assert {int(slot_ids[0]), int(slot_ids[1])} <= set(slot_ids2.tolist())


def test_the_image_fallback_needs_template_refinement(tiny_model_dir):
    with pytest.raises(ValueError, match="track_image_fallback"):
        TrackManager(8, (128, 128), track_settings(max_tracks=8, image_fallback=True))
    engine = create_engine(tiny_model_dir, backend="torch", num_queries=4)
    with pytest.raises(ValueError, match="track_refinement: template"):
        PerceptionPipeline(engine, PerceptionSettings.from_params(track_refinement="none"))
    PerceptionPipeline(engine, PerceptionSettings.from_params(track_refinement="none", track_image_fallback=False))


def test_quadratic_peak_is_the_newton_step_of_the_2d_fit():
    """The scalar closed form equals numpy's 2x2 solve of the fitted quadratic, and rejects
    saddles, minima and steps over a pixel."""
    from fourds_ros.perception.track_refine import _quadratic_peak

    rng = np.random.default_rng(0)
    for _ in range(500):
        scores = rng.random((5, 5)).astype(np.float32)
        scores[2, 2] += 1.0
        s = scores[1:4, 1:4].astype(np.float64)
        hessian = np.array([[s[1, 2] - 2 * s[1, 1] + s[1, 0], (s[2, 2] - s[2, 0] - s[0, 2] + s[0, 0]) / 4],
                            [(s[2, 2] - s[2, 0] - s[0, 2] + s[0, 0]) / 4, s[2, 1] - 2 * s[1, 1] + s[0, 1]]])
        step = -np.linalg.solve(hessian, [(s[1, 2] - s[1, 0]) / 2, (s[2, 1] - s[0, 1]) / 2])
        expected = tuple(step) if np.abs(step).max() <= 1 else (0.0, 0.0)
        assert np.allclose(_quadratic_peak(scores, 2, 2), expected, atol=1e-12)
    saddle = np.zeros((3, 3), np.float32)
    saddle[1, :] = [0.5, 1.0, 0.5]
    saddle[:, 1] = [1.5, 1.0, 1.5]
    assert _quadratic_peak(saddle, 1, 1) == (0.0, 0.0)
    assert _quadratic_peak(saddle, 0, 1) == (0.0, 0.0)  # on the border: no neighbourhood


def test_a_track_position_that_is_not_finite_is_published_as_nan_not_inf():
    """A head giving inf put rows of inf u, v (invisible) into the tracks cloud."""
    from fourds_ros.perception.tracks import _track_sets

    u = np.array([[10.0, np.inf], [5.0, -np.inf]])
    sets = _track_sets([None, None], np.array([1, 2], np.uint32), u, np.full((2, 2), 3.0), np.zeros((2, 2), bool),
                       np.zeros((2, 2)), [0, 1])
    assert sets[0].u.tolist() == [10.0, 5.0] and np.isnan(sets[1].u).all() and (sets[1].v == 3.0).all()


def test_dark_frames_to_the_clips_end_hand_the_tracks_to_the_image(frame):
    """Frames 6 and 7 of 8 dark: the model cannot show the tracks again in this clip, so each is followed on the
    image from there (a dark run in the middle of a clip leaves them with the model)."""
    pmap, _, middle = _edge_and_middle_seeds(frame)
    manager = TrackManager(16, (128, 128), track_settings(max_tracks=16, query_mode="topic", refinement="template",
                                                          image_fallback=True))
    panning_clip(frame, pmap, manager, middle, 0, 14.0, unseen=np.arange(8) >= 6)
    assert manager.tracks and all(t.on_image for t in manager.tracks.values())
