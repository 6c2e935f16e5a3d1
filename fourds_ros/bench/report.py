"""Shared benchmark plumbing: timing statistics, FLOP counting, JSON + markdown table output.

Every benchmark writes `<out>/<name>.json` and replaces its own section of docs/benchmarks.md
(between `<!-- bench:<name> -->` markers), so reruns update the table in place.
"""

from __future__ import annotations

import json
import platform
import re
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
DEFAULT_JSON_DIR = REPO / "docs" / "benchmarks"
DEFAULT_MARKDOWN = REPO / "docs" / "benchmarks.md"


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def time_call(fn, warmup: int = 1, repeats: int = 5, min_seconds: float = 0.0) -> list[float]:
    """Wall-clock seconds of each call after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def latency_stats(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p95": float(np.percentile(ms, 95)),
        "latency_ms_mean": float(ms.mean()),
        "samples": int(ms.size),
    }


def count_flops(module: torch.nn.Module, *inputs) -> int:
    """FLOPs (2 per multiply-add) of one forward, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*inputs)
    return int(counter.get_total_flops())


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """columns: (key, header, format spec)."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = []
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append("–" if value is None else format(value, fmt) if fmt else str(value))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *body])


def add_output_arguments(parser) -> None:
    """--json-dir and --markdown, the same for every benchmark."""
    parser.add_argument("--json-dir", default=None,
                        help="folder for NAME.json (default: docs/benchmarks, the reference run, whose table in "
                             "docs/benchmarks.md is then updated)")
    parser.add_argument("--markdown", default=None,
                        help="markdown file to update ('' = none; default: docs/benchmarks.md without --json-dir, "
                             "none with it)")


def output_arguments(args) -> dict:
    """write_results keyword arguments from add_output_arguments' options (defaults when unset). A run with
    --json-dir is not the reference run: it updates no markdown unless --markdown names one (it replaced the
    reference table in docs/benchmarks.md, of the checkout or of the installed package, with its own rows)."""
    kwargs = {}
    if args.json_dir is not None:
        kwargs["json_dir"] = args.json_dir
        kwargs["markdown"] = None
    if args.markdown is not None:
        kwargs["markdown"] = args.markdown or None
    return kwargs


def write_results(
    name: str,
    results: dict,
    table: str,
    title: str,
    json_dir: Path | str = DEFAULT_JSON_DIR,
    markdown: Path | str | None = DEFAULT_MARKDOWN,
    command: str | None = None,
) -> Path:
    """Write results as JSON_DIR/name.json and replace (or append) the markdown section `name`, headed by
    the command that made it (default `fourds-ros bench name`)."""
    json_dir = Path(json_dir)
    json_dir.mkdir(parents=True, exist_ok=True)
    results = {"benchmark": name, "machine": machine(), **results}
    path = json_dir / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    if markdown is not None:
        markdown = Path(markdown)
        text = markdown.read_text() if markdown.exists() else "# Benchmarks\n\nWritten by `fourds-ros bench <name>`; each section is replaced on rerun.\n"
        section = (
            f"<!-- bench:{name} -->\n## {title}\n\n`{command or f'fourds-ros bench {name}'}` on "
            f"{results['machine']['cpu']}, {results['machine']['torch_threads']} torch threads "
            f"(JSON: `{path.relative_to(REPO) if path.is_relative_to(REPO) else path}`).\n\n"
            f"{table}\n<!-- /bench:{name} -->"
        )
        pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
        text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text)
    print(table)
    return path
