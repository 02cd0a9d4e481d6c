"""Graphics items for the traces: one curve per channel and the channel-label axis."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QFontMetrics, QPainter


class TraceItem(pg.PlotCurveItem):
    """One channel's curve, placed on its row with ``setPos``.

    NaN samples (EDF+D gaps) break the line (``connect="finite"``); the finite check is skipped
    because the path builder finds non-finite points itself in that mode.

    Parameters
    ----------
    name : str
        Channel name.
    color : str
        Line colour.
    """

    def __init__(self, name: str, color: str) -> None:
        super().__init__(
            pen=pg.mkPen(color, width=1, cosmetic=True),
            antialias=True,  # Qt's aliased cosmetic stroker drops pixels on steep segments
            connect="finite",
            skipFiniteCheck=True,
        )
        self.name = name
        self._rect: QRectF | None = None

    def set_trace(
        self,
        t: np.ndarray,
        y: np.ndarray,
        row_y: float,
        y_range: tuple[float, float],
        has_nan: bool = True,
    ) -> None:
        """Show samples ``y`` (scaled to row units) at times ``t`` on row ``row_y``.

        ``y_range`` is the (min, max) of ``y`` and ``has_nan`` whether it has gaps, both
        computed for all channels at once by the caller: they spare pyqtgraph a bounds pass
        per paint, and gap-free pages take the fast polygon path.
        """
        lo, hi = y_range
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo, hi = -0.5, 0.5
        pad_y = 0.05 + 0.01 * (hi - lo)
        x0, x1 = (float(t[0]), float(t[-1])) if len(t) else (0.0, 1.0)
        pad_x = 0.002 * (x1 - x0) + 1e-3
        self.prepareGeometryChange()
        self._rect = QRectF(x0 - pad_x, lo - pad_y, x1 - x0 + 2 * pad_x, hi - lo + 2 * pad_y)
        self.setData(t, y, connect="finite" if has_nan else "all", skipFiniteCheck=True)
        self.setPos(0.0, row_y)

    def boundingRect(self) -> QRectF:  # noqa: N802
        """The data's extent, known from :meth:`set_trace` (no per-paint bounds pass)."""
        return self._rect if self._rect is not None else super().boundingRect()

    def set_color(self, color: str) -> None:
        """Change the line colour."""
        self.setPen(pg.mkPen(color, width=1, cosmetic=True))


@dataclass(frozen=True, slots=True)
class AxisRow:
    """One label on the channel axis.

    Parameters
    ----------
    y : float
        Row centre in view coordinates.
    name : str
        Channel name.
    scale : str
        Scale text, e.g. "7.5 µV/mm".
    flat : bool
        Draw the label red with a "flat" tag (constant or empty channel on this page).
    """

    y: float
    name: str
    scale: str
    flat: bool = False


