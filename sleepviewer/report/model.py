"""What a report says, as plain data: :class:`ReportData`, assembled once, drawn by PDF and HTML.

Qt-free. The report is built from the same objects the viewer shows (STYLE.md §9): the
:class:`~sleeplm_core.io.recording.Recording` with its annotations and scored hypnogram, and
the model's :class:`~sleeplm_core.results.StageResult`, :class:`~sleeplm_core.results.SearchResult`
and :class:`~sleeplm_core.results.Caption` objects. Night statistics come from
:meth:`Hypnogram.sleep_statistics`, event indices from :func:`event_indices`, reference captions
from :func:`sleeplm_core.captions.pipeline.caption_night`; nothing is recomputed another way.

Main functions
--------------
=======================  ==============================================================
``build_report_data``    Recording (+ optional results) -> :class:`ReportData`
``ahi_severity``         AASM severity word of an AHI (normal, mild, moderate, severe)
=======================  ==============================================================
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

import sleeplm_core
from sleeplm_core.captions.levels import severity as _caption_severity
from sleeplm_core.captions.pipeline import NightCaptions, caption_night, epoch_mask
from sleeplm_core.eval.metrics import cohen_kappa
from sleeplm_core.io import labels as L
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.channels import CANONICAL_SF
from sleeplm_core.io.hypnogram import Hypnogram
from sleeplm_core.io.indices import event_indices
from sleeplm_core.results import Caption, SearchResult, Segment, StageResult
from sleeplm_core.spectral import FMAX_HZ, FMIN_HZ
from sleeplm_core.stages import EPOCH_S, SLEEP_STAGES
from sleepviewer.downsample import peak_decimate
from sleepviewer.montage_views import montage_first

__all__ = [
    "ChannelRow",
    "EventRow",
    "EventTrack",
    "HeartRateSummary",
    "HypnogramData",
    "OximetrySummary",
    "QueryMatch",
    "QueryReport",
    "RecordingInfo",
    "ReportCaption",
    "ReportData",
    "Spectrogram",
    "StatRow",
    "Thumbnail",
    "Trace",
    "ahi_severity",
    "build_report_data",
]

REPORT_TITLE = "Polysomnography report"
SPEC_FMIN_HZ = FMIN_HZ  # the viewer's band (sleeplm_core.spectral)
SPEC_FMAX_HZ = FMAX_HZ
MAX_MATCHES = 6
"""Matched segments shown per query (best first)."""
THUMB_POINTS = 300
"""Peak bins per thumbnail trace (enough for ~60 mm at 300 dpi)."""
SPO2_BIN_S = 4.0
"""Bin of the SpO2 trend in the events figure."""

StageSource = Literal["scored", "model"]


# -- data --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelRow:
    """One channel of the recording: name, type, sampling rate (Hz) and unit."""

    name: str
    type: str
    sf: float
    unit: str


@dataclass(frozen=True)
class RecordingInfo:
    """The recording block of the report."""

    file: str
    path: str
    start: datetime
    duration_s: float
    channels: tuple[ChannelRow, ...]
    patient: str | None = None
    n_annotations: int = 0

    @property
    def end(self) -> datetime:
        """Clock time of the end of the recording."""
        return self.start + timedelta(seconds=self.duration_s)


@dataclass(frozen=True)
class StatRow:
    """One night statistic: ``key`` of :meth:`Hypnogram.sleep_statistics`, value in ``unit``."""

    key: str
    label: str
    value: float
    unit: str


@dataclass(frozen=True)
class EventRow:
    """One line of the event table.

    ``key`` is the :func:`event_indices` key (AHI, OAI, ...); ``count`` are the events during
    sleep (``index * TST_h``), ``index`` events per hour of sleep.
    """

    key: str
    label: str
    count: int | None
    index: float
    group: str
    note: str = ""


@dataclass(frozen=True)
class OximetrySummary:
    """SpO2 during sleep, from the SpO2 channel (values outside 50-100 % are artefact)."""

    channel: str
    mean_pct: float
    min_pct: float
    t90_min: float
    t90_pct_tst: float


@dataclass(frozen=True)
class HeartRateSummary:
    """Heart rate (bpm) from the ECG, as 30-s epoch means (the caption features)."""

    mean_sleep_bpm: float
    min_sleep_bpm: float
    max_sleep_bpm: float
    mean_wake_bpm: float
    n_epochs: int


@dataclass(frozen=True)
class HypnogramData:
    """Stages per epoch for the hypnogram figure."""

    stages: tuple[str, ...]
    epoch_s: float
    source: StageSource
    label: str


@dataclass(frozen=True)
class Spectrogram:
    """Per-epoch multitaper spectrogram: ``psd_db`` float32 (n_epochs, n_freqs), dB re µV²/Hz."""

    channel: str
    freqs: np.ndarray
    psd_db: np.ndarray
    epoch_s: float


@dataclass(frozen=True)
class EventTrack:
    """One row of the events timeline: intervals ``(onset_s, duration_s)`` of some labels."""

    name: str
    labels: tuple[str, ...]
    intervals: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Trace:
    """A drawn trace: times (s from the recording start) and values, float arrays of one size."""

    name: str
    unit: str
    t: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Thumbnail:
    """A few channels around a matched segment; ``[start_s, stop_s)`` is the view."""

    start_s: float
    stop_s: float
    segment_onset_s: float
    segment_duration_s: float
    traces: tuple[Trace, ...]


@dataclass(frozen=True)
class QueryMatch:
    """A matched segment, with the stage it fell in and its thumbnail."""

    segment: Segment
    stage: str | None
    thumbnail: Thumbnail | None


@dataclass(frozen=True)
class QueryReport:
    """A free-text query and its best matches."""

    query: str
    threshold: float
    matches: tuple[QueryMatch, ...]
    n_segments: int
    best_scores: tuple[float, ...] = ()


@dataclass(frozen=True)
class ReportCaption:
    """A caption and where it came from: ``"reference"`` (scoring + signal) or ``"model"``."""

    source: Literal["reference", "model"]
    caption: Caption


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows. Build it with :func:`build_report_data`.

    Attributes
    ----------
    stats : dict of str to float
        :meth:`Hypnogram.sleep_statistics` of the staging the report uses (empty when unstaged).
    indices : dict of str to float
        :func:`event_indices` (empty when unstaged).
    stat_rows, stage_rows : tuple of StatRow
        The sleep-time and sleep-stage tables (views of ``stats``).
    event_rows : tuple of EventRow
        The event table (views of ``indices`` and the REM/NREM split).
    """

    title: str
    generated_at: datetime
    software: str
    recording: RecordingInfo
    staging: StageSource | None
    staging_label: str
    stats: dict[str, float]
    indices: dict[str, float]
    stat_rows: tuple[StatRow, ...]
    stage_rows: tuple[tuple[str, float, float, float], ...]
    event_rows: tuple[EventRow, ...]
    severity: str
    oximetry: OximetrySummary | None
    hypnograms: tuple[HypnogramData, ...]
    agreement: tuple[float, float] | None
    spectrogram: Spectrogram | None
    event_tracks: tuple[EventTrack, ...]
    spo2: Trace | None
    captions: tuple[ReportCaption, ...]
    queries: tuple[QueryReport, ...]
    heart: HeartRateSummary | None = None
    events_scored: bool = True
    notes: tuple[str, ...] = field(default=())

    @property
    def ahi(self) -> float:
        """The apnea-hypopnea index (NaN when unstaged)."""
        return self.indices.get("AHI", math.nan)


