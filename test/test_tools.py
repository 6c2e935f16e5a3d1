"""Every Python tool in tools/ still imports against today's package: a tool whose imports have
gone stale (as tools/eval_pose_geometry.py did after the settings refactor) fails here, not in a
later session that needs it."""

import pytest

from .tool_module import TOOLS as TOOLS_DIR
from .tool_module import load_tool

TOOLS = sorted(TOOLS_DIR.glob("*.py"))


def test_there_are_tools():
    assert len(TOOLS) >= 3


@pytest.mark.parametrize("path", TOOLS, ids=[p.name for p in TOOLS])
def test_tool_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))
    module = load_tool(path, f"tool_{path.stem}")  # module level only: every tool runs its work under __main__
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"


def test_make_demo_sample_rewrites_the_committed_frames_and_keeps_the_licence(tmp_path, monkeypatch):
    """The tool once deleted the sample's LICENSE (the MIT text that must ship with the frames) and
    ignored its arguments (`--help` rebuilt the sample in place)."""
    import shutil

    from .conftest import REPO, SHARED_DATA, require

    source = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    committed = REPO / "samples" / "hololens_000"
    target = tmp_path / "hololens_000"
    shutil.copytree(committed, target)
    (target / "images" / "stale.jpg").write_bytes(b"x")
    monkeypatch.syspath_prepend(str(TOOLS_DIR))
    tool = load_tool(TOOLS_DIR / "make_demo_sample.py", "tool_make_demo_sample_run")
    with pytest.raises(SystemExit):
        tool.main(["--help"])
    assert tool.main(["--source", str(source), "--target", str(target)]) == 0
    for path in committed.rglob("*"):
        if path.is_file():
            rel = path.relative_to(committed)
            assert (target / rel).read_bytes() == path.read_bytes(), rel
    assert not (target / "images" / "stale.jpg").exists()
    fresh = tmp_path / "fresh"  # a new folder gets the sample's README and LICENSE too
    assert tool.main(["--source", str(source), "--target", str(fresh)]) == 0
    assert (fresh / "LICENSE").read_bytes() == (committed / "LICENSE").read_bytes()
    assert tool.main(["--source", str(target), "--target", str(target)]) == 1  # never its own source
    assert len(list((target / "images").glob("*.jpg"))) == len(list((committed / "images").glob("*.jpg")))


@pytest.mark.parametrize("path", TOOLS, ids=[p.name for p in TOOLS])
def test_tool_ends_on_the_packages_refusals_in_one_line(path):
    """`python tools/pose_error_budget.py missing_bag` printed BagError's traceback: every tool's __main__
    goes through script_errors.run_script."""
    assert f'sys.exit(run_script(main, "{path.name}"))' in path.read_text()


def test_run_script_says_the_packages_errors_in_one_line_and_keeps_a_bugs_traceback(capsys):
    import subprocess

    from fourds_ros.evaluation.bag import BagError
    from fourds_ros.rgbd import DatasetFormatError
    from fourds_ros.script_errors import run_script

    def raising(exc):
        def main():
            raise exc
        return main

    for refusal in (BagError("x: no such bag"), DatasetFormatError("x: not a sequence"),
                    FileNotFoundError(2, "No such file or directory", "x"),
                    subprocess.CalledProcessError(1, ["fourds-ros", "bag", "convert"])):
        assert run_script(raising(refusal), "tool.py") == 1
        err = capsys.readouterr().err
        assert err.startswith("tool.py: ") and err.count("\n") == 1 and "Traceback" not in err
    for bug in (ValueError("a bug"), KeyError("k")):
        with pytest.raises(type(bug)):
            run_script(raising(bug), "tool.py")
    assert run_script(lambda: None, "tool.py") == 0 and run_script(lambda: 3, "tool.py") == 3


def test_a_tool_given_a_missing_bag_exits_1_in_one_line(tmp_path):
    import subprocess
    import sys

    from .tool_module import TOOLS as tools_dir

    done = subprocess.run([sys.executable, str(tools_dir / "pose_error_budget.py"), str(tmp_path / "missing"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == f"pose_error_budget.py: {tmp_path / 'missing'}: no such bag"
