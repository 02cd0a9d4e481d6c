"""Device choice (CUDA, then MPS, then CPU) and bf16 autocast where it pays off."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def pick_device(local_rank: int = 0, prefer: str | None = None) -> torch.device:
    """Return ``prefer`` if given, else ``cuda:<local_rank>``, then ``mps``, then ``cpu``."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def inference_threads(reserve: int = 0) -> int:
    """Torch threads for CPU inference: the usable cores less ``reserve``, at least one.

    The viewer reserves one core for its GUI thread (page flips stay fast while a night
    embeds); the command line and the benchmarks reserve none.
    """
    return max(1, usable_cores() - reserve)


def amp_supported(device: torch.device) -> bool:
    """True where bf16 autocast is both supported and faster than fp32.

    That is CUDA with bf16 (Ampere and later). CPU autocast works but is usually slower than
    fp32 on commodity CPUs, and MPS bf16 autocast is not reliable across macOS versions, so
    both train in fp32.
    """
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """bf16 autocast on ``device`` when ``enabled`` and :func:`amp_supported`, else nothing."""
    if enabled and amp_supported(device):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
