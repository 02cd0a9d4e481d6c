"""The words and numbers of a report, shared by the PDF and the HTML writer (Qt-free).

Both writers lay out the same rows in the same order, so that the two formats never disagree:
this module turns :class:`~sleepviewer.report.model.ReportData` into labelled text cells.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from sleepviewer.report.model import ChannelRow, ReportCaption, ReportData

DASH = "–"
"""Shown for a value that does not exist (e.g. REM latency without REM)."""

METHODS = (
    "Sleep stages and events as scored in the recording's annotations (AASM terminology); "
    "indices are events per hour of total sleep time, counting events that begin in a sleep "
    "epoch. ODI counts desaturations of at least 3 %. PLMI follows the AASM periodic limb "
    "movement rules (0.5-10 s, 5-90 s apart, series of 4 or more). SpO₂ values outside "
    "50-100 % are treated as artefact. Spectrogram: multitaper power spectral density per "
    "30-s epoch of the central EEG derivation, 0.5-25 Hz. Severity of sleep apnea per AASM: "
    "AHI < 5/h normal, 5-15 mild, 15-30 moderate, ≥ 30 severe."
)

DISCLAIMER = (
    "Computer-generated summary; the scoring and this report must be reviewed and "
    "interpreted by a qualified sleep physician."
)

_TYPE_WORDS = {
    "EEG": "EEG", "EOG": "EOG", "EMG": "EMG", "ECG": "ECG", "AIRFLOW": "airflow",
    "THORACIC": "thoracic effort", "ABDOMINAL": "abdominal effort", "SPO2": "SpO₂",
    "POSITION": "body position", "OTHER": "other",
}


def fmt(value: float | None, decimals: int = 1) -> str:
    """Format a number with ``decimals`` digits; ``None``/NaN become :data:`DASH`."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:.{decimals}f}"


