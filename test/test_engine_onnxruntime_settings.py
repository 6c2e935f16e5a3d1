"""ONNX Runtime's settings reach its session (threads, no spinning, the CUDA device index), a graph for another
query count is refused when opened, and the export CLI fails when fp32 ONNX Runtime differs from torch."""

from __future__ import annotations

import pytest

from fourds_ros.engine.base import EngineError, EngineSpec
from fourds_ros.engine.export import cached_onnx
from fourds_ros.engine.onnxruntime_backend import OnnxRuntimeEngine
from fourds_ros.model.checkpoint import load_config


@pytest.fixture(scope="module")
def graph(tiny_model_dir, tmp_path_factory):
    return cached_onnx(tiny_model_dir, tmp_path_factory.mktemp("cache"), "fp32", 4)


@pytest.fixture(scope="module")
def spec(tiny_model_dir):
    return EngineSpec(load_config(tiny_model_dir), 4)


def test_the_thread_count_reaches_the_session_and_idle_threads_do_not_spin(graph, spec):
    engine = OnnxRuntimeEngine(graph, spec, intra_op_threads=1)
    options = engine.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_graph_with_another_query_count_is_refused_when_opened(tiny_model_dir, tmp_path, spec):
    other = cached_onnx(tiny_model_dir, tmp_path / "cache", "fp32", 8)
    with pytest.raises(EngineError, match="query_points"):
        OnnxRuntimeEngine(other, spec)


@pytest.mark.parametrize("device, device_id", [("cuda", 0), ("cuda:1", 1)])
def test_the_cuda_index_reaches_the_cuda_execution_provider(graph, spec, monkeypatch, device, device_id):
    import onnxruntime as ort

    seen = {}

    def session(path, options, providers):
        seen["providers"] = providers
        raise RuntimeError("no GPU here")

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", session)
    with pytest.raises(EngineError, match="cannot load"):
        OnnxRuntimeEngine(graph, spec, device=device)
    assert seen["providers"][0] == ("CUDAExecutionProvider", {"device_id": device_id})


def test_export_cli_fails_when_fp32_onnxruntime_differs_from_torch(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from fourds_ros.engine import export

    monkeypatch.setattr(export, "compare_outputs", lambda out, ref: dict.fromkeys(ref, 0.001))
    assert export.main(["--model", str(tiny_model_dir), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "differs from torch by more than 1e-05" in capsys.readouterr().err
