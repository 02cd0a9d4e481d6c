"""SuggestionView: the model's zero-shot hypnogram as suggestions beside the human scoring.

Two strips share one time axis: the scored stages (what the store holds) and SleepLM's
suggestion for each epoch (pale where the model is unsure). Epochs where both have a stage
and they differ are marked in red under the strips, and Cohen's kappa over the epochs both
scored is shown (:func:`sleeplm_core.eval.metrics.cohen_kappa`). A suggestion never becomes
scoring by itself: accepting emits ``acceptRequested({stage: [epochs]})``, and the owner
turns that into one undoable store step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from sleeplm_core.eval.metrics import cohen_kappa
from sleeplm_core.results import StageResult
from sleeplm_core.stages import EPOCH_S, SCORED_STAGES

LABEL_W: Final[int] = 74
ROW_H: Final[int] = 18
MARK_H: Final[int] = 6
UNSURE: Final[float] = 0.5
"""Suggestions below this confidence are drawn pale."""
DISAGREE: Final[str] = "#d0021b"


def stage_colors() -> dict[str, str]:
    """The hypnogram's stage colours (imported on first paint: that module pulls in scipy)."""
    from sleepviewer.widgets.hypnogram_view import STAGE_COLORS

    return STAGE_COLORS


def agreement(scored: Sequence[str], suggested: Sequence[str]) -> tuple[float, float, int]:
    """Cohen's kappa, the fraction of agreement and the number of epochs both staged.

    Only epochs where the human scored one of W, N1, N2, N3, REM (not ART/UNS) count.
    """
    pairs = [(a, b) for a, b in zip(scored, suggested, strict=False)
             if a in SCORED_STAGES and b in SCORED_STAGES]
    if not pairs:
        return math.nan, math.nan, 0
    y_true, y_pred = zip(*pairs, strict=True)
    kappa = cohen_kappa(list(y_true), list(y_pred), SCORED_STAGES)
    agree = sum(a == b for a, b in pairs) / len(pairs)
    return kappa, agree, len(pairs)


class _Strip(QWidget):
    """The painted strips; one pixel column per slice of the night."""

    epochClicked = pyqtSignal(int)

    def __init__(self, view: SuggestionView) -> None:
        super().__init__(view)
        self._view = view
        self.setFixedHeight(2 * ROW_H + MARK_H + 8)
        self.setMouseTracking(True)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """Wide and short."""
        return QSize(600, 2 * ROW_H + MARK_H + 10)

    def _x(self, epoch: float) -> float:
        n = max(self._view.n_epochs, 1)
        return LABEL_W + (self.width() - LABEL_W - 4) * epoch / n

    def epoch_at(self, x: float) -> int | None:
        """The epoch under pixel column ``x`` (``None`` over the labels)."""
        n = self._view.n_epochs
        width = self.width() - LABEL_W - 4
        if n == 0 or x < LABEL_W or width <= 0:
            return None
        return min(n - 1, max(0, int((x - LABEL_W) / width * n)))

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802 - Qt API
        """Draw both strips, the disagreement marks and the position."""
        v = self._view
        p = QPainter(self)
        fg = self.palette().windowText().color()
        p.setPen(fg)
        p.drawText(QRectF(0, 2, LABEL_W - 6, ROW_H), Qt.AlignmentFlag.AlignRight
                   | Qt.AlignmentFlag.AlignVCenter, "scored")
        p.drawText(QRectF(0, 2 + ROW_H, LABEL_W - 6, ROW_H), Qt.AlignmentFlag.AlignRight
                   | Qt.AlignmentFlag.AlignVCenter, "SleepLM")
        colors = stage_colors()
        for row, stages in enumerate((v.scored, v.suggested)):
            for e, st in enumerate(stages):
                if st not in colors:
                    continue
                color = QColor(colors[st])
                if row == 1 and e < len(v.confidence) and v.confidence[e] < UNSURE:
                    color.setAlpha(90)
                x0, x1 = self._x(e), self._x(e + 1)
                p.fillRect(QRectF(x0, 2 + row * ROW_H, max(x1 - x0, 1.0), ROW_H - 2), color)
        red = QColor(DISAGREE)
        y = 2 + 2 * ROW_H + 1
        for e in v.disagreements():
            x0, x1 = self._x(e), self._x(e + 1)
            p.fillRect(QRectF(x0, y, max(x1 - x0, 1.5), MARK_H), red)
        if v.position_epoch is not None and v.n_epochs:
            x = self._x(v.position_epoch + 0.5)
            p.setPen(QPen(QColor("#1f6fd0"), 2))
            p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        p.end()

    def mousePressEvent(self, event: QMouseEvent | None) -> None:  # noqa: N802 - Qt API
        """Click an epoch to go there."""
        if event is not None and event.button() == Qt.MouseButton.LeftButton:
            e = self.epoch_at(event.position().x())
            if e is not None:
                self.epochClicked.emit(e)

    def mouseMoveEvent(self, event: QMouseEvent | None) -> None:  # noqa: N802 - Qt API
        """Tooltip: both stages and the model's confidence."""
        if event is None:
            return
        e = self.epoch_at(event.position().x())
        self.setToolTip("" if e is None else self._view.describe(e))


