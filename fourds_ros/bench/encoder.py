"""fourds-ros bench encoder: parameters, FLOPs per clip and CPU latency of the encoder."""

from __future__ import annotations

import argparse

import torch

from ..argtypes import frame_count
from ..model import FourDS, ModelConfig, count_parameters
from .report import (
    add_output_arguments, count_flops, latency_stats, markdown_table, output_arguments, time_call, write_results,
)

DEFAULT_CASES = ["micro@8x64x64", "tiny@8x128x128", "S@8x128x128", "S@16x224x224"]


def parse_case(case: str) -> ModelConfig:
    """'S@16x224x224' -> ModelConfig (encoder only)."""
    size, _, shape = case.partition("@")
    t, h, w = (int(v) for v in (shape or "16x224x224").split("x"))
    return ModelConfig(size=size, num_frames=t, image_size=(h, w))


def bench_case(case: str, repeats: int) -> dict:
    cfg = parse_case(case)
    model = FourDS(cfg).eval()
    video = torch.rand(1, *cfg.clip_shape)
    # The full encoder as pre-training runs it (all blocks); the node's readout runs fewer.
    encoder = model.encoder
    flops = count_flops(encoder, video)
    with torch.inference_mode():
        times = time_call(lambda: encoder(video), warmup=1, repeats=repeats)
    stats = latency_stats(times)
    return {
        "case": case,
        "size": cfg.size,
        "clip": "x".join(map(str, (cfg.num_frames, *cfg.image_size))),
        "tokens": cfg.token_grid[0] * cfg.token_grid[1] * cfg.token_grid[2],
        "parameters": count_parameters(encoder),
        "gflops_per_clip": flops / 1e9,
        "achieved_gflops": flops / 1e9 / (stats["latency_ms_p50"] / 1e3),
        **stats,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fourds-ros bench encoder")
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help="SIZE@TxHxW")
    parser.add_argument("--repeats", type=frame_count, default=5)  # a whole number >= 1
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    rows = [bench_case(c, args.repeats) for c in args.cases]
    table = markdown_table(
        rows,
        [("size", "size", ""), ("clip", "clip", ""), ("tokens", "tokens", "d"),
         ("parameters", "params", ",d"), ("gflops_per_clip", "GFLOP/clip", ".2f"),
         ("latency_ms_p50", "p50 ms", ".1f"), ("latency_ms_p95", "p95 ms", ".1f"),
         ("achieved_gflops", "GFLOP/s", ".1f")],
    )
    write_results("encoder", {"rows": rows}, table, "Encoder: parameters, FLOPs, CPU latency", **output_arguments(args))
    return 0