# -- small helpers -----------------------------------------------------------------------------
def ahi_severity(ahi: float) -> str:
    """Return the AASM severity word of an apnea-hypopnea index.

    ``normal`` (< 5/h), ``mild`` (5-15), ``moderate`` (15-30), ``severe`` (>= 30), or
    ``not assessable`` (NaN: no sleep). The thresholds are those of the night captions
    (:func:`sleeplm_core.captions.levels.severity`).
    """
    if not math.isfinite(ahi):
        return "not assessable"
    words = {
        "no sleep apnea": "normal",
        "mild sleep apnea": "mild",
        "moderate sleep apnea": "moderate",
        "severe sleep apnea": "severe",
    }
    return words[_caption_severity(ahi)]


_STAT_ROWS: tuple[tuple[str, str, str], ...] = (
    ("TIB", "Time in bed (TIB)", "min"),
    ("SPT", "Sleep period time (SPT)", "min"),
    ("TST", "Total sleep time (TST)", "min"),
    ("SE", "Sleep efficiency (TST/TIB)", "%"),
    ("SOL", "Sleep onset latency", "min"),
    ("Lat_N2_SO", "N2 latency (from sleep onset)", "min"),
    ("Lat_REM_SO", "REM latency (from sleep onset)", "min"),
    ("WASO", "Wake after sleep onset (WASO)", "min"),
)

