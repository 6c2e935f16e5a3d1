"""ament_python package fourds_ros. Builds unchanged with `colcon build` in a ROS 2 workspace."""

from glob import glob

from setuptools import find_packages, setup

package_name = "fourds_ros"


def files(pattern):
    return [f for f in glob(pattern, recursive=True) if not f.endswith("/")]


def model_files():
    # models/<name>/<file> keep their directory in share/
    out = {}
    for f in glob("models/**/*", recursive=True):
        if "." in f.rsplit("/", 1)[-1]:
            out.setdefault(f"share/{package_name}/" + f.rsplit("/", 1)[0], []).append(f)
    return list(out.items())


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "training", "training.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", files("launch/*.py")),
        (f"share/{package_name}/config", files("config/*.yaml")),
        *model_files(),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="fourds_ros maintainers",
    maintainer_email="fourds-ros@example.com",
    description="4DS video encoder on ROS 2: depth, tracked points and camera pose from one pass",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "perception_node = fourds_ros.ros.perception_node:main",
            "fourds-ros = fourds_ros.cli:main",
        ],
    },
)
