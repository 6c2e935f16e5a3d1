"""Launch logic (pure Python) and the static check of launch/perception.launch.py."""

import ast
import importlib.util
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from fourds_ros.ros.launch_logic import (
    EXECUTABLE, command_line, default_params_file, default_rviz_config, module_command, node_plan,
    node_use_sim_time, perception_node_plan, rviz_plan,
)

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
    # camera_info not given: not remapped, the node takes the image's sibling (transforms.camera_info_topic); the
    # launch default remapped nothing either, and the node then listened on camera_info beside no camera.
    alone = perception_node_plan(image_topic="/camera/color/image_raw")["remappings"]
    assert [r for r in alone if r[0] == "camera_info"] == [], alone
    argv = command_line(plan)
    assert argv[:2] == ["perception_node", "--ros-args"]
    assert "__ns:=/robot" in argv and "autostart:=false" in argv and argv[-2:] == ["--log-level", "warn"]
    assert "metric_scale_source" not in plan["parameters"][1]  # the model's metres unless a reference is named
    # Not given, autostart and use_sim_time are the params file's: a launch default overrode a file's
    # `autostart: false` (for a lifecycle manager) and the node activated itself.
    assert perception_node_plan()["parameters"] == [str(default_params_file())]


def test_publish_tf_can_be_turned_off_from_the_launch_line():
    """The README's robot_localization recipe runs the node with publish_tf false so that the EKF
    owns odom -> base_link; the launch file had no such argument, and `publish_tf:=false` on the
    launch line did nothing: both published the transform. Not given, the params file's value."""
    assert perception_node_plan(publish_tf="false")["parameters"][1] == {"publish_tf": False}
    assert "publish_tf:=false" in command_line(perception_node_plan(publish_tf="false"))
    assert perception_node_plan(publish_tf="")["parameters"] == [str(default_params_file())]
    assert "publish_tf" in LAUNCH_FILE.read_text()


def test_a_reference_depth_topic_turns_on_the_metric_scale_and_is_remapped():
    plan = perception_node_plan(reference_depth_topic="/camera/aligned_depth_to_color/image_raw")
    assert plan["parameters"][1]["metric_scale_source"] == "reference_depth"
    assert ("reference_depth", "/camera/aligned_depth_to_color/image_raw") in plan["remappings"]
    with pytest.raises(ValueError, match="give one source of metres"):
        perception_node_plan(reference_odom_topic="/odom", reference_depth_topic="/depth")


def test_a_reference_odometry_topic_turns_on_the_metric_scale_and_is_remapped():
    plan = perception_node_plan(reference_odom_topic="/wheel/odometry")
    assert plan["parameters"][1]["metric_scale_source"] == "reference_odometry"
    assert ("reference_odom", "/wheel/odometry") in plan["remappings"]
    assert "reference_odom:=/wheel/odometry" in command_line(plan)


@pytest.mark.parametrize("kwargs, word", [
    ({"params_file": "/nonexistent.yaml"}, "params_file"),
    ({"log_level": "loud"}, "log_level"),
    ({"autostart": "maybe"}, "autostart: expected true or false, got 'maybe'"),  # named: launch shows this line alone
    ({"publish_tf": "maybe"}, "publish_tf:"),
    ({"use_sim_time": "maybe"}, "use_sim_time:"),
    ({"model": "/nonexistent_model"}, "model"),
    ({"image_transport": "theora"}, "image_transport"),
    # the compressed sibling's name: .../compressed/compressed was subscribed, nothing came, diagnostics OK
    ({"image_topic": "/cam/image_raw/compressed", "image_transport": "compressed"}, "without /compressed"),
])
def test_plan_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        perception_node_plan(**kwargs)


