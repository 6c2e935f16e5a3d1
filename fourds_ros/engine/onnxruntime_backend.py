"""The ONNX Runtime backend: the exported graph on the CPU, or on the CUDA execution provider.

Precisions: fp32 (the exported graph, fused), fp16 (the fp16-encoder export), int8 (dynamic
quantisation of the plain fp32 graph's weights by onnxruntime.quantization.quantize_dynamic).

Fusion: ONNX Runtime's session-level optimisations do not recognise the exported tanh-GELU, so each
MLP ran it as seven element-wise nodes. onnxruntime.transformers' optimizer rewrites them into its
FastGelu kernel (17 fusions in 4DS-S): the same outputs to ~1e-6, and the engine 5-7 % faster on
the idle 2-core CPU (interleaved A/B with the default model; docs/benchmarks.md). The fused graph
is cached beside the export (model.fused.onnx); when the optimizer fails, the plain export is used
and the reason logged.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path

import numpy as np

from .base import EngineError, EngineSpec, InferenceEngine
from .engine_cache import (
    BUILD_LOCK, atomic_path, build_lock, secure_cache_dir, sidecar_problem, source_record_problem, writable_entry_dir,
    write_sidecar, write_source_record,
)

log = logging.getLogger(__name__)

ORT_PRECISIONS = ("fp32", "fp16", "int8")
_ORT_FLOAT = "tensor(float)"


def fuse_graph(fp32_onnx: str | Path, out: str | Path | None = None) -> Path:
    """onnxruntime.transformers' operator fusions (FastGelu, LayerNormalization) of an fp32 graph,
    written atomically beside it as model.fused.onnx unless `out` is given. Raises EngineError
    when the optimizer fails, OSError when the fused graph cannot be written."""
    from onnxruntime.transformers import optimizer

    fp32_onnx = Path(fp32_onnx)
    out = Path(out) if out is not None else fp32_onnx.with_name(fp32_onnx.stem + ".fused.onnx")
    # num_heads/hidden_size 0: detected from the graph; opt_level 0 leaves the session-level
    # optimisations to the session (ORT_ENABLE_ALL), which must see the fused graph unchanged.
    logging.disable(logging.WARNING)  # the optimizer warns per pattern it does not find...
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # ...and prints its shape-inference misses
            fused = optimizer.optimize_model(str(fp32_onnx), model_type="bert", num_heads=0, hidden_size=0,
                                             opt_level=0)
        with atomic_path(out) as tmp:
            fused.save_model_to_file(str(tmp))
    except OSError:
        raise  # a full disk or a read-only cache, not the optimizer: _derived_graph says it cannot write
    except Exception as e:  # the optimizer raises assorted types on graphs it cannot handle
        raise EngineError(f"onnxruntime.transformers optimizer failed on {fp32_onnx}: {e}") from e
    finally:
        logging.disable(logging.NOTSET)
    write_sidecar(out)
    return out


def _derived_graph(source: Path, suffix: str, make, force: bool, logger: logging.Logger,
                   cache_root: Path | None = None) -> Path:
    """source -> source.<suffix>.onnx made by make(source, out), reused while it matches its
    SHA-256 sidecar and its record of the source's SHA-256 (a source with other bytes invalidates it;
    mtimes do not, as a cache copied with cp -r or scp does not keep them). cache_root: the cache source
    is in; where its folder cannot take the graph (a prebuilt read-only cache without it), the graph is
    made in the process's private temporary directory (engine_cache.writable_entry_dir) and read there."""
    import onnxruntime as ort

    maker = f"onnxruntime {ort.__version__}"  # its optimizer fused the graph, its quantizer made the int8 one

    def problem_of(graph: Path) -> str | None:  # hashes the graph: once per place and look
        return None if force or not graph.exists() else sidecar_problem(graph) or source_record_problem(graph, source, maker)

    out = source.with_name(f"{source.stem}.{suffix}.onnx")
    problem = problem_of(out)
    if (force or not out.exists() or problem) and cache_root is not None and cache_root in source.parents:
        private = writable_entry_dir(source.parent, cache_root, logger) / out.name
        if private != out:
            out, problem = private, problem_of(private)
    if problem:
        logger.warning("cached %s graph %s %s; making it again", suffix, out, problem)
    if force or not out.exists() or problem:
        try:
            with build_lock(out.parent / BUILD_LOCK, f"the {suffix} graph {out}", logger):
                if not force and out.exists() and problem_of(out) is None:  # made while this process waited
                    return out
                logger.info("making the %s graph of %s", suffix, source)
                make(source, out)
                write_source_record(out, source, maker)  # after the graph: a record never vouches for a half-made one
        except OSError as exc:  # a full disk or a read-only cache
            raise EngineError(f"cannot write the {suffix} graph {out}: {exc.strerror or exc}") from exc
    return out


