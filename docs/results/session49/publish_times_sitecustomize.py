# Exploration shim (session 49): what sending a clip's outputs costs in the node, by topic: every
# rclpy Publisher.publish timed; OutputMessages.publish (build + send) timed per call. JSON at exit.
import os
import sys

if os.environ.get("FOURDS_PUBLISH_TIMES") and any("fourds_perception" in a for a in sys.argv):
    import atexit
    import collections
    import json
    import time

    from rclpy.publisher import Publisher

    from fourds_ros.ros import outputs as _out

    sent = collections.defaultdict(list)  # topic -> seconds per publish
    calls = {"depth": [], "rest": []}
    raw = Publisher.publish

    def publish(self, msg):
        t0 = time.perf_counter()
        raw(self, msg)
        sent[self.topic_name].append(time.perf_counter() - t0)
    Publisher.publish = publish
    whole = _out.OutputMessages.publish

    def outputs_publish(self, result, trails, publishers, tf_publish=None, parts=_out.PARTS):
        t0 = time.perf_counter()
        whole(self, result, trails, publishers, tf_publish, parts)
        calls["depth" if tuple(parts) == ("depth",) else "rest"].append(time.perf_counter() - t0)
    _out.OutputMessages.publish = outputs_publish
    atexit.register(lambda: json.dump({"publish": sent, "calls": calls}, open(os.environ["FOURDS_PUBLISH_TIMES"], "w")))
