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


def cpu_bf16_inference() -> bool:
    """True where CPU inference should run the signal tower under bf16 autocast.

    Only on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX): there the tower runs
    about 1.3x faster with embeddings within cosine 0.9999 of fp32 (``make bench``); on
    other CPUs bf16 is emulated and slower. ``SLEEPLM_CPU_BF16=0`` turns it off, ``=1`` on.
    """
    forced = os.environ.get("SLEEPLM_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """bf16 autocast on ``device`` when ``enabled`` and :func:`amp_supported`, else nothing."""
    if enabled and amp_supported(device):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
