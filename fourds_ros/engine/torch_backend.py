"""The torch backend: eager PyTorch on CPU or CUDA, in fp32, bf16 or fp16."""

from __future__ import annotations

import numpy as np
import torch

from ..model import FourDS
from .base import EngineError, EngineSpec, InferenceEngine

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchEngine(InferenceEngine):
    backend = "torch"

    def __init__(self, model: FourDS, spec: EngineSpec, device: str = "cpu", precision: str = "fp32",
                 threads: int | None = None):
        super().__init__(spec)
        if threads:  # process-wide in torch: the node has one engine
            torch.set_num_threads(threads)
        if precision not in DTYPES:
            raise EngineError(f"torch precision must be one of {sorted(DTYPES)}, got {precision!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(f"device {device!r} requested but CUDA is not available")
        self.device = torch.device(device)
        self.precision = precision
        self.model = model.to(self.device).eval()

    def describe(self) -> str:
        return f"torch ({self.device.type}, {self.precision})"

    @torch.inference_mode()
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()}
        dtype = DTYPES[self.precision]
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32):
            out = self.model(tensors["video"], tensors.get("query_points"))
        return {k: v.float().cpu().numpy() for k, v in out.items()}
