"""The install layout that `ros2 run` / `ros2 launch` accept, in a colcon install tree and in the
`make setup` venv. The checks follow what ros2cli does (ros2launch, ros2pkg): find the launch
file by os.walk of share/<pkg> WITHOUT following directory links, and run lib/<pkg>/<exe>."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO
from .install_tree import colcon_build

PACKAGE = "fourds_ros"


def launch_files_found_by_ros2launch(share: Path) -> list[str]:
    """ros2launch's get_share_file_path_from_package: os.walk (followlinks=False) of share/<pkg>."""
    return sorted(name for _, _, files in os.walk(share) for name in files if name.endswith(".launch.py"))


def executables_found_by_ros2pkg(prefix: Path) -> list[str]:
    """ros2pkg's get_executable_paths: executable files under <prefix>/lib/<pkg>."""
    lib = prefix / "lib" / PACKAGE
    return sorted(f.name for f in lib.iterdir() if f.is_file() and os.access(f, os.X_OK)) if lib.is_dir() else []


def assert_ros_layout(prefix: Path) -> None:
    share = prefix / "share" / PACKAGE
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()
    assert (share / "package.xml").is_file()
    assert (share / "launch").is_dir() and not (share / "launch").is_symlink()
    assert launch_files_found_by_ros2launch(share) == sorted(p.name for p in (REPO / "launch").glob("*.launch.py"))
    assert {"perception_node", "fourds-ros"} <= set(executables_found_by_ros2pkg(prefix))
    for rel in ("config/perception.yaml", "config/fourds.rviz", "models/fourds_default/config.json"):
        assert (share / rel).is_file(), rel


@pytest.fixture(scope="module")
def colcon_prefix(tmp_path_factory):
    return colcon_build(tmp_path_factory.mktemp("colcon_ws"))


def test_colcon_install_tree_has_the_ros_layout(colcon_prefix):
    assert_ros_layout(colcon_prefix)
    # the installed script is the console-script entry point of the installed distribution
    script = (colcon_prefix / "lib" / PACKAGE / "perception_node").read_text()
    assert "'console_scripts', 'perception_node'" in script and script.startswith("#!")


def test_colcon_install_tree_resolves_its_own_share_directory(colcon_prefix):
    """With the install tree sourced (ros_env's package_prefix), ament_index and launch_logic
    resolve the installed params and rviz files, and Python imports the installed package."""
    from fourds_ros.ros_env import ros_environment

    env = ros_environment(base={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                          package_prefix=colcon_prefix)
    code = ("import fourds_ros, fourds_ros.ros.launch_logic as l;"
            "print(fourds_ros.__file__); print(l.default_params_file()); print(l.default_rviz_config())")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=colcon_prefix, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert all(Path(p).resolve().is_relative_to(colcon_prefix.resolve()) for p in out), out


def test_make_setup_venv_has_the_ros_layout():
    venv = Path(sys.prefix)
    if not (venv / "share" / PACKAGE).exists():
        pytest.skip("not running in the `make setup` venv")
    assert_ros_layout(venv)
