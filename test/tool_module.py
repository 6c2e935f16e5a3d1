"""A script of tools/ loaded as a module (tools/ is not a package), for the tests of its functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load_tool(path: str | Path, module_name: str | None = None):
    """tools/<path> (a name or a path) executed as a module: its top level only, never its main()."""
    path = TOOLS / path if not Path(path).is_absolute() else Path(path)
    spec = importlib.util.spec_from_file_location(module_name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
