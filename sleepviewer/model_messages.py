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
    stride_s: float = 10.0
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


Request = (
    EmbedNightRequest | SearchRequest | CaptionRequest | StageRequest | ReferenceCaptionsRequest
)


# -- responses ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbedNightResponse:
    """The night is embedded; searches and staging can run."""

    request_id: int
    path: str
    embeddings: NightEmbeddings
    seconds: float
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
