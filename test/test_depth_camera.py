"""Depth that holds on a new camera (issue #17 item 3): the scale-and-shift-invariant and
gradient-matching losses, the canonical-focal metric depth (training targets, evaluation and the
pipeline's rescale) and the synthetic generator's range of fields of view."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fourds_ros.model import DepthHeadConfig, ModelConfig
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.settings import PerceptionSettings
from training.data import SyntheticLabelledClips
from training.data.synthetic import WORLD_FOV_RANGE_DEG, SceneConfig, SceneGenerator, clip_fov_deg
from training.losses import align_scale_shift, gradient_matching, ssi_depth_loss
from training.readouts_model import build_model, depth_losses, evaluate, metric_factor


def scene_depth(seed=0, shape=(2, 3, 24, 32)) -> torch.Tensor:
    """Positive depth maps with structure: a tilted plane plus a box nearer the camera."""
    g = torch.Generator().manual_seed(seed)
    b, t, h, w = shape
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    depth = 1.5 + 2.0 * y + 0.5 * x + 0.3 * torch.rand(b, t, 1, 1, generator=g)
    box = (x > 0.3) & (x < 0.6) & (y > 0.2) & (y < 0.7)
    return torch.where(box, depth * 0.5, depth).expand(b, t, h, w).clone()


def test_affine_inverse_depth_has_zero_ssi_loss():
    depth = scene_depth()
    disp = 1 / depth
    pred = 1 / (0.37 * disp + 0.05)  # an affine map of the true disparity, as depth
    loss, parts = ssi_depth_loss(pred, depth)
    assert float(parts["depth_ssi"]) < 1e-4 and float(parts["depth_grad"]) < 1e-4 and float(loss) < 1e-4


def test_wrong_structure_has_a_large_ssi_loss():
    depth = scene_depth()
    right, _ = ssi_depth_loss(depth * 3.0, depth)  # a pure scale (a focal rescale): still right
    flipped, parts = ssi_depth_loss(depth.flip(-1).flip(-2), depth)
    noise = 1.0 + torch.rand(depth.shape, generator=torch.Generator().manual_seed(1)) * 3
    random, _ = ssi_depth_loss(noise, depth)
    assert float(right) < 1e-4
    assert float(parts["depth_ssi"]) > 0.05 and float(parts["depth_grad"]) > 0.01
    assert float(random) > 0.1


def test_invalid_pixels_are_ignored_and_gradients_flow():
    depth = scene_depth()
    target = depth.clone()
    target[..., :4] = 0.0  # invalid: whatever the prediction there, no loss
    pred = depth.clone()
    pred[..., :4] = 50.0
    pred.requires_grad_(True)
    loss, _ = ssi_depth_loss(pred, target)
    loss.backward()
    assert float(loss.detach()) < 1e-4 and torch.isfinite(pred.grad).all()


def test_least_squares_scale_and_shift_known_answer():
    pred = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2)) + 0.1
    target = 2.5 * pred - 0.75
    s, t = align_scale_shift(pred, target, torch.ones_like(pred, dtype=torch.bool))
    assert torch.allclose(s, torch.full((3,), 2.5), atol=1e-4) and torch.allclose(t, torch.full((3,), -0.75), atol=1e-4)
    # A constant prediction has no least-squares fit: the scale of the means, no shift, finite.
    s, t = align_scale_shift(torch.ones(1, 8, 8), target[:1], torch.ones(1, 8, 8, dtype=torch.bool))
    assert float(s) == pytest.approx(float(target[0].mean())) and float(t) == 0.0


def test_a_far_nearly_flat_prediction_still_learns_structure():
    """A prediction 40 units away with 2 % of relief (a street at the canonical focal): the fit's
    absolute bound called it singular and set s = t = 0, so the loss did not depend on the
    prediction and taught nothing (review, session 52)."""
    target = scene_depth()
    relief = torch.rand(target.shape, generator=torch.Generator().manual_seed(3))
    pred = (40.0 * (1 + 0.02 * relief)).requires_grad_(True)
    loss, _ = ssi_depth_loss(pred, target)
    loss.backward()
    assert float(loss.detach()) > 0.05 and float(pred.grad.abs().sum()) > 0
    flat = torch.full(target.shape, 40.0, requires_grad=True)  # no relief at all: still a gradient
    ssi_depth_loss(flat, target)[0].backward()
    assert float(flat.grad.abs().sum()) > 0


def test_every_labelled_frame_counts_alike_however_few_its_labels():
    """Pooled over pixels, a sparse clip (--sfm-depth: a few dozen triangulated points) weighed
    0.02 % of a batch of dense clips instead of its share; and the scale-invariant term charged two
    frames' opposite scale errors as variance. Each term is now each frame's mean, averaged."""
    from training.losses import depth_loss

    dense = scene_depth(shape=(7, 2, 24, 32))
    sparse = scene_depth(seed=5, shape=(1, 2, 24, 32))
    keep = torch.zeros_like(sparse, dtype=torch.bool)
    keep[..., ::6, ::8] = True  # 16 labelled pixels a frame
    sparse = torch.where(keep, sparse, torch.zeros_like(sparse))
    target = torch.cat([dense, sparse])
    wrong = target.flip(-1).flip(-2).clamp_min(0.5)
    pred = torch.cat([dense, wrong[7:]])  # the dense clips exact, the sparse one wrong
    batch, _ = ssi_depth_loss(pred, target)
    clips = [float(ssi_depth_loss(pred[i:i + 1], target[i:i + 1])[0]) for i in range(8)]
    assert float(batch) == pytest.approx(sum(clips) / 8, rel=1e-4) and clips[7] > 0.05
    # Scale-invariant log: a frame 0.2 too far in log and one 0.2 too near are each scale errors only.
    truth = scene_depth(shape=(2, 1, 24, 32))
    scaled = truth * torch.tensor([np.exp(0.2), np.exp(-0.2)], dtype=truth.dtype)[:, None, None, None]
    _, parts = depth_loss(scaled, truth, l1_weight=0.0)
    assert float(parts["depth_si"]) == pytest.approx((1 - 0.85) * 0.04, rel=1e-3)


def test_gradient_matching_known_answer():
    # A residual ramp of slope c along x: |dx| = c on the 8x7 x-pairs, 0 on the 7x8 y-pairs.
    c = 0.2
    ramp = (torch.arange(8.0) * c).expand(1, 8, 8)
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    assert float(gradient_matching(ramp, valid, scales=1)) == pytest.approx(c / 2)
    # Stride 2 sees steps of 2c on a 4x4 grid: 0.1 + 0.2 over two scales.
    assert float(gradient_matching(ramp, valid, scales=2)) == pytest.approx(c / 2 + c)
    assert float(gradient_matching(torch.zeros(1, 8, 8), valid)) == 0.0


def test_depth_head_config_canonical_focal_round_trip():
    old = DepthHeadConfig(32, 2)
    assert old.canonical_focal_px is None and old.metric_scale(123.0) == 1.0
    new = DepthHeadConfig(32, 2, canonical_focal_px=100.0)
    assert new.metric_scale(200.0) == 2.0
    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), patch_size=(2, 8, 8), heads={"depth": new})
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    legacy = cfg.to_dict()
    del legacy["heads"]["depth"]["canonical_focal_px"]  # a config.json written before the field
    assert ModelConfig.from_dict(legacy).heads["depth"].canonical_focal_px is None
    with pytest.raises(ValueError):
        DepthHeadConfig(32, 2, canonical_focal_px=-1.0)


def synthetic_batch(model, n=3) -> dict:
    clips = SyntheticLabelledClips(model.config, {"num_tracks": 8, "fov_range_deg": WORLD_FOV_RANGE_DEG}, n, offset=0)
    return {k: torch.stack([clips[i][k] for i in range(n)]) for k in clips[0]}


def test_training_targets_are_in_the_canonical_camera(monkeypatch):
    canonical = 20.0
    model = build_model(None, "micro", (4, 32, 32), ["depth"], 32, 2, (2, 8, 8), canonical_focal_px=canonical)
    batch = synthetic_batch(model)
    fx = batch["intrinsics"][:, 0, 0]
    assert len(set(fx.tolist())) == 3  # the clips have different fields of view
    assert torch.allclose(metric_factor(model, batch).flatten(), fx / canonical)
    # A head that outputs exactly depth x canonical / fx has zero metric loss ...
    expected = batch["depth"] * (canonical / fx)[:, None, None, None]
    monkeypatch.setattr(model.heads["depth"], "forward", lambda feats: expected.clamp_min(1e-3))
    loss, parts = depth_losses(model, None, batch, ssi_weight=1.0)
    assert parts["depth_l1"] < 1e-5 and parts["depth_si"] < 1e-5 and parts["depth_ssi"] < 1e-3
    # ... and evaluation rescales it back to the true metres.
    assert evaluate(model, [batch])["depth_abs_rel"] < 1e-5
    plain = build_model(None, "micro", (4, 32, 32), ["depth"], 32, 2, (2, 8, 8))
    monkeypatch.setattr(plain.heads["depth"], "forward", lambda feats: expected.clamp_min(1e-3))
    assert depth_losses(plain, None, batch)[1]["depth_l1"] > 0.1  # without it the same output is wrong


class ConstantDepthEngine:
    """An engine stand-in with only a depth head whose output is 2.0 everywhere."""

    def __init__(self, canonical_focal_px):
        head = DepthHeadConfig(32, 2, canonical_focal_px=canonical_focal_px)
        self.config = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), patch_size=(2, 8, 8),
                                  heads={"depth": head})
        self.spec = SimpleNamespace(input_shapes={"video": (1, 4, 32, 32, 3)}, num_queries=0)

    def __call__(self, inputs):
        return {"depth": np.full((1, 4, 32, 32), 2.0, np.float32)}


def pipeline_depth(canonical, fx) -> np.ndarray:
    # Black frames are blind (min_image_texture), whose depth is NaN: the check is off here.
    pipe = PerceptionPipeline(ConstantDepthEngine(canonical), PerceptionSettings.from_params(hop=3, min_image_texture=0.0))
    rgb = np.zeros((64, 64, 3), np.uint8)
    k = np.array([[fx, 0, 31.5], [0, fx, 31.5], [0, 0, 1]])
    results = [r for i in range(4) for r in pipe.push(rgb, i * 10**8, "cam", k)]
    assert len(results) == 4
    return np.stack([r.depth for r in results])


def test_pipeline_rescales_by_the_real_focal_length():
    # 64x64 -> 32x32 halves fx: fx 64 is 32 model pixels, twice the canonical 16.
    assert np.allclose(pipeline_depth(16.0, 64.0), 4.0)
    # Twice the focal length, the same head output: twice the depth.
    assert np.allclose(pipeline_depth(16.0, 128.0), 8.0)
    # A head without a canonical focal is published as it is, whatever the camera.
    assert np.allclose(pipeline_depth(None, 64.0), 2.0) and np.allclose(pipeline_depth(None, 128.0), 2.0)


def test_a_clip_after_a_late_camera_info_takes_the_depth_scale_of_its_k():
    """camera_info later than the first images: a clip that began with frames of the default K
    took its metric depth scale from it, its later frames' depth off by the focal lengths' ratio
    (1.85x on the default model). The buffer resets at the new K instead."""
    pipe = PerceptionPipeline(ConstantDepthEngine(16.0), PerceptionSettings.from_params(hop=3, min_image_texture=0.0))
    rgb = np.zeros((64, 64, 3), np.uint8)
    k = np.array([[128.0, 0, 31.5], [0, 128.0, 31.5], [0, 0, 1]])
    results = [r for i in range(8) for r in pipe.push(rgb, i * 10**8, "cam", None if i < 4 else k)]
    with_k = [r for r in results if r.has_camera_info]
    assert [np.nanmedian(r.depth) for r in with_k] == pytest.approx([np.nanmedian(pipeline_depth(16.0, 128.0))] * 4,
                                                                    rel=0.01)
    assert pipe.buffer.resets == {"camera": 1}


def test_synthetic_fields_of_view_span_45_to_100_degrees():
    cfg = SceneConfig(num_frames=2, image_size=(16, 16), fov_range_deg=WORLD_FOV_RANGE_DEG)
    fovs = np.array([clip_fov_deg(cfg, seed) for seed in range(400)])
    assert fovs.min() >= 45 and fovs.max() <= 100
    assert fovs.min() < 48 and fovs.max() > 97 and 65 < np.median(fovs) < 80
    assert clip_fov_deg(SceneConfig(), 5) == 60.0  # the default: one fixed lens, as before
    with pytest.raises(ValueError):
        clip_fov_deg(SceneConfig(fov_range_deg=(100.0, 45.0)), 0)


def test_synthetic_intrinsics_follow_the_clip_fov_and_the_scene_does_not():
    cfg = SceneConfig(num_frames=2, image_size=(24, 32), num_tracks=8, fov_range_deg=WORLD_FOV_RANGE_DEG)
    varied = SceneGenerator(cfg).generate(11)
    fixed = SceneGenerator(SceneConfig(num_frames=2, image_size=(24, 32), num_tracks=8)).generate(11)
    fov = clip_fov_deg(cfg, 11)
    assert varied.intrinsics[0, 0] == pytest.approx(16 / np.tan(np.radians(fov) / 2))
    assert fixed.intrinsics[0, 0] == pytest.approx(16 / np.tan(np.radians(30.0)))
    # Same seed: same room, objects and camera path; only the lens changes.
    assert np.array_equal(varied.camera_to_world, fixed.camera_to_world)
    assert np.array_equal(SceneGenerator(cfg).generate(11).rgb, varied.rgb)


def test_synthetic_fov_option_reaches_the_training_clips():
    from training.readouts_config import ConfigError, parse_args

    cfg = parse_args(["--synthetic-fov", "45", "100", "--canonical-focal-px", "156", "--depth-ssi-weight", "1"])
    assert cfg.synthetic_fov == (45.0, 100.0) and cfg.canonical_focal_px == 156.0
    assert parse_args([]).synthetic_fov is None and parse_args([]).canonical_focal_px is None
    for bad in (["--synthetic-fov", "100", "45"], ["--canonical-focal-px", "0"], ["--depth-ssi-weight", "-1"]):
        with pytest.raises(ConfigError):
            parse_args(bad)


def test_real_zoom_option_needs_real_clips_and_a_range():
    from training.readouts_config import ConfigError, parse_args

    cfg = parse_args(["--real", "samples/hololens_000", "--real-zoom", "1.25", "2.5"])
    assert cfg.real_zoom == (1.25, 2.5) and parse_args([]).real_zoom is None
    for bad in (["--real-zoom", "1.25", "2.5"], ["--real", "samples/hololens_000", "--real-zoom", "2.5", "1.25"],
                ["--real", "samples/hololens_000", "--real-zoom", "0.5", "2"]):
        with pytest.raises(ConfigError, match="--real-zoom"):
            parse_args(bad)
