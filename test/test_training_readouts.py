"""Readout training: each head overfits a small synthetic set; frozen vs fine-tuned encoder;
the output dir is a node-loadable checkpoint with a model card."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from fourds_ros.model import load_checkpoint
from training.train_readouts import main, parse_args, train

COMMON = ["--train-clips", "2", "--val-clips", "1", "--batch-size", "2", "--num-tracks", "16",
          "--no-progress", "--lr", "3e-3", "--clip", "4x32x32", "--size", "tiny"]


@pytest.mark.parametrize("head,steps", [("depth", 80), ("tracks", 80), ("pose", 80)])
def test_each_head_overfits_a_small_synthetic_set(tmp_path, head, steps):
    args = parse_args(COMMON + ["--heads", head, "--steps", str(steps), "--out", str(tmp_path / head)])
    result = train(args)
    loss = result["loss"]
    assert len(loss) == steps
    first, last = sum(loss[:5]) / 5, sum(loss[-5:]) / 5
    assert last < 0.5 * first, (head, first, last)
    model = load_checkpoint(tmp_path / head)
    assert list(model.config.heads) == [head]
    card = (tmp_path / head / "README.md").read_text()
    assert f"Steps: {steps}" in card and "python -m training.train_readouts" in card
    log = json.loads((tmp_path / head / "training_log.json").read_text())
    assert log["final"] and all(v == v for v in log["final"].values())  # finite held-aside metrics


@pytest.mark.parametrize("finetune", [False, True])
def test_frozen_encoder_stays_frozen_and_finetune_moves_it(tmp_path, tiny_model_dir, finetune):
    backbone = load_checkpoint(tiny_model_dir)
    argv = ["--backbone", str(tiny_model_dir), "--heads", "depth", "pose", "--steps", "3",
            "--train-clips", "2", "--val-clips", "1", "--batch-size", "2", "--no-progress",
            "--out", str(tmp_path / "m")] + (["--finetune"] if finetune else [])
    assert main(argv) == 0
    model = load_checkpoint(tmp_path / "m")
    assert model.config.size == backbone.config.size and set(model.config.heads) == {"depth", "pose"}
    same = all(torch.equal(a, b) for a, b in zip(model.encoder.state_dict().values(),
                                                  backbone.encoder.state_dict().values()))
    assert same != finetune
    out = model(torch.rand(1, *model.config.clip_shape))
    assert out["depth"].shape == (1, 4, 32, 32) and (out["depth"] > 0).all()


def test_init_continues_a_trained_model(tmp_path, capsys):
    """--init starts from a full model (encoder and heads) rather than fresh heads: with lr 0 the
    result is that model unchanged."""
    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "3", "--out", str(first)]))
    start = load_checkpoint(first)
    # the scenes the start model records having trained on (as models/fourds_default does) stay its record: eval-suite
    # notes a fold validating one of them, and a team's model trained on from the shipped one lost the note (review)
    (first / "training_scenes.json").write_text('{"scenes": ["7scenes_redkitchen"]}\n')
    assert main(COMMON + ["--init", str(first), "--steps", "1", "--lr", "0",
                          "--out", str(tmp_path / "same")]) == 0  # lr 0: nothing moves
    same = load_checkpoint(tmp_path / "same")
    assert all(torch.equal(a, b) for a, b in zip(start.state_dict().values(), same.state_dict().values()))
    assert "Initialised from" in (tmp_path / "same" / "README.md").read_text()
    assert (tmp_path / "same" / "training_scenes.json").read_text() == '{"scenes": ["7scenes_redkitchen"]}\n'
    assert main(COMMON + ["--init", str(first), "--heads", "depth", "--steps", "1",
                          "--out", str(tmp_path / "x")]) == 2
    assert "has heads" in capsys.readouterr().err


def test_the_init_models_training_scenes_follow_its_progress_and_no_stale_record_stays(tmp_path):
    """The --init model's training_scenes.json goes into the run's progress too (OUT/checkpoint): a run stopped and
    continued with --init OUT/checkpoint, as the program says, lost the record for good, and eval-suite's note with
    it (review). A later run into the same --out from a model recording none leaves no record of the earlier one."""
    first, out = tmp_path / "first", tmp_path / "out"
    train(parse_args(COMMON + ["--steps", "2", "--out", str(first)]))
    (first / "training_scenes.json").write_text('{"scenes": ["7scenes_redkitchen"]}\n')
    assert main(COMMON + ["--init", str(first), "--steps", "2", "--save-every", "1", "--out", str(out)]) == 0
    assert (out / "checkpoint" / "training_scenes.json").is_file()
    assert main(COMMON + ["--init", str(out / "checkpoint"), "--steps", "1", "--out", str(tmp_path / "on")]) == 0
    assert "7scenes_redkitchen" in (tmp_path / "on" / "training_scenes.json").read_text()
    (first / "training_scenes.json").unlink()
    assert main(COMMON + ["--init", str(first), "--steps", "1", "--out", str(tmp_path / "on")]) == 0
    assert not (tmp_path / "on" / "training_scenes.json").exists()


def test_new_heads_on_a_backbone_keep_its_training_scenes(tmp_path, tiny_model_dir):
    """Heads trained on --backbone's encoder (no --init) learned on what that encoder learned from: its record of the
    scenes it trained on is copied, so eval-suite still notes a fold validating one (new heads on the shipped encoder
    had no record and no note; session 72's review). A backbone recording none leaves none. Given with --init (a
    model with that encoder), --init's record is the one kept: its heads trained on more than the encoder did (taking
    the backbone's first passed every test: mutation review)."""
    record = '{"scenes": ["7scenes_redkitchen"]}\n'
    backbone, init = tmp_path / "backbone", tmp_path / "init"
    shutil.copytree(tiny_model_dir, backbone)
    argv = ["--backbone", str(backbone), "--heads", "depth", "--steps", "1", "--train-clips", "2", "--val-clips", "1",
            "--batch-size", "2", "--no-progress", "--out", str(tmp_path / "m")]
    assert main(argv) == 0 and not (tmp_path / "m" / "training_scenes.json").exists()
    (backbone / "training_scenes.json").write_text(record)
    assert main(argv) == 0
    assert (tmp_path / "m" / "training_scenes.json").read_text() == record
    shutil.copytree(tiny_model_dir, init)
    heads_record = '{"scenes": ["7scenes_redkitchen", "hololens_walk"]}\n'
    (init / "training_scenes.json").write_text(heads_record)
    assert main([a for a in argv if a not in ("--heads", "depth")] + ["--init", str(init)]) == 0  # its heads
    assert (tmp_path / "m" / "training_scenes.json").read_text() == heads_record


def test_the_init_models_training_scenes_follow_its_selection_and_a_continuation_into_its_own_out(tmp_path):
    """The record goes into OUT/selected too (a stopped --select-on run's choice, which eval-suite may score), and a
    run continued with --init OUT/checkpoint into its own OUT, whose progress is the record's own folder, copies it
    onto itself: neither was tested (mutation review: without the same-file check shutil raised SameFileError at the
    first save of that documented continuation)."""
    first, out = tmp_path / "first", tmp_path / "out"
    train(parse_args(COMMON + ["--steps", "1", "--out", str(first)]))
    record = '{"scenes": ["7scenes_redkitchen"]}\n'
    (first / "training_scenes.json").write_text(record)
    assert main(SAVED + ["--init", str(first), "--steps", "2", "--select-on", SAMPLE, "--out", str(out)]) == 0
    assert (out / "selected" / "training_scenes.json").read_text() == record
    assert main(SAVED + ["--init", str(out / "checkpoint"), "--steps", "2", "--out", str(out)]) == 0
    assert (out / "checkpoint" / "training_scenes.json").read_text() == record
    assert (out / "training_scenes.json").read_text() == record


def test_bad_heads_are_a_clear_error(tmp_path, capsys):
    assert main(["--heads", "nope", "--out", str(tmp_path / "x"), "--steps", "1"]) == 2
    assert "heads must be" in capsys.readouterr().err


def test_an_out_it_cannot_write_is_one_line(tmp_path, capsys):
    """An --out under a file (or /sys) was a PermissionError / NotADirectoryError traceback."""
    (tmp_path / "a_file").write_text("")
    assert main(COMMON + ["--steps", "1", "--out", str(tmp_path / "a_file" / "out")]) == 2
    assert "a_file" in capsys.readouterr().err


def test_real_sequences_join_the_training_set(tmp_path):
    """--real adds overlapping clips of a real RGB-D sequence (with geometric tracks)."""
    from .conftest import SHARED_DATA, require

    seq = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    out = tmp_path / "real"
    result = train(parse_args(["--steps", "2", "--train-clips", "1", "--val-clips", "1",
                               "--batch-size", "2", "--real", str(seq), "--out", str(out),
                               "--no-progress"]))
    assert len(result["loss"]) == 2 and all(torch.isfinite(torch.tensor(result["loss"])))
    # 30 frames, 4-frame clips, hop 2: starts 0, 2, ..., 26 -> 14 clips.
    assert f"{seq} (14 clips)" in (out / "README.md").read_text()


def test_a_bag_trains_as_the_recording_it_was_made_from(tmp_path):
    """--real and --select-on also take a bag in the evaluation layout (`bag convert`, or `bag
    import` of a team's own RGB-D camera): its clips equal those of the folder it came from."""
    import numpy as np

    from fourds_ros.cli import main as cli
    from training.data.datasets import BagSequence, RGBDClips

    from .conftest import SHARED_DATA, require

    seq = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    bag = tmp_path / "walk_bag"
    assert cli(["bag", "convert", "--format", "hololens", str(seq), str(bag)]) == 0
    assert isinstance(RGBDClips(str(bag), 4, (32, 32)).seq, BagSequence)
    from_folder, from_bag = (RGBDClips(str(p), 4, (32, 32), hop=5, num_tracks=8, seed=3) for p in (seq, bag))
    assert len(from_folder) == len(from_bag) == 6
    for i in (0, 5):
        a, b = from_folder[i], from_bag[i]
        assert a.keys() == b.keys()
        for key in a:
            # 1e-3: the bag stores each pose as a quaternion, which moves projected track positions by ~1e-4 px
            np.testing.assert_allclose(np.asarray(a[key], np.float64), np.asarray(b[key], np.float64), atol=1e-3,
                                       err_msg=key)
    out = tmp_path / "real"
    result = train(parse_args(["--steps", "2", "--train-clips", "1", "--val-clips", "1", "--batch-size", "2",
                               "--real", str(bag), "--out", str(out), "--no-progress"]))
    assert len(result["loss"]) == 2 and all(torch.isfinite(torch.tensor(result["loss"])))
    assert f"{bag} (14 clips)" in (out / "README.md").read_text()


def test_a_bag_eval_refuses_is_not_trained_on(tmp_path, monkeypatch):
    """A team's raw recording whose camera_info declares lens distortion (or a roi window) is refused by eval
    (`bag import` it first: it undistorts); --real trained on its distorted frames with K alone, labels 0.5 px
    (median) to 2.9 px (outer band, p90) off at 128 px on TUM's lens, and images the node never sees. Refused,
    with eval's reason."""
    import numpy as np

    import fourds_ros.evaluation.bag as bag
    from fourds_ros.rgbd import DatasetFormatError
    from training.data.datasets import open_sequence

    plain = bag.camera_info_msg

    def with_lens(*args, **kwargs):
        msg = plain(*args, **kwargs)
        msg.d = np.array([0.26, -0.95, -0.005, 0.003, 1.16])  # TUM fr1's Kinect
        return msg
    k = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    frames = [bag.Frame(stamp_ns=i * 33_000_000, K=k, image=np.full((48, 64, 3), 100, np.uint8),
                        gt_depth=np.full((48, 64), 2.0, np.float32), gt_pose=np.eye(4)) for i in range(3)]
    bag.write_bag(frames, tmp_path / "pinhole")
    assert np.allclose(open_sequence(tmp_path / "pinhole").intrinsics, k)
    monkeypatch.setattr(bag, "camera_info_msg", with_lens)
    bag.write_bag(frames, tmp_path / "distorted")
    with pytest.raises(DatasetFormatError, match="distortion"):
        open_sequence(tmp_path / "distorted")


