"""The HTML report: one self-contained file (inline CSS, figures as base64 PNG).

The sections and rows are those of the PDF (:mod:`sleepviewer.report.content`). Tables use
semantic markup with stable ids and classes, so that a program (or a test) can read the
numbers back:

===========================  ==================================================================
``table#sleep-statistics``   ``tr[data-key=TST]`` ... with ``td.value[data-value]`` (full float)
``table#sleep-stages``       ``tr[data-stage=N2]``: ``td.minutes``, ``td.pct-tst``, ``td.latency``
``table#event-table``        ``tr.event[data-key=AHI]`` with ``td.count``, ``td.index``, ``td.note``
``table#oximetry``           ``tr[data-key=mean|min|t90|t90_pct]``
``section#captions``         ``.caption[data-source][data-level][data-onset-s]`` > ``.caption-text``
``section#queries``          ``article.query[data-query]`` > ``figure.match``
===========================  ==================================================================

Needs a QGuiApplication for the figures.
"""

from __future__ import annotations

import base64
import math
from html import escape
from typing import Final

from PyQt6.QtGui import QImage

from sleepviewer.report import content as C
from sleepviewer.report import figures as F
from sleepviewer.report.model import ReportCaption, ReportData

__all__ = ["html_text"]

WIDTH_PT: Final[float] = 700.0
"""Figure width in points (CSS pixels): a comfortable screen width."""
SCALE: Final[float] = 2.0
"""Pixels per point of the embedded PNGs (sharp on high-DPI screens)."""

_CSS = """
@page { size: A4 portrait; margin: 17mm; }
body { font-family: "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: #1a1a1a;
       max-width: 760px; margin: 24px auto; font-size: 13px; line-height: 1.4; }
header { border-bottom: 2px solid #1f3d6b; display: flex; justify-content: space-between;
         align-items: flex-end; padding-bottom: 4px; margin-bottom: 14px; }
header h1 { color: #1f3d6b; font-size: 24px; margin: 0; }
header .study { text-align: right; font-size: 12px; color: #444; }
h2 { color: #1f3d6b; font-size: 17px; border-bottom: 1px solid #1f3d6b; margin: 22px 0 8px; }
h3 { color: #1f3d6b; font-size: 14px; margin: 14px 0 6px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 12px; }
th, td { padding: 3px 6px; vertical-align: top; text-align: left; }
thead th { background: #eef1f5; color: #1f3d6b; border-top: 1.5px solid #1f3d6b;
           border-bottom: 1.5px solid #1f3d6b; }
tbody tr { border-bottom: 0.5px solid #c5ccd6; }
tbody tr:last-child { border-bottom: 1.5px solid #1f3d6b; }
tbody th { font-weight: normal; }
td.value, td.count, td.index, td.minutes, td.pct-tst, td.latency { text-align: right;
           font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.strong th, tr.strong td { font-weight: bold; }
tr.group th { background: #f7f8fa; color: #1f3d6b; font-weight: bold; }
table#recording-info { background: #eef1f5; border: 1px solid #9aa5b4; }
table#recording-info th { color: #1f3d6b; width: 22%; }
table#recording-info tr { border: none; }
.findings, .caption.night { background: #eef1f5; border-left: 3px solid #1f3d6b;
           padding: 6px 10px; margin: 6px 0 10px; }
.two-col { display: flex; gap: 20px; } .two-col > div { flex: 1; }
figure { margin: 6px 0 12px; } figure img { width: 100%; }
figcaption { font-size: 11px; font-style: italic; color: #555; }
.matches { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.note { font-size: 11px; color: #555; font-style: italic; }
.interpretation { background: #eef1f5; border-left: 3px solid #1f3d6b; padding: 8px 10px;
           min-height: 90px; }
footer { border-top: 1px solid #9aa5b4; margin-top: 24px; font-size: 11px; color: #555; }
"""


def _img(image: QImage, alt: str) -> str:
    data = base64.b64encode(F.png_bytes(image)).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _num(value: float | None) -> str:
    """The full-precision value for ``data-value`` (``nan`` when missing)."""
    return "nan" if value is None or not math.isfinite(value) else repr(float(value))


def html_text(data: ReportData) -> str:
    """Return the whole report as one HTML document (a string)."""
    r = data.recording
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(data.title)}: {escape(r.file)}</title>",
        f'<meta name="generator" content="{escape(data.software)}">',
        f"<style>{_CSS}</style></head><body>",
        f'<header><h1>{escape(data.title)}</h1><div class="study">Patient: '
        f'{escape(r.patient or "anonymised")}<br>Study: {r.start:%d %b %Y, %H:%M} · '
        f"{escape(r.file)}</div></header>",
        _recording(data), _summary(data), _figures(data), _events(data), _captions(data),
        _queries(data), _methods(data), _appendix(data),
        f"<footer>{escape(data.software)} · generated {data.generated_at:%d %b %Y %H:%M}"
        "</footer></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _recording(data: ReportData) -> str:
    rows = "".join(
        f'<tr><th scope="row">{escape(k)}</th><td>{escape(v)}</td></tr>'
        for k, v in C.recording_rows(data)
    )
    return (f'<section id="recording"><h2>Patient and recording</h2>'
            f'<table id="recording-info"><tbody>{rows}</tbody></table></section>')


