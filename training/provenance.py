"""What a training run was made from: the code revision it ran (and whether its tracked code had changes) and the
sha256 of the weights it started from. Recorded at a run's start in its log (train_readouts' training_log.json,
pretrain's run.json) and resume state. Why: the shipped model's recorded command no longer reproduced it (the
code had changed since, and its --init folder then held the result, not the start), and nothing said so.

Where git or the checkout is absent (an installed package, a tarball) the revision is None: never a failed run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
from pathlib import Path

# The checkout the training code is imported from (training/'s parent); tests point it elsewhere.
REPO = Path(__file__).resolve().parents[1]
# The code a run's result depends on: changes to tracked files here make the revision a dirty one.
CODE_FOLDERS = ("fourds_ros", "training")
GIT_TIMEOUT_S = 5.0
# git's own variables would point it at another repository than REPO's.
GIT_ENV_DROPPED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_CEILING_DIRECTORIES")


def _git(root: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in GIT_ENV_DROPPED}
    return subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args], capture_output=True, text=True,
                          timeout=GIT_TIMEOUT_S, check=True, env=env).stdout


def code_revision(root: Path | None = None) -> tuple[str | None, bool | None]:
    """(`git rev-parse HEAD`, whether `git status` lists changes to tracked files under CODE_FOLDERS) of the
    checkout at `root` (default REPO); (None, None) where it is no checkout of its own (no .git in it: the
    package installed, a tarball, a folder inside some other repository) or git fails, is missing or hangs."""
    root = REPO if root is None else Path(root)
    if not (root / ".git").exists():
        return None, None
    try:
        head = _git(root, "rev-parse", "HEAD").strip()
        changed = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *CODE_FOLDERS)
    except (OSError, subprocess.SubprocessError):
        return None, None
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", head):
        return None, None
    return head, bool(changed.strip())


def file_sha256(path: str | Path) -> str | None:
    """The file's sha256 (hex); None where it cannot be read (the run's own loading then says why)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def invocation(program: str, argv: list[str] | tuple[str, ...] | None, weights: dict[str, Path | None]) -> dict:
    """One invocation's record: code_revision, code_dirty, the command line (None where the run was not started
    from one) and `<name>_sha256` of each weights file in `weights` (None where not given)."""
    revision, dirty = code_revision()
    command = None if argv is None else " ".join(["python", "-m", program, *map(shlex.quote, argv)])
    record = {"code_revision": revision, "code_dirty": dirty, "command": command,
              "argv": None if argv is None else list(argv)}
    record.update({f"{name}_sha256": None if path is None else file_sha256(path) for name, path in weights.items()})
    return record


def run_record(first: dict | None, now: dict, resumed_at: int | None) -> dict:
    """The record a run keeps: the invocation that started it at step 0 (its keys at the top) and, in "resumes",
    every later invocation that resumed it, with the step it resumed at. resumed_at None: `now` starts the run.
    first None on a resume: the run was started before records were kept, and its start's fields are None."""
    if resumed_at is None:
        return {**now, "resumes": []}
    start = first if first is not None else {**dict.fromkeys(now), "resumes": []}
    return {**start, "resumes": [*start.get("resumes", []), {**now, "step": resumed_at}]}
