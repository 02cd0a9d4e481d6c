"""File → Import: scoring files, vendor exports and stage/event channels, mapped before applying.

Known formats (EDF+, NSRR/Profusion XML, our CSV, DREAMS text) import at once. A vendor's text
export (Noxturnal CSV, RemLogic/Embla text, Compumedics-style list) and a hypnogram or event
channel inside the recording open :class:`ScoringImportDialog` first: one row per source label,
how many rows carry it, and what it will become (proposed from
``resources/event_label_map.csv``, editable). Nothing changes until the user presses Import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QInputDialog,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.labels import EVENT_LABELS, STAGE_LABEL, stage_of
from sleeplm_core.io.scoring_import import KEEP, SKIP, ImportPlan, plan_from_channel, plan_from_file
from sleeplm_core.stages import EPOCH_S
from sleepviewer.scoring_files import stage_channels

KEEP_TEXT = "(keep as written)"
SKIP_TEXT = "(skip)"
TARGETS: tuple[str, ...] = (*STAGE_LABEL.values(), *EVENT_LABELS)
"""Labels offered in the mapping column, besides keeping and skipping."""


class ScoringImportDialog(QDialog):
    """Show how each source label will be imported; editable; applied on accept.

    Parameters
    ----------
    plan : ImportPlan
        The planned import (its mapping is the proposal).
    parent : QWidget or None
        Qt parent.
    """

    def __init__(self, plan: ImportPlan, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setWindowTitle("Import scoring: label mapping")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{plan.source}: {len(plan.events)} rows. "
                                "Check how each label will be imported.", self))
        counts = plan.counts()
        self.table = QTableWidget(len(plan.mapping), 3, self)
        self.table.setHorizontalHeaderLabels(["Label in the file", "Rows", "Import as"])
        self.boxes: dict[str, QComboBox] = {}
        for i, (label, target) in enumerate(plan.mapping.items()):
            for col, text in ((0, label), (1, str(counts[label]))):
                item = QTableWidgetItem(text)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                self.table.setItem(i, col, item)
            box = QComboBox(self.table)
            box.addItem(KEEP_TEXT, KEEP)
            box.addItem(SKIP_TEXT, SKIP)
            for t in TARGETS:
                box.addItem(t, t)
            if target not in (KEEP, SKIP) and box.findData(target) < 0:
                box.addItem(target, target)
            box.setCurrentIndex(max(box.findData(target), 0))
            self.table.setCellWidget(i, 2, box)
            self.boxes[label] = box
        header = self.table.horizontalHeader()
        if header is not None:
            header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
            header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        if ok is not None:
            ok.setText("Import")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(640, 420)

    def mapping(self) -> dict[str, str]:
        """The mapping as the user left it (label -> our label, KEEP or SKIP)."""
        return {label: str(box.currentData()) for label, box in self.boxes.items()}

    def set_target(self, label: str, target: str) -> None:
        """Choose what a source label becomes (as the user would in its combo box)."""
        box = self.boxes[label]
        box.setCurrentIndex(max(box.findData(target), 0))


def import_scoring(window: Any, path: str | Path) -> bool | ScoringImportDialog:
    """Import a file into the window's annotation store.

    Known formats are read at once; a vendor text export opens the mapping dialog (returned,
    non-blocking) and is applied when the user accepts it.

    Returns
    -------
    bool or ScoringImportDialog
        ``True`` when imported, ``False`` on failure (one line reported), or the open dialog.
    """
    from sleeplm_core.io.annotations import read_annotations

    rec = window.recording
    if rec is None or window.store is None:
        window._report_error("Open a recording before importing annotations")
        return False
    try:
        ann = read_annotations(path, duration_s=rec.duration_s, start=rec.start)
    except SleepLMError as known_exc:
        try:
            plan = plan_from_file(path, rec.start, rec.duration_s)
        except SleepLMError as exc:
            # not a vendor table either: the first complaint is the useful one, unless the
            # vendor reader recognised the table and found what is wrong with it
            if "no event table header" in str(exc):
                window._report_error(known_exc.one_line())
            else:
                window._report_error(exc.one_line())
            return False
        return _open_dialog(window, plan)
    except (OSError, ValueError) as exc:
        window._report_error(f"{path}: {' '.join(str(exc).split())}")
        return False
    _add_to_store(window, list(ann), Path(path).name)
    return True


def import_channel_scoring(window: Any, name: str | None = None) -> ScoringImportDialog | None:
    """Offer a hypnogram/event channel of the recording for import (asks which when several)."""
    rec = window.recording
    names = stage_channels(rec) if rec is not None else []
    if not names or window.store is None:
        window.statusBar().showMessage("This recording has no hypnogram or event channel", 5000)
        return None
    if name is None:
        if len(names) == 1:
            name = names[0]
        else:
            name, ok = QInputDialog.getItem(window, "Import scoring from channel", "Channel:",
                                            names, 0, False)
            if not ok:
                return None
    return _open_dialog(window, plan_from_channel(rec, name))


def _open_dialog(window: Any, plan: ImportPlan) -> ScoringImportDialog:
    dlg = ScoringImportDialog(plan, window)
    window.import_dialog = dlg
    dlg.accepted.connect(lambda: _apply(window, dlg))
    dlg.open()
    return dlg


def _apply(window: Any, dlg: ScoringImportDialog) -> None:
    rec = window.recording
    try:
        ann = dlg.plan.apply(rec.duration_s, dlg.mapping())
    except SleepLMError as exc:
        window._report_error(exc.one_line())
        return
    _add_to_store(window, list(ann), dlg.plan.source)


def _add_to_store(window: Any, ann: list[Any], source: str) -> None:
    store = window.store
    events = [a for a in ann if not a.is_stage]
    if events:
        store.add(events)
    for a in ann:
        if a.is_stage:
            first = int(a.onset_s // EPOCH_S)
            last = max(first, int((a.onset_s + a.duration_s - 1e-6) // EPOCH_S))
            store.set_stage(list(range(first, last + 1)), stage_of(a.label))
    n_stages = sum(1 for a in ann if a.is_stage)
    window.statusBar().showMessage(
        f"Imported {n_stages} stages and {len(events)} events from {source}", 8000)
    if events and window.annotation_dock is not None:
        window.annotation_dock.show()
    window.refresh()
