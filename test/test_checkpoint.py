"""Checkpoint format and the official importer: round trips and clear errors on bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from fourds_ros.cli import main as cli
from fourds_ros.model import CheckpointError, load_checkpoint
from fourds_ros.model.checkpoint import WEIGHTS_FILE
from fourds_ros.model.official import import_official

from .conftest import REFERENCE, require


def test_round_trip(tiny_model_dir):
    model = load_checkpoint(tiny_model_dir)
    again = load_checkpoint(tiny_model_dir)
    video = torch.rand(1, 4, 32, 32, 3)
    q = torch.zeros(1, 2, 3)
    with torch.no_grad():
        a, b = model(video, q), again(video, q)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _rewrite(src, dst, edit):
    import shutil

    shutil.copytree(src, dst)
    state = load_file(str(dst / WEIGHTS_FILE))
    edit(state)
    save_file(state, str(dst / WEIGHTS_FILE))
    return dst


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("encoder.posenc"), r"missing keys: \['encoder.posenc'\]"),
        (lambda s: s.__setitem__("extra.weight", torch.zeros(1)), r"unexpected keys: \['extra.weight'\]"),
        (lambda s: s.__setitem__("heads.depth.readout.head.bias", torch.full((128,), float("nan"))),
         "contains NaN"),
    ],
)
def test_bad_weights_name_the_key(tiny_model_dir, tmp_path, edit, message):
    bad = _rewrite(tiny_model_dir, tmp_path / "bad", edit)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(bad)


def test_mis_shaped_key(tiny_model_dir, tmp_path):
    bad = _rewrite(tiny_model_dir, tmp_path / "bad",
                   lambda s: s.__setitem__("encoder.posenc", torch.zeros(3, 2, 2, 32)))
    with pytest.raises(CheckpointError, match=r"'encoder.posenc' has shape \(3, 2, 2, 32\), expected \(2, 2, 2, 32\)"):
        load_checkpoint(bad)


def test_corrupt_and_missing_files(tiny_model_dir, tmp_path):
    import shutil

    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    bad = tmp_path / "corrupt"
    shutil.copytree(tiny_model_dir, bad)
    (bad / WEIGHTS_FILE).write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load_checkpoint(bad)
    (bad / "config.json").write_text("{ broken")
    with pytest.raises(CheckpointError, match="invalid model config"):
        load_checkpoint(bad)


@pytest.mark.parametrize("edit", [
    lambda c: c.__setitem__("heads", ["depth"]),                    # AttributeError before
    lambda c: c["heads"].__setitem__("depth", None),                 # AttributeError
    lambda c: c.__setitem__("patch_size", [0, 16, 16]),              # ZeroDivisionError
    lambda c: c["heads"]["depth"].__setitem__("num_params", 32.5),   # TypeError from the model's build
], ids=["heads_a_list", "a_head_null", "patch_size_0", "fractional_width"])
def test_a_malformed_config_is_a_checkpoint_error(tiny_model_dir, tmp_path, edit):
    """An edited or foreign config.json: each of these escaped as another exception type, which
    the node's configure and create_engine do not report as a bad model directory."""
    import json
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    edit(config)
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config"):
        load_checkpoint(bad)


def test_a_config_asking_for_a_huge_clip_is_refused_before_anything_is_built(tmp_path):
    """A tracks-only model's weights fix no image size (its position grid is stored apart: posenc_grid), so a
    downloaded config.json could ask for 32768x32768: it loaded (1.3 GB of the tracks head's buffers from a
    784 KB folder) and the node was killed for memory at its first clip. Refused by name now."""
    import json

    from fourds_ros.model import FourDS, ModelConfig, save_checkpoint
    from fourds_ros.model.config import TrackHeadConfig

    config = ModelConfig(size="micro", num_frames=4, image_size=(64, 64), heads={"tracks": TrackHeadConfig()})
    save_checkpoint(FourDS(config), tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved.update(posenc_grid=list(config.token_grid), image_size=[32768, 32768])
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match="image_size"):
        load_checkpoint(tmp_path)
    saved.update(image_size=[1024, 1024])  # large, and a size a model may run at
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert load_checkpoint(tmp_path).config.image_size == (1024, 1024)


LOAD_UNDER_A_MEMORY_LIMIT = r"""
import re, resource, sys
from fourds_ros.model import CheckpointError, load_checkpoint
in_use = int(re.search(r"VmSize:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_AS, (in_use + (2 << 30), resource.RLIM_INFINITY))  # 2 GB more
try:
    load_checkpoint(sys.argv[1])
except CheckpointError as e:
    print(e)
"""


