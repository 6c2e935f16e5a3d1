"""MAE pre-training of the 4DS encoder: `python -m training.pretrain --config training/configs/tiny.yaml`.

The loop and command line (as facebookresearch/mae's main_pretrain.py); the model and loss are
training/mae.py, the typed config training/pretrain_config.py, processes training/distributed.py.
- Model: the FourDS encoder (kept tokens only) + `training.decoder.CoarseGridDecoder`; loss on
  per-tubelet normalised pixels of the masked tubelets; 95 % random or tube masking by default.
- Optimiser: AdamW (no decay on biases, norms, position embeddings and queries), linear warmup
  then cosine decay; bf16 autocast on CUDA; gradient accumulation; activation checkpointing.
- Multi-device: run under `torchrun`; `parallel: ddp` wraps in DistributedDataParallel,
  `parallel: fsdp` shards every block with FSDP2 (`torch.distributed.fsdp.fully_shard`).
  The global batch is fixed; each rank takes its slice, so losses equal one process's.
- Checkpoints: `<out>/checkpoint.pt` written atomically (fsync + rename) with model, optimiser,
  scheduler, step and RNG state, as tensors and JSON (training/resume.py: loaded with
  weights_only=True); rerunning the command resumes from it. The encoder is also saved as a
  node-loadable model dir `<out>/encoder/` (config.json + model.safetensors).
- Logs: TensorBoard in `<out>/tb`, tqdm progress bar on rank 0; `<out>/run.json` (and the checkpoint) records
  the code revision and command line of the invocation that started the run and of each that resumed it
  (training/provenance.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from fourds_ros.model import TokenMask, save_checkpoint

from .budget import BudgetProbe
from .data import PretrainClips
from .distributed import (
    Process, StepSampler, barrier, full_state_dicts, init_distributed, load_full_state_dicts,
    mean_over_processes, no_sync, wrap_model,
)
from .mae import MAE, build_mae
from .optim import fitted_lr_lambda, lr_lambda, param_groups
from .pretrain_config import PretrainConfig, load_config
from .provenance import invocation, run_record
from .resume import ResumeError, config_conflicts, load_resume, save_resume


@dataclass
class Run:
    """One invocation's training state. step: global steps done; stop: this invocation's last."""

    cfg: PretrainConfig
    process: Process
    mae: MAE
    model: nn.Module  # what is called: mae, or its DDP wrapper
    fsdp: bool
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    step: int
    total_steps: int
    stop: int
    out_dir: Path
    fitted: bool = False  # total_steps fitted to the time budget (here or by the run this one resumes)
    record: dict | None = None  # what the run was made from (provenance.run_record): run.json, the checkpoint


def batch_sizes(cfg: PretrainConfig, world: int) -> tuple[int, int]:
    """(micro-batch per forward, micro-batches accumulated per step) of one process."""
    local = cfg.batch_size // world
    micro = cfg.micro_batch_size or local
    if local % micro:
        raise ValueError(f"per-process batch {local} is not divisible by micro_batch_size {micro}")
    return micro, local // micro


# Settings a resumed run may change: how it runs and for how long, not what it trains (optim.steps lengthens or
# shortens the schedule; micro_batch_size keeps the batch, accumulated differently).
RESUME_FREE = {"micro_batch_size", "parallel", "activation_checkpointing", "num_workers", "save_every", "resume",
               "tensorboard", "time_budget_s", "optim.steps"}


def resume_conflicts(stored: dict, now: dict) -> list[str]:
    """The settings (dotted keys) in which `now` differs from the checkpoint's `stored` config, outside
    RESUME_FREE: "key: stored -> now" each."""
    return [f"{name}: {a!r} -> {b!r}" for name, a, b in config_conflicts(_real_roots(stored), _real_roots(now),
                                                                          RESUME_FREE)]


def _real_roots(config: dict) -> dict:
    """config with data.root's folders as real paths: one folder spelled another way (absolute, a trailing slash,
    through a symlink) is the same data, and a finished run rerun by the recipe was refused for it."""
    data = config.get("data")
    if not isinstance(data, dict) or "root" not in data:
        return config
    roots = data["root"] if isinstance(data["root"], (list, tuple)) else [data["root"]]
    return {**config, "data": {**data, "root": [os.path.realpath(os.path.expanduser(str(r))) for r in roots]}}


def prepare(cfg: PretrainConfig, out_dir: Path, process: Process, stop_after: int | None,
            argv: list[str] | None = None) -> Run:
    """Model, optimiser and schedule, resumed from `<out_dir>/checkpoint.pt` when there is one; the run's record
    (argv: this invocation's command line, None where it was not started from one)."""
    # No initial weights: the model starts from cfg.seed (init_sha256 None). Recorded before anything is loaded.
    now, stored = invocation("training.pretrain", argv, {"init": None}), None
    mae = build_mae(cfg).to(process.device)
    model, fsdp = wrap_model(mae, [*mae.encoder.blocks, *mae.decoder.blocks], process, cfg.parallel)
    opt = cfg.optim
    optimizer = torch.optim.AdamW(param_groups(mae, opt.weight_decay), lr=opt.peak_lr(cfg.batch_size),
                                  betas=opt.betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(opt.warmup_steps, opt.steps, opt.min_lr_ratio))
    start, total, fitted = 0, opt.steps, False
    ckpt_path = out_dir / "checkpoint.pt"
    if cfg.resume and ckpt_path.is_file():
        state = load_resume(ckpt_path)
        if conflicts := resume_conflicts(state.config, cfg.to_dict()):
            raise ResumeError(f"{ckpt_path} was trained with other settings ({'; '.join(conflicts)}): refusing to resume "
                              "it with these (the restored schedule kept the old learning rate while config.yaml "
                              "recorded the new one); give the run's own settings, or another --out")
        load_full_state_dicts(mae, optimizer, state.model, state.optimizer, fsdp)
        scheduler.load_state_dict(state.scheduler)
        start, stored = state.step, state
        if state.total_steps is not None:  # the schedule a time budget fitted goes on as it was
            total, fitted = min(state.total_steps, opt.steps), True
            scheduler.lr_lambdas[0] = fitted_lr_lambda(opt.warmup_steps, total, opt.min_lr_ratio)
    stop = total if stop_after is None else min(total, stop_after)
    record = run_record(None, now, None) if stored is None else (
        run_record(stored.record, now, stored.step) if stored.step < stop
        # a finished run rerun (default_model.sh) trains nothing and saves nothing: no resume to record
        else stored.record or {**dict.fromkeys(now), "resumes": []})
    return Run(cfg, process, mae, model, fsdp, optimizer, scheduler, start, total, stop, out_dir, fitted, record)


def make_loader(run: Run, micro: int) -> DataLoader:
    cfg, process = run.cfg, run.process
    data = PretrainClips(run.mae.config, dict(cfg.data), cfg.mask.kind, cfg.mask.ratio, seed=cfg.seed)
    sampler = StepSampler(run.step, run.stop, cfg.batch_size, process.rank, process.world)
    return DataLoader(data, batch_size=micro, sampler=sampler, num_workers=cfg.num_workers,
                      pin_memory=process.device.type == "cuda", worker_init_fn=_ignore_ctrl_c)


def _ignore_ctrl_c(worker_id: int) -> None:
    """A loader worker leaves Ctrl-C (sent to the terminal's whole process group) and a process group's SIGTERM
    (`timeout`, SLURM, systemd) to the training process, which saves and ends after its running step
    (StopSignals); a worker that died of either stopped the loader, and the run ended unsaved."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _accumulated(run: Run, batch: dict, accumulation: int, last: bool, signals: StopSignals) -> torch.Tensor | None:
    """accumulate's loss share; None where the loader failed while a stop signal was pending (torch raises a dead
    worker's RuntimeError from its SIGCHLD handler, wherever the training process then is): the stop (_batches)."""
    try:
        return accumulate(run, batch, accumulation, last)
    except RuntimeError as e:
        if not signals.signum or "DataLoader worker" not in str(e):
            raise
        return None


def _batches(loader: DataLoader, signals: StopSignals):
    """The loader's batches, ending where it fails while a stop signal is pending: a worker that died of the
    signal before it could ignore it (one still starting) is the stop, saved by the caller, not a crash."""
    batches = iter(loader)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except RuntimeError:
            if not signals.signum:
                raise
            return
        yield batch


class StopSignals:
    """SIGINT and SIGTERM while training end it after the running step, with a checkpoint: the steps since the
    last save (up to save_every - 1: 999 for the S/B/L/G configs) and losses.json were lost, and a Ctrl-C
    was a traceback. signum: the signal caught (0: none)."""

    def __init__(self):
        self.signum, self._previous = 0, {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # (only there can handlers be set)
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._caught)
        return self

    def _caught(self, signum, frame) -> None:
        if self.signum:  # the second: the step does not end (a stuck loader worker, a collective waiting on a
            self.__exit__()  # dead rank), and the run stops at once, as before the first was caught
            signal.raise_signal(signum)
            return
        self.signum = signum
        print(f"{signal.Signals(signum).name}: stopping after this step, saved (again to stop at once)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def requested(self, process: Process) -> bool:
        """Whether any process was signalled: all stop at the same step (saving is a collective)."""
        if process.world == 1:
            return self.signum != 0
        flag = torch.tensor(float(self.signum != 0), device=process.device)
        return bool(mean_over_processes(flag, process) > 0)


class Progress:
    """TensorBoard scalars and a tqdm bar, on the main process only."""

    def __init__(self, run: Run, progress: bool):
        main = run.process.main
        self.writer = self.bar = None
        if main and run.cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run.out_dir / "tb"))
        if main and progress:
            from tqdm import tqdm

            self.bar = tqdm(total=run.total_steps, initial=run.step, desc="mae", dynamic_ncols=True)

    def step(self, run: Run, loss: float) -> None:
        if self.writer is not None:
            self.writer.add_scalar("loss/mae", loss, run.step)
            self.writer.add_scalar("lr", run.scheduler.get_last_lr()[0], run.step)
        if self.bar is not None:
            self.bar.total = run.total_steps
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}")

    def close(self, run: Run, seconds: float) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.add_scalar("time/seconds", seconds, run.step)
            self.writer.close()


