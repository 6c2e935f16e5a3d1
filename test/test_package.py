"""The ament_python package: manifest, entry points, and data files a colcon build installs."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

from .conftest import REPO

ROS_DEPENDS = {
    "rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "visualization_msgs", "diagnostic_msgs",
    "std_srvs", "tf2_ros", "tf2_msgs", "cv_bridge", "launch", "launch_ros", "python3-numpy",
    "python3-transforms3d", "python3-opencv",
}


def test_package_xml_is_format_3_with_every_dependency():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "fourds_ros"
    depends = {e.text for e in root if e.tag.endswith("depend")}
    assert ROS_DEPENDS <= depends, ROS_DEPENDS - depends
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
    assert "perception_node = fourds_ros.ros.perception_node:main" in entry_points
    assert "fourds-ros = fourds_ros.cli:main" in entry_points
    assert not any(n.startswith(("test/", "training/")) for n in names)
