"""The report's figures, drawn with QPainter into QImage (needs a QGuiApplication).

Every figure is laid out in points (1/72 inch) and rasterised at ``scale`` pixels per point,
so the PDF gets print resolution (``scale=300/72``) and the HTML screen resolution. The
night figures share one horizontal layout (:data:`LEFT_PT`, :data:`RIGHT_PT`), so that when
they are stacked the hypnogram, spectrogram and events line up in time.

Main functions
--------------
=====================  =====================================================================
``hypnogram_image``    clinical step plot (W top, N3 bottom), REM as thick red bars, clock axis
``spectrogram_image``  per-epoch multitaper spectrogram, 0.5-25 Hz, dB (RdBu_r), colour bar
``events_image``       respiratory events, desaturations, arousals, limb movements, SpO2 trend
``thumbnail_image``    a few channels around a matched segment, the segment shaded
``png_bytes``          a QImage as PNG bytes
=====================  =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import numpy as np
from PyQt6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF

from sleepviewer.items.annotation_item import label_color
from sleepviewer.report.model import EventTrack, HypnogramData, Spectrogram, Thumbnail, Trace
from sleepviewer.widgets.hypnogram_view import STAGE_COLORS

__all__ = [
    "LEFT_PT",
    "RIGHT_PT",
    "events_image",
    "hypnogram_image",
    "png_bytes",
    "spectrogram_image",
    "thumbnail_image",
]

LEFT_PT: Final[float] = 58.0
"""Room for the y labels left of every night figure."""
RIGHT_PT: Final[float] = 40.0
"""Room right of every night figure (the spectrogram's colour bar, event counts)."""
AXIS_PT: Final[float] = 16.0
"""Height of a clock axis."""
FONT_FAMILY: Final[str] = "DejaVu Sans"
INK: Final[str] = "#222222"
GRID: Final[str] = "#d9d9d9"

_LEVELS: Final[dict[str, int]] = {"W": 0, "REM": 1, "N1": 2, "N2": 3, "N3": 4}
"""Row of each stage, top to bottom, as clinical hypnograms draw them."""
_ROW_NAMES: Final[tuple[str, ...]] = ("Wake", "REM", "N1", "N2", "N3")
_RDBU_R: Final[tuple[str, ...]] = (
    "#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
    "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f",
)  # ColorBrewer RdBu reversed, as the viewer's spectrogram (and YASA)


# -- canvas and primitives ---------------------------------------------------------------------
def _canvas(width_pt: float, height_pt: float, scale: float) -> tuple[QImage, QPainter]:
    img = QImage(max(1, round(width_pt * scale)), max(1, round(height_pt * scale)),
                 QImage.Format.Format_RGB32)
    dpm = round(scale * 72 / 0.0254)
    img.setDotsPerMeterX(dpm)
    img.setDotsPerMeterY(dpm)
    img.fill(QColor("white"))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    p.scale(scale, scale)
    return img, p


def _font(size_pt: float, bold: bool = False) -> QFont:
    f = QFont(FONT_FAMILY)
    f.setPixelSize(max(1, round(size_pt)))  # logical units are points (see _canvas)
    f.setBold(bold)
    return f


def _pen(color: str, width: float = 0.6, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(QColor(color))
    pen.setWidthF(width)
    pen.setStyle(style)
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    return pen


def _text(p: QPainter, rect: QRectF, text: str, align: Qt.AlignmentFlag, size: float = 7.0,
          bold: bool = False, color: str = INK) -> None:
    p.setFont(_font(size, bold))
    p.setPen(QColor(color))
    p.drawText(rect, int(align), text)


_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_CENTER = Qt.AlignmentFlag.AlignCenter


def png_bytes(img: QImage) -> bytes:
    """Return ``img`` encoded as PNG."""
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def clock_ticks(start: datetime, duration_s: float) -> list[tuple[float, str]]:
    """Return ``(seconds from start, "HH:MM")`` on round clock times, 4 to 12 of them."""
    step_min = next((m for m in (5, 10, 15, 30, 60, 120) if duration_s / 60 / m <= 10), 240)
    day0 = start.replace(hour=0, minute=0, second=0, microsecond=0)
    first = math.ceil((start - day0).total_seconds() / (step_min * 60)) * step_min * 60
    out = []
    t = first - (start - day0).total_seconds()
    while t <= duration_s + 1e-6:
        out.append((t, (start + timedelta(seconds=t)).strftime("%H:%M")))
        t += step_min * 60
    return out


def _time_axis(p: QPainter, plot: QRectF, start: datetime, duration_s: float,
               labels: bool = True) -> None:
    """Tick marks under ``plot`` (and the clock labels), plus vertical grid lines in it."""
    for t, text in clock_ticks(start, duration_s):
        x = plot.left() + plot.width() * t / duration_s
        p.setPen(_pen(GRID, 0.4))
        p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        p.setPen(_pen(INK, 0.6))
        p.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 2.5))
        if labels:
            _text(p, QRectF(x - 20, plot.bottom() + 3, 40, 10), text, _CENTER, 6.5)


