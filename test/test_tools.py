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