def accumulate(run: Run, batch: dict, accumulation: int, last: bool) -> torch.Tensor:
    """Forward and backward of one micro-batch; its loss share (detached)."""
    device = run.process.device
    video = batch["video"].to(device, non_blocking=True)
    mask = TokenMask(batch["ids_keep"].to(device), batch["ids_restore"].to(device), batch["masked"].to(device))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with no_sync(run.model, run.process, run.fsdp, sync=last):
        with autocast:
            loss, _ = run.model(video, mask)
        (loss / accumulation).backward()
    return loss.detach() / accumulation


def optimizer_step(run: Run) -> None:
    if run.cfg.optim.clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(run.mae.parameters(), run.cfg.optim.clip_grad)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.scheduler.step()
    run.step += 1


def fit_time_budget(run: Run, total_steps: int) -> None:
    """Shorten the schedule to the time budget once the step time is known (BudgetProbe)."""
    opt = run.cfg.optim
    run.total_steps, run.fitted = total_steps, True
    run.stop = min(run.stop, run.total_steps)
    run.scheduler.lr_lambdas[0] = fitted_lr_lambda(opt.warmup_steps, run.total_steps, opt.min_lr_ratio)


def save(run: Run) -> None:
    """checkpoint.pt (and, at the end of the schedule, the encoder model dir). Every process
    calls it: gathering sharded state is a collective."""
    model_state, optim_state = full_state_dicts(run.mae, run.optimizer, run.fsdp)
    if run.process.main:
        if run.step == run.total_steps:  # the encoder first: the final checkpoint ends the run, and a kill
            prefix = "encoder."          # between the two left a finished run without one, for good
            encoder_state = {k[len(prefix):]: v for k, v in model_state.items() if k.startswith(prefix)}
            save_checkpoint(run.mae.export_encoder(encoder_state), run.out_dir / "encoder",
                            metadata={"mae_steps": run.step})
        save_resume(run.out_dir / "checkpoint.pt", model_state, optim_state, run.scheduler.state_dict(),
                    run.step, run.cfg.to_dict(), run.total_steps if run.fitted else None, record=run.record)
    barrier()


