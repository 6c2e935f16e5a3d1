"""The nodes that publish on a topic, named from the ROS graph for the warnings about a second publisher on an
input (health.py's image_publishers_interleaved, intake.py's camera_info_publishers) and of /tf (tf_conflict.py).

`PublisherNames(node)(topic, publishers)` -> "/usb_cam, /usb_cam": publishers as the node's callbacks give them
(convert.publisher_gid). The graph is asked only for a publisher not known yet, and at most every LOOKUP_EVERY_S a
topic: a warning counted on every frame must not cost a graph query each. A publisher the graph does not list (yet:
discovery can lag its first messages; or a plain DDS writer) is "an unnamed publisher".
"""

from __future__ import annotations

import time

LOOKUP_EVERY_S = 1.0
UNNAMED = "an unnamed publisher"
UNKNOWN_NODE = "_NODE_NAME_UNKNOWN_"  # rmw's name for an endpoint whose node's discovery information has not arrived


class PublisherNames:
    def __init__(self, node):
        self.node = node
        self.names: dict[str, dict[str, str]] = {}  # topic -> {publisher gid text -> its node}, from the last query
        self.next_lookup: dict[str, float] = {}  # topic -> when it may be asked again (monotonic s)

    def __call__(self, topic: str, publishers: list) -> str:
        return ", ".join(self.node_of(topic, p) or UNNAMED for p in publishers)

    def node_of(self, topic: str, publisher: str) -> str | None:
        """`publisher`'s node on `topic` ("/namespace/name"), None where the graph does not list it (yet)."""
        names = self.names.get(topic, {})
        if publisher and publisher not in names and time.monotonic() >= self.next_lookup.get(topic, 0.0):
            self.next_lookup[topic] = time.monotonic() + LOOKUP_EVERY_S
            # replaced, not added to: bounded by the topic's publishers. An endpoint discovery has not named yet
            # (rmw's _NODE_NAME_UNKNOWN_) is left out, to be asked again: cached, it named the publisher
            # "_NODE_NAMESPACE_UNKNOWN_/_NODE_NAME_UNKNOWN_" in every later line
            names = self.names[topic] = {str(bytes(e.endpoint_gid)): f"{e.node_namespace.rstrip('/')}/{e.node_name}"
                                         for e in self.node.get_publishers_info_by_topic(topic)
                                         if e.node_name != UNKNOWN_NODE}
        return names.get(publisher)
