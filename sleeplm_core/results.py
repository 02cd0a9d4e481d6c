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


@dataclass(frozen=True)
class Caption:
    """Generated text about a span of the night."""

    onset_s: float
    duration_s: float
    level: str
    modality: str
    text: str


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
