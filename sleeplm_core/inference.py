"""Inference with a trained SleepLM: numpy in, :mod:`sleeplm_core.results` dataclasses out.

>>> pred = Predictor.load()                       # the bundled checkpoint  # doctest: +SKIP
>>> with Recording.open("night.edf") as rec:      # doctest: +SKIP
...     emb = pred.embed_recording(rec)           # cached in night.edf.sleeplm.h5
...     hyp = pred.stage(emb)                     # zero-shot, from text prompts
...     head = pred.fit_fewshot(x, labels)        # K labelled epochs per stage
...     hyp = pred.stage(emb, head=head)          # stages from the few-shot head
...     hits = pred.search(emb, "obstructive apnea with desaturation")

Main methods
------------
==========================  ===========================================================
``embed_recording``         window embeddings of a night (30 s windows, ``stride_s`` apart)
``stage``                   zero-shot stages with per-stage probabilities (or a few-shot head's)
``fit_fewshot``             a few-shot stage head from K labelled epochs per stage
``search``                  language-guided localization: merged segments over a threshold
``caption``                 generated captions for an epoch or span, per modality
``predict_stages``          single-channel staging (the eval ``Stager`` protocol)
``localize``                single-channel query localization (the eval ``Localizer``)
==========================  ===========================================================

Search: dense or epoch-level
----------------------------
A query is routed through the phrase bank (:mod:`sleeplm_core.vocabulary`): a negated event
("no apnea") or a query far from every wording gets a ``SearchResult.note`` and no segments;
when its nearest wording is a stage's or a "long" period's (REM period, deep sleep, ...), the
epoch-level search runs (window embeddings vs the query, cosine over ``epoch_threshold``,
overlapping windows merged). Otherwise the **dense** search runs:
the per-patch features of 30 s windows (``DENSE_STRIDE_S`` apart) are scored against the
query, ``sigmoid(exp(loc_scale) * cos + loc_bias)``, overlapping windows averaged into a 4 Hz
score track; runs over the calibrated ``match_threshold`` (extended down to
``low_ratio * threshold``, hysteresis), gaps up to ``gap_s`` closed, runs shorter than
``min_s`` dropped (settings of the query's nearest event type from
``calibration["per_type"]`` when calibrated, and of ``calibration["single_eeg"]`` when the
recording's only channel is one EEG), give segments as long as what they match (a
spindle: about 1 s; an apnea: tens of seconds). A segment's raw score (its track cells)
is mapped to a calibrated probability of being right (:mod:`sleeplm_core.calibration`), ties
ranked by the raw score. Thresholds and maps come from ``meta["calibration"]`` (held-out
synthetic nights, ``sleeplm_core.train.calibrate``).

No tensor leaves this module. torch is imported here and in the model only; the viewer reaches
this module through ``sleepviewer/workers.py`` alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sleeplm_core import embedding_cache, grounding
from sleeplm_core.batching import (
    RawFuture,
    Submit,
    batch_runner,
    finish_batches,
    finish_embeddings,
    submit_tower,
)
from sleeplm_core.calibration import ScoreCalibration, rank_segments
from sleeplm_core.errors import CheckpointError, RecordingError, SleepLMError
from sleeplm_core.fewshot import FewShotHead, fit_head
from sleeplm_core.io.channels import (
    CANONICAL_SF,
    CANONICAL_SLOTS,
    MODALITY_TYPES,
    SLOT_TYPES,
    classify,
    pick_slots,
    staging_rows,
)
from sleeplm_core.resources import resource_path
from sleeplm_core.results import (
    Caption,
    EpochStage,
    NightEmbeddings,
    SearchResult,
    Segment,
    StageResult,
)
from sleeplm_core.signal_quality import (
    live_at,
    live_seconds,
    scorable,
)
from sleeplm_core.stages import EPOCH_S, SCORED_STAGES
from sleeplm_core.tracks import (
    DenseNight,
    merge_windows,
    overlap_average,
    track_segments,
)
from sleeplm_core.vocabulary import QueryRouter

WINDOW_S = EPOCH_S
WINDOW_N = int(WINDOW_S * CANONICAL_SF)
DEFAULT_THRESHOLD = 0.35
"""Cosine match threshold used when a checkpoint carries no calibrated one."""
QUERY_EXPANSION_TAU = 0.05
"""Softmax temperature over MiniLM cosine similarities to the query bank (uncalibrated)."""
QUERY_EXPANSION_MIX = 0.5
"""Share of a search query's embedding taken from the bank phrases it resembles (uncalibrated)."""

