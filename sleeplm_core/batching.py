"""Running the signal tower over many windows: batches on threads, then one normalisation.

:func:`batch_runner` gives a ``submit(fn, arg)`` that runs batches on a thread pool on a
multi-core CPU (inline elsewhere); :func:`submit_tower` queues the tower over windows and
:func:`finish_batches` collects them into embeddings normalised with their own statistics.
:class:`~sleeplm_core.inference.Predictor` uses them for a window array and, with one pool for
the whole recording, for a night read in stretches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from sleeplm_core.io.channels import CANONICAL_SLOTS
from sleeplm_core.model.signal_encoder import present_rows, zscore_windows

RawFuture = Future[tuple[torch.Tensor, torch.Tensor]]
"""A batch's pooled (B, D) and dense (B, P, 2D) tower outputs before normalisation."""
Submit = Callable[..., RawFuture]


@contextmanager
def batch_runner(device: torch.device) -> Iterator[Submit]:
    """``submit(fn, arg)`` for batches: a thread pool on a multi-core CPU, else inline.

    At the CPU batch size the tower's operations are small: threads inside one operation
    (OpenMP) spend much of their time meeting at its end, and spin when the machine is busy.
    Whole batches on separate threads (torch releases the GIL in its kernels), one intra-op
    thread each, need no meeting and slow down gracefully when the cores are shared. One pool
    can serve a whole recording, so the next stretch's batches start while the last of this
    one runs. Queued batches are cancelled when the block is left early.
    """
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    if threads <= 1:
        yield _run_now
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # read by each new thread when it first runs an operation
    pool = ThreadPoolExecutor(threads, thread_name_prefix="sleeplm-embed")
    try:
        yield pool.submit
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(before)


def submit_tower(
    model: Any,
    device: torch.device,
    signal: np.ndarray,
    mask: np.ndarray,
    batch: int,
    submit: Submit,
    *,
    bf16: bool = False,
) -> list[RawFuture]:
    """Queue ``model.encode_signal_raw`` over ``signal`` (n, 12, 1920) in batches of ``batch``.

    ``mask`` is bool (12,) or (n, 12); windows are z-scored here (the tower's input contract).
    With ``bf16`` (CPU only) the tower runs under bf16 autocast; outputs are float32.
    """
    n = signal.shape[0]
    masks = np.broadcast_to(np.asarray(mask, bool), (n, len(CANONICAL_SLOTS)))

    def forward(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        # both thread-local: entered in the thread that runs the batch
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            m = torch.as_tensor(np.array(masks[i : i + batch], dtype=bool))
            rows = present_rows(m)  # absent slots are neither copied nor z-scored
            part = signal[i : i + batch]
            if rows is not None:
                part, m = part[:, rows.numpy()], m[:, rows]
            x = torch.as_tensor(np.ascontiguousarray(part, dtype=np.float32))
            z = zscore_windows(x, m).to(device)
            slots = None if rows is None else rows.to(device)
            pooled, dense = model.encode_signal_raw(z, m.to(device), slots)
            return pooled.float(), dense.float()

    return [submit(forward, i) for i in range(0, n, batch)]


def finish_batches(model: Any, parts: list[RawFuture]) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings float32 (n, E) and dense features float16 (n, P, E) of queued batches.

    Normalised with the statistics of all these windows (``SleepLM.finish_encoding``), as
    training normalises with its batch's.
    """
    outs = [f.result() for f in parts]
    with torch.inference_mode():
        e, d = model.finish_encoding(
            torch.cat([p for p, _ in outs]), torch.cat([d for _, d in outs])
        )
        return e.float().cpu().numpy(), d.to(torch.float16).cpu().numpy()


def finish_embeddings(model: Any, parts: list[RawFuture]) -> np.ndarray:
    """Embeddings float32 (n, E) of queued batches (``SleepLM.finish_pooled``).

    As :func:`finish_batches`, without computing the dense features.
    """
    outs = [f.result() for f in parts]
    with torch.inference_mode():
        e: np.ndarray = model.finish_pooled(torch.cat([p for p, _ in outs])).float().cpu().numpy()
        return e


def ready(value: tuple[torch.Tensor, torch.Tensor]) -> RawFuture:
    """A finished future holding ``value`` (for a model that computes outside the pool)."""
    done: RawFuture = Future()
    done.set_result(value)
    return done


def _run_now(fn: Callable[[int], tuple[torch.Tensor, torch.Tensor]], i: int) -> RawFuture:
    """Run ``fn(i)`` here and now; its result (or exception) in a finished future."""
    done: RawFuture = Future()
    try:
        done.set_result(fn(i))
    except BaseException as exc:  # re-raised by .result(), like a pool's future
        done.set_exception(exc)
    return done
