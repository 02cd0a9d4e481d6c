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

import json
import os
import queue
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.results import NightEmbeddings, SearchResult, Segment
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
from sleepviewer.model_registry import checkpoint_steps, is_inside, write_status
from sleepviewer.query import ParsedQuery, QueryError, apply_filters, parse_query

PredictorFactory = Callable[[], Any]
"""``() -> Predictor``-like: ``embed_recording``, ``stage``, ``search``, ``caption``."""
Opener = Callable[[Path], Any]
"""``(path) -> Recording``-like, called in the worker thread."""

MODALITY_OF_TYPE: dict[str, str] = {
    "EEG": "brain",
    "EOG": "brain",
    "ECG": "heart",
    "AIRFLOW": "respiratory",
    "THORACIC": "respiratory",
    "ABDOMINAL": "respiratory",
    "SPO2": "respiratory",
    "EMG": "somatic",
    "POSITION": "somatic",
}
"""The caption modality that describes a channel type (for the one-line result captions)."""

MAX_MESSAGE = 240
EXPRESS_KINDS: frozenset[str] = frozenset({"caption", "prompt", "reference"})
"""Quick requests the worker also answers between chunks of a long embedding."""


# -- helpers --------------------------------------------------------------------------------
class RequestLedger:
    """Which request ids are still wanted; shared by the GUI and the worker thread (locked).

    A request is stale when a newer request of the same kind was issued, or when
    :meth:`cancel_all` was called after it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._latest: dict[str, int] = {}
        self._cancelled_upto = 0

    def issue(self, kind: str) -> int:
        """A new request id, which becomes the latest of ``kind``."""
        with self._lock:
            self._next += 1
            self._latest[kind] = self._next
            return self._next

    def cancel_all(self) -> None:
        """Make every request issued so far stale."""
        with self._lock:
            self._cancelled_upto = self._next

    def is_current(self, kind: str, request_id: int) -> bool:
        """Whether ``request_id`` is the latest of ``kind`` and not cancelled."""
        with self._lock:
            return request_id > self._cancelled_upto and self._latest.get(kind) == request_id


class EtaClock:
    """Percent done and an estimate of the time left, as one line of text.

    >>> clock = EtaClock("Embedding night", now=lambda: 10.0)
    >>> clock.start_time = 0.0
    >>> clock.update(43, 100)
    (43, 'Embedding night: 43% — about 15 s left')
    """

    def __init__(self, label: str, now: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self._now = now
        self.start_time = now()

    def update(self, done: int, total: int) -> tuple[int, str]:
        """``(percent, text)`` after ``done`` of ``total`` units of work."""
        total = max(int(total), 1)
        done = min(max(int(done), 0), total)
        percent = int(100 * done / total)
        text = f"{self.label}: {percent}%"
        elapsed = self._now() - self.start_time
        if 0 < done < total and elapsed > 0.2:
            text += f" — {eta_text(elapsed / done * (total - done))}"
        return percent, text


def eta_text(seconds: float) -> str:
    """``"about 20 s left"``, ``"about 3 min left"``, ``"a few seconds left"``."""
    if seconds < 8:
        return "a few seconds left"
    if seconds < 60:
        return f"about {int(5 * round(seconds / 5))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def one_line(exc: BaseException) -> str:
    """An exception as one line for the status bar (no traceback)."""
    if isinstance(exc, SleepLMError):
        text = exc.one_line()
    elif isinstance(exc, QueryError):
        text = " ".join(str(exc).split())
    elif isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        text = "out of memory: close other programs or run the model on the CPU"
    else:
        detail = " ".join(str(exc).split())
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def load_predictor(path: str | Path | None = None, device: str | None = None) -> PredictorFactory:
    """The default factory: the real ``Predictor`` (torch is imported only when it runs)."""

    def factory() -> Any:
        from sleeplm_core.inference import Predictor

        return Predictor.load(path, device)

    return factory


def open_recording(path: Path) -> Any:
    """The default opener: the project's one reader, in the worker thread."""
    from sleeplm_core.io.recording import Recording

    return Recording.open(path)


