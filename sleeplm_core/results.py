"""What inference returns: plain frozen dataclasses of numbers and text (no tensors, no Qt).

The viewer shows these objects and the report is built from them (STYLE.md §9), so this module
imports neither torch nor Qt. For notebooks they convert to the tools people use (pandas,
MNE and YASA are imported only by the method that needs them):

==================  ==============================================================
``to_dataframe``    a ``pandas.DataFrame``, one row per epoch / segment / caption
``to_mne``          ``mne.Annotations`` (``orig_time`` = the recording start)
``to_yasa``         stages only: a ``yasa.Hypnogram`` with the probabilities
``to_csv``          stages only: MNE-readable CSV (``mne.read_annotations``)
``to_nsrr_xml``     stages only: NSRR ``<PSGAnnotation>`` XML
``to_edf``          stages only: an annotation-only EDF+ file (plain stage labels)
==================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sleeplm_core.io.annotations import Annotation

EDF_DEFAULT_START = datetime(1985, 1, 1)
"""Start written to an EDF+ export when the recording's start is unknown (EDF's clipping date)."""


def _mne_annotations(
    onsets: list[float], durations: list[float], labels: list[str], start: datetime | None
) -> Any:
    import mne

    # MNE wants an aware UTC time; like MNE's EDF reader, take the clock time as UTC
    orig = None if start is None else start.replace(tzinfo=start.tzinfo or UTC)
    return mne.Annotations(onsets, durations, labels, orig_time=orig)


@dataclass(frozen=True)
class EpochStage:
    """Stage of one 30 s epoch (zero-shot, or from a few-shot head)."""

    epoch: int
    onset_s: float
    stage: str
    confidence: float
    proba: dict[str, float]


@dataclass(frozen=True)
class StageResult:
    """A night's predicted hypnogram with the channels the model could use.

    ``staged_by`` says what gave the stages: ``"prompts"`` (zero-shot, the text prompts) or
    ``"fewshot-prototype"`` / ``"fewshot-logistic"`` (a fitted few-shot head).
    """

    epochs: list[EpochStage]
    channels_used: list[str]
    model: str
    staged_by: str = "prompts"
    start: datetime | None = None
    """Clock time of the recording start, when known (used by the exports)."""

    def stages(self) -> list[str]:
        """The predicted stage of each epoch, in order."""
        return [e.stage for e in self.epochs]

    def to_annotations(self) -> list[Annotation]:
        """One stage annotation (``"Sleep stage N2"``, ...) per run of equal epochs."""
        from sleeplm_core.io.hypnogram import Hypnogram
        from sleeplm_core.stages import EPOCH_S

        if not self.epochs:
            return []
        first = self.epochs[0].onset_s
        return Hypnogram(self.stages(), epoch_s=EPOCH_S, start_s=first).to_annotations()

    def to_dataframe(self) -> Any:
        """``pandas.DataFrame``: epoch, onset_s, stage, confidence and ``p_<stage>`` columns."""
        import pandas as pd

        rows = [
            {"epoch": e.epoch, "onset_s": e.onset_s, "stage": e.stage,
             "confidence": e.confidence, **{f"p_{k}": v for k, v in e.proba.items()}}
            for e in self.epochs
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=None if rows else ["epoch", "onset_s", "stage"])

    def to_mne(self) -> Any:
        """``mne.Annotations``, one per run of equal stages, aligned to the recording start."""
        ann = self.to_annotations()
        return _mne_annotations(
            [a.onset_s for a in ann], [a.duration_s for a in ann], [a.label for a in ann],
            self.start,
        )  # fmt: skip

    def to_yasa(self) -> Any:
        """``yasa.Hypnogram`` (5 stages, 30 s) with the per-stage probabilities.

        Raises
        ------
        ImportError
            When YASA is not installed (``pip install yasa``).
        """
        try:
            import yasa
        except ImportError:
            raise ImportError("to_yasa needs YASA: pip install yasa") from None
        import pandas as pd

        names = {"W": "WAKE", "N1": "N1", "N2": "N2", "N3": "N3", "REM": "REM"}
        proba = pd.DataFrame([{names[k]: v for k, v in e.proba.items()} for e in self.epochs])
        return yasa.Hypnogram(
            [names[s] for s in self.stages()], n_stages=5, freq="30s", start=self.start,
            scorer=self.model, proba=proba if len(proba) else None,
        )  # fmt: skip

    def to_csv(self, path: str | PathLike[str]) -> None:
        """Write the stages as CSV that ``mne.read_annotations`` and our reader both read."""
        from sleeplm_core.io.annotations import write_csv

        write_csv(self.to_annotations(), path, start=self.start)

    def to_nsrr_xml(self, path: str | PathLike[str]) -> None:
        """Write the stages as NSRR ``<PSGAnnotation>`` XML."""
        from sleeplm_core.io.annotations import write_nsrr_xml

        write_nsrr_xml(self.to_annotations(), path)

    def to_edf(self, path: str | PathLike[str]) -> None:
        """Write the stages as an annotation-only EDF+ file (``EDF_DEFAULT_START`` if unknown)."""
        from sleeplm_core.io.annotations import write_edf_annotations

        start = self.start if self.start is not None else EDF_DEFAULT_START
        write_edf_annotations(self.to_annotations(), path, start=start)

    def save(self, path: str | PathLike[str]) -> None:
        """Write the stages in the format named by the suffix: ``.csv``, ``.xml`` or ``.edf``.

        Raises
        ------
        ValueError
            For another suffix.
        """
        from pathlib import Path

        suffix = Path(path).suffix.lower()
        writers = {".csv": self.to_csv, ".xml": self.to_nsrr_xml, ".edf": self.to_edf}
        if suffix not in writers:
            raise ValueError(f"cannot tell the format of {path}: use .csv, .xml or .edf")
        writers[suffix](path)


@dataclass(frozen=True)
class Segment:
    """A stretch of the night that matches a query."""

    onset_s: float
    duration_s: float
    score: float
    channel_types: list[str]
    caption: str = ""


@dataclass(frozen=True)
class SearchResult:
    """The answer to a free-text query.

    ``segments`` pass the match threshold, best first. ``best_scores`` are the highest window
    scores whether or not they passed, so that "nothing matched well" can show them.
    """

    query: str
    segments: list[Segment]
    threshold: float
    best_scores: list[float] = field(default_factory=list)
    start: datetime | None = None
    """Clock time of the recording start, when known (``to_mne``'s ``orig_time``)."""
    note: str = ""
    """Why nothing was searched, when so ("no apnea" asks for an absence; a query far from
    anything the model knows)."""

    def to_dataframe(self) -> Any:
        """``pandas.DataFrame``: onset_s, duration_s, score, channel_types, caption (best first)."""
        import pandas as pd

        cols = ["onset_s", "duration_s", "score", "channel_types", "caption"]
        rows = [[s.onset_s, s.duration_s, s.score, ",".join(s.channel_types), s.caption]
                for s in self.segments]  # fmt: skip
        return pd.DataFrame(rows, columns=cols)

    def to_mne(self) -> Any:
        """``mne.Annotations`` of the segments in time order, described by the query."""
        segs = sorted(self.segments, key=lambda s: s.onset_s)
        return _mne_annotations(
            [s.onset_s for s in segs], [s.duration_s for s in segs],
            [self.query] * len(segs), self.start,
        )  # fmt: skip


PRINTABLE_STATUSES = ("plain", "agrees")
"""Statuses of the sentences a report prints."""


@dataclass(frozen=True)
class SentenceCheck:
    """One generated sentence checked against its epoch's measurements.

    ``status`` is ``plain`` (nothing to check), ``agrees``, ``disagrees``, ``absent`` (speaks
    of a channel the recording lacks) or ``unchecked``; ``reason`` says why (see
    :mod:`sleeplm_core.grounding`).
    """

    sentence: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class Caption:
    """Generated text about a span of the night, with each sentence's check when checked."""

    onset_s: float
    duration_s: float
    level: str
    modality: str
    text: str
    checks: tuple[SentenceCheck, ...] = ()

    def checked_text(self) -> str:
        """The sentences a report may print: those that agree or state nothing to check."""
        if not self.checks:
            return self.text
        return " ".join(c.sentence for c in self.checks if c.status in PRINTABLE_STATUSES)


class Captions(list[Caption]):
    """A list of :class:`Caption` (what the notebook API's ``caption`` returns) that converts."""

    start: datetime | None = None

    def to_dataframe(self) -> Any:
        """``pandas.DataFrame``: onset_s, duration_s, level, modality, text."""
        import pandas as pd

        cols = ["onset_s", "duration_s", "level", "modality", "text"]
        return pd.DataFrame([[getattr(c, k) for k in cols] for c in self], columns=cols)

    def to_mne(self) -> Any:
        """``mne.Annotations`` described ``"<modality>: <text>"``."""
        return _mne_annotations(
            [c.onset_s for c in self], [c.duration_s for c in self],
            [f"{c.modality}: {c.text}" for c in self], self.start,
        )  # fmt: skip


@dataclass(frozen=True)
class NightEmbeddings:
    """Window embeddings of a whole night.

    Attributes
    ----------
    onsets_s : ndarray, float64 (n,)
        Window onsets in seconds from the recording start.
    window_s : float
        Window length (30 s).
    embeddings : ndarray, float32 (n, E)
        L2-normalised signal embeddings.
    mask : ndarray, bool (12,)
        The canonical slots the recording has.
    model : str
        The model id the embeddings were computed with.
    live_s : ndarray, bool (ceil(duration),) or None
        Per second of the night, whether it carries signal
        (:func:`sleeplm_core.signal_quality.live_seconds`); ``None``: unknown, all scored.
    """

    onsets_s: np.ndarray
    window_s: float
    embeddings: np.ndarray
    mask: np.ndarray
    model: str
    live_s: np.ndarray | None = None

    @property
    def stride_s(self) -> float:
        """Seconds between window onsets."""
        return float(self.onsets_s[1] - self.onsets_s[0]) if len(self.onsets_s) > 1 else 30.0
