"""`fourds-ros bench train` / `python -m training.bench`: MAE training-step time and tokens/s at
mask ratio 0.95 vs 0.0 per config (forward + backward + AdamW step, one clip per step).

tokens/s counts all t*h*w input tokens of the clip (the video throughput), so the ratio of the
two rows is the wall-clock speed-up that masking buys. GPU numbers need a CUDA machine
(bf16 autocast is used there).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import torch

from fourds_ros.bench.report import (
    add_output_arguments, latency_stats, markdown_table, output_arguments, time_call, write_results,
)
from fourds_ros.model import count_parameters, make_mask

from .mae import build_mae
from .optim import param_groups
from .pretrain_config import load_config

DEFAULT_CONFIGS = ["tiny", "S"]


def bench_config(name: str, mask_ratio: float, batch: int, repeats: int, device: torch.device) -> dict:
    cfg = load_config(name)
    mae = build_mae(cfg).to(device).train()
    optimizer = torch.optim.AdamW(param_groups(mae, 0.05), lr=1e-4)
    mc = mae.config
    video = torch.rand(batch, *mc.clip_shape, device=device)
    gen = torch.Generator().manual_seed(0)
    mask = make_mask(cfg.mask.kind, batch, mc.token_grid, mask_ratio, generator=gen)
    mask.ids_keep, mask.ids_restore, mask.masked = (x.to(device) for x in (mask.ids_keep, mask.ids_restore, mask.masked))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def step():
        with autocast:
            loss, _ = mae(video, mask)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    # Two warm-up steps: the first allocates optimiser state, the second settles the allocator.
    stats = latency_stats(time_call(step, warmup=2, repeats=repeats))
    tokens = mc.token_grid[0] * mc.token_grid[1] * mc.token_grid[2]
    return {
        "config": name,
        "size": mc.size,
        "clip": "x".join(map(str, (mc.num_frames, *mc.image_size))),
        "device": device.type,
        "mask_ratio": mask_ratio,
        "batch": batch,
        "tokens_per_clip": tokens,
        "kept_tokens": int(mask.ids_keep.shape[1]),
        "parameters": count_parameters(mae),
        "step_ms": stats["latency_ms_p50"],
        "tokens_per_s": batch * tokens / (stats["latency_ms_p50"] / 1e3),
        **stats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fourds-ros bench train")
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="names in training/configs")
    parser.add_argument("--mask-ratios", type=float, nargs="+", default=[0.95, 0.0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    add_output_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for name in args.configs:
        base = None
        for ratio in args.mask_ratios:
            row = bench_config(name, ratio, args.batch, args.repeats, device)
            rows.append(row)
            print(f"{name} mask {ratio}: {row['step_ms']:.1f} ms/step", flush=True)
        by_ratio = {r["mask_ratio"]: r for r in rows if r["config"] == name}
        if 0.0 in by_ratio:
            base = by_ratio[0.0]["step_ms"]
            for r in by_ratio.values():
                r["speedup_vs_mask0"] = base / r["step_ms"]
    table = markdown_table(
        rows,
        [("config", "config", ""), ("clip", "clip", ""), ("device", "device", ""),
         ("mask_ratio", "mask", ".2f"), ("kept_tokens", "kept/total", "d"),
         ("tokens_per_clip", "tokens", "d"), ("step_ms", "step ms (p50)", ".1f"),
         ("tokens_per_s", "tokens/s", ",.0f"), ("speedup_vs_mask0", "speed-up vs mask 0", ".1f")],
    )
    table += ("\n\nOne clip per step: forward + backward + AdamW, coarse-grid decoder (training/decoder.py)."
              " GPU rows (S, B with bf16 autocast) are pending: no GPU session was available.")
    write_results("train", {"rows": rows}, table, "MAE training step: mask 0.95 vs 0.0", **output_arguments(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
