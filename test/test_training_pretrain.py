"""MAE pre-training: exact mask fraction, loss falls, exact resume, torchrun DDP == one process,
typed config, and a resume checkpoint that cannot run code."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from fourds_ros.model import load_checkpoint
from fourds_ros.model.masking import num_kept
from training.mae import MAE, build_mae
from training.optim import lr_lambda
from training.pretrain import train
from training.pretrain_config import load_config

from .conftest import REPO


def tiny(**overrides):
    return load_config("tiny", [f"{k}={v}" for k, v in overrides.items()])


@pytest.mark.parametrize("kind", ["random", "tube"])
@pytest.mark.parametrize("ratio", [0.95, 0.75])
def test_masked_fraction_is_exact(kind, ratio):
    cfg = load_config("S")
    mc = cfg.model.model_config()
    t, h, w = mc.token_grid
    n = t * h * w
    expected_kept = num_kept(h * w, ratio) * t if kind == "tube" else num_kept(n, ratio)
    gen = torch.Generator().manual_seed(0)
    from fourds_ros.model import make_mask

    for _ in range(3):
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
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    assert json.loads(full["meta"])["step"] == json.loads(split["meta"])["step"] == 8
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
    w1 = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    w2 = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["model"]
    w0 = build_mae(load_config("tiny")).state_dict()
    # Tolerance. Two processes sum the gradients in another order than one (float32), which
    # changes each gradient element by up to ~eps32 x the sum of its terms' sizes: relative to the
    # element that is unbounded where the terms cancel (a near-zero gradient), so no rtol on the
    # weights holds. AdamW divides the gradient by its running RMS, though: whatever a gradient
    # element's size, it moves its weight by at most about lr per step, so order noise shows as a
    # fraction of sum(lr) over the run, not of the weight. We allow 5 % of that move (1e-4 here;
    # measured: at most 1.05e-5 on a clean clone). A real DDP fault (unsynchronised gradients,
    # another data slice) moves weights by a large share of a step and is caught; so are the
    # losses above.
    lr = load_config("tiny").optim
    total_move = sum(lr.lr * lr_lambda(lr.warmup_steps, lr.steps, lr.min_lr_ratio)(s) for s in range(4))
    atol = 0.05 * total_move
    moved = 0
    for key in w1:
        torch.testing.assert_close(w1[key], w2[key], atol=atol, rtol=0)
        moved += int(((w1[key] - w0[key]).abs() > 10 * atol).sum())
    assert moved > 0  # the tolerance is below the moves training made, so weights were compared


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    from training.pretrain import main

    assert main(["--config", "no-such-size", "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_an_out_it_cannot_write_is_one_line(tmp_path, capsys):
    """An --out under a file (or /sys) was a PermissionError / NotADirectoryError traceback."""
    from training.pretrain import main

    (tmp_path / "a_file").write_text("")
    assert main(["--config", "tiny", "--out", str(tmp_path / "a_file" / "run"), "--no-progress", "optim.steps=1"]) == 2
    assert "a_file" in capsys.readouterr().err


def test_mae_runs_the_encoders_masked_path():
    """One masked encoder path: the MAE's loss is the decoder on `Encoder(video, mask).output`,
    whose kept-tubelet embedding equals the full clip's embedding at the kept tokens."""
    from fourds_ros.model import make_mask
    from fourds_ros.model.masking import gather_tokens
    from training.mae import mae_loss

    mae = build_mae(tiny()).eval()
    assert not hasattr(MAE, "encode_kept")
    video = torch.rand(2, *mae.config.clip_shape)
    mask = make_mask("random", 2, mae.config.token_grid, 0.75, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, grid = mae.encoder.embed(video)
        kept, kept_grid = mae.encoder.embed_kept(video, mask.ids_keep)
        torch.testing.assert_close(kept, gather_tokens(full, mask.ids_keep), atol=1e-5, rtol=1e-5)
        assert kept_grid == grid
        loss, pred = mae(video, mask)
        again = mae.decoder(mae.encoder(video, mask=mask).output, mask.ids_keep)
    assert torch.equal(pred, again) and torch.equal(loss, mae_loss(again, video, mask.masked, mae.config.patch_size))


def test_config_is_typed_and_validated(tmp_path, capsys):
    """The YAML files are the source; load_config gives frozen dataclasses with their types, and
    a key or value that does not fit is a clear error naming it."""
    cfg = load_config("S")
    assert cfg.model.image_size == (224, 224) and cfg.optim.betas == (0.9, 0.95)
    assert cfg.micro_batch_size == 64 and isinstance(cfg.optim.lr, float)
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1
    for override, message in [("optim.lrr=1", "unknown key"), ("mask.ratio=1.0", "mask.ratio"),
                              ("batch_size=2.5", "batch_size must be int"), ("parallel=zero", "parallel"),
                              ("optim.betas=[0.9]", "optim.betas must have 2 values")]:
        with pytest.raises(ValueError, match=message):
            load_config("tiny", [override])
    from training.pretrain import main

    assert main(["--config", "tiny", "--out", str(tmp_path), "optim.stepz=3"]) == 2
    assert "unknown key" in capsys.readouterr().err


def _planted_checkpoint(path, marker):
    """A checkpoint.pt whose unpickling would run code: it creates `marker` when loaded."""
    import pathlib

    class Planted:
        def __reduce__(self):
            return pathlib.Path.touch, (pathlib.Path(marker),)

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": Planted(), "meta": "{}"}, path)


def test_planted_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys):
    # The planted file is a real exploit: loaded the old way (weights_only=False), it runs code.
    _planted_checkpoint(tmp_path / "probe.pt", tmp_path / "probe-ran")
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert (tmp_path / "probe-ran").exists()

    marker = tmp_path / "planted-ran"
    _planted_checkpoint(tmp_path / "run" / "checkpoint.pt", marker)
    from training.pretrain import main
    from training.resume import ResumeError, load_resume

    with pytest.raises(ResumeError, match="not a weights-only training checkpoint"):
        load_resume(tmp_path / "run" / "checkpoint.pt")
    assert main(["--config", "tiny", "--out", str(tmp_path / "run"), "--no-progress", "optim.steps=2"]) == 2
    assert "refusing to resume" in capsys.readouterr().err
    assert not marker.exists()


