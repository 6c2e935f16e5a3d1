"""MAE pre-training of the 4DS encoder: `python -m training.pretrain --config training/configs/tiny.yaml`.

- Model: the FourDS encoder (kept tokens only) + `training.decoder.CoarseGridDecoder`; loss on
  per-tubelet normalised pixels of the masked tubelets; 95 % random or tube masking by default.
- Optimiser: AdamW (no decay on biases, norms, position embeddings and queries), linear warmup
  then cosine decay; bf16 autocast on CUDA; gradient accumulation; activation checkpointing.
- Multi-device: run under `torchrun`; `parallel: ddp` wraps in DistributedDataParallel,
  `parallel: fsdp` shards every block with FSDP2 (`torch.distributed.fsdp.fully_shard`).
  The global batch is fixed; each rank takes its slice, so losses equal one process's.
- Checkpoints: `<out>/checkpoint.pt` written atomically (temp file + rename) with model,
  optimiser, scheduler, step and RNG state; rerunning the command resumes from it. The encoder is
  also saved as a node-loadable model dir `<out>/encoder/` (config.json + model.safetensors).
- Logs: TensorBoard in `<out>/tb`, tqdm progress bar on rank 0.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
import torch.nn.functional as F
import torch.utils.checkpoint
from einops import rearrange
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler

from fourds_ros.model import FourDS, ModelConfig, TokenMask, init_weights, save_checkpoint
from fourds_ros.model.masking import gather_tokens

from .budget import steps_within_budget
from .data import PretrainClips
from .decoder import CoarseGridDecoder
from .losses import mae_loss

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


# ----------------------------------------------------------------------------- config
def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """YAML config plus `a.b=value` overrides (values parsed as YAML)."""
    path = Path(path)
    if not path.is_file() and (CONFIG_DIR / f"{path}.yaml").is_file():
        path = CONFIG_DIR / f"{path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found (known: {sorted(p.stem for p in CONFIG_DIR.glob('*.yaml'))})")
    cfg = yaml.safe_load(path.read_text()) or {}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return cfg


def model_config(cfg: dict) -> ModelConfig:
    m = cfg["model"]
    return ModelConfig(
        size=m["size"], num_frames=m["num_frames"], image_size=tuple(m["image_size"]),
        patch_size=tuple(m.get("patch_size", (2, 16, 16))),
    )


# ----------------------------------------------------------------------------- model
class MAE(nn.Module):
    """The 4DS encoder plus the coarse-grid decoder.

    forward(video (B, T, H, W, 3) in [0, 1], mask) -> (loss, predictions (B, N, pt*ph*pw*3))."""

    def __init__(self, config: ModelConfig, decoder: dict, checkpoint_blocks: bool = False):
        super().__init__()
        self.config = config
        self.encoder = FourDS(config, checkpoint_blocks=checkpoint_blocks).encoder
        self.decoder = CoarseGridDecoder(
            config.encoder.width, config.token_grid, config.patch_size,
            width=decoder.get("width", 256), depth=decoder.get("depth", 4),
            num_heads=decoder.get("num_heads", 8), mlp_dim=decoder.get("mlp_dim"),
            coarse_factor=tuple(decoder.get("coarse_factor", (1, 2, 2))),
            checkpoint_blocks=checkpoint_blocks,
        )

    def encode_kept(self, video: Tensor, mask: TokenMask) -> Tensor:
        """The encoder on kept tubelets only -> last block output (B, N_keep, D).

        Same maths as `Encoder(video, mask=mask).output`, but the tubelet embedding (a Conv3d
        with stride = kernel, i.e. a linear map per tubelet) is applied to the kept tubelets
        only. On CPU the Conv3d backward over the whole clip otherwise dominates a 95 %-masked
        step (seconds for 4DS-S at 16x224x224)."""
        enc = self.encoder
        conv = enc.patch_embedding.proj
        pt, ph, pw = enc.patch_size
        tubelets = rearrange(video, "b (t pt) (h ph) (w pw) c -> b (t h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw)
        kept = gather_tokens(tubelets, mask.ids_keep)
        t, h, w = (video.shape[1] // pt, video.shape[2] // ph, video.shape[3] // pw)
        posenc = rearrange(enc.position_embedding((t, h, w)), "t h w d -> (t h w) d")
        x = F.linear(kept, conv.weight.flatten(1), conv.bias) + posenc[mask.ids_keep]
        for block in enc.blocks:
            if enc.checkpoint_blocks and self.training:
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x

    def forward(self, video: Tensor, mask: TokenMask) -> tuple[Tensor, Tensor]:
        pred = self.decoder(self.encode_kept(video, mask), mask.ids_keep)
        return mae_loss(pred, video, mask.masked, self.config.patch_size), pred

    def export_encoder(self) -> FourDS:
        """A FourDS (no heads) holding this encoder's weights, for save_checkpoint."""
        model = FourDS(self.config)
        model.encoder.load_state_dict(self.encoder.state_dict())
        return model


