"""The whole night at a glance: hypnogram, event ticks and a multitaper spectrogram.

:class:`HypnogramView` draws, over the whole recording and on one clock axis:

- the **hypnogram** as a clinical step plot (W on top, then REM, N1, N2, N3 at the bottom, as
  YASA's ``plot_hypnogram``): thin grey transitions, each stage's epochs as a coloured bar at its
  level, REM as the thick red line of clinical reports, movement time (``Art``) above W when
  present, and unscored epochs as a grey hatch with a gap in the line;
- **event ticks** (respiratory events, desaturations, arousals, limb movements) in four rows;
- a per-epoch **multitaper spectrogram** of one EEG channel (0.5–25 Hz, dB, ``RdBu_r`` with the
  2.5–97.5 % percentiles as limits, like YASA's ``plot_spectrogram``), computed by
  :class:`SpectrogramWorker` in a ``QThread`` in chunks that can be interrupted, so opening a
  night never waits for it;
- the **current page** as a blue band with a centre line.

Clicking or dragging anywhere emits ``jumpRequested(t_s)``. The view follows its
:class:`~sleepviewer.annotation_store.AnnotationStore` (scoring redraws only the hypnogram).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import numpy as np
import pyqtgraph as pg
from PyQt6 import sip
from PyQt6.QtCore import QPointF, QRectF, Qt, QThread, QTimer, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QPainter
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from sleeplm_core.io.labels import (
    AROUSAL,
    DESATURATION,
    HYPOPNEA,
    LIMB_MOVEMENT,
    RERA,
    RESPIRATORY_EVENTS,
)
from sleeplm_core.spectral import FMAX_HZ, FMIN_HZ, epoch_psd_db
from sleeplm_core.stages import STAGE_TO_INT
from sleepviewer.annotation_store import AnnotationStore
from sleepviewer.items.annotation_item import label_color
from sleepviewer.items.epoch_grid import ClockAxisItem, format_clock
from sleepviewer.memory import release_freed_memory
from sleepviewer.montage_views import montage_first
from sleepviewer.scoring import UNSCORED, stage_runs
from sleepviewer.state import Theme
from sleepviewer.theme import colors

STAGE_COLORS: Final[dict[str, str]] = {
    "W": "#e8a33d",
    "REM": "#d62728",
    "N1": "#7fc6e8",
    "N2": "#2f80c0",
    "N3": "#123f7a",
    "ART": "#8c6bb1",
    "UNS": "#bdbdbd",
}
"""Stage colours: wake amber, REM clinical red, NREM blues darkening with depth."""

STAGE_LEVELS: Final[dict[str, int]] = {"N3": 0, "N2": 1, "N1": 2, "REM": 3, "W": 4, "ART": 5}
"""Hypnogram y level of each stage (W on top, N3 at the bottom; ``Art`` above W)."""

STAGE_TICK_NAMES: Final[dict[str, str]] = {
    "N3": "N3", "N2": "N2", "N1": "N1", "REM": "REM", "W": "W", "ART": "Art",
}

EVENT_ROWS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("Resp", frozenset({*RESPIRATORY_EVENTS, HYPOPNEA, RERA})),
    ("SpO₂", frozenset({DESATURATION})),
    ("Arousal", frozenset({AROUSAL})),
    ("LM", frozenset({LIMB_MOVEMENT})),
)
"""Rows of the event strip, top to bottom, and the labels each one shows."""

# ColorBrewer RdBu, reversed (blue = low power, red = high), as YASA's default 'RdBu_r'.
_RDBU_R: Final[tuple[str, ...]] = (
    "#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
    "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f",
)
_EVENT_ROW_PX: Final[int] = 12  # height of one row of the event strip
_TICK_BINS: Final = 4000
"""Cells of the night in the event strip: ticks in one cell are drawn once."""
_AXIS_W: Final[int] = 52  # left axes of the three plots share one width: x stays aligned


# -- Qt-free computation -------------------------------------------------------------------------
def hypnogram_lines(
    codes: np.ndarray, epoch_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the step line of a hypnogram, broken at unscored epochs.

    Parameters
    ----------
    codes : np.ndarray
        Per-epoch YASA codes, shape ``(n_epochs,)``.
    epoch_s : float
        Epoch length in seconds.

    Returns
    -------
    x, y, connect : np.ndarray
        Two points per scored run (its start and end at the stage's level), and for each
        point whether it joins the next (``PlotCurveItem(connect=array)``): within a run, and
        from a run to the next when no unscored epoch lies between.
    """
    runs = [r for r in stage_runs(codes) if r[2] != UNSCORED]
    x = np.empty(2 * len(runs))
    y = np.empty(2 * len(runs))
    connect = np.zeros(2 * len(runs), dtype=bool)
    for i, (first, stop, code) in enumerate(runs):
        level = STAGE_LEVELS[_stage(code)]
        x[2 * i], x[2 * i + 1] = first * epoch_s, stop * epoch_s
        y[2 * i] = y[2 * i + 1] = level
        connect[2 * i] = True
        if i + 1 < len(runs) and runs[i + 1][0] == stop:
            connect[2 * i + 1] = True
    return x, y, connect