def save_if_stopped(run: Run, signals: StopSignals, saved: int) -> None:
    """The last whole step saved where a stop signal ended the run before its save: the loader failed of it
    (_batches, _accumulated) mid-step."""
    if signals.signum and saved != run.step:
        save(run)


def write_run_files(run: Run) -> None:
    """config.yaml (the settings) and run.json (the run's record), by the main process, as the run starts."""
    if run.process.main:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        (run.out_dir / "config.yaml").write_text(yaml.safe_dump(run.cfg.to_dict(), sort_keys=False))
        (run.out_dir / "run.json").write_text(json.dumps(run.record, indent=1) + "\n")


def train(cfg: PretrainConfig, out_dir: str | Path, stop_after: int | None = None, progress: bool = True,
          argv: list[str] | None = None) -> dict:
    """Run (or resume) pre-training. stop_after: end after this global step, as if interrupted
    (the checkpoint is written), for tests. SIGINT / SIGTERM end it after the running step, saved (StopSignals).
    argv: the command line, for the run's record (run.json).
    Returns {"step", "losses": [(step, loss)], "out", "stopped_by": the signal, 0 if none}."""
    out_dir = Path(out_dir)
    process = init_distributed()
    torch.manual_seed(cfg.seed)
    micro, accumulation = batch_sizes(cfg, process.world)
    run = prepare(cfg, out_dir, process, stop_after, argv)
    start = run.step
    write_run_files(run)
    loader = make_loader(run, micro)
    log = Progress(run, progress)
    losses: list[tuple[int, float]] = []
    run.model.train()
    micro_index, running, saved = 0, torch.zeros((), device=process.device), start  # saved: the last step saved
    t0, budget = time.perf_counter(), BudgetProbe(cfg.time_budget_s)
    if start == run.total_steps and not (out_dir / "encoder").is_dir():
        save(run)  # a finished run killed between its final checkpoint and encoder (before they swapped order)
    with StopSignals() as signals:
        for batch in _batches(loader, signals):
            if run.step >= run.stop:
                break
            last = micro_index == accumulation - 1
            if (share := _accumulated(run, batch, accumulation, last, signals)) is None:
                break  # the loader failed of a stop signal mid-step: the last whole step is saved below
            running += share
            micro_index += 1
            if not last:
                continue
            optimizer_step(run)
            losses.append((run.step, float(mean_over_processes(running, process))))
            running.zero_()
            micro_index = 0
            if not math.isfinite(losses[-1][1]):  # the weights are lost from here; checkpoint.pt holds the last good save
                write_losses(out_dir, losses, process)  # the curve that shows the divergence
                raise FloatingPointError(f"non-finite MAE loss at step {run.step}: {losses[-1][1]} (lower optim.lr?)")
            fitted = None if run.fitted else budget.after_step(run.step - start, run.step, run.total_steps)
            if fitted is not None:
                fit_time_budget(run, fitted)
            log.step(run, losses[-1][1])
            stopping = signals.requested(process)
            if stopping or run.step % cfg.save_every == 0 or run.step == run.stop:
                save(run)
                saved = run.step
            if stopping:
                break
    save_if_stopped(run, signals, saved)
    if run.step == start and start < run.stop and not signals.signum:
        raise RuntimeError("data loader produced no batches")
    write_losses(out_dir, losses, process)
    log.close(run, time.perf_counter() - t0)
    return {"step": run.step, "losses": losses, "out": str(out_dir), "stopped_by": signals.signum}


