"""ROS 2 adapters (rclpy). Thin: the algorithms live in fourds_ros.perception."""
