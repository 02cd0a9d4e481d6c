"""The model off the GUI thread: frozen requests in, frozen responses out (STYLE.md §3).

The GUI builds a frozen request with a ``request_id`` from :class:`WorkerHost`; an
:class:`InferenceWorker` (a ``QObject`` moved to a ``QThread``) owns the loaded predictor and
its *own* recording of the same file, runs the request, and answers with a frozen response
wrapping :mod:`sleeplm_core.results` objects::

    host = WorkerHost()                        # starts the thread; the model loads lazily
    host.finished.connect(on_response)         # only the latest request of a kind arrives
    host.embed_night("night.edf")              # -> request id; progress(int, str) with an ETA
    host.search(parse_query("apnea stage:REM"), stages=..., start=rec.start)
    host.cancel()                              # interruption checked between chunks
    host.close()                               # on window close: stop, wait, disconnect

The messages live in :mod:`sleepviewer.model_messages` (re-exported here):

==========================  ============================  =====================================
request                     response                      needs
==========================  ============================  =====================================
EmbedNightRequest           EmbedNightResponse            opens the recording, loads the model
SearchRequest               SearchResponse                an embedded night
CaptionRequest              CaptionResponse               the model (``prompt`` for an answer)
StageRequest                StageResponse                 an embedded night
ReferenceCaptionsRequest    ReferenceCaptionsResponse     the recording only (no model)
FinetuneRequest             FinetuneResponse              a base checkpoint and scored files
==========================  ============================  =====================================

A fine-tune (:func:`run_finetune`) builds temporary shards from the scored recordings, trains
with :func:`sleeplm_core.train.loop.train` in the worker thread (progress and Cancel between
optimizer steps, ``jobProgress(FinetuneProgress)``) and writes a *new* folder;
:meth:`WorkerHost.set_model` swaps the checkpoint the predictor loads from, before the next
request.

Errors (a missing or mismatched checkpoint, a corrupt cache, out of memory: any
``SleepLMError`` or ``RuntimeError``, in fact any exception) come back as ``failed(one line)``
and never escape a slot. This is the only viewer module that may import torch or
:mod:`sleeplm_core.inference`, and it does so lazily, inside the default predictor factory,
so the viewer opens without loading torch.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from sleeplm_core.embedding_cache import cache_note
from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.channels import MODALITY_TYPES
from sleeplm_core.results import NightEmbeddings, SearchResult, Segment
from sleepviewer.finetune_job import run_finetune
from sleepviewer.model_messages import (
    CaptionRequest,
    CaptionResponse,
    EmbedNightRequest,
    EmbedNightResponse,
    Failure,
    FinetuneProgress,
    FinetuneRequest,
    FinetuneResponse,
    FinetuneSource,
    ReferenceCaptionsRequest,
    ReferenceCaptionsResponse,
    Request,
    SearchRequest,
    SearchResponse,
    StageRequest,
    StageResponse,
)
from sleepviewer.query import ParsedQuery, QueryError, apply_filters, parse_query
from sleepviewer.worker_errors import Cancelled, one_line
from sleepviewer.worker_support import EtaClock, RequestLedger, eta_text, weak_slot

PredictorFactory = Callable[[], Any]
"""``() -> Predictor``-like: ``embed_recording``, ``stage``, ``search``, ``caption``."""
Opener = Callable[[Path], Any]
"""``(path) -> Recording``-like, called in the worker thread."""

WORKER_NICE = 10
"""Nice value of the model's thread: the GUI thread (0) wins a contended core."""
MODALITY_OF_TYPE: dict[str, str] = {t: m for m, types in MODALITY_TYPES.items() for t in types}
"""The caption modality that describes a channel type (for the one-line result captions)."""

EXPRESS_KINDS: frozenset[str] = frozenset({"caption", "prompt", "reference"})
"""Quick requests the worker also answers between chunks of a long embedding."""


# -- helpers --------------------------------------------------------------------------------
def load_predictor(path: str | Path | None = None, device: str | None = None) -> PredictorFactory:
    """The default factory: the real ``Predictor`` (torch is imported only when it runs)."""

    def factory() -> Any:
        import torch

        from sleeplm_core.inference import Predictor
        from sleeplm_core.train.device import inference_threads

        # One core stays with the GUI thread, so that pages flip while a night embeds, and
        # the worker thread (and the threads it starts) yields the CPU to it: on Linux a
        # thread's nice value is its own, and raising it needs no privilege.
        torch.set_num_threads(inference_threads(reserve=1))
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        return Predictor.load(path, device)

    return factory


