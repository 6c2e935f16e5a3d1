"""A camera that cannot see (a covered lens, a dark room, a blank wall): texture measured on the
model image, no depth invented, odometry held with an unknown-motion covariance."""

import numpy as np

from fourds_ros.perception.pose_geometry import UNSEEN_VARIANCE, clip_pose, hold_unseen
from fourds_ros.perception.preprocess import Preprocessor, partly_blind, texture_map, texture_of, view_texture
from fourds_ros.rgbd import read_sequence

from .test_default_model import SAMPLE, default_pipeline, noisy_frames
from .test_pose_geometry import K, T_LEN, angle_deg, make_clip, poses, still_head_outputs


def model_images(frames: list[np.ndarray]) -> np.ndarray:
    pre = Preprocessor((128, 128))
    return np.stack([pre(f) for f in frames])


def test_texture_tells_a_real_frame_from_a_covered_lens_a_blank_view_and_a_dark_room():
    real = read_sequence(SAMPLE).rgb(12).astype(float)
    views = [real, real * 0, real * 0 + 128, real * 0.05]
    texture = texture_of(texture_map(model_images(list(noisy_frames(lambda i: views[i], len(views))))))
    seen, black, grey, dark = texture
    assert seen > 5.0 and black < 0.2 and grey < 0.2 and dark < 1.0, texture


def test_hold_unseen_keeps_the_last_seen_pose_with_the_unknown_variance():
    truth = poses(1.0, [0.01, 0.0, 0.0])
    rotation = np.stack([T[:3, :3] for T in truth])
    translation = np.stack([T[:3, 3] for T in truth])
    variance = np.full((T_LEN, 2), 1e-4)
    unseen = np.zeros(T_LEN, bool)
    unseen[[0, 3, 4]] = True  # frame 0 is the origin: never held
    r, t, v = hold_unseen(rotation, translation, variance, unseen)
    assert np.allclose(r[3], rotation[2]) and np.allclose(r[4], rotation[2]) and np.allclose(t[4], translation[2])
    assert np.allclose(r[5], rotation[5]) and np.allclose(v[5], 1e-4)
    assert np.allclose(v[3], 1e-4 + np.array(UNSEEN_VARIANCE)) and np.allclose(v[4], 1e-4 + 2 * np.array(UNSEEN_VARIANCE))
    assert np.allclose(r[0], rotation[0]) and np.allclose(rotation[3], truth[3][:3, :3])  # inputs unchanged


def test_unseen_frames_hold_in_every_pose_source_and_do_not_bend_the_smoothing():
    """A turning camera whose last 3 frames are blind: its tracks there are noise, and the head
    reads 20 degrees of phantom motion. Whatever the head or PnP make of those frames, they hold
    the last seen frame's pose, and the frames seen keep the true motion: the smoothing over the
    clip does not bend toward the blind frames."""
    truth = poses(0.8, [0.0, 0.0, 0.0])
    depth, xy, vis, _ = make_clip(truth, noise_px=0.05)
    xy[:, 5:] += np.random.default_rng(1).normal(0, 20, xy[:, 5:].shape)
    outputs = still_head_outputs(depth, xy, vis, head_sd=(1.0, 1.0))  # an unsure head: the geometry leads,
    outputs["pose_log_variance"][0, 5:] = 2 * np.log(0.01)  # but sure of its phantom on the blind frames
    unseen = np.zeros(T_LEN, bool)
    unseen[5:] = True
    for mode in ("head", "geometry", "fused"):
        rotation, translation, log_variance, _ = clip_pose(outputs, K, mode=mode, smoothing_order=2, unseen=unseen)
        for t in (5, 6, 7):
            assert np.allclose(rotation[t], rotation[4]) and np.allclose(translation[t], translation[4]), mode
            assert np.all(np.diff(np.exp(log_variance[4:]), axis=0) > 0.99 * np.array(UNSEEN_VARIANCE)), mode
        if mode != "head":
            assert max(angle_deg(rotation[t], truth[t][:3, :3]) for t in range(5)) < 0.2, mode
    bent, _, _, _ = clip_pose(outputs, K, mode="fused", smoothing_order=2)  # the same clip, blindness ignored
    assert max(angle_deg(bent[t], truth[t][:3, :3]) for t in range(5)) > 0.5


