"""Checkpoint choice on validation recordings (issue #17's protocol: checkpoints are chosen on
validation scenes only). `--select-on PATH[:STRIDE]` names labelled RGB-D recordings that no
`--real` bank trains on; at every `--save-every` step and at the end the model is scored on
their clips, and the run writes the weights that scored best, the starting weights included.

The score is the mean, over the metrics below, of each metric divided by the starting model's
value of it: 1.0 is the start, lower is better, and no one metric's units dominate."""

from __future__ import annotations

import torch

from fourds_ros.model import FourDS

from .readouts_model import evaluate

SELECTION_METRICS = ("depth_abs_rel_scaled", "depth_abs_rel", "track_epe_px", "pose_rotation_deg",
                     "pose_translation_m")


def selection_score(metrics: dict[str, float], reference: dict[str, float]) -> float:
    """Mean ratio of `metrics` to `reference` over the SELECTION_METRICS both hold."""
    keys = [k for k in SELECTION_METRICS if k in metrics and reference.get(k, 0.0) > 0]
    if not keys:
        raise ValueError(f"no selection metric to compare: {sorted(metrics)}")
    return sum(metrics[k] / reference[k] for k in keys) / len(keys)


class CheckpointSelection:
    """The best weights seen so far on the validation batches, kept in memory (a copy of the
    state on the model's device) with the score of every candidate step."""

    def __init__(self, batches: list[dict[str, torch.Tensor]]):
        self.batches = batches
        self.reference: dict[str, float] | None = None
        self.history: list[dict] = []
        self.best_step = -1
        self.best_score = float("inf")
        self.best_state: dict[str, torch.Tensor] | None = None

    def consider(self, model: FourDS, step: int) -> float:
        """Score the model as it is now (leaves it in eval mode); keep it when it is the best."""
        metrics = evaluate(model, self.batches)
        if self.reference is None:
            self.reference = metrics
        score = selection_score(metrics, self.reference)
        self.history.append({"step": step, "score": score, **metrics})
        if score < self.best_score:
            self.best_step, self.best_score = step, score
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return score

    def restore_best(self, model: FourDS) -> int:
        """Load the best weights into `model`; returns their step."""
        if self.best_state is None:
            raise RuntimeError("no checkpoint was scored")
        model.load_state_dict(self.best_state)
        return self.best_step

    def log(self) -> dict:
        return {"selected_step": self.best_step, "selected_score": self.best_score, "candidates": self.history}
