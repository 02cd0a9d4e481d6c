"""Time furniture behind the traces: epoch grid, 1-s grid, EDF+D gap shading, clock axis."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QPainter, QPen

from sleeplm_core.stages import EPOCH_S

_NICE_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
           1800.0, 3600.0, 7200.0)


class EpochGridItem(pg.GraphicsObject):
    """Vertical lines every 30-s epoch (numbered) and every second, and grey EDF+D gaps.

    Only what lies in view is painted, so a whole night costs the same as a page. Second lines
    are drawn only when they are at least 6 px apart.

    Parameters
    ----------
    duration_s : float
        Recording length.
    gaps : sequence of (float, float)
        ``(onset_s, duration_s)`` of EDF+D gaps.
    """

    def __init__(self, duration_s: float = 0.0, gaps: Sequence[tuple[float, float]] = ()) -> None:
        super().__init__()
        self.duration_s = float(duration_s)
        self.gaps = list(gaps)
        self.n_rows = 1.0
        self.show_seconds = True
        self._epoch_color = QColor("#7f7f7f")
        self._second_color = QColor("#e4e4e4")
        self._gap_color = QColor("#d9d9d9")
        self._text_color = QColor("#404040")
        self.setZValue(-10)

    def set_layout(self, duration_s: float, gaps: Sequence[tuple[float, float]],
                   n_rows: float) -> None:
        """Update recording length, gaps and the height in rows."""
        self.prepareGeometryChange()
        self.duration_s = float(duration_s)
        self.gaps = list(gaps)
        self.n_rows = max(float(n_rows), 1.0)
        self.update()

    def set_colors(self, epoch: str, second: str, gap: str, text: str) -> None:
        """Set line, gap and label colours."""
        self._epoch_color = QColor(epoch)
        self._second_color = QColor(second)
        self._gap_color = QColor(gap)
        self._text_color = QColor(text)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        """Cover the whole recording."""
        return QRectF(0.0, 0.0, max(self.duration_s, 1.0), self.n_rows)

    def paint(self, p: QPainter, *args) -> None:
        """Paint gaps and grid lines that fall inside the view."""
        vb = self.getViewBox()
        if vb is None:
            return
        view = vb.viewRect()
        x0, x1 = max(view.left(), 0.0), min(view.right(), self.duration_s)
        if x1 <= x0:
            return
        y0, y1 = 0.0, self.n_rows
        for onset, dur in self.gaps:
            if onset < x1 and onset + dur > x0:
                p.fillRect(QRectF(onset, y0, dur, y1 - y0), self._gap_color)
        px_per_s = vb.width() / max(view.width(), 1e-9)
        if self.show_seconds and px_per_s >= 6:
            pen = QPen(self._second_color)
            pen.setCosmetic(True)
            p.setPen(pen)
            for s in range(math.ceil(x0), math.floor(x1) + 1):
                if s % EPOCH_S:
                    p.drawLine(QPointF(s, y0), QPointF(s, y1))
        step = EPOCH_S
        while step * px_per_s < 12:
            step *= 10  # a whole night: every 10th epoch line
        pen = QPen(self._epoch_color)
        pen.setCosmetic(True)
        p.setPen(pen)
        first = math.ceil(x0 / step) * step
        epochs = []
        e = first
        while e <= x1:
            p.drawLine(QPointF(e, y0), QPointF(e, y1))
            epochs.append(e)
            e += step
        if step == EPOCH_S and px_per_s * EPOCH_S >= 60:
            self._paint_epoch_numbers(p, epochs, view.top() if vb.yInverted() else view.bottom())

    def _paint_epoch_numbers(self, p: QPainter, epochs: list[float], top: float) -> None:
        tr = p.transform()
        p.save()
        p.resetTransform()
        font = QFont()
        font.setPointSizeF(7.5)
        p.setFont(font)
        p.setPen(self._text_color)
        for e in epochs:
            if e >= self.duration_s:
                continue
            pt = tr.map(QPointF(e, top))
            p.drawText(QRectF(pt.x() + 3, pt.y() + 1, 80, 14),
                       int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
                       f"Epoch {int(e // EPOCH_S) + 1}")
        p.restore()


def seconds_of_day(start: datetime) -> float:
    """Return the wall-clock seconds since midnight of ``start`` (microseconds kept)."""
    return start.hour * 3600 + start.minute * 60 + start.second + start.microsecond / 1e6


def format_clock(start: datetime, elapsed_s: float, decimals: int = 0) -> str:
    """Return the wall-clock time ``elapsed_s`` after ``start`` as ``HH:MM:SS[.ff]``."""
    t = start + timedelta(seconds=elapsed_s)
    text = t.strftime("%H:%M:%S")
    if decimals > 0:
        frac = t.microsecond / 1e6
        text += f"{frac:.{decimals}f}"[1:]
    return text


class ClockAxisItem(pg.AxisItem):
    """Bottom axis labelled in wall-clock time, with ticks on round clock seconds.

    Parameters
    ----------
    start : datetime or None
        Recording start; ticks are elapsed seconds when ``None``.
    """

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__("bottom")
        self.start = start
        self.setHeight(28)

    def set_start(self, start: datetime | None) -> None:
        """Set the recording start (keeps microseconds)."""
        self.start = start
        self.picture = None
        self.update()

    def _spacing(self, span: float, size: float) -> tuple[float, float]:
        target = span * 90.0 / max(size, 1.0)  # about one label per 90 px
        major = next((s for s in _NICE_S if s >= target), _NICE_S[-1])
        minor_target = major / 5
        minor = max([s for s in _NICE_S if s <= minor_target] or [major / 5])
        return major, minor

    def tickValues(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803
        """Place ticks where the wall clock is a round number of seconds."""
        if maxVal <= minVal:
            return []
        major, _ = self._spacing(maxVal - minVal, size)
        offset = seconds_of_day(self.start) if self.start is not None else 0.0
        out = []
        for spacing in (major,):  # minor lines are the grid's 1-s lines: no labels to lay out
            first = math.ceil((minVal + offset) / spacing) * spacing - offset
            n = int((maxVal - first) // spacing) + 1
            values = [first + i * spacing for i in range(max(n, 0))]
            out.append((spacing, values))
        return out

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        """Return clock times (``HH:MM:SS``) or elapsed seconds without a start."""
        if self.start is None:
            return [f"{v:g} s" for v in values]
        decimals = 1 if spacing < 1 else 0
        return [format_clock(self.start, v, decimals) for v in values]
