"""The annotation list: a filterable table of events that jumps the view and edits undoably.

:class:`AnnotationDock` shows the events of an
:class:`~sleepviewer.annotation_store.AnnotationStore` in a ``QTableView`` over
:class:`AnnotationTableModel` (a ``QAbstractTableModel``: only the visible rows are ever
formatted, so a night of 10,000 events stays fluid). It filters by label
(combo) and by text (line edit, over label, channel and extras), emits ``jumpRequested(onset_s)``
when a row is clicked or activated, edits label, duration and channel inline (double-click or
F2) or in :class:`AnnotationEditDialog`, and deletes the selected rows with Delete. Every
change is a command of the store, so Edit → Undo reverts it. With "Follow page" checked (the
default), :meth:`AnnotationDock.follow_page` selects the first event of the page shown as the
view moves (once the event loop is idle, after the page is painted), without taking the
keyboard focus.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Final

from PyQt6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    Qt,
    QTimer,
    pyqtSignal,
)
from PyQt6.QtGui import QColor, QIcon, QKeyEvent, QPixmap, QShowEvent
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.labels import EVENT_LABELS
from sleepviewer.annotation_store import AnnotationStore, event_order
from sleepviewer.items.annotation_item import label_color

ALL_LABELS: Final[str] = "All labels"
"""Text of the label combo's first entry (no label filter)."""

COLUMNS: Final[tuple[str, ...]] = ("Clock", "Onset (s)", "Dur. (s)", "Label", "Channel")
COL_CLOCK, COL_ONSET, COL_DURATION, COL_LABEL, COL_CHANNEL = range(5)

_IN_PLACE: Final = 16
"""Edits of up to this many events move table rows in place; bigger ones reset the model."""
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_EDIT = int(Qt.ItemDataRole.EditRole)
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_SERVED_ROLES = frozenset(
    {_DISPLAY, _EDIT, _DECORATION, _ALIGNMENT, int(Qt.ItemDataRole.ToolTipRole)}
)
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
_EDITABLE_FLAGS = _FLAGS | Qt.ItemFlag.ItemIsEditable
_EDITABLE_COLUMNS = frozenset({COL_DURATION, COL_LABEL, COL_CHANNEL})

FOLLOW_LOOK_BACK_S: Final[float] = 600.0
"""How far before the page "Follow page" looks for an event still running into it."""

AnnIndex = QModelIndex | QPersistentModelIndex


def _clock(start: datetime | None, onset_s: float) -> str:
    if start is None:
        total = int(onset_s)
        return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}"
    return (start + timedelta(seconds=onset_s)).strftime("%H:%M:%S")