def weak_slot(method: Callable[..., Any]) -> Callable[..., None]:
    """Wrap a bound method so a connection does not keep its object alive (mne's idea).

    The returned callable does nothing once the object is gone (or its C++ side deleted).
    """
    ref = weakref.WeakMethod(method)  # type: ignore[arg-type]

    def slot(*args: Any) -> None:
        bound = ref()
        if bound is None:
            return
        try:
            bound(*args)
        except RuntimeError as exc:  # "wrapped C/C++ object ... has been deleted"
            if "has been deleted" not in str(exc):
                raise

    return slot


class _Cancelled(Exception):
    """Raised by the worker's own checks between steps."""


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
        except _Cancelled:
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
            raise _Cancelled

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
        return EmbedNightResponse(req.request_id, req.path, emb, time.monotonic() - t0)

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
        result = SearchResult(raw.query, kept, raw.threshold, list(raw.best_scores))
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
            text = " ".join(caps[0].text.split()) if caps else ""
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
        try:
            used = [s for s in rec.canonical_sources if s is not None]
        except (AttributeError, TypeError):
            used = list(rec.ch_names)
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


# -- fine-tuning (worker thread) --------------------------------------------------------------
Report = Callable[[FinetuneProgress], None]


class _Rescored:
    """A recording seen with the viewer's scoring instead of the file's (read-only view)."""

    def __init__(self, rec: Any, annotations: Sequence[tuple[float, float, str, str | None]]):
        from sleeplm_core.io.annotations import Annotations

        self._rec = rec
        self.annotations = Annotations(Annotation(*a) for a in annotations)

    @property
    def hypnogram(self) -> Any:
        from sleeplm_core.io.hypnogram import Hypnogram

        return Hypnogram.from_annotations(self.annotations, self._rec.duration_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rec, name)


def build_finetune_shards(
    rid: int, sources: Sequence[FinetuneSource], out: Path, report: Report,
    should_stop: Callable[[], bool],
) -> int:
    """One shard per source in ``out`` (the user's files are only read); total epochs."""
    from sleeplm_core.data.shards import write_shard
    from sleeplm_core.io.recording import Recording

    n = 0
    for i, src in enumerate(sources):
        if should_stop():
            raise _Cancelled
        report(FinetuneProgress(rid, "shards", i, len(sources)))
        sidecar = src.sidecar if src.annotations is None else None
        rec = Recording.open(src.path, annotations=sidecar)
        try:
            view = rec if src.annotations is None else _Rescored(rec, src.annotations)
            record_id = f"{i:03d}-{Path(src.path).stem}"
            n += write_shard(view, out / f"{record_id}.h5", record_id=record_id,  # type: ignore[arg-type]
                             source=str(src.path), annotation_file=str(sidecar or ""))
        finally:
            rec.close()
    report(FinetuneProgress(rid, "shards", len(sources), len(sources)))
    return n


