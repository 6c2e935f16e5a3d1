"""`fourds-ros bench node` end to end on a micro model: JSON rows and the markdown section."""

import json

from fourds_ros.bench.node import main


def test_bench_node_writes_json_and_table(ros_env, tmp_path, monkeypatch):
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "AMENT_PREFIX_PATH"):
        monkeypatch.setenv(key, ros_env[key])
    markdown = tmp_path / "benchmarks.md"
    assert main(["--cases", "micro@4x32x32", "--frames", "16", "--num-queries", "16",
                 "--json-dir", str(tmp_path), "--markdown", str(markdown)]) == 0
    row = json.loads((tmp_path / "node.json").read_text())["rows"][0]
    assert row["case"] == "micro@4x32x32" and row["hop"] == 3  # default_hop: clip length - 1
    assert row["bare_ms_p50"] > 0 and row["pipeline_ms_p50"] > 0
    assert 0 <= row["refinement_ms_p50"] < row["pipeline_ms_p50"]  # timed inside the pipeline
    assert 0 < row["tracks_update_ms_p50"] < row["pipeline_ms_p50"]
    assert row["frames_out"] > 0 and row["clip_latency_ms_p50"] > 0
    assert row["frames_out"] <= row["frames_in"] <= 16
    text = markdown.read_text()
    assert "<!-- bench:node -->" in text and "| micro@4x32x32 |" in text