class SuggestionView(QWidget):
    """Scored vs suggested stages, disagreements, kappa, and accepting suggestions.

    Signals
    -------
    jumpRequested(float)
        Go to the epoch clicked (its onset in seconds).
    acceptRequested(object)
        Score epochs as suggested: a dict ``{stage: [epoch, ...]}`` (one accept, one undo).
    """

    jumpRequested = pyqtSignal(float)
    acceptRequested = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scored: list[str] = []
        self.suggested: list[str] = []
        self.confidence: list[float] = []
        self.position_epoch: int | None = None
        self.model = ""
        self._build()
        self._update_summary()

    def _build(self) -> None:
        self.strip = _Strip(self)
        self.strip.epochClicked.connect(self._on_strip_epochClicked)
        self.summary_label = QLabel(self)
        self.summary_label.setObjectName("suggestionSummary")
        self.accept_epoch_button = QPushButton("Accept for this epoch", self)
        self.accept_epoch_button.clicked.connect(self.accept_current)
        self.accept_all_button = QPushButton("Accept all disagreements", self)
        self.accept_all_button.setToolTip("Score every red epoch as SleepLM suggests "
                                          "(one undo step)")
        self.accept_all_button.clicked.connect(self.accept_disagreements)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.summary_label, 1)
        row.addWidget(self.accept_epoch_button)
        row.addWidget(self.accept_all_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(2)
        lay.addWidget(self.strip)
        lay.addLayout(row)
        lay.addStretch(1)

    # -- inputs -----------------------------------------------------------------------------
    @property
    def n_epochs(self) -> int:
        """Epochs drawn (the longer of the two hypnograms)."""
        return max(len(self.scored), len(self.suggested))

    def set_scored(self, stages: Sequence[str]) -> None:
        """The human scoring, one YASA stage per epoch (``UNS`` where unscored)."""
        self.scored = [str(s) for s in stages]
        self._update_summary()

    def set_suggestions(self, result: StageResult | None) -> None:
        """The model's zero-shot stages (``None`` clears them)."""
        self.suggested, self.confidence, self.model = [], [], ""
        if result is not None:
            n = max((e.epoch for e in result.epochs), default=-1) + 1
            self.suggested = ["UNS"] * n
            self.confidence = [0.0] * n
            for e in result.epochs:
                self.suggested[e.epoch] = e.stage
                self.confidence[e.epoch] = e.confidence
            self.model = result.model
        self._update_summary()

    def set_position(self, onset_s: float) -> None:
        """Mark the epoch being viewed."""
        self.position_epoch = max(0, int(onset_s // EPOCH_S))
        self._update_buttons()
        self.strip.update()

    # -- derived ----------------------------------------------------------------------------
    def disagreements(self) -> list[int]:
        """Epochs both staged (W…REM) where the stages differ."""
        return [e for e, (a, b) in enumerate(zip(self.scored, self.suggested, strict=False))
                if a in SCORED_STAGES and b in SCORED_STAGES and a != b]

    def describe(self, epoch: int) -> str:
        """One line about an epoch, for the tooltip."""
        a = self.scored[epoch] if epoch < len(self.scored) else "UNS"
        b = self.suggested[epoch] if epoch < len(self.suggested) else "—"
        c = self.confidence[epoch] if epoch < len(self.confidence) else 0.0
        # zero-shot confidences are calibrated: "70 % likely right" held on held-out nights
        return f"Epoch {epoch + 1}: scored {a}, SleepLM {b} ({c:.0%} likely right)"

    def _update_summary(self) -> None:
        if not self.suggested:
            self.summary_label.setText("No SleepLM suggestions yet (Language → Suggest stages).")
        else:
            kappa, agree, n = agreement(self.scored, self.suggested)
            if n == 0:
                self.summary_label.setText(
                    f"SleepLM suggests {len(self.suggested)} epochs; none scored yet to compare."
                )
            else:
                self.summary_label.setText(
                    f"Cohen's κ = {kappa:.2f} · agreement {agree:.0%} over {n} epochs · "
                    f"{len(self.disagreements())} disagree (red) · {self.model}"
                )
        self._update_buttons()
        self.strip.update()

    def _update_buttons(self) -> None:
        e = self.position_epoch
        self.accept_epoch_button.setEnabled(
            e is not None and e < len(self.suggested) and self.suggested[e] in SCORED_STAGES
            and (e >= len(self.scored) or self.scored[e] != self.suggested[e])
        )
        self.accept_all_button.setEnabled(bool(self.disagreements()))

    # -- accepting --------------------------------------------------------------------------
    def accept_epochs(self, epochs: Sequence[int]) -> int:
        """Emit ``acceptRequested`` for ``epochs`` grouped by suggested stage; returns count."""
        by_stage: dict[str, list[int]] = {}
        for e in epochs:
            if 0 <= e < len(self.suggested) and self.suggested[e] in SCORED_STAGES:
                by_stage.setdefault(self.suggested[e], []).append(int(e))
        if by_stage:
            self.acceptRequested.emit(by_stage)
        return sum(len(g) for g in by_stage.values())

    def accept_current(self) -> int:
        """Accept the suggestion for the epoch being viewed."""
        return 0 if self.position_epoch is None else self.accept_epochs([self.position_epoch])

    def accept_disagreements(self) -> int:
        """Accept every suggestion that disagrees with the scoring."""
        return self.accept_epochs(self.disagreements())

    def _on_strip_epochClicked(self, epoch: int) -> None:  # noqa: N802 - Qt signal name
        self.jumpRequested.emit(epoch * EPOCH_S)
