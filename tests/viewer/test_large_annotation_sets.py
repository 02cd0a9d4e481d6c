"""Edits in a big annotation set update the store's indexes and the event strip in place;
what they show must equal a rebuild from scratch."""

from __future__ import annotations

import numpy as np
import pytest

from sleeplm_core.io.annotations import Annotation, Annotations
from sleepviewer.annotation_store import AnnotationStore
from sleepviewer.widgets.annotation_dock import AnnotationDock
from sleepviewer.widgets.hypnogram_view import HypnogramView

LABELS = ("Obstructive apnea", "Arousal", "Spindle", "Hypopnea")
DURATION_S = 8 * 3600.0


def _events(n: int, seed: int = 3) -> list[Annotation]:
    rng = np.random.default_rng(seed)
    onsets = np.round(rng.uniform(0, DURATION_S - 60, n), 2)
    durations = np.where(rng.random(n) < 0.01, 900.0, rng.uniform(0.5, 40, n).round(1))
    return [
        Annotation(float(o), float(d), LABELS[k % len(LABELS)])
        for k, (o, d) in enumerate(zip(onsets, durations, strict=True))
    ]


def test_annotations_counts_and_remove_follow_edits() -> None:
    items = _events(2000)
    ann = Annotations(items)
    extra = Annotation(100.0, 5.0, "Arousal")
    ann.add(extra)
    ann.remove(items[7])
    kept = [a for a in items if a is not items[7]] + [extra]
    assert ann.counts() == Annotations(kept).counts()
    assert ann.onsets() == [a.onset_s for a in Annotations(kept)]
    with pytest.raises(ValueError):
        ann.remove(items[7])


def test_add_undo_redo_keep_the_page_index_and_the_strip_exact(qtbot) -> None:
    store = AnnotationStore(_events(3000), duration_s=DURATION_S, sidecar_path=None)
    view = HypnogramView(store)
    qtbot.addWidget(view)
    dock = AnnotationDock(store)
    qtbot.addWidget(dock)
    filtered = AnnotationDock(store)
    qtbot.addWidget(filtered)
    filtered.set_filter("Spindle")
    store.in_range(0.0, 30.0)  # build the page index, then edit it in place
    new = [Annotation(3600.0 + 61.0 * k, 1000.0 if k == 3 else 12.0, LABELS[k % 4])
           for k in range(6)]  # fmt: skip
    for a in new:
        store.add(a)
    store.undo_stack.undo()
    store.undo_stack.undo()
    store.undo_stack.redo()
    store.delete(store.event_at(10))
    store.edit(store.event_at(20), Annotation(7000.0, 3.0, "Spindle"))
    view._on_events_timer_timeout()  # what the debounce timer runs
    incremental = {k: list(v) for k, v in (view._tick_onsets or {}).items()}
    xs = {lab: c.getData()[0].copy() for lab, c in view._tick_by_label.items()}

    rows = [dock.model.annotation(i) for i in range(dock.model.rowCount())]
    assert rows == store.events() and dock.model.onsets == store.event_onsets()
    spindles = [filtered.model.annotation(i) for i in range(filtered.model.rowCount())]
    assert spindles == [a for a in store.events() if a.label == "Spindle"]
    rebuilt = AnnotationStore(store.events(), duration_s=DURATION_S, sidecar_path=None)
    for start in np.arange(0.0, DURATION_S, 1234.5):
        assert store.in_range(start, start + 30.0) == rebuilt.in_range(start, start + 30.0)
    assert store.label_counts() == rebuilt.label_counts()
    view.redraw_events()  # from scratch
    assert {k: list(v) for k, v in (view._tick_onsets or {}).items()} == incremental
    assert xs.keys() == view._tick_by_label.keys()
    for lab, x in xs.items():
        assert np.array_equal(x, view._tick_by_label[lab].getData()[0])


def test_background_read_paints_first_then_attaches_the_annotations(
    qtbot, isolated_settings, error_log, small_edf
) -> None:
    from PyQt6.QtCore import QSettings

    from sleepviewer.widgets.main_window import MainWindow

    settings = QSettings(str(isolated_settings / "viewer.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, report_error=error_log.append)
    win.spectrogram_enabled = False
    win.overview_in_background = False
    win.annotations_in_background = True
    qtbot.addWidget(win)
    win.show()
    assert win.open_file(small_edf)
    assert win.store is None  # the page is up; the annotations come from the event loop
    qtbot.waitUntil(lambda: win.store is not None, timeout=10_000)
    assert win.store.event_count() == 1 and win.store.stage_at(3) == "N2"
    assert not error_log
    win.close()
