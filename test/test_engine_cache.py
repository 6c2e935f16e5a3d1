"""Engine cache: keys, atomic writes, missing/unwritable directories, and (issue #20) a private
cache root, SHA-256 sidecars, num_queries validation and no leftovers after a failed export."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

from fourds_ros.engine import EngineSpec, create_engine, engine_cache
from fourds_ros.engine.engine_cache import (
    STALE_TEMP_S,
    CacheDirError,
    atomic_path,
    atomic_write_bytes,
    checkpoint_key,
    ensure_writable_dir,
    secure_cache_dir,
    sidecar_path,
    sidecar_problem,
    sweep_stale_temps,
    tensorrt_engine_key,
    write_sidecar,
)
from fourds_ros.engine.export import cached_onnx, compare_outputs, example_inputs, export_onnx
from fourds_ros.engine.onnxruntime_backend import OnnxRuntimeEngine
from fourds_ros.model import load_checkpoint, save_checkpoint
from fourds_ros.model.checkpoint import load_config


def test_tensorrt_key_changes_with_every_input(tmp_path):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"graph-a")
    base = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": (8, 7), "precision": "fp16"}
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
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
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


# --- Issue #20: a cache others can write is not used; cached bytes are checked against a SHA-256.

Q = 8


def doubled_depth_graph(graph_path: Path, out: Path) -> None:
    """The attack: the real exported graph with a Mul node doubling the published depth."""
    import onnx

    graph = onnx.load(str(graph_path))
    for node in graph.graph.node:
        node.output[:] = ["depth_before_attack" if name == "depth" else name for name in node.output]
    graph.graph.node.append(onnx.helper.make_node("Mul", ["depth_before_attack", "attack_two"], ["depth"]))
    graph.graph.initializer.append(onnx.numpy_helper.from_array(np.array(2.0, np.float32), "attack_two"))
    onnx.save_model(graph, str(out))


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    engine = create_engine(tiny_model_dir, "torch", num_queries=Q)
    inputs = example_inputs(engine.spec, seed=3)
    return inputs, engine(inputs)


def plant(tiny_model_dir, cache_root: Path, private_export: Path, with_sidecar: bool) -> Path:
    """Put the doubled graph where the cache key says our graph lives, inside cache_root."""
    honest = cached_onnx(tiny_model_dir, private_export, "fp32", Q)
    target = cache_root / honest.relative_to(private_export)
    target.parent.mkdir(parents=True, exist_ok=True)
    doubled_depth_graph(honest, target)
    if with_sidecar:
        write_sidecar(target)  # an attacker who can write the graph can write its hash too
    else:
        shutil.copy(sidecar_path(honest), sidecar_path(target))  # the honest graph's hash
    return target


def test_planted_graph_doubles_depth_when_loaded_directly(tiny_model_dir, tmp_path, reference):
    """The reproduction: such a graph, if used, publishes twice the depth with no error."""
    inputs, expected = reference
    planted = plant(tiny_model_dir, tmp_path / "cache", tmp_path / "honest", with_sidecar=True)
    out = OnnxRuntimeEngine(planted, EngineSpec(load_config(tiny_model_dir), Q))(inputs)
    assert np.allclose(out["depth"], 2 * expected["depth"], rtol=1e-4)


def test_world_writable_cache_with_planted_graph_is_not_used(tiny_model_dir, tmp_path, reference, caplog):
    inputs, expected = reference
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # FOURDS_ROS_CACHE_DIR pointing at a world-writable folder
    planted = plant(tiny_model_dir, shared, tmp_path / "honest", with_sidecar=True)
    with caplog.at_level(logging.WARNING):
        engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=shared)
    assert "world-writable" in caplog.text and "not using it" in caplog.text
    assert shared not in engine.onnx_path.parents and engine.onnx_path.parent.stat().st_uid == os.geteuid()
    assert max(compare_outputs(engine(inputs), expected).values()) <= 1e-5  # not doubled
    assert planted.exists()  # we neither use nor touch other people's files


@pytest.mark.parametrize("unsafe", ["world_writable_subfolder", "symlinked_entry"])
def test_a_private_cache_with_an_unsafe_entry_under_it_is_not_used(tiny_model_dir, tmp_path, reference, caplog,
                                                                    unsafe):
    """Only the cache's root was checked: under a private root, an onnx/ that others can write (what an export
    under umask 0 left) let anyone put a graph and its sidecar where the node reads, and it ran without a
    warning; a symbolic link in the cache (which the cache never writes) pointed the check past its target.
    Now every folder and file under the root is checked, and such a cache is refused for a private one."""
    inputs, expected = reference
    cache = tmp_path / "cache"
    planted = plant(tiny_model_dir, cache, tmp_path / "honest", with_sidecar=True)
    cache.chmod(0o700)
    for folder in planted.relative_to(cache).parents:
        (cache / folder).chmod(0o700)
    if unsafe == "world_writable_subfolder":
        (cache / "onnx").chmod(0o777)
    else:
        elsewhere = tmp_path / "elsewhere"
        shutil.move(planted.parent, elsewhere)
        planted.parent.symlink_to(elsewhere)
    with caplog.at_level(logging.WARNING):
        engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=cache)
    assert "not using it" in caplog.text
    assert ("world-writable" if unsafe == "world_writable_subfolder" else "symbolic link") in caplog.text
    assert cache not in engine.onnx_path.parents
    assert max(compare_outputs(engine(inputs), expected).values()) <= 1e-5  # not doubled


def test_cache_folders_are_created_private_under_umask_0(tmp_path):
    """Path.mkdir(parents=True) made the cache's parent folders 0777 & ~umask: under umask 0 (some containers,
    systemd UMask=0000) onnx/ came out world-writable. Every folder the cache creates is 0700."""
    old = os.umask(0)
    try:
        root = secure_cache_dir(tmp_path / "a" / "c")
        entry = engine_cache.writable_entry_dir(root / "onnx" / "key", root)
    finally:
        os.umask(old)
    for folder in (tmp_path / "a", root, root / "onnx", entry):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


@pytest.mark.parametrize("umask", [0o002, 0o000])
def test_the_cache_takes_its_own_export_again_under_any_umask(tiny_model_dir, tmp_path, caplog, umask):
    """onnx.save_model made the graph 0666 & ~umask: under a login shell's umask 002 (Ubuntu's, Jetson's) it was
    group-writable, and the cache, which refuses any file others can write, refused its own export at every start
    after the first (a WARNING, an export into a temporary folder each time; TensorRT: a build each time). Every
    file the cache writes is 0600."""
    old = os.umask(umask)
    try:
        create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=tmp_path / "c")
        with caplog.at_level(logging.WARNING):
            engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=tmp_path / "c")
    finally:
        os.umask(old)
    assert "unsafe" not in caplog.text and engine_cache._refusal(tmp_path / "c") is None
    assert (tmp_path / "c") in engine.onnx_path.parents
    for path in (tmp_path / "c").rglob("*"):  # nothing another user could write
        assert not stat.S_IMODE(path.lstat().st_mode) & 0o022, (path, oct(path.lstat().st_mode))


def test_graph_not_matching_its_sha256_is_exported_again(tiny_model_dir, tmp_path, reference, caplog):
    inputs, expected = reference
    cache = tmp_path / "cache"
    planted = plant(tiny_model_dir, cache, tmp_path / "honest", with_sidecar=False)
    with caplog.at_level(logging.WARNING):
        engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=cache)
    assert "does not match the SHA-256" in caplog.text and "exporting it again" in caplog.text
    # the fused graph is made again from the re-exported graph, not reused from the planted one
    assert engine.onnx_path == planted.with_name("model.fused.onnx") and sidecar_problem(planted) is None
    assert engine.onnx_path.stat().st_mtime_ns >= planted.stat().st_mtime_ns
    assert max(compare_outputs(engine(inputs), expected).values()) <= 1e-5
    sidecar_path(planted).unlink()  # a graph without its sidecar is not trusted either
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=cache)
    assert "has no SHA-256 sidecar" in caplog.text and sidecar_path(planted).exists()


def test_sidecar_is_sha256sum_format_and_covers_external_data(tmp_path):
    graph = tmp_path / "model.onnx"
    graph.write_bytes(b"graph")
    (tmp_path / "model.onnx.data").write_bytes(b"weights")
    lines = write_sidecar(graph).read_text().splitlines()
    assert lines == [f"{hashlib.sha256(b'graph').hexdigest()}  model.onnx",
                     f"{hashlib.sha256(b'weights').hexdigest()}  model.onnx.data"]
    assert sidecar_problem(graph) is None
    (tmp_path / "model.onnx.data").write_bytes(b"weightz")
    assert "does not match" in sidecar_problem(graph)
    (tmp_path / "model.onnx.data").unlink()
    assert "does not match" in sidecar_problem(graph)


def test_cache_dir_is_created_private(tmp_path):
    root = secure_cache_dir(tmp_path / "new" / "engines")
    assert root == tmp_path / "new" / "engines" and stat.S_IMODE(root.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_group_or_world_writable_cache_falls_back_to_a_private_temp_dir(tmp_path, mode, caplog):
    shared = tmp_path / f"shared{mode:o}"
    shared.mkdir()
    shared.chmod(mode)
    with caplog.at_level(logging.WARNING):
        root = secure_cache_dir(shared)
    assert root != shared and stat.S_IMODE(root.stat().st_mode) == 0o700 and "writable" in caplog.text
    assert secure_cache_dir(shared) == root  # one fallback per process, reused


def test_cache_owned_by_another_user_is_refused(tmp_path, caplog):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)  # nobody
    with caplog.at_level(logging.WARNING):
        root = secure_cache_dir(foreign)
    assert root != foreign and "owned by uid 65534" in caplog.text



@pytest.fixture
def runtime_user(monkeypatch):
    """This process as an image's unprivileged runtime user (uid 1000) reading what root wrote at build
    time. Only the uid is pretended: the files are really root's, so the test needs root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to own the cache as root")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


