"""The encoder benchmark writes JSON and a markdown section (speed itself is not asserted)."""

from __future__ import annotations

import json

from fourds_ros.cli import main as cli


def test_bench_encoder_writes_json_and_table(tmp_path, capsys):
    md = tmp_path / "bench.md"
    md.write_text("# Benchmarks\n\nkept text\n")
    args = ["bench", "encoder", "--cases", "micro@8x64x64", "--repeats", "2",
            "--json-dir", str(tmp_path), "--markdown", str(md)]
    assert cli(args) == 0
    row = json.loads((tmp_path / "encoder.json").read_text())["rows"][0]
    assert row["parameters"] == 68_320  # micro: 32 wide, 2 blocks, posenc 4x4x4
    # FLOPs of a 2-block encoder on 64 tokens: the patch conv alone is 2*64*1536*32.
    assert row["gflops_per_clip"] * 1e9 > 2 * 64 * 1536 * 32
    assert row["latency_ms_p50"] > 0 and row["samples"] == 2
    assert cli(args) == 0  # rerun replaces the section instead of appending
    text = md.read_text()
    assert text.count("<!-- bench:encoder -->") == 1 and "kept text" in text
    assert "| micro | 8x64x64 |" in text


def test_cli_help_and_unknown_command(capsys):
    assert cli(["--help"]) == 0
    assert "import-official" in capsys.readouterr().out
    assert cli(["no-such-command"]) == 2
