"""ament_python package fourds_ros. Builds unchanged with `colcon build` in a ROS 2 workspace.

Install layout (what `ros2 run` / `ros2 launch` need, asserted by test/test_install_layout.py):
  lib/fourds_ros/{perception_node,fourds-ros}     (setup.cfg [install] install_scripts)
  share/fourds_ros/{package.xml,launch/,config/,models/}
  share/ament_index/resource_index/packages/fourds_ros
"""

from glob import glob

from setuptools import find_packages, setup

package_name = "fourds_ros"


def data_files_keeping_folders(*patterns):
    """(share/fourds_ros/<folder>, [files]) for every file the patterns match, so that nested
    folders such as models/<name>/ keep their place under share/."""
    out = {}
    for pattern in patterns:
        for f in sorted(glob(pattern, recursive=True)):
            if "." in f.rsplit("/", 1)[-1] and "__pycache__" not in f:
                out.setdefault(f"share/{package_name}/" + f.rsplit("/", 1)[0], []).append(f)
    return list(out.items())


setup(
    name=package_name,
    version="0.1.0",
    # training/ is installed too: `fourds-ros bench train` runs training.bench (extra "train").
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={"training": ["configs/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        *data_files_keeping_folders("launch/*.py", "config/*.yaml", "config/*.rviz", "config/*.xml", "models/**/*"),
    ],
    install_requires=["setuptools"],
    # colcon test runs pytest only when the package names it as a test dependency; setuptools
    # ignores tests_require now, so it goes in the "test" extra, which colcon reads.
    extras_require={"test": ["pytest"], "train": ["trimesh", "embreex"]},
    zip_safe=False,
    maintainer="fourds_ros maintainers",
    maintainer_email="fourds-ros@example.com",
    description="4DS video encoder on ROS 2: depth, tracked points and camera pose from one pass",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "perception_node = fourds_ros.ros.node_lifetime:entry",
            "fourds-ros = fourds_ros.cli:main",
        ],
    },
)
