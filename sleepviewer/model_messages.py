"""The messages between the GUI and the model worker: frozen requests and responses.

Qt-free and torch-free. The GUI builds a request with an id from
:class:`sleepviewer.workers.WorkerHost`; the worker answers with a response that wraps
:mod:`sleeplm_core.results` objects, or a :class:`Failure`. ``kind`` groups requests that
supersede each other (a newer search makes an older one stale).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sleeplm_core.io.annotations import Annotation
from sleeplm_core.results import Caption, NightEmbeddings, SearchResult, StageResult
from sleepviewer.query import ParsedQuery


# -- requests -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbedNightRequest:
    """Open ``path`` in the worker and embed the whole night (cached in its HDF5 sidecar)."""

    request_id: int
    path: str
    stride_s: float = 15.0
    use_cache: bool = True
    kind: ClassVar[str] = "embed"


@dataclass(frozen=True)
class SearchRequest:
    """Search the embedded night for ``query.text`` and apply ``query.filters``.

    ``stages`` (the scored stage per epoch), ``start`` and ``duration_s`` are snapshots taken
    on the GUI thread for the filters; ``top`` is the number of segments wanted after them.
    """

    request_id: int
    query: ParsedQuery
    stages: tuple[str, ...] | None = None
    start: datetime | None = None
    duration_s: float | None = None
    top: int = 20
    min_score: float | None = None
    caption_results: bool = True
    kind: ClassVar[str] = "search"


@dataclass(frozen=True)
class CaptionRequest:
    """Generated captions of ``[start_s, stop_s)``; with ``prompt``, an answer to it."""

    request_id: int
    start_s: float
    stop_s: float
    prompt: str | None = None
    modalities: tuple[str, ...] | None = None
    path: str | None = None

    @property
    def kind(self) -> str:
        """Prompts and navigation captions do not supersede each other."""
        return "prompt" if self.prompt else "caption"


@dataclass(frozen=True)
class StageRequest:
    """Zero-shot stages of the embedded night."""

    request_id: int
    kind: ClassVar[str] = "stage"


@dataclass(frozen=True)
class ReferenceCaptionsRequest:
    """The scored (reference) captions of the night, from its annotations and hypnogram."""

    request_id: int
    annotations: tuple[Annotation, ...]
    stages: tuple[str, ...] | None = None
    path: str | None = None
    kind: ClassVar[str] = "reference"


AnnotationTuple = tuple[float, float, str, str | None]
"""``(onset_s, duration_s, label, channel)``: an annotation as plain values (stages included)."""


@dataclass(frozen=True)
class FinetuneSource:
    """One scored recording to fine-tune on.

    ``annotations`` (the viewer's scoring of the open file, stages included) replace the
    file's own; ``None`` reads the file's annotations plus ``sidecar``. The recording itself
    is only read.
    """

    path: str
    annotations: tuple[AnnotationTuple, ...] | None = None
    sidecar: str | None = None


@dataclass(frozen=True)
class FinetuneRequest:
    """Fine-tune ``base`` on ``sources`` into the new folder ``out_dir``.

    ``mode`` is ``"full"`` (continue training all trainable weights for ``steps`` steps,
    a checkpoint every ``checkpoint_every``) or ``"fewshot"`` (frozen model, a stage head
    fitted on ``k`` epochs per scored stage). ``out_dir`` must not exist yet.
    """

    request_id: int
    base: str
    out_dir: str
    sources: tuple[FinetuneSource, ...]
    mode: str = "full"
    steps: int = 50
    k: int = 5
    checkpoint_every: int | None = None
    batch_size: int | None = None
    device: str | None = None
    kind: ClassVar[str] = "finetune"


Request = (
    EmbedNightRequest | SearchRequest | CaptionRequest | StageRequest | ReferenceCaptionsRequest
    | FinetuneRequest
)


# -- responses ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbedNightResponse:
    """The night is embedded; searches and staging can run."""

    request_id: int
    path: str
    embeddings: NightEmbeddings
    seconds: float
    note: str = ""  # e.g. "the embedding cache … could not be read; rebuilt"
    kind: ClassVar[str] = "embed"


@dataclass(frozen=True)
class SearchResponse:
    """Segments that passed the threshold and the filters (``result.segments``, best first).

    ``n_found`` counts the segments before the filters, so the GUI can say how many the
    filters removed.
    """

    request_id: int
    query: ParsedQuery
    result: SearchResult
    n_found: int
    kind: ClassVar[str] = "search"


@dataclass(frozen=True)
class CaptionResponse:
    """Generated captions (one per epoch and modality)."""

    request_id: int
    start_s: float
    stop_s: float
    prompt: str | None
    captions: tuple[Caption, ...]

    @property
    def kind(self) -> str:
        """Same as the request's."""
        return "prompt" if self.prompt else "caption"


@dataclass(frozen=True)
class StageResponse:
    """The model's zero-shot hypnogram."""

    request_id: int
    result: StageResult
    kind: ClassVar[str] = "stage"


@dataclass(frozen=True)
class ReferenceCaptionsResponse:
    """Scored captions (``sleeplm_core.captions.pipeline.NightCaptions``) of the night.

    ``annotations`` is the list the captions' ``annotation:<index>`` fact sources index.
    """

    request_id: int
    captions: Any
    annotations: tuple[Annotation, ...]
    kind: ClassVar[str] = "reference"


@dataclass(frozen=True)
class Failure:
    """A request that failed, with its one-line message."""

    request_id: int
    kind: str
    message: str


@dataclass(frozen=True)
class FinetuneProgress:
    """Where a fine-tune is: ``phase`` ("shards", "train", "fewshot"), ``step`` of ``total``.

    ``loss`` is the last training loss (``None`` before the first step or while building
    shards); ``eta_s`` the estimated seconds left.
    """

    request_id: int
    phase: str
    step: int
    total: int
    loss: float | None = None
    eta_s: float | None = None


@dataclass(frozen=True)
class FinetuneResponse:
    """A finished fine-tune: the new checkpoint folder, its step and last metrics."""

    request_id: int
    out_dir: str
    step: int
    metrics: dict[str, float]
    seconds: float
    mode: str = "full"
    kind: ClassVar[str] = "finetune"