def test_a_config_of_a_larger_model_than_its_weights_fails_without_building_it(tiny_model_dir, tmp_path):
    """Size "G" beside micro weights: the whole G model (7.4 GB of float32) was allocated before the
    missing keys were found; under a 2 GB limit that failed as "cannot be built", on a robot as the
    OOM killer. The keys and shapes are checked first, on a model that allocates nothing."""
    import json
    import shutil
    import subprocess
    import sys

    big = tmp_path / "big"
    shutil.copytree(tiny_model_dir, big)
    config = json.loads((big / "config.json").read_text())
    (big / "config.json").write_text(json.dumps({**config, "size": "G"}))
    done = subprocess.run([sys.executable, "-c", LOAD_UNDER_A_MEMORY_LIMIT, str(big)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"{big / WEIGHTS_FILE}: missing keys: ['encoder.blocks."), done.stdout
    assert "has shape" in done.stdout and "cannot be built" not in done.stdout

def _flax_backbone(tmp_path):
    """A backbone-only file keyed like scaling4d_dist_b.npz (params/encoder, params/processor)."""
    ref = np.load(require(REFERENCE / "ti_depth.npz"))
    arrays = {
        k.replace("params/layers_0/", "params/"): ref[k]
        for k in ref.files if k.startswith("params/layers_0/")
    }
    path = tmp_path / "backbone.npz"
    np.savez(path, **arrays)
    return path, arrays


def test_import_official_cli_backbone_and_depth(tmp_path, capsys):
    path, arrays = _flax_backbone(tmp_path)
    assert cli(["import-official", str(path), str(tmp_path / "bb")]) == 0
    model = load_checkpoint(tmp_path / "bb")
    assert not model.heads and model.config.size == "Ti"
    conv = arrays["params/encoder/patch_embedding/Conv_0/kernel"]
    assert np.array_equal(model.encoder.patch_embedding.proj.weight.detach().numpy(), conv.transpose(4, 3, 0, 1, 2))

    assert cli(["import-official", str(REFERENCE / "ti_depth.npz"), str(tmp_path / "depth")]) == 0
    model = load_checkpoint(tmp_path / "depth")
    assert model.config.heads["depth"].decoding_patch_size == (2, 8, 8)
    assert "heads: depth" in capsys.readouterr().out
    (tmp_path / "a_file").write_text("mine")  # an OUT that is a file: one line, the file kept (a traceback before)
    assert cli(["import-official", str(path), str(tmp_path / "a_file")]) == 1
    assert "is a file, not a model directory" in capsys.readouterr().err and (tmp_path / "a_file").read_text() == "mine"


def test_import_official_rejects_bad_files(tmp_path):
    path, arrays = _flax_backbone(tmp_path)
    arrays.pop("params/processor/layers_3/mlp/dense_in/bias")
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(CheckpointError, match="missing official key 'processor/layers_3/mlp/dense_in/bias'"):
        import_official(tmp_path / "missing.npz")
    arrays["params/processor/layers_3/mlp/dense_in/bias"] = np.zeros(768, np.float32)
    arrays["params/encoder/surprise"] = np.zeros(3, np.float32)
    np.savez(tmp_path / "extra.npz", **arrays)
    with pytest.raises(CheckpointError, match="unexpected official keys.*surprise"):
        import_official(tmp_path / "extra.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable .npz"):
        import_official(tmp_path / "junk.npz")
    assert cli(["import-official", str(tmp_path / "junk.npz"), str(tmp_path / "o")]) == 1
    np.save(tmp_path / "one.npy", np.zeros(3, np.float32))  # a traceback (TypeError) before
    with pytest.raises(CheckpointError, match="not a readable .npz"):
        import_official(tmp_path / "one.npy")
    # A backbone + readout file with a third tree under params/: it was dropped without a word.
    ref = dict(np.load(require(REFERENCE / "ti_depth.npz")))
    ref["params/layers_3/head/kernel"] = np.zeros((2, 2), np.float32)
    np.savez(tmp_path / "stray.npz", **ref)
    with pytest.raises(CheckpointError, match="unrecognised official keys.*layers_3"):
        import_official(tmp_path / "stray.npz")


def _npz_with_header(path, header: dict, payload: bytes = b"") -> None:
    """An .npz of one member whose .npy header says `header`, followed by `payload`."""
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("params/encoder/x.npy", buf.getvalue() + payload)


def test_import_official_refuses_an_archive_whose_arrays_cannot_be_read(tmp_path):
    """A member whose header claims a huge array (numpy asked for 36 TiB: MemoryError) or one of a structured
    dtype (TypeError in the float32 conversion) crashed `fourds-ros import-official` with a traceback. Now a
    CheckpointError naming the file, read from the headers before any array."""
    from fourds_ros.model.official import load_npz

    _npz_with_header(tmp_path / "huge.npz", {"descr": "<f4", "fortran_order": False, "shape": (10**7, 10**6)})
    with pytest.raises(CheckpointError, match="huge.npz.*declares"):
        load_npz(tmp_path / "huge.npz")
    np.savez(tmp_path / "struct.npz", **{"params/encoder/x": np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])})
    with pytest.raises(CheckpointError, match="struct.npz.*not a numeric one"):
        load_npz(tmp_path / "struct.npz")
    assert cli(["import-official", str(tmp_path / "struct.npz"), str(tmp_path / "o")]) == 1