def _frame(p: QPainter, plot: QRectF) -> None:
    p.setPen(_pen(INK, 0.6))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRect(plot)


# -- hypnogram ---------------------------------------------------------------------------------
def hypnogram_image(
    hypnograms: Sequence[HypnogramData], start: datetime, duration_s: float, *,
    width_pt: float = 482.0, panel_pt: float = 78.0, scale: float = 2.0,
) -> QImage:
    """Draw one clinical hypnogram per entry, stacked, on a shared clock axis.

    Each stage's epochs are a bar at its row (W on top, then REM, N1, N2, N3) joined by thin
    vertical transitions; REM is the thick red bar of clinical reports; unscored epochs and
    movement time leave a grey band and break the line.

    Parameters
    ----------
    hypnograms : sequence of HypnogramData
        Scored and/or model staging.
    start : datetime
        Clock time of the recording start (the time axis).
    duration_s : float
        Length of the time axis in seconds.
    width_pt, panel_pt : float
        Figure width and the height of one panel, in points.
    scale : float
        Pixels per point.
    """
    n = max(1, len(hypnograms))
    title_pt = 11.0
    height = n * (panel_pt + title_pt) + AXIS_PT
    img, p = _canvas(width_pt, height, scale)
    for k, hyp in enumerate(hypnograms):
        top = k * (panel_pt + title_pt) + title_pt
        plot = QRectF(LEFT_PT, top, width_pt - LEFT_PT - RIGHT_PT, panel_pt - 4)
        _text(p, QRectF(LEFT_PT, top - title_pt, plot.width(), title_pt), hyp.label, _LEFT,
              7.5, bold=True)
        _draw_hypnogram(p, plot, hyp, duration_s)
        _time_axis(p, plot, start, duration_s, labels=k == n - 1)
        _frame(p, plot)
    p.end()
    return img


def _draw_hypnogram(p: QPainter, plot: QRectF, hyp: HypnogramData, duration_s: float) -> None:
    row_h = plot.height() / len(_LEVELS)

    def y_of(stage: str) -> float:
        return plot.top() + (_LEVELS[stage] + 0.5) * row_h

    def x_of(t: float) -> float:
        return plot.left() + plot.width() * min(max(t / duration_s, 0.0), 1.0)

    for stage, row in _LEVELS.items():
        _text(p, QRectF(0, plot.top() + row * row_h, LEFT_PT - 5, row_h), _ROW_NAMES[row],
              _RIGHT, 7.0, color=STAGE_COLORS["REM"] if stage == "REM" else INK)
        p.setPen(_pen("#eeeeee", 0.4))
        p.drawLine(QPointF(plot.left(), y_of(stage)), QPointF(plot.right(), y_of(stage)))
    runs = _runs(hyp.stages)
    prev: tuple[int, str] | None = None  # (end epoch, stage) of the last drawn run
    for first, stop, stage in runs:
        x0, x1 = x_of(first * hyp.epoch_s), x_of(stop * hyp.epoch_s)
        if stage not in _LEVELS:  # unscored / movement time: a grey band, the line breaks
            p.fillRect(QRectF(x0, plot.top(), x1 - x0, plot.height()), QColor(0, 0, 0, 28))
            prev = None
            continue
        if prev is not None and prev[0] == first:
            p.setPen(_pen("#555555", 0.5))
            p.drawLine(QPointF(x0, y_of(prev[1])), QPointF(x0, y_of(stage)))
        if stage == "REM":
            p.setPen(_pen(STAGE_COLORS["REM"], 3.2))
        else:
            p.setPen(_pen(INK, 1.1))
        p.drawLine(QPointF(x0, y_of(stage)), QPointF(x1, y_of(stage)))
        prev = (stop, stage)


