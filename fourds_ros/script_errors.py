"""The scripts under tools/ end on the package's own refusals in one line, as `fourds-ros` does, not a
traceback: `python tools/pose_error_budget.py missing_bag` printed BagError's stack. Only the package's
errors (a class defined in fourds_ros or training: BagError, DatasetFormatError, CheckpointError, ...),
a file the OS refuses and a failed step run as a subprocess (whose own message came first) are said so;
anything else is a bug and keeps its traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable


def run_script(main: Callable[[], int | None], prog: str) -> int:
    """main()'s exit code; 1, with one line on stderr, where it raised one of the errors above."""
    try:
        return int(main() or 0)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError) as exc:
        if not type(exc).__module__.startswith(("fourds_ros.", "training.")):
            raise
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