def test_the_node_gets_the_large_frames_fastdds_profile_unless_one_is_set(tmp_path):
    """Fast DDS's 512 KB shared-memory segments hold no camera frame (session 33: frames then waited
    ~300 ms after minute 6): the node gets the package's profile, but a team's own profile file
    stands, 'none' leaves Fast DDS's defaults, and a missing file is refused by name."""
    from fourds_ros.ros.launch_logic import FASTDDS_PROFILE_VARIABLE, fastdds_environment

    env = perception_node_plan(environ={})["env"]
    profile = Path(env[FASTDDS_PROFILE_VARIABLE])
    assert profile.name == "fastdds_large_frames.xml" and profile.is_file()
    segment = ElementTree.parse(profile).find(".//{http://www.eprosima.com}segment_size")
    assert int(segment.text) >= 10 * 640 * 480 * 4  # ten of the node's 32FC1 depth images
    assert perception_node_plan(environ={FASTDDS_PROFILE_VARIABLE: "/team/profile.xml"})["env"] == {}
    assert perception_node_plan(fastdds_profile="none", environ={})["env"] == {"FOURDS_ROS_FASTDDS_PROFILE": "none"}
    own = tmp_path / "own.xml"
    own.write_text("<dds/>")
    assert fastdds_environment({FASTDDS_PROFILE_VARIABLE: "/team/profile.xml"}, str(own)) == {
        FASTDDS_PROFILE_VARIABLE: str(own)}  # named on the command line: it wins
    with pytest.raises(ValueError, match="fastdds_profile"):
        perception_node_plan(fastdds_profile=str(tmp_path / "missing.xml"))


NODE_PROFILE_PROBE = """
import os, sys
from fourds_ros.ros.node_lifetime import init_ros
import rclpy
assert init_ros(["perception_node"]) is None
print(os.environ.get(sys.argv[1], "unset"))
rclpy.shutdown()
"""


@pytest.mark.parametrize("environ, expected", [({}, "fastdds_large_frames.xml"),
                                               ({"FASTDDS_DEFAULT_PROFILES_FILE": "/team/own.xml"}, "/team/own.xml"),
                                               ({"FOURDS_ROS_FASTDDS_PROFILE": "none"}, "unset")],
                         ids=["none_set", "a_teams_own", "none_chosen"])