def _summary(data: ReportData) -> str:
    out = ['<section id="summary"><h2>Summary</h2>',
           f'<p class="findings">{escape(C.findings_sentence(data))}</p>',
           '<table id="key-findings"><thead><tr><th scope="col">Measure</th>'
           '<th scope="col">Value</th><th scope="col">Comment</th></tr></thead><tbody>']
    for key, measure, value, comment in C.summary_rows(data):
        cls = ' class="strong"' if key == "AHI" else ""
        out.append(f'<tr data-key="{escape(key)}"{cls}><th scope="row">{escape(measure)}</th>'
                   f'<td class="value">{escape(value)}</td><td>{escape(comment)}</td></tr>')
    out.append("</tbody></table></section>")
    if data.stats:
        out.append('<section id="sleep-architecture"><h2>Sleep architecture</h2>'
                   '<div class="two-col"><div><table id="sleep-statistics"><thead><tr>'
                   '<th scope="col">Sleep times</th><th scope="col">Value</th>'
                   '<th scope="col">Unit</th></tr></thead><tbody>')
        for row in data.stat_rows:
            out.append(
                f'<tr data-key="{escape(row.key)}"><th scope="row">{escape(row.label)}</th>'
                f'<td class="value" data-value="{_num(row.value)}">{C.fmt(row.value)}</td>'
                f'<td class="unit">{escape(row.unit)}</td></tr>')
        out.append('</tbody></table></div><div><table id="sleep-stages"><thead><tr>'
                   '<th scope="col">Stage</th><th scope="col">min</th>'
                   '<th scope="col">% TST</th><th scope="col">Latency, min</th></tr></thead>'
                   "<tbody>")
        for (stage, minutes, pct, lat), (_, name, m_txt, p_txt, l_txt) in zip(
            data.stage_rows, C.stage_table(data), strict=True
        ):
            out.append(
                f'<tr data-stage="{stage}"><th scope="row">{escape(name)}</th>'
                f'<td class="minutes" data-value="{_num(minutes)}">{m_txt}</td>'
                f'<td class="pct-tst" data-value="{_num(pct)}">{p_txt}</td>'
                f'<td class="latency" data-value="{_num(lat)}">{l_txt}</td></tr>')
        out.append('</tbody></table><p class="note">Latencies from sleep onset; stage '
                   "percentages of total sleep time.</p></div></div></section>")
    return "\n".join(out)


def _figures(data: ReportData) -> str:
    r = data.recording
    out = ['<section id="figures"><h2>Hypnogram and night overview</h2>']
    if data.hypnograms:
        img = F.hypnogram_image(data.hypnograms, r.start, r.duration_s, width_pt=WIDTH_PT,
                                scale=SCALE)
        cap = ""
        if data.agreement is not None:
            cap = (f"<figcaption>Agreement of model and scored stages: "
                   f"{data.agreement[0]:.1f} % of epochs, Cohen's kappa "
                   f"{data.agreement[1]:.2f}.</figcaption>")
        out.append(f'<figure id="fig-hypnogram">{_img(img, "Hypnogram")}{cap}</figure>')
    if data.spectrogram is not None:
        img = F.spectrogram_image(data.spectrogram, r.start, r.duration_s, width_pt=WIDTH_PT,
                                  scale=SCALE)
        out.append(f'<figure id="fig-spectrogram">{_img(img, "Spectrogram")}</figure>')
    if data.event_tracks:
        img = F.events_image(data.event_tracks, data.spo2, r.start, r.duration_s,
                             width_pt=WIDTH_PT, scale=SCALE)
        out.append(f'<figure id="fig-events">{_img(img, "Events and SpO2")}<figcaption>Events '
                   "as scored (all, including wake); numbers on the right are counts over the "
                   "whole recording. SpO₂: lowest value per 4 s.</figcaption></figure>")
    out.append("</section>")
    return "\n".join(out) if len(out) > 2 else ""


def _events(data: ReportData) -> str:
    if not data.event_rows:
        return ""
    out = ['<section id="events"><h2>Respiratory events, oximetry, arousals and limb '
           'movements</h2><table id="event-table"><thead><tr><th scope="col">Event (during '
           'sleep)</th><th scope="col">Count</th><th scope="col">Index, /h</th>'
           '<th scope="col">Severity / note</th></tr></thead><tbody>']
    group = ""
    for e in data.event_rows:
        if e.group != group:
            group = e.group
            out.append(f'<tr class="group"><th colspan="4" scope="rowgroup">{escape(group)}'
                       "</th></tr>")
        cls = "event strong" if e.key == "AHI" else "event"
        count = "" if e.count is None else str(e.count)
        out.append(
            f'<tr class="{cls}" data-key="{escape(e.key)}"><th scope="row">{escape(e.label)}'
            f'</th><td class="count" data-value="{count}">{count or C.DASH}</td>'
            f'<td class="index" data-value="{_num(e.index)}">{C.fmt(e.index)}</td>'
            f'<td class="note">{escape(e.note)}</td></tr>')
    out.append("</tbody></table>")
    for table_id, title, rows in (
        ("oximetry", f"Oximetry ({data.oximetry.channel}, sleep)" if data.oximetry else "",
         C.oximetry_rows(data)),
        ("heart-rate", "Heart rate (ECG)", C.heart_rows(data)),
    ):
        if not rows:
            continue
        out.append(f'<table id="{table_id}"><thead><tr><th scope="col">{escape(title)}</th>'
                   '<th scope="col">Value</th><th scope="col">Unit</th></tr></thead><tbody>')
        out += [f'<tr data-key="{k}"><th scope="row">{escape(lab)}</th><td class="value" '
                f'data-value="{_num(v)}">{txt}</td><td class="unit">{u}</td></tr>'
                for k, lab, v, txt, u in rows]
        out.append("</tbody></table>")
    out.append("</section>")
    return "\n".join(out)