def write_losses(out_dir: Path, losses: list[tuple[int, float]], process) -> None:
    """losses.json: the run's per-step losses (averaged over processes), by the main process: this invocation's
    after those of the invocations it resumed (a resumed run wrote its own steps alone; a finished one rerun,
    []). An unreadable file is replaced by this invocation's."""
    if not process.main or not losses:
        return
    path, earlier = out_dir / "losses.json", []
    if path.is_file():
        with contextlib.suppress(ValueError, TypeError, IndexError):
            earlier = [list(e) for e in json.loads(path.read_text()) if e[0] < losses[0][0]]
    path.write_text(json.dumps([*earlier, *map(list, losses)]) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pretrain", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny", help="YAML path or name in training/configs")
    parser.add_argument("--out", required=True, help="run directory (checkpoint.pt, encoder/, tb/)")
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this step (resumable)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. optim.steps=50")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        result = train(cfg, args.out, stop_after=args.stop_after, progress=not args.no_progress,
                       argv=sys.argv[1:] if argv is None else list(argv))
    # OSError: a missing config, an --out it cannot write; FloatingPointError: a diverged run
    except (OSError, ValueError, FloatingPointError, yaml.YAMLError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0 and result["losses"]:
        first, last = result["losses"][0], result["losses"][-1]
        print(f"steps {first[0]}..{last[0]}: loss {first[1]:.6f} -> {last[1]:.6f}")
    if result["stopped_by"] and int(os.environ.get("RANK", "0")) == 0:
        print(f"stopped by {signal.Signals(result['stopped_by']).name} after step {result['step']}, saved: the same "
              "command resumes it", file=sys.stderr)
    if torch.distributed.is_initialized():
        # Every rank's collectives done before any rank tears the group down: a rank that left
        # first once aborted in Gloo's teardown ("terminate called without an active exception",
        # SIGABRT, test_torchrun_two_processes_equal_one in one CI run of session 44).
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return 128 + result["stopped_by"] if result["stopped_by"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
