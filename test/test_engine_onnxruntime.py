"""ONNX Runtime backend and backend selection through create_engine (real ORT, real exports)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from fourds_ros.engine import EngineError, EngineInputError, create_engine
from fourds_ros.engine.export import compare_outputs, example_inputs

Q = 8


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engine_cache")


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    torch_engine = create_engine(tiny_model_dir, "torch", num_queries=Q)
    inputs = example_inputs(torch_engine.spec, seed=7)
    return inputs, torch_engine(inputs)


def test_onnxruntime_engine_matches_torch_and_reuses_the_cached_graph(tiny_model_dir, cache_dir, reference, caplog):
    inputs, expected = reference
    engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=cache_dir)
    assert engine.backend == "onnxruntime" and "CPU" in engine.describe()
    out = engine(inputs)
    assert set(out) == set(expected) and all(v.dtype == np.float32 for v in out.values())
    assert max(compare_outputs(out, expected).values()) <= 1e-5
    graph = engine.onnx_path
    mtime = graph.stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        again = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=cache_dir)
    assert again.onnx_path == graph and graph.stat().st_mtime_ns == mtime
    assert "exporting" not in caplog.text
    forced = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=cache_dir,
                           force_engine_update=True)
    assert forced.onnx_path == graph and graph.stat().st_mtime_ns != mtime


def test_the_cpu_graph_is_the_fused_export(tiny_model_dir, cache_dir):
    import onnx

    engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=cache_dir)
    assert engine.onnx_path.name == "model.fused.onnx"
    fused = [n.op_type for n in onnx.load(engine.onnx_path).graph.node]
    plain = [n.op_type for n in onnx.load(engine.onnx_path.with_name("model.onnx")).graph.node]
    assert "FastGelu" in fused and "FastGelu" not in plain and len(fused) < len(plain)


def test_a_corrupt_fused_graph_is_made_again_with_a_warning(tiny_model_dir, tmp_path, reference, caplog):
    inputs, expected = reference
    graph = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=tmp_path).onnx_path
    graph.write_bytes(b"\x00garbage, not protobuf")
    with caplog.at_level(logging.WARNING):
        engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=tmp_path)
    assert "cached fused graph" in caplog.text and "making it again" in caplog.text
    assert max(compare_outputs(engine(inputs), expected).values()) <= 1e-5


def test_when_fusion_fails_the_plain_export_runs_with_a_warning(tiny_model_dir, tmp_path, reference, caplog,
                                                                monkeypatch):
    from onnxruntime.transformers import optimizer

    def unsupported(*_args, **_kwargs):
        raise RuntimeError("pattern not supported")

    monkeypatch.setattr(optimizer, "optimize_model", unsupported)
    inputs, expected = reference
    with caplog.at_level(logging.WARNING):
        engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=tmp_path)
    assert engine.onnx_path.name == "model.onnx"
    assert "optimizer failed" in caplog.text and "pattern not supported" in caplog.text
    assert max(compare_outputs(engine(inputs), expected).values()) <= 1e-5


def test_corrupt_cached_graph_is_exported_again_with_a_warning(tiny_model_dir, tmp_path, reference, caplog):
    inputs, expected = reference
    graph = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=tmp_path).onnx_path
    graph = graph.with_name("model.onnx")
    graph.write_bytes(b"\x00garbage, not protobuf")
    with caplog.at_level(logging.WARNING):
        engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=tmp_path)
    assert "exporting it again" in caplog.text
    assert max(compare_outputs(engine(inputs), expected).values()) <= 1e-5


def test_int8_dynamic_quantisation_runs_with_a_measured_error(tiny_model_dir, cache_dir, reference):
    inputs, expected = reference
    engine = create_engine(tiny_model_dir, "onnxruntime", precision="int8", num_queries=Q, cache_dir=cache_dir)
    assert engine.onnx_path.name == "model.int8.onnx"
    errors = compare_outputs(engine(inputs), expected)
    print("int8 relative L2 vs torch fp32:", {k: f"{v:.1e}" for k, v in errors.items()})
    assert 0 < max(errors.values()) < 0.2, errors


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_bad_inputs_get_a_clear_error(tiny_model_dir, cache_dir, reference, backend):
    inputs, _ = reference
    engine = create_engine(tiny_model_dir, backend, num_queries=Q, cache_dir=cache_dir)
    with pytest.raises(EngineInputError, match="shape"):
        engine({**inputs, "video": inputs["video"][:, :2]})
    with pytest.raises(EngineInputError, match="float32"):
        engine({**inputs, "video": inputs["video"].astype(np.float64)})
    with pytest.raises(EngineInputError, match="query_points"):
        engine({"video": inputs["video"]})
    with pytest.raises(EngineInputError, match="float32"):
        engine({**inputs, "query_points": inputs["query_points"].tolist()})
    # Values: torch's model refused a 0-255 clip or a NaN while ONNX Runtime ran them into plausible wrong depth.
    with pytest.raises(EngineInputError, match=r"in \[0, 1\]"):
        engine({**inputs, "video": inputs["video"] * 255})
    nan = inputs["video"].copy()
    nan[0, 0, 0, 0, 0] = np.nan
    with pytest.raises(EngineInputError, match=r"in \[0, 1\]"):
        engine({**inputs, "video": nan})
    # A reversed view of the clip (negative strides) runs, as its copy does: torch.from_numpy refused it.
    reversed_view = inputs["video"][:, ::-1]
    out = engine({**inputs, "video": reversed_view})
    same = engine({**inputs, "video": np.ascontiguousarray(reversed_view)})
    assert all(np.array_equal(out[k], same[k]) for k in out)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_outputs_of_another_shape_than_the_models_are_an_engine_error(tiny_model_dir, cache_dir, reference, backend,
                                                                      monkeypatch):
    """An engine built for another model or size (a stale cache) gave depth of half the size, which the pipeline
    published with the model grid's K, counting nothing. Its run is made to do so here."""
    inputs, _ = reference
    engine = create_engine(tiny_model_dir, backend, num_queries=Q, cache_dir=cache_dir)
    right = engine(inputs)
    run = engine.run
    monkeypatch.setattr(engine, "run", lambda checked: {**run(checked), "depth": right["depth"][..., ::2, ::2]})
    with pytest.raises(EngineError, match=r"output 'depth' is \(1, 4, 16, 16\), not the model's \(1, 4, 32, 32\)"):
        engine(inputs)
    monkeypatch.setattr(engine, "run", lambda checked: {k: v for k, v in run(checked).items() if k != "pose_rotation"})
    with pytest.raises(EngineError, match="output 'pose_rotation' is missing"):
        engine(inputs)


