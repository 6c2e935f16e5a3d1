"""tools/check_eval_parity.sh: the eval numbers of a revision and of the working tree compared, timings aside.
Run here in a small git tree whose `fourds-ros` (the working tree's) and `.venv/bin/python -m fourds_ros.cli`
(the revision's, in its worktree) are stubs that write a report.json; the comparison is the script's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# a stub of both CLIs: `bag convert ... DST` makes DST; `eval BAG --model M --out DIR ...` writes DIR/report.json with
# the depth of $DEPTH_<WHICH> and a wall time that always differs; every call's arguments go to $ARGS_LOG
FAKE_CLI = """
which=$1; shift
echo "$which $*" >> "$ARGS_LOG"
if [ "$1" = bag ]; then mkdir -p "${@: -1}"; exit 0; fi
out=; while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
depth=DEPTH_$which
mkdir -p "$out" && printf '{"depth": {"abs_rel": %s}, "timing": {"wall_s": %s}, "bag": {"path": "%s"}}\\n' \\
  "${!depth}" "$RANDOM.5" "$out" > "$out/report.json"
"""


def _tree(tmp_path: Path) -> tuple[Path, dict]:
    tree = tmp_path / "tree"
    (tree / "tools").mkdir(parents=True)
    (tree / "tools" / "check_eval_parity.sh").write_text((REPO / "tools" / "check_eval_parity.sh").read_text())
    (tree / ".gitignore").write_text(".venv/\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    subprocess.run(git + ["add", "."], cwd=tree, check=True)
    subprocess.run(git + ["commit", "-qm", "start"], cwd=tree, check=True)
    bin_dir = tree / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "fake_cli").write_text("#!/bin/bash\n" + FAKE_CLI)
    # python: the comparison (a script on stdin) for real, `-m fourds_ros.cli` as the revision's CLI
    (bin_dir / "python").write_text(f'#!/bin/bash\n[ "$1" = - ] && exec {sys.executable} "$@"\nshift 2\n'
                                    f'exec "$(dirname "$0")/fake_cli" OLD "$@"\n')
    (bin_dir / "fourds-ros").write_text('#!/bin/bash\nexec "$(dirname "$0")/fake_cli" NEW "$@"\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    return tree, {**os.environ, "ARGS_LOG": str(tmp_path / "args"), "DEPTH_OLD": "0.227", "DEPTH_NEW": "0.227"}


@pytest.mark.parametrize("new_depth, differs", [("0.2270000001", False), ("0.228", True)])
def test_a_number_that_moved_fails_the_check_and_timings_do_not(tmp_path, new_depth, differs):
    tree, env = _tree(tmp_path)
    done = subprocess.run(["bash", "tools/check_eval_parity.sh", "HEAD", str(tmp_path / "parity"), "pose_source=head"],
                          cwd=tree, env={**env, "DEPTH_NEW": new_depth}, capture_output=True, text=True, timeout=60)
    assert done.returncode == (1 if differs else 0), done.stdout + done.stderr
    assert done.stdout.count("1 values compared") == 3, done.stdout  # depth only: timings and the bag's path left out
    assert ("depth.abs_rel" in done.stdout) is differs
    calls = (tmp_path / "args").read_text().splitlines()
    evals = [c for c in calls if " eval " in c]
    assert len(evals) == 6 and all(("--param pose_source=head" in c) == c.startswith("NEW") for c in evals), calls
    assert not (tmp_path / "parity" / "old_tree").exists()  # the worktree is removed


@pytest.mark.parametrize("args, said", [([], "usage"), (["HEAD"], "usage"), (["nosuchrev", "OUT"], "no such commit"),
                                        (["HEAD", "OUT", "pose_source"], "not NAME=VALUE")])
def test_arguments_are_checked_before_anything_is_removed(tmp_path, args, said):
    """Without them it stopped on `$1: unbound variable`; a wrong revision first removed the last comparison."""
    tree, env = _tree(tmp_path)
    kept = tree / "OUT" / "new_tum"
    kept.mkdir(parents=True)
    done = subprocess.run(["bash", "tools/check_eval_parity.sh", *args], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and said in done.stderr, done.stdout + done.stderr
    assert kept.is_dir()
