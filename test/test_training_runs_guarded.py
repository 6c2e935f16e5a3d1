"""The training programs where a wrong run would look right: a diverged pre-training stops instead of writing NaN
weights, time budgets are checked, the MAE loss over masked tubelets, convert --out, the shipped metadata's steps, the
card's counts, the photometric auto-mask and --finetune-blocks without a cached trunk."""

from __future__ import annotations

import json
import math

import pytest
import torch

from fourds_ros.model import load_checkpoint
from fourds_ros.model.checkpoint import read_metadata

COMMON = ["--train-clips", "2", "--val-clips", "1", "--batch-size", "2", "--num-tracks", "16",
          "--no-progress", "--lr", "3e-3", "--clip", "4x32x32", "--size", "tiny"]


def test_a_diverged_pretraining_run_stops_instead_of_shipping_nan_weights(tmp_path, capsys, monkeypatch):
    """A loss that turns NaN (too high an lr) ran to the end, exit 0, and wrote encoder/ and checkpoint.pt
    with NaN weights: found only when train_readouts --backbone refused to load them."""
    import training.mae as mae
    from training.pretrain import main

    real = mae.mae_loss
    monkeypatch.setattr(mae, "mae_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    out = tmp_path / "run"
    assert main(["--config", "tiny", "--out", str(out), "--no-progress", "optim.steps=3", "tensorboard=false"]) == 2
    assert "non-finite" in capsys.readouterr().err
    assert not (out / "encoder").exists()
    (step, loss), = json.loads((out / "losses.json").read_text())  # the curve that shows the divergence is kept
    assert step == 1 and math.isnan(loss)


@pytest.mark.parametrize("budget", ["-1", "nan", "inf"])
def test_a_negative_or_nan_time_budget_is_refused_before_any_work(tmp_path, capsys, budget):
    """--time-budget -1 ran 25 of --steps 40 and exited 0 (a card saying Steps: 25); nan and inf crashed at step 25
    ("cannot convert float NaN to integer", an OverflowError) after every clip was rendered. pretrain's
    time_budget_s likewise."""
    from training.pretrain_config import ConfigError, load_config
    from training.train_readouts import main

    assert main(COMMON + ["--steps", "40", "--time-budget", budget, "--out", str(tmp_path / "x")]) == 2
    assert "time-budget" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="time_budget_s"):
        load_config("tiny", [f"time_budget_s={budget}"])


def test_mae_loss_with_no_masked_tubelet_counts_every_tubelet():
    """mask.ratio 0 (allowed; benchmarks): the docstring's 'every tubelet counts' was untested (a dropped
    fallback gave 0/0 = NaN)."""
    from training.mae import mae_loss, patchify

    gen = torch.Generator().manual_seed(0)
    video = torch.rand(1, 4, 32, 32, 3, generator=gen)
    patch = (2, 16, 16)
    n, p = patchify(video, patch).shape[1:]
    pred = torch.zeros(1, n, p)
    none_masked = mae_loss(pred, video, torch.zeros(1, n, dtype=torch.bool), patch)
    all_masked = mae_loss(pred, video, torch.ones(1, n, dtype=torch.bool), patch)
    assert math.isfinite(float(none_masked))
    assert float(none_masked) == pytest.approx(float(all_masked))
    one = torch.zeros(1, n, dtype=torch.bool)
    one[0, 1] = True  # the mean over the masked tubelets only, not over all of them
    target = patchify(video, patch)[0, 1]
    expected = ((target - target.mean()) ** 2).mean() / (target.var(unbiased=False) + 1e-6)
    assert float(mae_loss(pred, video, one, patch)) == pytest.approx(float(expected), rel=1e-4)