def build_mae(cfg: dict) -> MAE:
    model = MAE(model_config(cfg), cfg.get("decoder", {}), bool(cfg.get("activation_checkpointing", False)))
    return init_weights(model, seed=int(cfg.get("seed", 0)))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim < 2 or "posenc" in name or name.endswith("query")
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_lambda(warmup: int, total: int, min_ratio: float = 0.0):
    """Linear warmup from 0, then cosine decay to min_ratio of the peak at `total` steps."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


# ----------------------------------------------------------------------------- distributed
def init_distributed() -> tuple[int, int, torch.device]:
    """(rank, world_size, device). Initialises the process group when run under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


class StepSampler(Sampler[int]):
    """Global sample indices for steps [start, stop): step s on rank r takes
    s * global_batch + r * local_batch + [0, local_batch)."""

    def __init__(self, start: int, stop: int, global_batch: int, rank: int, world: int):
        if global_batch % world:
            raise ValueError(f"global batch {global_batch} is not divisible by {world} processes")
        self.start, self.stop, self.global_batch = start, stop, global_batch
        self.local = global_batch // world
        self.rank = rank

    def __iter__(self):
        for step in range(self.start, self.stop):
            base = step * self.global_batch + self.rank * self.local
            yield from range(base, base + self.local)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.local


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _state_dicts(model, optimizer, fsdp: bool):
    if fsdp:  # gather full, CPU-offloaded state from the shards (collective: all ranks call it)
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return model.state_dict(), optimizer.state_dict()


def _load_state_dicts(model, optimizer, model_state, optim_state, fsdp: bool) -> None:
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optim_state,
                       options=StateDictOptions(full_state_dict=True))
    else:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)


