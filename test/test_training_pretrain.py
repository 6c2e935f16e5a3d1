"""MAE pre-training: exact mask fraction, loss falls, exact resume, torchrun DDP == one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from fourds_ros.model import load_checkpoint
from fourds_ros.model.masking import num_kept
from training.pretrain import build_mae, load_config, model_config, train

from .conftest import REPO


def tiny(**overrides) -> dict:
    return load_config("tiny", [f"{k}={v}" for k, v in overrides.items()])


@pytest.mark.parametrize("kind", ["random", "tube"])
@pytest.mark.parametrize("ratio", [0.95, 0.75])
def test_masked_fraction_is_exact(kind, ratio):
    cfg = load_config("S")
    mc = model_config(cfg)
    t, h, w = mc.token_grid
    n = t * h * w
    expected_kept = num_kept(h * w, ratio) * t if kind == "tube" else num_kept(n, ratio)
    gen = torch.Generator().manual_seed(0)
    from fourds_ros.model import make_mask

    for i in range(3):
        mask = make_mask(kind, 2, mc.token_grid, ratio, generator=gen)
        assert (mask.masked.sum(1) == n - expected_kept).all()
        assert mask.ids_keep.shape == (2, expected_kept)
    assert abs((n - expected_kept) / n - ratio) < 1.0 / (h * w)


def test_mae_loss_falls_on_a_fixed_clip(tmp_path):
    cfg = tiny(**{"data.num_scenes": 1, "optim.steps": 40, "optim.lr": 3e-3, "save_every": 100})
    result = train(cfg, tmp_path / "run", progress=False)
    losses = [v for _, v in result["losses"]]
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    # The exported encoder is a node-loadable model dir.
    model = load_checkpoint(tmp_path / "run" / "encoder")
    mae = build_mae(cfg)
    assert set(model.encoder.state_dict()) == set(mae.encoder.state_dict())
    assert (tmp_path / "run" / "tb").is_dir() and (tmp_path / "run" / "checkpoint.pt").is_file()


def test_resumed_run_equals_uninterrupted(tmp_path):
    cfg = tiny(**{"optim.steps": 8, "save_every": 100, "batch_size": 4, "micro_batch_size": 2})
    train(cfg, tmp_path / "full", progress=False)
    first = train(cfg, tmp_path / "split", stop_after=3, progress=False)
    assert first["step"] == 3 and not (tmp_path / "split" / "encoder").exists()
    second = train(cfg, tmp_path / "split", progress=False)
    assert [s for s, _ in second["losses"]] == list(range(4, 9))
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    split = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    assert full["step"] == split["step"] == 8
    for key, value in full["model"].items():
        assert torch.equal(value, split["model"][key]), key
    assert full["optimizer"]["state"][0]["step"] == split["optimizer"]["state"][0]["step"]


def test_torchrun_two_processes_equal_one(tmp_path):
    overrides = ["optim.steps=4", "batch_size=4", "micro_batch_size=1", "save_every=100", "tensorboard=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    runs = {
        "one": [sys.executable, "-m", "training.pretrain"],
        "two": torchrun + ["-m", "training.pretrain"],
    }
    for name, cmd in runs.items():
        proc = subprocess.run(
            cmd + ["--config", "tiny", "--out", str(tmp_path / name), "--no-progress", *overrides],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "losses.json").read_text())
    two = json.loads((tmp_path / "two" / "losses.json").read_text())
    assert [s for s, _ in one] == [s for s, _ in two] == [1, 2, 3, 4]
    for (_, a), (_, b) in zip(one, two):
        assert abs(a - b) < 1e-5 * max(1.0, abs(a)), (one, two)
    w1 = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=False)["model"]
    w2 = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)["model"]
    for key in w1:
        torch.testing.assert_close(w1[key], w2[key], atol=1e-5, rtol=1e-4)


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    from training.pretrain import main

    assert main(["--config", "no-such-size", "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_kept_tubelet_embedding_equals_the_encoder():
    """MAE.encode_kept embeds only kept tubelets; it must equal Encoder(video, mask).output."""
    from fourds_ros.model import make_mask

    mae = build_mae(tiny()).eval()
    video = torch.rand(2, *mae.config.clip_shape)
    mask = make_mask("random", 2, mae.config.token_grid, 0.75, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(mae.encode_kept(video, mask), mae.encoder(video, mask=mask).output,
                                   atol=1e-5, rtol=1e-5)