def test_default_pipeline_holds_still_and_invents_no_depth_or_tracks_with_the_lens_covered():
    """The shipped model on the demo sample's frame 12, a still camera, with the lens covered
    (black, sensor noise) for frames 40-59 of 90. Before session 22 the odometry moved 0.3-0.9 m
    and 12-55 degrees over the covered frames (the head's phantom motion, PnP degenerate) and the
    depth images showed a made-up room."""
    seq = read_sequence(SAMPLE)
    view = seq.rgb(12).astype(np.float64)
    pipe = default_pipeline()
    frames = noisy_frames(lambda i: view * 0 if 40 <= i < 60 else view, 90)
    results = [r for i, rgb in enumerate(frames) for r in pipe.push(rgb, i * 33_333_333, "camera", seq.intrinsics)]
    covered = [r for r in results if 40 <= r.index < 60]
    assert len(covered) == 20 and pipe.status()["frames_blind"] == 20
    assert all(np.isnan(r.depth).all() for r in covered)
    assert all(np.isfinite(r.depth).mean() > 0.9 for r in results if not 40 <= r.index < 60)
    drift = np.linalg.inv(results[0].pose.odom_from_camera) @ results[-1].pose.odom_from_camera
    assert np.linalg.norm(drift[:3, 3]) < 0.01 and angle_deg(drift[:3, :3], np.eye(3)) < 0.5
    # The covariances say what happened: position unknown after the covered frames, and no
    # velocity measured on any of them (an EKF fusing the twist must not read "standing still").
    assert np.trace(results[-1].pose.covariance[:3, :3]) > 1.0 > np.trace(results[30].pose.covariance[:3, :3])
    assert min(np.diag(r.pose.twist_covariance)[:3].min() for r in covered) > 100.0
    assert np.diag(results[30].pose.twist_covariance)[:3].max() < 1.0
    # No tracks either: before session 23 the clip seeded on a covered frame published 62 of its
    # 63 tracks "visible" on black frames, and those points, which are no points, stayed in the
    # view (30 of 63 visible after the lens was uncovered).
    assert all(not r.tracks.visible.any() and np.isnan(r.tracks.xyz).all() for r in covered)
    seeded_blind = {int(i) for r in covered for i in r.tracks.ids} - {int(i) for r in results[:40] for i in r.tracks.ids}
    after = [r for r in results if r.index >= 64]  # the first clip seeded on a frame that shows the view
    assert seeded_blind and not any(set(r.tracks.ids[r.tracks.visible].tolist()) & seeded_blind for r in results)
    assert min(r.tracks.visible.mean() for r in after) > 0.9 and min(len(r.tracks) for r in after) >= 60


def test_default_tracks_outlive_a_lens_covered_for_a_moment():
    """Covered for 5 frames (a hand passing the lens): no track is visible while it is covered,
    and the image fallback finds most of them again by their templates once it is uncovered,
    with the same ids, across the covered clip's overlap frame."""
    seq = read_sequence(SAMPLE)
    view = seq.rgb(12).astype(np.float64)
    pipe = default_pipeline()
    frames = noisy_frames(lambda i: view * 0 if 40 <= i < 45 else view, 60)
    results = [r for i, rgb in enumerate(frames) for r in pipe.push(rgb, i * 33_333_333, "camera", seq.intrinsics)]
    before = set(results[39].tracks.ids[results[39].tracks.visible].tolist())
    assert len(before) >= 60
    assert all(not r.tracks.visible.any() for r in results if 40 <= r.index < 45)
    again = set(results[45].tracks.ids[results[45].tracks.visible].tolist())
    assert len(again & before) >= 40, len(again & before)


def dark_lower_half(frame: np.ndarray) -> np.ndarray:
    out = frame.copy()
    out[out.shape[0] // 2:] = 0  # sensor noise is added by noisy_frames
    return out


def test_partly_blind_tells_a_half_covered_lens_from_real_views_and_skips_the_robots_body():
    """The lower half of the lens covered is partly blind; the real view is not, nor a frame whose
    covered half is the robot's body (exclude_boxes' pixels do not count)."""
    real = read_sequence(SAMPLE).rgb(12).astype(float)
    views = [real, dark_lower_half(real), real * 0]
    magnitude = texture_map(model_images(list(noisy_frames(lambda i: views[i], len(views)))))
    assert partly_blind(magnitude, 1.0).tolist() == [False, True, True]  # the pipeline calls the last blind
    body = np.zeros(magnitude.shape[1:], bool)
    body[magnitude.shape[1] // 2:] = True
    assert partly_blind(magnitude, 1.0, ignored=body).tolist() == [False, False, True]


def test_a_blank_view_above_the_robots_textured_body_is_blind():
    """A robot facing a blank wall (or its lens covered above the bumper) with its own textured chassis
    in exclude_boxes: the blind test read the chassis's texture, so the frame was never blind (the
    model's invented depth went out, and the head's phantom motion). The view outside the boxes is
    what is measured now; a real view above the body is still seen."""
    real = read_sequence(SAMPLE).rgb(12).astype(float)
    chassis = real.copy()
    chassis[: real.shape[0] * 55 // 100] = 128  # blank above, the real (textured) image as the chassis below
    magnitude = texture_map(model_images(list(noisy_frames(lambda i: [chassis, real][i], 2))))
    body = np.zeros(magnitude.shape[1:], bool)
    rows = np.arange(magnitude.shape[1])
    body[(rows + 0.5) / len(rows) >= 0.55] = True  # the box [0, 0.55, 1, 1] over the chassis (model pixel centres)
    assert texture_of(magnitude)[0] >= 1.0  # the whole image: the chassis reads as texture
    blank, seen = view_texture(magnitude, body)
    assert blank < 1.0 <= seen, (blank, seen)
    assert np.array_equal(view_texture(magnitude), texture_of(magnitude))  # no boxes: as before


def test_default_pipeline_counts_frames_that_see_nothing_on_half_the_view():
    """The shipped model on the demo sample's view with the lower half of the lens covered for
    frames 30-49 of 60: those frames are counted partly blind, not blind, and keep their depth."""
    seq = read_sequence(SAMPLE)
    view = seq.rgb(12).astype(np.float64)
    pipe = default_pipeline()
    frames = noisy_frames(lambda i: dark_lower_half(view) if 30 <= i < 50 else view, 60)
    results = [r for i, rgb in enumerate(frames) for r in pipe.push(rgb, i * 33_333_333, "camera", seq.intrinsics)]
    status = pipe.status()
    assert status["frames_partly_blind"] == 20 and status["frames_blind"] == 0, status
    assert all(np.isfinite(r.depth).mean() > 0.9 for r in results)
