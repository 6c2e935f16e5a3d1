"""Readout training: depth, point-track and camera-pose heads on a (frozen by default) 4DS encoder.

    python -m training.train_readouts --backbone runs/S/encoder --name 4ds-s-readouts
    python -m training.train_readouts --size tiny --clip 4x32x32 --steps 200 --out /tmp/m

The backbone is any model dir in our format: our MAE encoder (`<run>/encoder`) or an imported
official checkpoint (`fourds-ros import`). Without --backbone a randomly initialised encoder of
--size is used (tests, smoke runs). Training data are synthetic labelled clips
(training.data.SyntheticLabelledClips); a disjoint seed range is the held-aside split evaluated
every --eval-every steps. The output `models/<name>/` holds model.safetensors + config.json
(save_checkpoint, loadable by the node unchanged), a README.md model card and training_log.json (losses,
metrics and what the run was made from: code revision, command, --init's sha256; training/provenance.py).

With --save-every N the run saves its progress every N steps: OUT/checkpoint (a model dir, metadata kind
"progress"), OUT/selected under --select-on (kind "selected") and OUT/resume.pt (readouts_resume.py: optimiser,
schedule, sampler and RNG state, losses, selection). A stopped run's command run again resumes from resume.pt,
as the uninterrupted run would have gone on; --init starts a new run from a model's weights. SIGINT or SIGTERM
ends the run after its running step with the same three saved, whatever --save-every is (exit 130 / 143).

This file is the loop and command line; the model and loss are training/readouts_model.py, the
data training/readouts_data.py, the typed config training/readouts_config.py.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from fourds_ros.engine.factory import resolve_device
from fourds_ros.evaluation.suite import TRAINING_SCENES_FILE
from fourds_ros.model import FourDS, save_checkpoint
from fourds_ros.model.checkpoint import WEIGHTS_FILE, read_metadata

from .budget import BudgetProbe
from .pretrain import StopSignals
from .provenance import invocation, run_record
from .readouts_card import model_card
from .readouts_config import ReadoutsConfig, parse_args
from .readouts_data import (Banks, BatchSampler, check_recording_lengths, load_banks, selection_batches,
                            val_batches)
from .readouts_model import DepthTeacher, compute_losses, evaluate, load_teacher, model_for, photometric_losses
from .readouts_resume import RESUME_FILE, ReadoutsResume, best_differences, load_resume, resume_conflicts, save_resume
from .resume import ResumeError, set_rng_state
from .selection import CheckpointSelection

REPO = Path(__file__).resolve().parents[1]

__all__ = ["main", "parse_args", "train"]


class WarmupCosine:
    """LambdaLR factor: linear warmup over 5 % of the steps, then cosine decay to 0 at `total`.

    provisional: `total` is a placeholder (--steps under --time-budget) until `fit` sets the real
    one (BudgetProbe, at step 25). Why: warmed up over 5 % of the placeholder (5000 of 100000
    steps), steps 1-26 ran at 0.02-0.5 % of the peak rate and the fitted total then jumped it to
    ~90 % of the peak at step 27. So until the fit the warmup spans PROVISIONAL_WARMUP steps at
    most, and from the fit on the factor climbs from where it stands at the fitted warmup's rate
    (1 / its steps; more gently where a straight line still meets the peak at the end of the
    fitted warmup) into the fitted schedule: no jump, however long the run turns out to be."""

    # About the warmup of the shortest GPU session runs (5 % of the 1700-6200 steps their budgets
    # fitted, docs/results train logs), so that the fitted warmup mostly goes on more gently.
    PROVISIONAL_WARMUP = 100

    def __init__(self, total: int, provisional: bool = False):
        self.total = total
        self.warmup = max(1, total // 20)
        if provisional:  # the real total is at most the placeholder: so is its warmup
            self.warmup = min(self.warmup, self.PROVISIONAL_WARMUP)
        self.joint: tuple[int, float] | None = None  # (step, factor) where a fitted total took over

    def __call__(self, step: int) -> float:
        if self.joint is not None and step > self.joint[0]:
            return self._fitted(step)
        return min(1.0, (step + 1) / self.warmup) * 0.5 * (1 + np.cos(np.pi * min(1.0, step / self.total)))

    def fit(self, total: int, step: int) -> None:
        """The real total, known at `step` (the scheduler's last step, whose factor is in use)."""
        self.joint = (step, self(step))
        self.total, self.warmup = total, max(1, total // 20)

    def state(self) -> dict:
        """Its parameters, JSON-able (a resume file's; the LambdaLR's own state holds only its step)."""
        return {"total": self.total, "warmup": self.warmup,
                "joint": None if self.joint is None else [self.joint[0], float(self.joint[1])]}

    def load(self, state: dict) -> None:
        self.total, self.warmup = int(state["total"]), int(state["warmup"])
        self.joint = None if state["joint"] is None else (int(state["joint"][0]), float(state["joint"][1]))

    def _decay(self, step: int) -> float:
        return 0.5 * (1 + np.cos(np.pi * min(1.0, step / self.total)))

    def _fitted(self, step: int) -> float:
        start, factor = self.joint
        peak = self.warmup - 1  # the plain schedule's first step at the full rate
        top = self._decay(max(start, peak))
        if factor > top:  # a total so short that its decay is below the rate in use: decay from there
            return factor * 0.5 * (1 + np.cos(np.pi * min(1.0, (step - start) / max(1, self.total - start))))
        rate = 1.0 / self.warmup
        if peak > start:
            rate = min(rate, (top - factor) / (peak - start))
        return min(factor + (step - start) * rate, self._decay(max(step, peak)))


def make_optimizer(model: FourDS, cfg: ReadoutsConfig, extra: torch.nn.Module | None = None
                   ) -> tuple[torch.optim.AdamW, list[torch.nn.Parameter]]:
    """AdamW over the trained parameters (encoder at --encoder-lr-scale of the heads' lr; `extra`,
    a module trained beside the model, at the heads' lr) and the list of them (for gradient clipping)."""
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    head_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
    head_params += [] if extra is None else list(extra.parameters())
    groups = [{"params": head_params, "lr": cfg.lr}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": cfg.lr * cfg.encoder_lr_scale})
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay), head_params + encoder_params


@dataclasses.dataclass
class Loop:
    """One invocation's training state (fit): what OUT/resume.pt saves at every --save-every step and a
    resumed run restores (readouts_resume.py)."""

    model: FourDS
    cfg: ReadoutsConfig
    sampler: BatchSampler
    optimizer: torch.optim.AdamW
    params: list[torch.nn.Parameter]
    schedule: WarmupCosine
    scheduler: torch.optim.lr_scheduler.LambdaLR
    pose_copy: torch.nn.Module | None
    teacher: DepthTeacher | None
    selection: CheckpointSelection | None
    history: list[float] = dataclasses.field(default_factory=list)
    evals: list[dict] = dataclasses.field(default_factory=list)
    record: dict = dataclasses.field(default_factory=dict)  # what the run was made from (provenance.run_record)


def make_loop(model: FourDS, cfg: ReadoutsConfig, sampler: BatchSampler,
              selection: CheckpointSelection | None) -> Loop:
    # --photometric: the poses of unlabelled clips come from a copy of the pose head that learns
    # beside the depth head and is never saved, so the shipped pose head stays as it is.
    pose_copy = copy.deepcopy(model.heads["pose"]).requires_grad_(True) if cfg.photometric else None
    optimizer, params = make_optimizer(model, cfg, pose_copy)
    teacher = (load_teacher(cfg.depth_teacher, model, cfg.finetune_blocks, cfg.depth_teacher_holds)
               if cfg.depth_teacher else None)
    schedule = WarmupCosine(cfg.steps, provisional=bool(cfg.time_budget))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return Loop(model, cfg, sampler, optimizer, params, schedule, scheduler, pose_copy, teacher, selection)


def training_step(loop: Loop) -> float:
    """One optimiser step on a batch; its loss."""
    model, cfg = loop.model, loop.cfg
    model.train()
    if not cfg.finetune:
        model.encoder.eval()
    device = next(model.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with autocast:
        loss, _ = compute_losses(model, loop.sampler(), cfg.finetune, list(cfg.loss_heads),
                                 cfg.depth_ssi_weight, cfg.depth_grad_weight, cfg.pose_direction_weight,
                                 tuned_blocks=cfg.finetune_blocks, teacher=loop.teacher,
                                 teacher_weight=cfg.depth_teacher_weight)
        if loop.pose_copy is not None:
            photo, _ = photometric_losses(model, loop.pose_copy, loop.sampler.unlabelled(), cfg.finetune,
                                          cfg.finetune_blocks)
            loss = loss + cfg.photometric_weight * photo
    loop.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(loop.params, 1.0)
    loop.optimizer.step()
    loop.scheduler.step()
    return float(loss.detach())


def fit(model: FourDS, cfg: ReadoutsConfig, next_batch: BatchSampler, val: list[dict],
        selection: CheckpointSelection | None = None, resumed: ReadoutsResume | None = None,
        record: dict | None = None) -> tuple[list[float], list[dict]]:
    """The training steps: (loss per step, held-aside metrics every --eval-every steps); with a
    selection, the model is also scored on the validation recordings every --save-every steps.
    resumed: a stopped run's resume file, whose state the loop goes on from (resume_loop).
    record: the run's record (start_record), kept in its resume file."""
    loop = make_loop(model, cfg, next_batch, selection)
    loop.record = record or {}
    if resumed is not None:
        resume_loop(loop, resumed)
    history, schedule, start = loop.history, loop.schedule, len(loop.history)
    # The scorings on the validation recordings every --save-every steps spend the budget too.
    scoring_s = selection.seconds / cfg.save_every if selection is not None and cfg.save_every else 0.0
    budget = BudgetProbe(cfg.time_budget, overhead_per_step_s=scoring_s)
    from tqdm import tqdm

    bar = tqdm(total=schedule.total, initial=start, desc="readouts", disable=cfg.no_progress)
    with StopSignals() as signals:
        run_steps(loop, val, budget, start, bar, signals)
    bar.close()
    return history, loop.evals


class Stopped(Exception):
    """A stop signal (SIGINT, SIGTERM) ended the run after a step, its loop state and progress saved."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}")
        self.signum, self.step = signum, step


def run_steps(loop: Loop, val: list[dict], budget: BudgetProbe, start: int, bar, signals: StopSignals) -> None:
    """fit's steps. A stop signal ends them after the running step with OUT/checkpoint and OUT/resume.pt saved
    (Stopped), so the same command resumes there. Why: Ctrl-C was a KeyboardInterrupt traceback and SIGTERM
    (`timeout`, SLURM, systemd) an instant death, the steps since the last --save-every lost (all without it)."""
    model, cfg, history, schedule, selection = loop.model, loop.cfg, loop.history, loop.schedule, loop.selection
    while len(history) < schedule.total:
        history.append(training_step(loop))
        if not math.isfinite(history[-1]):  # the weights are lost from here: stop, say where
            raise FloatingPointError(f"non-finite training loss at step {len(history)}: {history[-1]}")
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4f}")
        # once: a resumed run whose schedule was fitted goes on with it (as pretrain's)
        fitted = None if schedule.joint is not None else budget.after_step(len(history) - start, len(history),
                                                                             cfg.steps)
        if fitted is not None:
            schedule.fit(fitted, loop.scheduler.last_epoch)
            bar.total = fitted
        if cfg.eval_every and len(history) % cfg.eval_every == 0:
            loop.evals.append({"step": len(history), **evaluate(model, val)})
        if cfg.save_every and len(history) % cfg.save_every == 0:
            save_and_report(model, cfg, history, schedule.total, selection)
            save_loop(loop)
        elif signals.signum:
            save_progress(model, cfg, len(history))
            save_loop(loop)
        if signals.signum:
            raise Stopped(signals.signum, len(history))


def save_loop(loop: Loop) -> None:
    """OUT/resume.pt: the loop's state after this step (readouts_resume.py), after the progress checkpoint."""
    model_state = {k: v.detach().cpu() for k, v in loop.model.state_dict().items()}
    scheduler = {k: v for k, v in loop.scheduler.state_dict().items() if k != "lr_lambdas"}
    state = {"model": model_state, "optimizer": loop.optimizer.state_dict(), "scheduler": scheduler,
             "generator": loop.sampler.gen.get_state()}
    if loop.pose_copy is not None:
        state["extra"] = {k: v.detach().cpu() for k, v in loop.pose_copy.state_dict().items()}
    meta = {"step": len(loop.history), "config": dataclasses.asdict(loop.cfg), "schedule": loop.schedule.state(),
            "history": loop.history, "evals": loop.evals, "run_id": loop.cfg.run_id, "record": loop.record}
    if loop.selection is not None:
        best = loop.selection.best_state
        state["best"] = best_differences(None if best is None else {k: v.cpu() for k, v in best.items()},
                                         model_state)
        meta["selection"] = {**loop.selection.state(), "has_best": best is not None,
                             "best_weights": str(output_dir(loop.cfg) / "selected")}
    save_resume(output_dir(loop.cfg) / RESUME_FILE, state, meta)


def resume_loop(loop: Loop, resumed: ReadoutsResume) -> None:
    """The stopped run's state into the loop: weights, optimiser, schedule, sampler, RNGs, losses, selection."""
    path = output_dir(loop.cfg) / RESUME_FILE
    device = next(loop.model.parameters()).device
    try:
        loop.model.load_state_dict(resumed.model)
        if loop.pose_copy is not None:
            loop.pose_copy.load_state_dict(resumed.extra)
        loop.optimizer.load_state_dict(resumed.optimizer)
        loop.scheduler.load_state_dict({**resumed.scheduler, "lr_lambdas": [None]})
        loop.schedule.load(resumed.meta["schedule"])
        loop.sampler.gen.set_state(resumed.generator)
        loop.history[:], loop.evals[:] = [float(x) for x in resumed.meta["history"]], resumed.meta.get("evals", [])
        if loop.selection is not None:
            chosen = resumed.meta["selection"]
            best = ({k: v.to(device) for k, v in {**resumed.model, **(resumed.best or {})}.items()}
                    if chosen["has_best"] else None)
            loop.selection.restore(chosen, best)
        set_rng_state(resumed.rng_tensors, resumed.meta["rng"])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise ResumeError(f"{path}: does not fit this run's model ({type(e).__name__}: {e}); refusing to resume "
                          "from it (delete it to start afresh)") from e
    if len(loop.history) != resumed.step:
        raise ResumeError(f"{path}: its loss history has {len(loop.history)} steps, its step is {resumed.step} "
                          "(delete it to start afresh)")


def save_and_report(model: FourDS, cfg: ReadoutsConfig, history: list[float], total: int,
                    selection: CheckpointSelection | None) -> None:
    """At a --save-every step: the progress checkpoint, the selection's scoring (and its best weights so
    far, where this step is the best), and the progress line."""
    save_progress(model, cfg, len(history))
    line = f"step {len(history)}/{total} loss {np.mean(history[-cfg.save_every:]):.4f}"
    if selection is not None:
        line += f" selection score {selection.consider(model, len(history)):.4f} ({selection.summary()})"
        if selection.best_step == len(history):
            save_selected(model, cfg, selection)
    # A background run's only sign of progress (tqdm is off under --no-progress).
    print(line, flush=True)


def output_dir(cfg: ReadoutsConfig) -> Path:
    return Path(cfg.out) if cfg.out else REPO / "models" / cfg.name


def save_progress(model: FourDS, cfg: ReadoutsConfig, steps: int) -> None:
    """A loadable checkpoint of the run so far in OUT/checkpoint (a long background run that is
    stopped keeps its last one); the model keeps training in place. Its metadata's kind, "progress",
    says what it is wherever it is copied (continued_steps)."""
    save_checkpoint(model, output_dir(cfg) / "checkpoint", metadata=checkpoint_metadata(cfg, steps, "progress"))
    keep_training_scenes(cfg, output_dir(cfg) / "checkpoint")


def save_selected(model: FourDS, cfg: ReadoutsConfig, selection: CheckpointSelection) -> None:
    """The best-scored weights so far (the model as it is now) in OUT/selected, with the scorings in its
    selection.json. Why: --select-on kept them in memory only, so a stopped run's OUT/checkpoint was its
    last step's weights and the step it had chosen was lost (stage 20's were copied out by hand)."""
    selected = output_dir(cfg) / "selected"
    save_checkpoint(model, selected, metadata={**checkpoint_metadata(cfg, selection.best_step, "selected"),
                                               "selection_score": selection.best_score})
    (selected / "selection.json").write_text(json.dumps(selection.log()) + "\n")
    keep_training_scenes(cfg, selected)


# Checkpoint kinds in the metadata: a run's progress (OUT/checkpoint) and its best so far (OUT/selected) are
# part-way through a run; "model" is a finished run's output.
PART_WAY = ("progress", "selected")


def checkpoint_metadata(cfg: ReadoutsConfig, steps: int, kind: str = "model") -> dict:
    meta = {"steps": steps, "steps_before": cfg.steps_before, "finetune": cfg.finetune,
            "finetune_blocks": cfg.finetune_blocks, "kind": kind}
    if kind in PART_WAY:  # which run's progress it is (a finished model's metadata stays as it was)
        meta["run_id"] = cfg.run_id
    return meta


def continued_steps(cfg: ReadoutsConfig) -> int:
    """The steps already trained where --init is a run's progress or best-so-far weights (metadata kind
    "progress" or "selected", wherever they were copied or however renamed; checkpoints written before the
    kinds: a folder named checkpoint), summed over earlier continuations; 0 for a finished model (the shipped
    one), whose documented commands draw as they always did."""
    if not cfg.init:
        return 0
    meta = read_metadata(cfg.init)
    part_way = meta["kind"] in PART_WAY if "kind" in meta else Path(cfg.init).name == "checkpoint"
    if not part_way:
        return 0
    try:
        return int(meta.get("steps_before", 0)) + int(meta.get("steps", 0))
    except ValueError as e:
        raise ValueError(f"{cfg.init}: its metadata's steps are not whole numbers ({e})") from None


def write_outputs(cfg: ReadoutsConfig, model: FourDS, banks: Banks, log: dict, seconds: float,
                  data_seconds: float) -> Path:
    """model.safetensors + config.json, the model card and training_log.json in the output dir (log: the losses,
    evaluations, selection, final metrics and the run's record, start_record)."""
    out = output_dir(cfg)
    model = model.float().cpu().eval()
    steps = log["selection"]["selected_step"] if "selection" in log else len(log["loss"])
    save_checkpoint(model, out, metadata=checkpoint_metadata(cfg, steps))
    command = "python -m training.train_readouts " + " ".join(shlex.quote(a) for a in cfg.argv)
    device = next(iter(banks.val.values())).device
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    (out / "README.md").write_text(model_card(cfg.name, cfg, model, log["loss"], log["final"], command, seconds,
                                              data_seconds, hardware, banks.real_clips, log.get("selection")))
    (out / "training_log.json").write_text(json.dumps({**log, "run_id": cfg.run_id}) + "\n")
    keep_training_scenes(cfg, out)
    if cfg.real:
        print(f"trained on --real {' '.join(cfg.real)}: add their scenes (your split's names) to "
              f"{out / TRAINING_SCENES_FILE}, so that eval-suite notes a fold validating on them", flush=True)
    return out


def keep_training_scenes(cfg: ReadoutsConfig, dest: Path) -> None:
    """The --init model's record of the scenes it trained on (TRAINING_SCENES_FILE; models/fourds_default's names the
    kitchen and the HoloLens walk), or without --init the --backbone's, into `dest`, a model this run writes (its
    progress, its selection, its output): it stays true of a model trained on from it, or on its encoder, and
    eval-suite notes a fold validating one (the record was lost, and a run continued from OUT/checkpoint lost it for
    good: review; new heads on the shipped encoder lost it too: session 72's review). None to copy: an earlier run's
    left in `dest` is removed, not kept for a model it does not describe."""
    start = cfg.init or cfg.backbone  # --init's model replaces --backbone's
    seen = Path(start) / TRAINING_SCENES_FILE if start else None
    if seen is not None and seen.is_file():
        if seen.resolve() != (dest / TRAINING_SCENES_FILE).resolve():
            shutil.copyfile(seen, dest / TRAINING_SCENES_FILE)
    else:
        (dest / TRAINING_SCENES_FILE).unlink(missing_ok=True)


def check_stopped_run(cfg: ReadoutsConfig) -> None:
    """ValueError where OUT holds a stopped run's progress (OUT/checkpoint without the finished run's
    training_log.json) but no resume file (resume_state): progress saved before resume files were, which this run
    would write over from step 0. Why: a long background run stopped and its command run again started afresh and
    replaced the saved progress without a word; such progress is weights only, so it continues with --init."""
    out = output_dir(cfg)
    progress, log = out / "checkpoint", out / "training_log.json"
    if not (progress / WEIGHTS_FILE).exists():
        return
    # The finished run's own progress by its run id (a `cp -r` or a checkout orders modification times anyhow);
    # the times below judge progress saved before run ids were.
    run_id = read_metadata(progress).get("run_id")
    if run_id and run_id == logged_run_id(out):
        return
    # A finished run writes its log after its last progress; progress newer than the log is a later run's, stopped
    # (an earlier run's log in the same OUT, as the shipped model's in models/fourds_default, said nothing of it).
    if log.exists() and log.stat().st_mtime >= (progress / WEIGHTS_FILE).stat().st_mtime:
        return
    if cfg.init and Path(cfg.init).resolve() == progress.resolve():
        return
    # an earlier finished run's selected/ (older than its log) is not this stopped run's: it was named as if it were
    selected = out / "selected" / WEIGHTS_FILE
    ours = selected.exists() and (not log.exists() or selected.stat().st_mtime > log.stat().st_mtime)
    chosen = f" (its best-scored weights so far, with --select-on: {out / 'selected'})" if ours else ""
    raise ValueError(f"{out} holds a stopped run's progress ({progress}){chosen} without its {RESUME_FILE}, which "
                     f"this run would replace from step 0: continue it with --init {progress} (its weights; the "
                     "optimiser and schedule start again, the batches go on from its steps), or move it away to "
                     "start over")


def logged_run_id(out: Path) -> str | None:
    """The run id in OUT/training_log.json: the run that finished there last (None: no log, or one without)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return json.loads((out / "training_log.json").read_text()).get("run_id") or None
    return None


def resume_state(cfg: ReadoutsConfig) -> ReadoutsResume | None:
    """OUT/resume.pt where OUT holds a stopped run's, loaded and checked against this run's settings; None where
    there is none, or where it is the finished run's whose training_log.json carries its run id (left where that
    run's end was cut short). ResumeError (a ValueError) where it is damaged, or where a setting outside
    readouts_resume.RESUME_FREE differs: resumed, the steps already run would have followed other settings than
    the model card records (pretrain's resume_conflicts, likewise). Why the run id: an earlier finished run's log
    newer than resume.pt by modification time (a `cp -r`, a checkout of models/fourds_default) had the stopped
    run's resume.pt deleted and the run started again from step 0 without a word."""
    out = output_dir(cfg)
    path = out / RESUME_FILE
    if not path.is_file():
        return None
    resumed = load_resume(path)
    if resumed.meta.get("run_id") and resumed.meta["run_id"] == logged_run_id(out):
        return None
    if conflicts := resume_conflicts(resumed.meta["config"], dataclasses.asdict(cfg)):
        raise ResumeError(f"{path} holds a stopped run trained with other settings ({'; '.join(conflicts)}): "
                          "refusing to resume it with these; run its own command again to resume it, or give "
                          f"another --out (or move {out} away) to start afresh")
    return resumed


def resume_notice(cfg: ReadoutsConfig, resumed: ReadoutsResume) -> str:
    """The line a resumed run prints: where it resumes and, where the stopped run's schedule was fitted to its
    --time-budget and this command gives another, that this one's is not applied (it was ignored without a word:
    the fitted schedule goes on, as pretrain's does)."""
    line = f"resuming {output_dir(cfg) / RESUME_FILE} at step {resumed.step}"
    stored = float(resumed.meta["config"].get("time_budget", 0.0))
    if resumed.meta["schedule"].get("joint") is not None and cfg.time_budget != stored:
        line += (f"; its schedule was fitted to --time-budget {stored:g} s ({resumed.meta['schedule']['total']} "
                 f"steps) and goes on: this command's --time-budget {cfg.time_budget:g} s is not applied")
    return line


def check_writable(out: Path) -> None:
    """OSError where OUT cannot be made or written: found at the first save, after the training (or its first
    --save-every steps) had run for nothing."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out):
        pass


def check_init_is_not_out(cfg: ReadoutsConfig) -> None:
    """ValueError where --init is the output folder itself: the run writes its model over the one it starts from,
    and the same command run again trains on from its own output (each run adding to the last, steps_before 0)."""
    if cfg.init and Path(cfg.init).resolve() == output_dir(cfg).resolve():
        raise ValueError(f"--init {cfg.init} is the output folder (--out {output_dir(cfg)}): the run would write "
                         "over the model it starts from; give another --out")


def start_record(cfg: ReadoutsConfig, resumed: ReadoutsResume | None) -> dict:
    """The run's record (provenance.run_record), in its training_log.json and resume file: the code revision and
    the sha256 of the --init, --backbone and --depth-teacher weights of the invocation that started it, and of
    each that resumed it (a resume is not refused for another revision or changed weights: it is recorded)."""
    weights = {"init": cfg.init, "backbone": cfg.backbone, "depth_teacher": cfg.depth_teacher}
    now = invocation("training.train_readouts", cfg.argv,
                     {name: None if folder is None else Path(folder) / WEIGHTS_FILE for name, folder in weights.items()})
    return run_record(resumed.meta.get("record") if resumed else None, now, resumed.step if resumed else None)


def train(cfg: ReadoutsConfig) -> dict:
    """The run, or a stopped run's rest where OUT holds its resume file (resume_state): its command run again
    resumes it. Stopped where a stop signal ended it (saved, resumable)."""
    check_recording_lengths(cfg)  # before anything is loaded: a clip longer than its recording failed minutes in
    check_init_is_not_out(cfg)
    resumed = resume_state(cfg)
    record = start_record(cfg, resumed)
    # A resumed run goes on with the steps_before it started with: --init's progress, which the stopped run
    # itself wrote over when it was continued into its own OUT, would read as more (and it was refused).
    cfg = dataclasses.replace(cfg, steps_before=int(resumed.meta["config"].get("steps_before", 0)) if resumed
                              else continued_steps(cfg),
                              run_id=(resumed and resumed.meta.get("run_id")) or uuid.uuid4().hex)
    if resumed is None:
        check_stopped_run(cfg)
    check_writable(output_dir(cfg))
    if resumed is None:  # none, or the finished run's (its log has its run id), left where its end was cut short
        (output_dir(cfg) / RESUME_FILE).unlink(missing_ok=True)
    torch.manual_seed(cfg.seed)
    device = torch.device(resolve_device(cfg.device))
    model = model_for(cfg).to(device)
    t_data = time.perf_counter()
    banks = load_banks(cfg, model, device)
    data_seconds = time.perf_counter() - t_data
    val = val_batches(cfg, banks)
    selection = (CheckpointSelection(selection_batches(cfg, model, device), cfg.loss_heads,
                                     start_is_candidate=cfg.init is not None, no_worse=cfg.select_no_worse)
                 if cfg.select_on else None)
    if resumed is not None:
        print(resume_notice(cfg, resumed), flush=True)
    elif selection is not None:  # the start's scores: what every later progress line is compared with
        print(f"step 0 selection score {selection.consider(model, 0):.4f} ({selection.summary()})", flush=True)
    start = time.perf_counter()
    history, evals = fit(model, cfg, BatchSampler(cfg, banks, device), val, selection, resumed, record)
    log: dict = {"loss": history, "evals": evals}
    if selection is not None:
        if selection.history[-1]["step"] != len(history):
            selection.consider(model, len(history))
        selection.restore_best(model)
        log["selection"] = selection.log()
    metrics = evaluate(model, val)
    seconds = time.perf_counter() - start
    out = write_outputs(cfg, model, banks, {**log, "final": metrics, **record}, seconds, data_seconds)
    (out / RESUME_FILE).unlink(missing_ok=True)  # finished: its command run again starts afresh
    return {"out": str(out), "loss": history, "metrics": metrics, "evals": evals, "selection": log.get("selection")}


def main(argv: list[str] | None = None) -> int:
    try:
        result = train(parse_args(sys.argv[1:] if argv is None else argv))
    except Stopped as e:
        print(f"{e}, saved: the same command resumes it", file=sys.stderr)
        return 128 + e.signum
    except (ValueError, OSError, FloatingPointError) as e:  # OSError: a missing input, an --out it cannot write
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"saved {result['out']}; loss {result['loss'][0]:.4f} -> {result['loss'][-1]:.4f}; {result['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
