"""Readout training's resume file, `OUT/resume.pt`: what a stopped `train_readouts` run needs to go on exactly
as if it had not stopped, written at every --save-every step beside OUT/checkpoint.

It holds the model's weights, AdamW's state, the LR scheduler's (and WarmupCosine's parameters), the batch
sampler's generator, the global RNGs (training/resume.py's rng_state), the step's loss history and held-aside
evaluations, the --select-on selection's state (its reference metrics, scorings, best step and score; the best
weights as the tensors in which they differ from the model's: one file, so the step, the weights and the choice
always agree), the run's config and its record (training/provenance.py: the code revision and the weights
it started from). Nothing in it is a pickled object: tensors, plain containers and one JSON
text, loaded with `torch.load(weights_only=True)`, so a planted resume.pt cannot run code. Written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from fourds_ros.model.checkpoint import atomic_write

from .resume import ResumeError, config_conflicts, rng_state

RESUME_FILE = "resume.pt"

# Settings a resumed run may change: where and how fast it runs, how often it saves, not what it trains.
# --out: the resume file is found in it (a folder spelt otherwise is the same one). --steps is not free: the
# schedule's cosine decay is laid over it, and the steps already run followed the old one.
# steps_before: no option, but read from --init (compared itself), which a run continued into its own OUT
# writes over; the resumed run takes the stored one. run_id: no option, made when a run starts, kept when it resumes.
RESUME_FREE = {"time_budget", "workers", "save_every", "no_progress", "device", "out", "argv", "steps_before",
               "run_id"}


@dataclasses.dataclass
class ReadoutsResume:
    """A resume file's contents (load_resume); rng_tensors and meta["rng"] go to resume.set_rng_state."""

    model: dict
    optimizer: dict
    scheduler: dict
    generator: torch.Tensor
    rng_tensors: dict
    meta: dict  # step, config, schedule, history, evals, selection, rng
    extra: dict | None = None  # --photometric's pose head copy (trained beside the model, never saved in it)
    best: dict | None = None  # the selection's best weights where they differ from `model`

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def plain_config(config: dict) -> dict:
    """The config as its JSON text reads it back (tuples as lists), so that stored and current compare."""
    return json.loads(json.dumps(config))


def resume_conflicts(stored: dict, now: dict) -> list[str]:
    """The settings in which `now` differs from the resume file's `stored` config, outside RESUME_FREE:
    "--option: stored -> now" each (the options' own spelling, as the user typed them)."""
    return [f"--{name.replace('_', '-')}: {a!r} -> {b!r}"
            for name, a, b in config_conflicts(plain_config(stored), plain_config(now), RESUME_FREE)]


def best_differences(best: dict[str, torch.Tensor] | None, model: dict[str, torch.Tensor]) -> dict:
    """The best weights' tensors that differ from the model's (a frozen encoder's never do)."""
    if best is None:
        return {}
    return {k: v.detach().cpu() for k, v in best.items() if k not in model or not torch.equal(v, model[k])}


def plain(value):
    """`value` with NumPy scalars as Python numbers, which weights_only loading accepts (the schedule's factors
    are NumPy floats, and so become the optimiser's and scheduler's learning rates); the same values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def save_resume(path: Path, state: dict, meta: dict) -> None:
    """state: model, optimizer, scheduler (without lr_lambdas: WarmupCosine's parameters are in meta),
    generator, and optionally extra and best, all tensors and plain containers; meta: JSON-able."""
    rng_tensors, rng_scalars = rng_state()
    text = json.dumps(plain({**meta, "rng": rng_scalars}))
    atomic_write(path, lambda tmp: torch.save({**plain(state), "rng": rng_tensors, "meta": text}, tmp))


def load_resume(path: Path) -> ReadoutsResume:
    """A resume file's state (the RNGs are not restored yet: the run sets them when its loop starts).
    ResumeError, saying to delete it, where it is not one of ours or is damaged (cut short, overwritten)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(state["meta"])
        if not all(k in meta for k in ("step", "config", "schedule", "history", "rng")):
            raise KeyError("its meta lacks the step, config, schedule, history or RNG state")
        return ReadoutsResume(state["model"], state["optimizer"], state["scheduler"], state["generator"],
                              state["rng"], meta, state.get("extra"), state.get("best"))
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError, AttributeError,
            IndexError, zipfile.BadZipFile) as e:
        raise ResumeError(f"{path}: not a readout training resume file, or a damaged one; refusing to resume from "
                          f"it (delete it to start afresh): {type(e).__name__}: {e}") from e
