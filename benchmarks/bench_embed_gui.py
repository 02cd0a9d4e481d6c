"""Background embedding against the GUI: page flips while the model embeds, and the reverse.

The viewer (offscreen) shows the synthetic 8-h night of ``bench_staging`` (1 h with
``SLEEPLM_BENCH_HOURS=1``) while its :class:`~sleepviewer.workers.WorkerHost` embeds the night
with the bundled model, as the app does after opening a file (worker thread at low priority,
torch threads = cores - 1, see :func:`sleeplm_core.train.device.inference_threads`). Rows:

- page flip (next epoch, repaint) idle, and during the embedding: ratio (target <= 1.5);
- the embedding alone, and while a page is flipped every 150 ms: ratio (target <= 1.2); the
  two alternate ``SLEEPLM_BENCH_REPEATS`` times (default 2) and the medians count.

Run with ``python -m benchmarks embed_gui``.
"""

from __future__ import annotations

import os
import statistics
import time

FLIP_EVERY_S = 0.15
REPEATS = int(os.environ.get("SLEEPLM_BENCH_REPEATS", "2"))


def _row(name: str, value: float, unit: str, target: str = "") -> dict:
    return {"benchmark": name, "value": round(float(value), 3), "unit": unit, "target": target}


def run() -> list[dict]:
    """Flip pages idle and during an embedding; embed with and without flipping."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from benchmarks.bench_staging import _folder, night
    from sleepviewer.widgets.main_window import MainWindow, warm_imports
    from sleepviewer.workers import WorkerHost

    hours = float(os.environ.get("SLEEPLM_BENCH_HOURS", "8"))
    edf = night(hours)
    app = QApplication.instance() or QApplication([])
    warm_imports().join()
    settings = QSettings(str(_folder() / "embed-gui.ini"), QSettings.Format.IniFormat)
    settings.clear()
    win = MainWindow(settings=settings, report_error=print)
    win.spectrogram_enabled = False
    win.overview_in_background = False
    win.resize(1600, 900)
    win.show()
    win.open_file(edf)
    app.processEvents()

    def flip() -> float:
        t0 = time.perf_counter()
        win._on_action_next_epoch()
        win.trace_view.plot_widget.viewport().repaint()
        return 1000 * (time.perf_counter() - t0)

    def idle_flips(n: int) -> list[float]:
        out = []
        for _ in range(n):
            app.processEvents()
            out.append(flip())
            time.sleep(0.02)
        return out

    host = WorkerHost()
    done: list[float] = []
    host.finished.connect(lambda r: done.append(getattr(r, "seconds", float("nan"))))

    def embed(paging: bool) -> tuple[float, list[float]]:
        done.clear()
        flips: list[float] = []
        t0 = time.perf_counter()
        host.embed_night(edf, use_cache=False)
        next_flip = t0
        while not done and time.perf_counter() - t0 < 1800:
            app.processEvents()
            if paging and time.perf_counter() >= next_flip:
                flips.append(flip())
                next_flip = time.perf_counter() + FLIP_EVERY_S
            time.sleep(0.005)
        return time.perf_counter() - t0, flips

    try:
        idle_flips(5)  # warm caches
        idle = statistics.median(idle_flips(30))
        embed(paging=False)  # loads the model and warms the OS cache
        alones, pagings, flips = [], [], []
        for _ in range(REPEATS):  # interleaved: both conditions share the machine's neighbours
            alones.append(embed(paging=False)[0])
            seconds, some = embed(paging=True)
            pagings.append(seconds)
            flips += some
        alone, with_paging = statistics.median(alones), statistics.median(pagings)
        during = statistics.median(flips) if flips else float("nan")
    finally:
        host.close()
        win.close()
        app.processEvents()
    label = f"{hours:g}-h night"
    return [
        _row("page flip, idle (median)", idle, "ms"),
        _row(f"page flip while the model embeds the {label} (median of {len(flips)})",
             during, "ms"),  # fmt: skip
        _row("ratio: flip during embedding / idle", during / idle, "x", "<= 1.5"),
        _row(f"embedding the {label} in the viewer, no paging (median of {REPEATS})", alone, "s"),
        _row(f"embedding the {label} while paging every {FLIP_EVERY_S:g} s (median of "
             f"{REPEATS})", with_paging, "s"),  # fmt: skip
        _row("ratio: embedding while paging / alone", with_paging / alone, "x", "<= 1.2"),
        _row("machine load per core at end", os.getloadavg()[0] / (os.cpu_count() or 1), ""),
    ]
