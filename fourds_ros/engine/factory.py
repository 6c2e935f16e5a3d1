"""Backend selection. `auto`: TensorRT when importable and a GPU is present, then ONNX Runtime,
then torch. The choice and the reason are logged."""

from __future__ import annotations

import logging
from pathlib import Path

from ..model import load_checkpoint
from .base import DEFAULT_NUM_QUERIES, EngineError, EngineSpec, InferenceEngine

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")


def create_engine(
    model_dir: str | Path,
    backend: str = "auto",
    device: str = "cpu",
    precision: str = "fp32",
    num_queries: int = DEFAULT_NUM_QUERIES,
    cache_dir: str | Path | None = None,
    force_engine_update: bool = False,
    logger: logging.Logger | None = None,
) -> InferenceEngine:
    """Load the checkpoint in model_dir and wrap it in the requested backend.

    Raises CheckpointError for a bad checkpoint and EngineError when the backend cannot run.
    """
    logger = logger or log
    if backend not in BACKENDS:
        raise EngineError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    model = load_checkpoint(model_dir)
    spec = EngineSpec(model.config, num_queries)
    if backend in ("torch", "auto"):  # onnxruntime and tensorrt: see issue 4
        from .torch_backend import TorchEngine

        return TorchEngine(model, spec, device=device, precision=precision)
    raise EngineError(f"backend {backend!r} is not available in this build")