# (key, label, group, labels counted) -- the counted labels only document the row.
_EVENT_ROWS: tuple[tuple[str, str, str], ...] = (
    ("OAI", "Obstructive apneas", "Respiratory"),
    ("CAI", "Central apneas", "Respiratory"),
    ("MAI", "Mixed apneas", "Respiratory"),
    ("HI", "Hypopneas", "Respiratory"),
    ("AI", "Apneas, all types", "Respiratory"),
    ("AHI", "Apneas + hypopneas (AHI)", "Respiratory"),
    ("RDI", "AHI events + RERAs (RDI)", "Respiratory"),
    ("ODI", "Desaturations ≥ 3 % (ODI)", "Oximetry"),
    ("ArI", "Arousals (arousal index)", "Arousals"),
    ("PLMI", "Periodic limb movements (PLMI)", "Limb movements"),
)

_TRACKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Obstr./mixed", (L.OBSTRUCTIVE_APNEA, L.MIXED_APNEA)),
    ("Central apnea", (L.CENTRAL_APNEA,)),
    ("Hypopnea", (L.HYPOPNEA, L.RERA)),
    ("Desaturation", (L.DESATURATION,)),
    ("Arousal", (L.AROUSAL,)),
    ("Limb movement", (L.LIMB_MOVEMENT,)),
)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _only(hyp: Hypnogram, keep: Sequence[str]) -> Hypnogram:
    """The hypnogram with sleep epochs outside ``keep`` turned to wake (for REM/NREM indices)."""
    stages = np.where(np.isin(hyp.stages, keep) | ~hyp.is_sleep(), hyp.stages, "W")
    return Hypnogram(list(stages), epoch_s=hyp.epoch_s, start_s=hyp.start_s)


def _patient(recording: Any) -> str | None:
    raw = getattr(recording, "raw", None)
    info = getattr(raw, "info", None)
    subject = info.get("subject_info") if info is not None else None
    his_id = subject.get("his_id") if subject else None
    return None if his_id in (None, "", "X") else str(his_id)


