"""The logic of launch/perception.launch.py as a plain, tested function (no launch imports).

`perception_node_plan(...)` resolves the launch arguments into what to run: package,
executable, node name, namespace, parameter files/overrides, remappings and ROS arguments.
The launch file turns the plan into a launch_ros Node; `command_line(plan)` turns it into the
equivalent `perception_node --ros-args ...` argv (used when launch_ros is not installed).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "fourds_ros"
EXECUTABLE = "perception_node"
NODE_NAME = "fourds_perception"
# Key of the node's section in a params file: a plain "fourds_perception" matches only the node
# at the root namespace, so under `namespace:=robot` the file was silently ignored.
PARAMS_KEY = f"/**/{NODE_NAME}"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
REPO = Path(__file__).resolve().parents[2]


def default_params_file() -> Path:
    """<share>/config/perception.yaml when installed, else the source tree's config/."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory(PACKAGE)) / "config" / "perception.yaml"
        if installed.exists():
            return installed
    except Exception:  # package not in an ament prefix
        pass
    return REPO / "config" / "perception.yaml"


def as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def perception_node_plan(params_file: str = "", namespace: str = "", use_sim_time="false",
                         log_level: str = "info", autostart="true", model: str = "",
                         image_topic: str = "image", camera_info_topic: str = "camera_info") -> dict:
    """Launch arguments (strings, as launch gives them) -> the node to run. Raises ValueError
    naming the bad argument."""
    params = Path(params_file) if params_file else default_params_file()
    if not params.is_file():
        raise ValueError(f"params_file {str(params)!r} does not exist")
    if log_level.lower() not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {LOG_LEVELS}, got {log_level!r}")
    overrides = {"use_sim_time": as_bool(use_sim_time), "autostart": as_bool(autostart)}
    if model:
        if not (Path(model) / "config.json").exists():
            raise ValueError(f"model {model!r} is not a checkpoint directory (no config.json)")
        overrides["model"] = str(model)
    remappings = []
    if image_topic != "image":
        remappings += [("image", image_topic), ("image/compressed", image_topic.rstrip("/") + "/compressed")]
    if camera_info_topic != "camera_info":
        remappings.append(("camera_info", camera_info_topic))
    return {
        "package": PACKAGE, "executable": EXECUTABLE, "name": NODE_NAME,
        "namespace": namespace.strip("/"), "parameters": [str(params), overrides],
        "remappings": remappings, "ros_arguments": ["--log-level", log_level.lower()],
    }


def command_line(plan: dict, executable: str | None = None) -> list[str]:
    """The plan as `perception_node --ros-args ...` argv (ros2 run equivalent)."""
    argv = [executable or plan["executable"], "--ros-args", "-r", f"__node:={plan['name']}"]
    if plan["namespace"]:
        argv += ["-r", f"__ns:=/{plan['namespace']}"]
    for p in plan["parameters"]:
        if isinstance(p, dict):
            for k, v in p.items():
                argv += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
        else:
            argv += ["--params-file", p]
    for src, dst in plan["remappings"]:
        argv += ["-r", f"{src}:={dst}"]
    return argv + plan["ros_arguments"]