def quantize_int8(fp32_onnx: str | Path, out: str | Path | None = None) -> Path:
    """Dynamic int8 quantisation (weights int8 offline, activations quantised per call) of an
    fp32 graph; written atomically beside it as model.int8.onnx unless `out` is given."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32_onnx = Path(fp32_onnx)
    out = Path(out) if out is not None else fp32_onnx.with_name(fp32_onnx.stem + ".int8.onnx")
    # quantize_dynamic logs a line per tensor on the root logger; keep the node's log readable.
    logging.disable(logging.WARNING)
    try:
        with atomic_path(out) as tmp:
            quantize_dynamic(str(fp32_onnx), str(tmp), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    write_sidecar(out)
    return out


class OnnxRuntimeEngine(InferenceEngine):
    backend = "onnxruntime"

    def __init__(
        self,
        onnx_path: str | Path,
        spec: EngineSpec,
        device: str = "cpu",
        precision: str = "fp32",
        intra_op_threads: int | None = None,
    ):
        super().__init__(spec)
        import onnxruntime as ort

        self.onnx_path = Path(onnx_path)
        self.precision = precision
        if device == "cpu":
            providers = ["CPUExecutionProvider"]
        elif device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EngineError(
                    f"device {device!r} requested but this onnxruntime has no CUDAExecutionProvider "
                    f"(available: {', '.join(ort.get_available_providers())}; install onnxruntime-gpu)"
                )
            device_id = int(device.partition(":")[2] or 0)
            providers = [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]
        else:
            raise EngineError(f"onnxruntime device must be 'cpu' or 'cuda[:N]', got {device!r}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # fp16 graphs log harmless constant-folding warnings
        # ORT's own default (0) was 2.5x slower than an explicit count on a 2-core container
        # (it sized its pool from the host, not from our CPU affinity); use the cores we may run on.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        options.intra_op_num_threads = intra_op_threads or cores or 1
        # Idle pool threads sleep instead of spinning: the node shares these cores with DDS and
        # its own callbacks, which spinning starved (camera_info arrived frames late).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.onnx_path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/NoSuchFile types
            raise EngineError(f"onnxruntime cannot load {self.onnx_path}: {e}") from e
        self.device = device
        self._check_graph_io()

    def _check_graph_io(self) -> None:
        """The graph must have exactly the spec's named, fixed-shape float32 inputs and outputs."""
        graph_inputs = {i.name: i for i in self.session.get_inputs()}
        graph_outputs = {o.name for o in self.session.get_outputs()}
        if set(graph_inputs) != set(self.input_names) or not set(self.output_names) <= graph_outputs:
            raise EngineError(
                f"{self.onnx_path}: graph I/O {sorted(graph_inputs)} -> {sorted(graph_outputs)} does not "
                f"match the model config {self.input_names} -> {self.output_names}"
            )
        for name, shape in self.spec.input_shapes.items():
            node = graph_inputs[name]
            if tuple(node.shape) != shape or node.type != _ORT_FLOAT:
                raise EngineError(
                    f"{self.onnx_path}: input {name!r} is {node.type} {node.shape}, expected float32 {shape}"
                )

    def describe(self) -> str:
        provider = self.session.get_providers()[0].replace("ExecutionProvider", "")
        return f"onnxruntime ({provider}, {self.precision})"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, {n: inputs[n] for n in self.input_names})
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(self.output_names, outputs)}


def create_onnxruntime_engine(
    model_dir: str | Path,
    spec: EngineSpec,
    cache_dir: str | Path,
    device: str = "cpu",
    precision: str = "fp32",
    force_update: bool = False,
    model=None,
    logger: logging.Logger | None = None,
    threads: int | None = None,
) -> OnnxRuntimeEngine:
    """Export (or reuse) the graph in cache_dir and open it; an unreadable cached graph, or one
    whose bytes do not match its SHA-256 sidecar, is re-exported with a warning. cache_dir is
    refused for a private temporary one when others could write it (engine_cache.secure_cache_dir)."""
    from .export import cached_onnx

    logger = logger or log
    if precision not in ORT_PRECISIONS:
        raise EngineError(f"onnxruntime precision must be one of {ORT_PRECISIONS}, got {precision!r}")
    export_precision = "fp16" if precision == "fp16" else "fp32"
    cache_dir = secure_cache_dir(cache_dir, logger)

    def graph(force: bool) -> Path:
        path = cached_onnx(model_dir, cache_dir, export_precision, spec.num_queries,
                           model=model, force=force, logger=logger)
        if precision == "int8":  # from the plain export: the quantiser cannot type FastGelu's inputs
            return _derived_graph(path, "int8", quantize_int8, force, logger, cache_dir)
        if precision == "fp32":
            try:
                return _derived_graph(path, "fused", fuse_graph, force, logger, cache_dir)
            except EngineError as e:
                logger.warning("%s; running the unfused graph", e)
        return path

    try:
        return OnnxRuntimeEngine(graph(force_update), spec, device=device, precision=precision,
                                intra_op_threads=threads)
    except EngineError as e:
        if force_update or "cannot load" not in str(e):
            raise
        logger.warning("cached ONNX graph is unreadable (%s); exporting it again", e)
        return OnnxRuntimeEngine(graph(True), spec, device=device, precision=precision,
                                intra_op_threads=threads)