class AnnotationTableModel(QAbstractTableModel):
    """Table model over the store's events, with an in-model label and text filter.

    Parameters
    ----------
    store : AnnotationStore
        The events.
    start : datetime or None
        Recording start, for the clock column (elapsed ``hh:mm:ss`` when ``None``).
    parent : QObject or None
        Qt parent.

    Signals
    -------
    rowsAboutToMove(), rowsMoved()
        Around rows inserted and removed in place for a small edit (a big one resets the
        model); a view keeps its place on these as on ``modelAboutToBeReset`` / ``modelReset``.
    """

    rowsAboutToMove = pyqtSignal()
    rowsMoved = pyqtSignal()

    def __init__(
        self, store: AnnotationStore, start: datetime | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._start = start
        self._label: str | None = None
        self._text = ""
        self._rows: list[Annotation] = []
        self._onsets: list[float] = []
        self._icons: dict[str, QIcon] = {}
        self.follow: Annotation | None = None
        self._rebuild()
        store.eventsChanged.connect(self._on_store_eventsChanged)

    # -- filtering ------------------------------------------------------------------------
    def set_filter(self, label: str | None = None, text: str = "") -> None:
        """Show only events with ``label`` (``None``: all) whose text contains ``text``."""
        self._label = label or None
        self._text = text.strip().lower()
        self.beginResetModel()
        self._rebuild()
        self.endResetModel()

    def annotation(self, row: int) -> Annotation:
        """Return the event of a (filtered) row."""
        return self._rows[row]

    @property
    def onsets(self) -> list[float]:
        """Onsets of the (filtered) rows, sorted (do not modify)."""
        return self._onsets

    def row_of(self, ann: Annotation) -> int | None:
        """Return the row showing ``ann``, or ``None`` when it is filtered out or absent."""
        i = bisect.bisect_left(self._onsets, ann.onset_s)
        while i < len(self._rows) and self._onsets[i] == ann.onset_s:
            if self._rows[i] == ann:
                return i
            i += 1
        return None

    def first_row_in(self, start_s: float, stop_s: float) -> int | None:
        """Return the first (filtered) row whose event overlaps ``[start_s, stop_s)``.

        A bisect on the onsets, plus a look back of :data:`FOLLOW_LOOK_BACK_S` for an event
        begun before the page that still runs into it (that one comes first).
        """
        i = bisect.bisect_left(self._onsets, start_s)
        first = None
        j = i - 1
        while j >= 0 and self._onsets[j] > start_s - FOLLOW_LOOK_BACK_S:
            if self._rows[j].offset_s > start_s:
                first = j
            j -= 1
        if first is not None:
            return first
        return i if i < len(self._rows) and self._onsets[i] < stop_s else None

    def _accepts(self, a: Annotation) -> bool:
        if self._label is not None and a.label != self._label:
            return False
        if not self._text:
            return True
        hay = " ".join((a.label, a.channel or "", *(f"{k} {v}" for k, v in a.extras))).lower()
        return self._text in hay

    def _rebuild(self) -> None:
        events = self._store.events()
        if self._label is not None or self._text:
            events = [a for a in events if self._accepts(a)]
            self._onsets = [a.onset_s for a in events]
        else:  # the store keeps the onsets: 100 000 attribute reads saved per edit
            self._onsets = self._store.event_onsets()
        self._rows = events

    def _on_store_eventsChanged(self) -> None:  # noqa: N802 - Qt signal name
        change = self._store.last_change
        if change is not None and len(change[0]) + len(change[1]) <= _IN_PLACE:
            # A few events: move rows in place (a reset would re-query 100 000 rows).
            removed, added = change[1], change[0]
            self.rowsAboutToMove.emit()
            if not all(self._remove_row(a) for a in removed if self._accepts(a)):
                self.beginResetModel()  # not where it should be: rebuild rather than guess
                self._rebuild()
                self.endResetModel()
                return
            for a in added:
                if self._accepts(a):
                    i = bisect.bisect_right(self._rows, event_order(a), key=event_order)
                    self.beginInsertRows(QModelIndex(), i, i)
                    self._rows.insert(i, a)
                    self._onsets.insert(i, a.onset_s)
                    self.endInsertRows()
            self.rowsMoved.emit()
            return
        self.beginResetModel()
        self._rebuild()
        self.endResetModel()

    def _remove_row(self, a: Annotation) -> bool:
        i = bisect.bisect_left(self._rows, event_order(a), key=event_order)
        while i < len(self._rows) and self._rows[i] != a:
            i += 1
        if i == len(self._rows):
            return False
        self.beginRemoveRows(QModelIndex(), i, i)
        del self._rows[i]
        del self._onsets[i]
        self.endRemoveRows()
        return True

    # -- QAbstractTableModel --------------------------------------------------------------
    def rowCount(self, parent: AnnIndex = QModelIndex()) -> int:  # noqa: B008, N802
        """Number of (filtered) events."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnnIndex = QModelIndex()) -> int:  # noqa: B008, N802
        """Number of columns."""
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(  # noqa: N802 - Qt API
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: AnnIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """Cell text, edit values, alignment and the label's colour swatch."""
        # Called ~900 times per repaint of the list (each cell, each role): plain-int roles
        # and an early exit for the roles not served keep a page flip's list repaint cheap.
        if role not in _SERVED_ROLES or not index.isValid():
            return None
        a = self._rows[index.row()]
        col = index.column()
        if role == _DISPLAY:
            if col == COL_CLOCK:
                return _clock(self._start, a.onset_s)
            if col == COL_ONSET:
                return f"{a.onset_s:.1f}"
            if col == COL_DURATION:
                return f"{a.duration_s:.1f}"
            if col == COL_LABEL:
                return a.label
            return a.channel or ""
        if role == _EDIT:
            if col == COL_DURATION:
                return a.duration_s
            if col == COL_ONSET:
                return a.onset_s
            if col == COL_LABEL:
                return a.label
            if col == COL_CHANNEL:
                return a.channel or ""
            return None
        if role == _DECORATION:
            return self._icon(a.label) if col == COL_LABEL else None
        if role == _ALIGNMENT:
            return _RIGHT if col in (COL_ONSET, COL_DURATION) else None
        lines = [a.label if a.channel is None else f"{a.label} on {a.channel}"]  # tooltip
        lines += [f"{k}: {v}" for k, v in a.extras]
        return "\n".join(lines)

    def flags(self, index: AnnIndex) -> Qt.ItemFlag:
        """Label, duration and channel are editable."""
        if not index.isValid():
            return super().flags(index)
        return _EDITABLE_FLAGS if index.column() in _EDITABLE_COLUMNS else _FLAGS

    def setData(  # noqa: N802 - Qt API
        self, index: AnnIndex, value: object, role: int = Qt.ItemDataRole.EditRole
    ) -> bool:
        """Edit a cell through the store (undoable)."""
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        old = self._rows[index.row()]
        try:
            if index.column() == COL_DURATION:
                new = Annotation(old.onset_s, float(value), old.label, old.channel, old.extras)  # type: ignore[arg-type]
            elif index.column() == COL_LABEL:
                text = str(value).strip()
                if not text:
                    return False
                new = Annotation(old.onset_s, old.duration_s, text, old.channel, old.extras)
            elif index.column() == COL_CHANNEL:
                new = Annotation(
                    old.onset_s, old.duration_s, old.label, str(value) or None, old.extras
                )
            else:
                return False
        except (TypeError, ValueError):
            return False
        if new.is_stage:
            return False
        self.follow = new  # the dock keeps this event selected across the reset
        self._store.edit(old, new)
        return True

    def _icon(self, label: str) -> QIcon:
        icon = self._icons.get(label)
        if icon is None:
            pm = QPixmap(10, 10)
            pm.fill(QColor(label_color(label)))
            icon = self._icons[label] = QIcon(pm)
        return icon


class AnnotationEditDialog(QDialog):
    """Edit one event: onset, duration, label and channel.

    Parameters
    ----------
    annotation : Annotation
        The event.
    labels : sequence of str
        Labels offered in the (editable) label combo.
    channels : sequence of str
        Channels offered (the first entry, empty, means "all channels").
    parent : QWidget or None
        Qt parent.
    """

    def __init__(
        self,
        annotation: Annotation,
        labels: list[str],
        channels: list[str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit annotation")
        self._old = annotation
        self.onset = QDoubleSpinBox(decimals=2, maximum=1e7, suffix=" s")
        self.onset.setValue(annotation.onset_s)
        self.duration = QDoubleSpinBox(decimals=2, maximum=1e6, suffix=" s")
        self.duration.setValue(annotation.duration_s)
        self.label = QComboBox(editable=True)
        self.label.addItems(sorted({*labels, *EVENT_LABELS, annotation.label}))
        self.label.setCurrentText(annotation.label)
        self.channel = QComboBox(editable=True)
        self.channel.addItems(["", *channels])
        self.channel.setCurrentText(annotation.channel or "")
        form = QFormLayout(self)
        form.addRow("Onset", self.onset)
        form.addRow("Duration", self.duration)
        form.addRow("Label", self.label)
        form.addRow("Channel", self.channel)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def result_annotation(self) -> Annotation | None:
        """Return the edited event (``None`` when the label is empty or names a stage)."""
        label = self.label.currentText().strip()
        if not label:
            return None
        new = Annotation(
            self.onset.value(),
            self.duration.value(),
            label,
            self.channel.currentText().strip() or None,
            self._old.extras,
        )
        return None if new.is_stage else new


class AnnotationDock(QDockWidget):
    """The annotation list.

    Parameters
    ----------
    store : AnnotationStore
        The events; all edits go through its commands.
    start : datetime or None
        Recording start, for the clock column.
    channels : list of str or None
        Channel names offered in the edit dialog.
    parent : QWidget or None
        Qt parent.

    Signals
    -------
    jumpRequested(float)
        The onset (s) of a clicked or activated row.

    Attributes
    ----------
    follow_check : QCheckBox
        "Follow page": whether :meth:`follow_page` selects the page's first event.
    """

    jumpRequested = pyqtSignal(float)

    def __init__(
        self,
        store: AnnotationStore,
        *,
        start: datetime | None = None,
        channels: list[str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Annotations", parent)
        self.setObjectName("AnnotationDock")
        self._store = store
        self._channels = list(channels or [])
        self.model = AnnotationTableModel(store, start, self)
        self._build_filters()
        self._build_table()
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(self.label_combo, 1)
        row.addWidget(self.text_edit, 2)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        bottom.addWidget(self.follow_check)
        layout.addLayout(bottom)
        self.setWidget(body)
        self._page: tuple[float, float] | None = None
        store.eventsChanged.connect(self._on_store_eventsChanged)
        self._kept: tuple[Annotation | None, int, int, int] = (None, -1, 0, 0)
        self.model.modelAboutToBeReset.connect(self._on_model_aboutToBeReset)
        self.model.modelReset.connect(self._on_model_reset)
        self.model.rowsAboutToMove.connect(self._on_model_aboutToBeReset)
        self.model.rowsMoved.connect(self._on_model_reset)
        self._refresh_labels()
        self._update_count()

    # -- building -------------------------------------------------------------------------
    def _build_filters(self) -> None:
        self.label_combo = QComboBox(self)
        self.label_combo.setToolTip("Show one label only")
        self.label_combo.currentIndexChanged.connect(self._on_label_combo_changed)
        self.text_edit = QLineEdit(self)
        self.text_edit.setPlaceholderText("Filter (label, channel, values)…")
        self.text_edit.setClearButtonEnabled(True)
        self.text_edit.textChanged.connect(self._on_text_edit_changed)
        self.count_label = QLabel(self)
        self.follow_check = QCheckBox("Follow page", self)
        self.follow_check.setChecked(True)
        self.follow_check.setToolTip("Select the first event of the page shown as you move")
        self.follow_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.follow_check.toggled.connect(self._on_follow_check_toggled)
        self._follow_timer = QTimer(self)
        self._follow_timer.setSingleShot(True)
        self._follow_timer.setInterval(0)
        self._follow_timer.timeout.connect(self._on_follow_timer_timeout)

    def _build_table(self) -> None:
        t = QTableView(self)
        t.setModel(self.model)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        t.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        t.setAlternatingRowColors(True)
        t.setWordWrap(False)
        vh = t.verticalHeader()
        vh.setVisible(False)
        # Fixed row heights: the view never measures 10,000 rows.
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(t.fontMetrics().height() + 6)
        hh = t.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(COL_LABEL, QHeaderView.ResizeMode.Stretch)
        hh.setMinimumSectionSize(30)
        for col, width in ((COL_CLOCK, 64), (COL_ONSET, 62), (COL_DURATION, 56), (COL_CHANNEL, 60)):
            t.setColumnWidth(col, width)
        t.setColumnHidden(COL_ONSET, True)  # the clock is what scorers read; seconds on demand
        hh.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        hh.customContextMenuRequested.connect(self._on_header_contextMenuRequested)
        t.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        t.customContextMenuRequested.connect(self._on_table_contextMenuRequested)
        t.clicked.connect(self._on_table_clicked)
        t.activated.connect(self._on_table_clicked)
        t.installEventFilter(self)
        self.table = t

    # -- public ---------------------------------------------------------------------------
    def selected_annotations(self) -> list[Annotation]:
        """Return the events of the selected rows, in onset order."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.annotation(r) for r in rows]

    def select_annotation(self, ann: Annotation) -> bool:
        """Select and scroll to ``ann``; ``False`` when it is filtered out or absent."""
        row = self.model.row_of(ann)
        if row is None:
            return False
        index = self.model.index(row, COL_LABEL)
        self.table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index)
        return True

    def follow_page(self, start_s: float, stop_s: float) -> None:
        """Select the first event of the page ``[start_s, stop_s)`` soon (with "Follow page" on).

        The selection moves once the event loop is idle (a zero-delay timer), so the page is
        painted first and a held arrow key updates the list once per burst, not once per
        page. :meth:`select_first_on_page` does it at once. A hidden list only remembers the
        page and catches up when shown.
        """
        self._page = (float(start_s), float(stop_s))
        if self.follow_check.isChecked() and self.isVisible():
            self._follow_timer.start()

    def select_first_on_page(self) -> None:
        """Select the first event of the last page given to :meth:`follow_page`, now.

        The keyboard focus stays where it is, and nothing changes while a cell is edited or
        when the selected event is already on the page (a row just clicked stays selected).
        With no event on the page, the selection is cleared and the list scrolled to the next
        event.
        """
        self._follow_timer.stop()
        if self._page is None or not self.follow_check.isChecked():
            return
        if self.table.state() == QAbstractItemView.State.EditingState:
            return
        start_s, stop_s = self._page
        cur = self.table.currentIndex()
        sel = self.table.selectionModel()
        if cur.isValid() and sel.isRowSelected(cur.row()):
            a = self.model.annotation(cur.row())
            if a.onset_s < stop_s and (a.offset_s > start_s
                                       or (a.duration_s == 0 and a.onset_s >= start_s)):
                return
        row = self.model.first_row_in(start_s, stop_s)
        if row is None:
            sel.clearSelection()
            nxt = bisect.bisect_left(self.model.onsets, start_s)
            if self.model.rowCount():
                self.table.scrollTo(self.model.index(min(nxt, self.model.rowCount() - 1), 0))
            return
        index = self.model.index(row, max(cur.column(), COL_LABEL) if cur.isValid() else COL_LABEL)
        sel.setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index)

    def delete_selected(self) -> int:
        """Delete the selected events as one undo step; return how many."""
        chosen = self.selected_annotations()
        if chosen:
            row = min(i.row() for i in self.table.selectionModel().selectedRows())
            self.table.setCurrentIndex(self.model.index(row, COL_LABEL))
            self._store.delete(chosen)  # the reset then selects the row after the deleted ones
        return len(chosen)

    def edit_with_dialog(self, ann: Annotation) -> bool:
        """Edit ``ann`` in :class:`AnnotationEditDialog`; ``True`` when it was changed."""
        dialog = AnnotationEditDialog(ann, self._store.labels(), self._channels, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        new = dialog.result_annotation()
        if new is None or new == ann:
            return False
        self._store.edit(ann, new)
        self.select_annotation(new)
        return True

    def set_filter(self, label: str | None = None, text: str = "") -> None:
        """Set the filter controls (and so the filter)."""
        idx = self.label_combo.findData(label) if label else 0
        self.label_combo.setCurrentIndex(max(0, idx))
        self.text_edit.setText(text)

    # -- slots ----------------------------------------------------------------------------
    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802
        """Delete / Backspace in the table deletes the selected events."""
        if (
            obj is self.table
            and event is not None
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
            and self.table.state() != QAbstractItemView.State.EditingState
        ):
            self.delete_selected()
            return True
        return super().eventFilter(obj, event)

    def _on_table_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.jumpRequested.emit(self.model.annotation(index.row()).onset_s)

    def _on_table_contextMenuRequested(self, pos: QPoint) -> None:  # noqa: N802
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        ann = self.model.annotation(index.row())
        menu = QMenu(self)
        edit = menu.addAction("Edit…")
        delete = menu.addAction("Delete selected")
        chosen = menu.exec(self.table.viewport().mapToGlobal(pos))
        if chosen is edit:
            self.edit_with_dialog(ann)
        elif chosen is delete:
            self.delete_selected()

    def _on_header_contextMenuRequested(self, pos: QPoint) -> None:  # noqa: N802
        menu = QMenu(self)
        for col, title in enumerate(COLUMNS):
            if col == COL_LABEL:
                continue
            act = menu.addAction(title)
            act.setCheckable(True)
            act.setChecked(not self.table.isColumnHidden(col))
            act.toggled.connect(lambda on, c=col: self.table.setColumnHidden(c, not on))
        menu.exec(self.table.horizontalHeader().mapToGlobal(pos))

    def _on_model_aboutToBeReset(self) -> None:  # noqa: N802 - Qt signal name
        cur = self.table.currentIndex()
        ann = self.model.annotation(cur.row()) if cur.isValid() else None
        self._kept = (ann, cur.row(), max(cur.column(), 0), self.table.verticalScrollBar().value())

    def _on_model_reset(self) -> None:  # noqa: N802 - Qt signal name
        """Keep the place in the list: the edited (or same) event, else the same row."""
        ann, row, col, scroll = self._kept
        target, self.model.follow = self.model.follow or ann, None
        self._kept = (None, -1, 0, 0)
        n = self.model.rowCount()
        new_row = self.model.row_of(target) if target is not None else None
        if new_row is None and row >= 0 and n:
            new_row = min(row, n - 1)
        self.table.verticalScrollBar().setValue(scroll)
        if new_row is not None:
            index = self.model.index(new_row, col)
            self.table.selectionModel().setCurrentIndex(
                index,
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
            self.table.scrollTo(index)  # only scrolls when it left the view (filter change)

    def showEvent(self, event: QShowEvent | None) -> None:  # noqa: N802 - Qt API
        """Catch up with the page shown while hidden."""
        super().showEvent(event)
        if self._page is not None:
            self.select_first_on_page()

    def _on_follow_check_toggled(self, on: bool) -> None:
        if on:
            self.select_first_on_page()

    def _on_follow_timer_timeout(self) -> None:
        if self.isVisible():
            self.select_first_on_page()

    def _on_label_combo_changed(self, _index: int) -> None:
        self._apply_filter()

    def _on_text_edit_changed(self, _text: str) -> None:
        self._apply_filter()

    def _on_store_eventsChanged(self) -> None:  # noqa: N802 - Qt signal name
        self._refresh_labels()
        self._update_count()

    def _apply_filter(self) -> None:
        label = self.label_combo.currentData()
        self.model.set_filter(label, self.text_edit.text())
        self._update_count()

    def _refresh_labels(self) -> None:
        counts = self._store.label_counts()
        current = self.label_combo.currentData()
        self.label_combo.blockSignals(True)
        self.label_combo.clear()
        self.label_combo.addItem(ALL_LABELS, None)
        for lab, n in counts.items():
            pm = QPixmap(10, 10)
            pm.fill(QColor(label_color(lab)))
            self.label_combo.addItem(QIcon(pm), f"{lab} ({n})", lab)
        idx = self.label_combo.findData(current) if current is not None else 0
        self.label_combo.setCurrentIndex(max(0, idx))
        self.label_combo.blockSignals(False)
        if current is not None and idx < 0:
            self._apply_filter()  # the filtered label disappeared: show all

    def _update_count(self) -> None:
        shown, total = self.model.rowCount(), self._store.event_count()
        self.count_label.setText(
            f"{total} events" if shown == total else f"{shown} of {total} events"
        )
