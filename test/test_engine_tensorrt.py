"""TensorRT backend against a TEST DOUBLE (test/fake_tensorrt.py): TensorRT cannot be installed
here. What runs for real: the ONNX export, the cache keys and files, atomic writes, the rebuild
decisions, the buffer binding by name (the double runs the graph in real ONNX Runtime on the
bound memory) and the fallback when the import fails."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from fourds_ros.engine import EngineError, EngineInputError, EngineSpec, create_engine
from fourds_ros.engine.engine_cache import sidecar_path, write_sidecar
from fourds_ros.engine.export import compare_outputs, example_inputs
from fourds_ros.engine.tensorrt_backend import create_tensorrt_engine, main
from fourds_ros.model.checkpoint import load_config

from .fake_tensorrt import FakeTensorRT

Q = 8
GPU = ("Fake Orin", (8, 7))


@pytest.fixture
def spec(tiny_model_dir):
    return EngineSpec(load_config(tiny_model_dir), Q)


def _engine(model_dir, spec, cache_dir, trt, **kw):
    # device "cpu": the double's "GPU memory" is host memory, so torch buffers live on the CPU.
    return create_tensorrt_engine(model_dir, spec, cache_dir, device="cpu", tensorrt=trt, gpu=GPU, **kw)


def test_build_follows_the_strongly_typed_call_sequence_and_runs_by_name(tiny_model_dir, spec, tmp_path):
    trt = FakeTensorRT("10.3.0")
    engine = _engine(tiny_model_dir, spec, tmp_path, trt, precision="fp16")
    calls = trt.calls
    order = ["Builder", "create_network(2)", "OnnxParser", "parse_from_file",
             "create_builder_config", "set_memory_pool_limit(WORKSPACE)", "create_timing_cache(0 bytes)",
             "set_timing_cache", "build_serialized_network", "deserialize_cuda_engine",
             "create_execution_context"]
    positions = [calls.index(c) for c in order]
    assert positions == sorted(positions), calls
    assert "BuilderFlag" not in " ".join(calls)
    bound = {c[len("set_tensor_address("):-1] for c in calls if c.startswith("set_tensor_address")}
    assert bound == set(spec.input_names) | set(spec.output_names)
    assert engine.rebuilt and engine.engine_path.exists() and engine.timing_cache_path.exists()
    # Output values come back through the bound buffers; compare with torch.
    torch_engine = create_engine(tiny_model_dir, "torch", num_queries=Q)
    inputs = example_inputs(spec, seed=11)
    errors = compare_outputs(engine(inputs), torch_engine(inputs))
    assert max(errors.values()) < 1e-2, errors  # fp16 encoder
    assert trt.calls[-1] == "execute_async_v3"
    with pytest.raises(EngineInputError, match="shape"):
        engine({**inputs, "video": inputs["video"][0]})
    with pytest.raises(EngineInputError, match=r"in \[0, 1\]"):  # it ran a 0-255 clip into wrong depth
        engine({**inputs, "video": inputs["video"] * 255})
    assert trt.calls[-1] == "execute_async_v3" and trt.calls.count("execute_async_v3") == 1
    reversed_view = inputs["video"][:, ::-1]  # negative strides: torch.from_numpy refused them
    errors = compare_outputs(engine({**inputs, "video": reversed_view}),
                             torch_engine({**inputs, "video": np.ascontiguousarray(reversed_view)}))
    assert max(errors.values()) < 1e-2, errors


def test_cached_engine_loads_without_a_build_and_timing_cache_is_reused(tiny_model_dir, spec, tmp_path):
    first = _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT(), precision="fp32")
    trt = FakeTensorRT()
    second = _engine(tiny_model_dir, spec, tmp_path, trt, precision="fp32")
    assert second.engine_path == first.engine_path and not second.rebuilt
    assert "build_serialized_network" not in trt.calls
    forced = FakeTensorRT()
    engine = _engine(tiny_model_dir, spec, tmp_path, forced, precision="fp32", force_engine_update=True)
    assert engine.rebuilt and "build_serialized_network" in forced.calls
    assert any(c.startswith("create_timing_cache(") and c != "create_timing_cache(0 bytes)" for c in forced.calls)
    assert first.timing_cache_path.read_bytes() == b"FAKECACHE2"


def test_corrupt_or_mismatched_engine_is_rebuilt_with_a_warning(tiny_model_dir, spec, tmp_path, caplog):
    path = _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT("10.3.0")).engine_path
    # An engine from another TensorRT build sits under this key (e.g. copied into an image).
    alien = path.read_bytes().replace(b'"version": "10.3.0"', b'"version": "10.7.0"')
    for content, log_line in ((alien, "version tag does not match"), (b"\x00\x01truncated", "magicTag")):
        path.write_bytes(content)
        write_sidecar(path)  # copied in with its own matching hash: only deserialization can tell
        trt = FakeTensorRT("10.3.0")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            engine = _engine(tiny_model_dir, spec, tmp_path, trt)
        assert any(log_line in line for line in trt.log)
        assert "rebuilding" in caplog.text and "version tag does not match" in caplog.text
        assert engine.rebuilt and engine.engine_path == path
        assert path.read_bytes().startswith(b"FAKETRT1") and b'"10.3.0"' in path.read_bytes()


def test_engine_not_matching_its_sha256_is_rebuilt_without_deserializing(tiny_model_dir, spec, tmp_path, caplog):
    """A substituted engine (valid for this TensorRT, but other bytes than the ones built) or one
    without its sidecar never reaches deserialize_cuda_engine."""
    path = _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT("10.3.0")).engine_path
    built = path.read_bytes()
    assert sidecar_path(path).read_text().split()[1] == path.name
    for tamper in ("substitute", "drop sidecar"):
        if tamper == "substitute":
            path.write_bytes(built.replace(b'"version": "10.3.0"', b'"version":  "10.3.0"'))
        else:
            sidecar_path(path).unlink()
        trt = FakeTensorRT("10.3.0")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            engine = _engine(tiny_model_dir, spec, tmp_path, trt)
        assert "SHA-256" in caplog.text and "rebuilding" in caplog.text, caplog.text
        assert engine.rebuilt and trt.calls.count("deserialize_cuda_engine") == 1  # only the new build's
        assert path.read_bytes() == built and sidecar_path(path).exists()
    assert not _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT("10.3.0")).rebuilt


def test_world_writable_cache_is_not_used_for_engines(tiny_model_dir, spec, tmp_path, caplog):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with caplog.at_level(logging.WARNING):
        engine = _engine(tiny_model_dir, spec, shared, FakeTensorRT())
    assert "world-writable" in caplog.text
    assert shared not in engine.engine_path.parents and not any(shared.iterdir())


def test_key_separates_tensorrt_versions_and_precisions(tiny_model_dir, spec, tmp_path):
    paths = {_engine(tiny_model_dir, spec, tmp_path, FakeTensorRT(v), precision=p).engine_path
             for v in ("10.3.0", "11.0.0") for p in ("fp32", "fp16")}
    assert len(paths) == 4


def test_unwritable_cache_and_unsupported_precision_are_clear_errors(tiny_model_dir, spec, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EngineError, match="cache directory"):
        _engine(tiny_model_dir, spec, blocker / "cache", FakeTensorRT())
    with pytest.raises(EngineError, match="tensorrt precision"):
        _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT(), precision="int8")


def test_build_engine_cli_without_tensorrt_says_why(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["--model", str(tiny_model_dir), "--cache-dir", str(tmp_path)]) == 1
    assert "TensorRT is not importable" in capsys.readouterr().err


def test_build_engine_cli_with_the_double_reports_no_gpu(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT())
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the no-GPU message cannot be checked")
    assert main(["--model", str(tiny_model_dir), "--cache-dir", str(tmp_path)]) == 1
    assert "CUDA GPU" in capsys.readouterr().err


def test_precision_auto_is_fp16_for_tensorrt_and_fp32_for_the_cpu_backends(tiny_model_dir, tmp_path, monkeypatch):
    """A GPU robot's TensorRT engine (backend auto) is built from the fp16 export without any
    parameter; the CPU backends keep fp32; an explicit precision wins."""
    from fourds_ros.engine import tensorrt_backend
    from fourds_ros.engine.factory import resolve_precision

    assert resolve_precision("auto", "tensorrt", "cuda") == "fp16"
    assert resolve_precision("auto", "torch", "cuda:1") == "fp16"
    assert resolve_precision("auto", "torch", "cpu") == "fp32"
    assert resolve_precision("auto", "onnxruntime", "cuda") == "fp32"
    assert resolve_precision("bf16", "tensorrt", "cuda") == "bf16"  # the backend refuses it, by name
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT("10.3.0"))
    monkeypatch.setattr(tensorrt_backend, "cuda_gpu", lambda device: GPU)
    engine = create_engine(tiny_model_dir, "auto", device="cpu", num_queries=Q, cache_dir=tmp_path)
    assert engine.backend == "tensorrt" and engine.precision == "fp16"
    explicit = create_engine(tiny_model_dir, "tensorrt", device="cpu", precision="fp32", num_queries=Q,
                             cache_dir=tmp_path)
    assert explicit.precision == "fp32" and explicit.engine_path != engine.engine_path
    with pytest.raises(EngineError, match="tensorrt precision"):
        create_engine(tiny_model_dir, "tensorrt", device="cpu", precision="int8", num_queries=Q, cache_dir=tmp_path)
    assert create_engine(tiny_model_dir, "torch", num_queries=Q).precision == "fp32"
    with pytest.raises(EngineError, match="precision must be one of"):
        create_engine(tiny_model_dir, "torch", precision="fp8", num_queries=Q)


def test_a_full_disk_keeps_the_engine_it_built(tiny_model_dir, spec, tmp_path, caplog, monkeypatch):
    """Writing the engine (or the timing cache) fails for want of space: the engine just built is
    used from memory, with a warning, instead of being thrown away with configure failing."""
    import errno

    from fourds_ros.engine import tensorrt_backend

    first = _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT())  # exports the graph; the disk fills after
    first.engine_path.unlink()

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tensorrt_backend, "atomic_write_bytes", full_disk)
    caplog.set_level(logging.WARNING)
    engine = _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT())
    assert engine.rebuilt and not engine.engine_path.exists()
    assert "cannot cache the TensorRT engine" in caplog.text and "cannot write the TensorRT timing cache" in caplog.text
    inputs = example_inputs(spec, seed=3)
    errors = compare_outputs(engine(inputs), create_engine(tiny_model_dir, "torch", num_queries=Q)(inputs))
    assert max(errors.values()) < 1e-2, errors


def test_tensorrt_works_inside_the_configured_devices_scope(tiny_model_dir, spec, tmp_path, monkeypatch):
    """TensorRT builds, deserializes and runs on the *current* CUDA device, not on one it is given:
    every TensorRT call must happen while the engine's device is current (device_scope), or
    `cuda:1` builds on GPU 0 and runs against buffers on GPU 1. The double records each call; the
    scope is recorded around them (this CPU has no CUDA device to switch to)."""
    import contextlib

    from fourds_ros.engine import tensorrt_backend

    trt = FakeTensorRT()

    @contextlib.contextmanager
    def recorded_scope(device):
        trt.calls.append(f"enter {device}")
        yield
        trt.calls.append(f"exit {device}")

    monkeypatch.setattr(tensorrt_backend, "device_scope", recorded_scope)
    engine = _engine(tiny_model_dir, spec, tmp_path, trt)
    engine(example_inputs(spec, seed=5))
    inside, outside = False, []
    for call in trt.calls:
        if call.startswith(("enter", "exit")):
            inside = call.startswith("enter")
            assert call.endswith(" cpu")
        elif not inside:
            outside.append(call)
    assert outside == [], outside
    assert "deserialize_cuda_engine" in trt.calls and trt.calls[-2] == "execute_async_v3"


def test_a_cuda_index_this_machine_lacks_is_an_engine_error(monkeypatch):
    """`device: cuda:3` on a one-GPU robot: an EngineError (so `auto` goes on to the next backend),
    not torch's own exception."""
    from fourds_ros.engine import tensorrt_backend

    monkeypatch.setattr(tensorrt_backend.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(tensorrt_backend.torch.cuda, "device_count", lambda: 1)
    with pytest.raises(EngineError, match="1 CUDA device"):
        tensorrt_backend.cuda_gpu("cuda:3")


@pytest.mark.parametrize("factory", ["Builder", "Runtime"])
def test_a_tensorrt_that_cannot_start_makes_auto_run_onnxruntime(tiny_model_dir, tmp_path, monkeypatch, caplog,
                                                                  factory):
    """TensorRT imports but cannot start (a CUDA driver older than its runtime): its pybind layer
    raises TypeError from trt.Builder or trt.Runtime. That escaped `auto` and failed configure;
    it is an EngineError, so auto runs ONNX Runtime and an explicit tensorrt says why."""
    from fourds_ros.engine import tensorrt_backend

    trt = FakeTensorRT()

    class CannotStart:
        def __init__(self, logger):
            raise TypeError("pybind11::init(): factory function returned nullptr")

    setattr(trt, factory, CannotStart)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(tensorrt_backend, "cuda_gpu", lambda device: GPU)
    with caplog.at_level(logging.WARNING):
        engine = create_engine(tiny_model_dir, "auto", device="cpu", num_queries=Q, cache_dir=tmp_path)
    assert engine.backend == "onnxruntime"
    assert "skipping tensorrt: TensorRT cannot run: TypeError" in caplog.text
    with pytest.raises(EngineError, match="TensorRT cannot run: TypeError: pybind11::init") as raised:
        create_engine(tiny_model_dir, "tensorrt", device="cpu", num_queries=Q, cache_dir=tmp_path)
    assert isinstance(raised.value.__cause__, TypeError)


def test_force_engine_update_exports_the_graph_again(tiny_model_dir, spec, tmp_path, monkeypatch):
    """`build-engine --force` after an upgrade must not build the new engine from the old cached
    graph: like the ONNX Runtime backend, it exports the graph again."""
    from fourds_ros.engine import export

    exported = []
    real_export = export.export_onnx

    def counting_export(*args, **kwargs):
        exported.append(args[1])
        return real_export(*args, **kwargs)

    monkeypatch.setattr(export, "export_onnx", counting_export)
    _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT(), precision="fp32")
    assert not _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT(), precision="fp32").rebuilt
    assert len(exported) == 1
    forced = _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT(), precision="fp32", force_engine_update=True)
    assert forced.rebuilt and len(exported) == 2


