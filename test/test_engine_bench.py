"""`fourds-ros bench engines` on a micro model: JSON rows and the markdown section are written."""

from __future__ import annotations

import json

from fourds_ros.bench.engines import main


def test_bench_engines_writes_json_and_markdown(tmp_path):
    markdown = tmp_path / "benchmarks.md"
    argv = ["--cases", "micro@4x32x32", "--repeats", "2", "--num-queries", "4",
            "--json-dir", str(tmp_path), "--markdown", str(markdown), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    rows = json.loads((tmp_path / "engines.json").read_text())["rows"]
    assert [(r["backend"], r["precision"]) for r in rows] == [
        ("torch", "fp32"), ("onnxruntime", "fp32-unfused"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16"),
        ("onnxruntime", "int8")]
    assert rows[0]["max_rel_l2_vs_torch_fp32"] == 0.0
    assert rows[1]["max_rel_l2_vs_torch_fp32"] <= 1e-5 and rows[2]["max_rel_l2_vs_torch_fp32"] <= 1e-5
    assert all(r["gflops_per_clip"] > 0 and r["latency_ms_p95"] >= r["latency_ms_p50"] > 0 for r in rows)
    text = markdown.read_text()
    assert "<!-- bench:engines -->" in text and "| micro | 4x32x32 | onnxruntime | int8 |" in text
    assert "pending a GPU session" in text
