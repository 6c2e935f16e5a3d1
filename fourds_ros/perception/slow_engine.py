"""SlowEngine: a TEST-ONLY wrapper that delays a real engine, to exercise overload handling
(frames arriving faster than inference) on a CPU where the tiny model is instant. Enabled by the
node parameter `debug_inference_delay_ms` (0 = off); never use it in production."""

from __future__ import annotations

import time

import numpy as np


class SlowEngine:
    def __init__(self, engine, delay_s: float):
        self.engine = engine
        self.delay_s = delay_s
        self.backend = f"{engine.backend}+SlowEngine({delay_s * 1e3:.0f} ms, test only)"

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def describe(self) -> str:
        return f"{self.engine.describe()} + SlowEngine {self.delay_s * 1e3:.0f} ms (test only)"

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.delay_s)
        return self.engine(inputs)