def _reproject(batch: dict, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Track positions predicted from the labels themselves: each query pixel back-projected with
    its depth, moved by T_first_from_t and projected into every frame. Returns (pred, target)
    over the visible track frames of clip b."""
    K = batch["intrinsics"][b]
    t0, y, x = batch["query_points"][b].unbind(-1)
    ti = t0.long()
    z = batch["depth"][b][ti, y.round().long(), x.round().long()]
    cam = z[:, None] * torch.stack([(x - K[0, 2]) / K[0, 0], (y - K[1, 2]) / K[1, 1], torch.ones_like(x)], -1)
    R, tr = batch["pose_rotation"][b], batch["pose_translation"][b]
    first = torch.einsum("qij,qj->qi", R[ti], cam) + tr[ti]  # query point in camera 0
    in_t = torch.einsum("tji,qtj->qti", R, first[:, None] - tr[None])  # R^T (p - t) per frame
    uv = torch.stack([K[0, 0] * in_t[..., 0] / in_t[..., 2] + K[0, 2],
                      K[1, 1] * in_t[..., 1] / in_t[..., 2] + K[1, 2]], -1)
    vis = batch["tracks_visible"][b] > 0.5
    return uv[vis], batch["tracks_xy"][b][vis]


def test_mirroring_keeps_the_labels_consistent():
    """A mirrored clip's tracks still follow from its depth, intrinsics and mirrored poses."""
    from fourds_ros.model import ModelConfig
    from training.data import SyntheticLabelledClips
    from training.readouts_data import concat_banks, materialize, mirror, take

    cfg = ModelConfig(size="tiny", num_frames=4, image_size=(32, 32), patch_size=(2, 8, 8))
    bank = materialize(SyntheticLabelledClips(cfg, {"num_tracks": 16}, 2, offset=7), 1, torch.device("cpu"))
    batch = take(bank, torch.arange(2))
    flipped = mirror(batch, torch.tensor([True, False]))
    off_centre = {**batch, "intrinsics": batch["intrinsics"].clone()}
    off_centre["intrinsics"][:, 0, 2] = 10.0  # a zoomed or real clip's principal point: mirrored with the clip
    assert mirror(off_centre, torch.tensor([True, False]))["intrinsics"][:, 0, 2].tolist() == [32 - 1 - 10.0, 10.0]
    for b in (0, 1):
        # The labels are self-consistent (up to queries on depth edges, where the rounded pixel's
        # depth belongs to the other surface), and mirroring keeps them so.
        for labels in (batch, flipped):
            pred, target = _reproject(labels, b)
            assert (pred - target).norm(dim=-1).quantile(0.8) < 0.01
    assert torch.equal(flipped["video"][0], batch["video"][0].flip(2))
    assert torch.equal(flipped["video"][1], batch["video"][1])
    assert concat_banks([batch, batch])["video"].shape[0] == 4


def test_clips_played_backwards_keep_the_labels_consistent():
    """A clip played backwards: its tracks still follow from its depth, intrinsics and re-expressed
    poses; its motion is that of the ground truth's camera poses in reverse order; twice is the clip."""
    from fourds_ros.model import ModelConfig
    from fourds_ros.rgbd import relative_poses
    from training.data import SyntheticLabelledClips
    from training.readouts_data import materialize, played_backwards, take

    cfg = ModelConfig(size="tiny", num_frames=4, image_size=(32, 32), patch_size=(2, 8, 8))
    clips = SyntheticLabelledClips(cfg, {"num_tracks": 16}, 2, offset=7)
    bank = materialize(clips, 1, torch.device("cpu"))
    batch = take(bank, torch.arange(2))
    backwards = played_backwards(batch)
    for b in (0, 1):
        pred, target = _reproject(backwards, b)
        assert (pred - target).norm(dim=-1).quantile(0.8) < 0.01
        c2w = clips.generator.generate(7 + b).camera_to_world
        rotation, translation = relative_poses(c2w[::-1].copy())
        assert torch.allclose(backwards["pose_rotation"][b], torch.from_numpy(rotation).float(), atol=1e-4)
        assert torch.allclose(backwards["pose_translation"][b], torch.from_numpy(translation).float(), atol=1e-4)
        # It moved: a wrong re-expression (the old poses reversed) would not match.
        assert not torch.allclose(backwards["pose_translation"][b], batch["pose_translation"][b].flip(0), atol=1e-3)
    assert torch.equal(backwards["video"][:, 0], batch["video"][:, -1])
    twice = played_backwards(backwards)
    for key in batch:
        assert torch.allclose(twice[key], batch[key], atol=1e-5), key


def _train_on_the_walk_with(flag: str, tmp_path, capsys) -> tuple[str, str]:
    """`flag` refused without --real, then 2 steps on the HoloLens walk with it -> (the walk's path,
    the run's model card)."""
    from .conftest import SHARED_DATA, require

    seq = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    assert main(COMMON + [flag, "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    assert flag in capsys.readouterr().err
    out = tmp_path / flag.strip("-")
    result = train(parse_args(COMMON + [flag, "--real", str(seq), "--steps", "2", "--out", str(out)]))
    assert len(result["loss"]) == 2 and all(torch.isfinite(torch.tensor(result["loss"])))
    return str(seq), (out / "README.md").read_text()


def test_reverse_doubles_each_real_sequence(tmp_path, capsys):
    seq, card = _train_on_the_walk_with("--reverse", tmp_path, capsys)
    # 30 frames, 4-frame clips, hop 2: 14 clips, and 14 backwards.
    assert f"{seq} (28 clips)" in card and "played backwards too (--reverse" in card


def test_first_frame_queries_move_only_points_visible_in_frame_0():
    from training.readouts_data import requery_first_frame

    xy = torch.tensor([[[[3.0, 4.0], [5.0, 6.0]], [[7.0, 8.0], [9.0, 10.0]], [[1.0, 2.0], [3.0, 4.0]]]])
    batch = {"query_points": torch.tensor([[[1.0, 6.0, 5.0], [1.0, 10.0, 9.0], [1.0, 4.0, 3.0]]]),
             "tracks_xy": xy, "tracks_visible": torch.tensor([[[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]]])}
    moved = requery_first_frame(batch, torch.tensor([[True, True, False]]))
    # The first moves to its frame-0 label; the second is hidden in frame 0; the third not chosen.
    assert moved["query_points"].tolist() == [[[0.0, 4.0, 3.0], [1.0, 10.0, 9.0], [1.0, 4.0, 3.0]]]
    assert moved["tracks_xy"] is xy and batch["query_points"][0, 0, 0] == 1.0


def test_real_sequences_are_sampled_equally():
    from training.readouts_data import balanced_indices

    idx = balanced_indices([900, 30, 70], 30000, torch.Generator().manual_seed(0))
    counts = torch.bincount(torch.bucketize(idx, torch.tensor([900, 930]), right=True), minlength=3)
    assert idx.min() >= 0 and idx.max() < 1000
    assert ((counts / 30000 - 1 / 3).abs() < 0.02).all(), counts
    assert len(set(idx[idx >= 930].tolist())) == 70  # every clip of a part is drawn


def test_time_budget_shortens_the_run(tmp_path):
    args = parse_args(COMMON + ["--steps", "100000", "--time-budget", "3", "--out", str(tmp_path / "b")])
    result = train(args)
    assert 25 <= len(result["loss"]) < 100000


def test_steps_within_budget():
    from training.budget import steps_within_budget

    # 20 steps took 10 s: 30 s left at 0.5 s/step fit 60 more steps.
    assert steps_within_budget(1000, 20, 10.0, 40.0) == 80
    assert steps_within_budget(50, 20, 10.0, 40.0) == 50  # never beyond the configured total
    assert steps_within_budget(1000, 20, 50.0, 40.0) == 20  # over budget already: stop here
    # The pace after warm-up, not the slow first steps: 30 s left at 0.1 s/step.
    assert steps_within_budget(1000, 20, 10.0, 40.0, per_step_s=0.1) == 320


def test_cached_features_train_the_heads_like_the_encoder_pass(tmp_path, tiny_model_dir, capsys):
    """--cache-features runs the frozen encoder once per clip: the first step's loss is the one of
    the per-step encoder pass (float16 cache), the encoder is untouched, and with --flip the bank
    holds each clip's mirror image with that image's own features."""
    argv = ["--backbone", str(tiny_model_dir), "--steps", "2", "--train-clips", "3", "--val-clips", "1",
            "--batch-size", "2", "--num-tracks", "8", "--no-progress", "--lr", "0"]
    plain = train(parse_args(argv + ["--out", str(tmp_path / "plain")]))
    cached = train(parse_args(argv + ["--cache-features", "--out", str(tmp_path / "cached")]))
    assert cached["loss"] == pytest.approx(plain["loss"], rel=1e-2)
    backbone = load_checkpoint(tiny_model_dir)
    model = load_checkpoint(tmp_path / "cached")
    assert all(torch.equal(a, b) for a, b in zip(model.encoder.state_dict().values(),
                                                  backbone.encoder.state_dict().values()))

    from training.data import SyntheticLabelledClips
    from training.readouts_data import cache_features, materialize

    bank = materialize(SyntheticLabelledClips(backbone.config, {"num_tracks": 8}, 2, offset=0), 1,
                       torch.device("cpu"))
    doubled = cache_features(backbone, bank, flip=True)
    assert doubled["video"].shape[0] == 4 and torch.equal(doubled["video"][2], bank["video"][0].flip(2))
    with torch.no_grad():
        first = backbone.features(bank["video"][:1].float() / 255)
        mirrored = backbone.features(bank["video"][:1].flip(3).float() / 255)
    torch.testing.assert_close(doubled["features"][0:1].float(), first, atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(doubled["features"][2:3].float(), mirrored, atol=2e-2, rtol=1e-2)
    assert not torch.allclose(first, mirrored, atol=2e-2)
    assert main(argv + ["--cache-features", "--finetune", "--out", str(tmp_path / "x")]) == 2
    assert "frozen encoder" in capsys.readouterr().err


def test_the_cached_trunk_through_the_tuned_blocks_is_the_encoder_pass():
    """--finetune-blocks N caches the tokens before the last N blocks the readout uses; those
    blocks on the cache give the features of the whole encoder pass, for every N."""
    from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights
    from training.readouts_model import features_from_trunk, trunk_tokens

    model = init_weights(FourDS(ModelConfig(size="tiny", num_frames=4, image_size=(32, 32), patch_size=(2, 8, 8),
                                            heads=default_heads(64, 2))), seed=1).eval()
    assert model.readout_blocks == 2 < len(model.encoder.blocks)  # the readout skips the last blocks
    video = torch.rand(2, 4, 32, 32, 3)
    with torch.no_grad():
        whole = model.features(video)
        for n in range(model.readout_blocks + 1):
            trunk = trunk_tokens(model, video, n)
            torch.testing.assert_close(features_from_trunk(model, trunk, n), whole)
        # and the trunk is what it says: the input of the tuned blocks, not the readout state
        assert not torch.allclose(model.encoder_to_readout(trunk_tokens(model, video, 1)), whole)


def test_finetune_blocks_trains_only_the_last_blocks_on_a_cached_trunk(tmp_path, capsys):
    """--finetune-blocks 1 --cache-features: the last block the readout uses and the heads move;
    the tubelet embedding, the earlier blocks and the blocks past the readout keep their weights;
    the first step's loss is the one of the per-step encoder pass (float16 cache)."""
    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "1", "--lr", "0", "--out", str(first)]))
    start = load_checkpoint(first)
    argv = COMMON + ["--init", str(first), "--steps", "2", "--finetune-blocks", "1"]
    plain = train(parse_args(argv + ["--lr", "0", "--out", str(tmp_path / "plain")]))
    cached = train(parse_args(argv + ["--cache-features", "--out", str(tmp_path / "cached")]))
    assert cached["loss"][0] == pytest.approx(plain["loss"][0], rel=1e-2)
    model = load_checkpoint(tmp_path / "cached")
    moved = {name for name, w in model.state_dict().items() if not torch.equal(w, start.state_dict()[name])}
    assert {n.split(".")[2] for n in moved if n.startswith("encoder.blocks.")} == {"1"}
    assert not any(n.startswith("encoder.") and not n.startswith("encoder.blocks.") for n in moved)
    assert any(n.startswith("heads.depth.") for n in moved) and any(n.startswith("heads.pose.") for n in moved)
    assert "last 1 readout blocks" in (tmp_path / "cached" / "README.md").read_text()
    for bad, said in [(["--finetune-blocks", "1", "--finetune"], "give one"),
                      (["--finetune-blocks", "3"], "the readout uses 2 encoder blocks")]:
        assert main(COMMON + ["--init", str(first), "--steps", "1", "--out", str(tmp_path / "x")] + bad) == 2
        assert said in capsys.readouterr().err


def test_a_head_held_out_of_train_heads_keeps_its_weights_and_still_trains_the_tuned_blocks(tmp_path):
    """--finetune-blocks 1 --train-heads depth pose: the tracks head keeps its weights bit for bit
    while the depth head and the tuned block move, and its loss still counts (the first step's loss
    equals that of the run training every head); a held head needs --init."""
    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "1", "--lr", "0", "--out", str(first)]))
    start = load_checkpoint(first).state_dict()
    argv = COMMON + ["--init", str(first), "--steps", "2", "--finetune-blocks", "1", "--cache-features"]
    cfg = parse_args(argv + ["--train-heads", "depth", "pose", "--out", str(tmp_path / "held")])
    assert cfg.trained_heads == ("depth", "pose") and set(cfg.loss_heads) == {"depth", "tracks", "pose"}
    assert cfg.held_heads == ("tracks",)
    held = train(cfg)
    model = load_checkpoint(tmp_path / "held").state_dict()
    assert all(torch.equal(w, start[n]) for n, w in model.items() if n.startswith("heads.tracks."))
    assert any(not torch.equal(w, start[n]) for n, w in model.items() if n.startswith("heads.depth."))
    block = [n for n in model if n.startswith("encoder.blocks.1.")]
    assert any(not torch.equal(model[n], start[n]) for n in block)
    assert "tracks held" in (tmp_path / "held" / "README.md").read_text()
    both = train(parse_args(argv + ["--out", str(tmp_path / "all")]))  # same start and batches, tracks trained too
    assert held["loss"][0] == pytest.approx(both["loss"][0], rel=1e-6)  # step 1: the same three losses
    without = parse_args(COMMON + ["--init", str(first), "--steps", "2", "--lr", "0", "--train-heads", "depth",
                                   "pose", "--out", str(tmp_path / "frozen")])
    assert without.loss_heads == ("depth", "pose")  # a frozen encoder: only the trained heads run
    with pytest.raises(ValueError, match="give --init"):  # a random head must not shape the encoder
        parse_args(COMMON + ["--finetune-blocks", "1", "--train-heads", "depth", "--out", str(tmp_path / "x")])