def test_a_node_started_without_the_launch_file_names_the_profile_itself(environ, expected):
    """Only the launch file named the package profile: started by `ros2 run` or a team's own launch, the node
    kept Fast DDS's 512 KB segment, and a clip's burst of outputs lost reliable depth/camera_info samples or
    delivered them up to 0.5 s late (session 67's review). The node's process now names it before rclpy starts,
    unless the environment names a profile or chose none (launch fastdds_profile:=none, bench)."""
    import subprocess
    import sys

    from fourds_ros.ros.launch_logic import FASTDDS_PROFILE_VARIABLE, PROFILE_VARIABLES
    from fourds_ros.ros_env import FASTDDS_CHOICE_VARIABLE, ros_environment

    env = {k: v for k, v in ros_environment(fastdds_profile=None).items()
           if k not in (*PROFILE_VARIABLES, FASTDDS_CHOICE_VARIABLE)}
    out = subprocess.run([sys.executable, "-c", NODE_PROFILE_PROBE, FASTDDS_PROFILE_VARIABLE], env={**env, **environ},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(expected)


LEGACY_PROFILE_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"  # spelled out: the old code has no constant for it
CURRENT_PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"


@pytest.mark.parametrize("distro", ["humble", "jazzy", "Humble "])
def test_before_kilted_the_profile_goes_in_the_legacy_variable_fast_dds_2_reads(distro):
    """Fast DDS 2 (Humble 2.6, Jazzy 2.14) reads only FASTRTPS_DEFAULT_PROFILES_FILE: the new name
    alone left the large-frames profile silently unused there."""
    env = perception_node_plan(environ={"ROS_DISTRO": distro})["env"]
    assert set(env) == {LEGACY_PROFILE_VARIABLE}
    assert Path(env[LEGACY_PROFILE_VARIABLE]).name == "fastdds_large_frames.xml"


@pytest.mark.parametrize("distro", ["kilted", "rolling", ""])
def test_from_kilted_the_profile_goes_in_the_current_variable(distro):
    """Fast DDS 3 reads FASTDDS_DEFAULT_PROFILES_FILE and warns on the legacy name; no ROS_DISTRO
    (the pip wheels) takes the current name too."""
    env = perception_node_plan(environ={"ROS_DISTRO": distro} if distro else {})["env"]
    assert set(env) == {CURRENT_PROFILE_VARIABLE}


@pytest.mark.parametrize("distro", ["humble", "jazzy", "kilted", "rolling"])
@pytest.mark.parametrize("already", [LEGACY_PROFILE_VARIABLE, CURRENT_PROFILE_VARIABLE])
def test_a_profile_the_distros_fast_dds_reads_stands_alone(distro, already):
    """A robot's own profile stands where its Fast DDS reads it: from Kilted under either name (the
    legacy one is still read, so the package's added beside it would be loaded too); before Kilted
    only under the legacy name: a FASTDDS_ name there (what the README once said to export) is
    ignored by Fast DDS 2, and standing for a profile it kept the package's out (the session's own
    review)."""
    from fourds_ros.ros.launch_logic import fastdds_environment

    environ = {"ROS_DISTRO": distro, already: "/robot/profile.xml"}
    ignored = distro in ("humble", "jazzy") and already == CURRENT_PROFILE_VARIABLE
    if ignored:
        added = fastdds_environment(environ)
        assert list(added) == [LEGACY_PROFILE_VARIABLE] and added[LEGACY_PROFILE_VARIABLE].endswith(
            "fastdds_large_frames.xml")
        assert perception_node_plan(environ=environ)["env"] == added
    else:
        assert perception_node_plan(environ=environ)["env"] == {}
        assert fastdds_environment(environ) == {}
    # An empty value names no profile.
    assert fastdds_environment({"ROS_DISTRO": distro, already: ""}) != {}

def test_test_and_benchmark_processes_get_the_same_profile_as_the_node():
    from fourds_ros.ros.launch_logic import FASTDDS_PROFILE_VARIABLE
    from fourds_ros.ros_env import ros_environment

    assert ros_environment(base={})[FASTDDS_PROFILE_VARIABLE].endswith("fastdds_large_frames.xml")
    assert FASTDDS_PROFILE_VARIABLE not in ros_environment(base={FASTDDS_PROFILE_VARIABLE: "/x.xml"},
                                                           fastdds_profile="none")
    assert ros_environment(base={FASTDDS_PROFILE_VARIABLE: "/x.xml"})[FASTDDS_PROFILE_VARIABLE] == "/x.xml"
    assert ros_environment(base={}, fastdds_profile=None).get(FASTDDS_PROFILE_VARIABLE) is None



def test_none_clears_a_legacy_profile_name_too_and_the_bench_reports_either_name():
    """On Humble or Jazzy the profile travels in FASTRTPS_DEFAULT_PROFILES_FILE: 'none' removed only
    the new name (the profile still applied), and `bench node` reported "Fast DDS defaults" with the
    legacy name set (session 55's review)."""
    from fourds_ros.bench.node import fastdds_profile_of
    from fourds_ros.ros.launch_logic import FASTRTPS_PROFILE_VARIABLE, PROFILE_VARIABLES
    from fourds_ros.ros_env import ros_environment

    legacy = ros_environment(base={"ROS_DISTRO": "humble"})
    assert legacy[FASTRTPS_PROFILE_VARIABLE].endswith("fastdds_large_frames.xml")
    assert fastdds_profile_of(legacy) == legacy[FASTRTPS_PROFILE_VARIABLE]
    cleared = ros_environment(base=legacy, fastdds_profile="none")
    assert not any(name in cleared for name in PROFILE_VARIABLES)
    assert fastdds_profile_of(cleared) == "Fast DDS defaults"

def test_an_environment_made_without_a_profile_keeps_that_choice_through_a_second_pass(tmp_path):
    """Helpers pass an environment through ros_environment again (evaluation.replay, the bench
    harness): Fast DDS's defaults chosen once stay chosen, and a profile named later still wins."""
    from fourds_ros.evaluation.replay import ros_environment as replay_environment
    from fourds_ros.ros.launch_logic import FASTDDS_PROFILE_VARIABLE
    from fourds_ros.ros_env import ros_environment

    defaults = ros_environment(base={}, fastdds_profile="none")
    assert FASTDDS_PROFILE_VARIABLE not in ros_environment(base=defaults)
    assert FASTDDS_PROFILE_VARIABLE not in replay_environment(defaults)
    own = tmp_path / "own.xml"
    own.write_text("<dds/>")
    named = ros_environment(base=defaults, fastdds_profile=str(own))
    assert named[FASTDDS_PROFILE_VARIABLE] == str(own)
    assert ros_environment(base=named)[FASTDDS_PROFILE_VARIABLE] == str(own)


def test_node_and_probe_processes_keep_the_benchmarks_fastdds_choice():
    """run_node's processes keep what ros_env chose: `bench --fastdds-profile none` measures Fast DDS's
    defaults, not the package profile added back (session 34 found it added back), and the default
    choice still reaches node and probe."""
    from fourds_ros.ros.harness import process_environment, ros_env
    from fourds_ros.ros.launch_logic import FASTDDS_PROFILE_VARIABLE

    assert FASTDDS_PROFILE_VARIABLE not in process_environment(ros_env(5, "none"))
    assert process_environment(ros_env(5))[FASTDDS_PROFILE_VARIABLE].endswith("fastdds_large_frames.xml")
    assert process_environment(ros_env(5))["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_image_transport_argument_is_passed_only_when_given():
    assert perception_node_plan()["parameters"] == [str(default_params_file())]  # no overrides
    assert perception_node_plan(image_transport="compressed")["parameters"][1]["image_transport"] == "compressed"


def test_a_bad_rviz_argument_is_refused_by_name():
    with pytest.raises(ValueError, match="rviz: expected true or false, got 'maybe'"):
        rviz_plan("maybe")


def test_rviz_plan_shows_the_installed_config_in_the_node_namespace():
    assert rviz_plan("false") is None
    plan = rviz_plan("true", namespace="/robot/", use_sim_time="true")
    assert plan["executable"] == "rviz2" and plan["namespace"] == "robot"
    assert plan["arguments"] == ["-d", str(default_rviz_config())]
    assert plan["parameters"] == [{"use_sim_time": True}]
    rviz = yaml.safe_load(default_rviz_config().read_text())["Visualization Manager"]
    assert rviz["Global Options"]["Fixed Frame"] == "odom"
    topics = {d["Topic"]["Value"] for d in rviz["Displays"] if "Topic" in d}
    assert topics == {"depth/image", "depth/points", "tracks", "tracks/markers", "path"}
    assert "rviz_default_plugins/TF" in {d["Class"] for d in rviz["Displays"]}


@pytest.mark.parametrize("key", ["/**", "/**/fourds_perception", "fourds_perception"])
def test_rviz_runs_on_the_nodes_clock_whether_the_argument_or_the_params_file_sets_it(tmp_path, key):
    """use_sim_time set in params_file (the launch argument left empty): rviz got false while the node ran on
    the bag's time. The argument, where given, wins for both."""
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({key: {"ros__parameters": {"use_sim_time": True, "hop": 3}}}))
    assert node_use_sim_time(perception_node_plan(str(params))) is True
    assert node_use_sim_time(perception_node_plan(str(params), use_sim_time="false")) is False
    assert node_use_sim_time(perception_node_plan()) is False  # the shipped file leaves it to ROS: false
    assert node_use_sim_time(perception_node_plan(use_sim_time="true")) is True
    other = tmp_path / "other.yaml"  # another node's section does not count
    other.write_text(yaml.safe_dump({"camera": {"ros__parameters": {"use_sim_time": True}}}))
    assert node_use_sim_time(perception_node_plan(str(other))) is False


def test_replay_builds_the_command_line_through_launch_logic(tmp_path):
    """One way to start the node: replay.node_command is command_line(node_plan(...))."""
    from fourds_ros.evaluation.bag import CAMERA_INFO_TOPIC, COMPRESSED_TOPIC, IMAGE_TOPIC
    from fourds_ros.evaluation.replay import node_command

    argv = node_command(tmp_path, "onnxruntime", 2, extra={"max_tracks": 8}, namespace="eval1")
    assert argv[:3] == module_command() and argv[3] == "--ros-args"
    for arg in ("__node:=fourds_perception", "__ns:=/eval1", "autostart:=true", "backend:=onnxruntime", "hop:=2",
                "image_qos:=DEFAULT", "max_tracks:=8", f"image:=/eval1{IMAGE_TOPIC}",
                f"image/compressed:=/eval1{COMPRESSED_TOPIC}", f"camera_info:=/eval1{CAMERA_INFO_TOPIC}"):
        assert arg in argv, arg
    # lists and booleans in ROS's parameter syntax
    mount = command_line(node_plan(overrides={"base_from_camera": [0.0, 1.5], "publish_tf": False}))
    assert "base_from_camera:=[0.0, 1.5]" in mount and "publish_tf:=false" in mount


def test_launch_file_statically():
    """Without launch_ros the launch file is checked statically: it parses, declares every
    argument the issue names, and the executable and config it uses exist."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    names = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for arg in ("params_file", "namespace", "use_sim_time", "log_level", "autostart", "publish_tf", "model",
                "image_topic", "camera_info_topic", "image_transport", "reference_odom_topic", "fastdds_profile",
                "rviz"):
        assert arg in names
    assert "additional_env" in LAUNCH_FILE.read_text()  # the plan's Fast DDS profile reaches the node's process
    spec = importlib.util.spec_from_file_location("perception_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports launch/launch_ros lazily
    assert callable(module.generate_launch_description)
    assert shutil.which(EXECUTABLE, path=str(REPO / ".venv" / "bin")) or shutil.which(EXECUTABLE)
    setup = (REPO / "setup.py").read_text()
    assert f"{EXECUTABLE} = fourds_ros.ros.node_lifetime:entry" in setup


def test_launch_file_runs_with_launch_service(ros_env, monkeypatch):
    """The real launch file under LaunchService with default arguments (wherever launch_ros is
    importable: a ROS install; there is no PyPI wheel of launch): it is still running after a few
    seconds (a bad plan or a node that dies at start ends it), then shuts down with SIGINT."""
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (no PyPI wheel); runs on a ROS install")
    import asyncio

    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    for key, value in ros_env.items():
        monkeypatch.setenv(key, value)
    service = LaunchService(noninteractive=True)  # no TTY in CI: without it, it waits on stdin
    service.include_launch_description(LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)))]))

    async def run_then_stop():
        task = asyncio.ensure_future(service.run_async())
        await asyncio.sleep(8.0)
        assert not task.done(), "the launch ended by itself"
        service.shutdown()
        return await asyncio.wait_for(task, timeout=30)

    assert asyncio.run(run_then_stop()) == 0


def test_the_nav2_and_robot_localization_configs_parse():
    for cfg in ("nav2_obstacle_layer.yaml", "robot_localization_ekf.yaml", "nav2_lifecycle_manager.yaml"):
        assert yaml.safe_load((REPO / "config" / cfg).read_text())
    # Their topics are the node's outputs in the namespace the README's launch line gives it (they
    # read /fourds/... while the launch line gave none: the EKF and the costmap got nothing).
    costmap = yaml.safe_load((REPO / "config" / "nav2_obstacle_layer.yaml").read_text())
    ekf = yaml.safe_load((REPO / "config" / "robot_localization_ekf.yaml").read_text())
    layer = costmap["local_costmap"]["local_costmap"]["ros__parameters"]["obstacle_layer"]
    namespace = "fourds"
    assert layer["fourds_depth"]["topic"] == f"/{namespace}/depth/points"
    assert ekf["/**/ekf_filter_node"]["ros__parameters"]["odom0"] == f"/{namespace}/odometry"
    launch_line = (REPO / "README.md").read_text().split("ros2 launch fourds_ros perception.launch.py", 1)[1][:200]
    assert f"namespace:={namespace}" in launch_line


def test_every_config_section_reaches_its_node_in_the_namespace_the_readme_gives():
    """The EKF's section was keyed `ekf_filter_node:`, which matches /ekf_filter_node only: run in /fourds (as the
    README runs the lifecycle manager), robot_localization dropped all its parameters unsaid, fused nothing and
    published no odom -> base_link. Every section of a config a team runs beside the node reaches a node of that
    name in /fourds."""
    from fourds_ros.ros.launch_logic import params_key_matches, params_sections

    nodes = {"robot_localization_ekf.yaml": "/fourds/ekf_filter_node", "perception.yaml": "/fourds/fourds_perception",
             "nav2_lifecycle_manager.yaml": "/fourds/lifecycle_manager_perception"}
    for name, node in nodes.items():
        keys = [key for key, _ in params_sections(yaml.safe_load((REPO / "config" / name).read_text()))]
        assert keys and all(params_key_matches(key, node) for key in keys), (name, keys)


def test_the_costmap_and_ekf_numbers_suit_the_nodes_timing():
    """expected_update_rate 0 turned off Nav2's failsafe for a silent sensor (the last cloud kept forever); the
    EKF's history_length 1.5 s was shorter than the idle flush's clip is late (1.5-1.6 s): it was fused as a
    measurement of now. And min_obstacle_height 0.05 marked an empty floor: a floor point read at q of its
    depth lands camera_height * (1 - q) up, q below 0.5 for 5 % of the TUM desk's pixels (0.3 m up: 0.15)."""
    from fourds_ros.perception.settings import PerceptionSettings

    costmap = yaml.safe_load((REPO / "config" / "nav2_obstacle_layer.yaml").read_text())
    source = costmap["local_costmap"]["local_costmap"]["ros__parameters"]["obstacle_layer"]["fourds_depth"]
    ekf = yaml.safe_load((REPO / "config" / "robot_localization_ekf.yaml").read_text())["/**/ekf_filter_node"]
    settings = PerceptionSettings()
    clip_every_s = 7 / 30  # the shipped model's hop at 30 Hz
    assert source["expected_update_rate"] >= 2 * clip_every_s
    assert ekf["ros__parameters"]["history_length"] >= settings.clip.flush_after_s + 1.0
    assert source["min_obstacle_height"] >= 0.3 * (1 - 0.5)