DEFAULT_DENSE = {"match_threshold": 0.5, "low_ratio": 0.6, "gap_s": 0.5, "min_s": 0.3}
"""Dense-search settings used when a checkpoint carries no calibrated ones."""
DENSE_STRIDE_S = 15.0
"""Target seconds between the windows whose dense features are kept."""
STRIDE_S = 15.0
"""Default seconds between 30 s window onsets (2x overlap; a divisor of 30 keeps the epoch
grid): what search needs, its dense track averaging two windows at every instant."""
STAGING_STRIDE_S = 30.0
"""Seconds between window onsets when only stages are wanted: one window per epoch, half the
work. Its dense track (from the same pass, no overlap) is weaker at window edges: on held-out
synthetic nights apnea localization F1 fell from 0.88 to 0.67, so search keeps ``STRIDE_S``."""
CPU_CHANNEL_WINDOWS = 96
"""Channel-windows per forward pass on the CPU (8 windows of 12 channels, 24 of the staging
montage's 4, 96 of one EEG): the token count sets a batch's cost; on 2 cores, 8 windows were
fastest for 12 channels and 32-64 for one EEG (27 % faster than 8). On an accelerator the
batch is ``ACCELERATOR_BATCH`` windows."""
ACCELERATOR_BATCH = 256
MAX_DENSE_NIGHTS = 4

MODALITY_HINTS: dict[str, str] = {
    "brain": "brain waves, EEG rhythms, sleep spindles, slow waves and eye movements",
    "heart": "heart rate and heart rhythm on the ECG",
    "respiratory": "breathing, airflow, apnea, hypopnea and oxygen saturation",
    "somatic": "muscle tone, leg movements, twitches and body position",
}
Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


class InferenceCancelled(Exception):
    """Raised inside a long run when ``should_stop()`` turns true."""


def bundled_checkpoint() -> Path:
    """The directory of the checkpoint that ships in ``resources/models``."""
    return resource_path("models")