def test_softargmax_temperature_changes_the_config_not_the_weights(tmp_path):
    """--softargmax-temperature with --init: the trained weights in a model whose tracks head
    config carries the new temperature (lr 0: every weight unchanged)."""
    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "2", "--out", str(first)]))
    assert load_checkpoint(first).config.heads["tracks"].softargmax_temperature == 0.0
    assert main(COMMON + ["--init", str(first), "--softargmax-temperature", "12", "--steps", "1", "--lr", "0",
                          "--out", str(tmp_path / "sharp")]) == 0
    start, sharp = load_checkpoint(first), load_checkpoint(tmp_path / "sharp")
    assert sharp.config.heads["tracks"].softargmax_temperature == 12.0
    assert sharp.heads["tracks"].softargmax_temperature == 12.0
    assert all(torch.equal(a, b) for a, b in zip(start.state_dict().values(), sharp.state_dict().values()))


def test_train_heads_trains_only_those_heads(tmp_path):
    """--train-heads pose: the pose head moves, the encoder and the other heads keep every weight."""
    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "2", "--out", str(first)]))
    assert main(COMMON + ["--init", str(first), "--train-heads", "pose", "--cache-features", "--steps", "3",
                          "--out", str(tmp_path / "pose")]) == 0
    start, after = load_checkpoint(first), load_checkpoint(tmp_path / "pose")
    a, b = start.state_dict(), after.state_dict()
    moved = {k.split(".")[1] if k.startswith("heads.") else k.split(".")[0] for k in a if not torch.equal(a[k], b[k])}
    assert moved == {"pose"}, moved


def test_config_is_typed_and_checked_before_any_work(tmp_path, capsys):
    """parse_args gives a frozen, typed ReadoutsConfig; contradictory or malformed options are
    errors naming the option, before a model is built or a clip rendered."""
    import dataclasses

    from training.readouts_config import ReadoutsConfig

    cfg = parse_args(COMMON + ["--steps", "3", "--heads", "depth", "pose", "--train-heads", "pose"])
    assert isinstance(cfg, ReadoutsConfig) and cfg.clip == (4, 32, 32) and cfg.trained_heads == ("pose",)
    assert cfg.argv[-1] == "pose"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 4
    for argv, message in [(["--clip", "4x32"], "--clip must be TxHxW"),
                          (["--heads", "depth", "--train-heads", "pose"], "the model has heads"),
                          (["--steps", "0"], "must be >= 1"),
                          (["--real-fraction", "1.5"], r"must be in \[0, 1\]")]:
        assert main(COMMON + argv + ["--out", str(tmp_path / "x")]) == 2
        assert message.replace("\\", "") in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_bfloat16_autocast_step_keeps_every_gradient_finite():
    """GPUs train under bfloat16 autocast (fit). There, an einsum in the rotation loss came out
    in bfloat16, the acos clamp rounded to 1, and one step turned every weight to NaN; CPU runs
    (float32) never showed it. CPU autocast reproduces GPU's bfloat16 rounding."""
    from fourds_ros.model import ModelConfig
    from training.data import SyntheticLabelledClips
    from training.losses import geodesic_angle
    from training.readouts_data import materialize, take
    from training.readouts_model import build_model, compute_losses

    eye = torch.eye(3).repeat(2, 1, 1).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        angle = geodesic_angle(eye, torch.eye(3).repeat(2, 1, 1))
    angle.sum().backward()
    assert angle.dtype == torch.float32 and torch.isfinite(eye.grad).all()

    torch.manual_seed(0)
    cfg = ModelConfig(size="tiny", num_frames=4, image_size=(32, 32), patch_size=(2, 8, 8))
    model = build_model(None, "tiny", (4, 32, 32), ["depth", "tracks", "pose"], 32, 2, patch_size=(2, 8, 8),
                        canonical_focal_px=20.0)
    bank = materialize(SyntheticLabelledClips(cfg, {"num_tracks": 16}, 2, offset=3), 1, torch.device("cpu"))
    batch = take(bank, torch.arange(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = compute_losses(model, batch, True, None, ssi_weight=2.0, grad_weight=0.5)
    loss.backward()
    assert torch.isfinite(loss)
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, bad


def test_a_non_finite_loss_stops_the_run_with_a_clear_error(tmp_path, capsys, monkeypatch):
    import training.train_readouts as train_readouts

    real = train_readouts.compute_losses
    calls = []

    def nan_on_third(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), parts

    monkeypatch.setattr(train_readouts, "compute_losses", nan_on_third)
    assert main(COMMON + ["--heads", "depth", "--steps", "10", "--out", str(tmp_path / "m")]) == 2
    assert "non-finite training loss at step 3" in capsys.readouterr().err
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_budget_probe_paces_after_warm_up_and_counts_resumed_steps(monkeypatch):
    """Slow first steps (GPU allocation, kernel selection) do not shorten the run: 5 steps of
    1 s, then 0.1 s a step, 20 s budget -> 7 s spent at step 25, 13 s left fit 130 more."""
    import training.budget as budget_module

    now = [0.0]
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: now[0])
    probe = budget_module.BudgetProbe(20.0)
    fitted = []
    for step in range(1, 40):
        now[0] += 1.0 if step <= 5 else 0.1
        result = probe.after_step(step, step, 10_000)
        if result is not None:
            fitted.append((step, result))
    assert len(fitted) == 1 and fitted[0][0] == 25 and abs(fitted[0][1] - 155) <= 1
    resumed = budget_module.BudgetProbe(20.0)  # a resumed run: 1000 steps done before
    now[0] = 0.0
    for step in range(1, 26):
        now[0] += 0.1
        result = resumed.after_step(step, 1000 + step, 1100)
    assert result == 1100  # 17.5 s left at 0.1 s a step: capped at the scheduled total
    assert budget_module.BudgetProbe(0).after_step(25, 25, 100) is None  # no budget: no change


def test_budget_probe_counts_the_time_spent_between_steps(monkeypatch):
    """A --select-on scoring every --save-every steps is part of the run: 0.1 s steps plus 1 s of
    scoring every 10 steps pace at 0.2 s a step, so 20 s fit half the steps they would alone."""
    import training.budget as budget_module

    now = [0.0]
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: now[0])
    fitted = {}
    for overhead in (0.0, 1.0 / 10):
        now[0] = 0.0
        probe = budget_module.BudgetProbe(20.0, overhead_per_step_s=overhead)
        for step in range(1, 26):
            now[0] += 0.1
            result = probe.after_step(step, step, 10_000)
        fitted[overhead] = result
    assert abs(fitted[0.0] - 200) <= 1 and abs(fitted[0.1] - (25 + 17.5 / 0.2)) <= 1


def test_time_budget_counts_the_selection_scorings(monkeypatch):
    """fit hands the budget probe the step-0 scoring's time spread over --save-every steps."""
    from training import train_readouts

    seen = []

    class Probe(train_readouts.BudgetProbe):
        def __init__(self, budget_s, overhead_per_step_s=0.0):
            seen.append(overhead_per_step_s)
            super().__init__(budget_s, overhead_per_step_s)

    class Selection:
        seconds = 3.0

        def consider(self, model, step):
            return 1.0

    monkeypatch.setattr(train_readouts, "BudgetProbe", Probe)
    cfg = parse_args(COMMON + ["--steps", "2", "--save-every", "4", "--time-budget", "100"])
    model = train_readouts.model_for(cfg)
    banks = train_readouts.load_banks(cfg, model, torch.device("cpu"))
    train_readouts.fit(model, cfg, train_readouts.BatchSampler(cfg, banks, torch.device("cpu")), [], Selection())
    assert seen == [pytest.approx(0.75)]


def _budget_run_factors(schedule, fitted: int, at: int = 25) -> list[float]:
    """The LambdaLR factor of each step of a --time-budget run whose total is fitted after step `at`."""
    factors = [schedule(i) for i in range(at + 1)]
    schedule.fit(fitted, at)
    return factors + [schedule(i) for i in range(at + 1, fitted)]


def _assert_warms_up_without_a_jump(factors: list[float], largest_rise: float) -> None:
    """Non-decreasing up to the peak, which is near the full rate, by at most `largest_rise` a step."""
    rises = [b - a for a, b in zip(factors, factors[1:])]
    peak = max(range(len(factors)), key=factors.__getitem__)
    assert min(rises[:peak], default=0.0) >= 0 and max(rises) <= largest_rise + 1e-9, (peak, max(rises))
    assert factors[peak] > 0.8


@pytest.mark.parametrize("fitted", [105, 600, 4000])
def test_a_time_budget_warms_up_without_a_jump(fitted):
    """Warmed up over 5 % of the --steps placeholder (5000 of 100000) until BudgetProbe fitted the
    total at step 25, steps 1-26 ran at 0.02-0.5 % of the peak rate and step 27 at 86 % (fitted 105)."""
    from training.train_readouts import WarmupCosine

    factors = _budget_run_factors(WarmupCosine(100_000, provisional=True), fitted)
    # one warmup step's rise: the fitted warmup's, or the provisional one's before the fit
    _assert_warms_up_without_a_jump(factors, max(1 / (fitted // 20), 1 / WarmupCosine.PROVISIONAL_WARMUP))
    # The steps after the warmup are the plain schedule of the fitted total.
    plain = WarmupCosine(fitted)
    end = max(range(fitted), key=factors.__getitem__) + 1
    assert factors[end:] == pytest.approx([plain(i) for i in range(end, fitted)], abs=1e-12)


def test_a_run_without_a_time_budget_keeps_its_schedule():
    from training.train_readouts import WarmupCosine

    schedule = WarmupCosine(400)  # warmup 5 % (20 steps), cosine to 0 at the total
    expected = [min(1.0, (i + 1) / 20) * 0.5 * (1 + math.cos(math.pi * i / 400)) for i in range(400)]
    assert [schedule(i) for i in range(400)] == pytest.approx(expected, abs=1e-15)


def test_the_training_loop_fits_the_schedule_without_a_jump(monkeypatch):
    """fit() as --time-budget runs it, the learning rate of each step read from the optimizer:
    the probe fits 105 steps after step 25 (the reviewer's run: 0.5 % of the peak, then 86 %)."""
    from training import train_readouts

    class Probe(train_readouts.BudgetProbe):
        def after_step(self, steps_run, done, total_steps):
            return 105 if steps_run == 25 else None

    def cheap_loss(model, *args, **kwargs):  # the schedule only: no forward pass needed
        return sum(p.sum() for p in model.heads.parameters()) * 0.0, {}

    rates = []
    step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(train_readouts, "BudgetProbe", Probe)
    monkeypatch.setattr(train_readouts, "compute_losses", cheap_loss)
    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    cfg = parse_args(COMMON + ["--heads", "depth", "--steps", "100000", "--time-budget", "100"])
    model = train_readouts.model_for(cfg)
    banks = train_readouts.load_banks(cfg, model, torch.device("cpu"))
    history, _ = train_readouts.fit(model, cfg, train_readouts.BatchSampler(cfg, banks, torch.device("cpu")), [])
    assert len(history) == len(rates) == 105
    _assert_warms_up_without_a_jump([r / cfg.lr for r in rates], 1 / 5)  # one step of 105 // 20


def test_pseudo_tracks_join_as_one_real_bank_and_need_tracks_only(tmp_path, capsys):
    """--pseudo-tracks adds LK-labelled clips of unlabelled video as one more real bank (named in
    the model card with its clip count); it labels no depth or pose, so it needs --train-heads tracks."""
    from .conftest import SHARED_DATA, require

    video = require(SHARED_DATA / "videos_unlabelled" / "cotracker_cat.mp4")
    out = tmp_path / "pseudo"
    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "1", "--out", str(first)]))
    assert main(COMMON + ["--init", str(first), "--pseudo-tracks", str(video), "--steps", "1",
                          "--out", str(tmp_path / "x")]) == 2
    assert "--train-heads tracks" in capsys.readouterr().err
    result = train(parse_args(COMMON + ["--init", str(first), "--train-heads", "tracks", "--cache-features",
                                        "--pseudo-tracks", str(video), "--steps", "2", "--out", str(out)]))
    assert len(result["loss"]) == 2 and all(torch.isfinite(torch.tensor(result["loss"])))
    card = (out / "README.md").read_text()
    assert f"{video} (" in card and "clips)" in card.split(str(video))[1][:20]