def test_convert_with_out_leaves_the_source_as_it_was(tiny_model_dir, tmp_path):
    """--out was never exercised: a convert that ignored it overwrote the float32 source in place."""
    import shutil

    from fourds_ros.model.checkpoint import WEIGHTS_FILE
    from training.convert_checkpoint import main as convert

    src = tmp_path / "src"
    shutil.copytree(tiny_model_dir, src)
    before = (src / WEIGHTS_FILE).read_bytes()
    assert convert([str(src), "--dtype", "float16", "--out", str(tmp_path / "half")]) == 0
    assert (src / WEIGHTS_FILE).read_bytes() == before
    assert read_metadata(tmp_path / "half")["stored_dtype"] == "float16"
    assert (tmp_path / "half" / WEIGHTS_FILE).stat().st_size < 0.6 * len(before)
    for a, b in zip(load_checkpoint(src).state_dict().values(), load_checkpoint(tmp_path / "half").state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-2, rtol=1e-3)


def test_the_shipped_models_metadata_gives_the_selected_steps(tmp_path, monkeypatch):
    """With --select-on, the output's metadata 'steps' is the chosen step's (the weights'), not the last."""
    from training.train_readouts import parse_args, train

    from .conftest import SHARED_DATA, require

    seq = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    out = tmp_path / "sel"
    import training.selection as selection

    # make step 2 the best, so that the chosen step differs from the last (6)
    monkey = selection.CheckpointSelection.consider
    def consider(self, model, step):
        score = monkey(self, model, step)
        if step == 2:
            self.history[-1]["score"] = -1.0
            self.best_step, self.best_score = 2, -1.0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return score
    monkeypatch.setattr(selection.CheckpointSelection, "consider", consider)
    train(parse_args(COMMON + ["--steps", "6", "--save-every", "2", "--select-on", str(seq), "--out", str(out)]))
    log = json.loads((out / "training_log.json").read_text())["selection"]
    assert read_metadata(out)["steps"] == str(log["selected_step"])


def test_the_card_counts_the_steps_run_and_each_banks_own_clips():
    """The card's 'Steps' is the steps run (a --time-budget run stops before --steps), and the --pseudo-tracks
    count is the pseudo bank's, after the --real banks (not the first --real sequence's)."""
    from training.readouts_card import model_card, pseudo_words
    from training.readouts_config import parse_args
    from training.readouts_model import model_for

    from .conftest import SHARED_DATA, require

    real = require(SHARED_DATA / "tum_fr1_rpy_f000-079")
    video = require(SHARED_DATA / "videos_unlabelled")
    cfg = parse_args(COMMON + ["--steps", "40", "--time-budget", "5"])
    card = model_card("x", cfg, model_for(cfg), [1.0] * 25, {"depth_abs_rel": 0.5}, "cmd", 1.0, 1.0, "CPU", [])
    assert "- Steps: 25," in card
    cfg = parse_args(COMMON + ["--real", str(real), "--pseudo-tracks", str(video), "--train-heads", "tracks"])
    assert pseudo_words(cfg, [7, 3]).endswith("(3 clips)")


def test_auto_masking_leaves_out_a_still_cameras_pixels():
    """Monodepth2's auto-mask (a pixel whose un-warped neighbour matches as well teaches nothing): on a clip whose
    frames are all the same image, every pixel is left out whatever motion the pose head guesses. Dropping the
    mask trained the depth head on them; no test noticed."""
    from training.photometric import photometric_loss

    gen = torch.Generator().manual_seed(0)
    b, t, h, w = 1, 3, 24, 32
    frame = torch.rand(b, 1, h, w, 3, generator=gen)
    video = frame.expand(b, t, h, w, 3).contiguous()
    depth = torch.full((b, t, h, w), 2.0)
    rotation = torch.eye(3).expand(b, t, 3, 3).contiguous()
    translation = torch.tensor([0.2, 0.0, 0.0]) * torch.arange(t, dtype=torch.float32)[None, :, None]
    k = torch.tensor([[[30.0, 0, (w - 1) / 2], [0, 30.0, (h - 1) / 2], [0, 0, 1]]])
    loss, info = photometric_loss(video, depth, rotation, translation, k)
    assert float(info["photo_masked"]) > 0.95
    assert float(info["photo_error"]) < 1e-4


