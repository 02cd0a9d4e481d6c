"""The published SleepLM-Base behind our :class:`~sleeplm_core.inference.Predictor` contract.

``Predictor.load(DIR)`` returns a :class:`PublishedPredictor` when the checkpoint's meta says
``"family": "published"``, so the CLI (``stage``, ``search``, ``caption``, ``embed``) and the
viewer use either family unchanged. What differs from our own model:

- **Windows** are 30 s apart (one per epoch; :data:`STRIDE_S`): the released model has no
  per-patch text-aligned features, so there is no dense 4 Hz track to interpolate.
- **Staging** is zero-shot from stage sentences in the released caption style
  (:mod:`sleeplm_core.published.prompts`), several wordings per stage, averaged.
- **Search** ranks windows by signal-text similarity of the (expanded) query; windows whose
  similarity stands :data:`RELATIVE_Z` standard deviations above the night's mean (or over a
  calibrated ``epoch_threshold``) merge into segments. For event queries the best
  ``refine`` segments are captioned (``stage_event``, greedy) and the event spans the caption
  states ("... event occurs from 3.2 to 18.0 seconds") replace the window bounds when the
  stated event is the one asked for.
- **Captions** come from our greedy or group beam search (:mod:`.generation`) with the
  released modality prefix (brain 0, heart 1, respiratory 2, position_muscle 3 = our
  ``somatic``, stage_event 4).
- bf16 autocast on CUDA, float32 elsewhere; the batch size follows free GPU memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sleeplm_core.batching import RawFuture, Submit, ready
from sleeplm_core.errors import CheckpointError, SleepLMError
from sleeplm_core.inference import Predictor, Progress, ShouldStop
from sleeplm_core.published.checkpoint import load_published
from sleeplm_core.published.generation import greedy, group_beam_search
from sleeplm_core.published.model import MODALITY_INDEX, PublishedCoCa
from sleeplm_core.published.preprocess import to_model_input
from sleeplm_core.published.prompts import (
    event_bank,
    event_sentence,
    event_spans,
    stage_prompts,
)
from sleeplm_core.published.tokenizer import ClipTokenizer
from sleeplm_core.results import NightEmbeddings, SearchResult, Segment
from sleeplm_core.tracks import merge_windows

STRIDE_S = 30.0
RELATIVE_Z = 2.0
"""Uncalibrated search: a window matches when its similarity is this many SD above the mean."""
MODALITIES = {**MODALITY_INDEX, "somatic": MODALITY_INDEX["position_muscle"]}
MAX_CAPTION_TOKENS = 128
MIN_CAPTION_TOKENS = 16  # the authors' demo
WINDOW_MIB = {"cpu": 48.0, "cuda": 24.0}
"""Rough working memory of one window in the signal tower (MiB), for the batch size."""


class PublishedPredictor(Predictor):
    """A loaded published-family model; build it with :meth:`load`.

    Parameters
    ----------
    model : PublishedCoCa
        The model in eval mode on ``device``.
    meta : dict
        The checkpoint's metadata (``family``, ``config``, ``weights_sha256`` ...).
    device : torch.device
        Where it runs.
    position_coding : str
        The recordings' body-position coding (see
        :func:`~sleeplm_core.published.preprocess.coding`).
    """

    stride_s = STRIDE_S

    def __init__(self, model: PublishedCoCa, meta: dict[str, Any], device: torch.device,
                 position_coding: str = "canonical") -> None:  # fmt: skip
        super().__init__(model, meta, device)
        self.tokenizer = ClipTokenizer(model.cfg.text.context_length)
        self.position_coding = position_coding
        digest = str(meta.get("weights_sha256", ""))[:12] or str(int(meta.get("step", 0)))
        self.model_id = f"{model.cfg.name}@{digest}"
        self._source: tuple[NightEmbeddings, Any] | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | None = None) -> PublishedPredictor:
        """Load a published-family checkpoint folder on CUDA, MPS or the CPU.

        Raises
        ------
        CheckpointError
            When the folder holds no valid published-family checkpoint.
        """
        from sleeplm_core.train.device import pick_device

        if path is None:
            raise CheckpointError(None, "give the folder of an imported SleepLM-Base checkpoint")
        dev = pick_device(prefer=device)
        model, meta = load_published(path, dev)
        return cls(model, meta, dev)

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        with torch.inference_mode():
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    yield
            else:
                yield

    def batch_size(self) -> int:
        """Windows per forward pass: from free GPU memory on CUDA, 16 elsewhere."""
        if self.device.type != "cuda":
            return 16
        free, _ = torch.cuda.mem_get_info(self.device)
        return int(np.clip(0.5 * free / (WINDOW_MIB["cuda"] * 2**20), 1, 512))

    def model_input(self, windows: np.ndarray, mask: np.ndarray) -> torch.Tensor:
        """Canonical windows (n, 12, 1920) -> the released input on the device."""
        x = to_model_input(windows, mask, self.position_coding)
        return torch.from_numpy(x).to(self.device)

    # ------------------------------------------------------------------ embeddings
    def embed_windows_dense(
        self, signal: np.ndarray, mask: np.ndarray, batch: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalised window embeddings (n, 512); no dense features (n, 0, 512)."""
        n, dim = signal.shape[0], self.model.cfg.embed_dim
        batch = batch or self.batch_size()
        out = []
        with self._autocast():
            for i in range(0, n, batch):
                m = np.broadcast_to(np.asarray(mask, bool), (n, signal.shape[1]))[i : i + batch]
                emb, _ = self.model.encode_signal(self.model_input(signal[i : i + batch], m))
                out.append(emb.float().cpu().numpy())
        e = np.concatenate(out) if out else np.zeros((0, dim), np.float32)
        return e.astype(np.float32), np.zeros((n, 0, dim), np.float16)

    def _submit_raw(
        self, signal: np.ndarray, mask: np.ndarray, batch: int | None, submit: Submit
    ) -> list[RawFuture]:
        # the released model has its own embedding path (no raw outputs, no dense features)
        e, d = self.embed_windows_dense(signal, mask, batch)
        return [ready((torch.from_numpy(e), torch.from_numpy(d)))]

    def _finish(self, parts: list[RawFuture]) -> tuple[np.ndarray, np.ndarray]:
        outs = [f.result() for f in parts]
        return (np.concatenate([e.numpy() for e, _ in outs]),
                np.concatenate([d.numpy() for _, d in outs]))  # fmt: skip

    def _finish_embeddings(self, parts: list[RawFuture]) -> np.ndarray:
        return self._finish(parts)[0]

    def embed_for_staging(
        self,
        rec: Any,
        *,
        use_cache: bool = True,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
    ) -> NightEmbeddings:
        """Every channel, windows 30 s apart (cached like :meth:`embed_recording`).

        The released model was not measured on the staging montage, so it keeps the input
        its parity tests cover.
        """
        return self.embed_recording(
            rec, stride_s=STRIDE_S, use_cache=use_cache, progress=progress,
            should_stop=should_stop,
        )  # fmt: skip

    def embed_recording(
        self, rec: Any, *, stride_s: float = STRIDE_S, **kwargs: Any
    ) -> NightEmbeddings:
        """Like :meth:`Predictor.embed_recording`, with windows at least 30 s apart.

        The recording is remembered with its embeddings, so that :meth:`search` can caption
        the best windows of an event query.
        """
        emb = super().embed_recording(rec, stride_s=max(float(stride_s), STRIDE_S), **kwargs)
        self._source = (emb, rec)
        return emb

    # ------------------------------------------------------------------ text side
    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """CLIP-tower embeddings float32 (n, 512), L2-normalised, cached by text."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if todo:
            ids = self.tokenizer(todo).to(self.device)
            with self._autocast():
                vecs = self.model.encode_text(ids).float().cpu().numpy()
            self._text_cache.update(zip(todo, vecs, strict=True))
        return np.stack([self._text_cache[t] for t in texts])

    def sentence_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """The released text tower is the sentence encoder too (no separate MiniLM)."""
        return self.text_embeddings(texts)

    def query_bank(self) -> list[str]:
        """Event and stage sentences in the released caption style."""
        stages = [p for ps in self.stage_prompts().values() for p in ps]
        return [*event_bank().values(), *stages]

    def stage_prompts(self) -> dict[str, list[str]]:
        """Stage sentences in the released caption style."""
        return stage_prompts()

    def logit_scale(self) -> float:
        """The released contrastive temperature (exp of ``logit_scale``, at most 100)."""
        return float(self.model.logit_scale.detach().float().exp().clamp(max=100.0))

    # ------------------------------------------------------------------ search
    def is_event_query(self, query: str) -> bool:
        """Whether a query is closer to an event sentence than to every stage sentence."""
        q = self.text_embeddings([query])[0]
        stages = [p for ps in self.stage_prompts().values() for p in ps]
        events = list(event_bank().values())
        return float((self.text_embeddings(events) @ q).max()) > float(
            (self.text_embeddings(stages) @ q).max()
        )

    def search(self, emb: NightEmbeddings, query: str, *, top: int = 10,
               min_score: float | None = None, refine: int = 5) -> SearchResult:  # fmt: skip
        """Window-level search, event spans refined from generated captions (module doc).

        Raises
        ------
        SleepLMError
            For an empty query.
        """
        text = query.strip()
        if not text:
            raise SleepLMError(None, "the query is empty: type what to look for")
        scores = emb.embeddings @ self.query_embedding(text)
        if min_score is not None:
            thr = float(min_score)
        elif "epoch_threshold" in (self.meta.get("calibration") or {}):
            thr = self.epoch_threshold
        else:
            thr = float(scores.mean() + RELATIVE_Z * scores.std()) if len(scores) > 1 else 0.0
        spans = sorted(merge_windows(emb.onsets_s, emb.window_s, scores, thr), key=lambda s: -s[2])[
            :top
        ]
        types = self.query_channel_types(text, emb.mask)
        found = [Segment(a, b - a, sc, types) for a, b, sc in spans]
        rec = self._source[1] if self._source is not None and self._source[0] is emb else None
        if refine and found and rec is not None and self.is_event_query(text):
            found = [self._refine(rec, seg, text, emb, scores) if k < refine else seg
                     for k, seg in enumerate(found)]  # fmt: skip
        best = [float(v) for v in np.sort(scores)[::-1][:5]]
        return SearchResult(text, found, thr, best)

    def _refine(self, rec: Any, seg: Segment, query: str, emb: NightEmbeddings,
                scores: np.ndarray) -> Segment:  # fmt: skip
        """The segment cut to the event span its best window's stage_event caption states."""
        inside = np.flatnonzero((emb.onsets_s >= seg.onset_s - 1e-6)
                                & (emb.onsets_s < seg.onset_s + seg.duration_s))  # fmt: skip
        if inside.size == 0:
            return seg
        onset = float(emb.onsets_s[inside[np.argmax(scores[inside])]])
        win = rec.canonical(onset, onset + emb.window_s)
        caption = self.generate(win.data[None], win.mask, "stage_event", beam=1)[0]
        spans = event_spans(caption)
        if not spans:
            return Segment(seg.onset_s, seg.duration_s, seg.score, seg.channel_types, caption)
        q = self.text_embeddings([query])[0]
        sims = self.text_embeddings([event_sentence(label) for label, _, _ in spans]) @ q
        label, a, b = spans[int(np.argmax(sims))]
        b = min(b, emb.window_s)
        return Segment(onset + a, max(b - a, 0.0), seg.score, seg.channel_types, caption)

    # ------------------------------------------------------------------ captions
    def generate(self, windows: np.ndarray, mask: np.ndarray, modality: str, *,
                 prompt: str | None = None, beam: int = 3) -> list[str]:  # fmt: skip
        """One caption per canonical window (n, 12, 1920) for ``modality``.

        ``beam`` > 1 runs the group beam search of the authors' demo (3 beams in 3 groups);
        1 runs greedy decoding. A ``prompt`` is not supported by the released decoder.

        Raises
        ------
        SleepLMError
            For an unknown modality or a prompt.
        """
        if modality not in MODALITIES:
            raise SleepLMError(None, f"no caption modality {modality!r} in SleepLM-Base "
                                     f"(known: {', '.join(MODALITIES)})")  # fmt: skip
        if prompt:
            raise SleepLMError(
                None, "SleepLM-Base captions take no prompt (use our model for prompts)"
            )
        prefix = [MODALITIES[modality]] + [-1] * (self.model.cfg.prefix_len - 1)
        texts: list[str] = []
        batch = max(1, self.batch_size() // 4)
        with self._autocast():
            for i in range(0, len(windows), batch):
                m = np.broadcast_to(np.asarray(mask, bool), (len(windows), windows.shape[1]))
                x = self.model_input(windows[i : i + batch], m[i : i + batch])
                _, memory = self.model.encode_signal(x)
                mods = torch.tensor([prefix] * len(x), device=self.device)
                kw = {"max_len": MAX_CAPTION_TOKENS, "min_len": MIN_CAPTION_TOKENS}
                ids = (group_beam_search(self.model, memory, mods, num_beams=3, num_groups=3, **kw)
                       if beam > 1 else greedy(self.model, memory, mods, **kw))  # fmt: skip
                texts.extend(self.tokenizer.decode(row.tolist()) for row in ids.cpu())
        return texts