def test_failed_checkpoint_save_leaves_the_old_one_and_no_temp_file(tmp_path, monkeypatch):
    cfg = tiny(**{"optim.steps": 2, "save_every": 1, "tensorboard": False})
    train(cfg, tmp_path / "run", stop_after=1, progress=False)
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        train(cfg, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
    # encoder/: the final step's, written before its checkpoint (a rerun trains that step again and rewrites it)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt", "config.yaml", "encoder",
                                                                   "losses.json", "run.json"]


def test_a_resumed_time_budgeted_run_keeps_its_fitted_schedule(tmp_path, monkeypatch):
    """The fitted length of a time-budgeted schedule lived in a closure the checkpoint did not
    save: an interrupted run resumed at the config's full length (the learning rate back near its
    peak), and a finished one trained on past its end, rewriting encoder/. The probe is replaced
    by one that fits the schedule to 6 steps after 2 (and to 40 if it were asked again)."""
    import training.pretrain as pretrain
    from training.resume import load_resume

    class Probe:
        fits = iter([6, 40])

        def __init__(self, budget_s, overhead_per_step_s=0.0):
            pass

        def after_step(self, steps_run, done, total_steps):
            return next(self.fits) if steps_run == 2 else None

    monkeypatch.setattr(pretrain, "BudgetProbe", Probe)
    cfg = tiny(**{"optim.steps": 50, "optim.warmup_steps": 1, "save_every": 1, "tensorboard": False,
                  "time_budget_s": 60})
    run = tmp_path / "run"
    assert train(cfg, run, stop_after=4, progress=False)["step"] == 4  # interrupted at 4 of the fitted 6
    assert load_resume(run / "checkpoint.pt").total_steps == 6
    resumed = train(cfg, run, progress=False)
    assert resumed["step"] == 6 and [s for s, _ in resumed["losses"]] == [5, 6]
    state = load_resume(run / "checkpoint.pt")
    expected = cfg.optim.peak_lr(cfg.batch_size) * lr_lambda(1, 6, cfg.optim.min_lr_ratio)(6)
    assert state.scheduler["_last_lr"][0] == pytest.approx(expected)  # the end of the fitted schedule
    encoder = (run / "encoder" / "model.safetensors").read_bytes()
    again = train(cfg, run, progress=False)  # a finished run: nothing more to train
    assert again["step"] == 6 and again["losses"] == []
    assert (run / "encoder" / "model.safetensors").read_bytes() == encoder


