"""The ament_python package: manifest, entry points, and data files a colcon build installs."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

from .conftest import REPO

ROS_DEPENDS = {
    "rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "visualization_msgs", "diagnostic_msgs",
    "std_srvs", "tf2_ros", "tf2_msgs", "launch", "launch_ros", "python3-numpy",
    "python3-transforms3d", "python3-opencv", "python3-yaml", "ament_index_python", "std_msgs",
    "builtin_interfaces", "lifecycle_msgs",
}


def test_package_xml_is_format_3_with_every_dependency():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "fourds_ros"
    depends = {e.text for e in root if e.tag.endswith("depend")}
    assert ROS_DEPENDS <= depends, ROS_DEPENDS - depends
    assert "cv_bridge" not in depends  # the node converts images itself (perception/image.py)
    assert root.find("test_depend").text == "python3-pytest"
    assert root.find("export/build_type").text == "ament_python"
    assert (REPO / "resource" / "fourds_ros").is_file()


def test_wheel_installs_data_files_and_console_scripts(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(REPO)],
        check=True, cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("fourds_ros-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    data = [n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n]
    assert "share/ament_index/resource_index/packages/fourds_ros" in data
    assert "share/fourds_ros/package.xml" in data
    for folder in ("launch", "config", "models"):
        for f in (REPO / folder).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                assert f"share/fourds_ros/{f.relative_to(REPO)}" in data, f
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))
    ).decode()
    assert "perception_node = fourds_ros.ros.node_lifetime:entry" in entry_points
    assert "fourds-ros = fourds_ros.cli:main" in entry_points
    assert not any(n.startswith("test/") for n in names)
    # `fourds-ros bench train` runs training.bench: installed with its configs
    assert "training/bench.py" in names and "training/configs/tiny.yaml" in names


def test_pip_only_requirements_leave_numpy_to_the_distribution():
    """A ROS user pip-installs only what apt/rosdep lacks (the issue's list), never numpy; with what
    `fourds-ros eval` and `bag convert --format mp4` import (evo, matplotlib, tqdm, av: without them
    the README's "measure it on your own camera" stopped with ModuleNotFoundError on a ROS install)."""
    from packaging.requirements import Requirement

    lines = (REPO / "requirements-ros-system.txt").read_text().splitlines()
    wanted = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]

    def names(python: str) -> set[str]:
        return {r.name for r in wanted if r.marker is None or r.marker.evaluate({"python_version": python})}

    for python in ("3.12", "3.13"):  # Jazzy / Kilted and later: numpy and OpenCV stay apt's
        assert names(python) == {"torch", "onnxruntime", "onnx", "safetensors", "einops", "rosbags",  # onnx: export
                                 "evo", "matplotlib", "tqdm", "av"}
    # Humble (3.10): apt's numpy 1.21 is older than onnx and onnxruntime take, so pip brings one; below 2,
    # or apt's cv2, built against numpy 1.x, stops importing.
    assert names("3.10") - names("3.12") == {"numpy"}
    numpy = next(r for r in wanted if r.name == "numpy")
    assert not numpy.specifier.contains("2.0.0") and numpy.specifier.contains("1.26.4")


def test_ros_system_ranges_hold_what_the_code_uses():
    """rosbags>=0.9.20 let a ROS system keep a rosbags without rosbag2.StoragePlugin (0.10.9 added it), which
    `fourds-ros eval` imports when it writes the recording: an ImportError after the replay. Each range also
    takes the version the developer venv pins (requirements.txt), which the tests run."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    def read(name: str) -> list[Requirement]:
        return [Requirement(line.split("#")[0]) for line in (REPO / name).read_text().splitlines()
                if line.strip() and not line.startswith(("#", "-"))]

    ranges = {r.name: r for r in read("requirements-ros-system.txt") if r.marker is None}
    assert not ranges["rosbags"].specifier.contains("0.10.8") and ranges["rosbags"].specifier.contains("0.10.9")
    pinned = {r.name: next(iter(r.specifier)).version for r in read("requirements.txt") if len(r.specifier) == 1}
    for name, requirement in ranges.items():
        if name in pinned:
            assert requirement.specifier.contains(Version(pinned[name].split("+")[0])), (name, pinned[name])


def test_colcon_finds_pytest_as_test_dependency():
    """colcon test runs pytest only when setup.py declares it as a test dependency; setuptools
    dropped tests_require, so it must be in extras_require["test"]. Read as colcon reads it."""
    from colcon_core.task.python.test import has_test_dependency
    from colcon_python_setup_py.package_identification.python_setup_py import get_setup_information

    data = get_setup_information(REPO / "setup.py")
    assert has_test_dependency(data, "pytest")


def test_every_ros_package_the_code_imports_is_declared():
    """package.xml (what rosdep installs) against the code: every ROS package imported anywhere in
    fourds_ros/ or launch/ must be a dependency, so a ROS install never misses one."""
    import ast

    root = ET.parse(REPO / "package.xml").getroot()
    depends = {e.text for e in root if e.tag.endswith("depend")}
    ros_like = ("rclpy", "launch", "launch_ros", "tf2_ros", "ament_index_python", "bondpy")
    imported = set()
    for path in [*(REPO / "fourds_ros").rglob("*.py"), *(REPO / "launch").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            imported |= {n.split(".")[0] for n in names}
    ros = {n for n in imported if n in ros_like or n.endswith(("_msgs", "_srvs", "_interfaces"))}
    assert ros and ros <= depends, ros - depends


def test_a_selection_matching_no_test_fails(tmp_path):
    """`make test PYTEST_ARGS="-k typo"` must fail: colcon test treats pytest's exit code 5 as a pass."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:launch_testing", "-p", "no:cacheprovider",
         "--rootdir", str(REPO), str(REPO / "test" / "test_package.py"), "-k", "no_test_has_this_name_xyz"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "no test matched the selection" in run.stdout
