"""Resident memory of the viewer on a big file: 24 h × 64 channels × 512 Hz (5.3 GB).

The EDF (int16, 1-s records, a repeated block of noise) is written once under
``$SLEEPLM_BENCH_DIR`` (default ``/tmp/sleeplm-bench``; never committed). The viewer opens it
offscreen, waits for its background work (whole-night min/max pyramid of the shown channels,
multitaper spectrogram of one EEG channel), shows the whole night, and reports its RSS (target
< 500 MB) and what holds memory: the pyramid and the spectrogram.

Run with ``python -m benchmarks memory`` (a few minutes: the pyramid reads the whole file).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

HOURS = 24
N_CH = 64
SF = 512


def _folder() -> Path:
    d = Path(os.environ.get("SLEEPLM_BENCH_DIR", "/tmp/sleeplm-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_big_edf(path: Path, hours: float = HOURS) -> Path:
    """A plain EDF of ``N_CH`` EEG channels at ``SF`` Hz, written in 10-min blocks."""
    n_rec = int(hours * 3600)
    labels = ["C3-M2", "C4-M1"] + [f"EEG {k:02d}-Ref" for k in range(2, N_CH)]

    def f(values: list[str], width: int) -> str:
        return "".join(v[:width].ljust(width) for v in values)

    head = (
        "0".ljust(8) + "X X X X".ljust(80) + "Startdate 01-JAN-2024 X X X".ljust(80)
        + "01.01.2422.00.00" + str(256 * (N_CH + 1)).ljust(8) + "".ljust(44)
        + str(n_rec).ljust(8) + "1".ljust(8) + str(N_CH).ljust(4)
        + f(labels, 16) + f([""] * N_CH, 80) + f(["uV"] * N_CH, 8) + f(["-500"] * N_CH, 8)
        + f(["500"] * N_CH, 8) + f(["-32768"] * N_CH, 8) + f(["32767"] * N_CH, 8)
        + f([""] * N_CH, 80) + f([str(SF)] * N_CH, 8) + f([""] * N_CH, 32)
    )  # fmt: skip
    block = np.random.default_rng(0).normal(0, 1500, (600, N_CH * SF)).astype("<i2").tobytes()
    tmp = path.with_suffix(".part")
    with tmp.open("wb") as fh:
        fh.write(head.encode("ascii"))
        for r0 in range(0, n_rec, 600):
            n = min(600, n_rec - r0)
            fh.write(block[: n * N_CH * SF * 2])
    tmp.replace(path)
    return path


def run() -> list[dict]:
    """Open the big file, let the background work finish, report RSS and its holders."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from benchmarks.bench_viewer import _row, _rss_mb, _wait_for_workers
    from sleepviewer.widgets.main_window import MainWindow, warm_imports

    path = _folder() / f"big_{HOURS}h_{N_CH}ch_{SF}hz_c3c4.edf"
    if not path.is_file():
        write_big_edf(path)
    app = QApplication.instance() or QApplication([])
    warm_imports().join()
    settings = QSettings(str(_folder() / "memory.ini"), QSettings.Format.IniFormat)
    settings.clear()
    rows = [_row("file size", path.stat().st_size / 2**20, "MB"), _row("RSS before open",
                                                                        _rss_mb(), "MB")]
    win = MainWindow(settings=settings, report_error=print)
    win.resize(1600, 900)
    win.show()
    app.processEvents()
    t0 = time.perf_counter()
    win.open_file(path)
    win.trace_view.plot_widget.viewport().repaint()
    app.processEvents()
    rows.append(_row("open to first paint", 1000 * (time.perf_counter() - t0), "ms"))
    rows.append(_row("RSS with the file open", _rss_mb(), "MB"))
    waited = _wait_for_workers(app, win, limit_s=900.0)
    rows.append(_row("background work (pyramid + spectrogram) done after", waited, "s"))
    win.set_time_base(0.0)  # the whole night, from the pyramid
    win.trace_view.plot_widget.viewport().repaint()
    app.processEvents()
    pyr = getattr(win.trace_view, "_pyramid", None)
    spec = getattr(win.hypnogram_view, "_spec", None) if win.hypnogram_view else None
    rows += [
        _row("RSS after all background work and the whole-night view", _rss_mb(), "MB",
             "< 500 MB"),
        _row(f"  held by the min/max pyramid ({len(win.state.channels)} channels)",
             (pyr.nbytes if pyr is not None else float("nan")) / 2**20, "MB"),
        _row(f"  held by the spectrogram ({win.hypnogram_view.spectrogram_channel})"
             if win.hypnogram_view else "  spectrogram: none",
             (spec.nbytes if spec is not None else 0) / 2**20, "MB"),
    ]  # fmt: skip
    win.close()
    app.processEvents()
    for p in path.parent.glob(path.stem + "*.sleepviewer.csv"):
        p.unlink()
    return rows
