"""The launch file's _actions (launch arguments -> the LifecycleNode's and rviz Node's keyword arguments), run without
launch_ros by stand-ins that record what they are given: test_launch_file_statically only parses the file."""
import importlib.util
import sys
import types

import pytest
import yaml

from fourds_ros.ros.launch_logic import FASTDDS_PROFILE_VARIABLE, default_params_file

from .conftest import REPO


class Recorded:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class LifecycleNodeStandIn(Recorded):
    pass


class NodeStandIn(Recorded):
    pass


@pytest.fixture
def actions(monkeypatch):
    actions_module = types.ModuleType("launch_ros.actions")
    actions_module.LifecycleNode, actions_module.Node = LifecycleNodeStandIn, NodeStandIn
    package = types.ModuleType("launch_ros")
    package.actions = actions_module
    monkeypatch.setitem(sys.modules, "launch_ros", package)
    monkeypatch.setitem(sys.modules, "launch_ros.actions", actions_module)
    monkeypatch.delenv(FASTDDS_PROFILE_VARIABLE, raising=False)
    monkeypatch.delenv("FASTRTPS_DEFAULT_PROFILES_FILE", raising=False)
    monkeypatch.delenv("ROS_DISTRO", raising=False)
    spec = importlib.util.spec_from_file_location("perception_launch_actions", REPO / "launch" / "perception.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def run(**launch_line):
        context = types.SimpleNamespace(launch_configurations={k: d for k, (d, _) in module.ARGUMENTS.items()})
        context.launch_configurations.update(launch_line)  # as DeclareLaunchArgument leaves them: strings
        return module._actions(context)
    return run


def test_launch_line_arguments_reach_the_lifecycle_node(actions):
    (node,) = actions(autostart="false", publish_tf="false", namespace="fourds", log_level="warn",
                      image_topic="/camera/color/image_raw")
    kw = node.kwargs
    assert isinstance(node, LifecycleNodeStandIn) and kw["name"] == "fourds_perception" and kw["namespace"] == "fourds"
    assert kw["parameters"] == [str(default_params_file()), {"autostart": False, "publish_tf": False}]
    assert ("image", "/camera/color/image_raw") in kw["remappings"]
    assert kw["ros_arguments"] == ["--log-level", "warn"]
    assert kw["additional_env"][FASTDDS_PROFILE_VARIABLE].endswith("fastdds_large_frames.xml")


def test_rviz_runs_on_the_clock_of_the_params_file_when_the_launch_line_names_none(actions, tmp_path):
    params = tmp_path / "sim.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"use_sim_time": True}}}))
    node, rviz = actions(params_file=str(params), rviz="true")
    assert isinstance(rviz, NodeStandIn) and rviz.kwargs["parameters"] == [{"use_sim_time": True}]
    _, rviz = actions(rviz="true")  # the shipped file and no argument: wall time
    assert rviz.kwargs["parameters"] == [{"use_sim_time": False}]


def test_the_last_section_for_the_node_sets_its_clock_as_rclpy_reads_it(tmp_path):
    """rclpy applies a params file's sections in order, the last that matches the node winning (checked against
    rclpy 9 here: `/**: false` then `/**/fourds_perception: true` gives True, the other order False)."""
    from fourds_ros.ros.launch_logic import node_use_sim_time, perception_node_plan

    for sections, expected in (((("/**", False), ("/**/fourds_perception", True)), True),
                               ((("/**/fourds_perception", True), ("/**", False)), False)):
        params = tmp_path / f"{expected}.yaml"
        params.write_text("".join(f"{key}:\n  ros__parameters:\n    use_sim_time: {str(v).lower()}\n" for key, v in sections))
        assert node_use_sim_time(perception_node_plan(str(params), namespace="front")) is expected
