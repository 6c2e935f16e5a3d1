"""Launch logic (pure Python) and the static check of launch/perception.launch.py."""

import ast
import importlib.util
import shutil

import pytest
import yaml

from fourds_ros.ros.launch_logic import EXECUTABLE, PARAMS_KEY, command_line, default_params_file, perception_node_plan

from .conftest import REPO

LAUNCH_FILE = REPO / "launch" / "perception.launch.py"


def test_plan_defaults_and_remaps(tiny_model_dir):
    plan = perception_node_plan(namespace="/robot/", image_topic="/camera/image_raw",
                                camera_info_topic="/camera/info", use_sim_time="True", autostart="false",
                                model=str(tiny_model_dir), log_level="WARN")
    assert plan["executable"] == "perception_node" and plan["name"] == "fourds_perception"
    assert plan["namespace"] == "robot"
    assert plan["parameters"][0] == str(default_params_file())
    assert plan["parameters"][1] == {"use_sim_time": True, "autostart": False, "model": str(tiny_model_dir)}
    assert ("image", "/camera/image_raw") in plan["remappings"]
    assert ("image/compressed", "/camera/image_raw/compressed") in plan["remappings"]
    assert ("camera_info", "/camera/info") in plan["remappings"]
    argv = command_line(plan)
    assert argv[:2] == ["perception_node", "--ros-args"]
    assert "__ns:=/robot" in argv and "autostart:=false" in argv and argv[-2:] == ["--log-level", "warn"]


@pytest.mark.parametrize("kwargs, word", [
    ({"params_file": "/nonexistent.yaml"}, "params_file"),
    ({"log_level": "loud"}, "log_level"),
    ({"autostart": "maybe"}, "maybe"),
    ({"model": "/nonexistent_model"}, "model"),
])
def test_plan_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        perception_node_plan(**kwargs)


def test_launch_file_statically():
    """Without launch_ros the launch file is checked statically: it parses, declares every
    argument the issue names, and the executable and config it uses exist."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    names = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for arg in ("params_file", "namespace", "use_sim_time", "log_level", "autostart", "model",
                "image_topic", "camera_info_topic"):
        assert arg in names
    spec = importlib.util.spec_from_file_location("perception_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports launch/launch_ros lazily
    assert callable(module.generate_launch_description)
    assert shutil.which(EXECUTABLE, path=str(REPO / ".venv" / "bin")) or shutil.which(EXECUTABLE)
    setup = (REPO / "setup.py").read_text()
    assert f"{EXECUTABLE} = fourds_ros.ros.perception_node:main" in setup


def test_launch_runs_for_real_when_launch_ros_is_installed():
    pytest.importorskip("launch_ros")
    from launch import LaunchDescription

    spec = importlib.util.spec_from_file_location("perception_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.generate_launch_description(), LaunchDescription)


def test_every_parameter_is_documented_in_yaml():
    from fourds_ros.ros.perception_node import PARAMETERS

    text = (REPO / "config" / "perception.yaml").read_text()
    params = yaml.safe_load(text)[PARAMS_KEY]["ros__parameters"]
    assert set(params) == set(PARAMETERS)
    lines = text.splitlines()
    for name in PARAMETERS:  # each has a comment in the block above it (or shares one)
        i = next(j for j, line in enumerate(lines) if line.strip().startswith(f"{name}:"))
        assert any(line.strip().startswith("#") for line in lines[max(0, i - 6):i]), name
    for cfg in ("nav2_obstacle_layer.yaml", "robot_localization_ekf.yaml"):
        assert yaml.safe_load((REPO / "config" / cfg).read_text())
