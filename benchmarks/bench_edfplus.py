"""The viewer on real-style EDF+ files: annotations inside the file, 24 h, up to 100 000 events.

Writes 24-h, 20-channel, 256-Hz EDF+C files (about 0.9 GB each, under ``$SLEEPLM_BENCH_DIR``,
default ``/tmp/sleeplm-bench``, never committed) whose ``EDF Annotations`` signal holds a
stage for every 30-s epoch plus events (3 000 annotations in all, then 100 000), and times in
the viewer (offscreen):

- open to first painted page (< 500 ms with 3 000 annotations, < 1 s with 100 000), the
  annotations read on a thread meanwhile, and open until they are shown;
- ``Recording.open`` + reading the annotations alone (the part that was 2.7 s of parsing);
- adding one event and undoing it with 100 000 events in the store (< 16 ms each: one frame);
- reading back the app's own annotation-only EDF+ export of 100 000 events with channels
  (the channels sit in the ``.extras.json`` sidecar and are attached back to their events).

Run with ``python -m benchmarks edfplus``.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np

HOURS = 24
SF = 256
N_CH = 20
TAL_BYTES = 400  # annotation-signal bytes per 1-s record (200 samples)
EVENTS = ("Obstructive apnea", "Hypopnea", "Arousal", "Spindle", "Limb movement")
STAGES = ("Sleep stage W", "Sleep stage N1", "Sleep stage N2", "Sleep stage N3", "Sleep stage R")


def _folder() -> Path:
    d = Path(os.environ.get("SLEEPLM_BENCH_DIR", "/tmp/sleeplm-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _header(n_records: int) -> bytes:
    labels = [f"EEG{i:02d}-M2" for i in range(N_CH)] + ["EDF Annotations"]
    ns = len(labels)

    def f(values: list[str], width: int) -> str:
        return "".join(v[:width].ljust(width) for v in values)

    fixed = (
        "0".ljust(8) + "X X X X".ljust(80) + "Startdate 01-JAN-2024 X X X".ljust(80)
        + "01.01.2422.00.00" + str(256 * (ns + 1)).ljust(8) + "EDF+C".ljust(44)
        + str(n_records).ljust(8) + "1".ljust(8) + str(ns).ljust(4)
    )  # fmt: skip
    sig = (
        f(labels, 16) + f([""] * ns, 80) + f(["uV"] * N_CH + [""], 8)
        + f(["-500"] * N_CH + ["-1"], 8) + f(["500"] * N_CH + ["1"], 8)
        + f(["-32768"] * ns, 8) + f(["32767"] * ns, 8) + f([""] * ns, 80)
        + f([str(SF)] * N_CH + [str(TAL_BYTES // 2)], 8) + f([""] * ns, 32)
    )  # fmt: skip
    return (fixed + sig).encode("ascii")


def write_edfplus(path: Path, n_annotations: int, hours: float = HOURS) -> Path:
    """A night with a stage per epoch and events up to ``n_annotations`` TALs in all."""
    n_rec = int(hours * 3600)
    n_epochs = n_rec // 30
    rng = np.random.default_rng(7)
    per_record: list[list[bytes]] = [[] for _ in range(n_rec)]
    for e in range(n_epochs):
        per_record[e * 30].append(f"+{e * 30}\x1530\x14{STAGES[e % 5]}\x14".encode())
    onsets = np.sort(rng.uniform(0, n_rec - 60, max(n_annotations - n_epochs, 0)))
    for k, on in enumerate(onsets):
        text = f"+{on:.3f}\x15{5 + k % 20}\x14{EVENTS[k % len(EVENTS)]}\x14"
        per_record[int(on)].append(text.encode())
    block = np.random.default_rng(0).normal(0, 2000, (600, N_CH * SF)).astype("<i2")
    tmp = path.with_suffix(".part")
    with tmp.open("wb") as fh:
        fh.write(_header(n_rec))
        for r0 in range(0, n_rec, 600):
            n = min(600, n_rec - r0)
            rec = np.zeros((n, N_CH * SF * 2 + TAL_BYTES), np.uint8)
            rec[:, : N_CH * SF * 2] = block[:n].view(np.uint8)
            for i in range(n):
                tal = f"+{r0 + i}\x14\x14\x00".encode() + b"\x00".join(per_record[r0 + i])
                if len(tal) > TAL_BYTES:
                    raise ValueError("too many annotations in one record for the bench file")
                rec[i, N_CH * SF * 2 : N_CH * SF * 2 + len(tal)] = np.frombuffer(tal, np.uint8)
            fh.write(rec.tobytes())
    tmp.replace(path)
    return path


def bench_file(n_annotations: int) -> Path:
    """The 24-h EDF+ with ``n_annotations`` annotations, written on first use."""
    path = _folder() / f"edfplus_{HOURS}h_{n_annotations}ann.edf"
    if not path.is_file():
        write_edfplus(path, n_annotations)
    return path


def _row(name: str, value: float, unit: str, target: str = "") -> dict:
    return {"benchmark": name, "value": round(float(value), 2), "unit": unit, "target": target}


def _open_in_viewer(path: Path, repeats: int = 3) -> tuple[float, float, object, object]:
    """Median open-to-first-paint and open-to-annotations-shown (ms) over fresh windows.

    The window reads the annotations in the background as the app does
    (``annotations_in_background``); the last window stays open.
    """
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from sleepviewer.widgets.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    settings = QSettings(str(_folder() / "bench-settings.ini"), QSettings.Format.IniFormat)
    times, shown, win = [], [], None
    for _ in range(repeats):
        if win is not None:
            win.close()
            win.deleteLater()
            app.processEvents()
        for p in path.parent.glob(path.stem + "*.sleepviewer.csv"):
            p.unlink()
        settings.clear()
        win = MainWindow(settings=settings, report_error=print)
        win.annotations_in_background = True
        win.resize(1600, 900)
        win.show()
        app.processEvents()
        t0 = time.perf_counter()
        win.open_file(path)
        win.trace_view.plot_widget.viewport().repaint()
        app.processEvents()
        times.append(1000 * (time.perf_counter() - t0))
        while win.store is None and time.perf_counter() - t0 < 120:
            app.processEvents()
            time.sleep(0.002)
        win.trace_view.plot_widget.viewport().repaint()
        shown.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times), statistics.median(shown), app, win


def _add_undo(app: object, win: object) -> tuple[float, float, int]:
    from sleeplm_core.io.annotations import Annotation

    store = win.store  # type: ignore[attr-defined]
    adds, undos = [], []
    for k in range(15):
        a = Annotation(3600.0 + 97.0 * k, 12.0, "Obstructive apnea")
        t0 = time.perf_counter()
        store.add(a)
        app.processEvents()  # type: ignore[attr-defined]
        adds.append(1000 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        store.undo_stack.undo()
        app.processEvents()  # type: ignore[attr-defined]
        undos.append(1000 * (time.perf_counter() - t0))
    return statistics.median(adds), statistics.median(undos), store.event_count()


def run() -> list[dict]:
    """Open the 3 000- and 100 000-annotation files in the viewer; add/undo at 100 000."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from sleeplm_core.io.recording import Recording
    from sleepviewer.widgets.main_window import warm_imports

    warm_imports().join()
    rows: list[dict] = []
    for n, target in ((3_000, "< 500 ms"), (100_000, "< 1000 ms")):
        path = bench_file(n)
        t0 = time.perf_counter()
        with Recording.open(path) as rec:
            count = len(rec.annotations)
        read_ms = 1000 * (time.perf_counter() - t0)
        rows.append(_row(f"Recording.open + annotations, 24 h EDF+, {count} annotations",
                         read_ms, "ms"))  # fmt: skip
        ms, shown_ms, app, win = _open_in_viewer(path)
        rows.append(_row(f"sleepviewer: open to first paint, 24 h EDF+, {n} annotations "
                         "(median of 3)", ms, "ms", target))  # fmt: skip
        rows.append(_row(f"sleepviewer: open to annotations shown, {n} annotations "
                         "(read in the background)", shown_ms, "ms"))  # fmt: skip
        if n == 100_000 and getattr(win, "store", None) is not None:
            add, undo, events = _add_undo(app, win)
            rows.append(_row(f"sleepviewer: add one event, {events} events (median of 15)",
                             add, "ms", "< 16 ms"))  # fmt: skip
            rows.append(_row(f"sleepviewer: undo that add, {events} events (median of 15)",
                             undo, "ms", "< 16 ms"))  # fmt: skip
        win.close()  # type: ignore[attr-defined]
        app.processEvents()  # type: ignore[attr-defined]
        for p in path.parent.glob(path.stem + "*.sleepviewer.csv"):
            p.unlink()
    rows.append(_row("read back an annotation-only EDF+ export, 100000 events with channels "
                     "(sidecar attached)", _export_round_trip_ms(100_000), "ms"))  # fmt: skip
    return rows


def _export_round_trip_ms(n: int) -> float:
    """Write ``n`` channelled events as an annotation-only EDF+ and time reading them back."""
    from datetime import datetime

    from sleeplm_core.io.annotations import Annotation, Annotations, read_annotations
    from sleeplm_core.io.edf_writer import write_edf_annotations

    rng = np.random.default_rng(0)
    onsets = np.sort(rng.uniform(0, HOURS * 3600 - 60, n)).round(3)
    ann = Annotations([Annotation(float(t), 1.0, EVENTS[i % len(EVENTS)], channel="C3-M2")
                       for i, t in enumerate(onsets)])  # fmt: skip
    path = _folder() / f"export_{n}.edf"
    write_edf_annotations(ann, path, start=datetime(2024, 1, 1, 22, 0))
    t0 = time.perf_counter()
    back = read_annotations(path)
    ms = 1000 * (time.perf_counter() - t0)
    if sum(a.channel == "C3-M2" for a in back) != n:
        raise RuntimeError("the export's channels did not come back")
    return ms
