"""A GPU session's weights, out of the device call and into a model dir here (tools/gpu_session.sh).

A `run` call returns what its command left under $OUT, also when it is killed at its time limit (rc
124/137), at most 8 files of 16 MiB each, 64 MiB together: one float16 model (47 MB) in 16 MB parts.
`export` (on the device) puts a model dir there as float16 parts and a manifest, `checkpoint.json`
(the config, the step, every part's size and sha256), written last and removed first: a call killed
while a checkpoint was being written leaves no manifest, or parts its hashes refuse, never a model
that looks whole. `gpu_session.sh train|scratch` exports each new best-scored checkpoint (OUT/selected,
at a SAVE_EVERY step) as it is saved, and the finished run's model over it at the end.
`collect` (here) checks the parts against the manifest, joins them and installs a model dir that
`fourds-ros eval --model` loads; it refuses, saying why, where the call returned none.

    python tools/gpu_session_weights.py export RUN/model/selected $OUT            (device)
    python tools/gpu_session_weights.py collect FILES_AT runs/gpu_step1500        (here)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from fourds_ros.model import load_checkpoint, save_checkpoint
from fourds_ros.model.checkpoint import CONFIG_FILE, WEIGHTS_FILE, atomic_write, read_metadata

MANIFEST = "checkpoint.json"
PART_PREFIX = f"{WEIGHTS_FILE}.part-"
PART_BYTES = 16_000_000  # under the 16 MiB a returned file may hold


class CollectError(ValueError):
    """No complete checkpoint to install; the message says why."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _part_name(i: int) -> str:
    """split's names: aa, ab, ... (the parts' names since session 41)."""
    return PART_PREFIX + "abcdefghijklmnopqrstuvwxyz"[i // 26] + "abcdefghijklmnopqrstuvwxyz"[i % 26]


def export(model_dir: Path, out: Path, extras: tuple[str, ...] = (), final: bool = False,
           part_bytes: int = PART_BYTES) -> dict:
    """model_dir's model as float16 parts + MANIFEST in `out` (the call's $OUT), in place of the checkpoint
    there. The old manifest goes first and the new one last, each file by rename: two models do not fit in
    64 MiB, so a kill in between leaves no checkpoint rather than a half one. extras: files of model_dir
    (the finished run's README.md, training_log.json) returned beside it. -> the manifest."""
    model_dir, out = Path(model_dir), Path(out)
    metadata = {**read_metadata(model_dir), "stored_dtype": "float16"}
    with tempfile.TemporaryDirectory() as staging:  # the conversion, before anything in `out` is touched
        model = load_checkpoint(model_dir)
        weights = (save_checkpoint(model, staging, metadata=metadata, dtype=torch.float16)
                   / WEIGHTS_FILE).read_bytes()
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    chunks = [weights[i:i + part_bytes] for i in range(0, len(weights), part_bytes)]
    manifest = {"step": int(metadata.get("steps", -1)), "final": final,
                "selection_score": float(metadata["selection_score"]) if "selection_score" in metadata else None,
                "bytes": len(weights), "sha256": _sha256(weights), "config": config,
                "parts": [{"name": _part_name(i), "bytes": len(c), "sha256": _sha256(c)} for i, c in enumerate(chunks)],
                "extras": {name: _sha256((model_dir / name).read_bytes()) for name in extras}}
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    for stale in out.glob(PART_PREFIX + "*"):
        stale.unlink()
    for part, chunk in zip(manifest["parts"], chunks):
        atomic_write(out / part["name"], lambda p, c=chunk: Path(p).write_bytes(c))
    for name in extras:
        atomic_write(out / name, lambda p, n=name: shutil.copyfile(model_dir / n, p))
    atomic_write(out / MANIFEST, lambda p: Path(p).write_text(json.dumps(manifest, indent=1) + "\n"))
    return manifest


def _last_progress(files: Path) -> str:
    """The call's last progress line (train.log), to say how far it got."""
    log = files / "train.log"
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if re.match(r"step \d+", ln)] if log.is_file() else []
    return f"; its last progress line: {lines[-1]!r}" if lines else "; train.log holds no progress line"