def run_finetune(
    req: FinetuneRequest, report: Report, should_stop: Callable[[], bool]
) -> FinetuneResponse:
    """Fine-tune ``req.base`` on ``req.sources`` into the new folder ``req.out_dir``.

    Runs in the calling thread. ``should_stop()`` is asked between optimizer steps (and
    between shards and embedding chunks). When the run stops early (cancelled, out of
    memory, any error) the folder keeps its last complete checkpoint with a ``finetune.json``
    that says so, or is removed when there is none; the exception is re-raised.
    """
    from sleeplm_core.train import checkpoint as ckpt

    out = Path(req.out_dir)
    if out.exists():
        raise SleepLMError(out, "the new model folder exists already")
    base_dir, base_step = ckpt.resolve(req.base)
    if is_inside(out, base_dir) or is_inside(base_dir, out):
        raise SleepLMError(out, "a fine-tune never writes into its base model's folder")
    base_meta = ckpt.load_meta(base_dir / f"meta_{base_step:06d}.json")
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="sleeplm-finetune-"))
    try:
        n_epochs = build_finetune_shards(req.request_id, req.sources, tmp, report, should_stop)
        info = {
            "mode": req.mode,
            "base_model": str(base_meta.get("config", {}).get("name", "sleeplm")),
            "base_checkpoint": f"{base_dir}/meta_{base_step:06d}.json",
            "recordings": [s.path for s in req.sources],
            "viewer_scoring": [s.annotations is not None for s in req.sources],
            "n_epochs": n_epochs,
        }
        name = f"{info['base_model']}+{out.name}"  # a new cache key for its embeddings
        if req.mode == "fewshot":
            return _fewshot(req, base_dir, base_step, base_meta, tmp, info, name, report,
                            should_stop, t0)
        return _full(req, base_dir, base_step, base_meta, tmp, info, name, n_epochs, report,
                     should_stop, t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _last_loss(out: Path) -> float | None:
    try:
        with open(out / "metrics.jsonl", "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 4096))
            last = fh.read().splitlines()[-1]
        return float(json.loads(last)["loss"])
    except (OSError, IndexError, KeyError, ValueError, TypeError):
        return None


def _full(
    req: FinetuneRequest, base_dir: Path, base_step: int, base_meta: dict[str, Any], shards: Path,
    info: dict[str, Any], name: str, n_epochs: int, report: Report,
    should_stop: Callable[[], bool], t0: float,
) -> FinetuneResponse:
    import dataclasses

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from sleeplm_core.train.checkpoint import load_model
    from sleeplm_core.train.loop import TrainRun, train

    out, rid, total = Path(req.out_dir), req.request_id, max(1, int(req.steps))
    model, _ = load_model(base_dir, "cpu")  # checks the base; its config, renamed, trains on
    cfg = model.cfg
    del model
    cfg = dataclasses.replace(cfg, name=name, train=dataclasses.replace(cfg.train, num_workers=0))
    batch = max(2, min(req.batch_size or cfg.train.batch_size, n_epochs))
    me = threading.get_ident()
    done = [0]
    clock = [0.0]

    def before_step(*_args: Any) -> None:  # every optimizer step of this thread
        if threading.get_ident() != me:
            return
        if should_stop():
            raise _Cancelled
        if done[0] == 0:
            clock[0] = time.monotonic()
        else:
            eta = (time.monotonic() - clock[0]) / done[0] * (total - done[0])
            report(FinetuneProgress(rid, "train", done[0], total, _last_loss(out), eta))
        done[0] += 1

    report(FinetuneProgress(rid, "train", 0, total))
    handle = register_optimizer_step_pre_hook(before_step)
    try:
        metrics = train(TrainRun(
            cfg=cfg, out_dir=out, steps=total, data=shards, batch_size=batch,
            lr=cfg.train.lr * 0.1, checkpoint_every=req.checkpoint_every or max(1, total // 5),
            log_every=1, init_from=base_dir / f"model_{base_step:06d}.safetensors",
            resume=False, device=req.device, progress=False,
            extra_meta={"finetuned_from": info["base_checkpoint"], "init_meta": base_meta,
                        "finetune": info},
        ))
    except BaseException as exc:
        _keep_last(out, "cancelled" if isinstance(exc, _Cancelled) else "failed", exc, total)
        raise
    finally:
        handle.remove()
    loss = metrics.get("loss")
    report(FinetuneProgress(rid, "train", total, total, loss, 0.0))
    _prune(out)
    write_status(out, status="complete", step=total, steps=total)
    clean = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    return FinetuneResponse(rid, str(out), total, clean, time.monotonic() - t0, "full")


def _keep_last(out: Path, status: str, exc: BaseException, total: int) -> None:
    """After a stopped run: keep the last complete checkpoint (and say so) or nothing."""
    for tmp in out.glob("*.tmp"):
        tmp.unlink(missing_ok=True)
    steps = checkpoint_steps(out)
    if not steps:
        shutil.rmtree(out, ignore_errors=True)
        return
    _prune(out)
    message = "" if isinstance(exc, _Cancelled) else one_line(exc)
    write_status(out, status=status, step=steps[-1], steps=total, message=message)


def _prune(out: Path) -> None:
    """Keep the newest complete checkpoint's weights and meta only (no optimizer state)."""
    steps = checkpoint_steps(out)
    for step in steps[:-1]:
        for name in (f"model_{step:06d}.safetensors", f"meta_{step:06d}.json"):
            (out / name).unlink(missing_ok=True)
    for optim in out.glob("optim_*.safetensors"):
        optim.unlink(missing_ok=True)


def _fewshot(
    req: FinetuneRequest, base_dir: Path, base_step: int, base_meta: dict[str, Any], shards: Path,
    info: dict[str, Any], name: str, report: Report, should_stop: Callable[[], bool], t0: float,
) -> FinetuneResponse:
    import torch
    from safetensors.torch import save_file

    from sleeplm_core.cli.fewshot import SCORED, fit_head, split_support
    from sleeplm_core.data.dataset import ShardDataset
    from sleeplm_core.train.checkpoint import load_model
    from sleeplm_core.train.collate import zscore_windows
    from sleeplm_core.train.loop import shard_paths

    rid, out = req.request_id, Path(req.out_dir)
    model, _ = load_model(base_dir, req.device or "cpu")
    samples = iter(ShardDataset(shard_paths(shards), channel_dropout=0.0, seed=1))
    support, held = split_support(samples, max(1, req.k), 200)
    if not support:
        raise SleepLMError(None, "no scored epochs (W, N1, N2, N3, REM) in these recordings")
    chunks = [support[i: i + 32] for i in range(0, len(support), 32)]
    chunks += [held[i: i + 32] for i in range(0, len(held), 32)]
    embs: list[Any] = []
    with torch.no_grad():
        for i, chunk in enumerate(chunks):
            if should_stop():
                raise _Cancelled
            report(FinetuneProgress(rid, "fewshot", i, len(chunks)))
            sig = torch.stack([torch.as_tensor(s["signal"]) for s in chunk]).float()
            mask = torch.stack([torch.as_tensor(s["mask"], dtype=torch.bool) for s in chunk])
            x = zscore_windows(sig, mask).to(model.logit_scale.device)
            embs.append(model.encode_signal(x, mask.to(x.device)).float().cpu())
    emb = torch.cat(embs)
    labels = torch.tensor([int(s["stage"]) for s in support + held])
    n_sup = len(support)
    weight, bias = fit_head(emb[:n_sup], labels[:n_sup], len(SCORED), "linear")
    accuracy = None
    if held:
        pred = (emb[n_sup:] @ weight.T + bias).argmax(1)
        accuracy = float((pred == labels[n_sup:]).float().mean())
    if should_stop():
        raise _Cancelled
    per_stage = {s: int((labels[:n_sup] == c).sum()) for c, s in enumerate(SCORED)}
    head = {"stages": list(SCORED), "k": req.k, "method": "linear", "accuracy": accuracy,
            "n_eval": len(held), "support_per_stage": per_stage}
    part = out.with_name(out.name + ".part")  # renamed when complete: never half a model
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        shutil.copyfile(base_dir / f"model_{base_step:06d}.safetensors",
                        part / f"model_{base_step:06d}.safetensors")
        save_file({"weight": weight.contiguous(), "bias": bias.contiguous()},
                  str(part / "fewshot_head.safetensors"))
        (part / "fewshot_head.json").write_text(json.dumps(head, indent=1), encoding="utf-8")
        meta = {**base_meta, "config": {**base_meta.get("config", {}), "name": name},
                "finetuned_from": info["base_checkpoint"], "finetune": info,
                "fewshot_head": head, "metrics": {"accuracy": accuracy}}
        (part / f"meta_{base_step:06d}.json").write_text(json.dumps(meta, indent=1),
                                                         encoding="utf-8")
        write_status(part, status="complete", step=base_step, steps=0)
        os.replace(part, out)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    metrics = {"accuracy": accuracy} if accuracy is not None else {}
    report(FinetuneProgress(rid, "fewshot", len(chunks), len(chunks)))
    return FinetuneResponse(rid, str(out), base_step, metrics, time.monotonic() - t0, "fewshot")


# -- the host on the GUI thread -------------------------------------------------------------
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

    def embed_night(self, path: str | Path, stride_s: float = 10.0, use_cache: bool = True) -> int:
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