def fmt_duration(seconds: float) -> str:
    """``7 h 32 min`` (or ``45 min`` / ``30 s``)."""
    total_min = int(round(seconds / 60.0))
    if seconds < 60:
        return f"{seconds:.0f} s"
    h, m = divmod(total_min, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def clock(start: datetime, seconds: float) -> str:
    """Clock time ``HH:MM:SS`` of ``seconds`` after ``start``."""
    return (start + timedelta(seconds=seconds)).strftime("%H:%M:%S")


def channel_summary(channels: Sequence[ChannelRow]) -> str:
    """``15 channels: 4 EEG, 2 EOG, 3 EMG, ECG, airflow, ...``."""
    counts = Counter(c.type for c in channels)
    parts = [
        f"{counts[t]} {w}" if counts[t] > 1 else w for t, w in _TYPE_WORDS.items() if counts[t]
    ]
    return f"{len(channels)} channels: " + ", ".join(parts)


def recording_rows(data: ReportData) -> list[tuple[str, str]]:
    """The patient/recording block, as ``(label, value)`` pairs."""
    r = data.recording
    return [
        ("Patient ID", r.patient or "not recorded (anonymised)"),
        ("Recording", r.file),
        ("Study date", r.start.strftime("%d %b %Y")),
        ("Recording start", r.start.strftime("%H:%M:%S")),
        ("Recording end", r.end.strftime("%H:%M:%S")),
        ("Duration", fmt_duration(r.duration_s)),
        ("Montage", channel_summary(r.channels)),
        ("Staging", data.staging_label),
        ("Annotations", f"{r.n_annotations} (stages and events)"),
        ("Report", f"{data.generated_at:%d %b %Y %H:%M}, {data.software}"),
    ]


def summary_rows(data: ReportData) -> list[tuple[str, str, str, str]]:
    """Key findings: ``(key, measure, value with unit, comment)``."""
    s, ix = data.stats, data.indices
    rows = [
        ("TST", "Total sleep time", f"{fmt(s.get('TST'))} min", ""),
        ("SE", "Sleep efficiency", f"{fmt(s.get('SE'))} %", ""),
        ("AHI", "Apnea-hypopnea index", f"{fmt(ix.get('AHI'))} /h",
         f"{data.severity} (AASM)"),
        ("ODI", "Oxygen desaturation index (3 %)", f"{fmt(ix.get('ODI'))} /h", ""),
    ]
    if data.oximetry is not None:
        o = data.oximetry
        rows.append(("SpO2_min", "Lowest SpO₂ in sleep", f"{fmt(o.min_pct, 0)} %",
                     f"mean {fmt(o.mean_pct)} %, {fmt(o.t90_min)} min < 90 %"))
    if data.heart is not None:
        h = data.heart
        rows.append(("HR", "Mean heart rate in sleep", f"{fmt(h.mean_sleep_bpm, 0)} bpm",
                     f"30-s means {fmt(h.min_sleep_bpm, 0)}-{fmt(h.max_sleep_bpm, 0)} bpm"))
    rows += [
        ("ArI", "Arousal index", f"{fmt(ix.get('ArI'))} /h", ""),
        ("PLMI", "Periodic limb movement index", f"{fmt(ix.get('PLMI'))} /h",
         "elevated (> 15/h)" if ix.get("PLMI", 0.0) > 15 else ""),
    ]
    return rows


def findings_sentence(data: ReportData) -> str:
    """One line of automated findings for the summary."""
    if not data.stats:
        return "The recording is not staged; sleep and event indices cannot be computed."
    s, ix = data.stats, data.indices
    ahi = ix.get("AHI", math.nan)
    words = {
        "normal": "no sleep apnea (AHI < 5/h)",
        "mild": "mild sleep apnea",
        "moderate": "moderate sleep apnea",
        "severe": "severe sleep apnea",
        "not assessable": "sleep apnea not assessable (no sleep)",
    }
    text = (
        f"Total sleep time {fmt_duration(60 * s['TST'])} with a sleep efficiency of "
        f"{fmt(s['SE'], 0)} %. AHI {fmt(ahi)}/h: {words[data.severity]}"
    )
    apneas = {k: _count(data, k) for k in ("OAI", "CAI", "MAI")}
    n_apneas = sum(apneas.values())
    if math.isfinite(ahi) and ahi >= 5 and n_apneas:
        text += (f"; of {n_apneas} apneas, {apneas['OAI']} obstructive, {apneas['CAI']} "
                 f"central and {apneas['MAI']} mixed")
    if not data.events_scored:
        text += " (no events are scored in this recording)"
    text += "."
    if data.oximetry is not None:
        text += f" Lowest SpO₂ {fmt(data.oximetry.min_pct, 0)} %."
    return text


def _count(data: ReportData, key: str) -> int:
    """Events of the event-table row ``key`` (0 when absent)."""
    return next((e.count or 0 for e in data.event_rows if e.key == key), 0)


def stage_table(data: ReportData) -> list[tuple[str, str, str, str, str]]:
    """``(key, stage, minutes, % of TST, latency)`` rows."""
    names = {"W": "Wake", "N1": "N1", "N2": "N2", "N3": "N3", "REM": "REM"}
    return [
        (stage, names[stage], fmt(minutes), fmt(pct) if stage != "W" else DASH,
         fmt(lat) if stage != "W" else DASH)
        for stage, minutes, pct, lat in data.stage_rows
    ]


def caption_rows(data: ReportData, source: str, level: str) -> list[ReportCaption]:
    """Captions of one source and level, by onset."""
    rows = [c for c in data.captions if c.source == source and c.caption.level == level]
    return sorted(rows, key=lambda c: c.caption.onset_s)


def caption_span(data: ReportData, c: ReportCaption) -> str:
    """``22:38:00-22:43:00`` for a caption."""
    start = data.recording.start
    return f"{clock(start, c.caption.onset_s)[:5]}–" + clock(
        start, c.caption.onset_s + c.caption.duration_s
    )[:5]


def oximetry_rows(data: ReportData) -> list[tuple[str, str, float, str, str]]:
    """``(key, label, value, text, unit)`` of the oximetry table (empty without SpO₂)."""
    o = data.oximetry
    if o is None:
        return []
    return [("mean", "Mean SpO₂", o.mean_pct, fmt(o.mean_pct), "%"),
            ("min", "Lowest SpO₂", o.min_pct, fmt(o.min_pct, 0), "%"),
            ("t90", "Time with SpO₂ < 90 %", o.t90_min, fmt(o.t90_min), "min"),
            ("t90_pct", "Time with SpO₂ < 90 %, of sleep", o.t90_pct_tst, fmt(o.t90_pct_tst),
             "%")]


def heart_rows(data: ReportData) -> list[tuple[str, str, float, str, str]]:
    """``(key, label, value, text, unit)`` of the heart-rate table (empty without ECG)."""
    h = data.heart
    if h is None:
        return []
    return [("mean_sleep", "Mean heart rate in sleep", h.mean_sleep_bpm,
             fmt(h.mean_sleep_bpm, 0), "bpm"),
            ("min_sleep", "Lowest 30-s mean in sleep", h.min_sleep_bpm,
             fmt(h.min_sleep_bpm, 0), "bpm"),
            ("max_sleep", "Highest 30-s mean in sleep", h.max_sleep_bpm,
             fmt(h.max_sleep_bpm, 0), "bpm"),
            ("mean_wake", "Mean heart rate awake", h.mean_wake_bpm,
             fmt(h.mean_wake_bpm, 0), "bpm")]
