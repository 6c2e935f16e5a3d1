"""spin_until_shutdown: a stop requested by a signal ends the spin quietly, whichever way rclpy
reports it; a real error while the context is still valid is raised."""

import pytest
from rclpy.executors import ExternalShutdownException
from rclpy.subscription import RCLError

from fourds_ros.ros.spin import spin_until_shutdown


class Context:
    def __init__(self, ok: bool):
        self._ok = ok

    def ok(self) -> bool:
        return self._ok


def raising(exc):
    def spin():
        raise exc
    return spin


def test_a_requested_shutdown_is_quiet_and_a_real_error_is_not():
    spin_until_shutdown(raising(ExternalShutdownException()), Context(ok=False))
    spin_until_shutdown(raising(KeyboardInterrupt()), Context(ok=True))
    # the race seen in CI: the context went invalid between the executor's check and its wait set
    spin_until_shutdown(raising(RCLError("failed to initialize wait set: context is not valid")), Context(ok=False))
    with pytest.raises(RCLError):
        spin_until_shutdown(raising(RCLError("a real failure")), Context(ok=True))
