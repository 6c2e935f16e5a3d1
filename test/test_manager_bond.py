"""The bond nav2_lifecycle_manager waits for (ros/manager_bond.py). bondpy exists only where ROS is
installed, so its Bond is replaced here by a named test double that records how it is driven."""

import pytest

from fourds_ros.ros.manager_bond import BOND_TOPIC, HEARTBEAT_PERIOD_S, HEARTBEAT_TIMEOUT_S, ManagerBond, bondpy_bond


class BondpyBondTestDouble:
    """Stands in for bondpy.bondpy.Bond: keyword construction, timing set before start(), shutdown()."""

    made: list["BondpyBondTestDouble"] = []

    def __init__(self, *, node, topic, id):
        self.node, self.topic, self.id = node, topic, id
        self.heartbeat_period = self.heartbeat_timeout = None
        self.started = self.shut_down = False
        BondpyBondTestDouble.made.append(self)

    def start(self):
        assert self.heartbeat_period is not None and self.heartbeat_timeout is not None, "set before start()"
        self.started = True

    def shutdown(self):
        self.shut_down = True


class BrokenBondTestDouble(BondpyBondTestDouble):
    def start(self):
        raise RuntimeError("no bond/msg/Status type support")


class UnbreakableBondTestDouble(BondpyBondTestDouble):
    def shutdown(self):
        raise RuntimeError("publisher already destroyed")


class NodeName:
    """The one thing ManagerBond asks of its node (the node process itself is tested on real DDS in
    test_node_lifecycle); rclpy is never initialised in the pytest process."""

    def get_name(self):
        return "fourds_perception"


@pytest.fixture
def node():
    return NodeName()


def test_the_bond_is_nav2s_started_on_activate_and_broken_on_deactivate(node):
    BondpyBondTestDouble.made.clear()
    warnings = []
    bond = ManagerBond(node, warnings.append, BondpyBondTestDouble)
    assert bond.state.startswith("not started") and not BondpyBondTestDouble.made
    bond.start()
    (made,) = BondpyBondTestDouble.made
    # nav2_util::LifecycleNode's bond: topic "bond" (relative), id the node's name, 0.1 s / 4 s.
    assert (made.topic, made.id, made.node) == (BOND_TOPIC, "fourds_perception", node) and BOND_TOPIC == "bond"
    assert (made.heartbeat_period, made.heartbeat_timeout) == (HEARTBEAT_PERIOD_S, HEARTBEAT_TIMEOUT_S) == (0.1, 4.0)
    assert made.started and not made.shut_down and bond.state.startswith("started")
    bond.stop()
    assert made.shut_down and bond.state.startswith("broken") and bond.bond is None
    bond.start()  # activated again: a new bond, as Nav2's servers make one per activation
    assert len(BondpyBondTestDouble.made) == 2 and BondpyBondTestDouble.made[1].started
    bond.start()  # started twice without a stop: the first is broken, never leaked
    assert BondpyBondTestDouble.made[1].shut_down and len(BondpyBondTestDouble.made) == 3
    assert not warnings


def test_without_bondpy_or_with_a_broken_one_the_node_runs_and_says_why(node):
    warnings = []
    missing = ManagerBond(node, warnings.append, None)
    missing.bond_class = None  # as where bondpy is not installed
    for _ in range(3):
        missing.start()
        missing.stop()
    assert missing.state.startswith("unavailable") and "bond_timeout: 0.0" in missing.state
    assert len(warnings) == 1  # said once, not at every activation
    broken = ManagerBond(node, warnings.append, BrokenBondTestDouble)
    broken.start()
    assert broken.state.startswith("failed: RuntimeError") and broken.bond is None and len(warnings) == 2
    broken.stop()  # nothing to break: no error
    unbreakable = ManagerBond(node, warnings.append, UnbreakableBondTestDouble)
    unbreakable.start()
    unbreakable.stop()  # deactivation goes on
    assert unbreakable.state.startswith("failed to break: RuntimeError") and len(warnings) == 3


def test_bondpy_is_found_where_it_is_installed():
    try:
        from bondpy.bondpy import Bond
    except ImportError:
        assert bondpy_bond() is None
    else:
        assert bondpy_bond() is Bond


class EntityBondTestDouble(BondpyBondTestDouble):
    """As bondpy's Bond makes and drops its endpoints: a publisher and a subscription on the node, destroyed by
    their own destroy() at shutdown."""

    def start(self):
        from std_msgs.msg import String

        super().start()
        self.pub = self.node.create_publisher(String, self.topic, 10)
        self.sub = self.node.create_subscription(String, self.topic, lambda msg: None, 10)

    def shutdown(self):
        super().shutdown()
        self.pub.destroy()
        self.sub.destroy()


def test_a_broken_bond_leaves_no_endpoint_on_the_node(ros_env):
    """bondpy's own destroy() left its publisher and subscription in rclpy's node lists: one pair more at every
    activation of a node the robot parks and wakes for weeks."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(args=[], context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    real = rclpy.create_node("fourds_perception", context=context)
    try:
        before = (len(list(real.publishers)), len(list(real.subscriptions)))
        bond = ManagerBond(real, lambda message: None, EntityBondTestDouble)
        for _ in range(5):
            bond.start()
            bond.stop()
        assert (len(list(real.publishers)), len(list(real.subscriptions))) == before
    finally:
        real.destroy_node()
        rclpy.try_shutdown(context=context)
