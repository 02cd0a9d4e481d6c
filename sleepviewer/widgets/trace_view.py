"""TraceView: the stacked PSG traces of one page.

Rendering is one chain, run by :meth:`TraceView.refresh`::

    ViewState → read window (+ filter margin) → zero-phase filters → crop → peak decimation
    (one numpy pass, or the whole-night min/max pyramid) → scale to rows → curve.setData

Each channel is one :class:`~sleepviewer.items.trace_item.TraceItem` on its own row; rows are
one view unit high, the top channel on the highest row. Amplitudes are shown at a clinical
sensitivity (units per millimetre on screen, µV/mm for EEG) times a per-channel gain.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, QPoint, QPointF, QRectF, Qt, QThread, QTimer, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QMenu, QVBoxLayout, QWidget

from sleepviewer import filters as flt
from sleepviewer.downsample import Decimated, MinMaxPyramid, peak_decimate
from sleepviewer.items.epoch_grid import ClockAxisItem, EpochGridItem
from sleepviewer.items.trace_item import AxisRow, ChannelAxisItem, TraceItem
from sleepviewer.memory import release_freed_memory
from sleepviewer.state import CLIP_ROWS, ChannelView, RecordingLike, ViewState
from sleepviewer.theme import colors

PYRAMID_ABOVE_S = 600.0
"""Pages longer than this are drawn from the min/max pyramid (unfiltered)."""

AUTO_FILL = 0.7
"""Channels without a clinical sensitivity are scaled so that their page spans 70 % of a row."""

WHEEL_STEP = 1.25

PYRAMID_BASE_FACTOR = 64
"""Samples per finest overview bin at 256 Hz: a 10-min page (the shortest drawn from the
pyramid) is ~150,000 samples, ~100 per pixel; 20 channels × 8 h then cost ~25 MB."""
PYRAMID_BIN_S = PYRAMID_BASE_FACTOR / 256.0
"""The finest bin in seconds, whatever the rate: the pyramid grows with hours × channels, not
with the sampling rate (64 channels × 24 h: about 200 MB at 512 Hz, as at 256 Hz)."""


def pyramid_base_factor(sf: float) -> int:
    """Samples per finest bin at ``sf``: the largest power of two within ``PYRAMID_BIN_S``."""
    return 1 << max(0, int(np.floor(np.log2(max(sf * PYRAMID_BIN_S, 1.0)))))

OVERVIEW_CHUNK_S = 300.0
"""Seconds read per step while building the overview (between interruption checks)."""

READ_AHEAD_PAGES = 3
"""Pages read and filtered ahead of the one shown (pages up to 2 min)."""

STEADY_TYPES = frozenset({"POSITION", "SPO2", "STAGE", "EVENT", "NONPHYS"})
"""Channels that are legitimately constant for a page (codes such as a hypnogram or event
channel, body position, SpO2, and recording-system signals such as impedance or battery):
flagged only when empty (all NaN)."""

OVERVIEW_FILL = 0.9
"""In overviews each channel's min/max envelope is fitted to 90 % of its row."""


@dataclass(frozen=True, slots=True)
class _Block:
    """Samples read (and filtered) for a few pages; ``[valid_a, valid_b]`` is edge-free."""

    key: tuple[object, ...]
    start_s: float
    sf: float
    raw: np.ndarray
    shown: np.ndarray
    valid_a: float
    valid_b: float


@dataclass(frozen=True, slots=True)
class RenderInfo:
    """What the last refresh drew (for the status bar and benchmarks).

    Parameters
    ----------
    factor : int
        Samples per drawn bin (1: not decimated).
    mode : str
        ``"peak"``, ``"pyramid"`` or ``"none"``.
    filtered : bool
        Whether display filters were applied.
    seconds : float
        Wall time of the refresh.
    """

    factor: int = 1
    mode: str = "none"
    filtered: bool = False
    seconds: float = 0.0


