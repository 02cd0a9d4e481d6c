"""The events of one page painted by two graphics items, whatever their number.

One ``LinearRegionItem`` (plus a ``TextItem``) per event cost a flip with 10,000 events on the
night ~15 ms: every region blended its translucent rectangle over the whole plot height, so a
pixel under five overlapping apneas was blended five times, and every item re-ran pyqtgraph's
pen, bounds and text machinery. Here the page's events are two items:

- :class:`AnnotationBandsItem` (below the traces) fills, per colour and band, the *union* of the
  events' spans (each pixel blended once, whatever the overlap) and draws their edges; it
  finds the event under the mouse for hover, clicks and the edge editor;
- :class:`AnnotationLabelsItem` (above the traces) writes the labels in screen pixels, near
  labels stacked in up to :data:`MAX_LANES` lanes and elided when even those are full.

Both paint from :class:`DrawnAnnotation` records and cache what they paint (device-space
rectangles, lines and label boxes), rebuilt only when the records or the view transform
change. :class:`~sleepviewer.items.annotation_item.AnnotationOverlay` fills the records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import pyqtgraph as pg
from PyQt6.QtCore import QLineF, QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QTransform

from sleeplm_core.io.annotations import Annotation

MAX_LANES: Final[int] = 3
"""Labels of one band stack in at most this many lanes; later ones elide earlier ones."""

LABEL_TOP_PX: Final[float] = 14.0
"""First lane's top, in pixels below the band's top edge (clear of the epoch numbers)."""

LABEL_GAP_PX: Final[float] = 4.0
"""Free pixels kept between two labels of one lane."""

MIN_LABEL_PX: Final[float] = 18.0
"""A label squeezed below this width is not drawn (its event keeps its band and tooltip)."""

FILL_ALPHA: Final[int] = 45
EDGE_ALPHA: Final[int] = 200


@dataclass(frozen=True, slots=True)
class DrawnAnnotation:
    """One event as drawn on the page.

    Parameters
    ----------
    annotation : Annotation
        The event.
    color : str
        Hex colour of its label family.
    text : str
        The label text (``"Arousal (C4-M1)"`` for an event tied to a channel).
    span : (float, float)
        Vertical extent as fractions of the view height (``(0, 1)``: whole height).
    band : (float, float)
        The same extent in plot y, ``(low, high)``.
    label_x : float
        Plot x of the label's left edge (the page start for an event begun earlier).
    """

    annotation: Annotation
    color: str
    text: str
    span: tuple[float, float]
    band: tuple[float, float]
    label_x: float

    @property
    def x0(self) -> float:
        """Onset, seconds."""
        return self.annotation.onset_s

    @property
    def x1(self) -> float:
        """Offset, seconds."""
        return self.annotation.offset_s


def merge_spans(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the union of ``(start, stop)`` intervals as sorted, disjoint intervals."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True, slots=True)
class LabelBox:
    """A label placed on screen: its text (possibly elided), box and colour."""

    text: str
    rect: QRectF
    color: str


@dataclass(slots=True)
class _Placed:
    text: str
    x: float
    y: float
    width: float
    full_width: float
    color: str


def layout_labels(
    items: Sequence[tuple[float, float, float, str, str]],
    line_px: float,
    width_of: Callable[[str], float],
    elide: Callable[[str, float], str],
) -> list[LabelBox]:
    """Place labels in lanes so that none overlaps another.

    Parameters
    ----------
    items : sequence of (x_px, band_top_px, band_bottom_px, text, color)
        Labels in onset order, in device pixels.
    line_px : float
        Height of one lane.
    width_of : callable
        ``text -> width in pixels`` (padding included).
    elide : callable
        ``(text, width_px) -> text`` shortened to fit.

    Returns
    -------
    list of LabelBox
        Labels to draw. Within one band a label takes the first lane free at its x; when all
        lanes are busy (:data:`MAX_LANES`, fewer in a low band) it goes to the lane that frees
        first and the label it follows there is elided to end before it (dropped below
        :data:`MIN_LABEL_PX`).
    """
    lanes: dict[tuple[int, int], list[tuple[float, int]]] = {}  # per lane: (right end, label)
    placed: list[_Placed] = []
    for x, top, bottom, text, color in items:
        band = lanes.setdefault((round(top), round(bottom)), [])
        w = width_of(text)
        room = max(1, int((bottom - top - LABEL_TOP_PX) // line_px))
        lane = next((k for k, (end, _) in enumerate(band) if end + LABEL_GAP_PX <= x), None)
        if lane is None and len(band) < min(MAX_LANES, room):
            band.append((float("-inf"), -1))
            lane = len(band) - 1
        if lane is None:  # every lane busy: shorten the label this one follows
            lane = min(range(len(band)), key=lambda k: band[k][0])
            prev = placed[band[lane][1]]
            prev.width = min(prev.width, x - LABEL_GAP_PX - prev.x)
        band[lane] = (x + w, len(placed))
        placed.append(_Placed(text, x, top + LABEL_TOP_PX + lane * line_px, w, w, color))
    return [
        LabelBox(
            q.text if q.width >= q.full_width else elide(q.text, q.width),
            QRectF(q.x, q.y, q.width, line_px - 1),
            q.color,
        )
        for q in placed
        if q.width >= MIN_LABEL_PX
    ]


def _alpha(color: str | QColor, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def _transform_key(tr: QTransform) -> tuple[float, float, float, float]:
    return (tr.m11(), tr.m22(), tr.dx(), tr.dy())


class AnnotationBandsItem(pg.GraphicsObject):
    """The page's events as filled bands with edges, painted in one pass.

    Parameters
    ----------
    on_hover : callable
        ``(annotation or None) -> None``: the event under the mouse (``None``: none).
    on_click : callable
        ``(annotation, event) -> None``: a click on an event (the overlay handles right-click
        and double-click).
    """

    def __init__(
        self,
        on_hover: Callable[[Annotation | None], None],
        on_click: Callable[[Annotation, object], None],
    ) -> None:
        super().__init__()
        self._on_hover = on_hover
        self._on_click = on_click
        self._drawn: list[DrawnAnnotation] = []
        self._clip = (float("-inf"), float("inf"))
        self._bounds = QRectF()
        self._shape: QPainterPath | None = None
        self._cache_key: tuple[float, float, float, float] | None = None
        self._fills: list[tuple[QColor, list[QRectF]]] = []
        self._edges: list[tuple[QPen, list[QLineF]]] = []
        self.fill_alpha = FILL_ALPHA
        self.setZValue(-5)  # below the traces and their labels, above the epoch grid

    @property
    def drawn(self) -> list[DrawnAnnotation]:
        """The records painted, in onset order."""
        return list(self._drawn)

    def set_drawn(self, drawn: list[DrawnAnnotation], x_range: tuple[float, float]) -> None:
        """Paint ``drawn``, clipped to the page ``x_range`` (seconds)."""
        self.prepareGeometryChange()
        self._drawn = drawn
        self._clip = x_range
        self._shape = None
        self._cache_key = None
        bounds = QRectF()
        for d in drawn:
            lo, hi = d.band
            bounds = bounds.united(QRectF(max(d.x0, x_range[0]), lo,
                                          max(min(d.x1, x_range[1]) - max(d.x0, x_range[0]), 0.0),
                                          hi - lo))
        self._bounds = bounds
        self.update()

    def set_fill_alpha(self, alpha: int) -> None:
        """Opacity of the fills (0-255; the dark theme needs more)."""
        self.fill_alpha = int(alpha)
        self._cache_key = None
        self.update()

    def annotation_at(self, x: float, y: float, tolerance: float = 0.0) -> Annotation | None:
        """Return the event at plot ``(x, y)``: the one with the nearest edge when several.

        ``tolerance`` (seconds) widens every event, so that an edge can be grabbed from just
        outside.
        """
        best: tuple[float, float] | None = None
        found: Annotation | None = None
        for d in self._drawn:
            lo, hi = d.band
            if not (lo <= y <= hi and d.x0 - tolerance <= x <= d.x1 + tolerance):
                continue
            key = (min(abs(x - d.x0), abs(x - d.x1)), d.x1 - d.x0)
            if best is None or key < best:
                best, found = key, d.annotation
        return found

    # -- QGraphicsItem --------------------------------------------------------------------
    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        """The union of the drawn bands."""
        return QRectF(self._bounds)

    def shape(self) -> QPainterPath:
        """The drawn bands (for hover and clicks)."""
        if self._shape is None:
            path = QPainterPath()
            for d in self._drawn:
                lo, hi = d.band
                path.addRect(QRectF(d.x0, lo, max(d.x1 - d.x0, 1e-6), hi - lo))
            self._shape = path
        return self._shape

    def paint(self, p: QPainter, *args: object) -> None:
        """Fill the merged bands and draw the edges, in device pixels."""
        if not self._drawn:
            return
        tr = p.transform()
        key = _transform_key(tr)
        if key != self._cache_key:
            self._build_cache(tr)
            self._cache_key = key
        p.save()
        p.resetTransform()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for color, rects in self._fills:
            for r in rects:
                p.fillRect(r, color)
        for pen, lines in self._edges:
            p.setPen(pen)
            p.drawLines(lines)
        p.restore()

    def _build_cache(self, tr: QTransform) -> None:
        a, b = self._clip
        groups: dict[tuple[str, float, float], list[tuple[float, float]]] = {}
        edges: dict[str, list[QLineF]] = {}
        for d in self._drawn:
            lo, hi = d.band
            x0, x1 = max(d.x0, a), min(d.x1, b)
            groups.setdefault((d.color, lo, hi), []).append((x0, max(x1, x0)))
            line_x = [x for x in (d.x0, d.x1) if a <= x <= b]
            for x in line_x:
                p0, p1 = tr.map(QPointF(x, lo)), tr.map(QPointF(x, hi))
                edges.setdefault(d.color, []).append(QLineF(p0, p1))
        fills: dict[str, list[QRectF]] = {}
        for (color, lo, hi), spans in groups.items():
            for x0, x1 in merge_spans(spans):
                r = tr.mapRect(QRectF(x0, lo, x1 - x0, hi - lo))
                r.setWidth(max(r.width(), 1.0))
                fills.setdefault(color, []).append(r)
        self._fills = [(_alpha(c, self.fill_alpha), rects) for c, rects in fills.items()]
        pens = []
        for c, lines in edges.items():
            pen = QPen(_alpha(c, EDGE_ALPHA))
            pen.setWidth(1)
            pen.setCosmetic(True)
            pens.append((pen, lines))
        self._edges = pens

    # -- mouse ----------------------------------------------------------------------------
    def hoverEvent(self, ev: object) -> None:  # noqa: N802 - pyqtgraph API
        """Tell the overlay which event is under the mouse."""
        if ev.isExit():  # type: ignore[attr-defined]
            return
        pos = ev.pos()  # type: ignore[attr-defined]
        self._on_hover(self.annotation_at(pos.x(), pos.y(), 4 * (self.pixelWidth() or 0.0)))

    def mouseClickEvent(self, ev: object) -> None:  # noqa: N802 - pyqtgraph API
        """Pass clicks on an event to the overlay (which accepts what it handles)."""
        pos = ev.pos()  # type: ignore[attr-defined]
        ann = self.annotation_at(pos.x(), pos.y())
        if ann is not None:
            self._on_click(ann, ev)


class AnnotationLabelsItem(pg.GraphicsObject):
    """The labels of the page's events, above the traces, in screen pixels."""

    def __init__(self) -> None:
        super().__init__()
        self._drawn: list[DrawnAnnotation] = []
        self._bounds = QRectF()
        self._cache_key: tuple[float, float, float, float] | None = None
        self._boxes: list[LabelBox] = []
        self._widths: dict[str, float] = {}
        self._font = QFont()
        self._metrics = QFontMetricsF(self._font)
        self._fill = _alpha("#ffffff", 170)
        self._text_color: Callable[[str], QColor] = QColor
        self.setZValue(30)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    @property
    def boxes(self) -> list[LabelBox]:
        """The labels as last painted (device pixels)."""
        return list(self._boxes)

    def set_drawn(self, drawn: list[DrawnAnnotation]) -> None:
        """Label ``drawn``."""
        self._drawn = drawn
        self._cache_key = None
        self.update()

    def set_colors(self, fill: QColor, text_color: Callable[[str], QColor]) -> None:
        """Set the label background and the ``family colour -> text colour`` mapping."""
        self._fill = QColor(fill)
        self._text_color = text_color
        self.update()

    def viewRangeChanged(self) -> None:  # noqa: N802 - pyqtgraph API
        """Cover the view (labels live in pixels, beyond their events)."""
        self.prepareGeometryChange()
        self._bounds = QRectF(self.viewRect() or QRectF())

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        """The view."""
        return QRectF(self._bounds)

    def layout(self, tr: QTransform) -> list[LabelBox]:
        """Return the label boxes for the device transform ``tr``."""
        items = []
        for d in self._drawn:
            lo, hi = d.band
            y_a, y_b = tr.map(QPointF(0.0, lo)).y(), tr.map(QPointF(0.0, hi)).y()
            x = tr.map(QPointF(d.label_x, 0.0)).x()
            items.append((x, min(y_a, y_b), max(y_a, y_b), d.text, d.color))
        return layout_labels(items, self._metrics.height() + 2, self._width, self._elide)

    def paint(self, p: QPainter, *args: object) -> None:
        """Draw each label on a translucent box."""
        if not self._drawn:
            return
        tr = p.transform()
        key = _transform_key(tr)
        if key != self._cache_key:
            self._boxes = self.layout(tr)
            self._cache_key = key
        p.save()
        p.resetTransform()
        p.setFont(self._font)
        flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for box in self._boxes:
            p.fillRect(box.rect, self._fill)
            p.setPen(self._text_color(box.color))
            p.drawText(box.rect.adjusted(3, 0, 0, 0), flags, box.text)
        p.restore()

    def _width(self, text: str) -> float:
        w = self._widths.get(text)
        if w is None:
            w = self._widths[text] = self._metrics.horizontalAdvance(text) + 6
        return w

    def _elide(self, text: str, width: float) -> str:
        return self._metrics.elidedText(text, Qt.TextElideMode.ElideRight, max(width - 6, 0.0))
