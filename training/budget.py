"""Fitting a run to a wall-clock budget (pretrain `time_budget_s`, train_readouts `--time-budget`)."""

from __future__ import annotations


def steps_within_budget(total_steps: int, done: int, elapsed_s: float, budget_s: float,
                        per_step_s: float | None = None) -> int:
    """The step count to schedule once `done` steps took `elapsed_s`: the configured total,
    shortened so the remaining steps at the same pace end within `budget_s` (never below `done`).
    per_step_s: the pace measured after warm-up (default: the mean over the `done` steps)."""
    per_step = per_step_s if per_step_s else elapsed_s / max(done, 1)
    return min(total_steps, done + max(0, int((budget_s - elapsed_s) / per_step)))