@pytest.mark.parametrize("owner, mode, refusal", [(0, 0o755, None), (0, 0o775, "group- or world-writable"),
                                                  (65534, 0o755, "owned by uid 65534")])
def test_root_owned_cache_is_used_unless_writable_by_others(tmp_path, runtime_user, caplog, owner, mode, refusal):
    """Root already owns the interpreter and the package: its cache is no new exposure. Another user's
    still is, and a group-writable one of root's too."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=mode)
    cache.chmod(mode)
    os.chown(cache, owner, owner)
    with caplog.at_level(logging.WARNING):
        root = secure_cache_dir(cache)
    if refusal is None:
        assert root == cache and caplog.text == ""
    else:
        assert root != cache and refusal in caplog.text


RUNTIME_UID = 65534  # nobody: a Docker image's unprivileged runtime user (its USER line)
GPU = ("Fake Orin", (8, 7))


def as_runtime_user(work) -> dict:
    """work() (returning JSON data) run by a forked child that really is uid and gid RUNTIME_UID, with the
    WARNINGs it logged: {"result": ..., "warnings": [...]}. Forked, not started: here the interpreter and
    its standard library are under root's 0700 home, but the child has every module the test (as root)
    imported before, and a real uid makes the kernel refuse what it cannot read."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: it never returns into pytest
        parents = set(engine_cache._FALLBACK_DIRS.values())
        try:
            os.close(read_end)
            with open(write_end, "w") as out:
                json.dump(_outcome(work), out, default=str)
        finally:
            for folder in set(engine_cache._FALLBACK_DIRS.values()) - parents:  # os._exit runs no atexit removal
                shutil.rmtree(folder, ignore_errors=True)
            os._exit(0)
    os.close(write_end)
    with open(read_end) as child_output:
        data = child_output.read()
    os.waitpid(pid, 0)
    outcome = json.loads(data or '{"error": "the child died without a word"}')
    assert "error" not in outcome, outcome["error"]
    return outcome