class ChannelAxisItem(pg.AxisItem):
    """Left axis that shows channel names with their scale, and lets labels be dragged.

    Signals
    -------
    sigRowDragged(float, float)
        A label was dragged from one view y to another (reorder).
    sigRowMenuRequested(float, object)
        Right-click on a label: view y and the screen position (``QPoint``).
    """

    sigRowDragged = pyqtSignal(float, float)
    sigRowMenuRequested = pyqtSignal(float, object)

    def __init__(self) -> None:
        super().__init__("left")
        self.rows: list[AxisRow] = []
        self._text_color = QColor("#000000")
        self._flat_color = QColor("#d00000")
        self.setWidth(118)
        self.setStyle(showValues=False, tickLength=0)
        self._drag_from: float | None = None
        self._drawn: dict[str, str] = {}  # channel name -> the text drawn (elided when long)
        self.setAcceptHoverEvents(True)

    def drawn_labels(self) -> dict[str, str]:
        """The text last drawn for each channel (``"Pression nas…"`` when elided)."""
        return dict(self._drawn)

    def tooltip_for(self, name: str) -> str:
        """The tooltip of a channel's label: its full name when the label is elided, else ""."""
        return name if self._drawn.get(name, name) != name else ""

    def hoverEvent(self, event) -> None:  # noqa: N802
        """Show the full name of an elided label as a tooltip."""
        if event.isExit():
            self.setToolTip("")
            return
        y = self._view_y(event.pos())
        row = None if y is None else min(self.rows, key=lambda r: abs(r.y - y), default=None)
        self.setToolTip(self.tooltip_for(row.name) if row is not None else "")

    def set_rows(self, rows: list[AxisRow]) -> None:
        """Replace the labels (the cached picture is kept when nothing changed)."""
        if rows == self.rows:
            return
        self.rows = rows
        self.picture = None
        self.update()

    def set_colors(self, text: str, flat: str) -> None:
        """Set label and flat-tag colours."""
        self._text_color = QColor(text)
        self._flat_color = QColor(flat)
        self.setPen(text)
        self.setTextPen(text)
        self.picture = None
        self.update()

    def _row_pixel(self, y: float) -> float | None:
        view = self.linkedView()
        if view is None:
            return None
        scene = view.mapViewToScene(QPointF(0.0, y))
        return float(self.mapFromScene(scene).y())

    def drawPicture(self, p: QPainter, axisSpec, tickSpecs, textSpecs) -> None:  # noqa: N802
        """Draw the axis line and one two-line label per channel row."""
        pen, p1, p2 = axisSpec
        p.setPen(pen)
        p.drawLine(p1, p2)
        if not self.rows:
            return
        w = self.width() - 8
        view = self.linkedView()
        row_px = 24.0
        if view is not None and len(self.rows) > 0:
            row_px = view.height() / len(self.rows)
        name_font = QFont(self.font())
        name_font.setPointSizeF(max(6.5, min(9.5, row_px / 3.2)))
        name_font.setBold(True)
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, min(8.0, row_px / 4.0)))
        two_lines = row_px >= 26
        metrics = QFontMetrics(name_font)
        self._drawn = {}
        for row in self.rows:
            yc = self._row_pixel(row.y)
            if yc is None:
                continue
            color = self._flat_color if row.flat else self._text_color
            p.setPen(color)
            p.setFont(name_font)
            tag = "  FLAT" if row.flat else ""
            # a long label is elided at its end (never cut at the left edge); tooltip has it all
            room = max(int(w) - metrics.horizontalAdvance(tag), 8)
            shown = metrics.elidedText(row.name, Qt.TextElideMode.ElideRight, room)
            self._drawn[row.name] = shown
            name = shown + tag
            if two_lines:
                p.drawText(QRectF(0, yc - row_px / 2, w, row_px / 2),
                           int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom), name)
                p.setFont(small)
                p.drawText(QRectF(0, yc, w, row_px / 2),
                           int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop), row.scale)
            else:
                p.drawText(QRectF(0, yc - row_px / 2, w, row_px),
                           int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), name)

    def _view_y(self, pos: QPointF) -> float | None:
        view = self.linkedView()
        if view is None:
            return None
        return float(view.mapSceneToView(self.mapToScene(pos)).y())

    def mouseDragEvent(self, event) -> None:  # noqa: N802
        """Drag a label up or down to move the channel."""
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        event.accept()
        if event.isStart():
            self._drag_from = self._view_y(event.buttonDownPos())
        elif event.isFinish() and self._drag_from is not None:
            to = self._view_y(event.pos())
            if to is not None:
                self.sigRowDragged.emit(self._drag_from, to)
            self._drag_from = None

    def mouseClickEvent(self, event) -> None:  # noqa: N802
        """Right-click on a label opens the channel menu."""
        if event.button() == Qt.MouseButton.RightButton:
            y = self._view_y(event.pos())
            if y is not None:
                event.accept()
                self.sigRowMenuRequested.emit(y, event.screenPos().toPoint())
                return
        event.ignore()
