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