def _runs(stages: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(first, stop, stage)`` runs of equal consecutive stages."""
    out: list[tuple[int, int, str]] = []
    for i, s in enumerate(stages):
        if out and out[-1][2] == s and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1, s)
        else:
            out.append((i, i + 1, s))
    return out


# -- spectrogram -------------------------------------------------------------------------------
def _colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (NaN = missing) to RGB32 through RdBu_r; NaN is light grey."""
    stops = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in _RDBU_R], np.float64)
    v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * (len(stops) - 1)
    lo = np.floor(v).astype(int).clip(0, len(stops) - 2)
    frac = (v - lo)[..., None]
    rgb = stops[lo] * (1 - frac) + stops[lo + 1] * frac
    rgb[np.isnan(values)] = (235, 235, 235)
    rgb = rgb.round().astype(np.uint32)
    return (0xFF000000 | (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]).astype(np.uint32)


def spectrogram_image(
    spec: Spectrogram, start: datetime, duration_s: float, *,
    width_pt: float = 482.0, height_pt: float = 92.0, scale: float = 2.0,
) -> QImage:
    """Draw the per-epoch spectrogram (frequency up, time across) with a dB colour bar.

    Colour limits are the 2.5th and 97.5th percentiles of the night, as the viewer (and
    YASA's ``plot_spectrogram``) use.
    """
    title_pt = 11.0
    img, p = _canvas(width_pt, height_pt + title_pt + AXIS_PT, scale)
    plot = QRectF(LEFT_PT, title_pt, width_pt - LEFT_PT - RIGHT_PT, height_pt)
    _text(p, QRectF(LEFT_PT, 0, plot.width(), title_pt),
          f"Multitaper spectrogram, {spec.channel} (30-s epochs)", _LEFT, 7.5, bold=True)
    db = np.asarray(spec.psd_db, np.float64)
    finite = db[np.isfinite(db)]
    vmin, vmax = (np.percentile(finite, [2.5, 97.5]) if finite.size else (0.0, 1.0))
    vmax = vmax if vmax > vmin else vmin + 1.0
    norm = (db - vmin) / (vmax - vmin)
    # rows: frequency (high at the top); columns: epochs
    argb = np.ascontiguousarray(_colormap(norm.T[::-1]))
    h, w = argb.shape
    tile = QImage(argb.data, w, h, 4 * w, QImage.Format.Format_RGB32).copy()
    n_s = db.shape[0] * spec.epoch_s
    target = QRectF(plot.left(), plot.top(), plot.width() * min(n_s / duration_s, 1.0),
                    plot.height())
    p.drawImage(target, tile)
    f0, f1 = float(spec.freqs[0]), float(spec.freqs[-1])
    for f in (1, 5, 10, 15, 20, 25):
        if f0 <= f <= f1:
            y = plot.bottom() - plot.height() * (f - f0) / (f1 - f0)
            p.setPen(_pen(INK, 0.6))
            p.drawLine(QPointF(plot.left() - 2.5, y), QPointF(plot.left(), y))
            _text(p, QRectF(0, y - 5, LEFT_PT - 5, 10), f"{f} Hz", _RIGHT, 6.5)
    _time_axis(p, plot, start, duration_s)
    _frame(p, plot)
    _colorbar(p, QRectF(plot.right() + 8, plot.top(), 6, plot.height()), vmin, vmax)
    p.end()
    return img


