"""Engine cache: keys, atomic writes, missing/unwritable directories."""

from __future__ import annotations

import pytest

from fourds_ros.engine.engine_cache import (
    CacheDirError,
    atomic_path,
    atomic_write_bytes,
    checkpoint_key,
    ensure_writable_dir,
    tensorrt_engine_key,
)
from fourds_ros.model import load_checkpoint, save_checkpoint


def test_tensorrt_key_changes_with_every_input(tmp_path):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"graph-a")
    base = dict(tensorrt_version="10.3.0", gpu_name="Orin", compute_capability=(8, 7), precision="fp16")
    key = tensorrt_engine_key(onnx_file, **base)
    assert key == tensorrt_engine_key(onnx_file, **base)
    variants = [dict(base, tensorrt_version="11.0.0"), dict(base, gpu_name="H100"),
                dict(base, compute_capability=(9, 0)), dict(base, precision="fp32")]
    keys = {tensorrt_engine_key(onnx_file, **v) for v in variants}
    assert len(keys) == 4 and key not in keys
    onnx_file.write_bytes(b"graph-b")
    assert tensorrt_engine_key(onnx_file, **base) != key
    # External data counts as ONNX bytes too.
    changed = tensorrt_engine_key(onnx_file, **base)
    (tmp_path / "m.onnx.data").write_bytes(b"weights")
    assert tensorrt_engine_key(onnx_file, **base) != changed


def test_checkpoint_key_follows_weights_precision_and_queries(tiny_model_dir, tmp_path):
    key = checkpoint_key(tiny_model_dir, "fp32", 8)
    assert key == checkpoint_key(tiny_model_dir, "fp32", 8)
    assert key != checkpoint_key(tiny_model_dir, "fp16", 8)
    assert key != checkpoint_key(tiny_model_dir, "fp32", 9)
    model = load_checkpoint(tiny_model_dir)
    with __import__("torch").no_grad():
        next(model.parameters()).add_(1.0)
    other = save_checkpoint(model, tmp_path / "changed")
    assert checkpoint_key(other, "fp32", 8) != key


def test_atomic_write_replaces_whole_file_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "engine.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a new eng")
            raise RuntimeError("build crashed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["engine.bin"]  # no temp file left behind
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


def test_cache_dir_is_created_when_missing_and_rejected_when_impossible(tmp_path):
    created = ensure_writable_dir(tmp_path / "a" / "b")
    assert created.is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheDirError, match="cannot be created"):
        ensure_writable_dir(blocker / "cache")
    with pytest.raises(CacheDirError):
        ensure_writable_dir(blocker)
