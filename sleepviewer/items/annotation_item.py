"""Annotations drawn on the trace view: one painted layer plus one editable region.

The page's events are painted by two items whatever their number
(:mod:`sleepviewer.items.annotation_layer`): coloured bands by label family (respiratory blue,
desaturation purple, arousal orange, ...) below the traces, an event scored on one channel over
that channel's band only, and the labels above the traces, stacked or elided when close.

:class:`AnnotationRegionItem` is the one ``pg.LinearRegionItem`` of the overlay: it sits on the
event under the mouse, so that its edges can be dragged to change onset and duration (an
undoable ``EditAnnotation``); the body lets drags through, so the view still pans.

:class:`AnnotationOverlay` owns the items of one plot: ``update_view(start_s, stop_s)`` shows the
events of the page, a Ctrl+drag on the plot creates an event (a small label menu; its
"Only on <channel>" submenu ties the event to the channel under the cursor), a right-click
offers Delete and a double-click asks for the edit dialog.

Main names
----------
=========================  ===============================================================
``label_family``           label → family (``"respiratory"``, ``"arousal"``, ...)
``label_color``            label → hex colour
``AnnotationRegionItem``   the edge editor of the hovered event
``AnnotationOverlay``      the controller: ``update_view``, hover, creation by Ctrl+drag
``choose_label_menu``      the default label chooser (a ``QMenu`` at the cursor)
=========================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import pyqtgraph as pg
from PyQt6.QtCore import QObject, QPoint, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QCursor, QPainter
from PyQt6.QtWidgets import QInputDialog, QMenu, QWidget

from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.labels import (
    AROUSAL,
    ARTIFACT,
    CENTRAL_APNEA,
    DESATURATION,
    HYPOPNEA,
    K_COMPLEX,
    LIGHTS_OFF,
    LIGHTS_ON,
    LIMB_MOVEMENT,
    MIXED_APNEA,
    OBSTRUCTIVE_APNEA,
    RERA,
    SPINDLE,
)
from sleepviewer.annotation_store import AnnotationStore
from sleepviewer.items.annotation_layer import (
    AnnotationBandsItem,
    AnnotationLabelsItem,
    DrawnAnnotation,
)
from sleepviewer.theme import colors

# (family, colour, labels); the first family whose labels contain the label wins.
LABEL_FAMILIES: Final[tuple[tuple[str, str, frozenset[str]], ...]] = (
    ("respiratory", "#1f5fbf", frozenset({OBSTRUCTIVE_APNEA, CENTRAL_APNEA, MIXED_APNEA})),
    ("hypopnea", "#3fa0e0", frozenset({HYPOPNEA, RERA})),
    ("desaturation", "#8e44ad", frozenset({DESATURATION})),
    ("arousal", "#f28e1c", frozenset({AROUSAL})),
    ("limb", "#2ca02c", frozenset({LIMB_MOVEMENT})),
    ("graphoelement", "#17a2a8", frozenset({SPINDLE, K_COMPLEX, "Slow wave",
                                             "Rapid eye movement"})),
    ("artifact", "#7f7f7f", frozenset({ARTIFACT})),
    ("marker", "#303030", frozenset({LIGHTS_OFF, LIGHTS_ON})),
)
OTHER_COLOR: Final[str] = "#a0522d"
"""Colour of labels outside every family (user-defined labels)."""

CREATE_LABELS: Final[tuple[str, ...]] = (
    OBSTRUCTIVE_APNEA,
    CENTRAL_APNEA,
    MIXED_APNEA,
    HYPOPNEA,
    RERA,
    DESATURATION,
    AROUSAL,
    LIMB_MOVEMENT,
    SPINDLE,
    K_COMPLEX,
    ARTIFACT,
)
"""Labels offered when an event is created on the plot."""

ChannelBands = Callable[[], Mapping[str, tuple[float, float]]]
"""Returns, for every drawn channel, its band ``(y_low, y_high)`` in plot coordinates."""

LabelChooser = Callable[[QPoint, str | None], tuple[str, str | None] | None]
"""``(screen position, channel under the cursor) -> (label, channel or None)`` or ``None``."""


def label_family(label: str) -> str:
    """Return the family of a label (``"other"`` for labels outside every family)."""
    for family, _, labels in LABEL_FAMILIES:
        if label in labels:
            return family
    return "other"


def label_color(label: str) -> str:
    """Return the hex colour of a label's family."""
    for _, color, labels in LABEL_FAMILIES:
        if label in labels:
            return color
    return OTHER_COLOR