# -- assembly ----------------------------------------------------------------------------------
def build_report_data(
    recording: Any,
    *,
    stage_result: StageResult | None = None,
    searches: Iterable[SearchResult] = (),
    captions: Iterable[Caption] = (),
    annotations: Iterable[Annotation] | None = None,
    reference_captions: bool = True,
    max_matches: int = MAX_MATCHES,
    generated_at: datetime | None = None,
) -> ReportData:
    """Assemble a report from a recording and, optionally, the model's results.

    Parameters
    ----------
    recording : Recording
        An open recording (``path``, ``start``, ``duration_s``, ``channels``,
        ``annotations``, ``hypnogram``, ``window``; ``canonical`` for reference captions).
    stage_result : StageResult, optional
        The model's zero-shot staging. Used for the statistics when the recording is not
        scored; otherwise drawn beside the scored hypnogram with the agreement.
    searches : iterable of SearchResult
        Free-text queries and their matches.
    captions : iterable of Caption
        Captions generated by the model.
    annotations : iterable of Annotation, optional
        The annotations as edited in the viewer (its annotation store); by default the
        recording's own (file and sidecar). The scored hypnogram is built from them.
    reference_captions : bool
        Also write the reference captions (night and 5-min segments) from the scoring and
        the signals; needs a scored hypnogram.
    max_matches : int
        Matches shown per query.
    generated_at : datetime, optional
        Time stamp of the report (now by default).

    Returns
    -------
    ReportData
    """
    notes: list[str] = []
    if annotations is None:
        anns = list(dict.fromkeys(recording.annotations))  # file + sidecar may repeat events
        scored = recording.hypnogram
    else:
        anns = list(dict.fromkeys(annotations))
        scored = Hypnogram.from_annotations(anns, float(recording.duration_s))
    model_hyp = (
        Hypnogram(stage_result.stages(), epoch_s=EPOCH_S)
        if stage_result is not None and stage_result.epochs
        else None
    )
    hyp = scored if scored is not None else model_hyp
    staging: StageSource | None = (
        "scored" if scored is not None else "model" if model_hyp is not None else None
    )
    staging_label = {
        "scored": "Manual scoring (annotations), AASM",
        "model": f"SleepLM zero-shot staging ({stage_result.model})" if stage_result else "",
        None: "Not staged",
    }[staging]
    if hyp is None:
        notes.append("The recording is not staged: no sleep statistics or event indices.")
    events_scored = any(not a.is_stage for a in anns)
    if hyp is not None and not events_scored:
        notes.append("No events (respiratory, arousals, limb movements) are scored in the "
                     "annotations: indices of 0 mean none were scored, not that none occurred.")
    stats = hyp.sleep_statistics() if hyp is not None else {}
    indices = event_indices(anns, hyp) if hyp is not None else {}
    hypnograms = []
    if scored is not None:
        hypnograms.append(HypnogramData(tuple(map(str, scored.stages)), scored.epoch_s,
                                        "scored", "Scored hypnogram"))
    if model_hyp is not None and stage_result is not None:
        hypnograms.append(HypnogramData(tuple(map(str, model_hyp.stages)), model_hyp.epoch_s,
                                        "model", f"Model hypnogram ({stage_result.model})"))
    night = _reference(recording, anns, scored, stats, indices) if reference_captions else None
    oximetry, spo2_trend = _spo2(recording, hyp, notes)
    return ReportData(
        title=REPORT_TITLE,
        generated_at=generated_at or datetime.now().replace(microsecond=0),
        software=f"SleepLM Viewer {sleeplm_core.__version__}",
        recording=_recording_info(recording, len(anns)),
        staging=staging,
        staging_label=staging_label,
        stats=stats,
        indices=indices,
        stat_rows=tuple(StatRow(k, lab, stats[k], u) for k, lab, u in _STAT_ROWS if k in stats),
        stage_rows=_stage_rows(stats),
        event_rows=_event_rows(anns, hyp, indices),
        severity=ahi_severity(indices.get("AHI", math.nan)),
        oximetry=oximetry,
        hypnograms=tuple(hypnograms),
        agreement=_agreement(scored, model_hyp),
        spectrogram=_spectrogram(recording, notes),
        event_tracks=_event_tracks(anns),
        spo2=spo2_trend,
        captions=_captions(night, captions, notes),
        heart=_heart(night, scored),
        events_scored=events_scored,
        queries=tuple(_query(recording, s, hyp, max_matches) for s in searches),
        notes=tuple(notes),
    )


def _recording_info(recording: Any, n_annotations: int) -> RecordingInfo:
    path = Path(recording.path)
    return RecordingInfo(
        file=path.name,
        path=str(path),
        start=recording.start,
        duration_s=float(recording.duration_s),
        channels=tuple(ChannelRow(c.name, c.type, float(c.sf), c.unit) for c in recording.channels),
        patient=_patient(recording),
        n_annotations=n_annotations,
    )


def _stage_rows(stats: dict[str, float]) -> tuple[tuple[str, float, float, float], ...]:
    """``(stage, minutes, % of TST, latency from sleep onset)`` for W, N1, N2, N3, REM."""
    if not stats:
        return ()
    rows = []
    for stage in ("W", *SLEEP_STAGES):
        pct = stats.get(f"%{stage}", math.nan)
        lat = stats.get(f"Lat_{stage}_SO", math.nan)
        rows.append((stage, stats[stage], pct, lat))
    return tuple(rows)


