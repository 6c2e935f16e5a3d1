"""How the perception node is started, as plain tested functions (no launch imports).

This is the one way the node's command line is built: the launch file, the test harness
(ros/harness.run_node) and the evaluation replay (evaluation/replay.node_command) all go through
`node_plan` / `perception_node_plan` and `command_line`.

- `perception_node_plan(...)` resolves the launch file's arguments (strings, as launch gives
  them) into a plan: package, executable, node name, namespace, parameter files and overrides,
  remappings and ROS arguments.
- `node_plan(...)` is the same plan built from already-typed values (what harness and replay use).
- `rviz_plan(...)` is the optional rviz2 node of `rviz:=true`.
- The launch file turns a plan into a launch_ros Node; `command_line(plan)` turns it into the
  equivalent `perception_node --ros-args ...` argv (what `ros2 run` / `ros2 launch` execute).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

PACKAGE = "fourds_ros"
EXECUTABLE = "perception_node"
NODE_NAME = "fourds_perception"
# Key of the node's section in a params file: a plain "fourds_perception" matches only the node
# at the root namespace, so under `namespace:=robot` the file was silently ignored.
PARAMS_KEY = f"/**/{NODE_NAME}"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
IMAGE_TRANSPORTS = ("raw", "compressed")
REPO = Path(__file__).resolve().parents[2]


def share_file(*parts: str) -> Path:
    """<share>/fourds_ros/<parts> when the package is installed in an ament prefix, else the
    source tree's copy (running from a checkout without an install)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory(PACKAGE)).joinpath(*parts)
        if installed.exists():
            return installed
    except Exception:  # ament_index_python missing, or the package is in no ament prefix
        pass
    return REPO.joinpath(*parts)


def default_params_file() -> Path:
    return share_file("config", "perception.yaml")


def default_rviz_config() -> Path:
    return share_file("config", "fourds.rviz")


# Fast DDS 3 (Kilted on) reads FASTDDS_DEFAULT_PROFILES_FILE and warns on the legacy name; Fast DDS 2
# (Humble's 2.6, Jazzy's 2.14) reads only FASTRTPS_DEFAULT_PROFILES_FILE, so the new name alone left
# the large-frames profile silently unused there (ros2_documentation#6098, rmw_fastrtps#862).
FASTDDS_PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
FASTRTPS_PROFILE_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"
PROFILE_VARIABLES = (FASTDDS_PROFILE_VARIABLE, FASTRTPS_PROFILE_VARIABLE)
FIRST_FASTDDS3_DISTRO = "kilted"


def profile_variable(environ) -> str:
    """The profile variable the Fast DDS of `environ`'s ROS_DISTRO reads. ROS 2 names its distros in
    alphabetical order ("rolling" sorts after all so far, and is on Fast DDS 3), so every name
    before "kilted" is on Fast DDS 2; no ROS_DISTRO (the pip wheels here are Kilted's) takes the
    current name."""
    distro = str(environ.get("ROS_DISTRO", "")).strip().lower()
    return FASTRTPS_PROFILE_VARIABLE if distro and distro < FIRST_FASTDDS3_DISTRO else FASTDDS_PROFILE_VARIABLE


def profile_already_set(environ) -> bool:
    """Whether `environ` names a profile its distro's Fast DDS reads: either name from Kilted on (the
    legacy one still read there), only the legacy one before (a FASTDDS_ name on Humble, which the
    README once gave, is ignored by Fast DDS 2 and must not keep the package's profile out)."""
    variable = profile_variable(environ)
    names = PROFILE_VARIABLES if variable == FASTDDS_PROFILE_VARIABLE else (variable,)
    return any(environ.get(name) for name in names)


def fastdds_environment(environ, profile: str = "") -> dict[str, str]:
    """What the node's process (and, in tests and benchmarks, the camera's) adds to its environment
    for Fast DDS, in the variable its distro's Fast DDS reads (profile_variable). profile ""
    (default): the package's config/fastdds_large_frames.xml (shared-memory segments larger than a
    camera frame; why in that file) unless `environ` already names a profile file its Fast DDS reads
    (profile_already_set), which then stands (a robot's own profile set by the legacy name is still
    read on Kilted, and one beside it would be loaded too); "none": nothing added (Fast DDS's own defaults unless
    the environment names a profile); else a file path.
    Raises ValueError for a path that does not exist."""
    if profile == "none" or (not profile and profile_already_set(environ)):
        return {}
    path = Path(profile) if profile else share_file("config", "fastdds_large_frames.xml")
    if not path.is_file():
        raise ValueError(f"fastdds_profile {str(path)!r} does not exist")
    return {profile_variable(environ): str(path)}


