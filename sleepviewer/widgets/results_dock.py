"""ResultsDock: the ranked matches of a search, each a jump away, each acceptable as an event.

:class:`ResultsTableModel` (a ``QAbstractTableModel``) lists the
:class:`~sleeplm_core.results.Segment` objects of a
:class:`~sleeplm_core.results.SearchResult`: rank, clock onset, duration, score and a
one-line caption. Clicking a row emits ``jumpRequested(onset_s)``; Enter, F3 or Down goes
to the next match (Shift+F3 or Up the previous one); A emits ``acceptRequested(Segment)``,
which the main window turns into an undoable annotation. When nothing passes the threshold
the dock says so and shows the best scores instead of inventing matches.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from PyQt6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    pyqtSignal,
)
from PyQt6.QtGui import QColor, QKeyEvent
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from sleeplm_core.results import SearchResult, Segment

COLUMNS: Final[tuple[str, ...]] = ("#", "Clock", "Dur.", "Score", "What the model sees")
COL_RANK, COL_CLOCK, COL_DURATION, COL_SCORE, COL_CAPTION = range(5)
ACCEPTED_BG: Final[str] = "#d8f0dc"

AnyIndex = QModelIndex | QPersistentModelIndex


def format_onset(start: datetime | None, onset_s: float) -> str:
    """Clock time of ``onset_s`` (``HH:MM:SS``), or elapsed ``+H:MM:SS`` without a start."""
    if start is None:
        s = int(onset_s)
        return f"+{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return (start + timedelta(seconds=onset_s)).strftime("%H:%M:%S")


def format_duration(duration_s: float) -> str:
    """``"12 s"``, ``"1 min 30 s"``, ``"2 min"``."""
    s = int(round(duration_s))
    if s < 60:
        return f"{s} s"
    m, r = divmod(s, 60)
    return f"{m} min {r} s" if r else f"{m} min"


def nothing_text(best_scores: list[float], threshold: float) -> str:
    """The honest empty state: the best scores, none over the threshold."""
    if not best_scores:
        return "Nothing matched well."
    shown = ", ".join(f"{s:.2f}" for s in best_scores[:3])
    more = ", …" if len(best_scores) > 3 else ""
    if any(s >= threshold for s in best_scores):  # over the threshold, but only for a moment
        return (
            f"Nothing matched long enough (best scores: {shown}{more} passed the threshold "
            f"{threshold:.2f} only for moments shorter than a match)."
        )
    return f"Nothing matched well (best scores: {shown}{more}; threshold {threshold:.2f})."


class ResultsTableModel(QAbstractTableModel):
    """The matches of one search, best first.

    Parameters
    ----------
    start : datetime or None
        Recording start, for the clock column.
    parent : QObject or None
        Qt parent.
    """

    def __init__(self, start: datetime | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.start = start
        self._rows: list[Segment] = []
        self._accepted: set[int] = set()

    def set_segments(self, segments: list[Segment]) -> None:
        """Replace the rows."""
        self.beginResetModel()
        self._rows = list(segments)
        self._accepted = set()
        self.endResetModel()

    def segment(self, row: int) -> Segment:
        """The segment of ``row``."""
        return self._rows[row]

    def segments(self) -> list[Segment]:
        """All rows (a new list)."""
        return list(self._rows)

    def mark_accepted(self, row: int) -> None:
        """Show ``row`` as accepted (added as an annotation)."""
        self._accepted.add(row)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def is_accepted(self, row: int) -> bool:
        """Whether ``row`` was accepted."""
        return row in self._accepted

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        """Number of matches."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        """Number of columns."""
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(  # noqa: N802 - Qt API
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """Text, alignment, tooltip and the accepted colour of a cell."""
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        s = self._rows[row]
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_RANK:
                return f"{row + 1}{' ✓' if row in self._accepted else ''}"
            if col == COL_CLOCK:
                return format_onset(self.start, s.onset_s)
            if col == COL_DURATION:
                return format_duration(s.duration_s)
            if col == COL_SCORE:
                return f"{s.score:.2f}"
            return s.caption or "—"
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_RANK, COL_DURATION,
                                                                 COL_SCORE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            types = ", ".join(s.channel_types) or "—"
            accepted = "<br><i>accepted as an annotation</i>" if row in self._accepted else ""
            return (f"<b>{format_onset(self.start, s.onset_s)}</b>, "
                    f"{format_duration(s.duration_s)}, score {s.score:.2f}<br>"
                    f"channels: {types}<br>{s.caption}{accepted}")
        if role == Qt.ItemDataRole.BackgroundRole and row in self._accepted:
            return QColor(ACCEPTED_BG)
        return None


class ResultsDock(QDockWidget):
    """The ranked matches of the last search.

    Parameters
    ----------
    start : datetime or None
        Recording start, for the clock column.
    parent : QWidget or None
        Qt parent.

    Signals
    -------
    jumpRequested(float)
        Show the page around a match's onset (seconds from the recording start).
    acceptRequested(object)
        Add this :class:`~sleeplm_core.results.Segment` as an annotation.
    currentChanged(object)
        The selected segment (``None`` when none), for highlighting.
    """

    jumpRequested = pyqtSignal(float)
    acceptRequested = pyqtSignal(object)
    currentChanged = pyqtSignal(object)

    def __init__(self, start: datetime | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Search results", parent)
        self.setObjectName("ResultsDock")
        self.model = ResultsTableModel(start, self)
        self.result: SearchResult | None = None
        self._row: int | None = None  # the match the user went to (not Qt's focus index)
        self._build()
        self.clear()

    def _build(self) -> None:
        body = QWidget(self)
        self.summary_label = QLabel(body)
        self.summary_label.setObjectName("resultsSummary")
        self.summary_label.setWordWrap(True)
        self.table = QTableView(body)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        for col in (COL_RANK, COL_CLOCK, COL_DURATION, COL_SCORE):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_CAPTION, QHeaderView.ResizeMode.Stretch)
        self.table.clicked.connect(self._on_table_clicked)
        self.table.installEventFilter(self)
        self.empty_label = QLabel(body)
        self.empty_label.setObjectName("resultsEmpty")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.empty_label.setMargin(8)
        self.stack = QStackedWidget(body)
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty_label)
        self.accept_button = QPushButton("Accept as annotation (A)", body)
        self.accept_button.clicked.connect(self.accept_current)
        self.next_button = QPushButton("Next match (F3)", body)
        self.next_button.clicked.connect(self.next_result)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.next_button)
        buttons.addStretch(1)
        buttons.addWidget(self.accept_button)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        lay.addWidget(self.summary_label)
        lay.addWidget(self.stack, 1)
        lay.addLayout(buttons)
        self.setWidget(body)

    # -- content ----------------------------------------------------------------------------
    def set_start(self, start: datetime | None) -> None:
        """Set the recording start used by the clock column."""
        self.model.start = start
        self.model.layoutChanged.emit()

    def clear(self, text: str = "No search yet: type in the search bar and press Enter.") -> None:
        """Forget the last result."""
        self.result = None
        self._row = None
        self.model.set_segments([])
        self.summary_label.setText("")
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_label)
        self._update_buttons()
        self.currentChanged.emit(None)

    def set_result(
        self, result: SearchResult, *, n_found: int | None = None, filters: str = ""
    ) -> None:
        """Show a search result.

        Parameters
        ----------
        result : SearchResult
            The matches that passed the threshold (and the filters), best first.
        n_found : int, optional
            Matches before the filters; more than ``len(result.segments)`` means the filters
            removed some.
        filters : str
            A summary of the filters ("stage REM, ≥ 10 s").
        """
        self.result = result
        self._row = None
        self.model.set_segments(result.segments)
        n = len(result.segments)
        removed = (n_found - n) if n_found is not None and n_found > n else 0
        where = f" ({filters})" if filters else ""
        if n:
            text = f"<b>{n}</b> match{'es' if n != 1 else ''} for “{result.query}”{where}"
            if removed:
                text += f"; {removed} more outside the filters"
            self.summary_label.setText(text + ".")
            self.stack.setCurrentWidget(self.table)
        elif removed:
            self.summary_label.setText(f"No match for “{result.query}”{where}.")
            self.empty_label.setText(
                f"{removed} match{'es' if removed != 1 else ''} found, but none passes the "
                f"filters{where}. Loosen them to see more."
            )
            self.stack.setCurrentWidget(self.empty_label)
        else:
            self.summary_label.setText(f"No match for “{result.query}”{where}.")
            self.empty_label.setText(
                result.note or nothing_text(result.best_scores, result.threshold)
            )
            self.stack.setCurrentWidget(self.empty_label)
        self._update_buttons()
        self.currentChanged.emit(None)

    def show_failure(self, message: str) -> None:
        """Show why the search failed (one line)."""
        self.clear(f"The search failed: {message}")

    # -- navigation and accepting -----------------------------------------------------------
    def current_row(self) -> int | None:
        """The match the user went to last, or ``None``."""
        return self._row

    def current_segment(self) -> Segment | None:
        """The selected segment, or ``None``."""
        row = self.current_row()
        return self.model.segment(row) if row is not None else None

    def select_row(self, row: int) -> None:
        """Go to match ``row``: select it and emit ``jumpRequested`` and ``currentChanged``."""
        if not 0 <= row < self.model.rowCount():
            return
        self._row = row
        index = self.model.index(row, COL_CLOCK)
        self.table.setCurrentIndex(index)
        self.table.scrollTo(index)
        self._update_buttons()
        seg = self.model.segment(row)
        self.jumpRequested.emit(seg.onset_s)
        self.currentChanged.emit(seg)

    def next_result(self) -> Segment | None:
        """Go to the next match (the first when none is selected); wraps around."""
        return self._step(1)

    def previous_result(self) -> Segment | None:
        """Go to the previous match; wraps around."""
        return self._step(-1)

    def _step(self, step: int) -> Segment | None:
        n = self.model.rowCount()
        if n == 0:
            return None
        row = self.current_row()
        nxt = (0 if step > 0 else n - 1) if row is None else (row + step) % n
        self.select_row(nxt)
        return self.model.segment(nxt)

    def accept_current(self) -> Segment | None:
        """Emit ``acceptRequested`` for the selected match (once per row)."""
        row = self.current_row()
        if row is None or self.model.is_accepted(row):
            return None
        seg = self.model.segment(row)
        self.model.mark_accepted(row)
        self.acceptRequested.emit(seg)
        self._update_buttons()
        return seg

    def _update_buttons(self) -> None:
        n = self.model.rowCount()
        row = self.current_row()
        self.next_button.setEnabled(n > 0)
        self.accept_button.setEnabled(row is not None and not self.model.is_accepted(row))

    # -- events -----------------------------------------------------------------------------
    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802
        """Enter/F3/Down: next match; Shift+F3/Up: previous; A: accept."""
        if obj is self.table and isinstance(event, QKeyEvent) and (
            event.type() == QEvent.Type.KeyPress
        ):
            key, mods = event.key(), event.modifiers()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) or (
                key == Qt.Key.Key_F3 and not mods & Qt.KeyboardModifier.ShiftModifier
            ):
                self.next_result()
                return True
            if key == Qt.Key.Key_F3 or key == Qt.Key.Key_Up:
                self.previous_result()
                return True
            if key == Qt.Key.Key_Down:
                self.next_result()
                return True
            if key == Qt.Key.Key_A and not mods & ~Qt.KeyboardModifier.KeypadModifier:
                self.accept_current()
                return True
        return super().eventFilter(obj, event)

    def _on_table_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.select_row(index.row())