def _caption_attrs(c: ReportCaption) -> str:
    return (f'data-source="{c.source}" data-level="{escape(c.caption.level)}" '
            f'data-modality="{escape(c.caption.modality)}" '
            f'data-onset-s="{_num(c.caption.onset_s)}" '
            f'data-duration-s="{_num(c.caption.duration_s)}"')


def _captions(data: ReportData) -> str:
    if not data.captions:
        return ""
    out = ['<section id="captions"><h2>Narrative</h2>']
    for source, title in (("reference", "From the scoring and signals"),
                          ("model", "Generated by the model")):
        night = C.caption_rows(data, source, "night")
        if night:
            out.append(f"<h3>{title}</h3>")
            out += [f'<div class="caption night" {_caption_attrs(c)}><p class="caption-text">'
                    f"{escape(c.caption.text)}</p></div>" for c in night]
    model = [c for c in data.captions if c.source == "model" and c.caption.level != "night"]
    if model:
        out.append("<h3>Captions generated by the model</h3>" + _caption_table(data, model))
    out.append("</section>")
    return "\n".join(out)


def _caption_table(data: ReportData, rows: list[ReportCaption]) -> str:
    rows = sorted(rows, key=lambda c: c.caption.onset_s)
    source = rows[0].source if rows else ""
    body = "".join(
        f'<tr class="caption" {_caption_attrs(c)}><th scope="row">{C.caption_span(data, c)}'
        f'</th><td class="caption-text">{escape(c.caption.text)}</td></tr>' for c in rows
    )
    return (f'<table class="caption-table" data-source="{source}"><thead><tr>'
            f'<th scope="col">Time</th><th scope="col">Caption</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _appendix(data: ReportData) -> str:
    rows = C.caption_rows(data, "reference", "segment")
    if not rows:
        return ""
    return ('<section id="appendix"><h2>Appendix: 5-minute narrative</h2><p class="note">'
            "Written from the scored stages and events and the signals, one paragraph per "
            f"5 minutes of recording.</p>{_caption_table(data, rows)}</section>")


def _queries(data: ReportData) -> str:
    if not data.queries:
        return ""
    start = data.recording.start
    out = ['<section id="queries"><h2>Signal search</h2>']
    for q in data.queries:
        out.append(f'<article class="query" data-query="{escape(q.query)}">'
                   f"<h3>“{escape(q.query)}”</h3>")
        shown = len(q.matches)
        text = (f"{q.n_segments} segment(s) above the match threshold {q.threshold:.2f}; "
                f"{'the best ' + str(shown) + ' shown' if shown else 'none to show'}.")
        if not q.matches and q.best_scores:
            text += f" Best scores: {', '.join(f'{s:.2f}' for s in q.best_scores[:5])}."
        out.append(f'<p class="query-summary">{escape(text)}</p><div class="matches">')
        for k, m in enumerate(q.matches, start=1):
            s = m.segment
            cap = (f"#{k} {C.clock(start, s.onset_s)}, {s.duration_s:.0f} s, score "
                   f"{s.score:.2f}" + (f", {m.stage}" if m.stage else "")
                   + (f". {s.caption}" if s.caption else ""))
            img = ""
            if m.thumbnail is not None:
                img = _img(F.thumbnail_image(m.thumbnail, start, width_pt=340, scale=SCALE),
                           f"Segment at {C.clock(start, s.onset_s)}")
            out.append(f'<figure class="match" data-onset-s="{_num(s.onset_s)}" '
                       f'data-score="{_num(s.score)}">{img}<figcaption>{escape(cap)}'
                       "</figcaption></figure>")
        out.append("</div></article>")
    out.append("</section>")
    return "\n".join(out)


def _methods(data: ReportData) -> str:
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in data.notes)
    return (f'<section id="methods"><h2>Methods and notes</h2><p>{escape(C.METHODS)}</p>'
            f'{notes}</section><section id="interpretation"><h2>Interpretation</h2>'
            '<div class="interpretation">Physician\'s interpretation:<br><br><br><br>'
            f'Signature / date:</div><p class="note">{escape(C.DISCLAIMER)}</p></section>')
