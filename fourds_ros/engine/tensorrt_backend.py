"""The TensorRT backend: a strongly typed engine built from the exported ONNX graph, cached on
disk, run with I/O by tensor name on a dedicated CUDA stream. No pycuda: torch owns the buffers.

Written against the TensorRT 10.x (JetPack) and 11.x (x86) Python APIs:
  - strongly typed networks (`NetworkDefinitionCreationFlag.STRONGLY_TYPED`; required on 10.x,
    accepted and always on in 11.x). 11.x removed `BuilderFlag.FP16`, so precision comes from the
    ONNX types: precision "fp16" builds the fp16-encoder export (see export.py).
  - workspace limit `IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)`;
  - a timing cache per TensorRT version and GPU, kept beside the engines;
  - `build_serialized_network`, `Runtime.deserialize_cuda_engine`;
  - `num_io_tensors` / `get_tensor_name` / `get_tensor_mode` / `get_tensor_shape` /
    `get_tensor_dtype`, `set_tensor_address`, `execute_async_v3(stream_handle)`.
tensorrt is imported lazily, so this module imports on machines without it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from .base import DEFAULT_NUM_QUERIES, EngineError, EngineSpec, InferenceEngine, device_scope
from .engine_cache import (
    BUILD_LOCK,
    atomic_write_bytes,
    build_lock,
    default_cache_dir,
    digest,
    secure_cache_dir,
    sidecar_problem,
    tensorrt_engine_key,
    writable_entry_dir,
    write_sidecar,
)

log = logging.getLogger(__name__)

TRT_PRECISIONS = ("fp32", "fp16")
DEFAULT_WORKSPACE_BYTES = 4 << 30


def import_tensorrt():
    """The tensorrt module, or EngineError saying why it cannot be imported."""
    try:
        import tensorrt
    except Exception as e:  # ImportError, or a broken install failing to load libnvinfer
        raise EngineError(f"TensorRT is not importable ({type(e).__name__}: {e})") from e
    return tensorrt


def cuda_gpu(device: str = "cuda") -> tuple[str, tuple[int, int]]:
    """(name, compute capability) of the CUDA device, or EngineError when there is none."""
    if not str(device).startswith("cuda"):
        raise EngineError(f"TensorRT runs on a CUDA device, got device {device!r}")
    if not torch.cuda.is_available():
        raise EngineError("TensorRT needs a CUDA GPU, but torch.cuda.is_available() is False")
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():  # torch would raise its own error, which `auto` does not pass over
        raise EngineError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    name = torch.cuda.get_device_name(index)
    props = torch.cuda.get_device_properties(index)  # Jetson AGX Orin / Orin NX / Orin Nano: all "Orin", sm_87
    name = f"{name} ({props.multi_processor_count} SMs, {props.total_memory >> 20} MiB)"
    return name, tuple(torch.cuda.get_device_capability(index))


def _torch_dtype(trt, dtype) -> torch.dtype:
    names = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16,
             "INT32": torch.int32, "INT64": torch.int64, "INT8": torch.int8,
             "UINT8": torch.uint8, "BOOL": torch.bool}
    for name, torch_dtype in names.items():
        if getattr(trt.DataType, name, None) == dtype:
            return torch_dtype
    raise EngineError(f"TensorRT tensor type {dtype} has no torch equivalent")


def build_serialized_engine(
    trt,
    onnx_path: str | Path,
    timing_cache_path: str | Path,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    logger: logging.Logger | None = None,
    precision: str = "fp16",
) -> bytes:
    """Parse the ONNX file into a strongly typed network and build a serialized engine.

    The timing cache at timing_cache_path is read when present and written back (atomically)
    after the build, so rebuilds skip kernel timing already done on this GPU.
    """
    logger = logger or log
    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, trt_logger)
    # parse_from_file, not parse(bytes): it resolves external data next to the ONNX file.
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {onnx_path}: {errors or 'unknown error'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if precision == "fp32":  # TF32 is on by default: fp32 matmuls would round their inputs to 10-bit mantissas
        config.clear_flag(trt.BuilderFlag.TF32)

    timing_cache_path = Path(timing_cache_path)
    previous = timing_cache_path.read_bytes() if timing_cache_path.exists() else b""
    # Bytes TensorRT cannot read (a truncated copy) give None, not an exception (a nullptr from a noexcept call):
    # passed on, set_timing_cache raised TypeError and TensorRT was given up at every start.
    timing_cache = config.create_timing_cache(previous)
    if timing_cache is None:
        logger.warning("ignoring unreadable TensorRT timing cache %s; starting a new one", timing_cache_path)
        timing_cache = config.create_timing_cache(b"")
    if not config.set_timing_cache(timing_cache, ignore_mismatch=False):
        logger.warning("TensorRT timing cache %s does not match this GPU; starting a new one", timing_cache_path)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)

    logger.info("building TensorRT engine from %s (workspace %.1f GiB)", onnx_path, workspace_bytes / 2**30)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log)")
    try:
        atomic_write_bytes(timing_cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
    except OSError as exc:  # a full disk: the engine is built all the same
        logger.warning("cannot write the TensorRT timing cache %s (%s)", timing_cache_path, exc.strerror or exc)
    return bytes(memoryview(serialized))


class TensorRTEngine(InferenceEngine):
    """Engine from `onnx_path`, cached in `cache_dir`/tensorrt/<key>.engine.

    tensorrt: the module to use (tests inject a double); default: `import tensorrt`.
    gpu: (name, compute capability) for the cache key; default: the CUDA device's.
    """

    backend = "tensorrt"

    def __init__(
        self,
        onnx_path: str | Path,
        spec: EngineSpec,
        cache_dir: str | Path,
        precision: str = "fp16",
        device: str = "cuda",
        force_engine_update: bool = False,
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
        logger: logging.Logger | None = None,
        tensorrt=None,
        gpu: tuple[str, tuple[int, int]] | None = None,
    ):
        super().__init__(spec)
        self.log = logger or log
        if precision not in TRT_PRECISIONS:
            raise EngineError(f"tensorrt precision must be one of {TRT_PRECISIONS}, got {precision!r}")
        trt = tensorrt if tensorrt is not None else import_tensorrt()
        self.trt = trt
        self.precision = precision
        self.device = torch.device(device)
        gpu_name, capability = gpu if gpu is not None else cuda_gpu(device)
        self.gpu_name = gpu_name
        self.cache_root = secure_cache_dir(cache_dir, self.log)
        engine_dir = self.cache_root / "tensorrt"  # written only when building
        key = tensorrt_engine_key(onnx_path, trt.__version__, gpu_name, capability, precision)
        self.engine_path = engine_dir / f"{key}.engine"
        gpu_key = digest(trt.__version__, gpu_name, "{}.{}".format(*capability))[:16]
        self.timing_cache_path = engine_dir / f"timing-{gpu_key}.cache"
        with device_scope(self.device):
            self._open(onnx_path, engine_dir, force_engine_update, workspace_bytes)

    def _open(self, onnx_path: str | Path, engine_dir: Path, force_engine_update: bool, workspace_bytes: int):
        """The engine (cached, or built and cached), its context, stream and bound buffers."""
        trt = self.trt
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = None if force_engine_update else self._load_cached()
        if force_engine_update:
            self.log.info("force_engine_update: rebuilding %s", self.engine_path)
        if engine is None:
            written = writable_entry_dir(engine_dir, self.cache_root, self.log)
            if written != engine_dir:  # a prebuilt cache without this engine: the private directory's
                engine = self._from_private_directory(written, force_engine_update)
        self.rebuilt = False
        if engine is None:
            lock = self.engine_path.with_name(f".{self.engine_path.stem}{BUILD_LOCK}")
            with build_lock(lock, f"the TensorRT engine {self.engine_path}", self.log):
                # Looked for again under the lock: another process may have built it while this one waited.
                engine = None if force_engine_update else self._load_cached(warn=False)
                if engine is None:
                    engine = self._build(onnx_path, workspace_bytes)
                    self.rebuilt = True
        self.engine = engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise EngineError("TensorRT could not create an execution context (out of GPU memory?)")
        # A dedicated stream: inference does not serialise with other torch work on the default one.
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self.buffers = self._bind_buffers()

    def _build(self, onnx_path: str | Path, workspace_bytes: int):
        """Build the engine, cache it (with its sidecar) and deserialize it."""
        data = build_serialized_engine(self.trt, onnx_path, self.timing_cache_path, workspace_bytes, self.log,
                                       self.precision)
        try:
            atomic_write_bytes(self.engine_path, data)
            write_sidecar(self.engine_path)
        except OSError as exc:  # a full disk: this run uses the engine it built; the next builds again
            self.log.warning("cannot cache the TensorRT engine at %s (%s): using it from memory, it is built "
                             "again at the next start", self.engine_path, exc.strerror or exc)
        engine = self._deserialize(data)
        if engine is None:
            raise EngineError(f"TensorRT cannot deserialize the engine it just built ({self.engine_path})")
        return engine

    def _from_private_directory(self, private: Path, force_engine_update: bool):
        """Move the engine's and the timing cache's paths into `private` (writable_entry_dir's fallback for a
        prebuilt cache that lacks this engine) and load the engine this process may have built there
        already; the prebuilt cache's timing cache is copied there first, so a build starts from it."""
        prebuilt_timing = self.timing_cache_path
        self.engine_path = private / self.engine_path.name
        self.timing_cache_path = private / prebuilt_timing.name
        if prebuilt_timing.is_file() and not self.timing_cache_path.exists():
            with contextlib.suppress(OSError):
                shutil.copyfile(prebuilt_timing, self.timing_cache_path)
        return None if force_engine_update else self._load_cached()

    def _load_cached(self, warn: bool = True):
        """The cached engine when it exists, matches its SHA-256 sidecar and deserializes; else None
        (with a WARNING saying why, unless not `warn`: a second look, after the first said it). The bytes
        hashed are the bytes deserialized."""
        if not self.engine_path.exists():
            return None
        data = self.engine_path.read_bytes()
        say = self.log.warning if warn else self.log.debug
        problem = sidecar_problem(self.engine_path, data)
        if problem is not None:
            say("TensorRT engine %s %s; rebuilding it", self.engine_path, problem)
            return None
        engine = self._deserialize(data)
        if engine is None:
            say(
                "TensorRT engine %s cannot be deserialized (corrupt, or built by another TensorRT: "
                "version tag does not match); rebuilding it", self.engine_path)
        return engine

    def _deserialize(self, data: bytes):
        try:
            return self.runtime.deserialize_cuda_engine(data)
        except Exception as e:  # some versions raise instead of returning None
            self.log.warning("TensorRT deserialize_cuda_engine failed: %s", e)
            return None

    def _bind_buffers(self) -> dict[str, torch.Tensor]:
        """One device tensor per I/O tensor, bound once by name (shapes are fixed)."""
        trt, engine = self.trt, self.engine
        buffers, inputs = {}, set()
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(engine.get_tensor_shape(name))
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs.add(name)
                expected = self.spec.input_shapes.get(name)
                if expected is not None and shape != expected:
                    raise EngineError(f"engine input {name!r} has shape {shape}, expected {expected}")
            buffers[name] = torch.empty(shape, dtype=_torch_dtype(trt, engine.get_tensor_dtype(name)),
                                        device=self.device)
            self.context.set_tensor_address(name, buffers[name].data_ptr())
        if inputs != set(self.input_names) or not set(self.output_names) <= set(buffers) - inputs:
            raise EngineError(
                f"engine I/O {sorted(inputs)} -> {sorted(set(buffers) - inputs)} does not match "
                f"{self.input_names} -> {self.output_names}")
        return buffers

    def describe(self) -> str:
        return f"tensorrt {self.trt.__version__} ({self.gpu_name}, {self.precision})"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        stream_context = torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()
        with device_scope(self.device), stream_context, torch.inference_mode():
            for name in self.input_names:
                self.buffers[name].copy_(torch.from_numpy(inputs[name]))
            handle = self.stream.cuda_stream if self.stream is not None else 0
            if not self.context.execute_async_v3(handle):
                raise EngineError("TensorRT execute_async_v3 failed (see the TensorRT log)")
            outputs = {n: self.buffers[n].float().cpu() for n in self.output_names}
            if self.stream is not None:
                self.stream.synchronize()
        return {n: t.numpy() for n, t in outputs.items()}