def test_a_schedule_fitted_within_its_warmup_still_decays(tmp_path, monkeypatch):
    """A time budget that fits the total at or below the configured warmup (the default recipe's 100 steps,
    on a CPU's tens of steps): the run was all ramp and ended part way up it (0.45 of the peak here),
    never decaying. Now it ends at the schedule's floor, never climbs faster than the configured ramp, and a
    total long enough for its warmup keeps the plain schedule."""
    import training.pretrain as pretrain
    from training.optim import fitted_lr_lambda
    from training.resume import load_resume

    class Probe:
        def __init__(self, budget_s, overhead_per_step_s=0.0):
            pass

        def after_step(self, steps_run, done, total_steps):
            return 8 if steps_run == 2 else None

    monkeypatch.setattr(pretrain, "BudgetProbe", Probe)
    cfg = tiny(**{"optim.steps": 50, "optim.warmup_steps": 20, "optim.min_lr_ratio": 0.1, "save_every": 100,
                  "tensorboard": False, "time_budget_s": 60})
    assert train(cfg, tmp_path / "run", progress=False)["step"] == 8
    state = load_resume(tmp_path / "run" / "checkpoint.pt")
    assert state.scheduler["_last_lr"][0] == pytest.approx(0.1 * cfg.optim.peak_lr(cfg.batch_size))
    fitted = fitted_lr_lambda(20, 8, 0.1)
    assert all(fitted(s) <= (s + 1) / 20 + 1e-12 for s in range(9))
    assert [fitted_lr_lambda(20, 400, 0.1)(s) for s in range(400)] == [lr_lambda(20, 400, 0.1)(s) for s in range(400)]
    assert [fitted_lr_lambda(0, 8, 0.1)(s) for s in range(9)] == [lr_lambda(0, 8, 0.1)(s) for s in range(9)]  # no warmup


def test_a_run_is_resumed_only_with_its_own_settings(tmp_path, capsys):
    """The same --out with another learning rate and mask ratio: it resumed, kept the old learning rate (the
    restored schedule) and applied the new mask, while config.yaml and the checkpoint recorded the new settings.
    Now refused, naming what differs; a longer optim.steps (how long, not what) still resumes."""
    from training.pretrain import main

    cfg = tiny(**{"optim.steps": 4, "save_every": 1, "tensorboard": False})
    train(cfg, tmp_path / "run", stop_after=2, progress=False)
    before = (tmp_path / "run" / "config.yaml").read_text()
    argv = ["--config", "tiny", "--out", str(tmp_path / "run"), "--no-progress", "optim.steps=4", "save_every=1",
            "tensorboard=false"]
    assert main(argv + ["optim.lr=1e-5", "mask.ratio=0.5"]) == 2
    err = capsys.readouterr().err
    assert "refusing to resume" in err and "optim.lr: 0.001 -> 1e-05" in err and "mask.ratio: 0.75 -> 0.5" in err, err
    assert (tmp_path / "run" / "config.yaml").read_text() == before
    longer = train(tiny(**{"optim.steps": 6, "save_every": 1, "tensorboard": False}), tmp_path / "run", progress=False)
    assert [s for s, _ in longer["losses"]] == [3, 4, 5, 6]


def test_a_signal_ends_pretraining_after_its_step_saved_and_the_rerun_keeps_every_steps_loss(tmp_path, monkeypatch):
    """SIGTERM (or Ctrl-C) lost the steps since the last save (up to 999) and this invocation's losses.json,
    and the resumed run's losses.json then held its own steps alone."""
    import os
    import signal

    import training.pretrain as pretrain
    from training.resume import load_resume

    cfg = tiny(**{"optim.steps": 12, "save_every": 4, "tensorboard": "false"})
    step = pretrain.optimizer_step

    def signalled(run):
        step(run)
        if run.step == 7:
            os.kill(os.getpid(), signal.SIGTERM)  # as `timeout` or a job scheduler stops the run

    monkeypatch.setattr(pretrain, "optimizer_step", signalled)
    before = signal.getsignal(signal.SIGTERM)
    stopped = pretrain.train(cfg, tmp_path / "run", progress=False)
    assert stopped["stopped_by"] == signal.SIGTERM and stopped["step"] == 7
    assert load_resume(tmp_path / "run" / "checkpoint.pt").step == 7  # saved at the step it stopped, not at 4
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler back
    monkeypatch.setattr(pretrain, "optimizer_step", step)
    done = pretrain.train(cfg, tmp_path / "run", progress=False)
    assert done["stopped_by"] == 0 and [s for s, _ in done["losses"]] == list(range(8, 13))
    assert [s for s, _ in json.loads((tmp_path / "run" / "losses.json").read_text())] == list(range(1, 13))
    pretrain.train(cfg, tmp_path / "run", progress=False)  # a finished run rerun: nothing to do, nothing erased
    assert len(json.loads((tmp_path / "run" / "losses.json").read_text())) == 12


