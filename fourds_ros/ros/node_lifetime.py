"""The node process from start to exit: autostart, spinning until SIGINT/SIGTERM, and the release, whenever
the signal comes (during autostart's configure, during the spin, or again while the release waits)."""

from __future__ import annotations

import os
import signal
import sys
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.utilities import remove_ros_args

from .spin import quiet_interrupted_futures, spin_until_shutdown


NODE_USAGE = ("usage: ros2 run fourds_ros perception_node [--ros-args [--params-file FILE] [-p NAME:=VALUE ...] "
              "[-r FROM:=TO ...]]\nEvery parameter with its default and description, as a params file:\n")


def use_package_fastdds_profile(environ) -> None:
    """Name the package's Fast DDS profile (launch_logic.fastdds_environment: config/fastdds_large_frames.xml,
    unless `environ` already names one) in `environ`, before any participant exists. Why here and not only in
    the launch file: started by `ros2 run` or a team's own launch, the node kept Fast DDS's 512 KB shared-memory
    segment, which a clip's burst of outputs overflows: reliable depth/camera_info samples were lost or came up
    to 0.5 s after their depth image (depth_image_proc pairs them by stamp). A profile that cannot be found
    leaves Fast DDS's defaults, said on stderr; so does a choice of none (the launch file's fastdds_profile:=none,
    `bench --fastdds-profile none`: ros_env.FASTDDS_CHOICE_VARIABLE)."""
    from ..ros_env import FASTDDS_CHOICE_VARIABLE
    from .launch_logic import fastdds_environment

    if environ.get(FASTDDS_CHOICE_VARIABLE) == "none":
        return
    try:
        environ.update(fastdds_environment(environ))
    except ValueError as exc:  # the package's share folder is not installed (a bare checkout)
        print(f"perception_node: {exc}: Fast DDS keeps its defaults (a clip's outputs may overflow its 512 KB "
              "shared-memory segment)", file=sys.stderr)


def init_ros(argv: list[str]) -> int | None:
    """rclpy.init(args=argv): None to go on, or the exit code where the process ends here.
    - `--help` (outside --ros-args): the usage and every parameter, exit 0. Why: it started the node.
    - rcl refuses the arguments: one line on stderr, exit 2. Why: rcl reads the params file and `-p`
      overrides itself, and refuses a list that mixes whole numbers and decimals (base_from_camera:
      [0.1, 0, 0.3, ...]) before any node exists to fail configure with a reason: it was a traceback, and
      the process was gone."""
    try:
        if {"-h", "--help"} & set(remove_ros_args(argv)[1:]):
            from ..perception.settings import render_yaml

            print(NODE_USAGE + render_yaml(), end="")
            return 0
        use_package_fastdds_profile(os.environ)
        rclpy.init(args=argv)
        from ..engine import engine_cache

        engine_cache.keep_waiting = rclpy.ok  # a SIGTERM ends a wait for another process's engine build
    except RuntimeError as exc:  # rclpy's RCLError
        reason = str(exc).split(", at /")[0]  # rcl's own source locations follow
        # rcl's words for a list mixing types (from -p or a params file); other errors (a params file that
        # is not there, a bad -r) need no advice on decimals
        advice = (" A list parameter takes one type: write every number with a decimal point (0.0, not 0)."
                  if "Sequence should be of same type" in reason else "")
        print(f"perception_node: ROS cannot read its arguments or parameters: {reason}.{advice}", file=sys.stderr)
        return 2
    return None


def ros_arguments(init_args: list[str] | None, node_kwargs: dict) -> list[str]:
    """The arguments rcl took the node's remapping rules and params files from: those rclpy.init was given
    (init_args; None: sys.argv, rclpy.init's own default, where launch and `ros2 run` put them) unless the node
    ignores them (use_global_arguments=False), then the node's own cli_args (rcl takes them as ROS arguments; put
    inside --ros-args here, where transforms.remapped reads rules).
    Why: rclpy keeps neither list, and the node read sys.argv: a program embedding it (main(argv), its own
    rclpy.init(args=...)) gave it other rules than the process's, so camera_info was paired by rules rcl had not
    applied (transforms.camera_info_topic) and params files were warned of by the process's list, not the node's
    (parameters.params_files_not_for)."""
    args = list(sys.argv if init_args is None else init_args) if node_kwargs.get("use_global_arguments", True) else []
    if cli_args := node_kwargs.get("cli_args"):
        args += ["--ros-args", *cli_args]
    return args


