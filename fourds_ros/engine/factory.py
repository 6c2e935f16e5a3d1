"""Backend selection. `auto`: TensorRT when importable and a GPU is present (and the device is a
CUDA device), then ONNX Runtime, then torch. The choice and the reason are logged; in `auto` a
backend that cannot run (no TensorRT, unwritable cache, unsupported precision) is skipped with a
warning, while an explicitly requested backend raises EngineError saying why."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from ..model import load_checkpoint
from ..model.checkpoint import load_config
from .base import DEFAULT_NUM_QUERIES, EngineError, EngineSpec, InferenceEngine
from .engine_cache import CacheDirError, default_cache_dir, secure_cache_dir

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
AUTO_ORDER = ("tensorrt", "onnxruntime", "torch")
# Default CPU threads of an engine when create_engine is not given `threads` (None: the backend's
# own choice, every core we may run on). The node sets it from its inference_threads parameter
# before building its pipeline; a thread pool is a process-wide budget, like torch's.
_default_threads: int | None = None


def set_default_threads(threads: int | None) -> None:
    """Threads for engines created from now on in this process (0 or None: all cores)."""
    global _default_threads
    _default_threads = threads or None


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; any other name is returned as is."""
    if device != "auto":
        return device
    import torch  # lazily: ONNX Runtime users need not pay for it here

    return "cuda" if torch.cuda.is_available() else "cpu"


def create_engine(
    model_dir: str | Path,
    backend: str = "auto",
    device: str = "cpu",
    precision: str = "fp32",
    num_queries: int = DEFAULT_NUM_QUERIES,
    cache_dir: str | Path | None = None,
    force_engine_update: bool = False,
    logger: logging.Logger | None = None,
    threads: int | None = None,
) -> InferenceEngine:
    """Load the checkpoint in model_dir and wrap it in the requested backend.

    precision: torch fp32/bf16/fp16; onnxruntime fp32/fp16/int8; tensorrt fp32/fp16.
    cache_dir: exported ONNX graphs and TensorRT engines (default $FOURDS_ROS_CACHE_DIR or
    ~/.cache/fourds_ros/engines). Raises CheckpointError for a bad checkpoint and EngineError
    when the backend cannot run. threads: CPU threads of the engine (None: set_default_threads, else
    every core we may run on).
    """
    logger = logger or log
    threads = threads or _default_threads
    if device == "auto":
        # A robot with a GPU gets it (and with it TensorRT under backend auto) without config.
        device = resolve_device(device)
        logger.info("device auto: %s", device)
    if backend not in BACKENDS:
        raise EngineError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    spec = EngineSpec(load_config(model_dir), num_queries)  # ValueError for num_queries < 1
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if backend != "torch":
        # Checked once here, so the WARNING for a refused directory is logged once. A cache that
        # cannot be created is left to each backend to report (auto then skips that backend).
        with contextlib.suppress(CacheDirError):
            cache_dir = secure_cache_dir(cache_dir, logger)
    model = None

    def build(name: str) -> InferenceEngine:
        nonlocal model
        if name == "tensorrt":
            from .tensorrt_backend import create_tensorrt_engine, cuda_gpu, import_tensorrt

            trt = import_tensorrt()  # cheap checks first: no checkpoint load, no export
            gpu = cuda_gpu(device)
            model = model or load_checkpoint(model_dir)
            return create_tensorrt_engine(model_dir, spec, cache_dir, device, precision,
                                          force_engine_update, model=model, logger=logger,
                                          tensorrt=trt, gpu=gpu)
        model = model or load_checkpoint(model_dir)
        if name == "onnxruntime":
            from .onnxruntime_backend import create_onnxruntime_engine

            return create_onnxruntime_engine(model_dir, spec, cache_dir, device, precision,
                                             force_engine_update, model=model, logger=logger,
                                             threads=threads)
        from .torch_backend import TorchEngine

        return TorchEngine(model, spec, device=device, precision=precision, threads=threads)

    if backend != "auto":
        engine = build(backend)
        logger.info("inference backend: %s (requested)", engine.describe())
        return engine
    return _first_that_runs(build, logger)


def _first_that_runs(build, logger: logging.Logger) -> InferenceEngine:
    """backend auto: the first of AUTO_ORDER that builds, each skip logged with its reason."""
    reasons = []
    for name in AUTO_ORDER:
        try:
            engine = build(name)
        except EngineError as e:
            reasons.append(f"{name}: {e}")
            level = logging.INFO if name == "tensorrt" and "not importable" in str(e) else logging.WARNING
            logger.log(level, "backend auto: skipping %s: %s", name, e)
            continue
        skipped = f" (skipped {'; '.join(reasons)})" if reasons else ""
        logger.info("backend auto chose %s%s", engine.describe(), skipped)
        return engine
    raise EngineError("no backend can run this model: " + "; ".join(reasons))
