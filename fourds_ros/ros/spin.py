"""Spinning a node until the process is told to stop (SIGINT, SIGTERM, ros2 launch shutting down)."""

from __future__ import annotations

import sys
import time

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
    except Exception as exc:
        # rclpy's take of a message whose __init__ a SIGINT interrupted raises RuntimeError("Unable to convert call
        # argument '0'"), its KeyboardInterrupt lost: the context rclpy's signal thread shuts down says it was one
        if not interrupted(exc) and not _shut_down_within(context, 0.5):
            raise
        return True
    return not context.ok()


def _shut_down_within(context, timeout_s: float) -> bool:
    """Whether the context is shut down within timeout_s (rclpy's signal thread shuts it down after a SIGINT)."""
    end = time.monotonic() + timeout_s
    while context.ok():
        if time.monotonic() >= end:
            return False
        time.sleep(0.01)
    return True


def interrupted(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt caused `exc`: a SIGINT landing while a callback ran inside rclpy's C code (a
    message's deserialization, its Python __init__) surfaced as pybind's TypeError "Unable to convert function return
    value" from the KeyboardInterrupt, and the node exited with a traceback and code 1 (CI, session 70)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def quiet_interrupted_futures() -> None:
    """Leave out of stderr the one report a SIGINT inside an rclpy Future's (a Task's) __init__ leaves: the object
    half made, its __del__ reads self._exception at garbage collection and Python prints "Exception ignored in
    Future.__del__ ... AttributeError: 'Task' object has no attribute '_exception'", a traceback in the log of a node
    that stopped cleanly (exit 0; once in CI, session 71). Any other unraisable error is reported as before."""
    previous = sys.unraisablehook
    if getattr(previous, "quiets_interrupted_futures", False):
        return

    def hook(unraisable) -> None:
        where = unraisable.object
        if not (isinstance(unraisable.exc_value, AttributeError) and getattr(where, "__module__", "") == "rclpy.task"
                and getattr(where, "__qualname__", "") == "Future.__del__"):
            previous(unraisable)

    hook.quiets_interrupted_futures = True
    sys.unraisablehook = hook

