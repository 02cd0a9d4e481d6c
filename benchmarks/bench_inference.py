"""Inference speed: model load, a full night (embeddings + staging), a query on a cached night.

Targets (2 CPU cores): full 8-h night with 12 channels < 60 s, a query on a cached night
< 200 ms, model load < 3 s. Where CUDA is available the full night is timed on the GPU too.

The bundled checkpoint (``resources/models``) is used when present. Otherwise a micro
checkpoint (``sleeplm-tiny``, 2 training steps) is trained once into
``$XDG_CACHE_HOME/sleeplm/bench-inference/ckpt`` and every row name says ``micro checkpoint``:
its numbers measure the plumbing and the architecture's cost, not a trained model's. The 8-h
night (seed 10 900, all 15 channels, 12 canonical slots filled) is generated once into the
same folder.

Usage::

    python -m benchmarks inference
    SLEEPLM_BENCH_HOURS=1 python -m benchmarks inference     # quicker, row names say 1 h
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sleeplm"
FOLDER = CACHE / "bench-inference"
THREADS = 2
WARM_UP_QUERY = "low oxygen saturation"
"""The first search after a load (not one of :data:`QUERIES`)."""
QUERIES = (
    "obstructive apnea with desaturation",
    "sleep spindle",
    "arousal from N2",
    "periodic limb movements",
    "REM sleep with eye movements",
)


def _checkpoint() -> tuple[Path, str]:
    """The bundled checkpoint, or a micro one trained into the cache folder, and its label."""
    from sleeplm_core.inference import bundled_checkpoint

    bundled = bundled_checkpoint()
    if bundled.is_dir() and any(bundled.glob("meta_*.json")):
        return bundled, "bundled checkpoint"
    out = FOLDER / "ckpt"
    try:
        from sleeplm_core.inference import Predictor

        Predictor.load(out, device="cpu")
    except Exception:  # absent, or made by an older model version: train it again
        import shutil

        from sleeplm_core.cli.main import main

        shutil.rmtree(out, ignore_errors=True)
        argv = ["train", "--config", "sleeplm-tiny", "--synthetic", "2", "--epochs-per-night",
                "16", "--steps", "2", "--out", str(out), "--no-progress"]  # fmt: skip
        if main(argv) != 0:
            raise RuntimeError("could not train the micro checkpoint") from None
    return out, "micro checkpoint, plumbing only"


def _night(hours: float) -> Path:
    from sleeplm_core.synth import generate_night, write_night

    edf = FOLDER / f"night-{hours:g}h.edf"
    if not edf.is_file():
        FOLDER.mkdir(parents=True, exist_ok=True)
        write_night(generate_night(hours=hours, seed=10_900, ahi=20.0, sf=256), edf)
    return edf


def run() -> list[dict]:
    """Time load, full-night inference, cached queries (and the GPU when there is one)."""
    import torch

    from sleeplm_core.inference import STRIDE_S, Predictor
    from sleeplm_core.io.recording import Recording

    hours = float(os.environ.get("SLEEPLM_BENCH_HOURS", "8"))
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    rows: list[dict] = []
    try:
        ckpt, label = _checkpoint()
        edf = _night(hours)
        Predictor.load(ckpt, device="cpu")  # warm the imports and the OS file cache
        loads = []
        for _ in range(3):
            t0 = time.perf_counter()
            pred = Predictor.load(ckpt, device="cpu")
            loads.append(time.perf_counter() - t0)
        rows.append(
            {
                "benchmark": f"model load, median of 3 ({label}, {pred.model_id})",
                "value": statistics.median(loads),
                "unit": "s",
                "target": "< 3 s",
            }
        )

        with Recording.open(edf) as rec:
            n_slots = sum(s is not None for s in rec.canonical_sources)
            t0 = time.perf_counter()
            emb = pred.embed_recording(rec, use_cache=False)
            staged = pred.stage(emb)
            full = time.perf_counter() - t0
            rows.append(
                {
                    "benchmark": f"full night {hours:g} h, {n_slots} slots, {len(emb.onsets_s)} "
                    f"windows, embed + stage, {THREADS} threads ({label})",
                    "value": full,
                    "unit": "s",
                    "target": "< 60 s" if hours == 8 else f"< {60 * hours / 8:g} s (pro rata)",
                }
            )
            pred.save_caches(rec.path, emb, STRIDE_S)  # what a first run leaves beside the file
            # The first search after a load builds the query router (MiniLM embeddings of the
            # phrase bank) and warms the search path: its own row, not part of the median.
            t0 = time.perf_counter()
            pred.search(pred.embed_recording(rec), WARM_UP_QUERY)
            rows.append(
                {
                    "benchmark": f"first query after the model load (builds the query router) "
                    f"({label})",
                    "value": time.perf_counter() - t0,
                    "unit": "s",
                    "target": "",
                }
            )
            times = []
            for q in QUERIES:  # each text is new to the predictor: encoding is included
                t0 = time.perf_counter()
                cached = pred.embed_recording(rec)
                pred.search(cached, q)
                times.append(time.perf_counter() - t0)
            rows.append(
                {
                    "benchmark": f"query on a cached {hours:g}-h night (cache read + text + "
                    f"search), median of {len(QUERIES)} ({label})",
                    "value": 1000 * statistics.median(times),
                    "unit": "ms",
                    "target": "< 200 ms",
                }
            )
            assert len(staged.epochs) == int(rec.duration_s // 30)

            if torch.cuda.is_available():
                gpu = Predictor.load(ckpt, device="cuda")
                gpu.embed_recording(rec, use_cache=False)  # warm-up (kernels, cuDNN)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                emb = gpu.embed_recording(rec, use_cache=False)
                gpu.stage(emb)
                torch.cuda.synchronize()
                rows.append(
                    {
                        "benchmark": f"full night {hours:g} h on {torch.cuda.get_device_name()} "
                        f"({label})",
                        "value": time.perf_counter() - t0,
                        "unit": "s",
                        "target": "",
                    }
                )
    finally:
        torch.set_num_threads(before)
    return rows
