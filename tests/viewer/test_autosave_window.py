"""The main window's side of autosave: focus loss saves, close never swallows a failed write."""

from __future__ import annotations

import shutil

import pytest
from PyQt6.QtCore import QEvent
from PyQt6.QtWidgets import QMessageBox

from sleepviewer import annotation_store
from sleepviewer.annotation_store import sidecar_path_for
from sleepviewer.autosave import SaveOutcome
from tests.viewer.test_main_window import make_window  # noqa: F401 - fixture


@pytest.fixture
def opened(make_window, small_edf, tmp_path):  # noqa: F811
    path = tmp_path / "night.edf"  # a copy: the sidecar must not land beside the shared file
    shutil.copy(small_edf, path)
    w = make_window()
    assert w.open_file(path)
    return w, path


def test_focus_loss_writes_pending_scoring(opened, qtbot, monkeypatch):
    w, path = opened
    w.store.score(3, "N3")
    assert w.store.has_unsaved
    w.store._debounce.stop()  # only the focus loss may write now
    w.store._max_wait.stop()
    monkeypatch.setattr(w, "isActiveWindow", lambda: False)
    w.changeEvent(QEvent(QEvent.Type.ActivationChange))
    qtbot.waitUntil(lambda: not w.store.has_unsaved, timeout=5000)
    assert sidecar_path_for(path).is_file()


def _failing_writes(monkeypatch):
    def fail(job):
        return SaveOutcome(job, None, (), "disk full")

    monkeypatch.setattr(annotation_store, "run_save", fail)


def test_close_with_unwritable_edits_asks_and_can_be_cancelled(opened, monkeypatch):
    w, _ = opened
    _failing_writes(monkeypatch)
    w.store.score(3, "N3")
    asked: list[str] = []

    def answer(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Cancel if len(asked) == 1 else (
            QMessageBox.StandardButton.Close)

    monkeypatch.setattr(QMessageBox, "question", answer)
    assert not w.close()  # cancelled: the window and its edits stay
    assert w.isVisible() and w.store is not None and w.store.has_unsaved
    assert "disk full" in asked[0] and "lose these edits" in asked[0]
    assert w.close()  # the user chose to close anyway


def test_opening_another_file_keeps_unwritable_edits(opened, small_edf, error_log, monkeypatch):
    w, path = opened
    _failing_writes(monkeypatch)
    w.store.score(3, "N3")
    assert not w.open_file(small_edf)
    assert w.recording is not None and w.recording.path == path and w.store.has_unsaved
    assert "disk full" in error_log[-1] and "was not opened" in error_log[-1]
    monkeypatch.undo()
    w.store.flush()  # the disk is back: nothing was lost
    assert not w.store.has_unsaved
