"""Evaluation: datasets to rosbag2, metrics, classical peers, reports. No rclpy here except in
`replay.py`, which drives the real node over DDS."""