def _outcome(work) -> dict:
    import torch

    try:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(120)  # a child that hangs dies, and the parent reads an empty pipe
        torch.set_num_threads(1)  # the parent's OpenMP thread pool does not survive fork: its first op hung
        os.setgroups([])
        os.setgid(RUNTIME_UID)
        os.setuid(RUNTIME_UID)
        warnings = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: warnings.append(record.getMessage())
        logging.getLogger().addHandler(handler)
        return {"result": work(), "warnings": warnings}
    except BaseException:
        return {"error": traceback.format_exc()}


@pytest.fixture
def image(tiny_model_dir, monkeypatch):
    """A folder like a Docker image's: the checkpoint, and an engine cache that its root build step filled
    with `fourds-ros build-engine` (TensorRT: the test double) and an ONNX Runtime start. The modes the cache
    gives (folders 0700, most files 0600) under a 0755 root (the Dockerfile's mkdir). Not in tmp_path: pytest
    keeps that under a 0700 folder of root's."""
    from fourds_ros.engine import tensorrt_backend

    from .fake_tensorrt import FakeTensorRT

    if os.geteuid() != 0:
        pytest.skip("needs root to build the cache as root and to become the runtime user")
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT())
    monkeypatch.setattr(tensorrt_backend, "cuda_gpu", lambda device: GPU)
    base = Path(tempfile.mkdtemp(prefix="fourds_ros-image-"))
    try:
        shutil.copytree(tiny_model_dir, base / "model")
        for folder in (base, base / "cache", base / "tmp"):
            folder.mkdir(exist_ok=True)
            folder.chmod(0o1777 if folder.name == "tmp" else 0o755)
        subprocess.run(["chmod", "-R", "a+rX", base / "model"], check=True)
        for backend in ("tensorrt", "onnxruntime"):
            create_engine(base / "model", backend, device="cpu", num_queries=Q, cache_dir=base / "cache")
        monkeypatch.setattr(tempfile, "tempdir", str(base / "tmp"))  # the child's private fallback, removed below
        yield base
    finally:
        shutil.rmtree(base)


