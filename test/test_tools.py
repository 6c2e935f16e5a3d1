"""Every Python tool in tools/ still imports against today's package: a tool whose imports have
gone stale (as tools/eval_pose_geometry.py did after the settings refactor) fails here, not in a
later session that needs it."""

import importlib.util
from pathlib import Path

import pytest

TOOLS = sorted((Path(__file__).resolve().parents[1] / "tools").glob("*.py"))


def test_there_are_tools():
    assert len(TOOLS) >= 3


@pytest.mark.parametrize("path", TOOLS, ids=[p.name for p in TOOLS])
def test_tool_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))
    spec = importlib.util.spec_from_file_location(f"tool_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # module level only: every tool runs its work under __main__
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
