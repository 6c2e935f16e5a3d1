"""Launch the fourds_perception lifecycle node (and rviz2 with rviz:=true).

    ros2 launch fourds_ros perception.launch.py image_topic:=/camera/color/image_raw \
        camera_info_topic:=/camera/color/camera_info

Arguments: params_file, namespace, use_sim_time, log_level, autostart, publish_tf, model, image_topic,
camera_info_topic, image_transport, reference_odom_topic, reference_depth_topic, fastdds_profile, rviz. All logic is in fourds_ros.ros.launch_logic
(perception_node_plan, rviz_plan: plain unit-tested functions); this file only maps plans to
launch_ros actions.
"""

from fourds_ros.ros.launch_logic import node_use_sim_time, perception_node_plan, rviz_plan

ARGUMENTS = {
    "params_file": ("", "parameter YAML (default: the package's config/perception.yaml)"),
    "namespace": ("", "namespace of the node and its topics"),
    "use_sim_time": ("", "use /clock (default: from params_file, else false)"),
    "log_level": ("info", "debug, info, warn, error or fatal"),
    "autostart": ("", "configure and activate at start-up (default: from params_file, else true)"),
    "publish_tf": ("", "publish odom -> base_link on /tf (default: from params_file, else true); false when "
                   "robot_localization's EKF owns it"),
    "model": ("", "checkpoint directory (default: from params_file, else the installed default)"),
    "image_topic": ("image", "input image topic (raw; <image_topic>/compressed for compressed)"),
    "camera_info_topic": ("", "input sensor_msgs/CameraInfo topic (default: the image topic's sibling, "
                          "/cam/image_raw -> /cam/camera_info, as image_transport pairs them)"),
    "image_transport": ("", "raw or compressed (default: from params_file)"),
    "reference_odom_topic": ("", "the robot's own nav_msgs/Odometry (e.g. the wheels): depth and odometry in its "
                             "metres (metric_scale_source: reference_odometry); empty: the model's metres"),
    "reference_depth_topic": ("", "an RGB-D camera's depth registered to the colour image (e.g. aligned_depth_to_color):"
                              " depth and odometry in its metres (metric_scale_source: reference_depth)"),
    "fastdds_profile": ("", "Fast DDS profile file for the node ('' the package's config/fastdds_large_frames.xml "
                        "unless FASTDDS_DEFAULT_PROFILES_FILE or FASTRTPS_DEFAULT_PROFILES_FILE is set; 'none': "
                        "none added), exported as FASTRTPS_DEFAULT_PROFILES_FILE before Kilted (ROS_DISTRO humble, "
                        "jazzy: Fast DDS 2 reads only that), else FASTDDS_DEFAULT_PROFILES_FILE"),
    "rviz": ("false", "also start rviz2 with config/fourds.rviz"),
}
NODE_ARGUMENTS = [k for k in ARGUMENTS if k != "rviz"]


def _actions(context):
    from launch_ros.actions import LifecycleNode, Node

    args = {k: context.launch_configurations.get(k, default) for k, (default, _) in ARGUMENTS.items()}
    plan = perception_node_plan(**{k: args[k] for k in NODE_ARGUMENTS})
    actions = [LifecycleNode(package=plan["package"], executable=plan["executable"], name=plan["name"],
                             namespace=plan["namespace"], parameters=plan["parameters"],
                             remappings=plan["remappings"], ros_arguments=plan["ros_arguments"],
                             additional_env=plan["env"], output="screen")]
    rviz = rviz_plan(args["rviz"], args["namespace"], node_use_sim_time(plan))
    if rviz:
        actions.append(Node(package=rviz["package"], executable=rviz["executable"], name=rviz["name"],
                            namespace=rviz["namespace"], arguments=rviz["arguments"],
                            parameters=rviz["parameters"], output="screen"))
    return actions


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=d, description=h) for k, (d, h) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_actions)]
    )