def test_select_on_writes_the_best_scored_checkpoint(tmp_path, capsys):
    """--select-on scores the model on a validation recording at step 0, every --save-every step
    and at the end; the run writes the best-scoring weights and logs every candidate, and prints
    each save step's score (a background run's progress)."""
    from training.selection import SELECTION_METRICS, selection_score

    from .conftest import SHARED_DATA, require

    seq = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    out = tmp_path / "sel"
    result = train(parse_args(COMMON + ["--steps", "6", "--save-every", "2", "--select-on", str(seq),
                                        "--out", str(out)]))
    log = json.loads((out / "training_log.json").read_text())["selection"]
    steps = [c["step"] for c in log["candidates"]]
    assert steps == [0, 2, 4, 6]
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in printed] == ["0", "2/6", "4/6", "6/6"]  # the start's, then each save's
    assert float(printed[0].split("selection score ")[1].split(" (")[0]) == pytest.approx(1.0)
    score, metrics = printed[1].split("selection score ")[1].split(" (", 1)
    assert float(score) == pytest.approx(log["candidates"][1]["score"], abs=1e-4)
    shown = dict(item.rsplit(" ", 1) for item in metrics.rstrip(")").split(", "))  # each metric, by name
    assert set(shown) == set(SELECTION_METRICS) and all(
        float(v) == pytest.approx(log["candidates"][1][k], abs=1e-3) for k, v in shown.items())
    assert log["candidates"][0]["score"] == pytest.approx(1.0)  # step 0 is the reference
    # ... and, its heads freshly initialised (no --init), never the choice
    assert [c["candidate"] for c in log["candidates"]] == [False, True, True, True]
    best = min((c for c in log["candidates"] if c["candidate"]), key=lambda c: c["score"])
    assert log["selected_step"] == best["step"] and result["selection"] == log
    assert all(0 <= c["depth_abs_rel_scaled"] < 5 for c in log["candidates"])
    # The written weights are the chosen step's: scoring them again gives its metrics.
    from training.readouts_data import selection_batches
    from training.readouts_model import evaluate

    model = load_checkpoint(out)
    again = evaluate(model, selection_batches(parse_args(COMMON + ["--select-on", str(seq)]), model,
                                              torch.device("cpu")))
    assert selection_score(again, log["candidates"][0]) == pytest.approx(best["score"], rel=1e-3)
    assert f"step {best['step']}'s" in (out / "README.md").read_text()
    # ... and kept on disk as soon as it scored best (OUT/selected), so that a stopped run keeps its choice.
    from fourds_ros.model.checkpoint import read_metadata

    kept = load_checkpoint(out / "selected")
    assert read_metadata(out / "selected")["steps"] == str(best["step"])
    assert all(torch.equal(a, b) for a, b in zip(kept.state_dict().values(), model.state_dict().values()))
    assert json.loads((out / "selected" / "selection.json").read_text())["selected_step"] == best["step"]


def test_selection_scores_the_trained_heads_and_keeps_untrained_starts_out(monkeypatch):
    """A run that trains only the depth head is scored on depth's metrics (the frozen heads'
    ratios, always 1, would dilute it), and a fresh head at step 0 is never chosen even where its
    score is the best (a random depth head's near-constant output can beat a trained one on
    metric AbsRel)."""
    from training.selection import CheckpointSelection

    scores = iter([{"depth_abs_rel_scaled": 0.6, "depth_abs_rel": 0.5, "track_epe_px": 9.0},
                   {"depth_abs_rel_scaled": 0.3, "depth_abs_rel": 1.2, "track_epe_px": 9.0},
                   {"depth_abs_rel_scaled": 0.28, "depth_abs_rel": 1.0, "track_epe_px": 9.0}])

    monkeypatch.setattr("training.selection.evaluate", lambda model, batches: next(scores))  # the metrics above
    model = torch.nn.Linear(1, 1)
    fresh = CheckpointSelection([], heads=("depth",), start_is_candidate=False)
    for step in (0, 10, 20):
        fresh.consider(model, step)
    assert [round(c["score"], 3) for c in fresh.history] == [1.0, round((0.5 + 2.4) / 2, 3), round((0.28 / 0.6 + 2.0) / 2, 3)]
    assert fresh.best_step == 20  # step 0 scored best and was not eligible
    scores = iter([{"depth_abs_rel_scaled": 0.6, "depth_abs_rel": 0.5}, {"depth_abs_rel_scaled": 0.3, "depth_abs_rel": 1.2}])
    resumed = CheckpointSelection([], heads=("depth",), start_is_candidate=True)
    for step in (0, 10):
        resumed.consider(model, step)
    assert resumed.best_step == 0


@pytest.mark.parametrize("spelled", ["a/seq/", "./a/seq", "a/seq/.", "a/../a/seq", "ABSOLUTE"])
def test_select_on_refuses_a_recording_the_run_trains_on(tmp_path, capsys, spelled):
    """However the folder is written (it was compared as a string: ./a/seq or an absolute path passed)."""
    spelled = str(Path("a/seq").resolve()) if spelled == "ABSOLUTE" else spelled
    assert main(COMMON + ["--real", "a/seq:2", "--select-on", spelled, "--out", str(tmp_path / "x")]) == 2
    assert "also trained on" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("option, path", [("--photometric", "data"), ("--pseudo-tracks", "data/seq"),
                                          ("--sfm-depth", "data/seq/rgb"), ("--synthetic-realism", "data/seq/rgb")])
def test_select_on_refuses_a_recording_a_video_option_trains_on(tmp_path, capsys, option, path):
    """Only --real was compared with --select-on: the same recording, its rgb/ folder or the data root holding it,
    given to a video option, was trained on and chosen on."""
    extra = ["--train-heads", "tracks"] if option == "--pseudo-tracks" else []
    extra += ["--train-heads", "depth", "--depth-ssi-weight", "1"] if option == "--sfm-depth" else []
    assert main(COMMON + [option, path, *extra, "--select-on", "data/seq", "--out", str(tmp_path / "x")]) == 2
    assert "trains on the --select-on recording" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_selection_depth_metrics_score_each_frame_as_the_evaluator_does():
    """`fourds-ros eval` scales relative depth per frame and averages AbsRel per frame; the
    selection scaled per clip and pooled metric AbsRel over pixels, so a checkpoint whose scale
    drifted from frame to frame read 0.15 where the evaluator reads 0 (review, session 52)."""
    from fourds_ros.evaluation.metrics import depth_errors, mean_depth_errors
    from training.readouts_model import frame_abs_rel

    torch.manual_seed(0)
    target = torch.rand(2, 3, 4, 4) + 0.5
    target[0, 0, 0, 0] = 0  # invalid
    drifting = target * torch.tensor([0.75, 1.0, 1.33])[None, :, None, None]  # the right shape, scale per frame
    assert frame_abs_rel(drifting, target, median_scaled=True) == pytest.approx(0.0, abs=1e-6)
    noisy = target * (1 + 0.1 * torch.randn_like(target))
    for scaled in (True, False):
        expected = mean_depth_errors([depth_errors(p.numpy(), t.numpy(), median_scale=scaled)
                                      for p, t in zip(noisy.flatten(0, 1), target.flatten(0, 1))])["abs_rel"]
        assert frame_abs_rel(noisy, target, median_scaled=scaled) == pytest.approx(expected, rel=1e-5)


def test_selection_track_metrics_score_the_frames_after_each_query():
    """At its own frame a track returns its query (error 0) and frames before it are tracked
    backwards; the evaluator scores the frames after the query only (TAP-Vid "query first")."""
    from training.readouts_model import batch_metrics

    xy = torch.zeros(1, 1, 4, 2)
    batch = {"tracks_xy": xy, "tracks_visible": torch.ones(1, 1, 4), "query_points": torch.tensor([[[1.0, 0, 0]]])}
    out = {"track_xy": xy.clone(), "track_visibility": torch.ones(1, 1, 4)}
    out["track_xy"][0, 0, 2:, 0] = 10.0  # exact up to and at the query (frame 1), 10 px off after it
    assert batch_metrics(out, batch)["track_epe_px"] == pytest.approx(10.0)
    # A frame over a depth hole (tracks_known 0, labelled not visible) is not scored for visibility.
    batch["tracks_visible"][0, 0, 3], batch["tracks_known"] = 0.0, torch.ones(1, 1, 4)
    batch["tracks_known"][0, 0, 3] = 0.0
    assert batch_metrics(out, batch)["visibility_accuracy"] == pytest.approx(1.0)


def test_pose_direction_is_the_angle_to_the_true_translation_where_the_camera_moved():
    from training.readouts_model import batch_metrics

    eye = torch.eye(3).expand(2, 3, 3, 3)
    true = torch.zeros(2, 3, 3)
    true[0, 1:, 0] = 0.1  # clip 0 moves along x; clip 1 stays still (under 5 mm)
    true[1, 1:, 2] = 0.001
    pred = torch.zeros(2, 3, 3)
    pred[0, 1, 0], pred[0, 2, 1] = 0.3, 0.05  # the same direction (any size); at 90 degrees
    pred[1, 1:, 0] = 0.1  # 90 degrees off, but the camera did not move: not counted
    out = {"pose_rotation": eye, "pose_translation": pred}
    batch = {"pose_rotation": eye, "pose_translation": true}
    assert batch_metrics(out, batch)["pose_direction_deg"] == pytest.approx(45.0, abs=1e-3)
    assert "pose_direction_deg" not in batch_metrics(out, {**batch, "pose_translation": true * 0.01})


def test_evaluate_weighs_every_clip_the_same_however_it_is_batched():
    """A short last batch must not count as much as a full one (it once counted as much: a
    73-clip recording in batches of 64 weighed its last 9 clips as much as the other 64)."""
    from training.readouts_data import load_banks, take
    from training.readouts_model import evaluate, model_for

    cfg = parse_args(COMMON + ["--val-clips", "4"])
    model = model_for(cfg)
    bank = load_banks(cfg, model, torch.device("cpu")).val
    whole = evaluate(model, [take(bank, torch.arange(4))])
    split = evaluate(model, [take(bank, torch.arange(3)), take(bank, torch.arange(3, 4))])
    assert split["depth_abs_rel_scaled"] == pytest.approx(whole["depth_abs_rel_scaled"], rel=1e-5)
    assert split["pose_rotation_deg"] == pytest.approx(whole["pose_rotation_deg"], rel=1e-5)
    assert split["pose_direction_deg"] == pytest.approx(whole["pose_direction_deg"], rel=1e-4)


def test_selection_score_is_the_mean_ratio_to_the_reference():
    from training.selection import selection_score

    ref = {"depth_abs_rel_scaled": 0.2, "track_epe_px": 4.0, "visibility_accuracy": 0.9}
    # Only selection metrics count (visibility accuracy is not one); lower is better.
    assert selection_score({"depth_abs_rel_scaled": 0.1, "track_epe_px": 6.0, "visibility_accuracy": 0.1},
                           ref) == pytest.approx((0.5 + 1.5) / 2)
    with pytest.raises(ValueError, match="no selection metric"):
        selection_score({"visibility_accuracy": 0.5}, ref)