def _event_rows(
    anns: list[Annotation], hyp: Hypnogram | None, indices: dict[str, float]
) -> tuple[EventRow, ...]:
    if hyp is None or not indices:
        return ()
    tst_h = indices["TST_h"]

    def count(index: float) -> int | None:
        return int(round(index * tst_h)) if _finite(index) and tst_h > 0 else None

    rows = []
    for key, label, group in _EVENT_ROWS:
        note = ahi_severity(indices[key]) if key == "AHI" else ""
        rows.append(EventRow(key, label, count(indices[key]), indices[key], group, note))
    # AHI in REM and in NREM sleep: the same function on a hypnogram reduced to those epochs.
    for key, label, keep in (("AHI_REM", "AHI in REM sleep", ("REM",)),
                             ("AHI_NREM", "AHI in NREM sleep", ("N1", "N2", "N3"))):
        part = event_indices(anns, _only(hyp, keep))
        rows.append(EventRow(key, label, _count_in(part), part["AHI"], "Respiratory",
                             f"{part['TST_h'] * 60:.1f} min of sleep"))
    order = {g: i for i, g in enumerate(("Respiratory", "Oximetry", "Arousals", "Limb movements"))}
    return tuple(sorted(rows, key=lambda r: order[r.group]))


def _count_in(part: dict[str, float]) -> int | None:
    """Number of AHI events behind an index dict (``AHI * TST_h``), ``None`` without sleep."""
    ahi, tst_h = part["AHI"], part["TST_h"]
    return int(round(ahi * tst_h)) if _finite(ahi) and tst_h > 0 else None


def _channel_of_type(recording: Any, *types: str) -> str | None:
    for t in types:
        for c in montage_first(recording):
            if c.type == t:
                return str(c.name)
    return None


MIN_VALID_SPO2 = 0.5
"""Fraction of plausible (50-100 %) samples below which an SpO2 channel is not reported."""


def _spo2(
    recording: Any, hyp: Hypnogram | None, notes: list[str]
) -> tuple[OximetrySummary | None, Trace | None]:
    """The oximetry summary (sleep only) and the SpO2 trend, from one read of the channel."""
    name = _channel_of_type(recording, "SPO2")
    if name is None:
        return None, None
    w = recording.window(0.0, float(recording.duration_s), [name])
    x = np.asarray(w.data[0], np.float64)
    plausible = np.isfinite(x) & (x >= 50) & (x <= 100)
    if x.size == 0 or plausible.mean() < MIN_VALID_SPO2:
        notes.append(f"SpO₂ channel {name} holds too few plausible values (50-100 %): "
                     "oximetry is not reported.")
        return None, None
    return _oximetry(name, x, w.sf, plausible, hyp), _trend(name, x, w.sf, w.start_s, plausible)


def _oximetry(name: str, x: np.ndarray, sf: float, plausible: np.ndarray,
              hyp: Hypnogram | None) -> OximetrySummary | None:
    if hyp is None:
        return None
    stages = hyp.upsample_to_seconds(sf)[: x.size]
    asleep = np.zeros(x.size, bool)
    asleep[: stages.size] = np.isin(stages, SLEEP_STAGES)
    valid = asleep & plausible
    if not valid.any():
        return None
    below = np.count_nonzero(valid & (x < 90)) / sf / 60.0
    total = float(np.count_nonzero(valid)) / sf / 60.0
    return OximetrySummary(name, float(x[valid].mean()), float(x[valid].min()), float(below),
                           float(100.0 * below / total))


def _trend(name: str, x: np.ndarray, sf: float, start_s: float,
           plausible: np.ndarray) -> Trace | None:
    x = np.where(plausible, x, np.nan)
    per = max(1, int(round(SPO2_BIN_S * sf)))
    n = x.size // per
    if n == 0:
        return None
    with warnings.catch_warnings():  # an all-NaN bin (a gap) is NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        y = np.nanmin(x[: n * per].reshape(n, per), axis=1)
    t = start_s + (np.arange(n) + 0.5) * per / sf
    return Trace(name, "%", t, y.astype(np.float32))


