"""A colcon install tree of this package, built the way ROS users build it (used by the layout
test and the install-tree node test). About 2 s: ament_python copies files, nothing compiles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def colcon_build(workspace: Path) -> Path:
    """`colcon build --packages-select fourds_ros` with build/, install/ and log/ under
    `workspace`; returns the package's install prefix (install/fourds_ros)."""
    colcon = Path(sys.executable).with_name("colcon")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLCON")}  # not the outer colcon test's
    cmd = [str(colcon), "--log-base", str(workspace / "log"), "build", "--packages-select", "fourds_ros",
           "--base-paths", str(REPO), "--build-base", str(workspace / "build"),
           "--install-base", str(workspace / "install"), "--event-handlers", "console_direct-"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return workspace / "install" / "fourds_ros"