def test_pose_direction_term_pulls_the_translation_direction_and_ignores_still_frames():
    """--pose-direction-weight: a translation pointing the right way (any size) adds nothing, one
    at 90 degrees adds the weight, a frame that did not move adds nothing, and the gradient turns
    the prediction towards the true direction."""
    from training.losses import pose_loss

    eye = torch.eye(3).expand(1, 3, 3, 3)
    true = torch.zeros(1, 3, 3)
    true[0, 1, 0] = 0.1  # frame 1 moves along x; frame 2 stays (under 5 mm)
    true[0, 2, 2] = 0.001
    log_var = torch.zeros(1, 3, 2)

    def loss(pred, weight):
        total, parts = pose_loss({"rotation": eye, "translation": pred, "log_variance": log_var}, eye, true, weight)
        return total, parts

    aligned = true.clone()
    aligned[0, 1, 0] = 0.3  # right way, 3x too far
    aligned[0, 2] = torch.tensor([0.05, 0.0, 0.0])  # wrong way, but the camera did not move
    base, parts = loss(aligned, 0.0)
    assert "pose_direction_miss" not in parts
    with_term, parts = loss(aligned, 2.0)
    assert float(with_term) == pytest.approx(float(base), abs=1e-6)
    assert float(parts["pose_direction_miss"]) == pytest.approx(0.0, abs=1e-6)

    crossed = true.clone()
    crossed[0, 1] = torch.tensor([0.0, 0.1, 0.0])  # 90 degrees off
    base, _ = loss(crossed, 0.0)
    with_term, parts = loss(crossed, 2.0)
    assert float(parts["pose_direction_miss"]) == pytest.approx(1.0, abs=1e-6)
    assert float(with_term - base) == pytest.approx(2.0, abs=1e-5)

    def x_gradient(weight):
        pred = crossed.clone().requires_grad_(True)
        loss(pred, weight)[0].backward()
        return float(pred.grad[0, 1, 0])

    assert x_gradient(2.0) < x_gradient(0.0) < 0  # the term turns x towards the truth harder


def test_pose_direction_weight_is_validated():
    assert parse_args(COMMON + ["--pose-direction-weight", "0.5"]).pose_direction_weight == 0.5
    with pytest.raises(ValueError, match="pose-direction-weight"):
        parse_args(COMMON + ["--pose-direction-weight", "-1"])


def test_still_clips_hold_the_first_frame_with_identity_motion():
    """A still clip of a real clip: frame 0 held (each frame with its own sensor noise, a few grey
    levels), identity poses, tracks where they are in frame 0, queried at frame 0, known only where
    visible there; the labels stay consistent (the reprojection check of the mirrored clips)."""
    from training.readouts_data import STILL_READ_NOISE, still_bank

    from .conftest import SHARED_DATA, require
    from training.data import RGBDClips

    seq = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    clips = RGBDClips(str(seq), 4, (32, 32), num_tracks=16, hop=8)
    items = [clips[i] for i in range(2)]
    bank = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    bank["video"] = (bank["video"] * 255).round().to(torch.uint8)
    still = still_bank(bank, 0)
    video = still["video"].float()
    noise = (video - video[:, :1]).std(dim=(2, 3, 4))[:, 1:]  # frame t - frame 0: two noises
    assert (noise > 0).all() and (noise < 3 * 255 * STILL_READ_NOISE[1]).all()
    assert (video[:, 0] - bank["video"][:, 0].float()).abs().mean() < 4  # frame 0 kept, noise aside
    assert torch.equal(still["depth"], bank["depth"][:, :1].expand_as(bank["depth"]))
    assert torch.allclose(still["pose_rotation"], torch.eye(3).expand_as(bank["pose_rotation"]))
    assert not still["pose_translation"].any()
    assert torch.equal(still["tracks_xy"], bank["tracks_xy"][:, :, :1].expand_as(bank["tracks_xy"]))
    assert torch.equal(still["tracks_known"][..., 0], bank["tracks_visible"][..., 0])
    assert not still["query_points"][..., 0].any()
    batch = {k: v.float() if k == "video" else v for k, v in still.items()}
    for b in range(2):
        pred, target = _reproject(batch, b)
        assert (pred - target).norm(dim=-1).max() < 1e-3


def test_still_clips_join_as_one_more_real_bank(tmp_path, capsys):
    _, card = _train_on_the_walk_with("--still-clips", tmp_path, capsys)
    # 30 frames, 4-frame clips, hop 2: 14 clips, and as many held still.
    assert "Still camera (--still-clips, readouts_data.still_bank): 14 clips" in card


def test_covered_clips_hide_one_side_of_the_view_and_only_its_labels():
    """A covered clip of a real clip: one side of the view (a quarter to a half) dark in every frame,
    the same pixels in each; the rest of the image, the motion and the visible tracks unchanged;
    no depth target and no visible track under the cover, and a track queried there is not known."""
    from training.readouts_data import COVERED_LEVEL, covered_bank

    from .conftest import SHARED_DATA, require
    from training.data import RGBDClips

    seq = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    clips = RGBDClips(str(seq), 4, (32, 32), num_tracks=16, hop=4)
    items = [clips[i] for i in range(6)]
    bank = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    bank["video"] = (bank["video"] * 255).round().to(torch.uint8)
    covered = covered_bank(bank, 0)
    changed = (covered["video"] != bank["video"]).any(-1)  # (B, T, H, W)
    hidden = covered["video"].float().mean(-1) < 255 * COVERED_LEVEL[1] + 8
    for b in range(6):
        cover = hidden[b].all(0) & changed[b].any(0)  # dark in every frame
        share = cover.float().mean()
        assert 0.2 < share < 0.55, share
        rows, cols = cover.any(1), cover.any(0)  # a side: full rows or full columns
        assert cover[rows].all() or cover[:, cols].all()
        assert not changed[b][:, ~cover].any()  # the rest of the view untouched
        assert not covered["depth"][b][:, cover].any()
        assert torch.equal(covered["depth"][b][:, ~cover], bank["depth"][b][:, ~cover])
        x, y = bank["tracks_xy"][b, ..., 0].round().long().clamp(0, 31), bank["tracks_xy"][b, ..., 1].round().long().clamp(0, 31)
        under = cover[y, x]  # (Q, T)
        assert not covered["tracks_visible"][b][under].any()
        assert torch.equal(covered["tracks_visible"][b][~under], bank["tracks_visible"][b][~under])
    for key in ("pose_rotation", "pose_translation", "tracks_xy", "query_points", "intrinsics"):
        assert torch.equal(covered[key], bank[key]), key
    assert (covered["tracks_known"] <= bank["tracks_known"]).all()
    assert (covered["tracks_known"] < bank["tracks_known"]).any()  # some queries fell under a cover