@pytest.mark.parametrize("mode", [0o775, 0o700])
def test_build_engine_fails_where_the_cache_refused_the_engine(tiny_model_dir, tmp_path, monkeypatch, capsys, mode):
    """A deployment step `build-engine --cache-dir C` with C group-writable (a shared 0775 folder, which the
    cache refuses: anyone could plant an engine there): the engine went to the private temporary directory,
    removed at exit, and the command said "built", exit 0. Now it fails and says why; a private C builds."""
    from fourds_ros.engine import tensorrt_backend

    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT())
    monkeypatch.setattr(tensorrt_backend, "cuda_gpu", lambda device="cuda": ("Fake Orin", (8, 7)))
    cache = tmp_path / "deploy"
    cache.mkdir()
    cache.chmod(mode)
    rc = main(["--model", str(tiny_model_dir), "--cache-dir", str(cache), "--device", "cpu", "--num-queries", "8"])
    out = capsys.readouterr()
    if mode == 0o775:
        assert rc == 1 and "not into the cache" in out.err and not list(cache.rglob("*.engine")), out
    else:
        assert rc == 0 and "(built)" in out.out and len(list(cache.rglob("*.engine"))) == 1, out


def test_an_unreadable_timing_cache_is_started_afresh_not_fatal(tiny_model_dir, spec, tmp_path, caplog):
    """TensorRT's create_timing_cache gives None for bytes it cannot read (a nullptr from a noexcept call; the
    double used to raise instead, the one case the code handled): None went to set_timing_cache, whose TypeError
    gave TensorRT up (backend auto: ONNX Runtime) at every start, the bad file never replaced."""
    first = _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT(), precision="fp16")
    first.engine_path.unlink()
    first.timing_cache_path.write_bytes(b"\x00truncated")  # a cut copy of a prebuilt cache
    with caplog.at_level(logging.WARNING):
        engine = _engine(tiny_model_dir, spec, tmp_path, FakeTensorRT(), precision="fp16")
    assert engine.rebuilt and "unreadable TensorRT timing cache" in caplog.text
    assert engine.timing_cache_path.read_bytes().startswith(b"FAKECACHE")


