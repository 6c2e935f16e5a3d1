"""Process set-up for training under torchrun: the process group, the per-step sampler, the
DDP / FSDP2 wrapping, gathering full state for checkpoints, and the mean over processes."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Sampler


@dataclass(frozen=True)
class Process:
    """This process's place in the run: rank, world size and its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Process:
    """Initialises the process group when run under torchrun (WORLD_SIZE > 1)."""
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
    return Process(rank, world, device)


class StepSampler(Sampler[int]):
    """Global sample indices for steps [start, stop): step s on rank r takes
    s * global_batch + r * local_batch + [0, local_batch), so the global batch of a step is the
    same whatever the number of processes."""

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


def wrap_model(model: nn.Module, blocks: list[nn.Module], process: Process, parallel: str
               ) -> tuple[nn.Module, bool]:
    """(the module to call, sharded?). One process: the model itself. `parallel: ddp`:
    DistributedDataParallel. `parallel: fsdp`: FSDP2 `fully_shard` on every block, then on the
    whole model (which is then called directly)."""
    if process.world == 1:
        return model, False
    if parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in blocks:
            fully_shard(block)
        fully_shard(model)
        return model, True
    device_ids = [process.device.index] if process.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids), False


def no_sync(model: nn.Module, process: Process, fsdp: bool, sync: bool):
    """DDP's no_sync on micro-batches that accumulate (no all-reduce until the last)."""
    if process.world > 1 and not fsdp and not sync:
        return model.no_sync()
    return contextlib.nullcontext()


def full_state_dicts(model: nn.Module, optimizer: torch.optim.Optimizer, fsdp: bool) -> tuple[dict, dict]:
    """Model and optimiser state; sharded ones gathered full on the CPU (a collective: every
    rank calls it)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return model.state_dict(), optimizer.state_dict()


def load_full_state_dicts(model: nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                          optim_state: dict, fsdp: bool) -> None:
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optim_state,
                       options=StateDictOptions(full_state_dict=True))
    else:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)


def mean_over_processes(value: Tensor, process: Process) -> Tensor:
    """value averaged over all processes, in place."""
    if process.world > 1:
        cuda = process.device.type == "cuda"
        dist.all_reduce(value, op=dist.ReduceOp.AVG if cuda else dist.ReduceOp.SUM)
        if not cuda:  # gloo has no AVG
            value /= process.world
    return value


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