def test_covered_clips_join_as_one_more_real_bank(tmp_path, capsys):
    from .conftest import SHARED_DATA, require

    seq = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    assert main(COMMON + ["--covered-clips", "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    assert "--covered-clips" in capsys.readouterr().err
    out = tmp_path / "covered"
    argv = COMMON + ["--still-clips", "--covered-clips", "--real", str(seq), "--steps", "2", "--out", str(out)]
    result = train(parse_args(argv))
    assert len(result["loss"]) == 2 and all(torch.isfinite(torch.tensor(result["loss"])))
    card = (out / "README.md").read_text()  # 30 frames, 4-frame clips, hop 2: 14 clips each
    assert "Still camera (--still-clips, readouts_data.still_bank): 14 clips" in card
    assert "A part of the lens covered (--covered-clips, readouts_data.covered_bank): 14 clips" in card


def test_depth_teacher_loss_is_the_mean_log_ratio_and_trains_only_the_student():
    from training.losses import depth_teacher_loss

    teacher = torch.rand(2, 4, 8, 8) + 0.5
    assert float(depth_teacher_loss(teacher, teacher)[0]) == 0.0
    pred = (2.0 * teacher).requires_grad_(True)
    loss, parts = depth_teacher_loss(pred, teacher)
    assert torch.isclose(loss, torch.log(torch.tensor(2.0))) and torch.isclose(parts["depth_teacher"], loss)
    loss.backward()
    assert (pred.grad > 0).all()  # too far everywhere: every pixel pulled nearer


def test_a_teacher_that_holds_shape_leaves_each_frames_scale_to_the_labels():
    """--depth-teacher-holds shape: a prediction that is the teacher's depth times any factor per
    frame costs nothing (the labels, e.g. --real-zoom's nearer views, set the scale); a change of
    shape costs as in the default, and pulls the far half nearer and the near half farther."""
    from training.losses import depth_teacher_loss

    teacher = torch.rand(2, 4, 8, 8) + 0.5
    per_frame = torch.tensor([0.5, 1.0, 2.0, 3.0]).repeat(2, 1)[..., None, None]
    assert float(depth_teacher_loss(teacher * per_frame, teacher, "shape")[0]) < 1e-6
    assert float(depth_teacher_loss(teacher * per_frame, teacher)[0]) > 0.3  # the default holds the scale too
    ramp = torch.ones(8, 8)
    ramp[:, 4:] = 2.0  # the right half twice as far as the teacher says, the left as it says
    pred = (teacher * ramp).requires_grad_(True)
    loss, _ = depth_teacher_loss(pred, teacher, "shape")
    assert torch.isclose(loss, torch.log(torch.tensor(2.0)) / 2)
    loss.backward()
    assert (pred.grad[..., 4:] > 0).all() and (pred.grad[..., :4] < 0).all()
    with pytest.raises(ValueError, match="holds must be one of"):
        depth_teacher_loss(pred, teacher, "scale")


def test_depth_teacher_holds_the_depth_while_the_encoder_trains(tmp_path, capsys):
    """--depth-teacher (the --init model, frozen): with the encoder fine-tuned at a high rate, the
    depth of a clip no label covers moves less from the start's than without the teacher; the
    option needs a trained encoder and depth among the trained heads, and is named in the card."""
    start = tmp_path / "start"
    train(parse_args(COMMON + ["--steps", "2", "--out", str(start)]))
    clip = torch.rand(1, *load_checkpoint(start).config.clip_shape, generator=torch.Generator().manual_seed(5))

    def drift(extra: list[str], out: str) -> float:
        assert main(COMMON + ["--init", str(start), "--finetune", "--steps", "4", "--lr", "1e-2", "--seed", "3",
                              "--out", str(tmp_path / out)] + extra) == 0
        with torch.no_grad():
            before, after = (m.heads["depth"](m.features(clip)) for m in
                             (load_checkpoint(d).eval() for d in (start, tmp_path / out)))
        return float((torch.log(after) - torch.log(before)).abs().mean())

    free = drift([], "free")
    held = drift(["--depth-teacher", str(start), "--depth-teacher-weight", "50"], "held")
    assert held < 0.5 * free, (held, free)
    assert "frozen teacher, holds depth" in (tmp_path / "held" / "README.md").read_text()
    drift(["--depth-teacher", str(start), "--depth-teacher-holds", "shape"], "shape")
    assert "each frame's mean log ratio taken out (frozen teacher, holds shape)" in (
        tmp_path / "shape" / "README.md").read_text()
    assert main(COMMON + ["--init", str(start), "--depth-teacher", str(start), "--out", str(tmp_path / "x")]) == 2
    assert "--depth-teacher keeps" in capsys.readouterr().err


def test_select_no_worse_keeps_a_step_that_worsens_a_named_metric_out(monkeypatch, tmp_path, capsys):
    """Step 10 has the best mean ratio but worse metric depth than the start: with
    --select-no-worse depth_abs_rel it is not chosen (session 41's run chose such a step), step 20
    (no worse) is; an unknown metric or a guard without --select-on is a config error."""
    from training.selection import CheckpointSelection

    def run(no_worse):
        scores = iter([{"depth_abs_rel_scaled": 0.30, "depth_abs_rel": 1.40},
                       {"depth_abs_rel_scaled": 0.15, "depth_abs_rel": 1.50},
                       {"depth_abs_rel_scaled": 0.27, "depth_abs_rel": 1.30}])
        monkeypatch.setattr("training.selection.evaluate", lambda model, batches: next(scores))
        selection = CheckpointSelection([], heads=("depth",), no_worse=no_worse)
        for step in (0, 10, 20):
            selection.consider(torch.nn.Linear(1, 1), step)
        return selection

    assert run(()).best_step == 10
    guarded = run(("depth_abs_rel",))
    assert guarded.best_step == 20 and [c["candidate"] for c in guarded.history] == [True, False, True]
    with pytest.raises(ValueError, match="not among"):
        CheckpointSelection([], no_worse=("depth_rmse",))
    for argv in (["--select-no-worse", "depth_abs_rel"], ["--select-on", str(tmp_path), "--select-no-worse", "x"]):
        assert main(COMMON + argv + ["--out", str(tmp_path / "x")]) == 2
        assert "--select-no-worse takes metrics" in capsys.readouterr().err
    # Without --init the start is no candidate: a run where no step passed the guard crashed after
    # all its training with RuntimeError, writing no model. Refused before it starts.
    argv = ["--select-on", str(tmp_path), "--select-no-worse", "depth_abs_rel"]
    assert main(COMMON + argv + ["--out", str(tmp_path / "x")]) == 2
    assert "give --init" in capsys.readouterr().err


def test_depth_teacher_shares_the_cached_trunk_only_where_its_frozen_part_is_the_students(tmp_path):
    """With --finetune-blocks and a cached trunk, the teacher (the --init model) runs only the tuned
    blocks on the student's trunk, and its depth equals its whole encoder pass; a teacher whose
    frozen part differs runs its own encoder."""
    from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, save_checkpoint
    from training.readouts_model import load_teacher, teacher_depth, trunk_tokens

    model = init_weights(FourDS(ModelConfig(size="tiny", num_frames=4, image_size=(32, 32), patch_size=(2, 8, 8),
                                            heads=default_heads(64, 2))), seed=1).eval()
    tiny_model_dir = save_checkpoint(model, tmp_path / "tiny")
    assert model.readout_blocks == 2
    video = torch.rand(2, *model.config.clip_shape, generator=torch.Generator().manual_seed(1))
    batch = {"video": video, "trunk": trunk_tokens(model, video, 1),
             "intrinsics": torch.eye(3).repeat(2, 1, 1) * 30}
    teacher = load_teacher(str(tiny_model_dir), model, tuned_blocks=1)
    assert teacher.trunk_blocks == 1
    full = teacher_depth(teacher, model, {k: v for k, v in batch.items() if k != "trunk"})
    assert torch.allclose(teacher_depth(teacher, model, batch), full, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        next(model.encoder.parameters()).add_(0.1)  # the student's frozen part is no longer the teacher's
    assert load_teacher(str(tiny_model_dir), model, tuned_blocks=1).trunk_blocks == 0


def test_the_teacher_term_holds_what_depth_teacher_holds_names(tmp_path):
    """--depth-teacher-holds reaches the loss (load_teacher -> depth_losses): a student whose depth is
    the teacher's at twice the distance pays log 2 with a teacher that holds depth and nothing with
    one that holds shape."""
    from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, save_checkpoint
    from training.readouts_model import depth_losses, load_teacher

    model = init_weights(FourDS(ModelConfig(size="tiny", num_frames=4, image_size=(32, 32), patch_size=(2, 8, 8),
                                            heads=default_heads(64, 2))), seed=1).eval()
    teacher_dir = save_checkpoint(model, tmp_path / "teacher")
    with torch.no_grad():  # the student: the same model, its depth twice as far
        model.heads["depth"].register_forward_hook(lambda module, args, out: 2.0 * out)
    video = torch.rand(2, *model.config.clip_shape, generator=torch.Generator().manual_seed(1))
    batch = {"video": video, "depth": torch.full((2, *model.config.clip_shape[:3]), 2.0),
             "intrinsics": torch.eye(3).repeat(2, 1, 1) * 30}
    feats = model.features(video)
    kept = {holds: float(depth_losses(model, feats, batch, teacher=load_teacher(str(teacher_dir), model, holds=holds)
                                      )[1]["depth_teacher"]) for holds in ("depth", "shape")}
    assert abs(kept["depth"] - float(torch.log(torch.tensor(2.0)))) < 1e-4 and kept["shape"] < 1e-4, kept


def test_selection_scores_the_validation_recording_as_recorded():
    """--select-on clips are the recording's own: the training copies of --real-zoom, --real-appearance,
    --real-colour and --reverse go to the --real banks only (until session 47 the selection's validation
    clips were zoomed, redeveloped, recoloured and reversed with them)."""
    from training.data import RGBDClips
    from training.readouts_config import parse_args
    from training.readouts_data import rgbd_bank, selection_batches
    from training.readouts_model import model_for

    from .conftest import SHARED_DATA, require

    # (not the HoloLens walk's shared copy: it is samples/hololens_000 itself, refused as --select-on beside it)
    seq = str(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    augmented = ["--real", seq, "--real-zoom", "2", "2", "--real-appearance", "1", "--real-colour", "1", "--reverse"]
    cfg = parse_args(COMMON + augmented + ["--select-on", "samples/hololens_000"])
    model = model_for(cfg)
    chosen_on = torch.cat([b["video"] for b in selection_batches(cfg, model, torch.device("cpu"))])
    plain = RGBDClips("samples/hololens_000", 4, (32, 32), num_tracks=16, seed=cfg.seed, hop=2)  # --real-hop 0: half a clip
    assert len(chosen_on) == len(plain) and torch.equal(chosen_on[0], torch.as_tensor(plain[0]["video"]))
    # the training bank of the same options holds the copies: 2 (zoom) x 3 (appearance, colour) x 2 (reverse)
    assert len(rgbd_bank(seq, cfg, model, torch.device("cpu"))["video"]) == 12 * len(RGBDClips(seq, 4, (32, 32), hop=2))


def test_a_stopped_runs_progress_is_not_replaced_by_its_command_run_again(tmp_path, capsys):
    """A run stopped after saving OUT/checkpoint (no training_log.json: it never finished), its command run
    again: it started from step 0 and replaced the saved progress without a word. Progress without a resume file
    (saved before resume.pt was, as here: a finished run's OUT with its log removed) is refused, saying how to
    continue (--init OUT/checkpoint, which runs); a finished run's OUT is written over as before."""
    out = tmp_path / "run"
    assert main(COMMON + ["--steps", "2", "--save-every", "1", "--out", str(out)]) == 0
    (out / "training_log.json").unlink()  # as a run stopped before its end leaves it
    saved = (out / "checkpoint" / "model.safetensors").read_bytes()
    assert main(COMMON + ["--steps", "3", "--save-every", "1", "--out", str(out)]) == 2
    assert "holds a stopped run's progress" in capsys.readouterr().err
    assert (out / "checkpoint" / "model.safetensors").read_bytes() == saved
    assert main(COMMON + ["--init", str(out / "checkpoint"), "--steps", "1", "--out", str(out)]) == 0
    assert (out / "training_log.json").exists()
    assert main(COMMON + ["--steps", "1", "--out", str(out)]) == 0  # finished: a re-run starts over
    # A later run into the same OUT stopped after its progress: the earlier run's log says nothing of it
    # (models/fourds_default ships a training_log.json, and training/default_model.sh writes there).
    log = out / "training_log.json"
    os.utime(log, (log.stat().st_atime, (out / "checkpoint" / "model.safetensors").stat().st_mtime - 60))
    assert main(COMMON + ["--steps", "1", "--out", str(out)]) == 2
    assert "holds a stopped run's progress" in capsys.readouterr().err


def test_the_card_gives_the_training_loss_of_the_step_it_ships():
    """With --select-on the card called the last step's loss "final" beside the chosen step's weights."""
    from training.readouts_card import loss_words

    history = [9.0, 8.0, 7.0, 6.5]
    assert loss_words(history, None) == "Training loss at the last step (4): 6.5000 (first: 9.0000)."
    assert loss_words(history, {"selected_step": 4}) == loss_words(history, None)
    assert loss_words(history, {"selected_step": 2}).endswith("The weights are step 2's: training loss there 8.0000.")
    assert "step 0" in loss_words(history, {"selected_step": 0})


def test_a_continued_run_draws_other_batches_than_its_start(tmp_path):
    """A stopped run continued with --init OUT/checkpoint and the same --seed replayed the stopped run's batches
    from the first. Now its sampler is seeded with the steps the progress had trained (kept in its metadata,
    summed over continuations); any other start draws as before."""
    import dataclasses

    from fourds_ros.model.checkpoint import read_metadata
    from training import train_readouts

    out = tmp_path / "run"
    assert main(COMMON + ["--steps", "2", "--save-every", "1", "--out", str(out)]) == 0
    (out / "training_log.json").unlink()  # stopped before its end
    cont = parse_args(COMMON + ["--init", str(out / "checkpoint"), "--steps", "1", "--save-every", "1",
                                "--out", str(out)])
    assert train_readouts.continued_steps(cont) == 2
    assert train_readouts.continued_steps(parse_args(COMMON + ["--out", str(out)])) == 0
    elsewhere = ["--init", str(out / "checkpoint"), "--out", str(tmp_path / "continued")]
    assert train_readouts.continued_steps(parse_args(COMMON + elsewhere)) == 2  # continued into another OUT
    assert train_readouts.continued_steps(parse_args(COMMON + ["--init", str(out), "--out", str(tmp_path / "b")])) == 0
    cpu = torch.device("cpu")
    fresh = parse_args(COMMON + ["--train-clips", "16", "--out", str(out)])
    banks = train_readouts.load_banks(fresh, train_readouts.model_for(fresh), cpu)
    first = train_readouts.BatchSampler(fresh, banks, cpu)()
    assert torch.equal(first["video"], train_readouts.BatchSampler(fresh, banks, cpu)()["video"])  # seeded
    continued = train_readouts.BatchSampler(dataclasses.replace(fresh, steps_before=2), banks, cpu)()
    assert not torch.equal(first["video"], continued["video"])
    assert main(COMMON + ["--init", str(out / "checkpoint"), "--steps", "1", "--save-every", "1",
                          "--out", str(out)]) == 0
    assert read_metadata(out)["steps_before"] == "2"
    (out / "training_log.json").unlink()  # stopped again: a second continuation counts both runs
    assert train_readouts.continued_steps(cont) == 3


def test_an_out_it_cannot_write_is_refused_before_training(tmp_path, capsys, monkeypatch):
    """--out through a file (or a read-only folder) was found at the first save: after the whole run."""
    from training import train_readouts

    def trained(*args, **kwargs):
        raise AssertionError("training ran before --out was checked")

    monkeypatch.setattr(train_readouts, "fit", trained)
    (tmp_path / "afile").write_text("")
    assert main(COMMON + ["--steps", "2", "--out", str(tmp_path / "afile" / "model")]) == 2
    assert "Not a directory" in capsys.readouterr().err


def test_a_stopped_runs_refusal_names_only_its_own_selected_weights(tmp_path, capsys):
    """OUT/selected left by an earlier finished run (older than its training_log.json) was named as the stopped
    run's best-scored weights, which a team could ship as that run's."""
    out = tmp_path / "run"
    assert main(COMMON + ["--steps", "2", "--save-every", "1", "--out", str(out)]) == 0
    log, progress = out / "training_log.json", out / "checkpoint" / "model.safetensors"
    # the log an earlier run's (another run id), the progress a later run's
    log.write_text(json.dumps({**json.loads(log.read_text()), "run_id": "an-earlier-run"}))
    (out / "selected").mkdir()
    selected = out / "selected" / "model.safetensors"
    selected.write_bytes(progress.read_bytes())
    t = log.stat().st_mtime
    os.utime(selected, (t - 60, t - 60))  # the earlier run's, chosen before its log
    os.utime(progress, (t + 60, t + 60))  # a later run into OUT, stopped after saving progress
    assert main(COMMON + ["--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds a stopped run's progress" in err and "selected" not in err
    os.utime(selected, (t + 30, t + 30))  # the stopped run's own choice
    assert main(COMMON + ["--steps", "1", "--out", str(out)]) == 2
    assert "best-scored weights so far" in capsys.readouterr().err


def test_depth_loss_averages_over_labelled_frames_only():
    """Unlabelled frames (valid all False) must not dilute the depth loss, as losses.depth_loss says."""
    from training.losses import depth_loss

    t = torch.full((1, 2, 4, 4), 2.0)
    valid = torch.zeros(1, 2, 4, 4, dtype=torch.bool)
    valid[:, 0] = True
    assert float(depth_loss(t * 1.5, t, valid=valid, si_weight=0.0)[1]["depth_l1"]) == pytest.approx(1.0)


# Resuming a stopped run (OUT/resume.pt) and continuing from a model (--init).
SAVED = COMMON + ["--save-every", "2"]
SAMPLE = str(Path(__file__).resolve().parents[1] / "samples" / "hololens_000")


def _stop_in_step(monkeypatch, n: int):
    """A KeyboardInterrupt (SIGINT's default) where the n-th training batch is drawn; returns the undo."""
    from training.readouts_data import BatchSampler

    drawn, draw = [0], BatchSampler.__call__

    def stopping(self):
        drawn[0] += 1
        if drawn[0] == n:
            raise KeyboardInterrupt
        return draw(self)

    monkeypatch.setattr(BatchSampler, "__call__", stopping)
    return lambda: monkeypatch.setattr(BatchSampler, "__call__", draw)


def _stopped(monkeypatch, argv: list[str], in_step: int) -> None:
    undo = _stop_in_step(monkeypatch, in_step)
    with pytest.raises(KeyboardInterrupt):
        train(parse_args(argv))
    undo()


def test_a_stopped_run_resumes_by_its_own_command_as_if_never_stopped(tmp_path, monkeypatch):
    """A stopped run's command run again was refused, and the advised --init OUT/checkpoint restarted the LR
    schedule at its peak with fresh AdamW moments (weights 0.0126 off an uninterrupted run's). Now OUT/resume.pt
    (optimiser, schedule, sampler and RNG state, losses) is saved at every --save-every step and the same command
    resumes from it: the same learning rates, the same losses and bitwise the same weights on the CPU."""
    rates, adamw_step = [], torch.optim.AdamW.step

    def recording(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return adamw_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording)
    full = train(parse_args(SAVED + ["--steps", "8", "--out", str(tmp_path / "full")]))
    full_rates = rates[:]
    argv = SAVED + ["--steps", "8", "--out", str(tmp_path / "split")]
    _stopped(monkeypatch, argv, 6)  # in step 6: the last save was step 4's
    assert (tmp_path / "split" / "resume.pt").is_file()
    rates.clear()
    resumed = train(parse_args(argv))
    assert rates == full_rates[4:]
    assert resumed["loss"] == full["loss"]
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "split")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not (tmp_path / "split" / "resume.pt").exists()  # finished: its command run again starts afresh


def test_a_resumed_select_on_run_keeps_the_stopped_runs_choice_and_reference(tmp_path, monkeypatch):
    """A continued --select-on run scored against the --init (progress) model as its new step 0: it forgot the step
    the stopped run had chosen (and could ship a worse one), and --select-no-worse guarded against the progress,
    not against the original start. Now the resumed run goes on with the stopped run's reference, scorings and best
    weights: its choice and every scoring are an uninterrupted run's."""
    start = tmp_path / "start"
    train(parse_args(COMMON + ["--steps", "2", "--out", str(start)]))
    argv = SAVED + ["--steps", "8", "--init", str(start), "--select-on", SAMPLE, "--select-no-worse",
                    "track_epe_px"]
    full = train(parse_args(argv + ["--out", str(tmp_path / "full")]))["selection"]
    _stopped(monkeypatch, argv + ["--out", str(tmp_path / "split")], 7)  # in step 7: saved (and scored) step 6
    resumed = train(parse_args(argv + ["--out", str(tmp_path / "split")]))["selection"]
    # step 4, chosen before the stop: the later steps' track error is worse than the original start's
    assert resumed["selected_step"] == full["selected_step"] == 4
    assert [c["step"] for c in resumed["candidates"]] == [0, 2, 4, 6, 8]
    assert resumed["candidates"] == full["candidates"]
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "split")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_resumed_run_refuses_changed_settings_and_damaged_state(tmp_path, monkeypatch, capsys):
    """What resumes is what the card records: a setting outside the free list (--time-budget, --workers,
    --save-every, --no-progress, --device) changed is refused by name, as pretraining does; a damaged or planted
    resume file is refused (exit 2, saying to delete it), never unpickled into objects."""
    out = tmp_path / "run"
    argv = SAVED + ["--steps", "6", "--out", str(out)]
    _stopped(monkeypatch, argv, 4)
    assert main([a if a != "3e-3" else "1e-3" for a in argv]) == 2
    assert "--lr: 0.003 -> 0.001" in capsys.readouterr().err
    assert main(argv + ["--steps", "8"]) == 2 and "--steps: 6 -> 8" in capsys.readouterr().err
    saved = (out / "resume.pt").read_bytes()
    (out / "resume.pt").write_bytes(saved[:len(saved) // 2])  # cut short
    assert main(argv) == 2
    assert "delete it to start afresh" in capsys.readouterr().err
    planted = tmp_path / "planted"

    class Plant:
        def __reduce__(self):
            return (Path.touch, (planted,))

    torch.save({"model": Plant()}, out / "resume.pt")
    assert main(argv) == 2 and not planted.exists()
    assert "delete it to start afresh" in capsys.readouterr().err
    (out / "resume.pt").write_bytes(saved)
    assert main(argv + ["--device", "cpu"]) == 0  # a free setting
    assert len(json.loads((out / "training_log.json").read_text())["loss"]) == 6


def test_continuing_from_a_runs_selected_or_renamed_progress_goes_on_from_its_steps(tmp_path):
    """Progress was known by its folder's name (checkpoint) only: --init OUT/selected or a renamed copy of
    OUT/checkpoint replayed the first run's batches from the first and recorded steps_before 0. Now the
    checkpoints' metadata says what they are (kind progress or selected), wherever they lie."""
    import shutil

    from fourds_ros.model.checkpoint import read_metadata
    from training.train_readouts import continued_steps

    out = tmp_path / "a"
    train(parse_args(SAVED + ["--steps", "4", "--select-on", SAMPLE, "--out", str(out)]))
    chosen = json.loads((out / "selected" / "selection.json").read_text())["selected_step"]
    assert read_metadata(out / "selected")["kind"] == "selected" and chosen > 0
    shutil.copytree(out / "checkpoint", tmp_path / "renamed")
    for init, steps in ((out / "selected", chosen), (tmp_path / "renamed", 4), (out, 0)):  # OUT: the finished model
        assert continued_steps(parse_args(COMMON + ["--init", str(init), "--out", str(tmp_path / "b")])) == steps


@pytest.mark.parametrize("option", [["--size", "small"], ["--clip", "4x64x64"], ["--readout-width", "32"],
                                    ["--patch-size", "2", "16", "16"], ["--backbone", "BACKBONE"]])
def test_init_refuses_options_its_model_would_ignore(tmp_path, tiny_model_dir, capsys, option):
    """--init trains its model further as it is: a --size, --clip, --readout-width or --backbone that differed were
    silently ignored, and the model card recorded a command that was not what ran. Now refused, naming them; the
    model's own values, or none, are accepted."""
    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "1", "--out", str(first)]))
    option = [str(tiny_model_dir) if a == "BACKBONE" else a for a in option]
    argv = ["--steps", "1", "--init", str(first), "--out", str(tmp_path / "b")]
    assert main(COMMON + option + argv) == 2
    assert option[0] in capsys.readouterr().err
    own = [a for a in COMMON if a not in ("--size", "tiny")] + ["--size", "tiny", "--readout-width", "64"]
    assert main(own + argv) == 0


@pytest.mark.parametrize("option", [["--size", "small"], ["--clip", "4x64x64"], ["--patch-size", "2", "8", "8"]])
def test_a_backbone_refuses_a_size_or_clip_it_would_override(tmp_path, tiny_model_dir, capsys, option):
    """Without --init, --backbone sets the encoder (size, clip, patch size): a --size, --clip or --patch-size that
    differed from the backbone's were silently overridden, and the model card recorded a command that was not
    what ran. Now refused, naming them; the backbone's own values, or none, are accepted."""
    argv = ["--train-clips", "2", "--val-clips", "1", "--batch-size", "2", "--num-tracks", "16", "--no-progress",
            "--steps", "1", "--backbone", str(tiny_model_dir), "--out", str(tmp_path / "b")]
    assert main(argv + option) == 2
    err = capsys.readouterr().err
    assert option[0] in err and "--backbone" in err
    assert main(argv + ["--size", "micro", "--clip", "4x32x32", "--patch-size", "2", "16", "16"]) == 0
    assert main(argv) == 0


def test_a_continuation_into_its_own_out_resumes_by_its_own_command(tmp_path, monkeypatch):
    """A run continued with --init OUT/checkpoint into its own OUT (what a stopped run without a resume file is
    told to do) and stopped again was refused by its own command: the steps --init's progress had trained read
    as more once that run had written over the progress itself."""
    out = tmp_path / "run"
    _stopped(monkeypatch, SAVED + ["--steps", "8", "--out", str(out)], 4)  # progress at step 2
    (out / "resume.pt").unlink()  # damaged ("delete it to start afresh"), or progress from before resume files
    argv = SAVED + ["--steps", "8", "--init", str(out / "checkpoint"), "--out", str(out)]
    _stopped(monkeypatch, argv, 6)  # stopped again: resume.pt and OUT/checkpoint at this run's step 4
    assert (out / "resume.pt").is_file()
    result = train(parse_args(argv))  # the same command again resumes it
    assert len(result["loss"]) == 8


def test_a_stopped_run_resumes_whatever_the_mtime_of_an_earlier_runs_log(tmp_path, monkeypatch, capsys):
    """An earlier finished run's training_log.json in OUT newer than a stopped run's resume.pt by modification time
    (a `cp -r` of the folder, a checkout of models/fourds_default, which ships a log) had the resume.pt deleted and
    the run started again from step 0 without a word. Now a run id ties them: resume.pt is the finished run's (and
    discarded) only where the log carries its run id, as when a run's end is cut short before the unlink."""
    out = tmp_path / "run"
    train(parse_args(SAVED + ["--steps", "2", "--out", str(out)]))  # an earlier, finished run in OUT
    argv = SAVED + ["--steps", "8", "--out", str(out)]
    _stopped(monkeypatch, argv, 6)  # resume.pt at step 4
    kept = (out / "resume.pt").read_bytes()
    os.utime(out / "training_log.json")  # written after resume.pt, as a copy of the folder does
    capsys.readouterr()
    result = train(parse_args(argv))
    assert "at step 4" in capsys.readouterr().out and len(result["loss"]) == 8
    # Killed between writing its log and deleting resume.pt: its command run again starts afresh, as before.
    (out / "resume.pt").write_bytes(kept)
    train(parse_args(argv))
    assert "resuming" not in capsys.readouterr().out


def test_a_stop_signal_saves_the_readout_run_after_its_step_and_its_command_resumes_it(tmp_path, monkeypatch, capsys):
    """Ctrl-C in train_readouts was a KeyboardInterrupt traceback and SIGTERM an instant death: the steps since the
    last --save-every (every step without it) were lost. Now the run stops after its step with OUT/checkpoint and
    OUT/resume.pt saved, exits 128 + the signal, and the same command goes on as if never stopped."""
    import signal

    from fourds_ros.model.checkpoint import read_metadata
    from training.readouts_data import BatchSampler

    full = train(parse_args(SAVED + ["--steps", "6", "--out", str(tmp_path / "full")]))
    drawn, draw = [0], BatchSampler.__call__

    def signalled(self):
        drawn[0] += 1
        if drawn[0] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in step 3
        return draw(self)

    monkeypatch.setattr(BatchSampler, "__call__", signalled)
    argv = SAVED + ["--steps", "6", "--out", str(tmp_path / "split")]
    try:
        code = main(argv)
    except KeyboardInterrupt:  # (as it was: caught here, or pytest takes it for the user's and ends the session)
        code = None
    assert code == 128 + signal.SIGINT
    assert "stopped by SIGINT after step 3, saved" in capsys.readouterr().err
    assert read_metadata(tmp_path / "split" / "checkpoint")["steps"] == "3"  # not step 2's save
    monkeypatch.setattr(BatchSampler, "__call__", draw)
    assert main(argv) == 0
    assert json.loads((tmp_path / "split" / "training_log.json").read_text())["loss"] == full["loss"]


def test_init_refuses_its_own_output_folder(tmp_path, capsys):
    """--init X --out X wrote the run's model over the one it started from, and the same command run again trained
    on from its own output (training/default_model.sh's INIT=models/fourds_default with the default OUT)."""
    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "1", "--out", str(first)]))
    before = (first / "model.safetensors").read_bytes()
    assert main(COMMON + ["--init", str(first), "--steps", "1", "--out", str(first / ".")]) == 2
    assert "is the output folder" in capsys.readouterr().err
    assert (first / "model.safetensors").read_bytes() == before


