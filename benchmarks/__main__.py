"""Run every ``benchmarks/bench_*.py`` module and print one table.

Each module defines ``run() -> list[dict]`` whose rows have the keys ``benchmark``,
``value``, ``unit`` and ``target`` (a string such as ``"< 30 ms"``, or ``""``).

Usage::

    make bench                      # all benchmarks
    python -m benchmarks io viewer  # only bench_io.py and bench_viewer.py
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
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


def main(argv: list[str]) -> int:
    """Run the selected benchmark modules and print the table; return the exit status."""
    rows: list[dict] = []
    failed = 0
    for name in _modules(argv):
        t0 = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
            for row in mod.run():
                rows.append({"module": name.removeprefix("bench_"), **row})
        except Exception:  # a broken benchmark must not hide the others
            failed += 1
            traceback.print_exc()
        print(f"  {name} took {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(_format(rows) if rows else "no benchmark rows")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
