"""fourds_ros: 4DS video features on ROS 2 robots (depth, point tracks, camera pose)."""

__version__ = "0.1.0"
