"""The environment every ROS subprocess gets (tests, harnesses, eval replay, the install-tree
node). No rclpy. This is the one helper for it; harness.ros_env and replay.ros_environment call it.

Fast DDS multicasts discovery on the external interface unless discovery is limited to
localhost; Kilted does that with ROS_AUTOMATIC_DISCOVERY_RANGE (its older switch is ignored).
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# Set in an environment made with fastdds_profile "none", so that passing it through
# ros_environment again (replay and harness helpers do) keeps Fast DDS's defaults instead of adding
# the package profile back (session 34 found a benchmark measuring the profile that way).
FASTDDS_CHOICE_VARIABLE = "FOURDS_ROS_FASTDDS_PROFILE"


FASTDDS_PORT_BASE, FASTDDS_DOMAIN_PORTS = 7400, 250  # RTPS ports of domain d: 7400 + 250 d + (0..249)
SHARED_MEMORY = "/dev/shm"  # where Fast DDS keeps a file per port in use (fastdds_portN)
DOMAINS = range(1, 201)  # the ids handed out (ROS 2 allows 0-232 on Linux; 0 is every default's)


def domain_in_use(domain: int) -> bool:
    """Fast DDS participants of `domain` on this host: their shared-memory port files (fastdds_portN)."""
    low = FASTDDS_PORT_BASE + FASTDDS_DOMAIN_PORTS * domain
    try:
        names = os.listdir(SHARED_MEMORY)
    except OSError:
        return False
    ports = (name[len("fastdds_port"):].split("_")[0] for name in names if name.startswith("fastdds_port"))
    return any(port.isdigit() and low <= int(port) < low + FASTDDS_DOMAIN_PORTS for port in ports)


@contextlib.contextmanager
def free_domain() -> Iterator[int]:
    """A ROS domain id nothing else on this host uses, for processes this package starts and talks to alone:
    not the environment's ROS_DOMAIN_ID (a live robot's), none with Fast DDS participants here, none another
    of this package's processes holds (a lock file per id, held until the block ends). Loopback discovery
    alone does not keep them apart: a bag replayed on the robot's own domain put its odom -> base_link on
    the robot's /tf; a test's random id joined a soak's live node."""
    import fcntl

    live = os.environ.get("ROS_DOMAIN_ID", "")
    for domain in random.Random(os.getpid() ^ time.time_ns()).sample(DOMAINS, len(DOMAINS)):
        if str(domain) == live or domain_in_use(domain):
            continue
        try:
            lock = os.open(os.path.join(tempfile.gettempdir(), f"fourds_ros_domain_{domain}.lock"),
                           os.O_CREAT | os.O_RDWR, 0o600)
        except OSError:  # another user's (0600): taken as held
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another of this package's processes holds it
            os.close(lock)
            continue
        try:
            yield domain
        finally:
            os.close(lock)
        return
    raise RuntimeError(f"no ROS domain id of {DOMAINS.start}-{DOMAINS.stop - 1} is free on this host")


_PRIVATE: list = []  # this process's private_domain: [(its id, the free_domain holding it)]


def private_domain() -> int:
    """A free_domain of this process's own, held until it exits: the domain of the node and the camera or
    replay that `fourds-ros eval` and the benchmarks start and measure."""
    if not _PRIVATE:
        held = free_domain()
        _PRIVATE.append((held.__enter__(), held))
    return _PRIVATE[0][0]


def _prepend(env: dict, key: str, *paths: str) -> None:
    old = [p for p in env.get(key, "").split(os.pathsep) if p and p not in paths]
    env[key] = os.pathsep.join([*paths, *old])


def _append(env: dict, key: str, path: str) -> None:
    old = [p for p in env.get(key, "").split(os.pathsep) if p]
    if path not in old:
        env[key] = os.pathsep.join([*old, path])


def ros_environment(domain_id: int | None = None, base: dict | None = None,
                    package_prefix: str | Path | None = None, fastdds_profile: str | None = "") -> dict:
    """A copy of `base` (default os.environ) with loopback-only discovery, `domain_id` when given
    and unbuffered Python output. This interpreter's prefix is appended to AMENT_PREFIX_PATH (the
    pip ROS wheels and the venv's share/fourds_ros are found there), after any ROS install or
    colcon install tree the caller already has on it. fastdds_profile: as the launch file's argument
    (launch_logic.fastdds_environment: "" the package's large-frames profile unless one is set,
    "none" Fast DDS's defaults, or a path); None leaves the environment's as it is. "" keeps an
    earlier "none" of `base` (FASTDDS_CHOICE_VARIABLE).

    package_prefix: a colcon install prefix of one package (install/fourds_ros), put first the way
    `source install/setup.bash` does: AMENT_PREFIX_PATH, PYTHONPATH (its site-packages), PATH."""
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    _append(env, "AMENT_PREFIX_PATH", sys.prefix)
    if package_prefix is not None:
        prefix = Path(package_prefix).resolve()
        site = sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)})
        _prepend(env, "AMENT_PREFIX_PATH", str(prefix))
        _prepend(env, "PYTHONPATH", site)
        _prepend(env, "PATH", str(prefix / "bin"))
    env["PYTHONUNBUFFERED"] = "1"
    if fastdds_profile is not None:  # the node's and the camera's, as the launch file and README set them
        from .ros.launch_logic import PROFILE_VARIABLES, fastdds_environment

        if not fastdds_profile and env.get(FASTDDS_CHOICE_VARIABLE) == "none":
            fastdds_profile = "none"
        env.pop(FASTDDS_CHOICE_VARIABLE, None)
        if fastdds_profile == "none":
            for name in PROFILE_VARIABLES:  # either name applies a profile (Fast DDS 2 reads the legacy one)
                env.pop(name, None)
            env[FASTDDS_CHOICE_VARIABLE] = "none"
        env.update(fastdds_environment(env, fastdds_profile))
    return env


def stop_ros_process(proc, timeout_s: float = 20.0) -> int | None:
    """A ROS process this package started (the node, a replay, a probe): SIGINT, then SIGTERM after
    timeout_s; never SIGKILL, which leaks its Fast DDS shared memory. -> its exit code."""
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=timeout_s)
    return proc.returncode


def run_ros_process(cmd: list[str], env: dict, timeout_s: float):
    """subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s) for a ROS process, stopped as
    stop_ros_process does when the timeout passes or anything interrupts the wait: subprocess.run's SIGKILL
    left the process's Fast DDS shared memory (35 MB) in /dev/shm. Raises subprocess.TimeoutExpired as run does."""
    import subprocess

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except BaseException:
        stop_ros_process(proc)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