class OverviewWorker(QThread):
    """Build the whole-night min/max pyramid in the background, in interruptible chunks.

    The pyramid is kept in :attr:`result` (also sent with ``done``) so that a caller that
    must wait (``wait()``) can take it without the queued signal.

    Signals
    -------
    done(object, object)
        The finished :class:`MinMaxPyramid` and the channel names it covers.
    failed(str)
        A one-line reason.
    """

    done = pyqtSignal(object, object)
    failed = pyqtSignal(str)

    def __init__(self, recording: RecordingLike, names: tuple[str, ...],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.recording = recording
        self.names = names
        self.result: MinMaxPyramid | None = None

    def run(self) -> None:
        """Read the recording chunk by chunk (checking for interruption) and reduce it."""
        rec, names = self.recording, list(self.names)
        try:
            dur = float(rec.duration_s)
            sf = float(rec.window(0.0, min(1.0, dur), names).sf)
            pyr = MinMaxPyramid(len(names), sf, base_factor=pyramid_base_factor(sf),
                                dtype=np.float16)  # fmt: skip
            t = 0.0
            while t < dur:
                if self.isInterruptionRequested():
                    return
                stop = min(dur, t + OVERVIEW_CHUNK_S)
                pyr.feed(np.asarray(rec.window(t, stop, names).data))
                t = stop
            pyr.finish()
        except (OSError, ValueError, KeyError) as exc:
            self.failed.emit(" ".join(str(exc).split()))
            return
        self.result = pyr
        self.done.emit(pyr, self.names)

    def stop(self, timeout_ms: int = 10_000) -> None:
        """Ask the thread to stop and wait for it."""
        self.requestInterruption()
        self.wait(timeout_ms)


class TraceViewBox(pg.ViewBox):
    """ViewBox that turns wheel, Shift-drag and plain drag into trace gestures.

    Signals
    -------
    sigWheel(float, int)
        View y under the cursor and the wheel delta (gain of that channel).
    sigRuler(object, object, bool)
        Ruler start and current point (view coordinates) and whether the drag finished.
    sigRowDragged(float, float)
        Plain drag from one row to another (reorder).
    sigMenuRequested(float, object)
        Right-click: view y and screen position.
    """

    sigWheel = pyqtSignal(float, int)
    sigRuler = pyqtSignal(object, object, bool)
    sigRowDragged = pyqtSignal(float, float)
    sigMenuRequested = pyqtSignal(float, object)

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=False, y=False)
        self._ruler_start: QPointF | None = None

    def wheelEvent(self, ev, axis=None) -> None:  # noqa: N802
        """Wheel over a channel changes its gain."""
        pos = self.mapSceneToView(ev.scenePos()) if hasattr(ev, "scenePos") else None
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if pos is not None:
            self.sigWheel.emit(float(pos.y()), int(delta))
        ev.accept()

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        """Shift+drag: time ruler; plain drag: move a channel."""
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        start = self.mapSceneToView(ev.buttonDownScenePos())
        now = self.mapSceneToView(ev.scenePos())
        if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier or self._ruler_start is not None:
            if ev.isStart():
                self._ruler_start = start
            self.sigRuler.emit(start, now, bool(ev.isFinish()))
            if ev.isFinish():
                self._ruler_start = None
        elif ev.isFinish():
            self.sigRowDragged.emit(float(start.y()), float(now.y()))

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        """Right-click opens the channel menu."""
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            pos = self.mapSceneToView(ev.scenePos())
            self.sigMenuRequested.emit(float(pos.y()), ev.screenPos().toPoint())
        else:
            ev.ignore()


