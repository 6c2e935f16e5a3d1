"""`fourds-ros bench outputs` on a tiny model and the embedded sample: every output key is timed,
a robot's outputs are told from a viewer's, and JSON + markdown are written."""

from __future__ import annotations

import json

from fourds_ros.bench.outputs import ROBOT_OUTPUTS, main


def test_bench_outputs_times_every_output_and_writes_json_and_markdown(tiny_model_dir, tmp_path):
    markdown = tmp_path / "benchmarks.md"
    argv = ["--model", str(tiny_model_dir), "--backend", "torch", "--repeat", "1",
            "--json-dir", str(tmp_path), "--markdown", str(markdown)]
    assert main(argv) == 0
    result = json.loads((tmp_path / "outputs.json").read_text())
    rows = {r["output"]: r for r in result["rows"]}
    assert result["clips"] >= 3 and result["pipeline_ms_p50"] > 0
    assert {"depth", "depth_points", "tracks", "markers", "odometry", "path"} <= set(rows)
    assert all(r["robot"] == (key in ROBOT_OUTPUTS) for key, r in rows.items())
    assert rows["depth_points"]["ms_per_clip_p50"] > 0 and rows["markers"]["ms_per_clip_p50"] > 0
    assert result["totals_ms"]["everything"] > result["totals_ms"]["robot"] > 0
    assert "<!-- bench:outputs -->" in markdown.read_text()


def test_a_run_with_json_dir_leaves_the_reference_table_alone():
    """`bench NAME --json-dir OUT` replaced docs/benchmarks.md's reference table with its own rows (the docs say
    such runs are not written over it); --markdown still names a file to update, and no option is the reference run."""
    import argparse

    from fourds_ros.bench.report import DEFAULT_MARKDOWN, add_output_arguments, output_arguments, write_results

    parser = argparse.ArgumentParser()
    add_output_arguments(parser)
    assert output_arguments(parser.parse_args(["--json-dir", "out"])) == {"json_dir": "out", "markdown": None}
    assert output_arguments(parser.parse_args(["--json-dir", "out", "--markdown", "b.md"]))["markdown"] == "b.md"
    assert output_arguments(parser.parse_args(["--markdown", ""])) == {"markdown": None}
    assert output_arguments(parser.parse_args([])) == {}  # the reference run: write_results' defaults
    assert write_results.__defaults__[1] == DEFAULT_MARKDOWN