def check(files: Path) -> tuple[dict, bytes]:
    """(the manifest, the joined weights) of the checkpoint in `files`, every hash checked; CollectError if none."""
    files = Path(files)
    path = files / MANIFEST
    if not path.is_file():
        raise CollectError(
            f"{files}: no complete checkpoint ({MANIFEST} absent): the call saved none before it ended (the first "
            "is written at the first SAVE_EVERY step that scores best; from a trained start, only a step better than "
            f"the start's), or it was killed while writing one{_last_progress(files)}")
    try:
        manifest = json.loads(path.read_text())
        parts = manifest["parts"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CollectError(f"{path}: not a checkpoint manifest ({type(e).__name__}: {e})") from None
    chunks = []
    for part in parts:
        p = files / part["name"]
        data = p.read_bytes() if p.is_file() else None
        if data is None or len(data) != part["bytes"] or _sha256(data) != part["sha256"]:
            found = "missing" if data is None else f"{len(data)} bytes, sha256 {_sha256(data)[:12]}"
            raise CollectError(f"{p}: step {manifest.get('step')}'s part is {found}, its manifest says {part['bytes']} "
                               f"bytes, sha256 {part['sha256'][:12]} (a file the call did not return whole)")
        chunks.append(data)
    weights = b"".join(chunks)
    if _sha256(weights) != manifest["sha256"]:
        raise CollectError(f"{files}: the joined parts' sha256 is not the manifest's")
    for name, digest in manifest.get("extras", {}).items():
        if not (files / name).is_file() or _sha256((files / name).read_bytes()) != digest:
            raise CollectError(f"{files / name}: missing or not the file its manifest names")
    return manifest, weights


def collect(files: Path, dest: Path) -> dict:
    """The checkpoint in `files` (a call's returned files) installed as model dir `dest`, which must not exist:
    model.safetensors, config.json, and the finished run's README.md and training_log.json, or a README.md
    that says which step of a call cut short it is. Loaded once before it is put in place. -> the manifest."""
    files, dest = Path(files), Path(dest)
    if dest.exists():
        raise CollectError(f"{dest} exists: name a new model dir (nothing is written over)")
    manifest, weights = check(files)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        (staging / WEIGHTS_FILE).write_bytes(weights)
        (staging / CONFIG_FILE).write_text(json.dumps(manifest["config"], indent=2) + "\n")
        for name in manifest.get("extras", {}):
            shutil.copyfile(files / name, staging / name)
        if not manifest.get("final"):
            score = manifest.get("selection_score")
            (staging / "README.md").write_text(
                f"# Step {manifest['step']} of a GPU call cut short\n\nThe best-scored weights the call had saved "
                f"(selection score {score}) when it ended before its run finished; float16, sha256 "
                f"{manifest['sha256']}. Collected from {files} by tools/gpu_session_weights.py; the call's "
                "train.log has the run's command and progress.\n")
        try:
            load_checkpoint(staging)
        except ValueError as e:  # CheckpointError: whole by its hashes and still not a model
            raise CollectError(f"{files}: the checkpoint does not load: {e}") from None
        staging.rename(dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="(device) a model dir into $OUT as float16 parts and checkpoint.json")
    ex.add_argument("model_dir", type=Path)
    ex.add_argument("out", type=Path)
    ex.add_argument("--final", action="store_true", help="the finished run's model")
    ex.add_argument("--extras", nargs="*", default=[], help="files of model_dir returned beside it")
    ex.add_argument("--part-bytes", type=int, default=PART_BYTES)
    co = sub.add_parser("collect", help="(here) the returned checkpoint as a model dir")
    co.add_argument("files", type=Path, help="the call's returned files (files_at)")
    co.add_argument("dest", type=Path, help="the model dir to make (must not exist)")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            m = export(args.model_dir, args.out, tuple(args.extras), args.final, args.part_bytes)
            print(f"exported step {m['step']}{' (final)' if m['final'] else ''} to {args.out}: {len(m['parts'])} "
                  f"parts, float16 sha256 {m['sha256']}", flush=True)
        else:
            m = collect(args.files, args.dest)
            kind = "the finished run's model" if m.get("final") else "a call cut short: its best-scored checkpoint"
            print(f"installed step {m['step']} ({kind}) in {args.dest}: fourds-ros eval BAG --model {args.dest}")
    except (ValueError, OSError) as e:  # CollectError and CheckpointError are ValueErrors
        print(f"gpu_session_weights.py {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from fourds_ros.script_errors import run_script

    sys.exit(run_script(main, "gpu_session_weights.py"))
