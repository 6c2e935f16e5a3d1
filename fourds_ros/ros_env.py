"""The environment every ROS subprocess gets (tests, harnesses, eval replay). No rclpy.

Fast DDS multicasts discovery on the external interface unless discovery is limited to
localhost; Kilted does that with ROS_AUTOMATIC_DISCOVERY_RANGE (its older switch is ignored).
"""

from __future__ import annotations

import os
import sys


def ros_environment(domain_id: int | None = None, base: dict | None = None) -> dict:
    """A copy of `base` (default os.environ) with loopback-only discovery, `domain_id` when given,
    this interpreter's prefix on AMENT_PREFIX_PATH (get_package_share_directory finds the venv)
    and unbuffered Python output."""
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    prefix = env.get("AMENT_PREFIX_PATH", "")
    if sys.prefix not in prefix.split(os.pathsep):
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (sys.prefix, prefix) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env