def _alpha(color: str, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


class AnnotationRegionItem(pg.LinearRegionItem):
    """The edge editor: sits on the hovered event (one per overlay, parked when unused).

    It paints only its edges and, while hovered, a highlight; the event itself is painted
    by the overlay's layer.

    Signals
    -------
    sigEditFinished(object, object)
        ``(old, new)`` annotations after an edge was dragged.
    sigActivated(object)
        The annotation, on double-click.
    sigDeleteRequested(object)
        The annotation, from the right-click menu.
    """

    sigEditFinished = pyqtSignal(object, object)
    sigActivated = pyqtSignal(object)
    sigDeleteRequested = pyqtSignal(object)

    def __init__(self) -> None:
        super().__init__(values=(0.0, 1.0), orientation="vertical", movable=True, swapMode="block")
        self._annotation: Annotation | None = None
        self._color = ""
        self.setZValue(-4)  # just above the layer's bands
        self.setBrush(None)
        self.sigRegionChangeFinished.connect(self._on_self_regionChangeFinished)
        self.park()

    @property
    def annotation(self) -> Annotation | None:
        """The event edited (``None`` while parked)."""
        return self._annotation

    def set_annotation(self, annotation: Annotation, span: tuple[float, float]) -> None:
        """Sit on ``annotation``; ``span`` is its extent as fractions of the view height."""
        self._annotation = annotation
        color = label_color(annotation.label)
        self.blockSignals(True)
        self.setRegion((annotation.onset_s, annotation.offset_s))
        self.blockSignals(False)
        if color != self._color:
            self._color = color
            self.setHoverBrush(_alpha(color, 45))
            for line in self.lines:
                line.setPen(pg.mkPen(_alpha(color, 200), width=1))
                line.setHoverPen(pg.mkPen(color, width=3))
        self.setSpan(*span)
        text = annotation.label if annotation.channel is None else (
            f"{annotation.label} ({annotation.channel})"
        )
        self.setToolTip(f"{text}\n{annotation.onset_s:.1f} s, {annotation.duration_s:.1f} s")
        self.setVisible(True)

    def park(self) -> None:
        """Hide the editor."""
        self._annotation = None
        self.setVisible(False)

    def paint(self, p: QPainter, *args: object) -> None:
        """Highlight the event while hovered; otherwise the layer below shows it."""
        if self.mouseHovering:
            super().paint(p, *args)

    def mouseDragEvent(self, ev: object) -> None:  # noqa: N802 - pyqtgraph API
        """Let drags on the body through (the view pans); the edges stay draggable."""
        ev.ignore()  # type: ignore[attr-defined]

    def mouseClickEvent(self, ev: object) -> None:  # noqa: N802 - pyqtgraph API
        """Double-click activates; right-click offers Delete."""
        if self._annotation is not None:
            handle_click(self._annotation, ev, self.sigActivated.emit,
                         self.sigDeleteRequested.emit)

    def _on_self_regionChangeFinished(self) -> None:  # noqa: N802 - Qt signal name
        old = self._annotation
        if old is None:
            return
        lo, hi = self.getRegion()
        lo = max(0.0, float(lo))
        new = Annotation(lo, max(0.0, float(hi) - lo), old.label, old.channel, old.extras)
        if abs(new.onset_s - old.onset_s) > 1e-6 or abs(new.duration_s - old.duration_s) > 1e-6:
            self.sigEditFinished.emit(old, new)


def handle_click(
    ann: Annotation,
    ev: object,
    activate: Callable[[Annotation], None],
    delete: Callable[[Annotation], None],
) -> None:
    """Right-click: a menu offering Delete; double-click: ``activate``."""
    if ev.button() == Qt.MouseButton.RightButton:  # type: ignore[attr-defined]
        ev.accept()  # type: ignore[attr-defined]
        menu = QMenu()
        delete_act = menu.addAction(f"Delete “{ann.label}”")
        chosen = menu.exec(ev.screenPos().toPoint())  # type: ignore[attr-defined]
        if chosen is delete_act:
            delete(ann)
    elif ev.double():  # type: ignore[attr-defined]
        ev.accept()  # type: ignore[attr-defined]
        activate(ann)


class _DragCatcherItem(pg.GraphicsObject):
    """Invisible item over the whole view that takes drags made with a modifier held."""

    def __init__(
        self,
        modifier: Qt.KeyboardModifier,
        on_drag: Callable[[QPointF, QPointF, bool], None],
    ) -> None:
        super().__init__()
        self._modifier = modifier
        self._on_drag = on_drag
        self.setZValue(1e9)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        """Cover the view."""
        vb = self.getViewBox()
        return QRectF() if vb is None else QRectF(self.viewRect() or QRectF())

    def viewRangeChanged(self) -> None:  # noqa: N802 - pyqtgraph API
        """Follow the view."""
        self.prepareGeometryChange()

    def paint(self, p: QPainter, *args: object) -> None:
        """Draw nothing."""

    def mouseDragEvent(self, ev: object) -> None:  # noqa: N802 - pyqtgraph API
        """Take left drags with the modifier held, ignore the rest."""
        if ev.button() != Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            ev.ignore()  # type: ignore[attr-defined]
            return
        if ev.isStart() and not (ev.modifiers() & self._modifier):  # type: ignore[attr-defined]
            ev.ignore()  # type: ignore[attr-defined]
            return
        ev.accept()  # type: ignore[attr-defined]
        self._on_drag(ev.buttonDownPos(), ev.pos(), ev.isFinish())  # type: ignore[attr-defined]


def choose_label_menu(screen_pos: QPoint, channel: str | None) -> tuple[str, str | None] | None:
    """Ask for the label of a new event with a small menu at the cursor.

    Parameters
    ----------
    screen_pos : QPoint
        Where to open the menu.
    channel : str or None
        The channel under the cursor; offered in an "Only on <channel>" submenu.

    Returns
    -------
    (str, str or None) or None
        The label and the channel it is tied to, or ``None`` when cancelled.
    """
    menu = QMenu()
    menu.setToolTipsVisible(True)
    choices: dict[object, tuple[str | None, str | None]] = {}

    def fill(m: QMenu, ch: str | None) -> None:
        for lab in CREATE_LABELS:
            act = m.addAction(lab)
            act.setIcon(_swatch(label_color(lab)))
            choices[act] = (lab, ch)
        m.addSeparator()
        choices[m.addAction("Other label…")] = (None, ch)

    fill(menu, None)
    if channel is not None:
        menu.addSeparator()
        fill(menu.addMenu(f"Only on {channel}"), channel)
    chosen = menu.exec(screen_pos)
    if chosen is None or chosen not in choices:
        return None
    label, ch = choices[chosen]
    if label is None:
        text, ok = QInputDialog.getText(None, "New annotation", "Label:")
        if not ok or not text.strip():
            return None
        label = text.strip()
    return label, ch


def _swatch(color: str) -> object:
    from PyQt6.QtGui import QIcon, QPixmap

    pm = QPixmap(12, 12)
    pm.fill(QColor(color))
    return QIcon(pm)


class AnnotationOverlay(QObject):
    """Draws the store's events on a plot and creates new ones by Ctrl+drag.

    Parameters
    ----------
    plot_item : pg.PlotItem
        The trace plot (x in seconds from the recording start).
    store : AnnotationStore
        The annotations; every change goes through its undoable commands.
    channel_y_lookup : callable
        ``() -> {channel: (y_low, y_high)}``: the band of every drawn channel in plot
        coordinates. Events tied to a channel in the mapping are drawn over its band only.
    label_chooser : callable or None
        ``(screen_pos, channel_under_cursor) -> (label, channel) | None``; default
        :func:`choose_label_menu` (tests pass a function).
    create_modifier : Qt.KeyboardModifier
        Held while dragging to create an event (Ctrl by default; Shift is the time ruler).
    max_items : int
        At most this many events are drawn; more (zoomed far out) are counted, not drawn.
    parent : QObject or None
        Qt parent.

    Signals
    -------
    annotationActivated(object)
        An event was double-clicked (the main window may open the edit dialog).
    tooMany(int)
        ``update_view`` found more events than ``max_items`` (the number found).
    """

    annotationActivated = pyqtSignal(object)
    tooMany = pyqtSignal(int)

    def __init__(
        self,
        plot_item: pg.PlotItem,
        store: AnnotationStore,
        channel_y_lookup: ChannelBands,
        *,
        label_chooser: LabelChooser | None = None,
        create_modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.ControlModifier,
        max_items: int = 300,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._plot = plot_item
        self._store = store
        self._bands = channel_y_lookup
        self._chooser: LabelChooser = label_chooser or choose_label_menu
        self._max_items = int(max_items)
        self._range: tuple[float, float] | None = None
        self._events: list[Annotation] = []
        self._build_items(create_modifier)
        store.eventsChanged.connect(self._on_store_eventsChanged)
        self._plot.getViewBox().sigYRangeChanged.connect(self._on_view_yRangeChanged)

    def _build_items(self, create_modifier: Qt.KeyboardModifier) -> None:
        self.layer = AnnotationBandsItem(self._on_layer_hover, self._on_layer_click)
        self.labels = AnnotationLabelsItem()
        self.editor = AnnotationRegionItem()
        self.editor.sigEditFinished.connect(self._on_editor_editFinished)
        self.editor.sigActivated.connect(self.annotationActivated)
        self.editor.sigDeleteRequested.connect(self._on_editor_deleteRequested)
        self._preview = pg.LinearRegionItem(
            movable=False, brush=_alpha("#0050c8", 40), pen=pg.mkPen("#0050c8")
        )
        self._preview.setVisible(False)
        self._preview.setZValue(10)
        self._catcher = _DragCatcherItem(create_modifier, self._on_catcher_drag)
        for item in self._own_items():
            self._plot.addItem(item, ignoreBounds=True)

    def _own_items(self) -> list[pg.GraphicsObject]:
        return [self.layer, self.labels, self.editor, self._preview, self._catcher]

    # -- public ---------------------------------------------------------------------------
    @property
    def items(self) -> list[DrawnAnnotation]:
        """The events drawn on the page, in onset order."""
        return self.layer.drawn

    def update_view(self, start_s: float, stop_s: float) -> int:
        """Show the events overlapping ``[start_s, stop_s)``.

        Only the page's events are looked at (a bisect in the store), and they are painted
        by one layer: the cost does not grow with the night's number of events.

        Returns
        -------
        int
            The number of events drawn (0 and a :attr:`tooMany` signal when over
            ``max_items``).
        """
        self._range = (float(start_s), float(stop_s))
        events = self._store.in_range(start_s, stop_s)
        if len(events) > self._max_items:
            self.tooMany.emit(len(events))
            events = []
        self._events = events
        self._redraw()
        return len(events)

    def refresh(self) -> None:
        """Redraw the last range (after channels were moved, hidden or rescaled)."""
        if self._range is not None:
            self.update_view(*self._range)

    def hover(self, ann: Annotation | None) -> None:
        """Put the edge editor on ``ann`` (what hovering an event does); ``None`` keeps it."""
        if ann is None or ann == self.editor.annotation:
            return
        drawn = next((d for d in self.layer.drawn if d.annotation == ann), None)
        if drawn is not None:
            self.editor.set_annotation(ann, drawn.span)

    def apply_theme(self, theme: str) -> None:
        """Label boxes and fills for the ``"light"`` or ``"dark"`` theme."""
        dark = theme == "dark"
        self.labels.set_colors(_alpha(colors("dark" if dark else "light").background, 170),
                               _text_on_dark if dark else QColor)
        self.layer.set_fill_alpha(70 if dark else 45)

    def detach(self) -> None:
        """Remove every item this overlay put on the plot and stop following the store.

        Call before dropping the overlay (closing a recording); it is unusable afterwards.
        """
        self._store.eventsChanged.disconnect(self._on_store_eventsChanged)
        self._plot.getViewBox().sigYRangeChanged.disconnect(self._on_view_yRangeChanged)
        for item in self._own_items():
            self._plot.removeItem(item)
        self.layer.set_drawn([], (0.0, 0.0))
        self.labels.set_drawn([])
        self.editor.park()
        self._events = []
        self._range = None

    def channel_at(self, y: float) -> str | None:
        """Return the channel whose band contains plot y ``y``."""
        for name, (lo, hi) in self._bands().items():
            if min(lo, hi) <= y <= max(lo, hi):
                return name
        return None

    def create_from_drag(
        self, x0: float, x1: float, y: float, screen_pos: QPoint | None = None
    ) -> Annotation | None:
        """Ask for a label and add an event from ``x0`` to ``x1`` (what Ctrl+drag does).

        Returns
        -------
        Annotation or None
            The event added, or ``None`` when the chooser was cancelled.
        """
        lo, hi = sorted((max(0.0, x0), max(0.0, x1)))
        hi = min(hi, self._store.duration_s)
        if hi <= lo:
            return None
        pos = screen_pos if screen_pos is not None else QCursor.pos()
        chosen = self._chooser(pos, self.channel_at(y))
        if chosen is None:
            return None
        label, channel = chosen
        ann = Annotation(lo, hi - lo, label, channel)
        if ann.is_stage:
            return None  # stages are scored with the keys, not drawn
        self._store.add(ann)
        return ann

    # -- internals ------------------------------------------------------------------------
    def _redraw(self) -> None:
        """Give the layer, the labels and the editor the records of the page."""
        if self._range is None:
            return
        bands = self._bands()
        (y0, y1) = self._plot.getViewBox().viewRange()[1]
        height = (y1 - y0) or 1.0
        start = self._range[0]
        drawn = []
        for ann in self._events:
            band = bands.get(ann.channel) if ann.channel is not None else None
            lo, hi = (y0, y1) if band is None else sorted(band)
            span = (min(max((lo - y0) / height, 0.0), 1.0), min(max((hi - y0) / height, 0.0), 1.0))
            text = ann.label if ann.channel is None else f"{ann.label} ({ann.channel})"
            drawn.append(DrawnAnnotation(ann, label_color(ann.label), text, span,
                                         (float(lo), float(hi)), max(ann.onset_s, start)))
        self.layer.set_drawn(drawn, self._range)
        self.labels.set_drawn(drawn)
        edited = self.editor.annotation
        if edited is not None:
            here = next((d for d in drawn if d.annotation == edited), None)
            if here is None:
                self.editor.park()
            else:
                self.editor.set_annotation(edited, here.span)

    def _on_layer_hover(self, ann: Annotation | None) -> None:
        self.hover(ann)

    def _on_layer_click(self, ann: Annotation, ev: object) -> None:
        handle_click(ann, ev, self.annotationActivated.emit, self._store.delete)

    def _on_store_eventsChanged(self) -> None:  # noqa: N802 - Qt signal name
        if self._range is not None and self._store.in_range(*self._range) == self._events:
            return  # an edit elsewhere in the night: the page, and its traces, stay as drawn
        self.refresh()

    def _on_view_yRangeChanged(self) -> None:  # noqa: N802 - Qt signal name
        self._redraw()

    def _on_editor_editFinished(self, old: Annotation, new: Annotation) -> None:  # noqa: N802
        self._store.edit(old, new)  # the overlay redraws (and parks the editor) meanwhile
        self.hover(new)  # keep editing the same event

    def _on_editor_deleteRequested(self, ann: Annotation) -> None:  # noqa: N802
        self._store.delete(ann)

    def _on_catcher_drag(self, down: QPointF, now: QPointF, finished: bool) -> None:
        x0, x1 = down.x(), now.x()
        if not finished:
            self._preview.setRegion(sorted((x0, x1)))
            self._preview.setVisible(True)
            return
        self._preview.setVisible(False)
        widget = self._plot.getViewBox().scene().views()[0]
        screen = _screen_pos(widget, self._plot.getViewBox().mapViewToScene(now))
        self.create_from_drag(x0, x1, down.y(), screen)


def _text_on_dark(color: str) -> QColor:
    """A family colour made light enough to read on the dark theme's background."""
    c = QColor(color)
    h, s, lightness, a = c.getHsl()
    return QColor.fromHsl(max(h, 0), s, max(lightness, 195), a)


def _screen_pos(view: QWidget, scene_pos: QPointF) -> QPoint:
    return view.mapToGlobal(view.mapFromScene(scene_pos))  # type: ignore[attr-defined]
