"""Full-night staging, SleepLM against YASA on the same night and CPU, in one run (a ratio).

The night: synthetic, 8 h (``SLEEPLM_BENCH_HOURS``), seed 10 900, 256 Hz, written once to
``$SLEEPLM_BENCH_DIR`` (default ``/tmp/sleeplm-bench``, never committed). Two montages:

- **full**: SleepLM reads the file itself (``Recording.open`` -> embeddings -> ``stage``)
  three ways: staging (``sleeplm stage``, ``sleeplm batch stage``, ``Predictor.stage``: one
  window per epoch over the staging montage, EEG + EOG + chin EMG, ``embed_for_staging``);
  every channel with windows 30 s apart (stages plus a dense search track without overlap,
  ``sleeplm batch embed``); every channel 15 s apart (the viewer and ``sleeplm search``:
  stages plus the 2x-overlap search track). YASA's ``SleepStaging`` gets C4-M1 + E1-M2 +
  chin EMG, read from the same file.
- **one central EEG** (C4-M1): both get the same array (``Predictor.predict_stages`` and
  ``SleepStaging(raw, "C4-M1")``).

Rows give the wall time and the process CPU time of each, the ratio YASA / SleepLM (> 1:
SleepLM is faster) and each one's agreement with the night's true stages. The two run in
alternation, each ``REPEATS`` times, and the median counts: the 2-core machine is shared,
interleaving gives both the same neighbours. SleepLM runs with
:func:`sleeplm_core.train.device.inference_threads` torch threads (all cores); YASA as it
comes (its features are single-threaded numpy, its LightGBM uses every core).

Usage::

    python -m benchmarks staging
    SLEEPLM_BENCH_HOURS=1 python -m benchmarks staging      # quicker
    SLEEPLM_BENCH_CHECKPOINT=runs/x python -m benchmarks staging   # another checkpoint

Another checkpoint times another architecture (say ``--set signal.patch_size=32``, half the
tokens) before it is worth training: its speed does not depend on its weights, its agreement
with the true stages does (an untrained one's is chance).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPEATS = int(os.environ.get("SLEEPLM_BENCH_REPEATS", "2"))
EEG, EOG, EMG = "C4-M1", "E1-M2", "Chin1-Chin2"


def _folder() -> Path:
    d = Path(os.environ.get("SLEEPLM_BENCH_DIR", "/tmp/sleeplm-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def night(hours: float) -> Path:
    """The benchmark night (EDF+ with its XML), generated on first use."""
    from sleeplm_core.synth import generate_night, write_night

    edf = _folder() / f"staging-night-{hours:g}h.edf"
    if not edf.is_file():
        write_night(generate_night(hours=hours, seed=10_900, ahi=20.0, sf=256), edf)
    return edf


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _agreement(truth: np.ndarray, pred: list[str]) -> float:
    n = min(len(truth), len(pred))
    scored = np.isin(truth[:n], ["W", "N1", "N2", "N3", "REM"])
    return float(np.mean(truth[:n][scored] == np.asarray(pred[:n])[scored]))


def run() -> list[dict]:
    """Time SleepLM and YASA staging on one night, both montages, interleaved."""
    import torch

    from sleeplm_core.eval.baselines import _quiet_yasa, yasa_staging_array
    from sleeplm_core.inference import STAGING_STRIDE_S, STRIDE_S, Predictor
    from sleeplm_core.io.recording import Recording
    from sleeplm_core.train.device import inference_threads

    hours = float(os.environ.get("SLEEPLM_BENCH_HOURS", "8"))
    edf = night(hours)
    before = torch.get_num_threads()
    threads = inference_threads()
    torch.set_num_threads(threads)
    pred = Predictor.load(os.environ.get("SLEEPLM_BENCH_CHECKPOINT") or None, device="cpu")
    precision = "bf16 autocast" if pred.cpu_bf16 else "fp32"
    with Recording.open(edf, annotations=edf.with_suffix(".xml")) as rec:
        hyp = rec.hypnogram
        truth = hyp.stages if hyp is not None else np.array([])

    def ours_staging() -> list[str]:
        with Recording.open(edf) as r:
            emb = pred.embed_for_staging(r, use_cache=False)
            return [e.stage for e in pred.stage(emb).epochs]

    def ours_full() -> list[str]:  # every channel: stages + the dense track, no overlap
        with Recording.open(edf) as r:
            emb = pred.embed_recording(r, stride_s=STAGING_STRIDE_S, use_cache=False)
            return [e.stage for e in pred.stage(emb).epochs]

    def ours_search() -> list[str]:  # what the viewer computes: stages + the search track
        with Recording.open(edf) as r:
            emb = pred.embed_recording(r, stride_s=STRIDE_S, use_cache=False)
            return [e.stage for e in pred.stage(emb).epochs]

    def read(names: list[str]) -> tuple[np.ndarray, float]:
        with Recording.open(edf) as r:
            w = r.window(0.0, r.duration_s, names)
            return w.data.astype(np.float64), w.sf

    def yasa_full() -> list[str]:
        data, sf = read([EEG, EOG, EMG])
        return yasa_staging_array(data[0], sf, EEG, eog=data[1], emg=data[2])

    eeg, sf = read([EEG])

    def ours_eeg() -> list[str]:
        return pred.predict_stages(eeg[0], sf, EEG)

    def yasa_eeg() -> list[str]:
        return yasa_staging_array(eeg[0], sf, EEG)

    cases = {
        # targets (issue 16): staging >= 1x YASA; with the dense search track within 1.5x
        "full montage, staging (EEG + EOG + chin EMG, one window per epoch)": (
            ours_staging, yasa_full, ">= 1"),
        f"full montage, every channel, windows {STAGING_STRIDE_S:g} s apart (staging + dense "
        "search track)": (ours_full, yasa_full, ">= 0.67"),
        f"full montage, every channel, windows {STRIDE_S:g} s apart (staging + 2x-overlap "
        "search track)": (ours_search, yasa_full, ""),
        "one central EEG": (ours_eeg, yasa_eeg, ">= 1"),
    }
    rows: list[dict] = []
    try:
        with _quiet_yasa():
            ours_eeg(), yasa_eeg()  # warm-up: imports, YASA's model file, the OS cache
            for case, (ours, yasa, target) in cases.items():
                runs: dict[str, list[tuple[float, float]]] = {"ours": [], "yasa": []}
                acc: dict[str, float] = {}
                for _ in range(REPEATS):
                    for who, fn in (("ours", ours), ("yasa", yasa)):
                        out, wall, cpu = _timed(fn)
                        runs[who].append((wall, cpu))
                        acc[who] = _agreement(truth, out)
                wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
                cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
                label = f"{hours:g} h night, {case}"
                rows += [
                    {"benchmark": f"SleepLM, {label}, {threads} torch threads, {precision}",
                     "value": wall["ours"], "unit": "s", "target": ""},
                    {"benchmark": f"YASA SleepStaging, {label}", "value": wall["yasa"],
                     "unit": "s", "target": ""},
                    {"benchmark": f"speed ratio YASA / SleepLM, wall, {label}",
                     "value": wall["yasa"] / wall["ours"], "unit": "x", "target": target},
                    {"benchmark": f"SleepLM CPU time, {label}", "value": cpu["ours"],
                     "unit": "CPU-s", "target": ""},
                    {"benchmark": f"YASA CPU time, {label}", "value": cpu["yasa"],
                     "unit": "CPU-s", "target": ""},
                    {"benchmark": f"speed ratio YASA / SleepLM, CPU time, {label}",
                     "value": cpu["yasa"] / cpu["ours"], "unit": "x", "target": ""},
                    {"benchmark": f"agreement with the true stages, SleepLM / YASA, {label}",
                     "value": f"{acc['ours']:.3f} / {acc['yasa']:.3f}", "unit": "", "target": ""},
                ]  # fmt: skip
    finally:
        torch.set_num_threads(before)
    rows.append({"benchmark": "machine load per core at end",
                 "value": os.getloadavg()[0] / (os.cpu_count() or 1), "unit": "", "target": ""})
    return rows
