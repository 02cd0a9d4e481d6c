"""QueryBar: one line to search the night in words, with filters (``stage:REM after:02:00``).

The bar parses the line with :func:`sleepviewer.query.parse_query` and emits
``searchRequested(ParsedQuery)``; it never talks to the model itself. Its state line says
what the model is doing: the night is being embedded (a search waits for it), searching
(the button becomes Cancel), ready, or not available (with the one-line reason).
"""

from __future__ import annotations

from typing import Final, Literal

from PyQt6.QtCore import QEvent, Qt, pyqtSignal
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from sleepviewer.query import ParsedQuery, QueryError, parse_query

State = Literal["no_recording", "not_ready", "ready", "searching", "unavailable"]

PLACEHOLDER: Final[str] = "Search the night: obstructive apnea with desaturation  stage:REM"
FILTER_HELP: Final[str] = (
    "<b>Search the night in words.</b> Add filters after the text:<br>"
    "<tt>stage:REM</tt>, <tt>stage:N2,N3</tt> — scored stage<br>"
    "<tt>after:02:00</tt> (clock) or <tt>after:1h30m</tt> (elapsed), <tt>before:…</tt><br>"
    "<tt>min_dur:10s</tt>, <tt>max_dur:2m</tt> — how long<br>"
    "<tt>channel:EEG</tt> (EOG, EMG, ECG, resp, SpO2…)<br>"
    "Enter runs the search; Esc cancels it."
)
ERROR_STYLE: Final[str] = "color: #c0392b;"


class QueryBar(QWidget):
    """A line edit and a Search/Cancel button over a one-line state label.

    Signals
    -------
    searchRequested(object)
        A :class:`~sleepviewer.query.ParsedQuery` with non-empty text.
    cancelRequested()
        The user pressed Cancel (or Esc) while searching.
    """

    searchRequested = pyqtSignal(object)
    cancelRequested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state: State = "no_recording"
        self._progress_text = ""
        self._reason = ""
        self.history: list[str] = []
        self._history_pos = 0
        self._build()
        self.set_state("no_recording")

    def _build(self) -> None:
        self.edit = QLineEdit(self)
        self.edit.setObjectName("queryEdit")
        self.edit.setPlaceholderText(PLACEHOLDER)
        self.edit.setClearButtonEnabled(True)
        self.edit.setToolTip(FILTER_HELP)
        self.edit.returnPressed.connect(self._on_edit_returnPressed)
        self.edit.installEventFilter(self)
        self.run_button = QPushButton("Search", self)
        self.run_button.setObjectName("queryRunButton")
        self.run_button.setToolTip(FILTER_HELP)
        self.run_button.clicked.connect(self._on_run_button_clicked)
        self.status_label = QLabel(self)
        self.status_label.setObjectName("queryStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                        QSizePolicy.Policy.Preferred)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.run_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 2)
        lay.setSpacing(2)
        lay.addLayout(row)
        lay.addWidget(self.status_label)

    # -- state ------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        """What the bar shows: no recording, not ready, ready, searching or unavailable."""
        return self._state

    def set_state(self, state: State, text: str = "") -> None:
        """Switch state; ``text`` is the progress line (not ready) or the reason (unavailable)."""
        self._state = state
        if state == "not_ready":
            self._progress_text = text or self._progress_text
        elif state == "unavailable":
            self._reason = text
        searching = state == "searching"
        usable = state not in ("no_recording", "unavailable")
        self.edit.setEnabled(usable)
        self.run_button.setEnabled(usable)
        self.run_button.setText("Cancel" if searching else "Search")
        self._show(self._state_text(text), error=state == "unavailable")

    def set_progress(self, text: str) -> None:
        """Show embedding progress ("Embedding night: 43% — about 20 s left")."""
        self._progress_text = text
        if self._state == "not_ready":
            self._show(self._state_text())

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Show a one-line message under the line edit (a result summary or an error)."""
        self._show(text, error=error)

    def _state_text(self, text: str = "") -> str:
        if self._state == "no_recording":
            return "Open a recording to search it in words."
        if self._state == "not_ready":
            progress = self._progress_text.removeprefix("Embedding night: ") or "starting"
            return f"Embedding not ready ({progress}): a search now waits for it."
        if self._state == "searching":
            return text or "Searching…"
        if self._state == "unavailable":
            return f"Search unavailable: {self._reason or text}"
        return text or "Ready: type what to look for and press Enter."

    def _show(self, text: str, *, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setToolTip(text)
        self.status_label.setStyleSheet(ERROR_STYLE if error else "")

    # -- running ----------------------------------------------------------------------------
    def run(self) -> ParsedQuery | None:
        """Parse the line and emit ``searchRequested``; returns the query or ``None``."""
        if self._state in ("no_recording", "unavailable"):
            return None
        line = self.edit.text().strip()
        try:
            parsed = parse_query(line)
        except QueryError as exc:
            self._show(str(exc), error=True)
            return None
        if not parsed.text:
            self._show("Type what to look for (the filters only narrow a search).", error=True)
            return None
        if not self.history or self.history[-1] != line:
            self.history.append(line)
        self._history_pos = len(self.history)
        waiting = self._state == "not_ready"
        self.set_state("searching")
        if waiting:
            self._show("Searching… (waiting for the night to be embedded)")
        self.searchRequested.emit(parsed)
        return parsed

    def set_query(self, text: str) -> None:
        """Put ``text`` in the line edit (does not run it)."""
        self.edit.setText(text)

    # -- events -----------------------------------------------------------------------------
    def eventFilter(self, obj: object, event: object) -> bool:  # noqa: N802 - Qt API
        """Esc cancels a running search; Up/Down walk the query history."""
        is_key = isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress
        if obj is self.edit and is_key:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if key == Qt.Key.Key_Escape and self._state == "searching":
                self.cancelRequested.emit()
                return True
            if key in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.history:
                step = -1 if key == Qt.Key.Key_Up else 1
                self._history_pos = min(max(self._history_pos + step, 0), len(self.history))
                text = self.history[self._history_pos] if self._history_pos < len(
                    self.history) else ""
                self.edit.setText(text)
                return True
        return super().eventFilter(obj, event)  # type: ignore[arg-type]

    def _on_edit_returnPressed(self) -> None:  # noqa: N802 - Qt signal name
        self.run()

    def _on_run_button_clicked(self) -> None:
        if self._state == "searching":
            self.cancelRequested.emit()
        else:
            self.run()
