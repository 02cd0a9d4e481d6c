"""Run every ``benchmarks/bench_*.py`` module and print one table.

Each module defines ``run() -> list[dict]`` whose rows have the keys ``benchmark``,
``value``, ``unit`` and ``target`` (a string such as ``"< 30 ms"``, or ``""``).

Each module runs in a fresh Python process (``--one NAME``), so that no module's
memory, threads or warm caches reach the next one's rows: the memory rows (resident set
size) measure that module's work alone, as a user's process would.

Usage::

    make bench                      # all benchmarks
    python -m benchmarks io viewer  # only bench_io.py and bench_viewer.py
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import time
from pathlib import Path


def _modules(selected: list[str]) -> list[str]:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if selected:
        names = [n for n in names if n.removeprefix("bench_") in selected or n in selected]
    return names


def _format(rows: list[dict]) -> str:
    header = ("module", "benchmark", "value", "unit", "target")
    table = [header] + [
        (
            str(r.get("module", "")),
            str(r["benchmark"]),
            f"{r['value']:.4g}" if isinstance(r["value"], float) else str(r["value"]),
            str(r.get("unit", "")),
            str(r.get("target", "")),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


ROWS_MARK = "@@benchmark-rows "
"""Prefix of the one stdout line on which a module's process hands back its rows (JSON)."""


def _plain(value: object) -> object:
    """A numpy scalar as its Python number (JSON), anything else as its text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def _run_one(name: str) -> int:
    """Run one module here and print its rows after :data:`ROWS_MARK`."""
    mod = importlib.import_module(f"benchmarks.{name}")
    rows = list(mod.run())
    print(ROWS_MARK + json.dumps(rows, default=_plain), flush=True)
    return 0


def _in_process(name: str) -> list[dict] | None:
    """Run module ``name`` in a fresh interpreter; its rows, or None when it failed."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--one", name],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    rows: list[dict] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith(ROWS_MARK):
            rows = json.loads(line[len(ROWS_MARK) :])
        else:
            print(line, file=sys.stderr)  # the module's own output, kept out of the table
    return rows if proc.returncode == 0 else None


def main(argv: list[str]) -> int:
    """Run the selected benchmark modules and print the table; return the exit status."""
    if argv[:1] == ["--one"]:
        return _run_one(argv[1])
    rows: list[dict] = []
    failed = 0
    for name in _modules(argv):
        t0 = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        got = _in_process(name)
        if got is None:  # a broken benchmark must not hide the others (its traceback: above)
            failed += 1
        else:
            rows += [{"module": name.removeprefix("bench_"), **row} for row in got]
        print(f"  {name} took {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(_format(rows) if rows else "no benchmark rows")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