def test_finetune_blocks_trains_the_last_blocks_without_a_cached_trunk(tmp_path):
    """--finetune-blocks 1 without --cache-features: the encoder pass must keep gradients for the tuned block.
    The existing test runs this path at --lr 0 only, so an encoder pass under no_grad (the block never moving, the
    card still saying 'fine-tuned') survived."""
    from training.train_readouts import parse_args, train

    first = tmp_path / "first"
    train(parse_args(COMMON + ["--steps", "1", "--lr", "0", "--out", str(first)]))
    start = load_checkpoint(first).state_dict()
    train(parse_args(COMMON + ["--init", str(first), "--steps", "2", "--finetune-blocks", "1",
                               "--out", str(tmp_path / "plain")]))
    model = load_checkpoint(tmp_path / "plain").state_dict()
    moved = {n for n, w in model.items() if not torch.equal(w, start[n])}
    assert {n.split(".")[2] for n in moved if n.startswith("encoder.blocks.")} == {"1"}


def test_a_nan_loss_weight_is_refused_wherever_it_stands_in_the_list(tmp_path, capsys):
    """min() over the weights let a NaN through or not by its place in the list."""
    from training.train_readouts import main

    for option in ("--depth-ssi-weight", "--photometric-weight"):
        assert main(COMMON + ["--steps", "1", option, "nan", "--out", str(tmp_path / "x")]) == 2
        assert "must be >= 0" in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def _recipe(tmp_path, **env):
    """training/default_model.sh with a `python` that only records its command lines: (exit code, them)."""
    import os
    import subprocess

    from .conftest import REPO

    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "python").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls"}\n')
    (fake / "python").chmod(0o755)
    (tmp_path / "calls").write_text("")
    run = subprocess.run(["bash", "training/default_model.sh", str(tmp_path / "data"), str(tmp_path / "model")],
                         cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "RUN_DIR": str(tmp_path / "run"),
                              **env})
    return run.returncode, (tmp_path / "calls").read_text().splitlines(), run.stderr


def test_the_recipe_run_again_resumes_its_stopped_stages(tmp_path):
    """training/default_model.sh deleted RUN_DIR before pre-training, so a stopped pre-training run again started
    from step 0 (pretrain had said "the same command resumes it"), and its readout stage saved nothing until the
    end. Now RUN_DIR is deleted with FRESH=1 only, pre-training is always called (it resumes, ends at once when
    finished, or refuses other data: skipped once finished, a new PRETRAIN_VIDEO went unused without a word, the
    regression review's catch), and the readouts save (--save-every) to resume; INIT equal to the output folder is
    refused."""
    stopped = tmp_path / "run" / "checkpoint.pt"
    stopped.parent.mkdir()
    stopped.write_bytes(b"a stopped pre-training")
    code, calls, _ = _recipe(tmp_path)
    assert code == 0 and stopped.is_file()
    assert "training.pretrain" in calls[0] and "--save-every 200" in calls[1]
    (tmp_path / "run" / "encoder").mkdir()
    (tmp_path / "run" / "encoder" / "model.safetensors").write_bytes(b"its encoder")
    code, calls, _ = _recipe(tmp_path, SAVE_EVERY="50", PRETRAIN_VIDEO="/data/new_site")
    assert code == 0 and "training.pretrain" in calls[0] and "/data/new_site" in calls[0]  # pretrain decides
    assert f"--backbone {tmp_path / 'run' / 'encoder'}" in calls[1] and "--save-every 50" in calls[1]
    code, calls, _ = _recipe(tmp_path, FRESH="1")
    assert code == 0 and not stopped.exists() and "training.pretrain" in calls[0]
    code, calls, err = _recipe(tmp_path, INIT=str(tmp_path / "model" / "."))
    assert code == 2 and not calls and "output folder" in err
