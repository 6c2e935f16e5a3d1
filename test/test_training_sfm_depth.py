"""Triangulated depth labels for unlabelled video (training/data/sfm_depth.py): right up to a scale
where the camera translates, absent where it only turns, rasterised where the model sees them, and
learnt by the relative terms only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from .conftest import SHARED_DATA, require
from training.data.sfm_depth import (SfmDepthClips, SfmSettings, frame_depth, guessed_intrinsics, rasterised,
                                     two_view_depth)

W, H = 640, 480
K = np.array([[500.0, 0, (W - 1) / 2], [0, 500.0, (H - 1) / 2], [0, 0, 1]])
# Two fronto-parallel textured planes: a wall 5 m away and a board 2.5 m away in front of it.
PLANES = ((2.5, (-0.7, 0.7, -0.5, 0.5), 300.0), (5.0, (-20.0, 20.0, -20.0, 20.0), 150.0))


def _texture(seed: int, size: int = 2048) -> np.ndarray:
    noise = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    return cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 2.0), None, 0, 255, cv2.NORM_MINMAX)


TEXTURES = [_texture(1), _texture(2)]


def render(centre: np.ndarray, yaw_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """The two planes seen by a camera at `centre` (world, metres) turned by yaw about y -> (gray
    (H, W) uint8, depth (H, W) metres along the optical axis)."""
    a = np.radians(yaw_deg)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)  # camera, z = 1
    world = rays @ rot.T
    image, depth = np.zeros((H, W), np.float32), np.full((H, W), np.inf)
    for (z, (x0, x1, y0, y1), px_per_m), texture in zip(PLANES, TEXTURES):
        lam = (z - centre[2]) / world[..., 2]
        x, y = centre[0] + lam * world[..., 0], centre[1] + lam * world[..., 1]
        hit = (lam > 0) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1) & (lam < depth)
        sampled = cv2.remap(texture, (x * px_per_m + 1024).astype(np.float32), (y * px_per_m + 1024).astype(np.float32),
                            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        image, depth = np.where(hit, sampled, image), np.where(hit, lam, depth)
    return image.round().astype(np.uint8), depth


def _truth_at(uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
    return depth[np.round(uv[:, 1]).astype(int), np.round(uv[:, 0]).astype(int)]


def test_a_translating_camera_gets_depth_right_up_to_one_scale():
    """A camera sliding sideways 5 cm a frame past a board and a wall: the middle frame's labels
    are the true depths times one factor (within 2 %), and both planes are labelled."""
    frames = [render(np.array([0.05 * t, 0.0, 0.0]), 0.0) for t in range(13)]
    gray = np.stack([f[0] for f in frames])
    uv, depth = frame_depth(gray, 6, K)
    assert len(depth) >= 100
    truth = _truth_at(uv, frames[6][1])
    ratio = truth / depth
    assert np.abs(ratio / np.median(ratio) - 1).mean() < 0.02
    assert (truth < 3).sum() >= 10 and (truth > 4).sum() >= 10  # near and far both labelled
    assert np.median(depth) == pytest.approx(1.0)


def test_the_two_sides_must_agree_and_a_guessed_focal_length_stays_close():
    """With K's focal length 25 % off (what guessed_intrinsics may be on a real video) the labels
    still hold the two planes' ratio within 10 %; and the first frame, with no frame before it,
    gets no label (both sides are required)."""
    frames = [render(np.array([0.05 * t, 0.0, 0.0]), 0.0) for t in range(13)]
    gray = np.stack([f[0] for f in frames])
    wrong = K.copy()
    wrong[0, 0] = wrong[1, 1] = 625.0
    uv, depth = frame_depth(gray, 6, wrong)
    truth = _truth_at(uv, frames[6][1])
    near, far = depth[truth < 3], depth[truth > 4]
    assert np.median(far) / np.median(near) == pytest.approx(2.0, rel=0.1)
    assert len(frame_depth(gray, 0, K)[1]) == 0


def test_a_camera_that_only_turns_gets_no_label():
    """Pure rotation (0.8 degrees a frame): no parallax, the homography explains the pairs, and no
    frame is labelled, where a triangulation would invent depth."""
    gray = np.stack([render(np.zeros(3), 0.8 * t)[0] for t in range(13)])
    assert len(frame_depth(gray, 6, K)[1]) == 0
    # The same pairs do triangulate if the rotation test is switched off: the test is what holds.
    uv0 = cv2.goodFeaturesToTrack(gray[6], 300, 0.005, 7).reshape(-1, 2).astype(np.float64)
    uv1, ok = cv2.calcOpticalFlowPyrLK(gray[6], gray[10], uv0.astype(np.float32), None)[:2]
    ok = ok.ravel().astype(bool)
    loose = SfmSettings(max_homography_share=10.0, min_parallax_deg=0.0)
    assert two_view_depth(uv0[ok], uv1.reshape(-1, 2)[ok].astype(np.float64), K, SfmSettings())[1].sum() == 0
    assert two_view_depth(uv0[ok], uv1.reshape(-1, 2)[ok].astype(np.float64), K, loose)[1].sum() > 0


def test_rasterised_puts_each_label_at_its_model_pixel():
    """A 200x100 frame's centre crop (x0 50, side 100) resized to 10 px: frame pixel (54.5, 4.5)
    is model pixel (0, 0); two labels on one model pixel average; outside the crop is dropped."""
    uv = np.array([[54.5, 4.5], [54.5, 4.5], [144.5, 94.5], [10.0, 50.0]])
    depth = np.array([1.0, 3.0, 5.0, 7.0])
    out = rasterised(uv, depth, 50, 0, 100, 10)
    assert out.shape == (10, 10) and out[0, 0] == pytest.approx(2.0) and out[9, 9] == pytest.approx(5.0)
    assert (out > 0).sum() == 2


def test_guessed_intrinsics_centre_and_focal():
    k = guessed_intrinsics(368, 480)
    assert k[0, 0] == k[1, 1] == pytest.approx(384.0) and k[0, 2] == pytest.approx(183.5) and k[1, 2] == pytest.approx(239.5)


def test_sfm_depth_clips_from_real_video_are_labelled_clips_without_metres():
    """SfmDepthClips on a real hand-held video: the keys and shapes of the other labelled clips (so
    the banks concatenate), depth_metric 0, every clip with a labelled frame, labels positive and
    sparse, no tracks known."""
    from fourds_ros.model import ModelConfig
    from training.data import SyntheticLabelledClips

    video = require(SHARED_DATA / "videos_unlabelled" / "cotracker_cat.mp4")
    clips = SfmDepthClips([video], num_frames=4, image_size=(64, 64), hop=4, num_tracks=16, label_every=2)
    reference = SyntheticLabelledClips(ModelConfig(size="tiny", num_frames=4, image_size=(64, 64)),
                                       {"num_tracks": 16}, 1, 0)[0]
    assert len(clips) >= 3 and clips.labelled_frames() >= 5
    for item in (clips[0], clips[len(clips) - 1]):
        assert {k: tuple(v.shape) for k, v in item.items()} == {k: tuple(v.shape) for k, v in reference.items()}
        assert float(item["depth_metric"]) == 0 and float(reference["depth_metric"]) == 1
        labelled = item["depth"] > 0
        assert labelled.any() and labelled.float().mean() < 0.2
        assert (item["tracks_known"] == 0).all()


def test_the_metric_terms_skip_clips_without_metres():
    """depth_losses: a clip marked depth_metric 0 changes the loss only through the relative (SSI)
    terms: with ssi_weight 0 its labels do not count at all; with ssi_weight > 0 they do."""
    from training.readouts_model import build_model, depth_losses

    model = build_model(None, "tiny", (4, 32, 32), ["depth"], 16, 2, canonical_focal_px=30.0).eval()
    torch.manual_seed(0)
    video = torch.rand(2, 4, 32, 32, 3)
    depth = torch.rand(2, 4, 32, 32) + 0.5
    k = torch.tensor([[30.0, 0, 15.5], [0, 30.0, 15.5], [0, 0, 1]]).repeat(2, 1, 1)
    with torch.no_grad():
        feats = model.features(video)
    batch = {"video": video, "depth": depth, "intrinsics": k, "depth_metric": torch.tensor([1.0, 0.0])}
    changed = dict(batch, depth=torch.cat([depth[:1], depth[1:] * 3.0 + torch.rand(1, 4, 32, 32)]))
    with torch.no_grad():
        a, _ = depth_losses(model, feats, batch, ssi_weight=0.0)
        b, _ = depth_losses(model, feats, changed, ssi_weight=0.0)
        c, _ = depth_losses(model, feats, batch, ssi_weight=1.0)
        d, _ = depth_losses(model, feats, changed, ssi_weight=1.0)
    assert float(a) == pytest.approx(float(b), rel=1e-6)
    assert abs(float(c) - float(d)) > 1e-3


def test_sfm_depth_needs_the_depth_head_alone_and_the_relative_terms():
    from training.readouts_config import ConfigError, ReadoutsConfig

    with pytest.raises(ConfigError, match="--sfm-depth"):
        ReadoutsConfig(sfm_depth=("v",), heads=("depth", "tracks"), train_heads=("depth", "tracks"),
                       depth_ssi_weight=2.0)
    with pytest.raises(ConfigError, match="--sfm-depth"):
        ReadoutsConfig(sfm_depth=("v",), heads=("depth",), train_heads=("depth",))
    ReadoutsConfig(sfm_depth=("v",), heads=("depth",), train_heads=("depth",), depth_ssi_weight=2.0)


def test_sfm_depth_clips_decode_a_frame_at_a_time_and_label_it_as_the_whole_video(tmp_path):
    """A 1920x1440 recording (a frame folder here; an mp4 decodes through the same iterator): the labels are
    video_labels of the whole video, but the video is never held whole. Why: read whole, a minute of 1080p
    took about 11 GB before its frames were shrunk to the labelling size."""
    import tracemalloc

    from training.data.sfm_depth import video_labels
    from training.data.video import read_frames

    for t in range(12):
        gray = cv2.resize(render(np.array([0.05 * t, 0.0, 0.0]), 0.0)[0], (1920, 1440), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(tmp_path / f"{t}.jpg"), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    tracemalloc.start()
    try:
        clips = SfmDepthClips([tmp_path], num_frames=4, image_size=(32, 32), hop=4, label_every=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole = read_frames(tmp_path, list(range(12)))
    assert clips.frame_hw[tmp_path] == (1440, 1920)
    assert peak < whole.nbytes / 2, (peak, whole.nbytes)  # read whole: at least whole.nbytes
    expected = video_labels(whole, range(0, 12, 3))
    assert clips.labels[tmp_path].keys() == expected.keys() and expected
    for j, (uv, depth) in expected.items():
        assert np.array_equal(clips.labels[tmp_path][j][0], uv) and np.array_equal(clips.labels[tmp_path][j][1], depth)
