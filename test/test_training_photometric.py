"""The photometric (view synthesis) loss that trains the depth head on unlabelled video
(training/photometric.py), and its place in readout training."""

from __future__ import annotations

import pytest
import torch

from fourds_ros.model import ModelConfig, load_checkpoint
from training.data import SyntheticLabelledClips
from training.photometric import photometric_loss, relative_pose, warp
from training.train_readouts import main, parse_args, train

from .conftest import SHARED_DATA, require
from .test_training_readouts import COMMON


@pytest.fixture(scope="module")
def rendered() -> dict:
    """Four synthetic clips (8 frames, 64 px) with their true depth, motion and intrinsics."""
    cfg = ModelConfig(size="tiny", num_frames=8, image_size=(64, 64), patch_size=(2, 16, 16))
    items = [SyntheticLabelledClips(cfg, {"num_tracks": 8}, 4, offset=0)[i] for i in range(4)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    depth = batch["depth"].clone()
    depth[depth <= 0] = depth[depth > 0].median()  # the generator's rare empty pixels
    return batch | {"depth": depth}


def _loss(batch: dict, depth=None, rotation=None, translation=None) -> float:
    loss, _ = photometric_loss(batch["video"], batch["depth"] if depth is None else depth,
                               batch["pose_rotation"] if rotation is None else rotation,
                               batch["clip_translation"] if translation is None else translation,
                               batch["intrinsics"])
    return float(loss)


@pytest.fixture(scope="module")
def clips(rendered) -> dict:
    """The rendered clips with their translation in units of each clip's geometric-mean depth,
    the unit the loss reads it in."""
    unit = torch.exp(torch.log(rendered["depth"]).mean((1, 2, 3)))
    return rendered | {"clip_translation": rendered["pose_translation"] / unit[:, None, None]}


def test_the_true_depth_and_motion_synthesise_the_neighbours_best(clips):
    """With the clips' true depth and motion the warped neighbours match each frame better than
    with the translation's size wrong, a flat depth, the motion reversed or inverted, or no
    motion: the loss points at the truth (and at the pose head's T_first_from_t convention)."""
    true = _loss(clips)
    depth, translation = clips["depth"], clips["clip_translation"]
    assert true < 0.95 * min(_loss(clips, translation=translation * s) for s in (0.5, 1.5, 2.0))
    assert true < 0.97 * _loss(clips, depth=torch.full_like(depth, float(depth.median())))
    assert true < 0.5 * _loss(clips, translation=-translation)
    assert true < 0.5 * _loss(clips, rotation=clips["pose_rotation"].transpose(-1, -2))
    still = torch.eye(3).expand_as(clips["pose_rotation"])
    assert true < 0.5 * _loss(clips, rotation=still, translation=torch.zeros_like(translation))


def test_the_loss_is_blind_to_the_depth_scale_and_pulls_its_shape_to_the_truth(clips):
    """Each clip's depth scale is left to the labelled clips: scaling a clip's depth changes
    nothing. Its shape is taught: one step on a depth with its contrast exaggerated
    (log depth 1.4x as far from its mean) points back to the truth."""
    depth = clips["depth"]
    # float32 rounding only (1.6e-6 on an AVX2 CPU, less with AVX-512); a loss that saw the scale
    # would move by orders of magnitude more, since 3x the depth moves every warped pixel.
    assert abs(_loss(clips, depth=depth * 3.0) - _loss(clips)) < 1e-5
    log_depth = torch.log(depth)
    mean = log_depth.mean((1, 2, 3), keepdim=True)
    contrast = torch.tensor(0.4, requires_grad=True)
    exaggerated = torch.exp(mean + (1 + contrast) * (log_depth - mean))
    loss, parts = photometric_loss(clips["video"], exaggerated, clips["pose_rotation"], clips["clip_translation"],
                                   clips["intrinsics"])
    loss.backward()
    assert torch.isfinite(contrast.grad) and contrast.grad > 0
    assert 0.0 <= float(parts["photo_masked"]) < 0.5


def test_warp_without_motion_is_the_identity_and_poses_compose():
    """No motion warps every pixel onto itself, inside the image; T_s_from_t composed with
    T_first_from_s is T_first_from_t."""
    image = torch.rand(2, 3, 16, 20)
    k = torch.tensor([[18.0, 0, 9.5], [0, 18.0, 7.5], [0, 0, 1]]).expand(2, 3, 3)
    warped, inside = warp(image, torch.full((2, 16, 20), 2.0), k, torch.eye(3).expand(2, 3, 3), torch.zeros(2, 3))
    assert torch.allclose(warped, image, atol=1e-5) and inside.all()
    angles = torch.tensor([[0.0, 0.1, 0.3], [0.0, -0.2, 0.4]])
    rotation = torch.stack([torch.stack([torch.tensor([[a.cos(), -a.sin(), 0], [a.sin(), a.cos(), 0], [0, 0, 1.0]])
                                         for a in row]) for row in angles])
    translation = torch.randn(2, 3, 3)
    translation[:, 0] = 0
    r_st, t_st = relative_pose(rotation, translation, target=2, source=1)
    assert torch.allclose(rotation[:, 1] @ r_st, rotation[:, 2], atol=1e-6)
    assert torch.allclose((rotation[:, 1] @ t_st[..., None])[..., 0] + translation[:, 1], translation[:, 2], atol=1e-6)


def test_photometric_training_moves_the_depth_head_and_never_the_shipped_pose_head(tmp_path, capsys):
    """--photometric: unlabelled video trains the depth head through a throw-away copy of the pose
    head; the saved pose head, tracks head and encoder keep every weight. It needs the depth head
    trained and a pose head in the model."""
    video = require(SHARED_DATA / "videos_unlabelled" / "cotracker_cat.mp4")
    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "1", "--out", str(first)]))
    assert main(COMMON + ["--init", str(first), "--train-heads", "tracks", "--photometric", str(video),
                          "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    assert "--photometric" in capsys.readouterr().err
    out = tmp_path / "photo"
    result = train(parse_args(COMMON + ["--init", str(first), "--train-heads", "depth", "--cache-features",
                                        "--flip", "--photometric", str(video), "--photometric-batch", "2",
                                        "--steps", "3", "--out", str(out)]))
    assert len(result["loss"]) == 3 and all(torch.isfinite(torch.tensor(result["loss"])))
    a, b = load_checkpoint(first).state_dict(), load_checkpoint(out).state_dict()
    moved = {k.split(".")[1] if k.startswith("heads.") else k.split(".")[0] for k in a if not torch.equal(a[k], b[k])}
    assert moved == {"depth"}, moved
    assert f"--photometric, training/photometric.py): {video} (weight 1.0, 2 clips" in (out / "README.md").read_text()


@pytest.mark.parametrize("finetune", [False, True])
def test_the_photometric_term_reaches_the_encoder_only_when_it_trains(tiny_model_dir, finetune):
    """With --finetune the view-synthesis loss trains the encoder as well (what a GPU run of it is
    for); on a frozen encoder it reaches the depth head and the pose head's copy only."""
    import copy

    from training.readouts_model import photometric_losses

    model = load_checkpoint(tiny_model_dir).float()
    for p in model.parameters():
        p.requires_grad_(True)
    pose_copy = copy.deepcopy(model.heads["pose"])
    batch = {"video": torch.rand(2, 4, 32, 32, 3),
             "intrinsics": torch.tensor([[28.0, 0, 15.5], [0, 28.0, 15.5], [0, 0, 1]]).expand(2, 3, 3)}
    loss, _ = photometric_losses(model, pose_copy, batch, finetune)
    loss.backward()
    def reached(module):
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert reached(model.heads["depth"]) and reached(pose_copy)
    assert reached(model.encoder) == finetune and not reached(model.heads["pose"])


def test_the_photometric_term_reaches_the_tuned_blocks_through_a_cached_trunk():
    """--finetune-blocks with --cache-features: the unlabelled clips' cached trunk runs through the
    tuned block, which the view-synthesis loss trains; the blocks before it get nothing."""
    import copy

    from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights
    from training.readouts_model import photometric_losses, trunk_tokens

    model = init_weights(FourDS(ModelConfig(size="tiny", num_frames=4, image_size=(32, 32), patch_size=(2, 8, 8),
                                            heads=default_heads(64, 2))), seed=0)
    model.requires_grad_(False)
    model.encoder.blocks[1].requires_grad_(True)  # the last of the 2 blocks the readout uses
    model.heads["depth"].requires_grad_(True)
    video = torch.rand(2, 4, 32, 32, 3)
    batch = {"video": video, "trunk": trunk_tokens(model, video, 1).half(),
             "intrinsics": torch.tensor([[28.0, 0, 15.5], [0, 28.0, 15.5], [0, 0, 1]]).expand(2, 3, 3)}
    loss, _ = photometric_losses(model, copy.deepcopy(model.heads["pose"]).requires_grad_(True), batch, False, 1)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.blocks[1].parameters()
               if p.ndim > 1)
    assert all(p.grad is None for p in model.encoder.blocks[0].parameters())