@pytest.mark.parametrize("precision, tf32", [("fp32", False), ("fp16", True)])
def test_an_fp32_engine_is_built_without_tf32(tiny_model_dir, spec, tmp_path, precision, tf32):
    """TensorRT's TF32 flag is on by default, so fp32 matmuls rounded their inputs to 10-bit mantissas (relative
    error 2.9e-4 on one 384-wide matmul against fp32's promised 1e-5): precision fp32 clears it."""
    from .fake_tensorrt import BuilderFlag

    trt = FakeTensorRT()
    _engine(tiny_model_dir, spec, tmp_path, trt, precision=precision)
    assert (BuilderFlag.TF32 in trt.built_flags) is tf32


def test_boards_of_one_name_and_capability_are_different_gpus(monkeypatch):
    """Jetson AGX Orin, Orin NX and Orin Nano all report "Orin", sm_87: the engine key (name, capability) gave a
    prebuilt cache's engine of one board to another, which TensorRT loads with a warning only. The identity
    holds the SM count and memory too."""
    import types

    from fourds_ros.engine import tensorrt_backend

    cuda = tensorrt_backend.torch.cuda
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 1)
    monkeypatch.setattr(cuda, "get_device_name", lambda i=0: "Orin")
    monkeypatch.setattr(cuda, "get_device_capability", lambda i=0: (8, 7))
    names = set()
    for sms, memory in ((16, 64 << 30), (8, 16 << 30), (8, 8 << 30)):
        board = types.SimpleNamespace(multi_processor_count=sms, total_memory=memory)
        monkeypatch.setattr(cuda, "get_device_properties", lambda i=0, p=board: p)
        names.add(tensorrt_backend.cuda_gpu("cuda"))
    assert len(names) == 3, names
