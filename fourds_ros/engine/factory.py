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
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")  # each backend accepts a subset and says so


def resolve_precision(precision: str, backend: str, device: str) -> str:
    """"auto" -> fp16 where a GPU runs the model (TensorRT; torch on CUDA), fp32 elsewhere; any other
    name is returned as is (the backend checks it). Why fp16 and not bf16: on the shipped model and a
    real clip (docs/benchmarks.md, session 42), torch autocast, which runs the matmuls in half
    precision, moves no output by more than 0.0051 relative L2 in fp16 (track positions 0.0018)
    against 0.054 on the track positions in bf16; the fp16-encoder graph TensorRT builds is 2.2e-4
    from fp32 in ONNX Runtime. Why fp32 on a CPU: ONNX Runtime's fp16 graph is not reliably faster
    there (57 against 63 ms a clip in one run, 111 against 91 in another)."""
    if precision != "auto":
        return precision
    on_gpu = backend == "tensorrt" or (backend == "torch" and str(device).startswith("cuda"))
    return "fp16" if on_gpu else "fp32"


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
    precision: str = "auto",
    num_queries: int = DEFAULT_NUM_QUERIES,
    cache_dir: str | Path | None = None,
    force_engine_update: bool = False,
    logger: logging.Logger | None = None,
    threads: int | None = None,
) -> InferenceEngine:
    """Load the checkpoint in model_dir and wrap it in the requested backend.

    precision: auto (resolve_precision: fp16 on a GPU, fp32 on a CPU) | torch fp32/bf16/fp16;
    onnxruntime fp32/fp16/int8; tensorrt fp32/fp16.
    cache_dir: exported ONNX graphs and TensorRT engines (default $FOURDS_ROS_CACHE_DIR or
    ~/.cache/fourds_ros/engines). Raises CheckpointError for a bad checkpoint and EngineError
    when the backend cannot run. threads: CPU threads of the engine (None or 0: every core we may
    run on).
    """
    logger = logger or log
    if device == "auto":
        # A robot with a GPU gets it (and with it TensorRT under backend auto) without config.
        device = resolve_device(device)
        logger.info("device auto: %s", device)
    if backend not in BACKENDS:
        raise EngineError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise EngineError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    spec = EngineSpec(load_config(model_dir), num_queries)  # ValueError for num_queries < 1
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if backend != "torch":
        # Checked once here, so the WARNING for a refused directory is logged once. A cache that
        # cannot be created is left to each backend to report (auto then skips that backend).
        with contextlib.suppress(CacheDirError):
            cache_dir = secure_cache_dir(cache_dir, logger)
    build = _Builder(model_dir, spec, cache_dir, device, precision, force_engine_update, logger, threads or None)
    if backend != "auto":
        engine = build(backend)
        logger.info("inference backend: %s (requested)", engine.describe())
        return engine
    return _first_that_runs(build, logger)


class _Builder:
    """Builds one backend's engine for create_engine; the checkpoint is loaded at most once across
    the backends `auto` tries, and only after TensorRT's cheap availability checks."""

    def __init__(self, model_dir, spec, cache_dir, device, precision, force_engine_update, logger, threads):
        self.model_dir, self.spec, self.cache_dir, self.device = model_dir, spec, cache_dir, device
        self.precision, self.force, self.logger, self.threads = precision, force_engine_update, logger, threads
        self.model = None

    def checkpoint(self):
        self.model = self.model or load_checkpoint(self.model_dir)
        return self.model

    def __call__(self, name: str) -> InferenceEngine:
        precision = resolve_precision(self.precision, name, self.device)
        common = (self.model_dir, self.spec, self.cache_dir, self.device, precision, self.force)
        if name == "tensorrt":
            from .tensorrt_backend import create_tensorrt_engine, cuda_gpu, import_tensorrt

            trt = import_tensorrt()  # cheap checks first: no checkpoint load, no export
            gpu = cuda_gpu(self.device)
            return create_tensorrt_engine(*common, model=self.checkpoint(), logger=self.logger, tensorrt=trt, gpu=gpu)
        if name == "onnxruntime":
            from .onnxruntime_backend import create_onnxruntime_engine

            return create_onnxruntime_engine(*common, model=self.checkpoint(), logger=self.logger,
                                             threads=self.threads)
        from .torch_backend import TorchEngine

        return TorchEngine(self.checkpoint(), self.spec, device=self.device, precision=precision,
                           threads=self.threads)


def _first_that_runs(build, logger: logging.Logger) -> InferenceEngine:
    """backend auto: the first of AUTO_ORDER that builds, each skip logged with its reason."""
    reasons = []
    for name in AUTO_ORDER:
        try:
            engine = build(name)
        except (EngineError, ImportError) as e:  # ImportError: a module this backend needs is missing
            reasons.append(f"{name}: {e}")
            level = logging.INFO if name == "tensorrt" and "not importable" in str(e) else logging.WARNING
            logger.log(level, "backend auto: skipping %s: %s", name, e)
            continue
        skipped = f" (skipped {'; '.join(reasons)})" if reasons else ""
        logger.info("backend auto chose %s%s", engine.describe(), skipped)
        return engine
    raise EngineError("no backend can run this model: " + "; ".join(reasons))