def create_tensorrt_engine(
    model_dir: str | Path,
    spec: EngineSpec,
    cache_dir: str | Path,
    device: str = "cuda",
    precision: str = "fp16",
    force_engine_update: bool = False,
    model=None,
    logger: logging.Logger | None = None,
    tensorrt=None,
    gpu: tuple[str, tuple[int, int]] | None = None,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> TensorRTEngine:
    """Import TensorRT and find the GPU first (cheap failures), then export and build. Any failure of
    TensorRT itself is an EngineError. force_engine_update: export the graph and build the engine again."""
    from .export import cached_onnx

    if precision not in TRT_PRECISIONS:
        raise EngineError(f"tensorrt precision must be one of {TRT_PRECISIONS}, got {precision!r}")
    trt = tensorrt if tensorrt is not None else import_tensorrt()
    gpu = gpu if gpu is not None else cuda_gpu(device)
    # force_engine_update exports the graph again too: after an upgrade the cached graph may be the stale part.
    onnx_path = cached_onnx(model_dir, cache_dir, precision, spec.num_queries, model=model,
                            force=force_engine_update, logger=logger)
    try:
        return TensorRTEngine(onnx_path, spec, cache_dir, precision=precision, device=device,
                              force_engine_update=force_engine_update, workspace_bytes=workspace_bytes,
                              logger=logger, tensorrt=trt, gpu=gpu)
    except EngineError:
        raise
    except Exception as e:
        # A TensorRT that imports but cannot start (a CUDA driver older than its runtime, an unsupported
        # GPU) fails in its pybind layer: trt.Builder/trt.Runtime raise TypeError "factory function
        # returned nullptr". As an EngineError it lets `auto` go on to ONNX Runtime instead of failing.
        raise EngineError(f"TensorRT cannot run: {type(e).__name__}: {e}") from e


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="fourds-ros build-engine",
        description="Build (or refresh) the cached TensorRT engine of a checkpoint, for deployment images.")
    parser.add_argument("--model", required=True, help="checkpoint directory")
    parser.add_argument("--precision", choices=TRT_PRECISIONS, default="fp16")
    parser.add_argument("--cache-dir", default=None, help=f"engine cache (default {default_cache_dir()})")
    parser.add_argument("--num-queries", type=int, default=DEFAULT_NUM_QUERIES)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workspace-gib", type=float, default=DEFAULT_WORKSPACE_BYTES / 2**30)
    parser.add_argument("--force", action="store_true", help="rebuild even when a cached engine loads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from ..model import CheckpointError
    from ..model.checkpoint import load_config

    cache = Path(args.cache_dir or default_cache_dir())
    try:
        spec = EngineSpec(load_config(args.model), args.num_queries)
        engine = create_tensorrt_engine(
            args.model, spec, cache, device=args.device,
            precision=args.precision, force_engine_update=args.force,
            workspace_bytes=int(args.workspace_gib * 2**30))
    except (CheckpointError, EngineError, OSError, ValueError) as e:
        print(f"fourds-ros build-engine: {e}", file=sys.stderr)
        return 1
    if not Path(engine.engine_path).resolve().is_relative_to(cache.resolve()):
        # The cache refused it (not private, or not writable: the WARNING above says which) and the engine went
        # to the process's private temporary directory, removed at exit: the deployment image would have none.
        print(f"fourds-ros build-engine: the engine was written to {engine.engine_path}, a temporary directory "
              f"removed at exit, not into the cache {cache}, which refused it (see the warning above): make the "
              "cache private to this user (chmod 700) and writable, or give another --cache-dir", file=sys.stderr)
        return 1
    print(f"{engine.describe()}: {engine.engine_path} ({'built' if engine.rebuilt else 'cached, loads'})")
    return 0