def engines_of_every_backend(image: Path, reference) -> dict[str, tuple[str, str, float]]:
    """backend asked for -> (backend made, its engine or graph file, largest relative L2 error vs torch)."""
    inputs, expected = reference
    made = {}
    for backend in ("tensorrt", "onnxruntime", "auto"):
        engine = create_engine(image / "model", backend, device="cpu", num_queries=Q, cache_dir=image / "cache")
        path = engine.engine_path if engine.backend == "tensorrt" else engine.onnx_path
        made[backend] = (engine.backend, str(path), max(compare_outputs(engine(inputs), expected).values()))
    return made


@pytest.mark.parametrize("readable", ["nothing", "the ONNX graphs"])
def test_a_root_cache_the_runtime_user_cannot_read_is_replaced_by_a_private_one(image, reference, readable):
    """The cache as the package leaves it, or with only its graphs made readable: the read of a graph or of
    the TensorRT engine raised PermissionError, which failed configure with every backend (`auto` did not
    pass it over). It is refused like a cache others can write: a WARNING saying what to do, and the
    engine exported and built in a private temporary directory."""
    cache = image / "cache"
    if readable == "the ONNX graphs":
        subprocess.run(["chmod", "-R", "a+rX", cache / "onnx"], check=True)
    outcome = as_runtime_user(lambda: engines_of_every_backend(image, reference))
    for backend, (made, path, error) in outcome["result"].items():
        assert made == backend.replace("auto", "tensorrt") and error < 1e-2, (backend, made, error)
        assert cache not in Path(path).parents and (image / "tmp") in Path(path).parents, (backend, path)
    refusals = [w for w in outcome["warnings"] if w.startswith(f"engine cache directory {cache} is root's")]
    assert refusals and all(f"cannot be read by this process (uid {RUNTIME_UID})" in w for w in refusals)
    assert f"build the cache as the runtime user, or make it readable with `chmod -R a+rX {cache}`" in refusals[0]