class Predictor:
    """A loaded SleepLM ready for inference; build it with :meth:`load`.

    Parameters
    ----------
    model : SleepLM
        The model, in eval mode, on ``device``.
    meta : dict
        The checkpoint's metadata (config, step, vocabulary, calibration, ...).
    device : torch.device
        Where the model runs.

    Attributes
    ----------
    cpu_bf16 : bool
        On the CPU, run the signal tower under bf16 autocast (CPUs with native bf16 only;
        see :func:`sleeplm_core.train.device.cpu_bf16_inference`).
    """

    def __init__(self, model: Any, meta: dict[str, Any], device: torch.device) -> None:
        from sleeplm_core.train.device import cpu_bf16_inference

        self.model = model
        self.meta = meta
        self.device = device
        self.cpu_bf16 = getattr(device, "type", None) == "cpu" and cpu_bf16_inference()
        calib = meta.get("calibration") or {}
        self.calibrated = "match_threshold" in calib
        self.dense_settings = {k: float(calib.get(k, v)) for k, v in DEFAULT_DENSE.items()}
        self.threshold = self.dense_settings["match_threshold"]
        self.epoch_threshold = float(calib.get("epoch_threshold", DEFAULT_THRESHOLD))
        single = calib.get("single_eeg") or {}
        self.single_eeg_settings = {k: float(single[k]) for k in DEFAULT_DENSE if k in single}
        self._dense: dict[int, tuple[Any, DenseNight]] = {}
        name = meta.get("config", {}).get("name", "sleeplm")
        self.model_id = f"{name}@{int(meta.get('step', 0))}"
        # cache key: not name@step only (weights and tower settings)
        self.weights_id = embedding_cache.computation_id(
            str(meta.get("weights_sha256") or ""), dict(meta.get("config", {}).get("signal", {}))
        )
        self._text_cache: dict[str, np.ndarray] = {}
        self._router: QueryRouter | None = None
        self.scores = ScoreCalibration.from_meta(calib)
        expansion = calib.get("query_expansion") or {}
        self.expansion_mix = float(expansion.get("mix", QUERY_EXPANSION_MIX))
        self.expansion_tau = float(expansion.get("tau", QUERY_EXPANSION_TAU))

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None, device: str | None = None) -> Predictor:
        """Load a checkpoint (the bundled one by default) on CUDA, MPS or the CPU.

        Raises
        ------
        CheckpointError
            When the checkpoint is missing, corrupt or of another version.
        """
        from sleeplm_core.train.checkpoint import load_model
        from sleeplm_core.train.device import pick_device

        ckpt = Path(path) if path is not None else bundled_checkpoint()
        if not ckpt.exists():
            raise CheckpointError(ckpt, "no checkpoint here (build one with `make model`)")
        if cls is Predictor and _is_published(ckpt):
            from sleeplm_core.published.predictor import PublishedPredictor

            return PublishedPredictor.load(ckpt, device)
        dev = pick_device(prefer=device)
        model, meta = load_model(ckpt, device=dev)
        model.eval()
        return cls(model, meta, dev)

    # ------------------------------------------------------------------ embeddings
    def embed_windows(
        self, signal: np.ndarray, mask: np.ndarray, batch: int | None = None
    ) -> np.ndarray:
        """Embed 30 s windows.

        Parameters
        ----------
        signal : ndarray, float (n, 12, 1920)
            Canonical windows in physical units (z-scored here, per window and channel).
        mask : ndarray, bool (12,) or (n, 12)
            Which slots are real channels.
        batch : int, optional
            Windows per forward pass (default: from ``CPU_CHANNEL_WINDOWS`` or
            ``ACCELERATOR_BATCH``).

        Returns
        -------
        ndarray, float32 (n, E)
            L2-normalised embeddings, batch-normalised with the statistics of these ``n``
            windows (pass a whole recording or a long stretch of it, not single windows).
        """
        if signal.shape[0] == 0:
            return np.zeros((0, self.model.cfg.embed_dim), np.float32)
        with batch_runner(self.device) as submit:
            return self._finish_embeddings(self._submit_raw(signal, mask, batch, submit))

    def embed_windows_dense(
        self, signal: np.ndarray, mask: np.ndarray, batch: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`embed_windows`, plus per-patch features float16 (n, P, E)."""
        if signal.shape[0] == 0:
            dim = self.model.cfg.embed_dim
            return np.zeros((0, dim), np.float32), np.zeros((0, 0, dim), np.float16)
        with batch_runner(self.device) as submit:
            return self._finish(self._submit_raw(signal, mask, batch, submit))

    def _submit_raw(
        self, signal: np.ndarray, mask: np.ndarray, batch: int | None, submit: Submit
    ) -> list[RawFuture]:
        if batch is None:
            batch = ACCELERATOR_BATCH
            if self.device.type == "cpu":
                present = np.asarray(mask, bool).reshape(-1, len(CANONICAL_SLOTS)).any(axis=0)
                batch = max(1, CPU_CHANNEL_WINDOWS // max(1, int(present.sum())))
        return submit_tower(
            self.model, self.device, signal, mask, batch, submit, bf16=self.cpu_bf16
        )

    def _finish(self, parts: list[RawFuture]) -> tuple[np.ndarray, np.ndarray]:
        return finish_batches(self.model, parts)

    def _finish_embeddings(self, parts: list[RawFuture]) -> np.ndarray:
        return finish_embeddings(self.model, parts)

    def dense_night(self, emb: NightEmbeddings) -> DenseNight | None:
        """The dense features kept for ``emb`` (by :meth:`embed_recording`), if any."""
        hit = self._dense.get(id(emb))
        return hit[1] if hit is not None and hit[0] is emb else None

    def _keep_dense(self, emb: NightEmbeddings, dense: DenseNight) -> None:
        self._dense[id(emb)] = (emb, dense)
        while len(self._dense) > MAX_DENSE_NIGHTS:
            self._dense.pop(next(iter(self._dense)))

    def embed_recording(
        self,
        rec: Any,
        *,
        stride_s: float = STRIDE_S,
        use_cache: bool = True,
        slots: Sequence[str] | None = None,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
    ) -> NightEmbeddings:
        """Embed a whole recording in 30 s windows ``stride_s`` apart (cached in HDF5).

        Parameters
        ----------
        rec : Recording
            An open recording.
        stride_s : float
            Seconds between window onsets; a divisor of 30 keeps epochs on the grid.
        use_cache : bool
            Read and write the sidecar cache (see :mod:`sleeplm_core.embedding_cache`).
        slots : sequence of str, optional
            Read only these canonical slots, e.g. the staging montage (see
            :meth:`embed_for_staging`): fewer tokens, a fraction of the time. All slots when
            the recording has none of them. A restricted pass neither reads nor writes the
            sidecar cache, which holds the full montage.
        progress : callable, optional
            ``progress(done, total)`` in windows.
        should_stop : callable, optional
            Polled between chunks; when it returns True the run raises InferenceCancelled.
        """
        if slots is not None:
            if any(src for slot, src in zip(CANONICAL_SLOTS, rec.canonical_sources, strict=True)
                   if slot in slots):  # fmt: skip
                use_cache = False
            else:
                slots = None
        if use_cache:
            hit = embedding_cache.load(rec.path, self.model_id, WINDOW_S, stride_s, self.weights_id)
            found = (
                embedding_cache.load_dense(rec.path, self.model_id, stride_s, self.weights_id)
                if hit is not None
                else None
            )
            if hit is not None and found is not None:
                dn = DenseNight(*found)
                self._keep_dense(hit, dn)
                if progress:
                    progress(len(hit.onsets_s), len(hit.onsets_s))
                return hit
        onsets = np.arange(0.0, rec.duration_s - WINDOW_S + 1e-9, stride_s)
        keep_every = dense_every(stride_s)
        mask = None
        embs: list[np.ndarray] = []
        dense: list[np.ndarray] = []
        live = np.zeros(int(np.ceil(rec.duration_s)), bool)  # seconds with signal: gaps are not
        chunk = max(1, int(1800 // stride_s))  # about 30 min of windows per read
        chunk = max(keep_every, chunk - chunk % keep_every)

        def read(i: int) -> tuple[np.ndarray, Any]:
            sel = onsets[i : i + chunk]
            a, b = float(sel[0]), float(sel[-1]) + WINDOW_S
            return sel, rec.canonical(a, b) if slots is None else rec.canonical(a, b, slots)

        # The next stretch is read and resampled on a thread while the model embeds this one,
        # and its batches are queued before this one's are collected (no idle core between).
        queued: deque[tuple[int, list[RawFuture]]] = deque()

        def collect() -> None:
            end, parts = queued.popleft()
            e, d = self._finish(parts)
            embs.append(e)
            dense.append(d[::keep_every])
            if progress:
                progress(end, len(onsets))

        with (
            batch_runner(self.device) as submit,
            ThreadPoolExecutor(1, thread_name_prefix="sleeplm-read") as reader,
        ):
            pending = reader.submit(read, 0) if len(onsets) else None
            for i in range(0, len(onsets), chunk):
                if should_stop is not None and should_stop():
                    raise InferenceCancelled
                assert pending is not None
                sel, win = pending.result()
                if i + chunk < len(onsets):
                    pending = reader.submit(read, i + chunk)
                mask = win.mask
                chunk_live = live_seconds(win.data, mask)
                first = int(round(float(sel[0])))
                live[first : first + chunk_live.size] |= chunk_live[: max(live.size - first, 0)]
                starts = np.round((sel - sel[0]) * CANONICAL_SF).astype(int)
                data = _pad_to(win.data, int(starts[-1]) + WINDOW_N)
                windows = np.stack([data[:, s : s + WINDOW_N] for s in starts])
                parts = self._submit_raw(windows, mask, None, submit)
                queued.append((min(i + chunk, len(onsets)), parts))
                if len(queued) > 1:
                    collect()
            while queued:
                collect()
        if mask is None:
            raise RecordingError(rec.path, "shorter than one 30 s window: nothing to embed")
        if not mask.any():
            raise RecordingError(rec.path, "no channel the model can use (EEG, EOG, EMG, ...)")
        emb = NightEmbeddings(onsets, WINDOW_S, np.concatenate(embs), mask, self.model_id, live)
        dn = DenseNight(onsets[::keep_every], np.concatenate(dense))
        self._keep_dense(emb, dn)
        if use_cache:
            try:
                self.save_caches(rec.path, emb, stride_s)
            except OSError:
                pass  # a cache we cannot write only costs time next run
        return emb

    def embed_for_staging(
        self,
        rec: Any,
        *,
        use_cache: bool = True,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
    ) -> NightEmbeddings:
        """Embeddings to stage ``rec`` from, at the least cost.

        A valid full-montage sidecar cache (the viewer's or ``sleeplm embed``'s) when
        ``use_cache`` finds one; else one pass over the staging montage
        (:func:`~sleeplm_core.io.channels.staging_rows`: C3, C4, one EOG and chin EMG, what
        the AASM rules stage from) with windows :data:`STAGING_STRIDE_S` apart, uncached. A
        recording without any of those channels is embedded whole.
        """
        if use_cache:
            hit = embedding_cache.load(rec.path, self.model_id, WINDOW_S, STRIDE_S, self.weights_id)
            if hit is not None:
                if progress:
                    progress(len(hit.onsets_s), len(hit.onsets_s))
                return hit
        present = np.array([src is not None for src in rec.canonical_sources])
        rows = staging_rows(present)
        return self.embed_recording(
            rec,
            stride_s=STAGING_STRIDE_S,
            use_cache=False,
            slots=[slot for slot, on in zip(CANONICAL_SLOTS, rows, strict=True) if on],
            progress=progress,
            should_stop=should_stop,
        )

    def save_caches(self, recording: str | Path, emb: NightEmbeddings, stride_s: float) -> None:
        """Write both sidecar caches of ``emb``: the window embeddings and the dense features.

        Raises
        ------
        OSError
            When a cache cannot be written.
        ValueError
            When ``emb`` was not made (and kept) by this Predictor.
        """
        dense = self.dense_night(emb)
        if dense is None:
            raise ValueError("these embeddings were not made by this Predictor")
        embedding_cache.save(recording, emb, stride_s, self.weights_id)
        embedding_cache.save_dense(
            recording, self.model_id, stride_s, dense.onsets_s, dense.features, self.weights_id
        )

    # ------------------------------------------------------------------ text side
    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts into the shared space (float32 (n, E)), with a cache by text."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if todo:
            vecs = self.model.encode_text(todo).float().cpu().numpy()
            self._text_cache.update(zip(todo, vecs, strict=True))
        return np.stack([self._text_cache[t] for t in texts])

    def sentence_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """The frozen MiniLM's own sentence embeddings (float32 (n, 384), L2-normalised)."""
        with torch.no_grad():
            vecs = self.model.text.encode_texts(list(texts))
        return np.asarray(vecs.float().cpu().numpy(), dtype=np.float32)

    def router(self) -> QueryRouter:
        """The open-vocabulary query router (:mod:`sleeplm_core.vocabulary`), built once."""
        if self._router is None:
            self._router = QueryRouter(self.sentence_embeddings, self.text_embeddings,
                                       self.stage_prompts(), self.expansion_mix,
                                       self.expansion_tau)  # fmt: skip
        self._router.mix, self._router.tau = self.expansion_mix, self.expansion_tau
        return self._router

    def query_embedding(self, query: str) -> np.ndarray:
        """A search query in the shared space, routed through the phrase bank it paraphrases."""
        return self.router().embed(query)

    def stage_prompts(self) -> dict[str, list[str]]:
        """The paraphrased prompts whose mean embedding stands for each stage."""
        from sleeplm_core.model.prompts import stage_prompts

        return stage_prompts()

    # ------------------------------------------------------------------ staging
    def stage(
        self,
        emb: NightEmbeddings,
        channels_used: Sequence[str] = (),
        head: FewShotHead | None = None,
    ) -> StageResult:
        """Stages for each 30 s epoch of an embedded night.

        Without ``head`` the staging is zero-shot: each stage is represented by the mean
        embedding of its prompts, and the probabilities are a softmax over the model's learned
        temperature times the cosine similarities. With a few-shot ``head`` (see
        :meth:`fit_fewshot`) they are the softmax of the head's logits instead; a stage the
        head had no support for gets probability 0.

        Raises
        ------
        SleepLMError
            When the head was fitted for embeddings of another size.
        """
        on_grid = np.isclose(np.mod(emb.onsets_s, EPOCH_S), 0.0)
        idx = np.flatnonzero(on_grid)
        if head is None:
            proba = self.stage_proba(emb.embeddings[idx])
            staged_by = "prompts"
            conf = self.scores.stage(proba.max(axis=1))  # calibrated P(stage is right)
        else:
            proba = head.proba(emb.embeddings[idx])
            staged_by = f"fewshot-{head.method}"
            conf = proba.max(axis=1)
        ok = scorable(emb)
        epochs = [
            EpochStage(
                epoch=int(round(emb.onsets_s[i] / EPOCH_S)),
                onset_s=float(emb.onsets_s[i]),
                stage=SCORED_STAGES[int(np.argmax(p))] if ok[i] else "UNS",  # a gap: no stage
                confidence=float(c) if ok[i] else 0.0,
                proba={s: float(v) * ok[i] for s, v in zip(SCORED_STAGES, p, strict=True)},
            )
            for i, p, c in zip(idx, proba, conf, strict=True)
        ]
        return StageResult(epochs, list(channels_used), self.model_id, staged_by)

    def fit_fewshot(
        self, embeddings: np.ndarray, stages: Sequence[str], method: str = "prototype"
    ) -> FewShotHead:
        """Fit a few-shot stage head on K labelled epochs per stage (the model stays frozen).

        Parameters
        ----------
        embeddings : ndarray, float32 (n, E)
            Epoch embeddings from this model (e.g. rows of ``NightEmbeddings.embeddings`` on
            the 30 s grid).
        stages : sequence of str, length n
            The scored stage of each epoch; labels other than W, N1, N2, N3, REM are ignored.
        method : str
            ``"prototype"`` (cosine nearest prototype) or ``"logistic"`` (a linear probe).

        Returns
        -------
        FewShotHead
            Pass it to :meth:`stage`; ``save`` / ``load`` keep it on disk.

        Raises
        ------
        SleepLMError
            When no epoch has a scored stage, the shapes do not match, or the embeddings are
            not of this model's size.
        """
        emb = np.asarray(embeddings, dtype=np.float32)
        dim = int(self.model.cfg.embed_dim)
        if emb.ndim != 2 or emb.shape[1] != dim:
            raise SleepLMError(
                None, f"few-shot embeddings must be (n, {dim}) for {self.model_id}, got {emb.shape}"
            )
        return fit_head(emb, stages, method)

    def stage_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Stage probabilities (n, 5) in the order W, N1, N2, N3, REM."""
        prompts = self.stage_prompts()
        protos = np.stack([self.text_embeddings(prompts[s]).mean(0) for s in SCORED_STAGES])
        protos /= np.linalg.norm(protos, axis=1, keepdims=True)
        logits = float(self.logit_scale()) * embeddings @ protos.T
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        proba: np.ndarray = p / p.sum(axis=1, keepdims=True)
        return proba

    def logit_scale(self) -> float:
        """The learned inverse temperature of the contrastive head."""
        max_scale = self.model.cfg.loss.max_logit_scale
        return float(self.model.logit_scale.detach().clamp(max=max_scale).exp())

    # ------------------------------------------------------------------ search
    def search(
        self,
        emb: NightEmbeddings,
        query: str,
        *,
        top: int = 10,
        min_score: float | None = None,
    ) -> SearchResult:
        """Language-guided localization over an embedded night.

        Event-like queries: the dense 4-Hz match track is cut into segments at the calibrated
        threshold (or ``min_score``), each scoring the mean of its track cells (see
        :func:`track_segments`). Stage-like queries: 30-s windows at or over the epoch
        threshold merge where they overlap, each segment scoring its best window.

        Raises
        ------
        SleepLMError
            For an empty query.
        """
        text = query.strip()
        if not text:
            raise SleepLMError(None, "the query is empty: type what to look for")
        note = self.router().refusal(text)
        if note:
            return SearchResult(text, [], float("nan"), [], note=note)
        types = self.query_channel_types(text, emb.mask)
        dn = self.dense_night(emb)
        dense = dn is not None and self.query_kind(text) == "dense"
        if dn is None or not dense:  # (dn is None already makes dense False: for mypy)
            q = self.query_embedding(text)
            scores = np.where(scorable(emb), emb.embeddings @ q, -np.inf)  # gaps never match
            thr = self.epoch_threshold if min_score is None else float(min_score)
            segments = merge_windows(emb.onsets_s, emb.window_s, scores, thr)
        else:
            track_t, scores = self.score_track(dn, text)
            if emb.live_s is not None:
                scores = np.where(live_at(emb.live_s, track_t), scores, -np.inf)  # gaps: no match
            cfg = self.dense_settings_for(text, _single_eeg(emb.mask))
            thr = cfg["match_threshold"] if min_score is None else float(min_score)
            segments = track_segments(
                track_t, scores, thr, low_ratio=cfg["low_ratio"], gap_s=cfg["gap_s"],
                min_s=cfg["min_s"], step_s=dn.step_s,
            )  # fmt: skip
        # dense scores are calibrated to P(right) (ties by raw strength); epoch ones stay cosine
        cal = (
            (lambda v: self.scores.segment(self.nearest_event_type(text), v))
            if dense
            else (lambda v: np.asarray(v, np.float64))
        )
        ranked = rank_segments(segments, cal(np.array([sc for _, _, sc in segments])))
        found = [Segment(a, b - a, sc, types) for a, b, sc, _ in ranked[:top]]
        best = [float(v) for v in cal(np.sort(scores[np.isfinite(scores)])[::-1][:5])]
        return SearchResult(text, found, float(cal(thr)), best)

    def nearest_event_type(self, query: str) -> str:
        """Name of the phrase-bank event type closest to the query (by text similarity)."""
        return self.router().nearest_event_type(query)

    def dense_settings_for(self, query: str, single_eeg: bool) -> dict[str, float]:
        """Calibrated dense settings for a query: global, per event type, single-EEG case."""
        calib = self.meta.get("calibration") or {}
        cfg = dict(self.dense_settings)
        layers = [calib]
        if single_eeg:
            cfg.update(self.single_eeg_settings)
            layers.append(calib.get("single_eeg") or {})
        kind = self.nearest_event_type(query)
        for layer in layers:
            per = (layer.get("per_type") or {}).get(kind) or {}
            cfg.update({k: float(per[k]) for k in DEFAULT_DENSE if k in per})
        return cfg

    def query_kind(self, query: str) -> str:
        """``"epoch"`` for stage-like / long queries, ``"dense"`` for events (see module doc)."""
        return self.router().kind(query)

    def score_track(self, dn: DenseNight, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The query's 4 Hz match-probability track: (times_s, scores), windows averaged."""
        q = self.query_embedding(query)
        scale = float(self.model.loc_scale.detach().clamp(max=4.6).exp())
        bias = float(self.model.loc_bias.detach())
        logits = scale * dn.project(q) + bias  # (n, P)
        probs = 1.0 / (1.0 + np.exp(-logits))
        return overlap_average(dn.onsets_s, probs, dn.step_s)

    def query_channel_types(self, query: str, mask: np.ndarray) -> list[str]:
        """The channel types a query is about (by text similarity to modality descriptions)."""
        present = {SLOT_TYPES[s] for s, m in zip(CANONICAL_SLOTS, mask, strict=True) if m}
        names = list(MODALITY_HINTS)
        sims = (
            self.text_embeddings([query])
            @ self.text_embeddings([MODALITY_HINTS[n] for n in names]).T
        )
        best = names[int(np.argmax(sims[0]))]
        return [t for t in MODALITY_TYPES[best] if t in present] or sorted(present)

    # ------------------------------------------------------------------ captions
    def caption(
        self,
        rec: Any,
        start_s: float,
        stop_s: float,
        *,
        modalities: Sequence[str] | None = None,
        prompt: str | None = None,
        beam: int = 3,
    ) -> list[Caption]:
        """Checked captions per epoch and modality (:func:`grounding.grounded_captions`)."""
        return grounding.grounded_captions(self, rec, start_s, stop_s, modalities, prompt, beam)

    def generate(
        self,
        windows: np.ndarray,
        mask: np.ndarray,
        modality: str,
        *,
        prompt: str | None = None,
        beam: int = 3,
    ) -> list[str]:
        """One caption per canonical window (n, 12, 1920); grounded in ``mask`` (see grounding)."""
        from sleeplm_core.train.collate import zscore_windows

        common = np.asarray(np.asarray(mask, bool).reshape(-1, len(CANONICAL_SLOTS)).all(axis=0))
        if modality in grounding.EPOCH_MODALITIES and modality not in grounding.present_modalities(
            common
        ):  # channels of every window: speak only of those
            return [grounding.absent_text(modality)] * len(windows)
        x = torch.as_tensor(np.ascontiguousarray(windows), dtype=torch.float32)
        m = torch.as_tensor(np.broadcast_to(np.asarray(mask, bool), x.shape[:2]).copy())
        z = zscore_windows(x, m).to(self.device)
        ban = grounding.banned_token_ids(self.model.tokenizer, common)
        texts = self.model.generate(z, m.to(self.device), modality, prompt, beam, banned=ban)
        return [grounding.dedupe_sentences(t) for t in texts]

    # ------------------------------------------------------------------ eval protocols
    def predict_stages(self, data: np.ndarray, sf: float, ch_name: str) -> list[str]:
        """Stage a single-channel recording (``Stager`` protocol of :mod:`sleeplm_core.eval`)."""
        canon, mask = canonical_from_array(data, sf, ch_name)
        n = canon.shape[1] // WINDOW_N
        windows = canon[:, : n * WINDOW_N].reshape(len(CANONICAL_SLOTS), n, WINDOW_N)
        proba = self.stage_proba(self.embed_windows(windows.transpose(1, 0, 2), mask))
        return [SCORED_STAGES[int(i)] for i in proba.argmax(axis=1)]

    def localize(
        self, data: np.ndarray, sf: float, ch_name: str, query: str, stride_s: float = 15.0
    ) -> list[tuple[float, float, float]]:
        """Localize ``query`` in a single channel: ``(onset_s, duration_s, score)`` rows."""
        canon, mask = canonical_from_array(data, sf, ch_name)
        onsets = np.arange(0.0, canon.shape[1] / CANONICAL_SF - WINDOW_S + 1e-9, stride_s)
        starts = np.round(onsets * CANONICAL_SF).astype(int)
        windows = np.stack([canon[:, s : s + WINDOW_N] for s in starts])
        e, d = self.embed_windows_dense(windows, mask)
        emb = NightEmbeddings(onsets, WINDOW_S, e, mask, "")
        self._keep_dense(emb, DenseNight(onsets, d))
        res = self.search(emb, query, top=10_000)
        return [(s.onset_s, s.duration_s, s.score) for s in res.segments]


def _is_published(ckpt: Path) -> bool:
    """Whether a checkpoint belongs to the published SleepLM-Base family (by its meta)."""
    from sleeplm_core.published.checkpoint import is_published
    from sleeplm_core.train.checkpoint import load_meta

    return is_published(load_meta(ckpt))


def canonical_from_array(
    data: np.ndarray, sf: float, ch_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Place one channel into its canonical slot at 64 Hz.

    Returns
    -------
    (ndarray float32 (12, n), ndarray bool (12,))
        The canonical array and its slot mask.
    """
    from sleeplm_core.io.resample import resample  # bounded filter cost for any rate

    ctype = classify(ch_name)
    sources = pick_slots([(ch_name, ctype)])
    mask = np.array([s is not None for s in sources])
    if not mask.any():
        raise SleepLMError(None, f"channel {ch_name!r} fills no model input slot")
    x = resample(np.asarray(data, np.float64)[None, :], float(sf), CANONICAL_SF)[0]
    out = np.zeros((len(CANONICAL_SLOTS), x.shape[0]), np.float32)
    out[mask] = x
    return out, mask


def _pad_to(data: np.ndarray, n: int) -> np.ndarray:
    if data.shape[1] >= n:
        return data
    return np.pad(data, ((0, 0), (0, n - data.shape[1])))


def _single_eeg(mask: np.ndarray) -> bool:
    present = [s for s, m in zip(CANONICAL_SLOTS, mask, strict=True) if m]
    return len(present) == 1 and SLOT_TYPES[present[0]] == "EEG"


def _has(mask: np.ndarray, types: Sequence[str]) -> bool:
    return any(m and SLOT_TYPES[s] in types for s, m in zip(CANONICAL_SLOTS, mask, strict=True))


def dense_every(stride_s: float) -> int:
    """Keep every k-th window's dense features so that they are about 15 s apart."""
    return max(1, int(round(DENSE_STRIDE_S / stride_s)))
