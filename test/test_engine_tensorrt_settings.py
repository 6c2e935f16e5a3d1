"""The TensorRT backend's settings, against the named test double (test/fake_tensorrt.py): the workspace limit
reaches the builder, an engine for another query count is refused when opened, cuda:1 on a one-GPU robot."""

from __future__ import annotations

import pytest

from fourds_ros.engine import EngineError, EngineSpec
from fourds_ros.engine.export import cached_onnx
from fourds_ros.engine.tensorrt_backend import TensorRTEngine, create_tensorrt_engine
from fourds_ros.model.checkpoint import load_config

from .fake_tensorrt import FakeTensorRT

GPU = ("Fake Orin", (8, 7))


def test_the_workspace_limit_reaches_the_builder(tiny_model_dir, tmp_path):
    trt = FakeTensorRT()
    limits = []
    builder = trt.Builder

    class Builder(builder):
        def create_builder_config(self):
            config = super().create_builder_config()
            original = config.set_memory_pool_limit

            def set_memory_pool_limit(pool, size):
                limits.append(size)
                original(pool, size)

            config.set_memory_pool_limit = set_memory_pool_limit
            return config

    trt.Builder = Builder
    spec = EngineSpec(load_config(tiny_model_dir), 4)
    create_tensorrt_engine(tiny_model_dir, spec, tmp_path, device="cpu", precision="fp32", tensorrt=trt, gpu=GPU,
                           workspace_bytes=1 << 28)  # build-engine --workspace-gib 0.25
    assert limits == [1 << 28]


def test_an_engine_with_another_query_count_is_refused_when_opened(tiny_model_dir, tmp_path):
    onnx_q8 = cached_onnx(tiny_model_dir, tmp_path, "fp32", 8)
    spec_q4 = EngineSpec(load_config(tiny_model_dir), 4)
    with pytest.raises(EngineError, match="query_points"):
        TensorRTEngine(onnx_q8, spec_q4, tmp_path, precision="fp32", device="cpu", tensorrt=FakeTensorRT(), gpu=GPU)


def test_cuda_1_on_a_one_gpu_robot_is_an_engine_error(monkeypatch):
    # The off-by-one case of test_a_cuda_index_this_machine_lacks_is_an_engine_error (cuda:3).
    from fourds_ros.engine import tensorrt_backend

    monkeypatch.setattr(tensorrt_backend.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(tensorrt_backend.torch.cuda, "device_count", lambda: 1)
    with pytest.raises(EngineError, match="1 CUDA device"):
        tensorrt_backend.cuda_gpu("cuda:1")
