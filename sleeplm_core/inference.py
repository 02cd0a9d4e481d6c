"""Inference with a trained SleepLM: numpy in, :mod:`sleeplm_core.results` dataclasses out.

>>> pred = Predictor.load()                       # the bundled checkpoint  # doctest: +SKIP
>>> with Recording.open("night.edf") as rec:      # doctest: +SKIP
...     emb = pred.embed_recording(rec)           # cached in night.edf.sleeplm.h5
...     hyp = pred.stage(emb)                     # zero-shot, from text prompts
...     hits = pred.search(emb, "obstructive apnea with desaturation")

Main methods
------------
==========================  ===========================================================
``embed_recording``         window embeddings of a night (30 s windows, ``stride_s`` apart)
``stage``                   zero-shot stages with per-stage probabilities
``search``                  language-guided localization: merged segments over a threshold
``caption``                 generated captions for an epoch or span, per modality
``predict_stages``          single-channel staging (the eval ``Stager`` protocol)
``localize``                single-channel query localization (the eval ``Localizer``)
==========================  ===========================================================

No tensor leaves this module. torch is imported here and in the model only; the viewer reaches
this module through ``sleepviewer/workers.py`` alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sleeplm_core import embedding_cache
from sleeplm_core.errors import CheckpointError, RecordingError, SleepLMError
from sleeplm_core.io.channels import CANONICAL_SF, CANONICAL_SLOTS, classify, pick_slots
from sleeplm_core.resources import resource_path
from sleeplm_core.results import (
    Caption,
    EpochStage,
    NightEmbeddings,
    SearchResult,
    Segment,
    StageResult,
)
from sleeplm_core.stages import EPOCH_S, SCORED_STAGES

WINDOW_S = EPOCH_S
WINDOW_N = int(WINDOW_S * CANONICAL_SF)
DEFAULT_THRESHOLD = 0.35
"""Cosine match threshold used when a checkpoint carries no calibrated one."""

MODALITY_TYPES: dict[str, tuple[str, ...]] = {
    "brain": ("EEG", "EOG"),
    "heart": ("ECG",),
    "respiratory": ("AIRFLOW", "THORACIC", "ABDOMINAL", "SPO2"),
    "somatic": ("EMG", "POSITION"),
}
MODALITY_HINTS: dict[str, str] = {
    "brain": "brain waves, EEG rhythms, sleep spindles, slow waves and eye movements",
    "heart": "heart rate and heart rhythm on the ECG",
    "respiratory": "breathing, airflow, apnea, hypopnea and oxygen saturation",
    "somatic": "muscle tone, leg movements, twitches and body position",
}
_SLOT_TYPES: dict[str, str] = {
    "ECG": "ECG",
    "ABD": "ABDOMINAL",
    "THX": "THORACIC",
    "AIRFLOW": "AIRFLOW",
    "EOG_L": "EOG",
    "EOG_R": "EOG",
    "C3_M2": "EEG",
    "C4_M1": "EEG",
    "EMG_CHIN": "EMG",
    "POSITION": "POSITION",
    "SPO2": "SPO2",
    "EMG_LEG": "EMG",
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
    """

    def __init__(self, model: Any, meta: dict[str, Any], device: torch.device) -> None:
        self.model = model
        self.meta = meta
        self.device = device
        calib = meta.get("calibration") or {}
        self.threshold = float(calib.get("match_threshold", DEFAULT_THRESHOLD))
        self.calibrated = "match_threshold" in calib
        name = meta.get("config", {}).get("name", "sleeplm")
        self.model_id = f"{name}@{int(meta.get('step', 0))}"
        self._text_cache: dict[str, np.ndarray] = {}

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
        dev = pick_device(prefer=device)
        model, meta = load_model(ckpt, device=dev)
        model.eval()
        return cls(model, meta, dev)

    # ------------------------------------------------------------------ embeddings
    def embed_windows(self, signal: np.ndarray, mask: np.ndarray, batch: int = 64) -> np.ndarray:
        """Embed 30 s windows.

        Parameters
        ----------
        signal : ndarray, float (n, 12, 1920)
            Canonical windows in physical units (z-scored here, per window and channel).
        mask : ndarray, bool (12,) or (n, 12)
            Which slots are real channels.
        batch : int
            Windows per forward pass.

        Returns
        -------
        ndarray, float32 (n, E)
            L2-normalised embeddings.
        """
        from sleeplm_core.train.collate import zscore_windows

        n = signal.shape[0]
        masks = np.broadcast_to(np.asarray(mask, bool), (n, len(CANONICAL_SLOTS)))
        out = []
        for i in range(0, n, batch):
            x = torch.as_tensor(np.ascontiguousarray(signal[i : i + batch]), dtype=torch.float32)
            m = torch.as_tensor(np.ascontiguousarray(masks[i : i + batch]))
            z = zscore_windows(x, m).to(self.device)
            out.append(self.model.encode_signal(z, m.to(self.device)).float().cpu().numpy())
        dim = self.model.cfg.embed_dim
        return np.concatenate(out) if out else np.zeros((0, dim), np.float32)

    def embed_recording(
        self,
        rec: Any,
        *,
        stride_s: float = 10.0,
        use_cache: bool = True,
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
        progress : callable, optional
            ``progress(done, total)`` in windows.
        should_stop : callable, optional
            Polled between chunks; when it returns True the run raises InferenceCancelled.
        """
        if use_cache:
            hit = embedding_cache.load(rec.path, self.model_id, WINDOW_S, stride_s)
            if hit is not None:
                if progress:
                    progress(len(hit.onsets_s), len(hit.onsets_s))
                return hit
        onsets = np.arange(0.0, rec.duration_s - WINDOW_S + 1e-9, stride_s)
        mask = None
        embs: list[np.ndarray] = []
        chunk = max(1, int(1800 // stride_s))  # about 30 min of windows per read
        for i in range(0, len(onsets), chunk):
            if should_stop is not None and should_stop():
                raise InferenceCancelled
            sel = onsets[i : i + chunk]
            win = rec.canonical(float(sel[0]), float(sel[-1]) + WINDOW_S)
            mask = win.mask
            starts = np.round((sel - sel[0]) * CANONICAL_SF).astype(int)
            data = _pad_to(win.data, int(starts[-1]) + WINDOW_N)
            windows = np.stack([data[:, s : s + WINDOW_N] for s in starts])
            embs.append(self.embed_windows(windows, mask))
            if progress:
                progress(min(i + chunk, len(onsets)), len(onsets))
        if mask is None:
            raise RecordingError(rec.path, "shorter than one 30 s window: nothing to embed")
        if not mask.any():
            raise RecordingError(rec.path, "no channel the model can use (EEG, EOG, EMG, ...)")
        emb = NightEmbeddings(onsets, WINDOW_S, np.concatenate(embs), mask, self.model_id)
        if use_cache:
            try:
                embedding_cache.save(rec.path, emb, stride_s)
            except OSError:
                pass  # a cache we cannot write only costs time next run
        return emb

    # ------------------------------------------------------------------ text side
    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts into the shared space (float32 (n, E)), with a cache by text."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if todo:
            vecs = self.model.encode_text(todo).float().cpu().numpy()
            self._text_cache.update(zip(todo, vecs, strict=True))
        return np.stack([self._text_cache[t] for t in texts])

    def stage_prompts(self) -> dict[str, list[str]]:
        """The paraphrased prompts whose mean embedding stands for each stage."""
        from sleeplm_core.captions.epoch import STAGE_WORDS

        book = json.loads(resource_template("stage_event").read_text())
        sentences = book["sentences"]["stage"]
        return {s: [t.format(stage=STAGE_WORDS[s]) for t in sentences] for s in SCORED_STAGES}

    # ------------------------------------------------------------------ staging
    def stage(self, emb: NightEmbeddings, channels_used: Sequence[str] = ()) -> StageResult:
        """Zero-shot stages for each 30 s epoch of an embedded night.

        Each stage is represented by the mean embedding of its prompts; the probabilities
        are a softmax over the model's learned temperature times the cosine similarities.
        """
        on_grid = np.isclose(np.mod(emb.onsets_s, EPOCH_S), 0.0)
        idx = np.flatnonzero(on_grid)
        proba = self.stage_proba(emb.embeddings[idx])
        epochs = [
            EpochStage(
                epoch=int(round(emb.onsets_s[i] / EPOCH_S)),
                onset_s=float(emb.onsets_s[i]),
                stage=SCORED_STAGES[int(np.argmax(p))],
                confidence=float(np.max(p)),
                proba={s: float(v) for s, v in zip(SCORED_STAGES, p, strict=True)},
            )
            for i, p in zip(idx, proba, strict=True)
        ]
        return StageResult(epochs, list(channels_used), self.model_id)

    def stage_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Stage probabilities (n, 5) in the order W, N1, N2, N3, REM."""
        prompts = self.stage_prompts()
        protos = np.stack([self.text_embeddings(prompts[s]).mean(0) for s in SCORED_STAGES])
        protos /= np.linalg.norm(protos, axis=1, keepdims=True)
        logits = float(self.logit_scale()) * embeddings @ protos.T
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

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

        Windows scoring at least the threshold (calibrated, or ``min_score``) are merged into
        segments where they overlap; a segment scores its best window.

        Raises
        ------
        SleepLMError
            For an empty query.
        """
        text = query.strip()
        if not text:
            raise SleepLMError(None, "the query is empty: type what to look for")
        q = self.text_embeddings([text])[0]
        scores = emb.embeddings @ q
        thr = self.threshold if min_score is None else float(min_score)
        order = np.argsort(-scores)
        best = [float(s) for s in scores[order[:5]]]
        types = self.query_channel_types(text, emb.mask)
        segments = _merge(emb.onsets_s, emb.window_s, scores, thr)
        segments.sort(key=lambda s: -s[2])
        found = [Segment(a, b - a, sc, types) for a, b, sc in segments[:top]]
        return SearchResult(text, found, thr, best)

    def query_channel_types(self, query: str, mask: np.ndarray) -> list[str]:
        """The channel types a query is about (by text similarity to modality descriptions)."""
        present = {_SLOT_TYPES[s] for s, m in zip(CANONICAL_SLOTS, mask, strict=True) if m}
        names = list(MODALITY_HINTS)
        sims = self.text_embeddings([query]) @ self.text_embeddings(
            [MODALITY_HINTS[n] for n in names]
        ).T
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
        """Captions of each 30 s epoch in ``[start_s, stop_s)``, one per present modality."""
        start = EPOCH_S * np.floor(start_s / EPOCH_S)
        n_ep = max(1, int(np.ceil((min(stop_s, rec.duration_s) - start) / EPOCH_S)))
        win = rec.canonical(float(start), float(start + n_ep * EPOCH_S))
        data = _pad_to(win.data, n_ep * WINDOW_N)
        windows = data.reshape(len(CANONICAL_SLOTS), n_ep, WINDOW_N).transpose(1, 0, 2)
        present = [m for m, types in MODALITY_TYPES.items() if _has(win.mask, types)]
        wanted = list(modalities) if modalities else ["stage_event", *present]
        out: list[Caption] = []
        for modality in wanted:
            texts = self.generate(windows, win.mask, modality, prompt=prompt, beam=beam)
            for k, t in enumerate(texts):
                out.append(Caption(float(start + k * EPOCH_S), EPOCH_S, "epoch", modality, t))
        return out

    def generate(
        self,
        windows: np.ndarray,
        mask: np.ndarray,
        modality: str,
        *,
        prompt: str | None = None,
        beam: int = 3,
    ) -> list[str]:
        """Generate one caption per canonical window (n, 12, 1920)."""
        from sleeplm_core.train.collate import zscore_windows

        x = torch.as_tensor(np.ascontiguousarray(windows), dtype=torch.float32)
        m = torch.as_tensor(np.broadcast_to(np.asarray(mask, bool), x.shape[:2]).copy())
        z = zscore_windows(x, m).to(self.device)
        return list(self.model.generate(z, m.to(self.device), modality, prompt=prompt, beam=beam))

    # ------------------------------------------------------------------ eval protocols
    def predict_stages(self, data: np.ndarray, sf: float, ch_name: str) -> list[str]:
        """Stage a single-channel recording (``Stager`` protocol of :mod:`sleeplm_core.eval`)."""
        canon, mask = canonical_from_array(data, sf, ch_name)
        n = canon.shape[1] // WINDOW_N
        windows = canon[:, : n * WINDOW_N].reshape(len(CANONICAL_SLOTS), n, WINDOW_N)
        proba = self.stage_proba(self.embed_windows(windows.transpose(1, 0, 2), mask))
        return [SCORED_STAGES[int(i)] for i in proba.argmax(axis=1)]

    def localize(
        self, data: np.ndarray, sf: float, ch_name: str, query: str, stride_s: float = 5.0
    ) -> list[tuple[float, float, float]]:
        """Localize ``query`` in a single channel: ``(onset_s, duration_s, score)`` rows."""
        canon, mask = canonical_from_array(data, sf, ch_name)
        onsets = np.arange(0.0, canon.shape[1] / CANONICAL_SF - WINDOW_S + 1e-9, stride_s)
        starts = np.round(onsets * CANONICAL_SF).astype(int)
        windows = np.stack([canon[:, s : s + WINDOW_N] for s in starts])
        emb = NightEmbeddings(onsets, WINDOW_S, self.embed_windows(windows, mask), mask, "")
        res = self.search(emb, query, top=10_000)
        return [(s.onset_s, s.duration_s, s.score) for s in res.segments]


def canonical_from_array(
    data: np.ndarray, sf: float, ch_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Place one channel into its canonical slot at 64 Hz.

    Returns
    -------
    (ndarray float32 (12, n), ndarray bool (12,))
        The canonical array and its slot mask.
    """
    from scipy.signal import resample_poly

    ctype = classify(ch_name)
    sources = pick_slots([(ch_name, ctype)])
    mask = np.array([s is not None for s in sources])
    if not mask.any():
        raise SleepLMError(None, f"channel {ch_name!r} fills no model input slot")
    ratio = Fraction(CANONICAL_SF / sf).limit_denominator(1000)
    x = np.asarray(data, np.float64)
    if ratio != 1:
        x = resample_poly(x, ratio.numerator, ratio.denominator, padtype="line")
    out = np.zeros((len(CANONICAL_SLOTS), x.shape[0]), np.float32)
    out[mask] = x
    return out, mask


def resource_template(book: str) -> Path:
    """Path of a caption template book (``sleeplm_core/captions/templates/<book>.json``)."""
    return Path(__file__).resolve().parent / "captions" / "templates" / f"{book}.json"


def _pad_to(data: np.ndarray, n: int) -> np.ndarray:
    if data.shape[1] >= n:
        return data
    return np.pad(data, ((0, 0), (0, n - data.shape[1])))


def _has(mask: np.ndarray, types: Sequence[str]) -> bool:
    return any(m and _SLOT_TYPES[s] in types for s, m in zip(CANONICAL_SLOTS, mask, strict=True))


def _merge(
    onsets: np.ndarray, window_s: float, scores: np.ndarray, thr: float
) -> list[tuple[float, float, float]]:
    """Merge overlapping windows scoring >= ``thr`` into (start, stop, best score) spans."""
    spans: list[tuple[float, float, float]] = []
    for i in np.flatnonzero(scores >= thr):
        a, b, s = float(onsets[i]), float(onsets[i] + window_s), float(scores[i])
        if spans and a <= spans[-1][1]:
            pa, pb, ps = spans[-1]
            spans[-1] = (pa, max(pb, b), max(ps, s))
        else:
            spans.append((a, b, s))
    return spans