def test_auto_without_tensorrt_logs_why_and_picks_onnxruntime(tiny_model_dir, cache_dir, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    with caplog.at_level(logging.INFO):
        engine = create_engine(tiny_model_dir, "auto", num_queries=Q, cache_dir=cache_dir)
    assert engine.backend == "onnxruntime"
    assert "TensorRT is not importable" in caplog.text and "chose onnxruntime" in caplog.text
    with pytest.raises(EngineError, match="TensorRT is not importable"):
        create_engine(tiny_model_dir, "tensorrt", device="cuda", num_queries=Q, cache_dir=cache_dir)


def test_unwritable_cache_is_an_error_or_a_fallback_with_a_warning(tiny_model_dir, tmp_path, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(EngineError, match="cache directory"):
        create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=blocker / "cache")
    with caplog.at_level(logging.WARNING):
        engine = create_engine(tiny_model_dir, "auto", num_queries=Q, cache_dir=blocker / "cache")
    assert engine.backend == "torch"
    assert "skipping onnxruntime" in caplog.text and "cache directory" in caplog.text


def test_unsupported_choices_are_rejected_by_name(tiny_model_dir, tmp_path):
    with pytest.raises(EngineError, match="backend must be one of"):
        create_engine(tiny_model_dir, "openvino")
    with pytest.raises(EngineError, match="onnxruntime precision"):
        create_engine(tiny_model_dir, "onnxruntime", precision="bf16", cache_dir=tmp_path)
    with pytest.raises(EngineError, match="CUDAExecutionProvider"):
        create_engine(tiny_model_dir, "onnxruntime", device="cuda", cache_dir=tmp_path)
    # auto with bf16 on a CPU host: ONNX Runtime cannot, torch can.
    assert create_engine(tiny_model_dir, "auto", precision="bf16", cache_dir=tmp_path).backend == "torch"


def test_device_auto_resolves_to_what_is_present(tiny_model_dir, caplog):
    import torch

    with caplog.at_level(logging.INFO):
        engine = create_engine(tiny_model_dir, "torch", device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert engine.device.type == expected
    assert f"device auto: {expected}" in caplog.text


def _read_only(*_args, **_kwargs):
    """tempfile.mkstemp on a read-only filesystem: every atomic write of the cache starts with it."""
    import errno

    raise OSError(errno.EROFS, "Read-only file system")


def _fused_and_int8(tiny_model_dir, cache_dir):
    return {p: create_engine(tiny_model_dir, "onnxruntime", precision=p, num_queries=Q, cache_dir=cache_dir).onnx_path
            for p in ("int8", "fp32")}


def test_a_copied_read_only_cache_uses_its_fused_and_int8_graphs(tiny_model_dir, tmp_path, monkeypatch):
    """A prebuilt cache copied with cp -r or scp keeps no mtimes: model.onnx can come out newer than
    the graphs made from it. Judged by mtime, on a read-only image int8 failed configure and fp32 ran
    unfused; the graphs were made from these very bytes, so they are used as they are."""
    import os
    import tempfile
    import time

    from fourds_ros.engine import onnxruntime_backend

    built = _fused_and_int8(tiny_model_dir, tmp_path)
    assert [g.name for g in built.values()] == ["model.int8.onnx", "model.fused.onnx"]
    future = time.time() + 10
    os.utime(built["fp32"].with_name("model.onnx"), (future, future))
    monkeypatch.setattr(tempfile, "mkstemp", _read_only)
    for name in ("quantize_int8", "fuse_graph"):
        monkeypatch.setattr(onnxruntime_backend, name, lambda *_a, name=name: pytest.fail(f"{name} called"))
    for precision, graph in built.items():
        engine = create_engine(tiny_model_dir, "onnxruntime", precision=precision, num_queries=Q, cache_dir=tmp_path)
        assert engine.onnx_path == graph


def test_derived_graphs_are_made_again_when_their_source_changes(tiny_model_dir, tmp_path, monkeypatch, caplog):
    """model.onnx with other bytes (whatever its mtime) makes the fused and int8 graphs again. Where
    they cannot be written, that is said: int8 fails by name, fp32 runs the plain graph."""
    import os
    import tempfile

    import onnx

    from fourds_ros.engine import onnxruntime_backend
    from fourds_ros.engine.engine_cache import write_sidecar

    built = _fused_and_int8(tiny_model_dir, tmp_path)
    source = built["fp32"].with_name("model.onnx")
    graph = onnx.load(str(source))
    graph.doc_string += " (exported again)"
    onnx.save_model(graph, str(source))
    write_sidecar(source)
    past = built["fp32"].stat().st_mtime - 60  # older than the graphs made from it: mtimes do not decide
    os.utime(source, (past, past))
    with monkeypatch.context() as read_only:
        read_only.setattr(tempfile, "mkstemp", _read_only)
        with caplog.at_level(logging.WARNING):
            plain = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=tmp_path)
        assert plain.onnx_path == source
        assert "cannot write the fused graph" in caplog.text and "optimizer failed" not in caplog.text
        with pytest.raises(EngineError, match="cannot write the int8 graph .*Read-only file system"):
            create_engine(tiny_model_dir, "onnxruntime", precision="int8", num_queries=Q, cache_dir=tmp_path)
    made = []
    for name in ("quantize_int8", "fuse_graph"):
        real = getattr(onnxruntime_backend, name)
        monkeypatch.setattr(onnxruntime_backend, name, lambda src, out, real=real: made.append(out.name) or real(src, out))
    for _ in range(2):  # made again once, then reused
        assert _fused_and_int8(tiny_model_dir, tmp_path) == built
    assert made == ["model.int8.onnx", "model.fused.onnx"]


def test_derived_graphs_are_made_again_by_another_onnxruntime(tiny_model_dir, tmp_path, monkeypatch, caplog):
    """The fused and int8 graphs are ONNX Runtime's own (its optimizer, its quantizer), keyed on the source
    graph only: after an ONNX Runtime upgrade the old version's were served. Now their record names the
    version that made them, and another one makes them again, once."""
    import onnxruntime

    from fourds_ros.engine import onnxruntime_backend

    built = _fused_and_int8(tiny_model_dir, tmp_path)
    monkeypatch.setattr(onnxruntime, "__version__", onnxruntime.__version__ + ".next")
    made = []
    for name in ("quantize_int8", "fuse_graph"):
        real = getattr(onnxruntime_backend, name)
        monkeypatch.setattr(onnxruntime_backend, name, lambda src, out, real=real: made.append(out.name) or real(src, out))
    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # made again once, then reused
            assert _fused_and_int8(tiny_model_dir, tmp_path) == built
    assert made == ["model.int8.onnx", "model.fused.onnx"]
    assert "made by another maker than onnxruntime" in caplog.text
