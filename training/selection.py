"""Checkpoint choice on validation recordings (issue #17's protocol: checkpoints are chosen on
validation scenes only). `--select-on PATH[:STRIDE]` names labelled RGB-D recordings that no
`--real` bank trains on; at every `--save-every` step and at the end the model is scored on
their clips, and the run writes the weights that scored best, the starting weights included.

The score is the mean, over the metrics of the heads the run trains (HEAD_METRICS), of each
metric divided by the starting model's value of it: 1.0 is the start, lower is better, and no one
metric's units dominate. The starting weights are a candidate only when the trained heads start
trained (--init): a freshly initialised head is the reference, never the choice. Why: on a
label-free encoder (tools/leave_one_out.sh) a random depth head's near-constant output scored a
metric AbsRel of 0.56 on TUM against 1.1-1.4 for the trained head (whose median-scaled AbsRel was
0.28 against the random head's 0.62), and step 0 won; the frozen heads' metrics, always 1.0,
only diluted the score.

`--select-no-worse METRIC ...` makes a checkpoint a candidate only where each named metric is no
worse than the start's. Why: the mean of ratios let session 41's GPU run choose a step whose pose
direction had gained 37 % while the validation scene's metric depth lost 13 %, a checkpoint the
shipping rule then refused; the guard makes the run's own choice respect what the rule will ask."""

from __future__ import annotations

import time

import torch

from fourds_ros.model import FourDS

from .readouts_model import evaluate

HEAD_METRICS = {"depth": ("depth_abs_rel_scaled", "depth_abs_rel"), "tracks": ("track_epe_px",),
                "pose": ("pose_rotation_deg", "pose_translation_m", "pose_direction_deg")}
SELECTION_METRICS = tuple(m for metrics in HEAD_METRICS.values() for m in metrics)


def selection_score(metrics: dict[str, float], reference: dict[str, float],
                    keys: tuple[str, ...] = SELECTION_METRICS) -> float:
    """Mean ratio of `metrics` to `reference` over the `keys` (of SELECTION_METRICS) both hold."""
    keys = [k for k in keys if k in SELECTION_METRICS and k in metrics and reference.get(k, 0.0) > 0]
    if not keys:
        raise ValueError(f"no selection metric to compare: {sorted(metrics)}")
    return sum(metrics[k] / reference[k] for k in keys) / len(keys)


class CheckpointSelection:
    """The best weights seen so far on the validation batches, kept in memory (a copy of the
    state on the model's device) with the score of every candidate step."""

    def __init__(self, batches: list[dict[str, torch.Tensor]], heads: tuple[str, ...] = tuple(HEAD_METRICS),
                 start_is_candidate: bool = True, no_worse: tuple[str, ...] = ()):
        """heads: the heads the run trains (their metrics make the score); start_is_candidate:
        whether the weights at step 0 may be chosen (trained heads, not freshly initialised);
        no_worse: metrics (of SELECTION_METRICS) a later step must not worsen to be chosen."""
        unknown = set(no_worse) - set(SELECTION_METRICS)
        if unknown:
            raise ValueError(f"--select-no-worse {sorted(unknown)}: not among {list(SELECTION_METRICS)}")
        self.no_worse = tuple(no_worse)
        self.batches = batches
        self.keys = tuple(m for h in heads for m in HEAD_METRICS.get(h, ()))
        self.start_is_candidate = start_is_candidate
        self.reference: dict[str, float] | None = None
        self.history: list[dict] = []
        self.best_step = -1
        self.best_score = float("inf")
        self.best_state: dict[str, torch.Tensor] | None = None
        self.seconds = 0.0  # wall time of the last scoring (the run's time budget counts it)

    def consider(self, model: FourDS, step: int) -> float:
        """Score the model as it is now (leaves it in eval mode); keep it when it is the best."""
        start = time.perf_counter()
        metrics = evaluate(model, self.batches)
        if self.reference is None:
            # a guard on a metric these clips never give (a head the model lacks) guarded nothing, silently
            if missing := [k for k in self.no_worse if k not in metrics]:
                raise ValueError(f"--select-no-worse {' '.join(missing)}: the --select-on clips give no such metric "
                                 f"for this model (they give {' '.join(sorted(metrics))})")
            self.reference = metrics
        score = selection_score(metrics, self.reference, self.keys)
        candidate = (step > 0 or self.start_is_candidate) and all(
            metrics[k] <= self.reference[k] for k in self.no_worse if k in metrics and k in self.reference)
        self.history.append({"step": step, "score": score, "candidate": candidate, **metrics})
        if candidate and score < self.best_score:
            self.best_step, self.best_score = step, score
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.seconds = time.perf_counter() - start
        return score

    def summary(self) -> str:
        """The last scoring's metrics, e.g. "depth_abs_rel_scaled 0.249, ...", for a progress line."""
        last = self.history[-1] if self.history else {}
        return ", ".join(f"{k} {last[k]:.3f}" for k in self.keys if k in last)

    def restore_best(self, model: FourDS) -> int:
        """Load the best weights into `model`; returns their step."""
        if self.best_state is None:
            raise RuntimeError("no checkpoint was scored")
        model.load_state_dict(self.best_state)
        return self.best_step

    def log(self) -> dict:
        return {"selected_step": self.best_step, "selected_score": self.best_score, "candidates": self.history}

    def state(self) -> dict:
        """The choice so far, JSON-able, for a resume file (the best weights go beside it as tensors): a resumed
        run goes on comparing with the original start's metrics and keeps the step the stopped run chose."""
        return {"reference": self.reference, "history": self.history, "best_step": self.best_step,
                "best_score": self.best_score, "seconds": self.seconds}

    def restore(self, state: dict, best_state: dict[str, torch.Tensor] | None) -> None:
        """state(), as saved; best_state: the best weights (None where no step was chosen yet)."""
        self.reference, self.history = state["reference"], list(state["history"])
        self.best_step, self.best_score = int(state["best_step"]), float(state["best_score"])
        self.seconds = float(state.get("seconds", 0.0))
        self.best_state = best_state
