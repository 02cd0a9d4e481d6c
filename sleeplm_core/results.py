"""What inference returns: plain frozen dataclasses of numbers and text (no tensors, no Qt).

The viewer shows these objects and the report is built from them (STYLE.md §9), so this module
imports neither torch nor Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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

    def stages(self) -> list[str]:
        """The predicted stage of each epoch, in order."""
        return [e.stage for e in self.epochs]


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
    note: str = ""
    """Why nothing was searched, when so ("no apnea" asks for an absence; a query far from
    anything the model knows)."""


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
    """

    onsets_s: np.ndarray
    window_s: float
    embeddings: np.ndarray
    mask: np.ndarray
    model: str

    @property
    def stride_s(self) -> float:
        """Seconds between window onsets."""
        return float(self.onsets_s[1] - self.onsets_s[0]) if len(self.onsets_s) > 1 else 30.0
