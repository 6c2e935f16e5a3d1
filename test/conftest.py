"""Shared fixtures. Paths to ../shared/data, tiny checkpoints made at test time, ROS env."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
REFERENCE = SHARED_DATA / "4ds_reference"

torch.set_num_threads(min(2, os.cpu_count() or 1))
# Never let Fast DDS multicast on the external interface, even if a test forgets.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    """SIGTERM (`timeout`, a CI job cancelled) ends the run as Ctrl-C does: the tests' `finally` blocks then
    stop the nodes and probes they started. Python's default for SIGTERM ran none of them, and the node
    spun on, reparented to init, holding its DDS shared memory."""
    import signal

    signal.signal(signal.SIGTERM, _interrupted)


def pytest_sessionfinish(session, exitstatus):
    """A selection that matches no test fails the run: colcon test counts pytest's "no tests collected"
    as a pass, so `make test PYTEST_ARGS="-k typo"` used to pass having tested nothing."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("\nno test matched the selection (PYTEST_ARGS); failing instead of passing on nothing")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def require(path: Path) -> Path:
    """Skip when shared data is absent on a developer machine; in CI (CI=true) it must be there."""
    if not path.exists():
        message = f"{path} not present (../shared/data is not beside this clone)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextlib.contextmanager
def own_ros_domain():
    """The domain id of one test's ROS processes: ros_env.free_domain (one nothing else on the host uses, so
    the suite run on a robot's computer never reaches its live nodes), or FOURDS_TEST_DOMAIN."""
    from fourds_ros.ros_env import free_domain

    if os.environ.get("FOURDS_TEST_DOMAIN"):
        yield int(os.environ["FOURDS_TEST_DOMAIN"])
        return
    with free_domain() as domain:
        yield domain


@pytest.fixture
def ros_env():
    """Environment for a ROS subprocess: loopback discovery, a domain id of its own (own_ros_domain), ament index."""
    from fourds_ros.ros_env import ros_environment

    with own_ros_domain() as domain:
        yield ros_environment(domain)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised micro model with all three heads, saved in our checkpoint format."""
    from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, save_checkpoint

    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), patch_size=(2, 16, 16),
                      heads=default_heads(32, 2))
    model = init_weights(FourDS(cfg), seed=0)
    return save_checkpoint(model, tmp_path_factory.mktemp("models") / "micro")


def stop_process(proc, timeout_s: float = 20.0) -> None:
    """A ROS process started by a test: SIGINT, then SIGTERM; never SIGKILL (it leaks DDS shared memory)."""
    from fourds_ros.ros_env import stop_ros_process

    stop_ros_process(proc, timeout_s)


def wait_for(predicate, timeout_s: float = 5.0) -> bool:
    """Poll predicate() until true or timeout_s has passed (threads under test on a loaded machine)."""

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


@pytest.fixture(scope="session")
def shipped_engine():
    """The shipped default model on the torch backend, for the pipeline tests on real frames."""
    from fourds_ros.engine import create_engine

    return create_engine(REPO / "models" / "fourds_default", backend="torch")