def stage_segments(codes: np.ndarray, epoch_s: float, stage: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the horizontal bars of one stage, as point pairs (``connect="pairs"``)."""
    code = STAGE_TO_INT[stage]
    runs = [r for r in stage_runs(codes) if r[2] == code]
    x = np.array([[a * epoch_s, b * epoch_s] for a, b, _ in runs], dtype=float).reshape(-1)
    y = np.full(x.size, float(STAGE_LEVELS[stage]))
    return x, y


multitaper_psd_db = epoch_psd_db  # the report's spectrum too (sleeplm_core.spectral)


def pick_eeg_channel(channels: Sequence[Any]) -> str | None:
    """Return the EEG channel to show the spectrogram of (central first, as AASM), or ``None``.

    Parameters
    ----------
    channels : sequence of ChannelInfo
        Objects with ``name`` and ``type``.
    """
    eeg = [c.name for c in channels if getattr(c, "type", "") == "EEG"]
    for key in ("C4", "C3", "CZ", "FPZ", "F4", "F3", "O2", "O1"):
        for name in eeg:
            if key in name.upper().replace(" ", ""):
                return str(name)
    return str(eeg[0]) if eeg else None


def _stage(code: int) -> str:
    for stage, c in STAGE_TO_INT.items():
        if c == code:
            return stage
    raise KeyError(code)


def _color(hex_color: str, alpha: int = 255) -> QColor:
    c = QColor(hex_color)
    c.setAlpha(alpha)
    return c


# -- the worker --------------------------------------------------------------------------------
class SpectrogramWorker(QThread):
    """Computes the per-epoch spectrogram of one channel in chunks, in its own thread.

    As mne-qt-browser's ``LoadThread``, it reads ``chunk_epochs`` epochs at a time and checks
    ``isInterruptionRequested()`` between chunks. It never touches a widget.

    Parameters
    ----------
    source : RecordingLike
        Anything with ``window(start_s, stop_s, ch_names)`` returning ``data`` and ``sf``.
    ch_name : str
        The channel.
    n_epochs : int
        Number of epochs.
    epoch_s : float
        Epoch length in seconds.
    chunk_epochs : int
        Epochs per read.

    Signals
    -------
    chunkReady(int, object, object)
        First epoch of the chunk, the frequencies (Hz) and the dB array
        ``(n_chunk_epochs, n_freqs)``.
    progress(int)
        Percent done.
    failed(str)
        A one-line error (the spectrogram stays empty).
    """

    chunkReady = pyqtSignal(int, object, object)
    progress = pyqtSignal(int)
    failed = pyqtSignal(str)

    def __init__(
        self, source: Any, ch_name: str, n_epochs: int, epoch_s: float, chunk_epochs: int = 60
    ) -> None:
        super().__init__()
        self._source = source
        self._ch = ch_name
        self._n = int(n_epochs)
        self._epoch_s = float(epoch_s)
        self._chunk = max(1, int(chunk_epochs))

    def run(self) -> None:
        """Read and transform chunk after chunk until done or interrupted."""
        try:
            for first in range(0, self._n, self._chunk):
                if self.isInterruptionRequested():
                    return
                stop = min(first + self._chunk, self._n)
                win = self._source.window(first * self._epoch_s, stop * self._epoch_s, [self._ch])
                sf = float(win.sf)
                per = int(round(self._epoch_s * sf))
                data = np.asarray(win.data[0], dtype=np.float64)
                full = np.full((stop - first) * per, np.nan)
                full[: min(data.size, full.size)] = data[: full.size]
                freqs, psd = multitaper_psd_db(full.reshape(stop - first, per), sf)
                if self.isInterruptionRequested():
                    return
                self.chunkReady.emit(first, freqs, psd)
                self.progress.emit(int(round(100 * stop / self._n)))
        except Exception as exc:  # noqa: BLE001 - reported to the user as one line, not raised
            self.failed.emit(f"Spectrogram of {self._ch}: {exc}")

    def stop(self, timeout_ms: int = 10_000) -> None:
        """Ask the thread to stop and wait for it (at most ``timeout_ms``)."""
        self.requestInterruption()
        self.wait(timeout_ms)


def _stop_worker(worker: SpectrogramWorker, *_: object) -> None:
    if not sip.isdeleted(worker):
        worker.stop()


# -- graphics items ----------------------------------------------------------------------------
class _HatchItem(pg.GraphicsObject):
    """Grey hatched bands (unscored epochs); the hatch is drawn in screen pixels."""

    def __init__(self) -> None:
        super().__init__()
        self._rects: list[QRectF] = []
        self._bounds = QRectF()
        self._fill = _color("#e6e6e6")
        self._hatch = _color("#9a9a9a")
        self.setZValue(-20)

    def set_colors(self, fill: str, hatch: str) -> None:
        self._fill, self._hatch = _color(fill), _color(hatch)
        self.update()

    def set_rects(self, rects: list[QRectF]) -> None:
        self.prepareGeometryChange()
        self._rects = rects
        self._bounds = QRectF()
        for r in rects:
            self._bounds = self._bounds.united(r)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._bounds

    def paint(self, p: QPainter, *args: object) -> None:
        if not self._rects:
            return
        tr = p.transform()
        p.save()
        p.resetTransform()  # hatch spacing in pixels, not seconds
        p.setPen(Qt.PenStyle.NoPen)
        fill = QBrush(self._fill)
        hatch = QBrush(self._hatch, Qt.BrushStyle.BDiagPattern)
        for r in self._rects:
            dev = tr.mapRect(r)
            dev.setWidth(max(dev.width(), 1.0))
            p.fillRect(dev, fill)
            p.fillRect(dev, hatch)
        p.restore()


class _JumpViewBox(pg.ViewBox):
    """A fixed view (no pan or zoom) whose left clicks and drags report the time under the mouse."""

    sigJump = pyqtSignal(float)

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=False, y=False)

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802 - pyqtgraph API
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.sigJump.emit(float(self.mapSceneToView(ev.scenePos()).x()))
        else:
            ev.ignore()

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 - pyqtgraph API
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.sigJump.emit(float(self.mapSceneToView(ev.scenePos()).x()))
        else:
            ev.ignore()

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 - pyqtgraph API
        ev.ignore()


class _NightAxisItem(ClockAxisItem):
    """Clock axis of the whole night: hourly ticks, ``HH:MM`` labels."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        strings = super().tickStrings(values, scale, spacing)
        if self.start is not None and spacing >= 60:
            return [s[:5] for s in strings]
        if self.start is None and spacing >= 60:
            return [f"{v / 3600:.1f} h" if spacing < 3600 else f"{v / 3600:.0f} h" for v in values]
        return strings


# -- the widget --------------------------------------------------------------------------------
class HypnogramView(QWidget):
    """Hypnogram, event ticks and spectrogram of the whole night, with the current page marked.

    Parameters
    ----------
    store : AnnotationStore
        Stage codes and events; the view follows its ``stagesChanged`` and ``eventsChanged``.
    start : datetime or None
        Recording start, for the clock axis (elapsed hours when ``None``).
    parent : QWidget or None
        Qt parent.

    Signals
    -------
    jumpRequested(float)
        Seconds from the recording start under a click or drag (clamped to the night).
    spectrogramProgress(int)
        Percent of the spectrogram computed.
    """

    jumpRequested = pyqtSignal(float)
    spectrogramProgress = pyqtSignal(int)

    def __init__(
        self,
        store: AnnotationStore,
        *,
        start: datetime | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._epoch_s = store.grid.epoch_s
        self._n = store.grid.n_epochs
        self._night_s = self._n * self._epoch_s
        self._worker: SpectrogramWorker | None = None
        self._spec: np.ndarray | None = None
        self._freqs: np.ndarray | None = None
        self.spectrogram_channel: str | None = None
        self._build_plots(start)
        self._build_hypnogram_items()
        self._build_spectrogram_items()
        self._start = start
        self._levels: tuple[float, float] | None = None
        self.graphics.scene().sigMouseMoved.connect(self._on_scene_mouseMoved)
        self._events_timer = QTimer(self)
        self._events_timer.setSingleShot(True)
        self._events_timer.setInterval(150)
        self._events_timer.timeout.connect(self._on_events_timer_timeout)
        store.stagesChanged.connect(self._on_store_stagesChanged)
        self._tick_pending: list[tuple[Sequence[Any], Sequence[Any]]] | None = None
        store.eventsChanged.connect(self._on_store_eventsChanged)
        self.redraw_stages()
        self.redraw_events()
        self.set_position(0.0, self._epoch_s)

    # -- building ---------------------------------------------------------------------------
    def _build_plots(self, start: datetime | None) -> None:
        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setBackground("w")
        self.graphics.ci.layout.setSpacing(0)
        self.graphics.ci.setContentsMargins(2, 4, 8, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        self.hypno_plot = self._add_plot(0, None)
        self.events_plot = self._add_plot(1, None)
        self.axis = _NightAxisItem(start)
        self.spec_plot = self._add_plot(2, self.axis)
        self.events_plot.setXLink(self.hypno_plot)
        self.spec_plot.setXLink(self.hypno_plot)
        lay = self.graphics.ci.layout
        for row, stretch, minimum in ((0, 5, 90), (1, 0, 0), (2, 4, 45)):
            lay.setRowStretchFactor(row, stretch)
            lay.setRowMinimumHeight(row, minimum)
        self.setMinimumHeight(90 + 45 + _EVENT_ROW_PX * len(EVENT_ROWS) + 30)

    def _add_plot(self, row: int, bottom: pg.AxisItem | None) -> pg.PlotItem:
        vb = _JumpViewBox()
        vb.sigJump.connect(self._on_view_jump)
        axes = {"bottom": bottom} if bottom is not None else {}
        plot = self.graphics.addPlot(row=row, col=0, viewBox=vb, axisItems=axes)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        left = plot.getAxis("left")
        left.setWidth(_AXIS_W)
        for name in ("left", "bottom"):
            ax = plot.getAxis(name)
            ax.setPen(pg.mkPen("#404040"))
            ax.setTextPen(pg.mkPen("#202020"))
        if bottom is None:
            plot.hideAxis("bottom")
        plot.setXRange(0, self._night_s, padding=0)
        plot.setLimits(xMin=0, xMax=self._night_s)
        return plot

    def _build_hypnogram_items(self) -> None:
        p = self.hypno_plot
        self._hatch = _HatchItem()
        p.addItem(self._hatch)
        self._line = pg.PlotCurveItem(pen=pg.mkPen("#5a5a5a", width=1))
        p.addItem(self._line)
        self._bars: dict[str, pg.PlotCurveItem] = {}
        for stage in ("N3", "N2", "N1", "W", "ART", "REM"):
            width = 4 if stage == "REM" else 3
            pen = pg.mkPen(STAGE_COLORS[stage], width=width, cap=Qt.PenCapStyle.FlatCap)
            curve = pg.PlotCurveItem(pen=pen, connect="pairs")
            p.addItem(curve)
            self._bars[stage] = curve
        self.marker = pg.LinearRegionItem(
            movable=False, brush=_color("#1f6fd0", 60), pen=pg.mkPen(None)
        )
        self.marker.setZValue(50)
        self._marker_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#1f6fd0", width=2))
        self._marker_line.setZValue(51)
        p.addItem(self.marker, ignoreBounds=True)
        p.addItem(self._marker_line, ignoreBounds=True)
        self._spec_marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#000000", width=1.5))
        self._spec_marker.setZValue(51)
        self.spec_plot.addItem(self._spec_marker, ignoreBounds=True)
        self._event_marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#1f6fd0", width=2))
        self.events_plot.addItem(self._event_marker, ignoreBounds=True)
        self._tick_curves: list[pg.PlotCurveItem] = []
        self._tick_by_label: dict[str, pg.PlotCurveItem] = {}
        self._tick_onsets: dict[str, list[float]] | None = None  # by label, sorted
        ep = self.events_plot
        ep.getAxis("left").setTicks(
            [[(len(EVENT_ROWS) - 1 - i + 0.5, name) for i, (name, _) in enumerate(EVENT_ROWS)]]
        )
        ep.setYRange(0, len(EVENT_ROWS), padding=0)
        small = QFont()
        small.setPointSizeF(7.5)
        ep.getAxis("left").setStyle(tickFont=small, tickLength=0)

    def _build_spectrogram_items(self) -> None:
        p = self.spec_plot
        self.image = pg.ImageItem(axisOrder="col-major")
        pos = np.linspace(0.0, 1.0, len(_RDBU_R))
        self.colormap = pg.ColorMap(pos, [QColor(c) for c in _RDBU_R])
        self.image.setColorMap(self.colormap)
        p.addItem(self.image)
        p.setYRange(FMIN_HZ, FMAX_HZ, padding=0)
        p.getAxis("left").setTicks([[(f, f"{f:g}") for f in (5, 10, 15, 20)]])
        p.setLabel("left", "Hz")
        self._spec_text = pg.TextItem(
            "", color="#202020", anchor=(0, 0), fill=_color("#ffffff", 190)
        )
        self._spec_text.setPos(0, FMAX_HZ)
        p.addItem(self._spec_text, ignoreBounds=True)

    # -- public -----------------------------------------------------------------------------
    def apply_theme(self, theme: Theme) -> None:
        """Re-colour everything for ``"light"`` or ``"dark"``.

        Background, axes and their titles, the step line, the unscored hatch, the page
        markers and the spectrogram's caption.
        """
        c = colors(theme)
        dark = theme == "dark"
        self.graphics.setBackground(c.background)
        for plot in (self.hypno_plot, self.events_plot, self.spec_plot):
            for name in ("left", "bottom"):
                ax = plot.getAxis(name)
                ax.setPen(pg.mkPen(c.axis))
                ax.setTextPen(pg.mkPen(c.axis))  # tick labels and the "Hz" title
        self._line.setPen(pg.mkPen("#a0a0a0" if dark else "#5a5a5a", width=1))
        self._hatch.set_colors(c.gap, "#6a6e76" if dark else "#9a9a9a")
        self._spec_marker.setPen(pg.mkPen(c.foreground, width=1.5))
        page = "#5aa0ff" if dark else "#1f6fd0"
        self.marker.setBrush(_color(page, 70 if dark else 60))
        for line in (self._marker_line, self._event_marker):
            line.setPen(pg.mkPen(page, width=2))
        self._spec_text.setColor(c.foreground)
        self._spec_text.fill = pg.mkBrush(_color(c.background, 200))
        self._spec_text.update()

    def set_position(self, start_s: float, stop_s: float) -> None:
        """Mark the page shown in the trace view (seconds from the recording start)."""
        self.marker.setRegion((start_s, stop_s))
        mid = 0.5 * (start_s + stop_s)
        for line in (self._marker_line, self._spec_marker, self._event_marker):
            line.setValue(mid)

    @property
    def position(self) -> tuple[float, float]:
        """The page marked, ``(start_s, stop_s)``."""
        lo, hi = self.marker.getRegion()
        return float(lo), float(hi)

    def redraw_stages(self) -> None:
        """Redraw the hypnogram from the store's stage codes."""
        codes = np.asarray(self._store.stage_codes)
        x, y, connect = hypnogram_lines(codes, self._epoch_s)
        self._line.setData(x, y, connect=connect)
        for stage, curve in self._bars.items():
            bx, by = stage_segments(codes, self._epoch_s, stage)
            curve.setData(bx, by, connect="pairs")
        has_art = bool(np.any(codes == STAGE_TO_INT["ART"]))
        top = STAGE_LEVELS["ART"] if has_art else STAGE_LEVELS["W"]
        levels = [(lvl, STAGE_TICK_NAMES[s]) for s, lvl in STAGE_LEVELS.items() if lvl <= top]
        self.hypno_plot.getAxis("left").setTicks([levels])
        self.hypno_plot.setYRange(-0.6, top + 0.6, padding=0)
        rects = [
            QRectF(a * self._epoch_s, -0.6, (b - a) * self._epoch_s, top + 1.2)
            for a, b, c in stage_runs(codes)
            if c == UNSCORED
        ]
        self._hatch.set_rects(rects)

    def redraw_events(self) -> None:
        """Redraw the event ticks from the store's events."""
        self._tick_pending = []
        self._redraw_ticks(None)

    def _redraw_ticks(self, changes: list[tuple[Sequence[Any], Sequence[Any]]] | None) -> None:
        """Draw the ticks: all of them, or only the labels ``changes`` touched.

        ``changes`` are the store's ``last_change`` values since the last draw; the view
        keeps sorted onsets per label and updates them in place. Ticks closer than one of
        ``_TICK_BINS`` cells of the night are drawn once (a pixel of the strip or less), so
        100 000 events cost what a few thousand do.
        """
        rows: dict[str, int] = {}
        for i, (_, labels) in enumerate(EVENT_ROWS):
            for lab in labels:
                rows[lab] = len(EVENT_ROWS) - 1 - i
        if changes is not None and self._tick_onsets is not None:
            touched: set[str] = set()
            for added, removed in changes:
                for a in removed:
                    if a.label in rows:
                        self._tick_onsets[a.label].remove(a.onset_s)
                        touched.add(a.label)
                for a in added:
                    if a.label in rows:
                        bisect.insort(self._tick_onsets.setdefault(a.label, []), a.onset_s)
                        touched.add(a.label)
        else:
            touched = set(rows)
            self._tick_onsets = {}
            for a in self._store.events():  # in onset order: each list is sorted
                if a.label in rows:
                    self._tick_onsets.setdefault(a.label, []).append(a.onset_s)
        cell = max(self._store.duration_s, 1.0) / _TICK_BINS
        for lab in touched:
            onsets = self._tick_onsets.get(lab) or []
            curve = self._tick_by_label.pop(lab, None)
            if curve is not None:
                self.events_plot.removeItem(curve)
                self._tick_curves.remove(curve)
            if not onsets:
                continue
            x = np.unique(np.floor(np.asarray(onsets) / cell)) * cell
            row = rows[lab]
            curve = pg.PlotCurveItem(
                np.repeat(x, 2), np.tile([row + 0.15, row + 0.85], len(x)), connect="pairs",
                pen=pg.mkPen(label_color(lab), width=1),
            )  # fmt: skip
            self.events_plot.addItem(curve)
            self._tick_curves.append(curve)
            self._tick_by_label[lab] = curve
        # The strip takes room only when there is something to show.
        height = _EVENT_ROW_PX * len(EVENT_ROWS) if self._tick_curves else 0
        self.graphics.ci.layout.setRowFixedHeight(1, height)
        self.events_plot.setVisible(bool(self._tick_curves))

    def start_spectrogram(
        self, source: Any, ch_name: str | None = None, *, chunk_epochs: int = 60
    ) -> str | None:
        """Compute the spectrogram of one EEG channel in the background.

        Parameters
        ----------
        source : RecordingLike
            The recording (``channels`` and ``window``).
        ch_name : str or None
            The channel; ``None`` picks a central EEG channel (:func:`pick_eeg_channel`).
        chunk_epochs : int
            Epochs read per chunk (between interruption checks).

        Returns
        -------
        str or None
            The channel used, or ``None`` when the recording has no EEG channel.
        """
        self.cancel_spectrogram()
        ch = ch_name or pick_eeg_channel(montage_first(source))
        self.spectrogram_channel = ch
        self._spec = None
        self.image.clear()
        if ch is None:
            self._spec_text.setText("no EEG channel for the spectrogram")
            return None
        self._spec_text.setText(f"{ch}: computing…")
        worker = SpectrogramWorker(source, ch, self._n, self._epoch_s, chunk_epochs)
        worker.chunkReady.connect(self._on_worker_chunkReady)
        worker.progress.connect(self._on_worker_progress)
        worker.failed.connect(self._on_worker_failed)
        # Stop the thread when this widget goes, without the connection keeping it alive.
        self.destroyed.connect(functools.partial(_stop_worker, worker))
        self._worker = worker
        worker.start(QThread.Priority.LowPriority)
        return ch

    def cancel_spectrogram(self) -> None:
        """Interrupt a running spectrogram computation and wait for its thread."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.chunkReady.disconnect(self._on_worker_chunkReady)
            worker.stop()

    @property
    def spectrogram_worker(self) -> SpectrogramWorker | None:
        """The running (or last) worker, if any."""
        return self._worker

    @property
    def spectrogram(self) -> np.ndarray | None:
        """The spectrogram so far, dB, ``(n_epochs, n_freqs)`` (NaN rows not yet computed)."""
        return self._spec

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        """Stop the worker before closing."""
        self.cancel_spectrogram()
        super().closeEvent(event)

    # -- slots ------------------------------------------------------------------------------
    def _on_view_jump(self, x: float) -> None:
        self.jumpRequested.emit(float(min(max(x, 0.0), self._store.duration_s)))

    def _on_store_stagesChanged(self, first: int, stop: int) -> None:  # noqa: N802
        self.redraw_stages()

    def _on_store_eventsChanged(self) -> None:  # noqa: N802 - Qt signal name
        change = self._store.last_change
        if change is None:
            self._tick_pending = None  # a bulk edit: draw everything again
        elif self._tick_pending is not None:
            self._tick_pending.append(change)
        self._events_timer.start()

    def _on_events_timer_timeout(self) -> None:
        pending, self._tick_pending = self._tick_pending, []
        self._redraw_ticks(pending)

    def _on_worker_chunkReady(self, first: int, freqs: np.ndarray, psd: np.ndarray) -> None:  # noqa: N802
        if self._spec is None:
            self._freqs = freqs
            self._spec = np.full((self._n, freqs.size), np.nan, dtype=np.float32)
        self._spec[first : first + psd.shape[0]] = psd
        if first + psd.shape[0] >= self._n:
            release_freed_memory()  # the worker's tapered FFTs are gone
        finite = self._spec[np.isfinite(self._spec)]
        if finite.size == 0:
            return
        lo, hi = np.percentile(finite, [2.5, 97.5])
        self._levels = (float(lo), float(hi))
        self.image.setImage(self._spec, autoLevels=False, levels=(float(lo), float(hi)))
        f0, f1 = float(freqs[0]), float(freqs[-1])
        df = (f1 - f0) / max(freqs.size - 1, 1)
        self.image.setRect(QRectF(0.0, f0 - df / 2, self._night_s, f1 - f0 + df))

    def _on_worker_progress(self, percent: int) -> None:
        ch = self.spectrogram_channel or ""
        if percent < 100:
            self._spec_text.setText(f"{ch}: {percent} %")
        elif self._levels is not None:
            lo, hi = self._levels
            self._spec_text.setText(f"{ch}  {lo:.0f}…{hi:.0f} dB")
        else:
            self._spec_text.setText(ch)
        self.spectrogramProgress.emit(percent)

    def _on_scene_mouseMoved(self, pos: QPointF) -> None:  # noqa: N802 - Qt signal name
        self.graphics.setToolTip(self.describe_time(
            float(self.hypno_plot.getViewBox().mapSceneToView(pos).x())
        ))

    def describe_time(self, t_s: float) -> str:
        """Return the hover text for a time: clock, epoch number (1-based) and stage."""
        if not 0 <= t_s < self._night_s:
            return ""
        epoch = min(int(t_s // self._epoch_s), self._n - 1)
        clock = format_clock(self._start, t_s) if self._start is not None else f"{t_s:.0f} s"
        stage = self._store.stage_at(epoch)
        return f"{clock}  epoch {epoch + 1}: {'unscored' if stage == 'UNS' else stage}"

    def _on_worker_failed(self, message: str) -> None:
        self._spec_text.setText(message)