def open_recording(path: Path) -> Any:
    """The default opener: the project's one reader, in the worker thread."""
    from sleeplm_core.io.recording import Recording

    return Recording.open(path)


# -- the worker -----------------------------------------------------------------------------
class InferenceWorker(QObject):
    """Runs requests in its thread; owns the predictor, the recording and the embeddings.

    Parameters
    ----------
    predictor_factory : callable
        ``() -> Predictor``-like, called once, in the worker thread, on first need.
    opener : callable
        ``(path) -> Recording``-like, called in the worker thread (never shares the GUI's).
    ledger : RequestLedger
        Decides which requests are stale.
    express : queue.SimpleQueue or None
        A second copy of the quick requests (:data:`EXPRESS_KINDS`), which the worker
        answers between chunks of an embedding instead of after it; the copy that arrives
        through the event queue later is then skipped.

    Signals
    -------
    progress(int, str)
        Percent done and a line such as "Embedding night: 43% — about 20 s left".
    finished(object)
        A response dataclass.
    failed(str)
        A one-line message.
    requestFailed(object)
        The same failure as a :class:`Failure` (request id and kind).
    cancelled(int)
        A request stopped or skipped because it was cancelled or superseded.
    """

    progress = pyqtSignal(int, str)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    requestFailed = pyqtSignal(object)
    cancelled = pyqtSignal(int)
    jobProgress = pyqtSignal(object)

    def __init__(
        self,
        predictor_factory: PredictorFactory,
        opener: Opener,
        ledger: RequestLedger,
        express: queue.SimpleQueue[Any] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._express: queue.SimpleQueue[Any] = express or queue.SimpleQueue()
        self._answered_early: set[int] = set()
        self._last_handled = 0  # the event queue delivers requests in id order
        self._in_express = False
        self._factory = predictor_factory
        self._opener = opener
        self._ledger = ledger
        self._predictor: Any = None
        self._load_error: SleepLMError | None = None
        self._recording: Any = None
        self._path: str | None = None
        self._emb: NightEmbeddings | None = None
        self._emb_path: str | None = None
        self._night: tuple[Any, Any] | None = None  # (canonical night, features) of _path
        self._stopped: set[int] = set()  # requests whose should_stop() said yes
        self._switch_lock = threading.Lock()
        self._next_factory: PredictorFactory | None = None

    def set_predictor_factory(self, factory: PredictorFactory) -> None:
        """Use ``factory`` from the next request on (any thread; the old model is dropped)."""
        with self._switch_lock:
            self._next_factory = factory

    def _apply_switch(self) -> None:
        with self._switch_lock:
            factory, self._next_factory = self._next_factory, None
        if factory is not None:  # the night's embeddings belong to the old model
            self._factory, self._predictor, self._load_error = factory, None, None
            self._emb = self._emb_path = None

    # -- the slot -----------------------------------------------------------------------
    @pyqtSlot(object)
    def handle(self, request: Any) -> None:
        """Run one request; every outcome is a signal, no exception escapes."""
        rid = request.request_id
        self._last_handled = max(self._last_handled, rid)
        if rid in self._answered_early:
            self._answered_early.discard(rid)
            return
        self._run(request)

    def _run(self, request: Any) -> None:
        rid = request.request_id
        self._apply_switch()
        if not self._ledger.is_current(request.kind, rid) or self._interrupted():
            self.cancelled.emit(rid)
            return
        try:
            response = self._dispatch(request)
        except Cancelled:
            self.cancelled.emit(rid)
        except Exception as exc:  # noqa: BLE001 - an escaping exception would abort Qt
            if rid in self._stopped or type(exc).__name__ == "InferenceCancelled":
                self.cancelled.emit(rid)
            else:
                message = one_line(exc)
                self.requestFailed.emit(Failure(rid, request.kind, message))
                self.failed.emit(message)
        else:
            self.finished.emit(response)
        finally:
            self._stopped.discard(rid)

    def _serve_express(self) -> None:
        """Between chunks of an embedding: answer the quick requests that wait for it."""
        if self._in_express:
            return
        self._in_express = True
        try:
            while True:
                try:
                    req = self._express.get_nowait()
                except queue.Empty:
                    break
                rid = req.request_id
                if rid <= self._last_handled or rid in self._answered_early:
                    continue  # the event queue got there first
                if getattr(req, "path", None) not in (None, self._path):
                    continue  # another file: it waits for its turn
                if not self._ledger.is_current(req.kind, rid):
                    continue  # stale: the event-queue copy reports it cancelled
                self._answered_early.add(rid)
                self._run(req)
        finally:
            self._in_express = False

    def close_recording(self) -> None:
        """Close the worker's recording (call after the thread stopped)."""
        rec, self._recording, self._path = self._recording, None, None
        self._emb = self._emb_path = None
        self._night = None
        if rec is not None and hasattr(rec, "close"):
            try:
                rec.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    # -- dispatch -------------------------------------------------------------------------
    def _dispatch(self, req: Any) -> Any:
        if isinstance(req, EmbedNightRequest):
            return self._embed(req)
        if isinstance(req, SearchRequest):
            return self._search(req)
        if isinstance(req, CaptionRequest):
            return self._caption(req)
        if isinstance(req, StageRequest):
            return self._stage(req)
        if isinstance(req, ReferenceCaptionsRequest):
            return self._reference(req)
        if isinstance(req, FinetuneRequest):
            return run_finetune(req, self.jobProgress.emit, self._should_stop(req))
        raise TypeError(f"unknown request {type(req).__name__}")

    def _should_stop(self, req: Any, express: bool = False) -> Callable[[], bool]:
        def should_stop() -> bool:
            stop = self._interrupted() or not self._ledger.is_current(req.kind, req.request_id)
            if stop:
                self._stopped.add(req.request_id)
            elif express:
                self._serve_express()
            return stop

        return should_stop

    def _check(self, req: Any) -> None:
        if self._should_stop(req)():
            raise Cancelled

    @staticmethod
    def _interrupted() -> bool:
        thread = QThread.currentThread()
        return thread is not None and thread.isInterruptionRequested()

    def _open(self, path: str) -> Any:
        if self._recording is None or self._path != path:
            self.close_recording()
            self._recording = self._opener(Path(path))
            self._path = path
        return self._recording

    def _require_recording(self) -> Any:
        if self._recording is None:
            raise SleepLMError(None, "no recording is open for the model yet")
        return self._recording

    def _require_embeddings(self) -> NightEmbeddings:
        if self._emb is None or self._emb_path != self._path:
            raise SleepLMError(self._path, "the night is not embedded yet: wait for the model")
        return self._emb

    def _model(self) -> Any:
        if self._load_error is not None:
            raise self._load_error  # a checkpoint that failed once is not retried
        if self._predictor is None:
            self.progress.emit(0, "Loading the model…")
            try:
                self._predictor = self._factory()
            except SleepLMError as exc:
                self._load_error = exc
                raise
        return self._predictor

    # -- handlers -------------------------------------------------------------------------
    def _embed(self, req: EmbedNightRequest) -> EmbedNightResponse:
        t0 = time.monotonic()
        rec = self._open(req.path)
        self._emb = None
        model = self._model()
        self._check(req)
        clock = EtaClock("Embedding night")
        weights = getattr(model, "weights_id", "")
        note = cache_note(req.path, model.model_id, req.stride_s, weights) if req.use_cache else ""

        def progress(done: int, total: int) -> None:
            self.progress.emit(*clock.update(done, total))

        emb = model.embed_recording(
            rec,
            stride_s=req.stride_s,
            use_cache=req.use_cache,
            progress=progress,
            should_stop=self._should_stop(req, express=True),
        )
        self._check(req)
        self._emb, self._emb_path = emb, req.path
        return EmbedNightResponse(req.request_id, req.path, emb, time.monotonic() - t0, note)

    def _search(self, req: SearchRequest) -> SearchResponse:
        emb = self._require_embeddings()
        model = self._model()
        if not req.query.text.strip():
            raise QueryError("type what to look for before the filters")
        # ask for more than wanted when filters will remove some
        top = req.top if req.query.filters.is_empty() else max(10 * req.top, 200)
        raw: SearchResult = model.search(emb, req.query.text, top=top, min_score=req.min_score)
        kept = apply_filters(
            raw.segments, req.query, req.stages, req.start, duration_s=req.duration_s
        )[: req.top]
        if req.caption_results and kept:
            kept = self._caption_segments(req, model, kept)
        result = replace(raw, segments=kept, best_scores=list(raw.best_scores))
        return SearchResponse(req.request_id, req.query, result, len(raw.segments))

    def _caption_segments(
        self, req: SearchRequest, model: Any, segments: Sequence[Segment]
    ) -> list[Segment]:
        rec = self._require_recording()
        clock = EtaClock("Describing matches")
        out: list[Segment] = []
        for i, s in enumerate(segments):
            self._check(req)
            modality = next(
                (MODALITY_OF_TYPE[t] for t in s.channel_types if t in MODALITY_OF_TYPE),
                "stage_event",
            )
            middle = s.onset_s + s.duration_s / 2
            caps = model.caption(rec, middle, middle + 1e-3, modalities=[modality])
            text = " ".join(caps[0].checked_text().split()) if caps else ""
            out.append(Segment(s.onset_s, s.duration_s, s.score, list(s.channel_types), text))
            self.progress.emit(*clock.update(i + 1, len(segments)))
        return out

    def _caption(self, req: CaptionRequest) -> CaptionResponse:
        rec = self._open(req.path) if req.path else self._require_recording()
        model = self._model()
        self._check(req)
        mods = list(req.modalities) if req.modalities else None
        caps = model.caption(rec, req.start_s, req.stop_s, modalities=mods, prompt=req.prompt)
        return CaptionResponse(req.request_id, req.start_s, req.stop_s, req.prompt, tuple(caps))

    def _stage(self, req: StageRequest) -> StageResponse:
        emb = self._require_embeddings()
        model = self._model()
        rec = self._require_recording()
        try:  # the channels of the embedded slots, each once (two slots may share one)
            used = rec.channels_used(emb.mask)
        except (AttributeError, TypeError):
            used = list(dict.fromkeys(rec.ch_names))
        return StageResponse(req.request_id, model.stage(emb, used))

    def _reference(self, req: ReferenceCaptionsRequest) -> ReferenceCaptionsResponse:
        from sleeplm_core.captions.features import night_features
        from sleeplm_core.captions.pipeline import caption_night, epoch_mask
        from sleeplm_core.io.hypnogram import Hypnogram
        from sleeplm_core.io.indices import event_indices

        rec = self._open(req.path) if req.path else self._require_recording()
        if self._night is None:  # the signal side only changes with the file: compute once
            self.progress.emit(0, "Writing the scored captions…")
            win = rec.canonical(0.0, float(rec.duration_s))
            self._check(req)
            self._night = (win, night_features(win.data, win.mask))
        win, feats = self._night
        self._check(req)
        anns = tuple(sorted(req.annotations, key=lambda a: (a.onset_s, a.label)))
        stats = indices = None
        stages = list(req.stages) if req.stages else None
        if stages is not None and any(s not in ("UNS", "ART") for s in stages):
            hyp = Hypnogram(stages)
            stats = hyp.sleep_statistics()
            indices = event_indices(anns, hyp)
        else:
            stages = None
        caps = caption_night(
            win.data, epoch_mask(win.data, win.mask), list(anns), stages,
            stats=stats, indices=indices, seed=0, features=feats,
        )
        self.progress.emit(100, "Scored captions ready")
        return ReferenceCaptionsResponse(req.request_id, caps, anns)


class WorkerHost(QObject):
    """Owns the worker thread; builds requests and forwards only the latest responses.

    Parameters
    ----------
    predictor_factory : callable or None
        ``() -> Predictor``-like (tests pass a fake); default :func:`load_predictor`.
    opener : callable or None
        ``(path) -> Recording``-like used in the worker; default :func:`open_recording`.
    parent : QObject or None
        Qt parent.

    Signals
    -------
    progress(int, str), finished(object), failed(str), requestFailed(object), cancelled(int)
        As :class:`InferenceWorker`'s, but ``finished`` and the failures only for the latest
        request of their kind.
    busyChanged(bool)
        Whether requests are pending.
    jobProgress(object)
        :class:`FinetuneProgress` of a running fine-tune.
    """

    progress = pyqtSignal(int, str)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    requestFailed = pyqtSignal(object)
    cancelled = pyqtSignal(int)
    busyChanged = pyqtSignal(bool)
    jobProgress = pyqtSignal(object)
    _submit = pyqtSignal(object)

    def __init__(
        self,
        predictor_factory: PredictorFactory | None = None,
        opener: Opener | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.ledger = RequestLedger()
        self._express: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: set[int] = set()
        self._closed = False
        self.embedded_path: str | None = None
        self.path: str | None = None  # the file of the latest embed_night()
        self.thread = QThread()
        self.thread.setObjectName("SleepLMInference")
        self.worker: InferenceWorker | None = InferenceWorker(
            predictor_factory or load_predictor(), opener or open_recording, self.ledger,
            self._express,
        )
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.handle)
        self.worker.progress.connect(self._on_worker_progress)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.requestFailed.connect(self._on_worker_requestFailed)
        self.worker.cancelled.connect(self._on_worker_cancelled)
        self.worker.jobProgress.connect(self._on_worker_jobProgress)
        self.thread.start(QThread.Priority.LowPriority)

    # -- requests ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether some request has not answered yet."""
        return bool(self._pending)

    @property
    def embedding_pending(self) -> bool:
        """Whether an embedding of the night is queued or running (and not cancelled)."""
        kind = EmbedNightRequest.kind
        rid = self.ledger.latest(kind)
        return rid is not None and rid in self._pending and self.ledger.is_current(kind, rid)

    @property
    def embedding_ready(self) -> bool:
        """Whether the latest night finished embedding."""
        return self.embedded_path is not None

    def submit(self, request: Any) -> int:
        """Send a request built with :meth:`next_id`; returns its id."""
        if self._closed:
            raise RuntimeError("the model worker is closed")
        if isinstance(request, EmbedNightRequest):
            self.embedded_path = None
        was_busy = self.busy
        self._pending.add(request.request_id)
        if request.kind in EXPRESS_KINDS:
            self._express.put(request)
        self._submit.emit(request)
        if not was_busy:
            self.busyChanged.emit(True)
        return int(request.request_id)

    def next_id(self, kind: str) -> int:
        """A new request id of ``kind`` (which makes older ones of that kind stale)."""
        return self.ledger.issue(kind)

    def embed_night(self, path: str | Path, stride_s: float = 15.0, use_cache: bool = True) -> int:
        """Open ``path`` in the worker and embed it."""
        rid = self.next_id(EmbedNightRequest.kind)
        self.path = str(path)
        return self.submit(EmbedNightRequest(rid, str(path), stride_s, use_cache))

    def search(
        self,
        query: ParsedQuery | str,
        *,
        stages: Sequence[str] | None = None,
        start: datetime | None = None,
        duration_s: float | None = None,
        top: int = 20,
        min_score: float | None = None,
        caption_results: bool = True,
    ) -> int:
        """Search the embedded night (``query`` parsed with :func:`parse_query` if text)."""
        parsed = parse_query(query) if isinstance(query, str) else query
        rid = self.next_id(SearchRequest.kind)
        st = tuple(str(s) for s in stages) if stages is not None else None
        return self.submit(
            SearchRequest(rid, parsed, st, start, duration_s, top, min_score, caption_results)
        )

    def caption(self, start_s: float, stop_s: float, prompt: str | None = None) -> int:
        """Generated captions of a span; with ``prompt``, the model's answer to it."""
        rid = self.next_id("prompt" if prompt else "caption")
        return self.submit(
            CaptionRequest(rid, float(start_s), float(stop_s), prompt or None, None, self.path)
        )

    def stage(self) -> int:
        """The zero-shot hypnogram of the embedded night."""
        return self.submit(StageRequest(self.next_id(StageRequest.kind)))

    def reference_captions(
        self,
        annotations: Sequence[Annotation],
        stages: Sequence[str] | None,
        path: str | Path | None = None,
    ) -> int:
        """The scored captions of the night (no model needed).

        ``path`` (default: that of the latest :meth:`embed_night`) is opened if need be.
        """
        rid = self.next_id(ReferenceCaptionsRequest.kind)
        st = tuple(str(s) for s in stages) if stages is not None else None
        where = str(path) if path is not None else self.path
        return self.submit(ReferenceCaptionsRequest(rid, tuple(annotations), st, where))

    def finetune(
        self,
        base: str | Path,
        out_dir: str | Path,
        sources: Sequence[FinetuneSource],
        *,
        mode: str = "full",
        steps: int = 50,
        k: int = 5,
        checkpoint_every: int | None = None,
        batch_size: int | None = None,
        device: str | None = None,
    ) -> int:
        """Fine-tune ``base`` on ``sources`` into the new folder ``out_dir``.

        See :func:`run_finetune`; ``jobProgress`` reports it, ``cancel("finetune")`` stops it.
        """
        rid = self.next_id(FinetuneRequest.kind)
        return self.submit(FinetuneRequest(
            rid, str(base), str(out_dir), tuple(sources), mode, int(steps), int(k),
            checkpoint_every, batch_size, device,
        ))

    def set_model(self, path: str | Path | None, device: str | None = None) -> None:
        """Load the predictor from ``path`` (``None``: the bundled one) from the next request.

        The night's embedding belongs to the old model: embed the night again afterwards.
        """
        self.set_predictor_factory(load_predictor(path, device))

    def set_predictor_factory(self, factory: PredictorFactory) -> None:
        """Like :meth:`set_model` with any ``() -> Predictor`` factory (tests pass fakes)."""
        if self.worker is not None:
            self.worker.set_predictor_factory(factory)
        self.embedded_path = None

    def is_latest(self, response: Any) -> bool:
        """Whether ``response`` (or a :class:`Failure`) answers the latest request of its kind."""
        return self.ledger.is_current(response.kind, response.request_id)

    def cancel(self, kind: str | None = None) -> None:
        """Stop the running request at its next chunk and skip the queued ones.

        With ``kind`` ("search", "embed", ...), only requests of that kind.
        """
        if kind is None:
            self.ledger.cancel_all()
        else:
            self.ledger.issue(kind)

    def close(self, timeout_ms: int = 10_000) -> None:
        """Stop the thread (interrupt, quit, wait), disconnect everything, close the file."""
        if self._closed:
            return
        self._closed = True
        self.ledger.cancel_all()
        self.thread.requestInterruption()
        self.thread.quit()
        self.thread.wait(timeout_ms)
        worker, self.worker = self.worker, None
        if worker is not None:
            for sig in (worker.progress, worker.finished, worker.requestFailed, worker.cancelled,
                        worker.jobProgress):
                try:
                    sig.disconnect()
                except TypeError:  # nothing connected
                    pass
            worker.close_recording()
        for sig in (self._submit, self.progress, self.finished, self.failed,
                    self.requestFailed, self.cancelled, self.busyChanged, self.jobProgress):
            try:
                sig.disconnect()
            except TypeError:
                pass
        self._pending.clear()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._closed

    # -- slots (GUI thread) -----------------------------------------------------------------
    def _done(self, request_id: int) -> None:
        self._pending.discard(request_id)
        if not self._pending:
            self.busyChanged.emit(False)

    def _on_worker_progress(self, percent: int, text: str) -> None:
        if not self._closed:
            self.progress.emit(percent, text)

    def _on_worker_jobProgress(self, progress: FinetuneProgress) -> None:  # noqa: N802
        if not self._closed and self.ledger.is_current("finetune", progress.request_id):
            self.jobProgress.emit(progress)

    def _on_worker_finished(self, response: Any) -> None:
        self._done(response.request_id)
        if self._closed or not self.is_latest(response):
            return
        if isinstance(response, EmbedNightResponse):
            self.embedded_path = response.path
        self.finished.emit(response)

    def _on_worker_requestFailed(self, failure: Failure) -> None:  # noqa: N802
        self._done(failure.request_id)
        if self._closed or not self.is_latest(failure):
            return
        self.requestFailed.emit(failure)
        self.failed.emit(failure.message)

    def _on_worker_cancelled(self, request_id: int) -> None:
        self._done(request_id)
        if not self._closed:
            self.cancelled.emit(request_id)


__all__ = [
    "Request",
    "CaptionRequest",
    "CaptionResponse",
    "EmbedNightRequest",
    "EmbedNightResponse",
    "EtaClock",
    "Failure",
    "FinetuneProgress",
    "FinetuneRequest",
    "FinetuneResponse",
    "FinetuneSource",
    "InferenceWorker",
    "ReferenceCaptionsRequest",
    "ReferenceCaptionsResponse",
    "RequestLedger",
    "SearchRequest",
    "SearchResponse",
    "StageRequest",
    "StageResponse",
    "WorkerHost",
    "eta_text",
    "load_predictor",
    "one_line",
    "open_recording",
    "run_finetune",
    "weak_slot",
]

