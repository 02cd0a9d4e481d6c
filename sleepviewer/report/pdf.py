"""The PDF report, written with Qt's own PDF writer (QPdfWriter + QPainter), A4 portrait.

Layout in points (1/72 inch): the content is a list of blocks (headings, paragraphs, tables,
figures) that :func:`_paginate` places on pages, splitting long tables between rows (their
header repeated) and keeping a heading with what follows it. Then every page is painted with
the running header ("Polysomnography report", patient and study date) and the footer
("Page n of N"). The order is that of a clinical summary: recording block, key findings,
sleep architecture, hypnogram; the other night figures; the event tables; captions; query
results; methods and the physician's interpretation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from PyQt6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QPointF, QRectF, Qt
from PyQt6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QPen,
)

from sleepviewer.report import content as C
from sleepviewer.report import figures as F
from sleepviewer.report.model import ReportCaption, ReportData

__all__ = ["pdf_bytes"]

PAGE_W: Final[float] = 595.28  # A4 in points
PAGE_H: Final[float] = 841.89
MARGIN_X: Final[float] = 48.0  # 17 mm
MARGIN_TOP: Final[float] = 40.0
MARGIN_BOTTOM: Final[float] = 36.0
HEADER_H: Final[float] = 40.0
FOOTER_H: Final[float] = 22.0
BODY_W: Final[float] = PAGE_W - 2 * MARGIN_X
DPI: Final[int] = 300
IMG_SCALE: Final[float] = DPI / 72.0
ACCENT: Final[str] = "#1f3d6b"
LINE: Final[str] = "#9aa5b4"
SHADE: Final[str] = "#eef1f5"
FONT: Final[str] = F.FONT_FAMILY


def _font(size: float, bold: bool = False, italic: bool = False) -> QFont:
    f = QFont(FONT)
    f.setPixelSize(max(1, round(size)))  # the painter maps one pixel to one point
    f.setBold(bold)
    f.setItalic(italic)
    return f


def _pen(color: str, width: float = 0.5) -> QPen:
    pen = QPen(QColor(color))
    pen.setWidthF(width)
    return pen


_WRAP = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap)


def _text_height(text: str, font: QFont, width: float) -> float:
    return QFontMetricsF(font).boundingRect(QRectF(0, 0, width, 1e6), _WRAP, text).height()


# -- blocks ------------------------------------------------------------------------------------
class Block:
    """Something of a known height drawn at ``(x, y)`` across ``width`` points."""

    keep_with_next = False
    space_after = 6.0

    def height(self, width: float) -> float:
        """Height in points."""
        raise NotImplementedError

    def draw(self, p: QPainter, x: float, y: float, width: float) -> None:
        """Paint the block."""
        raise NotImplementedError

    def split(self, width: float, room: float) -> tuple[Block, Block] | None:
        """Return a part that fits into ``room`` and the rest, or ``None`` if it cannot split."""
        return None


class Heading(Block):
    """A section heading with a rule under it (level 1) or a bold subheading (level 2)."""

    keep_with_next = True

    def __init__(self, text: str, level: int = 1) -> None:
        self.text, self.level = text, level
        self.space_after = 4.0 if level == 1 else 2.0

    def height(self, width: float) -> float:
        return 18.0 if self.level == 1 else 14.0

    def draw(self, p: QPainter, x: float, y: float, width: float) -> None:
        size = 11.0 if self.level == 1 else 9.0
        p.setFont(_font(size, bold=True))
        p.setPen(QColor(ACCENT))
        p.drawText(QRectF(x, y, width, self.height(width) - 3), int(
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom), self.text)
        if self.level == 1:
            p.setPen(_pen(ACCENT, 0.8))
            p.drawLine(QPointF(x, y + 16.5), QPointF(x + width, y + 16.5))


class Paragraph(Block):
    """Wrapped text."""

    def __init__(self, text: str, size: float = 8.5, *, italic: bool = False,
                 color: str = "#222222", box: bool = False, space_after: float = 6.0,
                 keep_with_next: bool = False) -> None:
        self.text, self.size, self.italic, self.color, self.box = text, size, italic, color, box
        self.space_after = space_after
        self.keep_with_next = keep_with_next
        self._pad = 6.0 if box else 0.0

    def height(self, width: float) -> float:
        return _text_height(self.text, _font(self.size, italic=self.italic),
                            width - 2 * self._pad) + 2 * self._pad

    def draw(self, p: QPainter, x: float, y: float, width: float) -> None:
        h = self.height(width)
        if self.box:
            p.fillRect(QRectF(x, y, width, h), QColor(SHADE))
            p.fillRect(QRectF(x, y, 2.5, h), QColor(ACCENT))
        p.setFont(_font(self.size, italic=self.italic))
        p.setPen(QColor(self.color))
        p.drawText(QRectF(x + self._pad, y + self._pad, width - 2 * self._pad, h), _WRAP,
                   self.text)


@dataclass
class Column:
    """A table column: title, share of the width, alignment."""

    title: str
    share: float
    align: str = "left"


@dataclass
class Table(Block):
    """A ruled table; rows in ``strong`` are bold, rows in ``groups`` are group titles."""

    columns: list[Column]
    rows: list[list[str]]
    strong: set[int] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)
    size: float = 8.0
    space_after: float = 8.0

    def _widths(self, width: float) -> list[float]:
        total = sum(c.share for c in self.columns)
        return [width * c.share / total for c in self.columns]

    def _row_h(self, row: list[str], width: float, bold: bool = False) -> float:
        hs = [_text_height(cell, _font(self.size, bold), w - 8) for cell, w in
              zip(row, self._widths(width), strict=True)]
        return max(hs) + 5.0

    def height(self, width: float) -> float:
        head = self._row_h([c.title for c in self.columns], width, True)
        return head + sum(self._row_h(r, width, i in self.strong) for i, r in enumerate(self.rows))

    def split(self, width: float, room: float) -> tuple[Block, Block] | None:
        used = self._row_h([c.title for c in self.columns], width, True)
        for i, r in enumerate(self.rows):
            used += self._row_h(r, width, i in self.strong)
            if used > room:
                if i < 2:
                    return None
                return self._part(0, i), self._part(i, len(self.rows))
        return None

    def _part(self, a: int, b: int) -> Table:
        """Rows ``a`` to ``b`` as a table of their own (the header is drawn again)."""

        def shift(rows: set[int]) -> set[int]:
            return {i - a for i in rows if a <= i < b}

        return Table(self.columns, self.rows[a:b], shift(self.strong), shift(self.groups),
                     self.size, self.space_after)

    def draw(self, p: QPainter, x: float, y: float, width: float) -> None:
        widths = self._widths(width)
        head = [c.title for c in self.columns]
        h = self._row_h(head, width, True)
        p.fillRect(QRectF(x, y, width, h), QColor(SHADE))
        self._cells(p, head, x, y, widths, h, bold=True, color=ACCENT)
        p.setPen(_pen(ACCENT, 0.8))
        p.drawLine(QPointF(x, y), QPointF(x + width, y))
        p.drawLine(QPointF(x, y + h), QPointF(x + width, y + h))
        y += h
        for i, row in enumerate(self.rows):
            rh = self._row_h(row, width, i in self.strong)
            if i in self.groups:
                p.fillRect(QRectF(x, y, width, rh), QColor("#f7f8fa"))
            self._cells(p, row, x, y, widths, rh, bold=i in self.strong or i in self.groups,
                        color=ACCENT if i in self.groups else "#1a1a1a")
            y += rh
            p.setPen(_pen(LINE if i < len(self.rows) - 1 else ACCENT,
                          0.3 if i < len(self.rows) - 1 else 0.8))
            p.drawLine(QPointF(x, y), QPointF(x + width, y))

    def _cells(self, p: QPainter, row: Sequence[str], x: float, y: float, widths: list[float],
               h: float, *, bold: bool, color: str) -> None:
        p.setFont(_font(self.size, bold))
        p.setPen(QColor(color))
        for cell, w, col in zip(row, widths, self.columns, strict=True):
            align = {"left": Qt.AlignmentFlag.AlignLeft, "right": Qt.AlignmentFlag.AlignRight,
                     "center": Qt.AlignmentFlag.AlignHCenter}[col.align]
            p.drawText(QRectF(x + 4, y + 2.5, w - 8, h - 3),
                       int(align | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap), cell)
            x += w


class KeyValues(Block):
    """Label-value pairs in two columns, on a shaded panel (the patient/recording block)."""

    def __init__(self, pairs: list[tuple[str, str]], size: float = 8.0) -> None:
        self.pairs, self.size = pairs, size
        self.space_after = 10.0

    def _columns(self, width: float) -> tuple[list[list[tuple[str, str]]], float]:
        half = (len(self.pairs) + 1) // 2
        return [self.pairs[:half], self.pairs[half:]], (width - 24) / 2  # 8 pt pads, 8 pt gap

    def _value_h(self, value: str, col_w: float) -> float:
        return _text_height(value, _font(self.size), col_w * 0.68)

    def height(self, width: float) -> float:
        cols, col_w = self._columns(width)
        return 9.0 + max(sum(self._value_h(v, col_w) + 3.0 for _, v in col) for col in cols)

    def draw(self, p: QPainter, x: float, y: float, width: float) -> None:
        h = self.height(width)
        p.fillRect(QRectF(x, y, width, h), QColor(SHADE))
        p.setPen(_pen(LINE, 0.5))
        p.drawRect(QRectF(x, y, width, h))
        cols, col_w = self._columns(width)
        for k, col in enumerate(cols):
            cx, cy = x + 8 + k * (col_w + 8), y + 6
            for label, value in col:
                vh = self._value_h(value, col_w)
                p.setFont(_font(self.size, bold=True))
                p.setPen(QColor(ACCENT))
                p.drawText(QRectF(cx, cy, col_w * 0.32, vh), _WRAP, label)
                p.setFont(_font(self.size))
                p.setPen(QColor("#1a1a1a"))
                p.drawText(QRectF(cx + col_w * 0.32, cy, col_w * 0.68, vh), _WRAP, value)
                cy += vh + 3.0


class Figure(Block):
    """A QImage at a width in points (its height follows the aspect ratio)."""

    def __init__(self, image: QImage, width_pt: float | None = None,
                 caption: str | None = None) -> None:
        self.image, self.width_pt, self.caption = image, width_pt, caption
        self.space_after = 8.0

    def _size(self, width: float) -> tuple[float, float]:
        w = min(self.width_pt or width, width)
        return w, w * self.image.height() / max(self.image.width(), 1)

    def height(self, width: float) -> float:
        cap = _text_height(self.caption, _font(7.0, italic=True), width) + 2 if self.caption else 0
        return self._size(width)[1] + cap

    def draw(self, p: QPainter, x: float, y: float, width: float) -> None:
        w, h = self._size(width)
        p.drawImage(QRectF(x, y, w, h), self.image)
        if self.caption:
            p.setFont(_font(7.0, italic=True))
            p.setPen(QColor("#555555"))
            p.drawText(QRectF(x, y + h + 2, width, 40), _WRAP, self.caption)


class Row(Block):
    """Blocks side by side (never split), e.g. two tables or thumbnails."""

    def __init__(self, blocks: list[Block], gap: float = 14.0, space_after: float = 8.0) -> None:
        self.blocks, self.gap, self.space_after = blocks, gap, space_after

    def _w(self, width: float) -> float:
        return (width - self.gap * (len(self.blocks) - 1)) / max(len(self.blocks), 1)

    def height(self, width: float) -> float:
        return max((b.height(self._w(width)) for b in self.blocks), default=0.0)

    def draw(self, p: QPainter, x: float, y: float, width: float) -> None:
        w = self._w(width)
        for k, b in enumerate(self.blocks):
            b.draw(p, x + k * (w + self.gap), y, w)


class Stack(Block):
    """Blocks one under the other, kept together (a titled table inside a :class:`Row`)."""

    def __init__(self, blocks: list[Block]) -> None:
        self.blocks = blocks

    def height(self, width: float) -> float:
        return sum(b.height(width) + b.space_after for b in self.blocks)

    def draw(self, p: QPainter, x: float, y: float, width: float) -> None:
        for b in self.blocks:
            b.draw(p, x, y, width)
            y += b.height(width) + b.space_after


class PageBreak(Block):
    """Start a new page."""

    def height(self, width: float) -> float:
        return 0.0

    def draw(self, p: QPainter, x: float, y: float, width: float) -> None:
        return None


# -- pagination and painting -------------------------------------------------------------------
Placed = tuple[Block, float]
"""A block and its y on the page."""


def _paginate(blocks: list[Block]) -> list[list[Placed]]:
    top = MARGIN_TOP + HEADER_H
    bottom = PAGE_H - MARGIN_BOTTOM - FOOTER_H
    pages: list[list[Placed]] = [[]]
    y = top
    queue = list(blocks)
    while queue:
        b = queue.pop(0)
        if isinstance(b, PageBreak):
            if pages[-1]:
                pages.append([])
                y = top
            continue
        h = b.height(BODY_W)
        need = h
        prev, k = b, 0
        while prev.keep_with_next and k < len(queue):
            # a heading (and its intro) needs the start of what follows on the same page
            nxt = queue[k]
            need += prev.space_after
            if not nxt.keep_with_next:
                need += min(nxt.height(BODY_W), 70.0)
                break
            need += nxt.height(BODY_W)
            prev, k = nxt, k + 1
        if y + need > bottom and pages[-1]:
            part = b.split(BODY_W, bottom - y) if not b.keep_with_next else None
            if part is not None:
                pages[-1].append((part[0], y))
                queue.insert(0, part[1])
            pages.append([])
            y = top
            if part is not None:
                continue
        if y + h > bottom:  # taller than a page even when alone: split it where it can
            part = b.split(BODY_W, bottom - y)
            if part is not None:
                pages[-1].append((part[0], y))
                queue.insert(0, part[1])
                pages.append([])
                y = top
                continue
        pages[-1].append((b, y))
        y += h + b.space_after
    return [pg for pg in pages if pg] or [[]]


def _header(p: QPainter, data: ReportData) -> None:
    x, y, w = MARGIN_X, MARGIN_TOP, BODY_W
    p.setFont(_font(15.0, bold=True))
    p.setPen(QColor(ACCENT))
    p.drawText(QRectF(x, y, w, 22), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
               data.title)
    r = data.recording
    p.setFont(_font(7.5))
    p.setPen(QColor("#444444"))
    right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    p.drawText(QRectF(x, y, w, 11), right, f"Patient: {r.patient or 'anonymised'}")
    p.drawText(QRectF(x, y + 11, w, 11), right,
               f"Study: {r.start:%d %b %Y, %H:%M} · {r.file}")
    p.setPen(_pen(ACCENT, 1.2))
    p.drawLine(QPointF(x, y + 27), QPointF(x + w, y + 27))


def _footer(p: QPainter, data: ReportData, page: int, n_pages: int) -> None:
    x, w = MARGIN_X, BODY_W
    y = PAGE_H - MARGIN_BOTTOM - FOOTER_H + 6
    p.setPen(_pen(LINE, 0.5))
    p.drawLine(QPointF(x, y), QPointF(x + w, y))
    p.setFont(_font(7.0))
    p.setPen(QColor("#555555"))
    p.drawText(QRectF(x, y + 3, w * 0.8, 12),
               int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
               f"{data.software} · generated {data.generated_at:%d %b %Y %H:%M}")
    p.drawText(QRectF(x, y + 3, w, 12),
               int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
               f"Page {page} of {n_pages}")


def pdf_bytes(data: ReportData) -> bytes:
    """Render the report as an A4 PDF and return its bytes (needs a QGuiApplication)."""
    pages = _paginate(_blocks(data, IMG_SCALE))
    buf_data = QByteArray()
    buf = QBuffer(buf_data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buf)
    writer.setResolution(DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                     QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
    writer.setTitle(f"{data.title}: {data.recording.file}")
    writer.setCreator(data.software)
    p = QPainter(writer)
    try:
        k = writer.resolution() / 72.0
        for n, page in enumerate(pages, start=1):
            if n > 1:
                writer.newPage()
            p.resetTransform()
            p.scale(k, k)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            # Figures are line art: JPEG (Qt's default in PDFs) would blur lines and grey the
            # white around them, so images are stored losslessly.
            p.setRenderHint(QPainter.RenderHint.LosslessImageRendering)
            _header(p, data)
            for block, y in page:
                block.draw(p, MARGIN_X, y, BODY_W)
            _footer(p, data, n, len(pages))
    finally:
        p.end()
        buf.close()
    return bytes(buf_data.data())


# -- content -----------------------------------------------------------------------------------
def _blocks(data: ReportData, scale: float) -> list[Block]:
    """The report, section by section (the same order as the HTML report)."""
    out: list[Block] = [KeyValues(C.recording_rows(data))]
    out += _summary(data)
    out += _figures(data, scale)
    out += _events(data)
    out += _captions(data)
    out += _queries(data, scale)
    out += [Heading("Methods and notes"), Paragraph(C.METHODS, 7.5, color="#333333")]
    for note in data.notes:
        out.append(Paragraph(note, 7.5, italic=True, color="#333333"))
    out += [Heading("Interpretation"),
            Paragraph("Physician's interpretation:\n\n\n\n\nSignature / date:", 8.5,
                      box=True, keep_with_next=True),
            Paragraph(C.DISCLAIMER, 7.0, italic=True, color="#555555")]
    out += _appendix(data)
    return out


def _summary(data: ReportData) -> list[Block]:
    out: list[Block] = [Heading("Summary")]
    out.append(Paragraph(C.findings_sentence(data), 9.0, box=True, space_after=8.0))
    rows = C.summary_rows(data)
    out.append(Table([Column("Measure", 3.2), Column("Value", 1.4, "right"),
                      Column("Comment", 3.4)],
                     [[m, v, c] for _, m, v, c in rows],
                     strong={i for i, r in enumerate(rows) if r[0] == "AHI"}))
    if not data.stats:
        return out
    times = Table([Column("Sleep times", 3.0), Column("Value", 1.2, "right")],
                  [[r.label, f"{C.fmt(r.value)} {r.unit}"] for r in data.stat_rows])
    stages = Table([Column("Stage", 1.2), Column("min", 1.0, "right"),
                    Column("% TST", 1.0, "right"), Column("Latency, min", 1.5, "right")],
                   [list(r[1:]) for r in C.stage_table(data)])
    out += [Heading("Sleep architecture"), Row([times, Stack([stages, Paragraph(
        "Latencies from sleep onset; stage percentages of total sleep time.", 7.0,
        italic=True, color="#555555")])])]
    return out


def _figures(data: ReportData, scale: float) -> list[Block]:
    r = data.recording
    out: list[Block] = []
    if data.hypnograms:
        img = F.hypnogram_image(data.hypnograms, r.start, r.duration_s, width_pt=BODY_W,
                                panel_pt=100.0 if len(data.hypnograms) == 1 else 80.0,
                                scale=scale)
        cap = None
        if data.agreement is not None:
            cap = (f"Agreement of model and scored stages: {data.agreement[0]:.1f} % of epochs, "
                   f"Cohen's kappa {data.agreement[1]:.2f}.")
        out += [Heading("Hypnogram"), Figure(img, caption=cap)]
    out.append(PageBreak())
    if data.spectrogram is not None or data.event_tracks:
        out.append(Heading("Night overview"))
    if data.spectrogram is not None:
        out.append(Figure(F.spectrogram_image(data.spectrogram, r.start, r.duration_s,
                                              width_pt=BODY_W, scale=scale)))
    if data.event_tracks:
        out.append(Figure(F.events_image(data.event_tracks, data.spo2, r.start, r.duration_s,
                                         width_pt=BODY_W, scale=scale),
                          caption="Events as scored (all, including wake); numbers on the "
                                  "right are counts over the whole recording. SpO₂: lowest "
                                  "value per 4 s."))
    return out


def _events(data: ReportData) -> list[Block]:
    if not data.event_rows:
        return []
    rows: list[list[str]] = []
    groups: set[int] = set()
    strong: set[int] = set()
    group = ""
    for e in data.event_rows:
        if e.group != group:
            group = e.group
            groups.add(len(rows))
            rows.append([group, "", "", ""])
        if e.key == "AHI":
            strong.add(len(rows))
        rows.append([e.label, "–" if e.count is None else str(e.count), C.fmt(e.index),
                     e.note])
    out: list[Block] = [
        Heading("Respiratory events, oximetry, arousals and limb movements"),
        Table([Column("Event (during sleep)", 3.4), Column("Count", 1.0, "right"),
               Column("Index, /h", 1.1, "right"), Column("Severity / note", 2.2)],
              rows, strong=strong, groups=groups),
    ]
    tables: list[Block] = []
    if data.oximetry is not None:
        tables.append(Table([Column(f"Oximetry ({data.oximetry.channel}, sleep)", 3.4),
                             Column("Value", 1.3, "right")],
                            [[lab, f"{txt} {u}"] for _, lab, _, txt, u in C.oximetry_rows(data)]))
    if data.heart is not None:
        tables.append(Table([Column("Heart rate (ECG)", 3.4), Column("Value", 1.3, "right")],
                            [[lab, f"{txt} {u}"] for _, lab, _, txt, u in C.heart_rows(data)]))
    if tables:
        out.append(Row(tables) if len(tables) == 2 else tables[0])
    return out


def _captions(data: ReportData) -> list[Block]:
    if not data.captions:
        return []
    out: list[Block] = [Heading("Narrative")]
    for source, title in (("reference", "From the scoring and signals"),
                          ("model", "Generated by the model")):
        night = C.caption_rows(data, source, "night")
        if night:
            out.append(Heading(title, 2))
            out += [Paragraph(c.caption.text, 8.5, box=True) for c in night]
    model = sorted((c for c in data.captions if c.source == "model" and c.caption.level != "night"),
                   key=lambda c: c.caption.onset_s)
    if model:
        out += [Heading("Captions generated by the model", 2), _caption_table(data, model)]
    return out


def _caption_table(data: ReportData, rows: list[ReportCaption]) -> Table:
    return Table([Column("Time", 1.1), Column("Caption", 6.0)],
                 [[C.caption_span(data, c), c.caption.text] for c in rows], size=7.5)


def _appendix(data: ReportData) -> list[Block]:
    rows = C.caption_rows(data, "reference", "segment")
    if not rows:
        return []
    return [PageBreak(), Heading("Appendix: 5-minute narrative"),
            Paragraph("Written from the scored stages and events and the signals, one "
                      "paragraph per 5 minutes of recording.", 7.5, color="#555555"),
            _caption_table(data, rows)]


def _queries(data: ReportData, scale: float) -> list[Block]:
    if not data.queries:
        return []
    out: list[Block] = [Heading("Signal search")]
    start = data.recording.start
    for q in data.queries:
        out.append(Heading(f"“{q.query}”", 2))
        shown = len(q.matches)
        out.append(Paragraph(
            f"{q.n_segments} segment(s) above the match threshold {q.threshold:.2f}; "
            f"{'the best ' + str(shown) + ' shown' if shown else 'none to show'}."
            + ("" if q.matches or not q.best_scores else
               f" Best scores: {', '.join(f'{s:.2f}' for s in q.best_scores[:5])}."),
            8.0, color="#333333", keep_with_next=bool(q.matches)))
        cells: list[Block] = []
        for k, m in enumerate(q.matches, start=1):
            s = m.segment
            text = (f"#{k} {C.clock(start, s.onset_s)}, {s.duration_s:.0f} s, "
                    f"score {s.score:.2f}" + (f", {m.stage}" if m.stage else "")
                    + (f". {s.caption}" if s.caption else ""))
            if m.thumbnail is not None:
                img = F.thumbnail_image(m.thumbnail, start, width_pt=(BODY_W - 14) / 2,
                                        scale=scale)
                cells.append(Figure(img, caption=text))
            else:
                cells.append(Paragraph(text, 7.5))
        for i in range(0, len(cells), 2):
            pair = cells[i:i + 2]
            if len(pair) == 1:
                pair.append(Paragraph("", 7.5))
            out.append(Row(pair))
    return out
