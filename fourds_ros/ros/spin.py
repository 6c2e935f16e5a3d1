"""Spinning a node until the process is told to stop (SIGINT, SIGTERM, ros2 launch shutting down)."""

from __future__ import annotations

from rclpy.executors import ExternalShutdownException
from rclpy.subscription import RCLError


def spin_until_shutdown(spin, context) -> bool:
    """Run spin() (an executor's or rclpy's) until shutdown; a requested shutdown is not an error.
    SIGINT/SIGTERM can invalidate the context between the executor's shutdown check and its next
    wait set, which raises RCLError instead of ExternalShutdownException (2 of ~50 node stops in
    CI): with the context no longer ok that is the requested shutdown too. -> whether a shutdown was requested
    (a signal, ros2 launch): the context may still be ok for a moment after a KeyboardInterrupt, since rclpy
    shuts it down from its own signal thread."""
    try:
        spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        return True
    except RCLError:
        if context.ok():
            raise
        return True
    return not context.ok()
