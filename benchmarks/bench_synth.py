"""Synthetic night generation speed: 8 h at the default rates (EEG 256 Hz) on one core.

Usage::

    python -m benchmarks synth
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from sleeplm_core.synth import generate_night, write_night


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run() -> list[dict]:
    rows: list[dict] = []
    t0, c0 = time.perf_counter(), _cpu_s()
    night = generate_night(hours=8.0, seed=1, ahi=20)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    rows.append(
        {"benchmark": "generate_night 8 h (wall)", "value": wall, "unit": "s", "target": "< 30 s"}
    )
    rows.append(
        {"benchmark": "generate_night 8 h (cpu)", "value": cpu, "unit": "s", "target": "< 30 s"}
    )
    with TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        edf, _ = write_night(night, Path(tmp) / "night.edf")
        rows.append(
            {
                "benchmark": "write_night 8 h (EDF+ and XML)",
                "value": time.perf_counter() - t0,
                "unit": "s",
                "target": "< 30 s",
            }
        )
        rows.append(
            {
                "benchmark": "EDF size 8 h",
                "value": edf.stat().st_size / 1e6,
                "unit": "MB",
                "target": "",
            }
        )
    return rows
