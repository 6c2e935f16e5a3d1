"""Fitting a run to a wall-clock budget (pretrain `time_budget_s`, train_readouts `--time-budget`)."""

from __future__ import annotations

import time


def steps_within_budget(total_steps: int, done: int, elapsed_s: float, budget_s: float,
                        per_step_s: float | None = None) -> int:
    """The step count to schedule once `done` steps took `elapsed_s`: the configured total,
    shortened so the remaining steps at the same pace end within `budget_s` (never below `done`).
    per_step_s: the pace measured after warm-up (default: the mean over the `done` steps)."""
    per_step = per_step_s if per_step_s else elapsed_s / max(done, 1)
    return min(total_steps, done + max(0, int((budget_s - elapsed_s) / per_step)))


class BudgetProbe:
    """Fits a run to a wall-clock budget once its pace is known: the mean step time over
    PROBE_STEPS steps after WARMUP_STEPS, which pay for allocation and kernel selection (on the
    H200 the first 20 readout steps averaged 0.18 s and the rest 0.07 s, so a 250 s budget paced
    on them ended after 100 s). Made when the run's first step starts.

    overhead_per_step_s: time the run spends outside its steps, spread over them (train_readouts:
    a --select-on scoring every --save-every steps). Why: those scorings run the whole encoder on
    the validation clips while the steps run on cached features, so a budget that paces the steps
    alone overruns by the scorings' share."""

    WARMUP_STEPS = 5
    PROBE_STEPS = 20

    def __init__(self, budget_s: float, overhead_per_step_s: float = 0.0):
        self.budget_s = budget_s
        self.overhead_per_step_s = overhead_per_step_s
        self.start = self.warm = time.perf_counter()

    def after_step(self, steps_run: int, done: int, total_steps: int) -> int | None:
        """After each step: steps_run by this invocation, `done` in all (a resumed run counts its
        earlier steps), `total_steps` scheduled. -> the fitted total once the pace is measured
        (exactly once), else None."""
        if not self.budget_s:
            return None
        if steps_run == self.WARMUP_STEPS:
            self.warm = time.perf_counter()
        if steps_run != self.WARMUP_STEPS + self.PROBE_STEPS:
            return None
        now = time.perf_counter()
        return steps_within_budget(total_steps, done, now - self.start, self.budget_s,
                                   per_step_s=(now - self.warm) / self.PROBE_STEPS + self.overhead_per_step_s)