def test_a_kill_at_the_final_save_still_ends_with_an_encoder(tmp_path, monkeypatch):
    """The final checkpoint was written before the encoder: a kill between them left a finished run that no
    rerun completed (nothing left to train), and the next stage's --backbone RUN/encoder failed."""
    import training.pretrain as pretrain

    cfg = tiny(**{"optim.steps": 4, "save_every": 2, "tensorboard": "false"})
    save_resume = pretrain.save_resume

    def killed_at_the_end(path, *args, **kwargs):
        if args[3] == 4:  # the final step's checkpoint
            raise KeyboardInterrupt
        return save_resume(path, *args, **kwargs)

    monkeypatch.setattr(pretrain, "save_resume", killed_at_the_end)
    with pytest.raises(KeyboardInterrupt):
        pretrain.train(cfg, tmp_path / "run", progress=False)
    monkeypatch.setattr(pretrain, "save_resume", save_resume)
    assert (tmp_path / "run" / "encoder" / "model.safetensors").is_file()  # written before the checkpoint
    pretrain.train(cfg, tmp_path / "run", progress=False)  # reruns steps 3-4 and writes both
    assert (tmp_path / "run" / "encoder" / "model.safetensors").is_file()


# A pretraining run whose step 2 never ends (a stuck loader worker, a collective waiting on a dead rank).
HANGING_STEP = """\
import sys, time
import training.pretrain as pretrain
from training.pretrain_config import load_config
step = pretrain.optimizer_step
def hangs(run):
    step(run)
    if run.step == 2:
        print("hanging", flush=True)
        while True:
            time.sleep(0.05)
pretrain.optimizer_step = hangs
pretrain.train(load_config("tiny", ["optim.steps=6", "tensorboard=false"]), sys.argv[1], progress=False)
"""


