"""The head registry (model/registry.py) against the layers that turn head outputs into messages and
metrics: each head's declared messages are topics the node publishes, and its metrics are the
keys the evaluation report scores. A new head cannot be half-wired without one of these failing."""

from fourds_ros.evaluation import report
from fourds_ros.model import HEADS, get_head
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.ros.outputs import OUTPUTS


def test_every_head_message_is_a_published_topic_and_every_topic_belongs_to_a_head():
    topics = {topic for topic, _ in OUTPUTS.values()}
    declared = {m for name in HEADS for m in get_head(name).messages}
    assert declared - {"tf"} <= topics, declared - topics
    assert topics <= declared, topics - declared


def test_report_scores_each_heads_declared_metrics():
    assert (report.DEPTH_KEYS, report.TRACK_KEYS, report.POSE_KEYS) == tuple(
        get_head(name).metrics for name in ("depth", "tracks", "pose"))


def test_every_head_has_an_enable_setting():
    settings = PerceptionSettings()
    assert all(getattr(settings, name).enable is True for name in HEADS)