def test_an_empty_root_cache_the_runtime_user_cannot_write_is_replaced_by_a_private_one(tmp_path):
    """A Dockerfile's bare `mkdir /cache` (root's, 0755): nothing in it to read, and the runtime user cannot
    write the export there; refused as before root's caches were read, not a failed configure."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become the runtime user")
    base = Path(tempfile.mkdtemp(prefix="fourds_empty_cache_", dir="/tmp"))
    try:
        base.chmod(0o755)
        (base / "cache").mkdir(mode=0o755)
        outcome = as_runtime_user(lambda: str(secure_cache_dir(base / "cache")))
        assert outcome["result"] != str(base / "cache")
        assert any("empty and not writable" in w for w in outcome["warnings"]), outcome
    finally:
        shutil.rmtree(base)


def test_a_root_cache_made_readable_is_used_by_the_runtime_user(image, reference, monkeypatch):
    """The image's build step ran `chmod -R a+rX` on the cache: every backend reads it as it is, with
    nothing exported or built again and no WARNING. An entry it lacks (another num_queries) cannot be
    written there by that user: it is exported and built into a private temporary directory, with a WARNING
    naming the cache (this failed configure with an explicit backend, and auto fell back to torch)."""
    from fourds_ros.engine import export, tensorrt_backend

    cache = image / "cache"
    subprocess.run(["chmod", "-R", "a+rX", cache], check=True)
    real_export, real_build = export.export_onnx, tensorrt_backend.build_serialized_engine
    monkeypatch.setattr(export, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    monkeypatch.setattr(tensorrt_backend, "build_serialized_engine", lambda *a, **k: pytest.fail("built again"))
    outcome = as_runtime_user(lambda: engines_of_every_backend(image, reference))
    for backend, (made, path, error) in outcome["result"].items():
        assert made == backend.replace("auto", "tensorrt") and error < 1e-2, (backend, made, error)
        assert cache in Path(path).parents, (backend, path)
    assert outcome["warnings"] == []

    def another_num_queries():
        with monkeypatch.context() as undo:  # this entry is new: exported and built for real
            undo.setattr(export, "export_onnx", real_export)
            undo.setattr(tensorrt_backend, "build_serialized_engine", real_build)
            made = {backend: str(engine.engine_path if engine.backend == "tensorrt" else engine.onnx_path)
                    for backend, engine in ((b, create_engine(image / "model", b, device="cpu", num_queries=Q + 1,
                                                              cache_dir=cache)) for b in ("onnxruntime", "auto"))}
            undo.setattr(tensorrt_backend, "build_serialized_engine", lambda *a, **k: pytest.fail("built again"))
            again = create_engine(image / "model", "auto", device="cpu", num_queries=Q + 1, cache_dir=cache)
            return {**made, "again": str(again.engine_path), "again_rebuilt": again.rebuilt}

    outcome = as_runtime_user(another_num_queries)
    again, rebuilt = outcome["result"].pop("again"), outcome["result"].pop("again_rebuilt")
    assert again == outcome["result"]["auto"] and rebuilt is False  # the private directory's engine, read again
    for backend, path in outcome["result"].items():
        assert cache not in Path(path).parents and (image / "tmp") in Path(path).parents, (backend, path)
        assert Path(path).name.endswith(".engine" if backend == "auto" else ".onnx"), (backend, path)
    lacking = [w for w in outcome["warnings"] if "the cache lacks this entry" in w]
    assert all(str(cache) in w and "Permission denied" in w for w in lacking), lacking
    assert {folder for w in lacking for folder in ("onnx", "tensorrt") if f"{cache}/{folder}" in w} == {"onnx", "tensorrt"}


@pytest.mark.parametrize("num_queries", [0, -1, True, 2.5])
def test_num_queries_below_one_is_a_clear_error_before_export(tiny_model_dir, tmp_path, num_queries):
    """num_queries 0 crashed the ONNX export with SIGFPE and left a temp folder in the cache."""
    with pytest.raises(ValueError, match="num_queries must be an integer >= 1"):
        create_engine(tiny_model_dir, "onnxruntime", num_queries=num_queries, cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="num_queries"):
        cached_onnx(tiny_model_dir, tmp_path / "c", "fp32", num_queries)
    with pytest.raises(ValueError, match="num_queries"):
        export_onnx(load_checkpoint(tiny_model_dir), tmp_path / "c" / "x.onnx", num_queries=num_queries)
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*"))


def test_failed_export_leaves_no_folder_in_the_cache(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    def crash(*_args, **_kwargs):
        raise RuntimeError("exporter crashed")
    monkeypatch.setattr(torch.onnx, "export", crash)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        cached_onnx(tiny_model_dir, tmp_path / "cache", "fp32", Q)
    assert list((tmp_path / "cache" / "onnx").iterdir()) == []


def test_temp_folders_left_by_a_killed_export_are_swept(tmp_path):
    """A process killed mid-export (SIGKILL, SIGFPE) cannot clean up; the next one does, once the
    leftovers are older than STALE_TEMP_S (younger ones may belong to a running export)."""
    old_dir, old_file, fresh = tmp_path / ".model.onnx.abc", tmp_path / ".x.engine.1.tmp", tmp_path / ".model.onnx.new"
    old_dir.mkdir()
    (old_dir / "traced.onnx").write_bytes(b"half")
    old_file.write_bytes(b"half")
    fresh.mkdir()
    past = time.time() - STALE_TEMP_S - 60
    for path in (old_dir, old_file):
        os.utime(path, (past, past))
    assert set(sweep_stale_temps(tmp_path)) == {old_dir, old_file}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.onnx.new"]


def test_a_prebuilt_cache_on_a_read_only_filesystem_is_used(tiny_model_dir, tmp_path, monkeypatch, caplog):
    """Engines built ahead (`fourds-ros build-engine`) into an image run read-only (docker
    --read-only, systemd ProtectSystem): reading the cache needs no write. Only an export does, and
    an entry the cache lacks (another num_queries) is exported into a private temporary directory with
    a WARNING; until session 59 that failed configure with an explicit backend. (Root ignores file modes,
    so the read-only filesystem is stood in for by its error where the cache would write.)"""
    from fourds_ros.engine import create_engine, engine_cache, export

    cache = tmp_path / "cache"
    create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=cache)  # prebuilt
    writable = engine_cache.ensure_writable_dir

    def read_only(path):
        if cache == Path(path) or cache in Path(path).parents:
            raise CacheDirError(f"engine cache directory {path} is not writable: Read-only file system")
        return writable(path)

    monkeypatch.setattr(engine_cache, "ensure_writable_dir", read_only)
    real_export = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    with caplog.at_level(logging.WARNING):
        engine = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=cache)
    assert engine.backend == "onnxruntime" and cache in engine.onnx_path.parents and caplog.text == ""
    monkeypatch.setattr(export, "export_onnx", real_export)
    with caplog.at_level(logging.WARNING):
        other = create_engine(tiny_model_dir, "onnxruntime", num_queries=Q + 1, cache_dir=cache)
    assert other.spec.num_queries == Q + 1 and cache not in other.onnx_path.parents
    assert "Read-only file system: the cache lacks this entry" in caplog.text
    inputs = example_inputs(other.spec)
    assert other(inputs)["track_xy"].shape[1] == Q + 1
    # a derived graph the cache lacks (int8, made from its model.onnx) is made in the private directory too
    int8 = create_engine(tiny_model_dir, "onnxruntime", precision="int8", num_queries=Q, cache_dir=cache)
    assert int8.onnx_path.name == "model.int8.onnx" and cache not in int8.onnx_path.parents
    assert int8(example_inputs(int8.spec))["track_xy"].shape[1] == Q


EXPORT_FAILURES = {
    # The write fails for want of space (the first start after an update, rosbags filling the disk).
    "full_disk": (OSError(28, "No space left on device"),
                  "cannot write the exported ONNX graph .*No space left on device"),
    # A head with an operator ONNX has no form for (torch.fft.rfft: torch.onnx raises
    # UnsupportedOperatorError, a RuntimeError), which escaped `auto`: it never reached torch.
    "unsupported_operator": (RuntimeError("Exporting the operator 'aten::fft_rfft' to ONNX opset version 18 is "
                                          "not supported"), "cannot export .* to ONNX: RuntimeError: .*fft_rfft"),
}


@pytest.mark.parametrize("failure", sorted(EXPORT_FAILURES))
def test_a_graph_that_cannot_be_made_makes_auto_go_on_to_torch(tiny_model_dir, tmp_path, monkeypatch, caplog,
                                                                failure):
    """The export fails: an EngineError naming the graph and the cause, so auto runs torch, which
    needs neither the disk nor the exporter."""
    from fourds_ros.engine import EngineError, create_engine, export

    error, message = EXPORT_FAILURES[failure]

    def failing_export(*args, **kwargs):
        raise error

    monkeypatch.setattr(export, "export_onnx", failing_export)
    with pytest.raises(EngineError, match=message):
        create_engine(tiny_model_dir, "onnxruntime", num_queries=Q, cache_dir=tmp_path / "cache")
    caplog.set_level(logging.WARNING)
    assert create_engine(tiny_model_dir, "auto", num_queries=Q, cache_dir=tmp_path / "cache").backend == "torch"
    assert str(error.args[-1]) in caplog.text


def test_a_missing_module_makes_auto_go_on_to_torch(tiny_model_dir, tmp_path, monkeypatch):
    """A ROS install without onnx (it was missing from requirements-ros-system.txt): the export's
    import failed with ModuleNotFoundError, which auto did not catch, and configure failed."""
    import sys

    from fourds_ros.engine import create_engine

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    assert create_engine(tiny_model_dir, "auto", num_queries=Q, cache_dir=tmp_path / "cache").backend == "torch"


def test_checkpoint_key_follows_the_code_that_defines_the_graph(tiny_model_dir, monkeypatch):
    """A package upgrade that changes the model's forward pass leaves the checkpoint's bytes as they
    were: the key must change with the code, or both graph backends serve the old graph."""
    from fourds_ros.engine import engine_cache

    sources = engine_cache.graph_sources()
    assert "engine/export.py" in sources and "model/fourds.py" in sources and "model/heads.py" in sources
    key = checkpoint_key(tiny_model_dir, "fp32", 8)
    monkeypatch.setattr(engine_cache, "graph_sources", lambda: dict(sources))
    assert checkpoint_key(tiny_model_dir, "fp32", 8) == key  # the bytes make the key, not the call
    for name in ("model/fourds.py", "engine/export.py"):
        changed = {**sources, name: sources[name].replace(b"return", b"return  ", 1)}
        monkeypatch.setattr(engine_cache, "graph_sources", lambda changed=changed: changed)
        assert checkpoint_key(tiny_model_dir, "fp32", 8) != key, name


# A process that takes a private fallback folder (its cache directory refused) and then dies without its atexit
# removal (SIGKILL, an unhandled SIGTERM, os._exit); argv: the refused folder, "exit" or "live".
TAKES_A_FALLBACK = """\
import os, sys, time
from fourds_ros.engine.engine_cache import secure_cache_dir
print(secure_cache_dir(sys.argv[1]), flush=True)
if sys.argv[2] == "exit":
    os._exit(0)
