"""Several processes, one run (``torchrun --nproc_per_node=N -m crossdistill run CONFIG``): the process group,
who writes files (rank 0), barriers, reductions, and the teardown that keeps workers from aborting at exit.

Every rank runs the same pipeline on the same data; ``fit`` wraps the distiller in DistributedDataParallel (the
frozen teachers hold no trainable parameter, so only the student, its adapters and the losses' own modules are
synchronised) and gives each rank a disjoint share of every global batch. One process: all of this is a no-op.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    """The process that writes files (checkpoints, results, reports, caches)."""
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


@contextmanager
def process_group() -> Iterator[None]:
    """Join the group torchrun describes (``WORLD_SIZE`` > 1): NCCL on GPUs, gloo on CPU. Leaves it cleanly:
    collect the DDP wrappers, barrier, destroy (without it, gloo workers abort at exit in a share of runs)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield
    finally:
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each key averaged over the ranks (per-rank training losses -> the epoch's)."""
    if world_size() == 1 or not values:
        return values
    names = sorted(values)
    tensor = torch.tensor([values[n] for n in names], dtype=torch.float64)
    dist.all_reduce(tensor)
    return dict(zip(names, (tensor / world_size()).tolist(), strict=True))


def gather_strings(value: str) -> list[str]:
    """``value`` from every rank, in rank order."""
    if world_size() == 1:
        return [value]
    out: list[str] = [""] * world_size()
    dist.all_gather_object(out, value)
    return out


def all_ranks_agree(flag: bool) -> bool:
    """True when ``flag`` holds on every rank (so that every rank takes the same branch of a collective step)."""
    if world_size() == 1:
        return flag
    tensor = torch.tensor([1 if flag else 0])
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return bool(tensor.item())
