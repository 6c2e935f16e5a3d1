"""Launch the fourds_perception lifecycle node.

    ros2 launch fourds_ros perception.launch.py namespace:=fourds image_topic:=/camera/image_raw

Arguments: params_file, namespace, use_sim_time, log_level, autostart, model, image_topic,
camera_info_topic. The logic is fourds_ros.ros.launch_logic.perception_node_plan (unit tested).
"""

from fourds_ros.ros.launch_logic import perception_node_plan

ARGUMENTS = {
    "params_file": ("", "parameter YAML (default: the package's config/perception.yaml)"),
    "namespace": ("", "namespace of the node and its topics"),
    "use_sim_time": ("false", "use /clock"),
    "log_level": ("info", "debug, info, warn, error or fatal"),
    "autostart": ("true", "configure and activate at start-up"),
    "model": ("", "checkpoint directory (default: from params_file)"),
    "image_topic": ("image", "input sensor_msgs/Image topic"),
    "camera_info_topic": ("camera_info", "input sensor_msgs/CameraInfo topic"),
}


def _node(context):
    from launch_ros.actions import LifecycleNode

    plan = perception_node_plan(**{k: context.perform_substitution(
        __import__("launch").substitutions.LaunchConfiguration(k)) for k in ARGUMENTS})
    return [LifecycleNode(package=plan["package"], executable=plan["executable"], name=plan["name"],
                          namespace=plan["namespace"], parameters=plan["parameters"],
                          remappings=plan["remappings"], ros_arguments=plan["ros_arguments"],
                          output="screen")]


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=d, description=h) for k, (d, h) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_node)]
    )