def test_select_on_refuses_a_training_recording_under_another_path(tmp_path, capsys):
    """--select-on a copy of a --real recording (the HoloLens walk is both samples/hololens_000 and
    ../shared/data/hololens_dvmvs_000_f00305-00334) chose the checkpoint on frames the run trained on. Recordings
    are now compared by their poses and intrinsics as well as their folders."""
    import shutil

    copy = tmp_path / "hololens_copy"
    shutil.copytree(SAMPLE, copy)
    assert main(COMMON + ["--real", f"{SAMPLE}:1", "--select-on", str(copy), "--out", str(tmp_path / "x")]) == 2
    assert "under another path" in capsys.readouterr().err and not (tmp_path / "x").exists()
    other = tmp_path / "other"
    shutil.copytree(SAMPLE, other)
    poses = (other / "poses.txt").read_text().splitlines()
    (other / "poses.txt").write_text("\n".join(poses[::-1]) + "\n")  # another recording's poses
    parse_args(COMMON + ["--real", f"{SAMPLE}:1", "--select-on", str(other)])  # accepted


def test_a_resumed_run_says_its_new_time_budget_is_not_applied(tmp_path, monkeypatch, capsys):
    """A stopped run whose schedule --time-budget had fitted, resumed with another --time-budget (a free setting),
    went on with the fitted schedule and ignored the new budget without a word. Now it says so."""
    from training import train_readouts

    class Probe(train_readouts.BudgetProbe):
        def after_step(self, steps_run, done, total_steps):
            return 6 if done == 1 else None  # the schedule fitted to 6 steps after step 1

    monkeypatch.setattr(train_readouts, "BudgetProbe", Probe)
    argv = SAVED + ["--steps", "100", "--out", str(tmp_path / "run")]
    _stopped(monkeypatch, argv + ["--time-budget", "100"], 4)  # resume.pt at step 2, its schedule fitted
    capsys.readouterr()
    result = train(parse_args(argv + ["--time-budget", "200"]))
    out = capsys.readouterr().out
    assert "fitted to --time-budget 100 s (6 steps)" in out and "--time-budget 200 s is not applied" in out
    assert len(result["loss"]) == 6


