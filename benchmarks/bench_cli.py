"""Start-up time of the command lines, against a bare Python start in the same run.

Each command is started ``REPEATS`` times in a fresh process; the median wall time is shown,
and the ratio to ``python -c pass`` (the floor any command pays). ``sleeplm --help`` imports
no subcommand module (the registry in ``sleeplm_core.cli.main`` carries the one-line helps),
so it should stay close to that floor; ``sleeplm stage --help`` imports only ``stage``'s.
``sleeplm info FILE`` (issue 16: < 1 s) runs on the bundled sample night (EDF + NSRR XML) and
on the 24-h EDF+ files of ``bench_edfplus`` (annotations inside the file; written on first
use), warm page cache.

Usage::

    python -m benchmarks cli
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 7
BIN = Path(sys.executable).parent


def _median_s(cmd: list[str]) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run() -> list[dict]:
    floor = _median_s([sys.executable, "-c", "pass"])
    rows = [{"benchmark": "python -c pass (floor)", "value": floor * 1e3, "unit": "ms",
             "target": ""}]  # fmt: skip
    cases = [
        ("sleeplm --help", [str(BIN / "sleeplm"), "--help"], "< 300 ms"),
        ("sleeplm --version", [str(BIN / "sleeplm"), "--version"], "< 300 ms"),
        ("sleeplm stage --help", [str(BIN / "sleeplm"), "stage", "--help"], "< 500 ms"),
        ("sleeplm info --help", [str(BIN / "sleeplm"), "info", "--help"], ""),
    ]
    from benchmarks.bench_edfplus import bench_file
    from sleeplm_core.resources import resource_path

    sample = resource_path("sample", "sample_night.edf")
    cases += [
        ("sleeplm info, bundled sample night (EDF + XML scoring)",
         [str(BIN / "sleeplm"), "info", str(sample)], "< 1000 ms"),
        ("sleeplm info, 24 h EDF+, 3000 annotations inside",
         [str(BIN / "sleeplm"), "info", str(bench_file(3000))], "< 1000 ms"),
        ("sleeplm info, 24 h EDF+, 100000 annotations inside",
         [str(BIN / "sleeplm"), "info", str(bench_file(100_000))], ""),
    ]  # fmt: skip
    for name, cmd, target in cases:
        t = _median_s(cmd)
        rows.append({"benchmark": name, "value": t * 1e3, "unit": "ms", "target": target})
        rows.append({"benchmark": f"{name} / floor", "value": t / floor, "unit": "x",
                     "target": ""})  # fmt: skip
    return rows