time.sleep(60)
"""


def test_a_fallback_folder_left_by_a_dead_process_is_removed_by_the_next_one_and_a_live_ones_is_kept(
        tmp_path, monkeypatch):
    """Every process whose cache was refused and that ended without atexit left its folder in /tmp (25 of them
    on the machine this was found on, an exported graph each where the engine was built)."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    refused = tmp_path / "shared_cache"
    refused.mkdir()
    refused.chmod(0o777)  # world-writable: refused
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    env = {**os.environ, "TMPDIR": str(temporary)}
    dead = subprocess.run([sys.executable, "-c", TAKES_A_FALLBACK, str(refused), "exit"], env=env,
                          capture_output=True, text=True, timeout=60)
    dead_folder = Path(dead.stdout.split()[0])
    assert dead_folder.is_dir()
    live = subprocess.Popen([sys.executable, "-c", TAKES_A_FALLBACK, str(refused), "live"], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        live_folder = Path(live.stdout.readline().strip())
        assert live_folder.is_dir() and not dead_folder.exists()  # the next process removed it
        monkeypatch.setattr(engine_cache, "_FALLBACK_DIRS", {})
        ours = engine_cache.secure_cache_dir(refused)
        assert live_folder.is_dir() and ours.is_dir() and ours != live_folder  # a living process's is kept
    finally:
        live.terminate()
        live.wait(timeout=30)


def test_an_export_in_progress_or_killed_under_umask_002_does_not_make_the_cache_refuse_itself(tmp_path):
    """Two nodes starting on a cold cache, or a node stopped by SIGTERM during its first export, under a login
    shell's umask 002: export_onnx's staging folder (dot-named, never read) held a group-writable `traced/`, the
    cache walked into it and refused itself as unsafe at every later start (TensorRT rebuilt its engine each boot).
    A writer's dot-named temporaries are not checked; the staging folder is made private anyway."""
    from fourds_ros.engine.engine_cache import secure_cache_dir

    root = tmp_path / "cache"
    key_dir = root / "onnx" / "k"
    key_dir.mkdir(parents=True)
    for folder in (root, root / "onnx", key_dir):
        folder.chmod(0o700)
    staging = key_dir / ".model.onnx.abcd1234"  # export_onnx's TemporaryDirectory (0700)
    staging.mkdir(mode=0o700)
    (staging / "traced").mkdir()
    (staging / "traced").chmod(0o775)  # traced.parent.mkdir() under umask 002
    (staging / "traced" / "model.onnx").write_bytes(b"x")
    (staging / "traced" / "model.onnx").chmod(0o664)
    assert secure_cache_dir(root) == root
    (key_dir / "model.onnx").write_bytes(b"x")
    (key_dir / "model.onnx").chmod(0o664)  # what the cache reads is still checked
    assert secure_cache_dir(root) != root


# One process of test_two_processes_starting_at_once_build_once: the node's entry point (create_engine) on a
# shared cache once both are ready; the export and the TensorRT build (test double) take 2 s longer, as a real
# model's do, so that the other process looks into the cache while this one builds.
BUILD_RACE_CHILD = r"""
import logging, sys, time
from pathlib import Path

tag, model, cache, sync, backend = sys.argv[1:]
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
from fourds_ros.engine import create_engine, export, tensorrt_backend
from test.fake_tensorrt import FakeTensorRT


def slow(build):
    def slowly(*args, **kwargs):
        time.sleep(2.0)
        return build(*args, **kwargs)
    return slowly


export.export_onnx = slow(export.export_onnx)
tensorrt_backend.build_serialized_engine = slow(tensorrt_backend.build_serialized_engine)
sys.modules["tensorrt"] = FakeTensorRT()
tensorrt_backend.cuda_gpu = lambda device: ("Fake Orin", (8, 7))
Path(sync, tag).touch()
while not Path(sync, "go").exists():
    time.sleep(0.005)
engine = create_engine(model, backend, device="cpu", precision="fp32", num_queries=8, cache_dir=cache)
print("opened", engine.describe(), "rebuilt" if getattr(engine, "rebuilt", False) else "")
"""


@pytest.mark.parametrize("backend, builds", [
    ("onnxruntime", ("exporting ", "making the fused graph")),
    ("tensorrt", ("exporting ", "building TensorRT engine")),
])
def test_two_processes_starting_at_once_build_once(tiny_model_dir, tmp_path, backend, builds):
    """Two nodes on one robot started together on an empty cache: both found it empty, and both exported and fused
    the graph (16-20 s each on 2 cores against 3-4 s alone) and, with TensorRT, both built the engine on one GPU
    (minutes and GBs on a Jetson). Now the first builds and the second waits for it, then takes what it made."""
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    sync = tmp_path / "sync"
    sync.mkdir()
    children = [subprocess.Popen([sys.executable, "-c", BUILD_RACE_CHILD, tag, str(tiny_model_dir),
                                  str(tmp_path / "cache"), str(sync), backend], cwd=repo, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for tag in "AB"]
    try:
        deadline = time.monotonic() + 120
        while not all((sync / tag).exists() for tag in "AB") and time.monotonic() < deadline:
            assert all(child.poll() is None for child in children), [child.communicate() for child in children]
            time.sleep(0.01)
        (sync / "go").touch()
        outs = [child.communicate(timeout=120)[0] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=30)
    assert [child.returncode for child in children] == [0, 0], outs
    for step in builds:
        assert sum(out.count(step) for out in outs) == 1, (step, outs)
    if backend == "tensorrt":
        assert sorted(out.count(" rebuilt") for out in outs) == [0, 1], outs  # the other found it cached
    assert all(out.count("waiting for another process's build of the ONNX graph") <= 1 for out in outs), outs
    assert not list((tmp_path / "cache").rglob("*.lock")), "a lock file was left in the cache"


def test_a_build_lock_is_waited_for_with_one_message_and_leaves_nothing(tmp_path, caplog):
    """build_lock: an exclusive flock on a 0600 file, waited for (logged once) while another holder has it, and
    removed when released (the cache's folders hold only what they held before)."""
    import threading

    from fourds_ros.engine.engine_cache import build_lock

    from .conftest import wait_for

    path = tmp_path / "onnx" / "key" / ".build.lock"
    order = []

    def second():
        with build_lock(path, "the ONNX graph of key"):
            order.append("second")

    with caplog.at_level(logging.INFO, logger="fourds_ros.engine.engine_cache"):
        with build_lock(path, "the ONNX graph of key"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b""
            waiter = threading.Thread(target=second)
            waiter.start()
            assert wait_for(lambda: caplog.records, 10.0)  # the second holder waits, and says so
            time.sleep(0.2)
            order.append("first")
        waiter.join(timeout=10)
    assert order == ["first", "second"]
    assert [r.getMessage() for r in caplog.records] == ["waiting for another process's build of the ONNX graph of key"]
    assert list(path.parent.iterdir()) == []


def test_a_wait_for_another_process_build_ends_when_keep_waiting_says_so(tmp_path, monkeypatch):
    """A SIGTERM (docker stop, systemd) shuts ROS down while the node waits on another process's build lock: the
    blocking flock waited for that build to end (minutes for TensorRT on a Jetson), until SIGKILL. The wait now
    polls keep_waiting (the node sets rclpy.ok) and ends with an EngineError naming what it waited for."""
    import fcntl
    import threading

    from fourds_ros.engine import engine_cache
    from fourds_ros.engine.base import EngineError
    from fourds_ros.engine.engine_cache import build_lock

    lock = tmp_path / "cache" / ".build.lock"
    lock.parent.mkdir(mode=0o700)
    holder = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)  # another process's build: its own open file
    fcntl.flock(holder, fcntl.LOCK_EX)
    stop = threading.Event()
    monkeypatch.setattr(engine_cache, "keep_waiting", lambda: not stop.is_set())
    threading.Timer(0.3, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(EngineError, match="stopped while waiting for another process's build of the graph"), \
            build_lock(lock, "the graph"):
        pass
    assert time.monotonic() - t0 < 2.0
    os.close(holder)


def test_a_lock_waited_for_is_the_paths_own_so_a_third_waits_too(tmp_path):
    """build_lock: the waiter that got the lock after its holder removed the file holds the path's new file, so a
    third process arriving then waits rather than building at once beside it."""
    from fourds_ros.engine import engine_cache

    path = tmp_path / "onnx" / "key" / ".build.lock"
    got, release = threading.Event(), threading.Event()

    def second():
        with engine_cache.build_lock(path, "x"):
            got.set()
            release.wait(10)

    with engine_cache.build_lock(path, "x"):
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.3)  # the second is blocked in flock on the first's file
    assert got.wait(10)
    third = []
    t3 = threading.Thread(target=lambda: third.append(engine_cache._locked(path, "x", engine_cache.log)))
    t3.start()
    t3.join(0.5)
    alive = t3.is_alive()
    release.set()
    waiter.join(10)
    t3.join(10)
    for fd in third:
        os.close(fd)
    assert alive, "a third holder got the lock while the second held it"