def test_a_copied_finished_runs_progress_is_its_own_whatever_the_modification_times(tmp_path):
    """A `cp -r` (or a checkout) of a finished run's folder can leave OUT/checkpoint newer than its
    training_log.json: its own command then refused to start, calling the finished run's progress a stopped run's
    (the docs review's catch). The progress carries the run id its log does."""
    from training.train_readouts import check_stopped_run

    out = tmp_path / "run"
    cfg = parse_args(SAVED + ["--steps", "2", "--out", str(out)])
    train(cfg)
    assert (out / "checkpoint" / "model.safetensors").exists()
    later = (out / "training_log.json").stat().st_mtime + 60
    os.utime(out / "checkpoint" / "model.safetensors", (later, later))
    check_stopped_run(cfg)  # the finished run's own: no refusal


def test_a_resumed_readout_run_does_not_fit_its_schedule_again(tmp_path, monkeypatch, capsys):
    """A budget probe fits once per invocation (BudgetProbe: after its own warm-up and probe steps): the resumed
    run keeps the stopped run's fitted schedule (6 steps), as it says, and does not fit it anew (10 steps)."""
    from training import train_readouts
    from training.train_readouts import parse_args, train

    class Probe(train_readouts.BudgetProbe):
        def after_step(self, steps_run, done, total_steps):
            return (6 if done == 1 else 10) if steps_run == 1 else None  # each invocation measures its pace once

    monkeypatch.setattr(train_readouts, "BudgetProbe", Probe)
    argv = SAVED + ["--steps", "100", "--out", str(tmp_path / "run")]
    _stopped(monkeypatch, argv + ["--time-budget", "100"], 4)
    result = train(parse_args(argv + ["--time-budget", "200"]))
    assert len(result["loss"]) == 6


# What a run was made from (training/provenance.py): the code revision and the weights it started from.
def _head_of(root: Path) -> tuple[str | None, bool | None]:
    """The test's own reading of git at root (None where git cannot tell), to compare the record with."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                 "fourds_ros", "training"], capture_output=True, text=True, check=True,
                                timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head, bool(status.strip())


def test_a_readout_runs_log_records_its_code_revision_command_and_init_weights(tmp_path):
    """training_log.json said nothing of the code that trained the model or the weights --init started from: the
    shipped model's recorded command no longer reproduced it (the code changed since; --init models/fourds_default
    then named the result) and nothing said so. Now the log records the revision (git HEAD of the checkout the
    training code is imported from), whether its tracked code had changes, the command, and --init's sha256."""
    import hashlib

    from training import provenance

    first, second = tmp_path / "first", tmp_path / "second"
    assert main(COMMON + ["--steps", "1", "--out", str(first)]) == 0
    log = json.loads((first / "training_log.json").read_text())
    expected = _head_of(provenance.REPO) if (provenance.REPO / ".git").exists() else (None, None)
    assert (log["code_revision"], log["code_dirty"]) == expected
    assert log["code_revision"] is None or len(log["code_revision"]) == 40
    assert log["init_sha256"] is None and log["resumes"] == []
    assert log["argv"] == COMMON + ["--steps", "1", "--out", str(first)]
    assert log["command"].startswith("python -m training.train_readouts --train-clips 2")
    assert main(COMMON + ["--init", str(first), "--steps", "1", "--out", str(second)]) == 0
    log = json.loads((second / "training_log.json").read_text())
    assert log["init_sha256"] == hashlib.sha256((first / "model.safetensors").read_bytes()).hexdigest()
    assert log["backbone_sha256"] is None and log["depth_teacher_sha256"] is None


def test_outside_a_git_checkout_a_readout_run_records_nulls_and_succeeds(tmp_path, monkeypatch):
    """An installed package or a tarball has no .git: the record's revision is null and the run goes on."""
    from training import provenance

    monkeypatch.setattr(provenance, "REPO", tmp_path / "unpacked")
    (tmp_path / "unpacked").mkdir()
    assert main(COMMON + ["--steps", "1", "--out", str(tmp_path / "m")]) == 0
    log = json.loads((tmp_path / "m" / "training_log.json").read_text())
    assert log["code_revision"] is None and log["code_dirty"] is None and log["init_sha256"] is None
    monkeypatch.setattr(provenance, "GIT_TIMEOUT_S", 1e-9)  # a git that hangs: null too, never a failed run
    monkeypatch.setattr(provenance, "REPO", Path(__file__).resolve().parents[1])
    assert provenance.code_revision() == (None, None)


def test_code_dirty_counts_changed_tracked_code_only(tmp_path):
    """code_dirty: a change to a tracked file under fourds_ros/ or training/; untracked files and other folders
    do not count."""
    import shutil
    import subprocess

    from training.provenance import code_revision

    if shutil.which("git") is None:
        pytest.skip("no git")
    repo = tmp_path / "repo"
    (repo / "training").mkdir(parents=True)
    (repo / "training" / "a.py").write_text("x = 1\n")
    (repo / "notes.md").write_text("notes\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "c"]):
        subprocess.run(git + args, check=True, capture_output=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert code_revision(repo) == (head, False)
    (repo / "training" / "new.py").write_text("")  # untracked
    (repo / "notes.md").write_text("changed\n")  # tracked, outside the code folders
    assert code_revision(repo) == (head, False)
    (repo / "training" / "a.py").write_text("x = 2\n")
    assert code_revision(repo) == (head, True)


def test_a_resumed_readout_run_keeps_its_starts_record_and_records_the_resume(tmp_path, monkeypatch):
    """A resumed run keeps the record of the invocation that started it (in resume.pt) and adds its own, with the
    step it resumed at; another revision does not refuse the resume, it is recorded."""
    from training import provenance

    out = tmp_path / "run"
    argv = SAVED + ["--steps", "4", "--out", str(out)]
    _stopped(monkeypatch, argv, 4)  # in step 4: the last save was step 2's
    start = provenance.code_revision()
    monkeypatch.setattr(provenance, "REPO", tmp_path)  # the resume runs from code without a revision
    assert main(argv) == 0
    log = json.loads((out / "training_log.json").read_text())
    assert (log["code_revision"], log["code_dirty"]) == start and log["argv"] == argv
    [resume] = log["resumes"]
    assert resume["step"] == 2 and resume["code_revision"] is None and resume["argv"] == argv


# A --real or --select-on recording shorter than one clip: refused before anything is loaded.
def test_a_recording_shorter_than_a_clip_is_refused_before_anything_loads(tmp_path, monkeypatch, capsys):
    """`--select-on tum_fr1_rpy_f000-079:40` (80 frames; a clip of 8 every 40th spans 281) failed after 5 min 42 s
    of texture, real-clip and feature loading. Now the frames are counted from the reader's listing first: one
    line, exit 2, before the model or any clip is loaded."""
    import time

    from training import train_readouts

    def loaded(*args, **kwargs):
        raise AssertionError("loaded before the recording's length was checked")

    monkeypatch.setattr(train_readouts, "model_for", loaded)
    monkeypatch.setattr(train_readouts, "load_banks", loaded)
    for option in ("--real", "--select-on"):
        start = time.perf_counter()
        assert main(COMMON + [option, f"{SAMPLE}:10", "--steps", "1", "--out", str(tmp_path / "m")]) == 2
        assert time.perf_counter() - start < 1.0
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{option} {SAMPLE}:10" in err, err
        assert "30 frames" in err and "needs 31" in err, err  # 4 frames every 10th: (4 - 1) * 10 + 1
    assert not (tmp_path / "m").exists()


def test_the_recording_length_check_takes_the_models_clip_and_datasets_rule(tmp_path, tiny_model_dir):
    """The rule is RGBDClips': a clip of T frames every STRIDE-th spans (T - 1) * STRIDE + 1 frames, T the model's
    (--init's or --backbone's config, else --clip); a recording that long passes."""
    from training.data.datasets import RGBDClips
    from training.readouts_data import check_recording_lengths
    from training.typed_config import ConfigError

    check_recording_lengths(parse_args(COMMON + ["--real", f"{SAMPLE}:9"]))
    check_recording_lengths(parse_args(COMMON + ["--select-on", f"{SAMPLE}:9"]))
    assert len(RGBDClips(SAMPLE, 4, (32, 32), stride=9)) == 1  # 28 of its 30 frames: the check lets through a clip
    with pytest.raises(ValueError, match="a clip needs 31"):
        RGBDClips(SAMPLE, 4, (32, 32), stride=10)
    with pytest.raises(ConfigError, match="needs 57 \\(give STRIDE 4 or less\\)"):  # --clip 8x32x32: 8 frames every 8th
        check_recording_lengths(parse_args(COMMON[:-4] + ["--clip", "8x32x32", "--real", f"{SAMPLE}:8"]))
    # --backbone's clip (4 frames) replaces --clip's default
    check_recording_lengths(parse_args(["--backbone", str(tiny_model_dir), "--real", f"{SAMPLE}:9"]))
    with pytest.raises(ConfigError, match="needs 31"):
        check_recording_lengths(parse_args(["--backbone", str(tiny_model_dir), "--real", f"{SAMPLE}:10"]))


def test_the_reported_tum_select_on_is_refused_at_once(tmp_path, capsys):
    from .conftest import SHARED_DATA, require

    tum = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    argv = COMMON[:-4] + ["--clip", "8x32x32", "--select-on", f"{tum}:40", "--steps", "1", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--select-on {tum}:40: the recording has 80 frames" in err and "needs 281" in err, err


def test_a_bags_frames_are_counted_without_its_images(tmp_path):
    """A bag's count is BagSequence's (frames with depth and a pose), read without the camera images."""
    from fourds_ros.cli import main as cli
    from training.data.datasets import count_frames, open_sequence
    from training.readouts_data import check_recording_lengths
    from training.typed_config import ConfigError

    from .conftest import SHARED_DATA, require

    seq = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    bag = tmp_path / "walk_bag"
    assert cli(["bag", "convert", "--format", "hololens", str(seq), str(bag)]) == 0
    assert count_frames(bag) == len(open_sequence(bag)) == count_frames(seq) == 30
    with pytest.raises(ConfigError, match="has 30 frames.*needs 31"):
        check_recording_lengths(parse_args(COMMON + ["--select-on", f"{bag}:10"]))


def test_a_run_resumed_twice_records_both_resumes_and_a_command_a_shell_reads_back():
    """training/provenance.py: each resume is added to the record of the run's start (keeping only the last lost
    the earlier revisions and commands), and the recorded command, pasted into a shell, gives the argv back with
    spaces and quotes (session 70's mutation review)."""
    import shlex

    from training.provenance import invocation, run_record

    now = {"code_revision": "r1", "code_dirty": False, "command": "c", "argv": []}
    record = run_record(None, now, None)
    record = run_record(record, {**now, "code_revision": "r2"}, 100)
    record = run_record(record, {**now, "code_revision": "r3"}, 200)
    assert record["code_revision"] == "r1"
    assert [(r["code_revision"], r["step"]) for r in record["resumes"]] == [("r2", 100), ("r3", 200)]
    argv = ["--out", "runs/my run", "--note", "it's"]
    assert shlex.split(invocation("training.train_readouts", argv, {})["command"]) == \
        ["python", "-m", "training.train_readouts", *argv]