def module_command() -> list[str]:
    """The node run from this interpreter's fourds_ros (tests and evaluation, where the
    installed console script may belong to another prefix)."""
    return [sys.executable, "-m", "fourds_ros.ros.perception_node"]


def as_bool(value, name: str) -> bool:
    """A launch argument or params-file value `name` read as a boolean; ValueError naming `name` (launch shows the
    error's line alone: "expected true or false, got 'maybe'" named no argument)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name}: expected true or false, got {value!r}")


def topic_remappings(image_topic: str = "image", camera_info_topic: str = "") -> list[tuple[str, str]]:
    """Remappings of the node's inputs. The image topic is remapped with its image_transport
    sibling `<image_topic>/compressed`, so either transport follows one argument. camera_info is remapped
    only when given: else the node takes the image's sibling (transforms.camera_info_topic)."""
    remappings = []
    if image_topic.rstrip("/").endswith("/compressed"):  # it subscribed .../compressed/compressed: nothing came, OK
        raise ValueError(f"image_topic {image_topic!r}: give the raw image's topic, without /compressed (image_transport"
                         ":=compressed subscribes its /compressed sibling)")
    if image_topic and image_topic != "image":
        remappings += [("image", image_topic), ("image/compressed", image_topic.rstrip("/") + "/compressed")]
    if camera_info_topic:  # even `camera_info` itself: the node then takes it as named (transforms.camera_info_topic)
        remappings.append(("camera_info", camera_info_topic))
    return remappings


def node_plan(params_files=(), overrides: dict | None = None, namespace: str = "",
              remappings=(), log_level: str | None = None) -> dict:
    """The perception node with parameter files (applied in order), parameter overrides (which
    win over the files), remappings and namespace."""
    if log_level is not None and log_level.lower() not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {LOG_LEVELS}, got {log_level!r}")
    parameters = [str(p) for p in params_files] + ([dict(overrides)] if overrides else [])
    return {
        "package": PACKAGE, "executable": EXECUTABLE, "name": NODE_NAME,
        "namespace": namespace.strip("/"), "parameters": parameters,
        "remappings": list(remappings),
        "ros_arguments": ["--log-level", log_level.lower()] if log_level else [],
    }


def perception_node_plan(params_file: str = "", namespace: str = "", use_sim_time="",
                         log_level: str = "info", autostart="", publish_tf="", model: str = "",
                         image_topic: str = "image", camera_info_topic: str = "",
                         image_transport: str = "", reference_odom_topic: str = "", reference_depth_topic: str = "",
                         fastdds_profile: str = "", environ=None) -> dict:
    """Launch arguments (strings, as launch gives them) -> the node to run. Raises ValueError
    naming the bad argument. Empty model / image_transport / use_sim_time / autostart / publish_tf leave the
    params file's value (a launch default would override it: `autostart: false` in the file, for a
    lifecycle manager, was overridden by the launch's true and the node activated itself). A
    reference_odom_topic (the robot's own odometry, e.g. the wheels) sets metric_scale_source:
    reference_odometry and remaps reference_odom to it; a reference_depth_topic (an RGB-D camera's
    depth registered to the colour image) sets reference_depth and remaps reference_depth to it
    (not both). fastdds_profile: see fastdds_environment
    (environ: the launch's environment, default os.environ, whose ROS_DISTRO picks the variable);
    the plan's "env" holds the result."""
    params = Path(params_file) if params_file else default_params_file()
    if not params.is_file():
        raise ValueError(f"params_file {str(params)!r} does not exist")
    overrides = {name: as_bool(value, name) for name, value in (("use_sim_time", use_sim_time), ("autostart", autostart),
                                                          ("publish_tf", publish_tf)) if str(value).strip()}
    if model:
        if not (Path(model) / "config.json").exists():
            raise ValueError(f"model {model!r} is not a checkpoint directory (no config.json)")
        overrides["model"] = str(model)
    if image_transport:
        if image_transport not in IMAGE_TRANSPORTS:
            raise ValueError(f"image_transport must be one of {IMAGE_TRANSPORTS}, got {image_transport!r}")
        overrides["image_transport"] = image_transport
    remappings = topic_remappings(image_topic, camera_info_topic)
    if reference_odom_topic and reference_depth_topic:
        raise ValueError("reference_odom_topic and reference_depth_topic: give one source of metres")
    if reference_odom_topic:
        overrides["metric_scale_source"] = "reference_odometry"
        remappings.append(("reference_odom", reference_odom_topic))
    if reference_depth_topic:
        overrides["metric_scale_source"] = "reference_depth"
        remappings.append(("reference_depth", reference_depth_topic))
    plan = node_plan([params], overrides, namespace, remappings, log_level)
    plan["env"] = fastdds_environment(os.environ if environ is None else environ, fastdds_profile)
    if fastdds_profile == "none":  # kept by the node's process, which names the package profile otherwise
        from ..ros_env import FASTDDS_CHOICE_VARIABLE

        plan["env"][FASTDDS_CHOICE_VARIABLE] = "none"
    return plan


