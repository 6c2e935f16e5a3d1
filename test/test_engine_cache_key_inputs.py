"""The exported graph's cache key follows config.json and the exporter versions, not the weights alone.
A hand edit of config.json that keeps the weights (tracks window_radius, softargmax
temperature, readout_depth, depth activation) changes the graph; with the old key the old graph is served."""

from __future__ import annotations

import json
import shutil

import pytest

from fourds_ros.engine.engine_cache import checkpoint_key


def _edited(src, dst, edit):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    edit(cfg)
    (dst / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return dst


@pytest.mark.parametrize("edit", [
    lambda c: c["heads"]["tracks"].update(window_radius=1),
    lambda c: c["heads"]["depth"].update(activation="identity"),
    lambda c: c.update(readout_depth=0.5),
])
def test_checkpoint_key_follows_a_config_edit_that_keeps_the_weights(tiny_model_dir, tmp_path, edit):
    same = _edited(tiny_model_dir, tmp_path / "same", lambda c: None)
    assert checkpoint_key(same, "fp32", 8) == checkpoint_key(tiny_model_dir, "fp32", 8)
    changed = _edited(tiny_model_dir, tmp_path / "changed", edit)
    assert checkpoint_key(changed, "fp32", 8) != checkpoint_key(tiny_model_dir, "fp32", 8)


@pytest.mark.parametrize("module", ["torch", "onnx"])
def test_checkpoint_key_follows_the_exporter_versions(tiny_model_dir, monkeypatch, module):
    mod = __import__(module)
    key = checkpoint_key(tiny_model_dir, "fp32", 8)
    monkeypatch.setattr(mod, "__version__", mod.__version__ + ".upgraded")
    assert checkpoint_key(tiny_model_dir, "fp32", 8) != key
