"""The bond that nav2_lifecycle_manager waits for after activating a node it manages.

nav2_lifecycle_manager (with `bond_timeout` > 0; its default is 4 s) forms a bond on topic `bond`,
with the managed node's name as id, right after it activates the node, and aborts the whole
bring-up when none forms: "Server fourds_perception was unable to be reached after 4.00s by bond.
This server may be misconfigured." Nav2's own servers start theirs in on_activate
(nav2_util::LifecycleNode::createBond: heartbeat period 0.1 s, timeout 4 s) and break it in
on_deactivate. This does the same with bondpy, ROS's Python implementation of the bond protocol,
which exists where ROS is installed (no PyPI wheel). Without it the node runs as before, says so
once, and reports it on /diagnostics: set the manager's `bond_timeout: 0.0` then.
"""

from __future__ import annotations

from collections.abc import Callable

BOND_TOPIC = "bond"  # relative: the manager and its nodes share a namespace, as in Nav2
HEARTBEAT_PERIOD_S = 0.1  # nav2_util::LifecycleNode's values
HEARTBEAT_TIMEOUT_S = 4.0


def bondpy_bond() -> type | None:
    """bondpy's Bond class, or None where bondpy (a ROS install's package) is not importable."""
    try:
        from bondpy.bondpy import Bond
    except ImportError:
        return None
    return Bond


class ManagerBond:
    """start() when the node activates, stop() when it deactivates or shuts down; `state` for
    /diagnostics. bond_class: bondpy's Bond (the default) or anything with its interface: Bond(node=,
    topic=, id=), heartbeat_period and heartbeat_timeout set before start(), shutdown() (which breaks
    the bond and tells the manager)."""

    def __init__(self, node, warn: Callable[[str], None], bond_class: type | None = None):
        self.node, self.warn = node, warn
        self.bond_class = bond_class if bond_class is not None else bondpy_bond()
        self.bond = None
        self.state = "not started (inactive)"
        self._warned = False

    def start(self) -> None:
        self.stop()
        if self.bond_class is None:
            self.state = "unavailable (bondpy not installed; nav2_lifecycle_manager needs bond_timeout: 0.0)"
            if not self._warned:
                self.warn(f"no bond for nav2_lifecycle_manager: {self.state}")
                self._warned = True
            return
        try:
            # By keyword: bondpy's ROS 2 releases take (topic, id, node) in older ones and (node, topic, id) now.
            bond = self.bond_class(node=self.node, topic=BOND_TOPIC, id=self.node.get_name())
            bond.heartbeat_period = HEARTBEAT_PERIOD_S
            bond.heartbeat_timeout = HEARTBEAT_TIMEOUT_S
            bond.start()
        except Exception as exc:  # a broken bond install must not stop the node from activating
            self.state = f"failed: {type(exc).__name__}: {exc}"
            self.warn(f"no bond for nav2_lifecycle_manager: {self.state}")
            return
        self.bond, self.state = bond, f"started on {BOND_TOPIC}, id {self.node.get_name()}"

    def stop(self) -> None:
        bond, self.bond = self.bond, None
        if bond is None:
            return
        try:
            bond.shutdown()  # tells the manager: it breaks the bond rather than wait for its timeout
            self.state = "broken (inactive)"
        except Exception as exc:  # nor stop it from deactivating
            self.state = f"failed to break: {type(exc).__name__}: {exc}"
            self.warn(f"nav2_lifecycle_manager bond: {self.state}")
        # bondpy's shutdown destroys its publisher and subscription by their own destroy(), which leaves them in
        # the node's lists (rclpy 9): the node kept one pair more at every activation. Through the node they go.
        for name, kind in (("pub", "publisher"), ("sub", "subscription")):
            if getattr(bond, name, None) is not None:
                getattr(self.node, f"destroy_{kind}")(getattr(bond, name))