def _central_eeg(recording: Any) -> str | None:
    """The EEG channel of the spectrogram: central first (C4, C3, Cz, as AASM), by name.

    The same preference as the viewer's spectrogram; without a central name, the channel the
    model's central slots use, else the first EEG channel.
    """
    eeg = [str(c.name) for c in montage_first(recording) if c.type == "EEG"]
    for key in ("C4", "C3", "CZ"):
        for name in eeg:
            if key in name.upper().replace(" ", ""):
                return name
    sources = getattr(recording, "canonical_sources", None)
    if sources is not None:
        from sleeplm_core.io.channels import CANONICAL_SLOTS

        slots = dict(zip(CANONICAL_SLOTS, sources, strict=True))
        for slot in ("C4_M1", "C3_M2"):
            if slots.get(slot):
                return str(slots[slot])
    return eeg[0] if eeg else None


def _spectrogram(recording: Any, notes: list[str]) -> Spectrogram | None:
    """Per-epoch multitaper PSD of the central EEG, in chunks (the viewer's: spectral.py)."""
    from sleeplm_core.spectral import epoch_psd_db

    name = _central_eeg(recording)
    n_epochs = int(recording.duration_s // EPOCH_S)
    if name is None or n_epochs < 1:
        notes.append("No EEG channel: no spectrogram.")
        return None
    rows: list[np.ndarray] = []
    freqs = np.zeros(0)
    chunk = 120  # epochs per read: one hour at a time keeps memory flat on long nights
    for first in range(0, n_epochs, chunk):
        stop = min(first + chunk, n_epochs)
        w = recording.window(first * EPOCH_S, stop * EPOCH_S, [name])
        per = int(round(EPOCH_S * w.sf))
        full = np.full((stop - first) * per, np.nan)
        data = np.asarray(w.data[0], np.float64)[: full.size]
        full[: data.size] = data
        freqs, db = epoch_psd_db(full.reshape(-1, per), w.sf, SPEC_FMIN_HZ, SPEC_FMAX_HZ)
        rows.append(db)
    return Spectrogram(name, np.asarray(freqs), np.concatenate(rows), EPOCH_S)


def _event_tracks(anns: list[Annotation]) -> tuple[EventTrack, ...]:
    out = []
    for name, labels in _TRACKS:
        iv = tuple((a.onset_s, a.duration_s) for a in anns if a.label in labels)
        out.append(EventTrack(name, labels, iv))
    return tuple(out)


def _agreement(scored: Hypnogram | None, model: Hypnogram | None) -> tuple[float, float] | None:
    """Percent agreement and Cohen's kappa of two hypnograms over their common scored epochs."""
    if scored is None or model is None:
        return None
    n = min(len(scored), len(model))
    a, b = scored.stages[:n], model.stages[:n]
    ok = np.isin(a, ("W", *SLEEP_STAGES)) & np.isin(b, ("W", *SLEEP_STAGES))
    a, b = a[ok], b[ok]
    if a.size == 0:
        return None
    po = float(np.mean(a == b))
    kappa = cohen_kappa(list(a), list(b), labels=("W", *SLEEP_STAGES))
    return 100.0 * po, kappa


# -- captions ----------------------------------------------------------------------------------
def _reference(
    recording: Any,
    anns: list[Annotation],
    scored: Hypnogram | None,
    stats: dict[str, float],
    indices: dict[str, float],
) -> NightCaptions | None:
    """The reference captions (and the epoch features behind them) of a scored night."""
    if scored is None or not hasattr(recording, "canonical"):
        return None
    n_epochs = min(int(recording.duration_s // EPOCH_S), len(scored))
    if n_epochs < 1:
        return None
    win = recording.canonical(0.0, n_epochs * EPOCH_S)
    spe = int(round(EPOCH_S * CANONICAL_SF))
    n_epochs = min(n_epochs, win.data.shape[1] // spe)
    data = win.data[:, : n_epochs * spe]
    stages = [str(s) for s in scored.stages[:n_epochs]]
    return caption_night(data, epoch_mask(data, win.mask), anns, stages, stats=stats,
                         indices=indices, seed=0)


def _captions(
    night: NightCaptions | None, generated: Iterable[Caption], notes: list[str]
) -> tuple[ReportCaption, ...]:
    # a report prints only the sentences checked against the signal (or with nothing to check)
    out = [ReportCaption("model", replace(c, text=c.checked_text(), checks=()))
           for c in generated if c.checked_text()]
    if night is None:
        return tuple(out)
    end_s = len(night.features) * EPOCH_S
    ref: list[ReportCaption] = []
    if night.night is not None:
        ref.append(ReportCaption("reference", Caption(0.0, end_s, "night", "night",
                                                      night.night.text)))
    seg_s = night.segment_epochs * EPOCH_S
    for k, c in enumerate(night.segments):
        onset = k * seg_s
        ref.append(ReportCaption("reference", Caption(
            onset, min(seg_s, end_s - onset), "segment", "segment", c.text)))
    if not ref:
        notes.append("No reference captions could be written.")
    return tuple(ref + out)


def _heart(night: NightCaptions | None, scored: Hypnogram | None) -> HeartRateSummary | None:
    """Heart rate in sleep from the epoch features the captions were written from."""
    if night is None or scored is None:
        return None
    sleep = [f["hr_bpm"] for f, st in zip(night.features, scored.stages, strict=False)
             if st in SLEEP_STAGES and "hr_bpm" in f]
    wake = [f["hr_bpm"] for f, st in zip(night.features, scored.stages, strict=False)
            if st == "W" and "hr_bpm" in f]
    if not sleep:
        return None
    return HeartRateSummary(float(np.mean(sleep)), float(np.min(sleep)), float(np.max(sleep)),
                            float(np.mean(wake)) if wake else math.nan, len(sleep))


# -- queries -----------------------------------------------------------------------------------
_THUMB_TYPES = {
    "EEG": ("EEG",), "EOG": ("EOG",), "EMG": ("EMG",), "ECG": ("ECG",),
    "AIRFLOW": ("AIRFLOW",), "THORACIC": ("THORACIC",), "ABDOMINAL": ("ABDOMINAL",),
    "SPO2": ("SPO2",), "brain": ("EEG", "EOG"), "heart": ("ECG",),
    "respiratory": ("AIRFLOW", "THORACIC", "SPO2"), "somatic": ("EMG",),
}
_DEFAULT_THUMB = ("EEG", "EOG", "AIRFLOW", "SPO2")


def _thumb_channels(recording: Any, channel_types: Sequence[str]) -> list[str]:
    wanted: list[str] = []
    for t in channel_types:
        wanted.extend(_THUMB_TYPES.get(t, (t.upper(),)))
    for t in _DEFAULT_THUMB:  # fill up to four rows with the usual PSG overview
        wanted.append(t)
    names: list[str] = []
    for t in dict.fromkeys(wanted):
        name = _central_eeg(recording) if t == "EEG" else _channel_of_type(recording, t)
        if name is not None and name not in names:
            names.append(name)
        if len(names) == 4:
            break
    return names


def _thumbnail(recording: Any, seg: Segment) -> Thumbnail | None:
    names = _thumb_channels(recording, seg.channel_types)
    if not names:
        return None
    pad = max(15.0, 0.5 * seg.duration_s)
    start = max(0.0, seg.onset_s - pad)
    stop = min(float(recording.duration_s), seg.onset_s + seg.duration_s + pad)
    if stop <= start:
        return None
    w = recording.window(start, stop, names)
    d = peak_decimate(np.asarray(w.data), w.sf, w.start_s, THUMB_POINTS)
    units = list(w.units)
    traces = tuple(
        Trace(n, units[k], np.asarray(d.t), np.asarray(d.y[k])) for k, n in enumerate(w.ch_names)
    )
    return Thumbnail(start, stop, seg.onset_s, seg.duration_s, traces)


def _query(
    recording: Any, search: SearchResult, hyp: Hypnogram | None, max_matches: int
) -> QueryReport:
    matches = tuple(
        QueryMatch(
            seg,
            hyp.stage_at(seg.onset_s + 0.5 * seg.duration_s) if hyp is not None else None,
            _thumbnail(recording, seg),
        )
        for seg in search.segments[:max_matches]
    )
    return QueryReport(search.query, search.threshold, matches, len(search.segments),
                       tuple(search.best_scores))
