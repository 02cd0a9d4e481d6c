"""Turn dataset samples into model batches: z-scoring, caption choice, tokens.

Samples are dicts as yielded by ``sleeplm_core.data.dataset.ShardDataset`` (and
:class:`sleeplm_core.train.synthetic_data.SyntheticEpochs`):

- ``signal`` float32 (12, 1920) in **physical units** (uV, %, ...), zeros for missing channels,
- ``mask`` bool (12,), ``stage`` int (YASA code), ``captions`` {modality: str}.

The per-window z-scoring happens here, through
:func:`sleeplm_core.model.signal_encoder.zscore_windows` (inference uses the same function):
each present channel of each epoch gets ``(x - mean) / std`` over its 1,920 samples; flat
channels (std < 1e-6, e.g. an unchanging body position) and missing channels become zeros;
NaNs become zeros. Z-scoring an already z-scored window changes nothing, so either kind of
input is fine.

For each epoch one caption is chosen (at random, seeded, among ``modalities`` that the epoch
has); it is both the contrastive text and the captioning target, with its modality as prefix.
With probability ``prompt_prob`` the caption is split at a random word: the first words become
the free-text prompt (not scored) and the decoder learns to continue them, which is what
``SleepLM.generate(..., prompt=...)`` asks of it. The contrastive text stays the whole caption.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

from sleeplm_core.model.config import EPOCH_SAMPLES
from sleeplm_core.model.phrases import training_wordings
from sleeplm_core.model.prompts import EVENT_TYPES, LABEL_TYPES
from sleeplm_core.model.signal_encoder import zscore_windows
from sleeplm_core.model.tokenizer import CaptionTokenizer, modality_id
from sleeplm_core.stages import EPOCH_S

__all__ = ["SleepLMCollator", "event_patch_masks", "text_id", "zscore_windows"]

PATCH_SIZE = 16
"""Samples per signal patch of the bundled configs (0.25 s at 64 Hz): 120 patches per epoch."""


def patch_grid(patch_size: int) -> tuple[int, float]:
    """Patches per 30-s epoch and seconds per patch for ``patch_size`` samples at 64 Hz."""
    n_patches = EPOCH_SAMPLES // patch_size
    return n_patches, EPOCH_S / n_patches


N_PATCHES, PATCH_S = patch_grid(PATCH_SIZE)


def event_patch_masks(
    events: Sequence[Sequence[tuple[str, float, float]]],
    *,
    n_patches: int = N_PATCHES,
    patch_s: float = PATCH_S,
) -> torch.Tensor:
    """Per-patch event masks (B, K, P) for the K types of ``prompts.EVENT_TYPES``.

    ``events[b]`` lists ``(label, onset_s, duration_s)`` relative to epoch b's start; a patch
    ``[t * patch_s, (t + 1) * patch_s)`` is 1 for type k when an event whose label counts for
    k overlaps it (zero-length events mark the patch they fall in). Unknown labels are ignored.
    """
    out = torch.zeros(len(events), len(EVENT_TYPES), n_patches)
    for b, rows in enumerate(events):
        for label, onset, dur in rows:
            types = LABEL_TYPES.get(label)
            if not types:
                continue
            first = max(0, int(np.floor(onset / patch_s)))
            last = min(n_patches, int(np.ceil((onset + max(dur, 1e-6)) / patch_s)))
            if last <= first:
                continue
            for k in types:
                out[b, k, first:last] = 1.0
    return out


def type_validity(mask: torch.Tensor) -> torch.Tensor:
    """(B, K) bool: whether each sample has a channel on which event type k can be seen."""
    cols = [mask[:, list(t.slots)].any(dim=1) for t in EVENT_TYPES]
    return torch.stack(cols, dim=1)


def text_id(text: str) -> int:
    """Stable int64 id of a text (same on every rank and run), for multi-positive targets."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class SleepLMCollator:
    """Collate function for the training loop.

    Parameters
    ----------
    tokenizer : CaptionTokenizer
        Caption vocabulary.
    modalities : sequence of str
        Caption modalities to train on.
    max_len : int
        Decoder positions (``DecoderConfig.max_len``).
    seed : int
        Seed of the caption choice (combine with the rank for DDP).
    patch_size : int
        The signal tower's samples per patch (``SignalEncoderConfig.patch_size``): the
        resolution of the event masks the localization loss is trained on.
    """

    def __init__(
        self,
        tokenizer: CaptionTokenizer,
        modalities: Sequence[str],
        *,
        max_len: int = 64,
        seed: int = 0,
        prompt_prob: float = 0.0,
        absent_prob: float = 0.0,
        patch_size: int = PATCH_SIZE,
    ) -> None:
        self.tokenizer = tokenizer
        self.n_patches, self.patch_s = patch_grid(patch_size)
        self.absent_prob = absent_prob
        self.modalities = list(modalities)
        self.max_len = max_len
        self.prompt_prob = prompt_prob
        self.seed = seed
        self.rng = random.Random(seed)
        self._worker: int | None = None

    def choose(self, captions: dict[str, str], mask: np.ndarray | None = None) -> tuple[str, str]:
        """Pick ``(modality, caption)`` among the epoch's captions for our modalities.

        With probability ``absent_prob`` (when ``mask`` lacks a modality) the target is the
        fixed answer for that absent modality instead ("no heart channels in this
        recording"), so the decoder learns to say so rather than describe a missing channel.
        """
        if mask is not None and self.absent_prob > 0 and self.rng.random() < self.absent_prob:
            from sleeplm_core.grounding import absent_text, present_modalities

            present = present_modalities(np.asarray(mask, bool))
            absent = [m for m in self.modalities if m != "stage_event" and m not in present]
            if absent:
                m = self.rng.choice(absent)
                return m, absent_text(m)
        options = [m for m in self.modalities if captions.get(m)]
        if not options:
            return self.modalities[0], ""
        m = self.rng.choice(options)
        return m, captions[m]

    def split_prompt(self, caption: str) -> tuple[str | None, str]:
        """``(prompt, continuation)``: sometimes the caption's first words, else ``(None, all)``."""
        words = caption.split()
        if len(words) < 2 or self.rng.random() >= self.prompt_prob:
            return None, caption
        k = self.rng.randint(1, len(words) - 1)
        return " ".join(words[:k]), " ".join(words[k:])

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack samples into a batch dict.

        Returns
        -------
        dict
            ``signal`` float (B, 12, 1920) z-scored, ``mask`` bool (B, 12), ``stage`` int64
            (B,), ``texts`` list[str], ``modalities`` list[str], ``text_ids`` int64 (B,),
            ``modality_ids`` int64 (B,), ``caption_tokens`` / ``caption_targets`` int64 (B, L),
            ``event_masks`` float (B, K, P), one row per patch and ``type_valid`` bool (B, K) (see
            :func:`event_patch_masks`), ``loc_phrases`` list[str]: one wording per event
            type, drawn for this batch from :func:`~sleeplm_core.model.phrases.
            training_wordings`.
        """
        worker = get_worker_info()
        if worker is not None and self._worker != worker.id:
            # each DataLoader worker holds a copy of this object: give each its own choices
            self._worker = worker.id
            self.rng = random.Random(self.seed * 1000 + 1 + worker.id)
        signal = torch.stack([torch.as_tensor(np.asarray(s["signal"])) for s in samples])
        mask = torch.stack(
            [torch.as_tensor(np.asarray(s["mask"]), dtype=torch.bool) for s in samples]
        )
        chosen = [
            self.choose(dict(s.get("captions") or {}), np.asarray(s["mask"], bool))
            for s in samples
        ]
        texts = [c for _, c in chosen]
        prompts, targets_text = zip(*(self.split_prompt(t) for t in texts), strict=True)
        tokens, targets = self.tokenizer.batch_encode(
            list(targets_text), prompts=list(prompts), max_len=self.max_len
        )
        return {
            "signal": zscore_windows(signal, mask),
            "mask": mask,
            "stage": torch.tensor([int(s.get("stage", -2)) for s in samples], dtype=torch.long),
            "texts": texts,
            "modalities": [m for m, _ in chosen],
            "text_ids": torch.tensor([text_id(t) for t in texts], dtype=torch.long),
            "modality_ids": torch.tensor([modality_id(m) for m, _ in chosen], dtype=torch.long),
            "caption_tokens": tokens,
            "caption_targets": targets,
            "event_masks": event_patch_masks(
                [s.get("events") or () for s in samples],
                n_patches=self.n_patches,
                patch_s=self.patch_s,
            ),
            "type_valid": type_validity(mask),
            # drawn fresh each step from the whole training bank (>= 30 wordings per type)
            "loc_phrases": [self.rng.choice(training_wordings(t.name)) for t in EVENT_TYPES],
        }