def test_a_second_ctrl_c_stops_a_step_that_never_ends(tmp_path):
    """The first SIGINT only asks the run to stop after its step: a step that never ended could then be stopped by
    SIGKILL alone (Ctrl-C, again, and SIGTERM did nothing)."""
    import signal
    import subprocess
    import sys
    import time

    run = subprocess.Popen([sys.executable, "-c", HANGING_STEP, str(tmp_path / "run")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline().strip() == "hanging"
        run.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert run.poll() is None  # the first asks for the end of a step that never comes
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=10)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0 and "stopping after this step" in err and "KeyboardInterrupt" in err, err


def test_pretraining_stopped_by_a_process_group_sigterm_saves_where_it_stopped(tmp_path):
    """`timeout`, SLURM and systemd send SIGTERM to the whole process group: the loader worker died of it, the
    loader raised a RuntimeError and the run ended with nothing saved (though it had printed "saved"). Now the
    workers leave SIGTERM to the training process, which saves after its step and exits 128 + SIGTERM."""
    import signal
    import time

    from training.resume import load_resume

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "training.pretrain", "--config", "tiny", "--out", str(out),
                             "--no-progress", "optim.steps=100000", "save_every=100000", "num_workers=1",
                             "tensorboard=false"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (out / "config.yaml").is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(8)  # the worker started and steps ran
        os.killpg(proc.pid, signal.SIGTERM)  # as `timeout` or a scheduler stops a job
        log, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, log
    assert load_resume(out / "checkpoint.pt").step > 0, log


def test_a_finished_pretraining_rerun_with_its_data_spelled_another_way_ends_at_once(tmp_path):
    """training/default_model.sh now always calls pre-training: a finished run rerun with the same data given as an
    absolute path or with a trailing slash (tab completion) was refused, and the recipe stopped (set -e)."""
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    run = [sys.executable, "-m", "training.pretrain", "--config", "tiny", "--out", str(tmp_path / "run"),
           "--no-progress", "optim.steps=2", "num_workers=0"]
    first = subprocess.run(run + ["data.root=[samples/hololens_000]"], cwd=repo, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(run + [f"data.root=[{repo}/samples/hololens_000/]"], cwd=repo, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_a_loader_failing_of_a_stop_signal_mid_step_saves_the_last_whole_step(tmp_path, monkeypatch):
    """A worker that died of the signal (the loader raises in the training process) ends the run with the last whole
    step saved (save_if_stopped)."""
    import training.pretrain as pretrain
    from training.resume import load_resume

    cfg = tiny(**{"optim.steps": 12, "save_every": 100, "tensorboard": "false"})
    accumulate, calls = pretrain.accumulate, []

    def dying(run, batch, accumulation, last):
        calls.append(run.step)
        if run.step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
            raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Terminated.")
        return accumulate(run, batch, accumulation, last)

    monkeypatch.setattr(pretrain, "accumulate", dying)
    stopped = pretrain.train(cfg, tmp_path / "run", progress=False)
    assert stopped["stopped_by"] == signal.SIGTERM and stopped["step"] == 5
    assert load_resume(tmp_path / "run" / "checkpoint.pt").step == 5


def test_a_finished_run_without_its_encoder_gets_one_when_rerun(tmp_path):
    """A run finished under the old save order and killed between its final checkpoint and its encoder: its command
    run again writes the encoder (nothing left to train)."""
    import shutil

    import training.pretrain as pretrain

    cfg = tiny(**{"optim.steps": 2, "save_every": 2, "tensorboard": "false"})
    pretrain.train(cfg, tmp_path / "run", progress=False)
    shutil.rmtree(tmp_path / "run" / "encoder")
    again = pretrain.train(cfg, tmp_path / "run", progress=False)
    assert again["step"] == 2 and (tmp_path / "run" / "encoder" / "model.safetensors").is_file()


def test_a_pretraining_run_records_its_code_revision_and_command(tmp_path, monkeypatch):
    """Nothing in a pretraining run's folder said which code trained it or by which command. Now run.json and the
    checkpoint record the revision (git HEAD of the checkout training/ is imported from, None outside one),
    whether its tracked code had changes, the command and the initial weights' sha256 (None: pretraining starts
    from its seed); a resumed run keeps its start's record and adds its own, whatever its revision."""
    import training.provenance as provenance
    from training.pretrain import main
    from training.resume import load_resume

    out = tmp_path / "run"
    argv = ["--config", "tiny", "--out", str(out), "--no-progress", "--stop-after", "1", "optim.steps=2",
            "tensorboard=false", "save_every=1"]
    assert main(argv) == 0
    record = json.loads((out / "run.json").read_text())
    start = provenance.code_revision()
    assert (record["code_revision"], record["code_dirty"]) == start
    assert start[0] is None or len(start[0]) == 40
    assert record["init_sha256"] is None and record["argv"] == argv and record["resumes"] == []
    assert record["command"].startswith("python -m training.pretrain --config tiny --out ")
    assert load_resume(out / "checkpoint.pt").record == record
    monkeypatch.setattr(provenance, "REPO", tmp_path)  # resumed from code outside a checkout: not refused
    assert main(argv[:5] + argv[7:]) == 0
    record = json.loads((out / "run.json").read_text())
    assert (record["code_revision"], record["code_dirty"]) == start and record["argv"] == argv
    [resume] = record["resumes"]
    assert resume["step"] == 1 and resume["code_revision"] is None and resume["argv"] == argv[:5] + argv[7:]
    assert load_resume(out / "checkpoint.pt").record == record


def test_outside_a_git_checkout_a_pretraining_run_records_nulls_and_succeeds(tmp_path, monkeypatch):
    import training.provenance as provenance

    monkeypatch.setattr(provenance, "REPO", tmp_path)
    result = train(tiny(**{"optim.steps": 1, "tensorboard": "false"}), tmp_path / "run", progress=False)
    assert result["step"] == 1
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["code_revision"] is None and record["code_dirty"] is None and record["init_sha256"] is None
    assert record["command"] is None  # not started from a command line


def test_a_finished_pretraining_run_rerun_records_no_resume(tmp_path):
    """training/default_model.sh calls pre-training at every rerun; a finished run then ends at once, training and
    saving nothing. Its run.json recorded a resume at the last step that the checkpoint never got, and each later
    rerun replaced it (run.json named the last rerun's revision as having resumed the run)."""
    from training.pretrain import main
    from training.resume import load_resume

    out = tmp_path / "run"
    argv = ["--config", "tiny", "--out", str(out), "--no-progress", "optim.steps=2", "tensorboard=false"]
    for _ in range(3):
        assert main(argv) == 0
        record = json.loads((out / "run.json").read_text())
        assert record["resumes"] == [] and record == load_resume(out / "checkpoint.pt").record, record
