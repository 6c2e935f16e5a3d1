"""ONNX export: checker, named fixed-shape I/O, ORT vs torch parity, fp16 error, external data, CLI."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from fourds_ros.engine import EngineSpec
from fourds_ros.engine.export import (
    compare_outputs,
    example_inputs,
    export_onnx,
    main,
    onnxruntime_outputs,
    torch_reference,
)
from fourds_ros.model import load_checkpoint


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_checkpoint(tiny_model_dir)


@pytest.fixture(scope="module")
def spec(model):
    return EngineSpec(model.config, num_queries=8)


def _dims(value_info):
    return tuple(d.dim_value for d in value_info.type.tensor_type.shape.dim)


def test_fp32_export_is_valid_named_fixed_shape_and_matches_torch(model, spec, tmp_path):
    path = export_onnx(model, tmp_path / "m.onnx", num_queries=8)
    onnx.checker.check_model(str(path))
    graph = onnx.load(str(path))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert {i.name: _dims(i) for i in graph.graph.input} == spec.input_shapes
    assert [o.name for o in graph.graph.output] == spec.output_names
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in graph.graph.input)
    inputs = example_inputs(spec, seed=3)
    errors = compare_outputs(onnxruntime_outputs(path, inputs), torch_reference(model, inputs))
    assert set(errors) == set(spec.output_names)
    assert max(errors.values()) <= 1e-5, errors


def test_fp16_export_keeps_float32_io_and_its_error_is_small(model, spec, tmp_path):
    path = export_onnx(model, tmp_path / "m16.onnx", num_queries=8, precision="fp16")
    graph = onnx.load(str(path))
    types = {init.data_type for init in graph.graph.initializer if init.name.startswith("model.encoder")}
    assert onnx.TensorProto.FLOAT16 in types  # the encoder's weights really are half
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
               for v in [*graph.graph.input, *graph.graph.output])
    inputs = example_inputs(spec, seed=4)
    errors = compare_outputs(onnxruntime_outputs(path, inputs), torch_reference(model, inputs))
    print("fp16 export relative L2 vs fp32 torch:", {k: f"{v:.1e}" for k, v in errors.items()})
    assert all(np.isfinite(v) for v in errors.values())
    assert 0 < max(errors.values()) < 1e-2, errors  # not bit-identical (it is half), yet close


def test_external_data_export_writes_a_data_file_and_still_runs(model, spec, tmp_path):
    path = export_onnx(model, tmp_path / "big.onnx", num_queries=8, external_data=True)
    data = tmp_path / "big.onnx.data"
    assert data.stat().st_size > path.stat().st_size
    onnx.checker.check_model(str(path))
    inputs = example_inputs(spec)
    errors = compare_outputs(onnxruntime_outputs(path, inputs), torch_reference(model, inputs))
    assert max(errors.values()) <= 1e-5
    # Re-exporting without external data removes the stale data file.
    export_onnx(model, path, num_queries=8, external_data=False)
    assert not data.exists()


def test_export_rejects_old_opset_and_unknown_precision(model, tmp_path):
    from fourds_ros.engine import EngineError

    with pytest.raises(EngineError, match="opset"):
        export_onnx(model, tmp_path / "x.onnx", opset=13)
    with pytest.raises(EngineError, match="precision"):
        export_onnx(model, tmp_path / "x.onnx", precision="int4")
    assert not list(tmp_path.iterdir())


def test_cli_exports_verifies_and_reports_bad_model_dir(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert main(["--model", str(tiny_model_dir), "--out", str(out), "--num-queries", "4"]) == 0
    printed = capsys.readouterr().out
    assert "ONNX checker passed" in printed and "relative L2" in printed
    assert {i.name: _dims(i) for i in onnx.load(str(out)).graph.input}["query_points"] == (1, 4, 3)
    assert main(["--model", str(tmp_path / "missing"), "--out", str(tmp_path / "y.onnx")]) == 1
    assert "does not exist" in capsys.readouterr().err