def node_use_sim_time(plan: dict) -> bool:
    """The perception node's use_sim_time as its plan gives it: the launch argument's override, else the last
    params file that sets it for this node (under /**, or a key naming the node), else false. Why: `rviz:=true`
    took the launch argument alone, so with use_sim_time set in the params file rviz ran on wall time beside a
    node on a bag's time, and dropped its data and TF as too old."""
    import yaml

    value = False
    node = node_name(plan["namespace"], plan["name"])
    for entry in plan["parameters"]:
        if isinstance(entry, dict):
            value = as_bool(entry.get("use_sim_time", value), "use_sim_time")
            continue
        for key, parameters in params_sections(yaml.safe_load(Path(entry).read_text())):
            if params_key_matches(key, node):  # another instance's section is not this node's
                value = as_bool(parameters.get("use_sim_time", value), f"use_sim_time in {entry}")
    return value


def params_sections(document) -> list[tuple[str, dict]]:
    """A params file's (node key, its ros__parameters) sections, as rcl reads them: a key's namespaces may
    also be nested (`front:` then `fourds_perception:` then `ros__parameters:` is /front/fourds_perception)."""
    sections = []
    for key, value in (document or {}).items() if isinstance(document, dict) else ():
        if not isinstance(value, dict):
            continue
        if "ros__parameters" in value:
            sections.append((str(key), value["ros__parameters"] or {}))
        sections += [(f"{str(key).rstrip('/')}/{inner.lstrip('/')}", parameters)
                     for inner, parameters in params_sections({k: v for k, v in value.items() if k != "ros__parameters"})]
    return sections


def node_name(namespace: str, name: str) -> str:
    """The fully qualified node name: ("front", "fourds_perception") -> "/front/fourds_perception"."""
    return "/" + "/".join(part for part in (namespace.strip("/"), name) if part)


def params_key_matches(key, node: str) -> bool:
    """Whether a params file's node key (params_sections') applies to the node of fully qualified name `node`,
    as rcl matches them: a `**` token any number of names, a `*` token any one, a key without a leading slash
    at the root. "/**/fourds_perception" matches the node in any namespace, and no node renamed."""
    pattern = ""
    for token in str(key).strip("/").split("/"):
        pattern += {"**": r"(?:/[^/]+)*", "*": "/[^/]+"}.get(token, "/" + re.escape(token))
    return re.fullmatch(pattern, node) is not None


def rviz_plan(rviz="false", namespace: str = "", use_sim_time="", config: str = "") -> dict | None:
    """The rviz2 node of `rviz:=true` (None when false), showing config/fourds.rviz. It runs in
    the perception node's namespace so that the config's relative topic names find its outputs.
    use_sim_time: the node's (node_use_sim_time), so that both run on one clock."""
    if not as_bool(rviz, "rviz"):
        return None
    path = Path(config) if config else default_rviz_config()
    if not path.is_file():
        raise ValueError(f"rviz config {str(path)!r} does not exist")
    return {"package": "rviz2", "executable": "rviz2", "name": "rviz2", "namespace": namespace.strip("/"),
            "arguments": ["-d", str(path)],
            "parameters": [{"use_sim_time": as_bool(use_sim_time or "false", "use_sim_time")}]}


def _parameter_value(value) -> str:
    """A -p value in ROS's YAML syntax: true/false lowercase, lists as [a, b]."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_parameter_value(v) for v in value) + "]"
    return str(value)


def command_line(plan: dict, executable: str | list[str] | None = None) -> list[str]:
    """The plan as `perception_node --ros-args ...` argv (what ros2 run / ros2 launch execute).
    executable: a path, or a whole argv prefix such as module_command()."""
    prefix = [executable] if isinstance(executable, str) else list(executable or [plan["executable"]])
    argv = prefix + ["--ros-args", "-r", f"__node:={plan['name']}"]
    if plan["namespace"]:
        argv += ["-r", f"__ns:=/{plan['namespace']}"]
    for p in plan["parameters"]:
        if isinstance(p, dict):
            for k, v in p.items():
                argv += ["-p", f"{k}:={_parameter_value(v)}"]
        else:
            argv += ["--params-file", str(p)]
    for src, dst in plan["remappings"]:
        argv += ["-r", f"{src}:={dst}"]
    return argv + plan["ros_arguments"]
