"""tools/gpu_session_weights.py and gpu_session.sh's exports: a GPU call killed at its time limit returns the
best checkpoint it had saved, whole or not at all, and `collect` makes a loadable model dir of it here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fourds_ros.model import load_checkpoint, save_checkpoint
from fourds_ros.model.checkpoint import read_metadata

from .test_gpu_session_data import _session_script
from .tool_module import load_tool

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    return load_tool("gpu_session_weights.py")


def _run_dir(src: Path, dest: Path, steps: int, **extra) -> Path:
    """A copy of model dir `src` as train_readouts saves it (metadata steps, selection_score)."""
    return save_checkpoint(load_checkpoint(src), dest, metadata={"steps": steps, **extra})


def test_export_then_collect_gives_the_float16_model(tool, tiny_model_dir, tmp_path):
    run = _run_dir(tiny_model_dir, tmp_path / "selected", 1500, selection_score=0.97)
    out = tmp_path / "OUT"
    manifest = tool.export(run, out, part_bytes=40_000)
    assert len(manifest["parts"]) > 2 and manifest["step"] == 1500 and not manifest["final"]
    assert sorted(p.name for p in out.iterdir()) == sorted([tool.MANIFEST] + [p["name"] for p in manifest["parts"]])
    assert all(p.stat().st_size <= 40_000 for p in out.iterdir() if p.name != tool.MANIFEST)
    tool.collect(out, tmp_path / "model")
    got, want = load_checkpoint(tmp_path / "model"), load_checkpoint(run)
    for key, value in want.state_dict().items():
        assert torch.equal(got.state_dict()[key], value.half().float() if value.is_floating_point() else value), key
    assert read_metadata(tmp_path / "model")["steps"] == "1500"
    assert "Step 1500 of a GPU call cut short" in (tmp_path / "model" / "README.md").read_text()


def test_collect_refuses_where_the_call_returned_no_checkpoint(tool, tmp_path):
    """A call killed before its first best-scored SAVE_EVERY step: said, with how far it got, and nothing made."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "train.log").write_text("step 0 selection score 1.0000 (...)\nstep 400/5000 loss 6.1 selection score 1.02\n")
    done = subprocess.run([sys.executable, str(REPO / "tools" / "gpu_session_weights.py"), "collect", str(files),
                           str(tmp_path / "model")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "no complete checkpoint" in done.stderr and "step 400/5000" in done.stderr, done.stderr
    assert not (tmp_path / "model").exists()


def test_a_kill_while_exporting_leaves_no_checkpoint_that_looks_whole(tool, tiny_model_dir, tmp_path, monkeypatch):
    """Two float16 models do not fit in the 64 MiB a call returns, so the new one replaces the old in place: its
    manifest goes first, and a kill before the new manifest is written leaves none; a part cut short under a
    manifest (a file not returned whole) is refused by its hash."""
    out = tmp_path / "OUT"
    tool.export(_run_dir(tiny_model_dir, tmp_path / "a", 400), out, part_bytes=40_000)
    real, written = tool.atomic_write, []

    def killed_after_one(path, write):
        if written:
            raise KeyboardInterrupt  # the kill, between two files
        written.append(path)
        return real(path, write)

    monkeypatch.setattr(tool, "atomic_write", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        tool.export(_run_dir(tiny_model_dir, tmp_path / "b", 800), out, part_bytes=40_000)
    with pytest.raises(tool.CollectError, match="no complete checkpoint"):
        tool.collect(out, tmp_path / "model")
    monkeypatch.setattr(tool, "atomic_write", real)
    manifest = tool.export(_run_dir(tiny_model_dir, tmp_path / "c", 1200), out, part_bytes=40_000)
    part = out / manifest["parts"][1]["name"]
    part.write_bytes(part.read_bytes()[:1000])
    with pytest.raises(tool.CollectError, match="not return whole"):
        tool.collect(out, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_collect_writes_over_nothing(tool, tiny_model_dir, tmp_path):
    out = tmp_path / "OUT"
    tool.export(_run_dir(tiny_model_dir, tmp_path / "a", 400), out)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"adopted weights")
    with pytest.raises(tool.CollectError, match="exists"):
        tool.collect(out, tmp_path / "model")
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == b"adopted weights"


def _session(tmp_path: Path, train: str) -> tuple[Path, dict, Path, Path]:
    """gpu_session.sh as _session_script makes it, its python3 running gpu_session_weights.py for real and
    `train` (sh) in place of train_readouts. -> (script, environment, $OUT, the run's model dir)."""
    script, env, out = _session_script(tmp_path, f'case "$*" in *gpu_session_weights.py*) exec {sys.executable} "$@";;\n'
                                                 f'*train_readouts*) {train};;\nesac\nexit 0\n')
    return script, {**env, "EXPORT_POLL_S": "0.2"}, out, tmp_path / "machine" / "gpurun" / "model"


def test_a_call_killed_at_its_limit_returns_its_best_checkpoint(tiny_model_dir, tmp_path):
    """The call's `train` wrote its model to $OUT only after the training: one killed at its 600 s returned
    nothing of its run, and its saved checkpoints stayed on the machine. Here the training saves a best-scored
    checkpoint and runs on until the whole call is killed (SIGKILL to its process group, as at the limit)."""
    run = tmp_path / "machine" / "gpurun" / "model"
    best = _run_dir(tiny_model_dir, tmp_path / "best", 500, selection_score=0.9)
    script, env, out, _ = _session(tmp_path, f"mkdir -p {run} && cp -r {best} {run}/selected && sleep 300")
    call = subprocess.Popen(["bash", str(script), "train"], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (out / "checkpoint.json").exists() and time.monotonic() < deadline and call.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(call.pid, signal.SIGKILL)
        call.wait()
    done = subprocess.run(["bash", "tools/gpu_session.sh", "collect", str(out), str(tmp_path / "model")], cwd=REPO,
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "step 500" in done.stdout and "cut short" in done.stdout
    assert read_metadata(tmp_path / "model")["steps"] == "500"


def test_a_finished_call_returns_its_model_its_card_and_log_in_8_files(tiny_model_dir, tmp_path):
    """The finished run's model replaces the last export; with train.log and scratch's pretrain.log the call
    returns at most 8 files, each under 16 MiB."""
    run = tmp_path / "machine" / "gpurun" / "model"
    best = _run_dir(tiny_model_dir, tmp_path / "best", 500)
    final = _run_dir(tiny_model_dir, tmp_path / "final", 500)
    (final / "README.md").write_text("# the run's card\n")
    (final / "training_log.json").write_text("{}\n")
    script, env, out, _ = _session(tmp_path, f"mkdir -p {run} && cp -r {best} {run}/selected && sleep 5 && "
                                             f"cp {final}/* {run}/")
    (out / "pretrain.log").write_text("")
    done = subprocess.run(["bash", str(script), "train"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((out / "checkpoint.json").read_text())
    assert manifest["final"] and len(list(out.iterdir())) <= 8
    assert all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())
    subprocess.run(["bash", "tools/gpu_session.sh", "collect", str(out), str(tmp_path / "model")], cwd=REPO, check=True,
                   env={**os.environ, "PYTHON": sys.executable}, capture_output=True, timeout=120)
    assert (tmp_path / "model" / "README.md").read_text() == "# the run's card\n"
    assert (tmp_path / "model" / "training_log.json").exists() and load_checkpoint(tmp_path / "model") is not None


def test_a_failed_final_export_fails_the_training_call(tmp_path):
    """The call's status was its last command's: a model that did not reach $OUT must fail the call."""
    run = tmp_path / "machine" / "gpurun" / "model"
    script, env, out, _ = _session(tmp_path, f"mkdir -p {run} && echo x > {run}/model.safetensors")
    done = subprocess.run(["bash", str(script), "train"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "export:" in done.stdout, done.stdout + done.stderr
    assert not (out / "checkpoint.json").exists()
