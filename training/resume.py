"""The resumable training checkpoint (`<run>/checkpoint.pt`), loadable with `weights_only=True`.

Nothing in it is a pickled object: model, optimiser and scheduler state are tensors and plain
numbers; the RNG states are tensors; the step, the run's config and the RNG states' scalar parts
are one JSON text. `torch.load(weights_only=True)` refuses anything else, so a planted
checkpoint.pt cannot run code on resume. One file, written atomically (fsync + rename), so the
step always matches the weights.
"""

from __future__ import annotations

import json
import pickle
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fourds_ros.model.checkpoint import atomic_write


class ResumeError(ValueError):
    """A checkpoint.pt that is not a weights-only training checkpoint of ours."""


@dataclass
class ResumeState:
    model: dict
    optimizer: dict
    scheduler: dict
    step: int
    config: dict
    total_steps: int | None = None  # the schedule's length once fitted to a time budget (None: not fitted)
    record: dict | None = None  # what the run was made from (provenance.run_record); None: saved before records


def config_conflicts(stored: dict, now: dict, free: set[str], prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, stored value, current value) of each setting in which `now` differs from a resume file's
    `stored` config, outside `free` (the dotted keys a resumed run may change); a list equals a tuple of the
    same items. Pretraining's and readout training's refusals of a changed setting both read it."""
    out = []
    for key in sorted(set(stored) | set(now)):
        name = prefix + str(key)
        a, b = stored.get(key), now.get(key)
        if name in free:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_conflicts(a, b, free, name + ".")
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            out.append((name, a, b))
    return out


def rng_state() -> tuple[dict[str, torch.Tensor | list[torch.Tensor]], dict]:
    """(tensors, JSON-able scalars) of the torch, CUDA, NumPy and Python RNGs."""
    _, np_key, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_words, py_gauss = random.getstate()
    tensors = {"torch": torch.get_rng_state(),
               "numpy_key": torch.from_numpy(np_key.astype(np.int64)),
               "python_words": torch.tensor(py_words, dtype=torch.int64)}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state_all()
    scalars = {"numpy": [int(np_pos), int(np_has_gauss), float(np_gauss)],
               "python": [py_version, py_gauss]}
    return tensors, scalars


def set_rng_state(tensors: dict, scalars: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    pos, has_gauss, gauss = scalars["numpy"]
    np.random.set_state(("MT19937", tensors["numpy_key"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, py_gauss = scalars["python"]
    random.setstate((version, tuple(int(w) for w in tensors["python_words"].tolist()), py_gauss))
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda"])


def save_resume(path: Path, model: dict, optimizer: dict, scheduler: dict, step: int, config: dict,
                total_steps: int | None = None, record: dict | None = None) -> None:
    """total_steps: the schedule's length when a time budget fitted it (the scheduler's state
    holds its step, not its length), so that a resumed run goes on with the same schedule. record: the run's
    record (provenance.run_record), which a resumed run goes on with."""
    rng_tensors, rng_scalars = rng_state()
    meta = json.dumps({"step": step, "config": config, "rng": rng_scalars, "total_steps": total_steps,
                       "record": record})
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "rng": rng_tensors, "meta": meta}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_resume(path: Path) -> ResumeState:
    """The checkpoint's state, with the RNGs restored. weights_only=True: tensors and plain
    containers only; a pickle that would build any other object is refused unread."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(state["meta"])
        set_rng_state(state["rng"], meta["rng"])
        total = meta.get("total_steps")
        return ResumeState(state["model"], state["optimizer"], state["scheduler"], int(meta["step"]),
                           meta["config"], None if total is None else int(total), meta.get("record"))
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError) as e:
        raise ResumeError(f"{path}: not a weights-only training checkpoint, refusing to resume from it "
                          f"(delete it to start afresh): {e}") from e
