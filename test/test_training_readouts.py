"""Readout training: each head overfits a small synthetic set; frozen vs fine-tuned encoder;
the output dir is a node-loadable checkpoint with a model card."""

from __future__ import annotations

import json

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


def test_bad_heads_are_a_clear_error(tmp_path, capsys):
    assert main(["--heads", "nope", "--out", str(tmp_path / "x"), "--steps", "1"]) == 2
    assert "heads must be" in capsys.readouterr().err


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