def entry() -> int:
    """The node's process, `perception_node` (setup.py; `python -m fourds_ros.ros.perception_node` the same): main,
    then the process ends (run_until_shutdown's exiting). A program embedding the node calls perception_node.main,
    and its signals stay its own after main returns."""
    from .perception_node import main  # that module imports this one

    return main(exiting=True)


def run_until_shutdown(node, autostart: bool, exiting: bool = False) -> None:
    """Spin `node` (configured and activated first with `autostart`) until shutdown, then release it
    (node._release), destroy it and shut rclpy down. exiting: the process ends after (entry): SIGINT and SIGTERM
    are ignored from the shutdown on (ignore_stop_signals)."""
    quiet_interrupted_futures()
    # One thread (inference has its own): a second one's wait sets held the GIL and starved inference.
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def start_and_spin() -> None:
        # Inside the protected spin: configure can take many seconds (the model's warm-up), and a Ctrl-C
        # during it is a shutdown like any other (it was a KeyboardInterrupt traceback, exit code -2).
        if autostart and node.trigger_configure() == TransitionCallbackReturn.SUCCESS and node.context.ok():
            node.trigger_activate()
        executor.spin()

    try:
        # Read by the release (node._release): rclpy shuts the context down from its signal thread, and on a loaded
        # host the KeyboardInterrupt came first: the release took the context for alive and waited 10 s for a clip
        # that would not end, past launch's SIGTERM (CI, session 67).
        node.stop_requested = spin_until_shutdown(start_and_spin, node.context)
    finally:
        if exiting:
            ignore_stop_signals()
        release_until_done(node._release)
        node.destroy_node()
        # rclpy's LifecycleNode.destroy_node leaves its state machine, which holds the rcl node: with a clip
        # abandoned at release (its thread holds the node) the DDS participant outlived the process's end and
        # its 35 MB of shared memory stayed in /dev/shm. (A private attribute: an rclpy without it is left as it is.)
        state_machine = getattr(node, "_state_machine", None)
        if state_machine is not None:
            state_machine.destroy_when_not_in_use()
        if rclpy.ok():
            rclpy.try_shutdown()
        if exiting:  # rclpy's shutdown may have put its own handlers' predecessors back
            ignore_stop_signals()


def ignore_stop_signals() -> None:
    """SIGINT and SIGTERM ignored: the process is shutting down. After the release (whose waits are bounded:
    SIGNAL_RELEASE_WAIT_S) comes the interpreter's teardown, its modules and the DDS context, 0.2-0.6 s on this
    host: a second Ctrl-C there, 0.1-0.3 s after the first, or launch's SIGTERM, killed the process with exit code -2
    and no log line (ros2 launch: "process has died"), every time (session 70)."""
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_IGN)


def watch_clock_jumps(node, on_jump):
    """on_jump() at each jump of the node's clock forward by more than 1 s, back by any amount, or a change of its
    kind (a bag seek or loop under use_sim_time, a simulator reset, /clock's first message). -> the handle, to
    keep. Back by any amount, as tf2_ros's Buffer clears its transforms: with 1 s, a bag of 1 s or less on
    `ros2 bag play --loop --clock` was no jump, and the TF gate (tf_stamps.py) withheld every loop after the first."""
    from rclpy.clock import JumpThreshold
    from rclpy.duration import Duration

    return node.get_clock().create_jump_callback(
        JumpThreshold(min_forward=Duration(seconds=1), min_backward=Duration(nanoseconds=-1)),
        post_callback=lambda jump: on_jump())


def release_warning(node, text: str) -> None:
    """A WARN while the node releases. After a signal ROS's context is gone, and rosout's publisher with it:
    the logger then printed rcl's "Failed to publish log message to rosout" under the line, which read as a
    fault. The console alone then, in the logger's format."""
    if node.context.ok():
        node.get_logger().warning(text)
    else:
        print(f"[WARN] [{time.time():.9f}] [{node.get_logger().name}]: {text}", file=sys.stderr, flush=True)


def release_until_done(release) -> None:
    """release(), again after each KeyboardInterrupt: a second Ctrl-C while it waits for the running clip
    left the process with a traceback, exit code -2 and its DDS shared memory in /dev/shm."""
    while True:
        try:
            release()
            return
        except KeyboardInterrupt:
            continue