def test_import_official_refuses_arrays_larger_than_the_memory_before_reading_them(tmp_path, monkeypatch):
    """A compressed archive can hold far more than its own size (a zip bomb), and an official encoder at
    float32 can outgrow a robot computer: the OOM killer ended the import with no message. The headers are
    summed first and an archive beyond the computer's memory refused, saying how much it needs."""
    from fourds_ros.model import official

    np.savez_compressed(tmp_path / "big.npz", **{"params/encoder/x": np.zeros((1024, 1024), np.float32)})
    monkeypatch.setattr(official.os, "sysconf", lambda name: 1024 if name == "SC_PHYS_PAGES" else 1024)  # 1 MiB
    with pytest.raises(CheckpointError, match="big.npz.*take 0.0 GiB.*more than this computer's"):
        official.load_npz(tmp_path / "big.npz")
    monkeypatch.undo()
    assert official.load_npz(tmp_path / "big.npz")["params/encoder/x"].shape == (1024, 1024)


def test_half_precision_checkpoint_loads_as_float32(tiny_model_dir, tmp_path):
    from fourds_ros.model import save_checkpoint

    model = load_checkpoint(tiny_model_dir)
    save_checkpoint(model, tmp_path / "half", dtype=torch.float16)
    stored = load_file(str(tmp_path / "half" / WEIGHTS_FILE))
    assert all(v.dtype == torch.float16 for v in stored.values())
    half = load_checkpoint(tmp_path / "half")
    assert half.encoder.posenc.dtype == torch.float32
    ref = model.encoder.posenc.detach()
    assert torch.allclose(half.encoder.posenc, ref.half().float()) and not torch.equal(half.encoder.posenc, ref)
    assert oct((tmp_path / "half" / WEIGHTS_FILE).stat().st_mode & 0o777) != oct(0o600)


def test_atomic_write_fsyncs_before_the_rename_and_cleans_up_on_failure(tmp_path, monkeypatch):
    """save_checkpoint's writes: the data reach the disk before the rename publishes them (and
    the directory after it); a write that fails leaves the old file and no temporary file."""
    import os

    from fourds_ros.model.checkpoint import atomic_write

    target = tmp_path / "weights.bin"
    atomic_write(target, lambda p: open(p, "wb").write(b"old"))
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", str(b))), real_replace(a, b)))
    atomic_write(target, lambda p: open(p, "wb").write(b"new"))
    assert [c[0] for c in calls] == ["fsync", "replace", "fsync"]
    assert calls[0][1].startswith(str(tmp_path / ".weights.bin.")) and calls[2][1] == str(tmp_path)
    assert target.read_bytes() == b"new"

    def fails(path):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fails)
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_failed_save_checkpoint_leaves_no_temp_file(tiny_model_dir, tmp_path, monkeypatch):
    import fourds_ros.model.checkpoint as checkpoint

    model = load_checkpoint(tiny_model_dir)

    def failing_save_file(state, path, metadata=None):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_checkpoint(model, tmp_path / "m")
    assert list((tmp_path / "m").iterdir()) == []


def test_converting_to_float16_refuses_weights_past_its_range_and_keeps_the_metadata(tiny_model_dir, tmp_path, capsys):
    """convert_checkpoint wrote a weight of 1e5 as inf over its float32 source (exit 0; the model then failed to
    load), and replaced the run's metadata (steps) with the dtype alone. Now it refuses, writing nothing, and a
    conversion keeps the metadata."""
    import shutil

    from fourds_ros.model import save_checkpoint
    from fourds_ros.model.checkpoint import read_metadata
    from training.convert_checkpoint import main as convert

    model = load_checkpoint(tiny_model_dir)
    save_checkpoint(model, tmp_path / "run", metadata={"steps": 10})
    assert convert([str(tmp_path / "run"), "--dtype", "float16"]) == 0
    assert read_metadata(tmp_path / "run") == {"steps": "10", "stored_dtype": "float16"}
    shutil.copytree(tmp_path / "run", tmp_path / "big")
    with torch.no_grad():
        next(p for p in model.parameters() if p.ndim > 1)[0, 0] = 1e5
    save_checkpoint(model, tmp_path / "big", metadata={"steps": 20})
    before = (tmp_path / "big" / WEIGHTS_FILE).read_bytes()
    assert convert([str(tmp_path / "big"), "--dtype", "float16"]) == 2
    assert "past torch.float16's range" in capsys.readouterr().err
    assert (tmp_path / "big" / WEIGHTS_FILE).read_bytes() == before  # the float32 source stays
    load_checkpoint(tmp_path / "big")
    assert convert([str(tmp_path / "missing")]) == 2  # a traceback before
    assert "not converted" in capsys.readouterr().err