class TraceView(QWidget):
    """Stacked channels of one page, with gain, ruler, reordering and hiding.

    Signals
    -------
    pageRendered()
        After each refresh (``render_info`` describes it).
    channelsChanged()
        Order, visibility or gain changed by a gesture in this view.
    channelSettingsRequested(str)
        The user asked for the filter/derivation dialog of a channel.
    """

    pageRendered = pyqtSignal()
    channelsChanged = pyqtSignal()
    channelSettingsRequested = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state: ViewState | None = None
        self._recording: RecordingLike | None = None
        self._curves: dict[str, TraceItem] = {}
        self._pyramid: MinMaxPyramid | None = None
        self._pyramid_names: tuple[str, ...] = ()
        self._last: Decimated | None = None
        self._block: _Block | None = None
        self._overview_worker: OverviewWorker | None = None
        self._prefetch_pending = False
        self._last_names: list[str] = []
        self._hover_y: float | None = None
        self.flat_channels: set[str] = set()
        self.render_info = RenderInfo()
        self.ruler_text = ""
        self._build_plot()
        self._build_ruler()
        self._connect_signals()

    # -- construction ---------------------------------------------------------------------
    def _build_plot(self) -> None:
        self.view_box = TraceViewBox()
        self.channel_axis = ChannelAxisItem()
        self.clock_axis = ClockAxisItem()
        self.plot_widget = pg.PlotWidget(
            viewBox=self.view_box,
            axisItems={"left": self.channel_axis, "bottom": self.clock_axis},
        )
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.hideButtons()
        self.plot_item.setClipToView(False)
        self.view_box.setDefaultPadding(0.0)
        self.view_box.disableAutoRange()
        self.grid = EpochGridItem()
        self.view_box.addItem(self.grid, ignoreBounds=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

    def _build_ruler(self) -> None:
        self._ruler_rect = pg.QtWidgets.QGraphicsRectItem()
        self._ruler_rect.setZValue(20)
        self._ruler_rect.hide()
        self.view_box.addItem(self._ruler_rect, ignoreBounds=True)
        self._ruler_label = pg.TextItem(anchor=(0, 1))
        self._ruler_label.setZValue(21)
        self._ruler_label.hide()
        self.view_box.addItem(self._ruler_label, ignoreBounds=True)

    def _connect_signals(self) -> None:
        self.view_box.sigWheel.connect(self._on_view_wheel)
        self.view_box.sigRuler.connect(self._on_view_ruler)
        self.view_box.sigRowDragged.connect(self._on_rows_dragged)
        self.view_box.sigMenuRequested.connect(self._on_row_menu_requested)
        self.channel_axis.sigRowDragged.connect(self._on_rows_dragged)
        self.channel_axis.sigRowMenuRequested.connect(self._on_row_menu_requested)
        self.plot_widget.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        # µV/mm and the decimation width depend on the plot's size: redraw after a resize
        # (once, when the layout has settled).
        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(0)
        self._resize_timer.timeout.connect(self._on_resize_timer_timeout)
        self.view_box.sigResized.connect(self._resize_timer.start)

    # -- public API -----------------------------------------------------------------------
    @property
    def state(self) -> ViewState | None:
        """The state this view draws (owned by the main window)."""
        return self._state

    def set_recording(self, recording: RecordingLike | None, state: ViewState) -> None:
        """Show ``recording`` according to ``state`` (call :meth:`refresh` afterwards)."""
        self._stop_overview_worker()
        self._recording = recording
        self._state = state
        self._pyramid = None
        self._pyramid_names = ()
        self._block = None
        self.flat_channels = set()
        for curve in self._curves.values():
            self.view_box.removeItem(curve)
        self._curves = {}
        if recording is not None:
            self.clock_axis.set_start(recording.start)
        self.apply_theme()

    def apply_theme(self) -> None:
        """Re-colour everything from ``state.theme``."""
        c = colors(self._state.theme if self._state else "light")
        self.plot_widget.setBackground(c.background)
        for curve in self._curves.values():
            curve.set_color(c.trace)
        self.channel_axis.set_colors(c.axis, c.flat)
        self.clock_axis.setPen(c.axis)
        self.clock_axis.setTextPen(c.axis)
        self.grid.set_colors(c.epoch_line, c.second_line, c.gap, c.axis)
        self._ruler_rect.setPen(pg.mkPen(c.ruler, width=1))
        self._ruler_rect.setBrush(pg.mkBrush(c.ruler_fill))
        self._ruler_label.setColor(c.ruler)

    def invalidate_overview(self) -> None:
        """Forget cached samples and the whole-night pyramid (after the montage changed)."""
        self._stop_overview_worker()
        self._block = None
        self._pyramid = None
        self._pyramid_names = ()

    def refresh(self) -> RenderInfo:
        """Redraw the page described by the state; return what was drawn."""
        t0 = time.perf_counter()
        state, rec = self._state, self._recording
        if state is None or rec is None:
            return self.render_info
        vis = state.visible_channels
        names = [c.name for c in vis]
        self._sync_curves(names)
        n = len(vis)
        self.grid.set_layout(rec.duration_s, rec.gaps, n)
        self.view_box.setRange(xRange=(state.start_s, state.stop_s), yRange=(0, max(n, 1)),
                               padding=0.0, update=False)
        if n == 0:
            self.channel_axis.set_rows([])
            self.render_info = RenderInfo(seconds=time.perf_counter() - t0)
            self.pageRendered.emit()
            return self.render_info
        self._ruler_rect.hide()
        self._ruler_label.hide()
        dec, mode, filtered, flat = self._read_page(state, rec, vis)
        self._last, self._last_names = dec, names
        self._draw(vis, dec, flat, overview=mode == "pyramid")
        self.render_info = RenderInfo(dec.factor, mode, filtered, time.perf_counter() - t0)
        self.pageRendered.emit()
        if mode != "pyramid":
            self._schedule_prefetch(state, rec)
        return self.render_info

    def _schedule_prefetch(self, state: ViewState, rec: RecordingLike) -> None:
        """Read the next block while idle when the following page would not be cached."""
        block = self._block
        if block is None or self._prefetch_pending:
            return
        ahead = state.stop_s + state.duration_s > block.valid_b + 1e-9 \
            and block.valid_b < rec.duration_s - 1e-6
        behind = state.start_s - state.duration_s < block.valid_a - 1e-9 and block.valid_a > 0
        if ahead or behind:
            self._prefetch_pending = True
            step = state.duration_s if ahead else -state.duration_s
            QTimer.singleShot(0, lambda: self._on_prefetch_timer_timeout(step))

    def _on_prefetch_timer_timeout(self, step: float) -> None:
        self._prefetch_pending = False
        state, rec = self._state, self._recording
        if state is None or rec is None or state.duration_s > PYRAMID_ABOVE_S:
            return
        nxt = state.copy()
        nxt.go_to(state.start_s + step)
        vis = nxt.visible_channels
        specs = [c.filters for c in vis]
        filtered = nxt.filters_enabled and any(s.active for s in specs)
        try:  # best effort: the recording may have been closed since this was queued
            block = self._page_block(nxt, rec, [c.name for c in vis],
                                     specs if filtered else None)
        except (OSError, ValueError):
            return
        if not (block.valid_a <= state.start_s + 1e-9
                and min(state.stop_s, rec.duration_s) <= block.valid_b + 1e-9):
            self._block = None  # never leave a block that misses the page on screen

    def scale_gain(self, factor: float, at_cursor: bool = True) -> None:
        """Change the gain of the channel under the cursor (or of all visible channels)."""
        if self._state is None:
            return
        name = self._row_name(self._hover_y) if at_cursor and self._hover_y is not None else None
        self._state.scale_gain(factor, name)
        self.channelsChanged.emit()
        self.refresh()

    def hide_channel(self, name: str) -> None:
        """Hide one channel."""
        if self._state is None:
            return
        self._state.channel(name).visible = False
        self.channelsChanged.emit()
        self.refresh()

    def show_all_channels(self) -> None:
        """Make every channel visible again."""
        if self._state is None:
            return
        for c in self._state.channels:
            c.visible = True
        self.channelsChanged.emit()
        self.refresh()

    def own_items(self) -> list[object]:
        """Graphics items this view placed in the plot (others belong to overlays)."""
        return [*self._curves.values(), self.grid, self._ruler_rect, self._ruler_label]

    def row_y(self, name: str) -> float:
        """Return the view y of the centre of channel ``name``'s row."""
        assert self._state is not None
        names = [c.name for c in self._state.visible_channels]
        return len(names) - names.index(name) - 0.5

    def peak_to_peak(self, name: str, t0: float, t1: float) -> float:
        """Return the peak-to-peak amplitude (physical units) of a drawn channel in a span.

        Peak decimation keeps every bin's min and max, so this is exact on decimated pages.
        """
        if self._last is None or name not in self._last_names:
            return float("nan")
        lo, hi = sorted((t0, t1))
        y = self._last.y[self._last_names.index(name)]
        sel = y[(self._last.t >= lo) & (self._last.t <= hi)]
        sel = sel[np.isfinite(sel)]
        return float(sel.max() - sel.min()) if sel.size else float("nan")

    # -- rendering --------------------------------------------------------------------------
    def _sync_curves(self, names: list[str]) -> None:
        c = colors(self._state.theme if self._state else "light")
        for name in list(self._curves):
            if name not in names:
                self.view_box.removeItem(self._curves.pop(name))
        for name in names:
            if name not in self._curves:
                curve = TraceItem(name, c.trace)
                self._curves[name] = curve
                self.view_box.addItem(curve, ignoreBounds=True)

    def _pixels(self) -> int:
        w = self.view_box.width() * self.devicePixelRatioF()
        return int(w) if w > 50 else 1600

    def _read_page(
        self, state: ViewState, rec: RecordingLike, vis: list[ChannelView]
    ) -> tuple[Decimated, str, bool, np.ndarray]:
        names = [c.name for c in vis]
        if state.duration_s > PYRAMID_ABOVE_S:
            pyr = self._overview(state, rec)
            rows = np.array([self._pyramid_names.index(n) for n in names])
            dec = pyr.query(state.start_s, state.stop_s, self._pixels(), rows)
            return dec, "pyramid", False, _flat_rows(dec.y)
        specs = [c.filters for c in vis]
        filtered = state.filters_enabled and any(s.active for s in specs)
        block = self._page_block(state, rec, names, specs if filtered else None)
        stop = min(state.stop_s, rec.duration_s)
        i0 = max(int(round((state.start_s - block.start_s) * block.sf)), 0)
        i1 = max(int(round((stop - block.start_s) * block.sf)), i0)
        flat = _flat_rows(block.raw[:, i0:i1])  # on raw samples: filters leave rounding noise
        dec = peak_decimate(block.shown[:, i0:i1], block.sf, block.start_s + i0 / block.sf,
                            self._pixels())
        return dec, ("peak" if dec.factor > 1 else "none"), filtered, flat

    def _page_block(
        self,
        state: ViewState,
        rec: RecordingLike,
        names: list[str],
        specs: list[flt.FilterSpec] | None,
    ) -> _Block:
        """Return filtered samples covering the page, reading ahead in the paging direction.

        Filtering needs a margin on both sides; reading and filtering a few pages at once
        makes most page flips a slice of the cached block.
        """
        key = (tuple(names), tuple(specs) if specs is not None else None)
        stop = min(state.stop_s, rec.duration_s)
        old = self._block
        if old is not None and old.key == key and old.valid_a <= state.start_s + 1e-9 \
                and stop <= old.valid_b + 1e-9:
            return old
        margin = flt.margin_s(specs) if specs is not None else 0.0
        ahead = READ_AHEAD_PAGES * state.duration_s if state.duration_s <= 120 else 0.0
        backwards = old is not None and old.key == key and state.start_s < old.valid_a
        back, fwd = (ahead, state.duration_s) if backwards else (state.duration_s, ahead)
        back = min(back, ahead)
        a = max(0.0, state.start_s - margin - back)
        b = min(rec.duration_s, stop + margin + fwd)
        win = rec.window(a, b, names)
        raw = win.data
        shown = flt.apply_filters(raw, win.sf, specs) if specs is not None else raw
        end_s = win.start_s + raw.shape[1] / win.sf
        valid_a = win.start_s if win.start_s <= 0 else win.start_s + margin
        valid_b = end_s if end_s >= rec.duration_s - 1e-6 else end_s - margin
        self._block = _Block(key, win.start_s, float(win.sf), raw, shown, valid_a, valid_b)
        return self._block

    def prepare_overview(self) -> OverviewWorker | None:
        """Start building the whole-night pyramid in the background (no-op when current)."""
        state, rec = self._state, self._recording
        if state is None or rec is None:
            return None
        names = tuple(c.name for c in state.channels)
        if self._pyramid is not None and self._pyramid_names == names:
            return None
        worker = self._overview_worker
        if worker is not None and worker.names == names and not worker.isFinished():
            return worker
        self._stop_overview_worker()
        worker = OverviewWorker(rec, names, self)
        worker.done.connect(self._on_overview_worker_done)
        self._overview_worker = worker
        worker.start(QThread.Priority.LowPriority)
        return worker

    def shutdown(self) -> None:
        """Stop background work (call before the recording is closed)."""
        self._stop_overview_worker()

    def _stop_overview_worker(self) -> None:
        worker, self._overview_worker = self._overview_worker, None
        if worker is not None:
            worker.done.disconnect(self._on_overview_worker_done)
            worker.stop()
            worker.deleteLater()

    def _on_overview_worker_done(self, pyramid: MinMaxPyramid, names: tuple[str, ...]) -> None:
        if self._state is not None and names == tuple(c.name for c in self._state.channels):
            self._pyramid, self._pyramid_names = pyramid, names
        release_freed_memory()

    def _overview(self, state: ViewState, rec: RecordingLike) -> MinMaxPyramid:
        names = tuple(c.name for c in state.channels)
        worker = self._overview_worker
        if (self._pyramid is None or self._pyramid_names != names) and worker is not None \
                and worker.names == names:
            worker.wait()  # nearly done in the background: finish waiting for it
            if worker.result is not None:
                self._pyramid, self._pyramid_names = worker.result, names
        if self._pyramid is None or self._pyramid_names != names:
            sf = float(rec.window(0.0, min(1.0, rec.duration_s), list(names)).sf)
            self._pyramid = MinMaxPyramid.build(
                lambda a, b: rec.window(a, b, list(names)).data, rec.duration_s, len(names), sf,
                base_factor=pyramid_base_factor(sf), dtype=np.float16,
            )
            self._pyramid_names = names
        return self._pyramid

    def screen_px_per_mm(self) -> float:
        """Pixels per millimetre used for µV/mm: the calibration, else the logical DPI."""
        cal = self._state.px_per_mm if self._state is not None else None
        return float(cal) if cal else self.logicalDpiY() / 25.4

    def _row_mm(self, n_rows: int) -> float:
        px_per_mm = self.screen_px_per_mm()
        h = self.view_box.height()
        h = h if h > 50 else 700.0
        return max(h / max(n_rows, 1) / px_per_mm, 1.0)

    def _draw(
        self, vis: list[ChannelView], dec: Decimated, flat: np.ndarray, overview: bool = False
    ) -> None:
        y = dec.y
        fmax = np.fmax.reduce(y, axis=1)
        pp = fmax - np.fmin.reduce(y, axis=1)
        finite_rows = ~np.isnan(fmax)
        center = np.zeros(len(vis))
        has_nan = np.isnan(y).any(axis=1)
        clean = ~has_nan
        if clean.any():  # one vectorized median; nanmedian loops over rows
            center[clean] = np.median(y[clean], axis=1)
        gappy = has_nan & finite_rows
        if gappy.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                center[gappy] = np.nanmedian(y[gappy], axis=1)
        row_mm = self._row_mm(len(vis))
        k = np.zeros(len(vis))
        for i, ch in enumerate(vis):
            if flat[i]:
                continue
            if ch.sensitivity is None:  # scale to the data once, then keep it page to page
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo, hi = np.nanpercentile(y[i], [0.5, 99.5])
                span = float(hi - lo) if hi > lo else float(pp[i])
                ch.sensitivity = _round_sensitivity(span / (AUTO_FILL * row_mm))
            k[i] = 1.0 / (ch.effective_sensitivity * row_mm)  # type: ignore[operator]
        if overview:
            center, k = _fit_envelopes(y, flat)
        scaled = (y - center[:, None]) * k[:, None]
        scaled[flat & finite_rows] = 0.0
        if (flat & ~finite_rows).any():
            scaled[flat & ~finite_rows] = 0.0  # empty channel: a flat line, flagged
        if self._state is not None and self._state.clip_traces and not overview:
            np.clip(scaled, -CLIP_ROWS, CLIP_ROWS, out=scaled)  # NaN (gaps) stays NaN
        n = len(vis)
        rows: list[AxisRow] = []
        flagged = [bool(flat[i]) and (ch.type not in STEADY_TYPES or not finite_rows[i])
                   for i, ch in enumerate(vis)]
        self.flat_channels = {ch.name for i, ch in enumerate(vis) if flagged[i]}
        lo, hi = np.fmin.reduce(scaled, axis=1), np.fmax.reduce(scaled, axis=1)
        for i, ch in enumerate(vis):
            self._curves[ch.name].set_trace(dec.t, scaled[i], n - i - 0.5, (lo[i], hi[i]),
                                            bool(has_nan[i]))
            scale = "envelope, fitted" if overview else _scale_text(ch)
            rows.append(AxisRow(n - i - 0.5, ch.name, scale, flagged[i]))
        self.channel_axis.set_rows(rows)

    # -- helpers ------------------------------------------------------------------------------
    def _row_name(self, y: float | None) -> str | None:
        if self._state is None or y is None:
            return None
        vis = self._state.visible_channels
        idx = len(vis) - 1 - int(np.floor(y))
        return vis[idx].name if 0 <= idx < len(vis) else None

    def build_channel_menu(self, name: str) -> QMenu:
        """Return the context menu of channel ``name`` (shown non-blocking by the caller)."""
        menu = QMenu(self)
        hide = QAction(f"Hide {name}", menu)
        hide.triggered.connect(lambda: self.hide_channel(name))
        show = QAction("Show all channels", menu)
        show.triggered.connect(self.show_all_channels)
        settings = QAction(f"Filters and derivations for {name}…", menu)
        settings.triggered.connect(lambda: self.channelSettingsRequested.emit(name))
        for act in (hide, show, settings):
            menu.addAction(act)
        return menu

    # -- slots --------------------------------------------------------------------------------
    def _on_resize_timer_timeout(self) -> None:
        if self._state is not None and self._recording is not None:
            self.refresh()

    def _on_scene_mouse_moved(self, pos: QPointF) -> None:
        if self.view_box.sceneBoundingRect().contains(pos):
            self._hover_y = float(self.view_box.mapSceneToView(pos).y())
        else:
            self._hover_y = None

    def _on_view_wheel(self, y: float, delta: int) -> None:
        name = self._row_name(y)
        if self._state is None or name is None or delta == 0:
            return
        self._state.scale_gain(WHEEL_STEP if delta > 0 else 1 / WHEEL_STEP, name)
        self.channelsChanged.emit()
        self.refresh()

    def _on_rows_dragged(self, y_from: float, y_to: float) -> None:
        src, dst = self._row_name(y_from), self._row_name(y_to)
        if self._state is None or src is None or dst is None or src == dst:
            return
        vis = [c.name for c in self._state.visible_channels]
        if vis.index(dst) > vis.index(src):  # moving down: land after the target
            j = vis.index(dst) + 1
            before = vis[j] if j < len(vis) else None
        else:
            before = dst
        self._state.move_channel(src, before)
        self.channelsChanged.emit()
        self.refresh()

    def _on_row_menu_requested(self, y: float, screen_pos: QPoint) -> None:
        name = self._row_name(y)
        if name is not None:
            self.build_channel_menu(name).popup(screen_pos)

    def _on_view_ruler(self, start: QPointF, now: QPointF, finished: bool) -> None:
        name = self._row_name(start.y())
        if name is None or self._state is None:
            self._ruler_rect.hide()
            self._ruler_label.hide()
            return
        t0, t1 = sorted((float(start.x()), float(now.x())))
        ch = self._state.channel(name)
        row_top = np.floor(start.y())
        self._ruler_rect.setRect(QRectF(t0, row_top, t1 - t0, 1.0))
        pp = self.peak_to_peak(name, t0, t1)
        unit = ch.unit or "units"
        self.ruler_text = f"{t1 - t0:.2f} s   {name}: {pp:.1f} {unit} p-p"
        self._ruler_label.setText(self.ruler_text)
        self._ruler_label.setPos(t0, row_top + 1.0)
        self._ruler_rect.show()
        self._ruler_label.show()


def _fit_envelopes(y: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per-row centre and scale that fit a whole-night envelope into its row.

    At 7.5 µV/mm an unfiltered 8-h EEG envelope covers its neighbours; fitted envelopes show
    what an overview is for: how amplitude and artefacts change across the night.
    """
    center = np.zeros(y.shape[0])
    k = np.zeros(y.shape[0])
    ok = ~flat & np.isfinite(np.fmax.reduce(y, axis=1))
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(y[ok], [0.5, 99.5], axis=1)
        span = np.where(hi > lo, hi - lo, 1.0)
        center[ok] = (hi + lo) / 2
        k[ok] = OVERVIEW_FILL / span
    return center, k


def _flat_rows(data: np.ndarray) -> np.ndarray:
    """Return a bool per row: constant, or NaN all through (no signal to show)."""
    if data.shape[1] == 0:
        return np.ones(data.shape[0], dtype=bool)
    fmax = np.fmax.reduce(data, axis=1)
    fmin = np.fmin.reduce(data, axis=1)
    return ~((fmax - fmin) > 1e-6 * np.maximum(np.abs(fmax), 1e-3))


def _round_sensitivity(value: float) -> float:
    """Round an automatic sensitivity to 1, 2 or 5 times a power of ten (a readable scale)."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    exp = np.floor(np.log10(value))
    for m in (1.0, 2.0, 5.0, 10.0):
        if value <= m * 10**exp:
            return float(m * 10**exp)
    return float(10 ** (exp + 1))


def _scale_text(ch: ChannelView) -> str:
    sens = ch.effective_sensitivity
    if sens is None:
        return ch.unit
    unit = "µV" if ch.unit in ("uV", "µV", "μV") else ch.unit
    return f"{sens:.3g} {unit}/mm"
