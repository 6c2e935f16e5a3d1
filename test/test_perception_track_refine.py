"""Template refinement of track positions, on a real HoloLens frame (MIT sample shipped in the repo)
shifted by known sub-pixel amounts."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from fourds_ros.engine import create_engine
from fourds_ros.perception.pipeline import PerceptionPipeline, PipelineSettings
from fourds_ros.perception.preprocess import Preprocessor
from fourds_ros.perception.track_refine import TemplateRefiner, gray
from fourds_ros.perception.tracks import TrackManager

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "hololens_000" / "images"


@pytest.fixture(scope="module")
def frame():
    path = sorted(SAMPLE.glob("*"))[0]
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


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


def test_track_manager_refines_after_the_query_frame_where_visible(frame):
    """Four frames, each the first moved by +2.4 px in x per frame; the head's positions are 4 px
    off. Refinement brings them to the truth, except where the head says the point is not visible
    and at the query frame itself."""
    h, w = frame.shape[:2]
    pmap = Preprocessor((128, 128), "center_crop").pixel_map((h, w))
    manager = TrackManager(num_queries=8, max_tracks=8, model_hw=(128, 128), mode="features",
                           refiner=TemplateRefiner())
    frames = [shifted(frame, 2.4 * t, 0.0) for t in range(4)]
    model_first = cv2.resize(frame[:, (w - h) // 2:(w + h) // 2], (128, 128)).astype(np.float32) / 255
    queries, slot_ids = manager.make_queries([0, 1, 2, 3], model_first, pmap)
    used = np.flatnonzero(slot_ids >= 0)
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
    refined = manager.refine(slot_ids, head_xy, visibility, frames, [0, 1, 2, 3], pmap)
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
    plain = TrackManager(num_queries=8, max_tracks=8, model_hw=(128, 128))
    assert plain.refine(slot_ids, head_xy, visibility, [], [0, 1, 2, 3], pmap) is head_xy


def test_pipeline_rejects_an_unknown_refinement(tiny_model_dir):
    engine = create_engine(tiny_model_dir, backend="torch", num_queries=4)
    with pytest.raises(ValueError, match="track_refinement"):
        PerceptionPipeline(engine, PipelineSettings(track_refinement="lk"))
