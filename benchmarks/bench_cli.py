"""Start-up time of the command lines, against a bare Python start in the same run.

Each command is started ``REPEATS`` times in a fresh process; the median wall time is shown,
and the ratio to ``python -c pass`` (the floor any command pays). ``sleeplm --help`` imports
no subcommand module (the registry in ``sleeplm_core.cli.main`` carries the one-line helps),
so it should stay close to that floor; ``sleeplm stage --help`` imports only ``stage``'s.

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
    for name, cmd, target in cases:
        t = _median_s(cmd)
        rows.append({"benchmark": name, "value": t * 1e3, "unit": "ms", "target": target})
        rows.append({"benchmark": f"{name} / floor", "value": t / floor, "unit": "x",
                     "target": ""})  # fmt: skip
    return rows
