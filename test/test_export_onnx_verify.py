"""export-onnx's ONNX Runtime vs torch check must fail on a graph whose outputs are NaN."""

from __future__ import annotations

import numpy as np
import pytest

from fourds_ros.engine import export


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cli_verify_fails_when_onnxruntime_outputs_nan(tiny_model_dir, tmp_path, monkeypatch, capsys, precision):
    real = export.onnxruntime_outputs

    def nan_outputs(path, inputs):
        return {k: np.full_like(v, np.nan) for k, v in real(path, inputs).items()}

    monkeypatch.setattr(export, "onnxruntime_outputs", nan_outputs)
    code = export.main(["--model", str(tiny_model_dir), "--out", str(tmp_path / "m.onnx"),
                        "--num-queries", "4", "--precision", precision])
    printed = capsys.readouterr()
    assert "nan" in printed.out  # the check saw it ...
    assert code == 1, "... and still reported success"


def test_cli_verify_fails_when_onnxruntime_differs_from_torch(tiny_model_dir, tmp_path, monkeypatch, capsys):
    real = export.onnxruntime_outputs
    monkeypatch.setattr(export, "onnxruntime_outputs",
                        lambda path, inputs: {k: v * 1.01 for k, v in real(path, inputs).items()})
    assert export.main(["--model", str(tiny_model_dir), "--out", str(tmp_path / "m.onnx"), "--num-queries", "4"]) == 1
    assert "differs from torch by more than 1e-05" in capsys.readouterr().err