def _colorbar(p: QPainter, rect: QRectF, vmin: float, vmax: float) -> None:
    ramp = np.linspace(1.0, 0.0, 64)[:, None]
    argb = np.ascontiguousarray(_colormap(ramp))
    tile = QImage(argb.data, 1, 64, 4, QImage.Format.Format_RGB32).copy()
    p.drawImage(rect, tile)
    _frame(p, rect)
    for v, y in ((vmax, rect.top()), (vmin, rect.bottom())):
        _text(p, QRectF(rect.right() + 2, y - 5, 30, 10), f"{v:.0f}", _LEFT, 6.0)
    _text(p, QRectF(rect.right() + 2, rect.center().y() - 5, 30, 10), "dB", _LEFT, 6.0)


# -- events timeline ---------------------------------------------------------------------------
def events_image(
    tracks: Sequence[EventTrack], spo2: Trace | None, start: datetime, duration_s: float, *,
    width_pt: float = 482.0, row_pt: float = 11.0, spo2_pt: float = 62.0, scale: float = 2.0,
) -> QImage:
    """Draw one row per event track (the count on the right) and the SpO2 trend below.

    The SpO2 trend is the minimum per bin (so desaturations keep their depth), on a scale
    from 100 % down to the nadir (at least 80 %), with the 90 % line dashed.
    """
    title_pt = 11.0
    rows_h = row_pt * len(tracks)
    gap = 6.0 if spo2 is not None else 0.0
    height = title_pt + rows_h + gap + (spo2_pt if spo2 is not None else 0.0) + AXIS_PT
    img, p = _canvas(width_pt, height, scale)
    pw = width_pt - LEFT_PT - RIGHT_PT
    _text(p, QRectF(LEFT_PT, 0, pw, title_pt), "Events and oximetry", _LEFT, 7.5, bold=True)
    rows = QRectF(LEFT_PT, title_pt, pw, rows_h)
    for k, track in enumerate(tracks):
        r = QRectF(rows.left(), rows.top() + k * row_pt, pw, row_pt)
        if k % 2 == 0:
            p.fillRect(r, QColor("#f6f6f6"))
        _text(p, QRectF(0, r.top(), LEFT_PT - 5, row_pt), track.name, _RIGHT, 6.3)
        _text(p, QRectF(r.right() + 4, r.top(), RIGHT_PT - 4, row_pt),
              f"{len(track.intervals)}", _LEFT, 6.5)
        color = QColor(label_color(track.labels[0]))
        for onset, dur in track.intervals:
            x0 = r.left() + pw * onset / duration_s
            w = max(pw * dur / duration_s, 0.7)
            p.fillRect(QRectF(x0, r.top() + 1.5, w, row_pt - 3), color)
    _frame(p, rows)
    last = rows
    if spo2 is not None:
        plot = QRectF(LEFT_PT, rows.bottom() + gap, pw, spo2_pt)
        _draw_spo2(p, plot, spo2, duration_s)
        last = plot
    _time_axis(p, last, start, duration_s)
    _time_axis(p, rows, start, duration_s, labels=False)
    p.end()
    return img


def _draw_spo2(p: QPainter, plot: QRectF, spo2: Trace, duration_s: float) -> None:
    y = np.asarray(spo2.y, np.float64)
    finite = y[np.isfinite(y)]
    low = min(80.0, math.floor(float(finite.min()) / 5) * 5) if finite.size else 80.0
    high = 100.0

    def y_of(v: float) -> float:
        return plot.bottom() - plot.height() * (v - low) / (high - low)

    for v in range(int(low), 101, 5 if high - low <= 30 else 10):
        _text(p, QRectF(0, y_of(v) - 5, LEFT_PT - 5, 10), f"{v} %", _RIGHT, 6.3)
        p.setPen(_pen(GRID, 0.4))
        p.drawLine(QPointF(plot.left(), y_of(v)), QPointF(plot.right(), y_of(v)))
    p.setPen(_pen("#b2182b", 0.6, Qt.PenStyle.DashLine))
    p.drawLine(QPointF(plot.left(), y_of(90)), QPointF(plot.right(), y_of(90)))
    _text(p, QRectF(plot.right() + 4, plot.top(), RIGHT_PT - 4, 10), "SpO₂", _LEFT, 6.5,
          bold=True)
    _polyline(p, plot, spo2.t, y, 0.0, duration_s, low, high, "#1b4f9c", 0.7)
    _frame(p, plot)


