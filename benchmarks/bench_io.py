"""Recording I/O: open time, resident memory and page reads on a ~280 MB EDF+ night.

Writes a synthetic 20-channel, 256 Hz EDF+C night (about 7.6 h, 280 MB) into a temporary
folder, opens it with :class:`sleeplm_core.io.recording.Recording` and times random 30-s
pages of all 20 channels (the viewer's scroll), the model's canonical window, and MNE's own
lazy reader on the same pages for comparison.

Run with ``python -m benchmarks io``.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

N_CH = 20
SF = 256
TARGET_MB = 280
TAL_SAMPLES = 32  # 64 bytes of annotation signal per 1-s record
NAMES = [
    "F3-M2", "F4-M1", "C3-M2", "C4-M1", "O1-M2", "O2-M1", "E1-M2", "E2-M2", "Chin1-Chin2",
    "LLeg", "RLeg", "ECG", "Flow", "Nasal Pressure", "Thorax", "Abdomen", "SpO2", "Pos",
    "Snore", "Pleth",
]  # fmt: skip


def _header(n_records: int) -> bytes:
    labels = [*NAMES, "EDF Annotations"]
    ns = len(labels)
    fields = [
        [x.ljust(16) for x in labels],
        [" " * 80] * ns,
        ["uV".ljust(8)] * N_CH + [" " * 8],
        ["-500".ljust(8)] * N_CH + ["-1".ljust(8)],
        ["500".ljust(8)] * N_CH + ["1".ljust(8)],
        ["-32768".ljust(8)] * ns,
        ["32767".ljust(8)] * ns,
        [" " * 80] * ns,
        [str(SF).ljust(8)] * N_CH + [str(TAL_SAMPLES).ljust(8)],
        [" " * 32] * ns,
    ]
    fixed = (
        "0".ljust(8)
        + "X X X X".ljust(80)
        + "Startdate 01-JAN-2024 X X X".ljust(80)
        + "01.01.2423.00.00"
        + str(256 * (ns + 1)).ljust(8)
        + "EDF+C".ljust(44)
        + str(n_records).ljust(8)
        + "1".ljust(8)
        + str(ns).ljust(4)
    )
    return (fixed + "".join(sum(fields, []))).encode("ascii")


def write_night(path: Path, target_mb: float = TARGET_MB, chunk: int = 600) -> int:
    """Write a synthetic EDF+C night of about ``target_mb`` MB; return its record count."""
    record_bytes = (N_CH * SF + TAL_SAMPLES) * 2
    n_records = int(target_mb * 1e6 // record_bytes)
    rng = np.random.default_rng(0)
    block = np.zeros((chunk, record_bytes), np.uint8)
    signals = (rng.normal(0, 2000, (chunk, N_CH * SF))).astype("<i2")
    block[:, : N_CH * SF * 2] = signals.view(np.uint8)
    with path.open("wb") as fh:
        fh.write(_header(n_records))
        for first in range(0, n_records, chunk):
            count = min(chunk, n_records - first)
            tal = block[:count, N_CH * SF * 2 :]
            tal[:] = 0
            for k in range(count):
                text = f"+{first + k}\x14\x14".encode()
                tal[k, : len(text)] = np.frombuffer(text, np.uint8)
            fh.write(block[:count].tobytes())
    return n_records


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def _timed(fn: object, starts: np.ndarray) -> np.ndarray:
    out = []
    for s in starts:
        t0 = time.perf_counter()
        fn(float(s))  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(out)


def run() -> list[dict]:
    """Measure open time, resident memory and page-read times on a 280 MB EDF+."""
    import mne

    from sleeplm_core.io.recording import Recording

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.edf"  # warm up imports so they do not count as file memory
        write_night(small, 2.0)
        with Recording.open(small) as rec:
            rec.canonical(0.0, 30.0)
        path = Path(tmp) / "night.edf"
        t0 = time.perf_counter()
        n_records = write_night(path)
        write_s = time.perf_counter() - t0
        size_mb = os.path.getsize(path) / 1e6
        gc.collect()
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        rec = Recording.open(path)
        open_s = time.perf_counter() - t0
        rows.append(
            _row(f"open {size_mb:.0f} MB EDF+ (MNE header + TAL scan)", open_s, "s", "< 2 s")
        )
        rng = np.random.default_rng(1)
        starts = rng.uniform(0, n_records - 30, 200)
        with rec:
            rec.window(0.0, 30.0)  # warm-up
            for label in ("first read", "re-read"):  # re-read: the OS page cache is warm
                page = _timed(lambda s: rec.window(s, s + 30.0), starts)
                for stat, value in (("median", np.median(page)), ("p95", np.percentile(page, 95))):
                    name = f"window(): 30 s x 20 ch @ 256 Hz, {label}, {stat}"
                    rows.append(_row(name, value, "ms", "< 5 ms"))
            cpu0 = time.process_time()
            for s in starts:
                rec.window(float(s), float(s) + 30.0)
            cpu = (time.process_time() - cpu0) / len(starts) * 1e3
            rows.append(
                _row("window(): CPU time per page (p95 above is wait)", cpu, "ms", "< 5 ms")
            )
            canon = _timed(lambda s: rec.canonical(s, s + 30.0), starts[:50])
            rows.append(_row("canonical(): 12 slots @ 64 Hz, median", np.median(canon), "ms", ""))
            rss = _rss_mb() - rss0
            t0 = time.perf_counter()
            rec.canonical(0.0, 3600.0)
            rows.append(
                _row(
                    "canonical(): one hour at once (shard building)",
                    time.perf_counter() - t0,
                    "s",
                    "",
                )
            )
            rows.append(
                _row("resident memory added (file open, 650 pages read)", rss, "MB", "< 50 MB")
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
        mne_page = _timed(
            lambda s: raw.get_data(start=int(s * SF), stop=int(s * SF) + 30 * SF), starts[:30]
        )
        rows.append(
            _row("MNE lazy get_data() of the same page, median", np.median(mne_page), "ms", "")
        )
        raw.close()
        rows.append(_row("writing the synthetic night (setup)", write_s, "s", ""))
    return rows


def _row(name: str, value: float, unit: str, target: str) -> dict:
    return {"benchmark": name, "value": float(value), "unit": unit, "target": target}


if __name__ == "__main__":
    for r in run():
        print(f"{r['benchmark']:<60} {r['value']:10.3f} {r['unit']:<3} {r['target']}")