def test_rviz_takes_the_use_sim_time_of_this_instances_section_only(tmp_path):
    """One params file with a section per instance: rviz of /front took the last section ending in the node's
    name (/rear's), and keys such as /**/not_fourds_perception, while the node read its own."""
    shared = tmp_path / "shared.yaml"
    shared.write_text(yaml.safe_dump({"/front/fourds_perception": {"ros__parameters": {"use_sim_time": True}},
                                      "/rear/fourds_perception": {"ros__parameters": {"use_sim_time": False}},
                                      "/**/not_fourds_perception": {"ros__parameters": {"use_sim_time": False}}}))
    assert node_use_sim_time(perception_node_plan(str(shared), namespace="front")) is True
    assert node_use_sim_time(perception_node_plan(str(shared), namespace="rear")) is False
    assert node_use_sim_time(perception_node_plan(str(shared))) is False  # no section for /fourds_perception


@pytest.mark.parametrize("key, node, matches", [
    ("/**", "/front/fourds_perception", True), ("/**/fourds_perception", "/fourds_perception", True),
    ("/**/fourds_perception", "/a/b/fourds_perception", True), ("/**/fourds_perception", "/rear/rear_perception", False),
    ("fourds_perception", "/fourds_perception", True), ("fourds_perception", "/front/fourds_perception", False),
    ("/*/fourds_perception", "/front/fourds_perception", True), ("/*/fourds_perception", "/a/b/fourds_perception", False),
    ("/**/not_fourds_perception", "/fourds_perception", False), ("/*", "/fourds_perception", True),
])
def test_params_keys_match_nodes_as_rcl_matches_them(key, node, matches):
    from fourds_ros.ros.launch_logic import params_key_matches

    assert params_key_matches(key, node) is matches


def test_nested_namespaces_in_a_params_file_are_sections_as_rcl_reads_them(tmp_path):
    """rcl reads `front:` / `fourds_perception:` / `ros__parameters:` as /front/fourds_perception: the node
    warned such a file had no section for it, and rviz missed its use_sim_time."""
    from fourds_ros.ros.launch_logic import params_sections

    nested = {"front": {"fourds_perception": {"ros__parameters": {"use_sim_time": True}}},
              "/**": {"ros__parameters": {"hop": 2}}}
    assert params_sections(nested) == [("front/fourds_perception", {"use_sim_time": True}), ("/**", {"hop": 2})]
    params = tmp_path / "nested.yaml"
    params.write_text(yaml.safe_dump(nested))
    assert node_use_sim_time(perception_node_plan(str(params), namespace="front")) is True
    assert node_use_sim_time(perception_node_plan(str(params), namespace="rear")) is False