def _polyline(p: QPainter, plot: QRectF, t: np.ndarray, y: np.ndarray, t0: float, t1: float,
              lo: float, hi: float, color: str, width: float) -> None:
    """Draw ``y(t)`` in ``plot`` (x from ``t0`` to ``t1``, y from ``lo`` to ``hi``); NaN breaks."""
    xs = plot.left() + plot.width() * (np.asarray(t, np.float64) - t0) / (t1 - t0)
    ys = plot.bottom() - plot.height() * (np.clip(y, lo, hi) - lo) / (hi - lo)
    p.setPen(_pen(color, width))
    ok = np.isfinite(ys)
    breaks = np.flatnonzero(np.diff(ok.astype(np.int8)) != 0) + 1
    for a, b in zip([0, *breaks.tolist()], [*breaks.tolist(), len(ys)], strict=True):
        if ok[a] and b - a > 1:
            p.drawPolyline(QPolygonF([QPointF(float(u), float(v))
                                      for u, v in zip(xs[a:b], ys[a:b], strict=True)]))


# -- thumbnails --------------------------------------------------------------------------------
def thumbnail_image(
    thumb: Thumbnail, start: datetime, *, width_pt: float = 230.0, height_pt: float = 92.0,
    scale: float = 2.0,
) -> QImage:
    """Draw the channels of a matched segment, each scaled to its row, the segment shaded.

    Each trace is scaled between its 1st and 99th percentile, so one artefact does not flatten
    the rest; the clock times of the view's edges are written under it.
    """
    left, axis = 44.0, 11.0
    img, p = _canvas(width_pt, height_pt, scale)
    plot = QRectF(left, 2.0, width_pt - left - 4.0, height_pt - axis - 2.0)
    t0, t1 = thumb.start_s, thumb.stop_s
    xa = plot.left() + plot.width() * (thumb.segment_onset_s - t0) / (t1 - t0)
    xb = plot.left() + plot.width() * (
        thumb.segment_onset_s + thumb.segment_duration_s - t0) / (t1 - t0)
    p.fillRect(QRectF(xa, plot.top(), max(xb - xa, 0.8), plot.height()), QColor("#fff2b3"))
    n = max(1, len(thumb.traces))
    row = plot.height() / n
    for k, tr in enumerate(thumb.traces):
        r = QRectF(plot.left(), plot.top() + k * row, plot.width(), row)
        y = np.asarray(tr.y, np.float64)
        finite = y[np.isfinite(y)]
        lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
        if tr.unit == "%" and finite.size:  # SpO2: a fixed clinical scale, not the noise
            lo, hi = min(85.0, float(finite.min()) - 2.0), 100.0
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        pad = 0.08 * (hi - lo)
        _polyline(p, r, tr.t, y, t0, t1, lo - pad, hi + pad, "#1a1a1a", 0.45)
        _text(p, QRectF(0, r.top(), left - 4, row), tr.name, _RIGHT, 6.0)
    _frame(p, plot)
    for t, align in ((t0, Qt.AlignmentFlag.AlignLeft), (t1, Qt.AlignmentFlag.AlignRight)):
        x = plot.left() if align == Qt.AlignmentFlag.AlignLeft else plot.right() - 60
        _text(p, QRectF(x, plot.bottom() + 1, 60, axis - 1),
              (start + timedelta(seconds=t)).strftime("%H:%M:%S"),
              align | Qt.AlignmentFlag.AlignVCenter, 6.0, color="#555555")
    _text(p, QRectF(plot.left(), plot.bottom() + 1, plot.width(), axis - 1),
          f"{t1 - t0:.0f} s shown", _CENTER, 6.0, color="#555555")
    p.end()
    return img

