"""PublishedCoCa: the SleepLM-Base module (signal tower, text tower, caption decoder).

>>> cfg = load_config("sleeplm-base-published")        # doctest: +SKIP
>>> m = PublishedCoCa(cfg).eval()                       # doctest: +SKIP
>>> out = m(x, ids, modality_ids)                       # doctest: +SKIP

``forward`` returns a dict, as the house style asks of models: ``signal_features`` and
``text_features`` (L2-normalised, (B, embed_dim)), ``caption_logits`` (B, L-1, V) aligned with
``ids[:, 1:]`` (the caption shift happens here and nowhere else), ``signal_memory`` and
``logit_scale``. ``state_dict()`` has exactly the released checkpoint's keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sleeplm_core.published.config import PublishedConfig
from sleeplm_core.published.signal_tower import PublishedSignalTower
from sleeplm_core.published.text_tower import CaptionDecoder, PublishedTextTower

MODALITY_INDEX: dict[str, int] = {
    "brain": 0, "heart": 1, "respiratory": 2, "position_muscle": 3, "stage_event": 4,
}  # fmt: skip
"""The released model's caption modalities (their ``channel_indices``)."""
MAX_LOGIT_SCALE = 100.0


class PublishedCoCa(nn.Module):
    """The published SleepLM-Base architecture.

    Parameters
    ----------
    cfg : PublishedConfig
        Sizes from the authors' config JSON (see :mod:`sleeplm_core.published.config`).
    """

    def __init__(self, cfg: PublishedConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        width = cfg.decoder.width
        self.channel_embeddings = nn.Parameter(torch.randn(cfg.num_caption_channels, width) * 0.02)
        self.padding_embedding = nn.Parameter(torch.randn(width) * 0.02)
        self.text = PublishedTextTower(cfg.text, cfg.embed_dim)
        self.biosignals = PublishedSignalTower(cfg.signal, cfg.embed_dim)
        self.text_decoder = CaptionDecoder(cfg.decoder, cfg.text.vocab_size, cfg.prefix_len)

    def encode_signal(self, x: Tensor, normalize: bool = True) -> tuple[Tensor, Tensor]:
        """Embedding (B, embed_dim) and decoder memory (B, M, width) of windows ``x``."""
        emb, memory = self.biosignals(x)
        return (F.normalize(emb, dim=-1) if normalize else emb), memory

    def encode_text(self, ids: Tensor, normalize: bool = True) -> Tensor:
        """Text embeddings (B, embed_dim) of token ids (B, L)."""
        emb = self.text(ids)[0]
        return F.normalize(emb, dim=-1) if normalize else emb

    def prefix(self, modality_ids: Tensor) -> Tensor:
        """Prefix embeddings (B, K, width) of modality indices (B, K); -1 is padding."""
        emb = self.channel_embeddings[modality_ids.clamp_min(0)]
        return torch.where((modality_ids < 0)[..., None], self.padding_embedding, emb)

    def caption_logits(self, memory: Tensor, ids: Tensor, modality_ids: Tensor | None) -> Tensor:
        """Next-token logits (B, L, V) for every position of ``ids`` (B, L)."""
        tokens = self.text(ids)[1]
        prefix = None if modality_ids is None else self.prefix(modality_ids)
        logits: Tensor = self.text_decoder(memory, tokens, prefix)
        return logits

    def forward(
        self, x: Tensor, ids: Tensor, modality_ids: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Contrastive features and teacher-forced caption logits.

        Parameters
        ----------
        x : Tensor (B, C, T)
            Windows in the released channel order, preprocessed
            (:func:`sleeplm_core.published.preprocess.to_model_input`).
        ids : Tensor (B, L)
            Caption token ids (start token first, padding 0).
        modality_ids : Tensor (B, K), optional
            Caption modality prefix (``MODALITY_INDEX``), -1 for unused slots.
        """
        signal, memory = self.encode_signal(x)
        text_emb, tokens = self.text(ids)
        prefix = None if modality_ids is None else self.prefix(modality_ids)
        logits = self.text_decoder(memory, tokens[:, :-1], prefix)
        return {
            "signal_features": signal,
            "text_features": F.normalize(text_emb, dim=-1),
            "caption_logits": logits,
            "signal_memory": memory,
            "logit_scale": self.logit_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp(),
        }