# ----------------------------------------------------------------------------- training
def train(cfg: dict, out_dir: str | Path, stop_after: int | None = None, progress: bool = True) -> dict:
    """Run (or resume) pre-training. stop_after: end after this global step, as if interrupted
    (the checkpoint is written), for tests. Returns {"step", "losses": [(step, loss)], "out"}."""
    out_dir = Path(out_dir)
    rank, world, device = init_distributed()
    main_process = rank == 0
    torch.manual_seed(int(cfg.get("seed", 0)))
    opt_cfg, mask_cfg = cfg.get("optim", {}), cfg.get("mask", {})
    total_steps = int(opt_cfg.get("steps", 100))
    global_batch = int(cfg.get("batch_size", 8))
    micro = int(cfg.get("micro_batch_size", global_batch // world))
    local = global_batch // world
    if local % micro:
        raise ValueError(f"per-process batch {local} is not divisible by micro_batch_size {micro}")
    accumulation = local // micro
    parallel = cfg.get("parallel", "ddp")

    mae = build_mae(cfg).to(device)
    fsdp = world > 1 and parallel == "fsdp"
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for block in [*mae.encoder.blocks, *mae.decoder.blocks]:
            fully_shard(block)
        fully_shard(mae)
        model = mae
    elif world > 1:
        model = nn.parallel.DistributedDataParallel(mae, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        model = mae
    optimizer = torch.optim.AdamW(
        param_groups(mae, float(opt_cfg.get("weight_decay", 0.05))),
        lr=float(opt_cfg.get("lr", 1.5e-4)) * global_batch / 256 if opt_cfg.get("scale_lr", False)
        else float(opt_cfg.get("lr", 1.5e-4)),
        betas=tuple(opt_cfg.get("betas", (0.9, 0.95))),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(int(opt_cfg.get("warmup_steps", 0)), total_steps, float(opt_cfg.get("min_lr_ratio", 0.0)))
    )
    start = 0
    ckpt_path = out_dir / "checkpoint.pt"
    if cfg.get("resume", True) and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        _load_state_dicts(mae, optimizer, state["model"], state["optimizer"], fsdp)
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start = int(state["step"])
    if main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    data = PretrainClips(
        mae.config, cfg.get("data", {}), mask_cfg.get("kind", "random"),
        float(mask_cfg.get("ratio", 0.95)), seed=int(cfg.get("seed", 0)),
    )
    stop = total_steps if stop_after is None else min(total_steps, stop_after)
    loader = DataLoader(
        data, batch_size=micro, sampler=StepSampler(start, stop, global_batch, rank, world),
        num_workers=int(cfg.get("num_workers", 0)), pin_memory=device.type == "cuda",
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    writer = None
    if main_process and cfg.get("tensorboard", True):
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"))
    bar = None
    if main_process and progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=start, desc="mae", dynamic_ncols=True)
    losses: list[tuple[int, float]] = []
    save_every = int(cfg.get("save_every", 1000))
    model.train()
    step, micro_index, running = start, 0, torch.zeros((), device=device)
    t0 = time.perf_counter()
    budget = float(cfg.get("time_budget_s", 0))  # 0: run the configured steps
    for batch in loader:
        if step >= stop:
            break
        video = batch["video"].to(device, non_blocking=True)
        mask = TokenMask(batch["ids_keep"].to(device), batch["ids_restore"].to(device), batch["masked"].to(device))
        last = micro_index == accumulation - 1
        sync = model.no_sync() if (world > 1 and not fsdp and not last) else contextlib.nullcontext()
        with sync:
            with autocast:
                loss, _ = model(video, mask)
            (loss / accumulation).backward()
        running += loss.detach() / accumulation
        micro_index += 1
        if not last:
            continue
        clip = float(opt_cfg.get("clip_grad", 0.0))
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(mae.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        if world > 1:
            dist.all_reduce(running, op=dist.ReduceOp.AVG if device.type == "cuda" else dist.ReduceOp.SUM)
            if device.type != "cuda":  # gloo has no AVG
                running /= world
        step += 1
        value = float(running)
        losses.append((step, value))
        running.zero_()
        micro_index = 0
        if writer is not None:
            writer.add_scalar("loss/mae", value, step)
            writer.add_scalar("lr", scheduler.get_last_lr()[0], step)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
        if budget and step - start == 20:
            # Fit the run to the time budget: shorten the schedule once the step time is known.
            fitted = steps_within_budget(total_steps, step, time.perf_counter() - t0, budget)
            total_steps, stop = fitted, min(stop, fitted)
            scheduler.lr_lambdas[0] = lr_lambda(int(opt_cfg.get("warmup_steps", 0)), total_steps,
                                                float(opt_cfg.get("min_lr_ratio", 0.0)))
            if bar is not None:
                bar.total = total_steps
        if step % save_every == 0 or step == stop:
            _save(mae, optimizer, scheduler, step, out_dir, fsdp, main_process, final=step == total_steps)
    if step == start and start < stop:
        raise RuntimeError("data loader produced no batches")
    if bar is not None:
        bar.close()
    if main_process:  # this invocation's per-step losses (averaged over processes)
        import json

        (out_dir / "losses.json").write_text(json.dumps(losses) + "\n")
    if writer is not None:
        writer.add_scalar("time/seconds", time.perf_counter() - t0, step)
        writer.close()
    return {"step": step, "losses": losses, "out": str(out_dir)}


def _save(mae: MAE, optimizer, scheduler, step: int, out_dir: Path, fsdp: bool, main_process: bool,
          final: bool) -> None:
    model_state, optim_state = _state_dicts(mae, optimizer, fsdp)
    if main_process:
        _atomic_torch_save(
            {"model": model_state, "optimizer": optim_state, "scheduler": scheduler.state_dict(),
             "step": step, "rng": _rng_state()},
            out_dir / "checkpoint.pt",
        )
        if final:
            export = MAE(mae.config, {}).export_encoder() if fsdp else mae.export_encoder()
            if fsdp:
                export.encoder.load_state_dict({k[len("encoder."):]: v for k, v in model_state.items() if k.startswith("encoder.")})
            save_checkpoint(export, out_dir / "encoder", metadata={"mae_steps": step})
    if dist.is_initialized():
        dist.barrier()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pretrain", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny", help="YAML path or name in training/configs")
    parser.add_argument("--out", required=True, help="run directory (checkpoint.pt, encoder/, tb/)")
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this step (resumable)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. optim.steps=50")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except (FileNotFoundError, ValueError, yaml.YAMLError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = train(cfg, args.out, stop_after=args.stop_after, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0 and result["losses"]:
        first, last = result["losses"][0], result["losses"][-1]
        print(f"steps {first[0]}..{last[0]}: loss {first[1]:.6f} -> {last[1]:.6f}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
