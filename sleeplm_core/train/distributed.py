"""Process setup for single-process and ``torchrun`` (DDP) training.

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`compute_init` reads them, so the same code runs alone, on N local processes
(``torchrun --standalone --nproc_per_node=N``) or on several nodes
(``torchrun --nnodes=2 --node_rank=R --master_addr=HOST --master_port=PORT ...``).
The backend is NCCL on CUDA and gloo otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from sleeplm_core.train.device import pick_device


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank, world size, device."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main_process(self) -> bool:
        """True on rank 0: the only process that logs, saves and prints progress."""
        return self.rank == 0

    @property
    def ddp(self) -> bool:
        """True when a process group with more than one rank is running."""
        return self.world_size > 1


def compute_init(device: str | None = None) -> DistInfo:
    """Initialise the process group if ``torchrun`` started us; pick the device.

    Parameters
    ----------
    device : str, optional
        Force a device (``"cpu"``, ``"cuda:0"``); by default CUDA, then MPS, then CPU.
    """
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = pick_device(local_rank, device)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, local_rank, world_size, dev)


def compute_cleanup() -> None:
    """Tear the process group down (no-op when none is running)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def print0(info: DistInfo, *args: Any, **kwargs: Any) -> None:
    """``print`` on the main process only."""
    if info.is_main_process:
        print(*args, **kwargs)


def mean_across_ranks(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar metrics over ranks (identity without DDP)."""
    if not info.ddp or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Send a picklable object from rank 0 to every rank (identity without DDP)."""
    if not info.ddp:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
