"""The published text side: a CLIP text transformer and the cross-attention caption decoder.

Both follow OpenCLIP's CoCa layout (the parameter names of the released state dict):

- :class:`PublishedTextTower` embeds token ids (B, L), appends a learned CLS embedding, runs
  causal pre-norm residual blocks and returns the CLS token, layer-normed and projected
  (B, embed_dim), plus the per-token outputs (B, L, width) that feed the decoder. As in the
  released weights, the padding mask is the *legacy* CoCa one: key ``j + 1`` is hidden when
  token ``j`` is padding and key 0 is always visible (OpenCLIP's ``correct_cls_mask=False``).
- :class:`CaptionDecoder` prepends the modality prefix (``prefix_len`` embeddings) to those
  token outputs; each layer is causal self-attention (the prefix sees itself, text sees the
  prefix and earlier text), then cross-attention to the signal tower's decoder memory. The
  output is projected onto the vocabulary; the prefix positions are dropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sleeplm_core.published.config import DecoderConfig, TextTowerConfig


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and returned in the input's dtype (bf16 autocast)."""

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` over its last dimension."""
        return F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias,
                            self.eps).to(x.dtype)  # fmt: skip


class ResidualBlock(nn.Module):
    """Pre-norm attention (self- or cross-) and a GELU MLP, with residuals."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, cross: bool = False) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        if cross:
            self.ln_1_kv = LayerNorm(width)
        self.ln_2 = LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, hidden))
        self.mlp.add_module("gelu", nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(hidden, width))

    def forward(
        self, x: Tensor, memory: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """Update ``x`` (B, L, D); with ``memory`` (B, M, D) attend to it instead of to ``x``."""
        q = self.ln_1(x)
        kv = self.ln_1_kv(memory) if memory is not None else q
        mask = mask.to(q.dtype) if mask is not None else None
        x = x + self.attn(q, kv, kv, need_weights=False, attn_mask=mask)[0]
        out: Tensor = x + self.mlp(self.ln_2(x))
        return out


class _Blocks(nn.Module):
    def __init__(self, width: int, heads: int, layers: int, mlp_ratio: float) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ResidualBlock(width, heads, mlp_ratio) for _ in range(layers)
        )


def causal_mask(n: int, device: torch.device | None = None) -> Tensor:
    """Additive mask (n, n): 0 on and below the diagonal, -inf above."""
    return torch.full((n, n), float("-inf"), device=device).triu_(1)


class PublishedTextTower(nn.Module):
    """The CLIP text transformer with an appended CLS embedding."""

    def __init__(self, cfg: TextTowerConfig, embed_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.cls_emb = nn.Parameter(torch.randn(cfg.width) * 0.01)
        self.positional_embedding = nn.Parameter(
            torch.randn(cfg.context_length + 1, cfg.width) * 0.01
        )
        self.transformer = _Blocks(cfg.width, cfg.heads, cfg.layers, cfg.mlp_ratio)
        self.ln_final = LayerNorm(cfg.width)
        self.text_projection = nn.Parameter(torch.randn(cfg.width, embed_dim) * cfg.width**-0.5)

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Encode token ids (B, L), L <= context length.

        Returns
        -------
        (Tensor, Tensor)
            The unnormalised text embedding (B, embed_dim) and the token outputs (B, L, width).
        """
        b, n = ids.shape
        x = self.token_embedding(ids)
        x = torch.cat([x, self.cls_emb.to(x.dtype).expand(b, 1, -1)], dim=1)
        x = x + self.positional_embedding[: n + 1].to(x.dtype)
        visible = torch.cat([ids.new_ones(b, 1, dtype=torch.bool), ids != self.cfg.pad_id], 1)
        pad = torch.zeros(b, 1, n + 1, device=ids.device).masked_fill_(
            ~visible[:, None], float("-inf")
        )
        mask = (causal_mask(n + 1, ids.device)[None] + pad).repeat_interleave(self.cfg.heads, 0)
        for block in self.transformer.resblocks:
            x = block(x, mask=mask)
        pooled = self.ln_final(x[:, -1]) @ self.text_projection.to(x.dtype)
        return pooled, x[:, :-1]


class CaptionDecoder(nn.Module):
    """Causal self-attention over prefix + text, cross-attention to the signal memory."""

    def __init__(self, cfg: DecoderConfig, vocab_size: int, prefix_len: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.prefix_len = prefix_len
        self.resblocks = nn.ModuleList(
            ResidualBlock(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.layers)
        )
        self.cross_attn = nn.ModuleList(
            ResidualBlock(cfg.width, cfg.heads, cfg.mlp_ratio, cross=True)
            for _ in range(cfg.layers)
        )
        self.ln_final = LayerNorm(cfg.width)
        self.text_projection = nn.Parameter(torch.randn(cfg.width, vocab_size) * cfg.width**-0.5)

    def forward(self, memory: Tensor, tokens: Tensor, prefix: Tensor | None = None) -> Tensor:
        """Vocabulary logits (B, L, V) for text token outputs ``tokens`` (B, L, D).

        Parameters
        ----------
        memory : Tensor (B, M, D)
            The signal tower's decoder tokens.
        tokens : Tensor (B, L, D)
            The text tower's token outputs.
        prefix : Tensor (B, K, D), optional
            Modality prefix embeddings, K <= ``prefix_len``.
        """
        k = 0 if prefix is None else prefix.shape[1]
        x = tokens if prefix is None else torch.cat([prefix.to(tokens.dtype), tokens], dim=1)
        n = x.shape[1]
        # the prefix attends to itself only; text attends to the prefix and to earlier text.
        # A large finite negative, as in the released model (bf16-safe)
        neg = -torch.finfo(torch.float32).max
        mask = torch.zeros(n, n, device=x.device)
        mask[:k, k:] = neg
        mask[k:, k:].masked_fill_(torch.ones(n - k, n - k, dtype=torch.bool, device=x.device)
                                  .triu_(1), neg)  # fmt: skip
        for self_block, cross_block in zip(self.resblocks, self.cross_attn, strict=True):
            x = self_block(x, mask=mask)
            x = cross_block(x, memory=memory)
        logits: Tensor = self.ln_final(x[:, k:]) @ self.text_projection.to(x.dtype)
        return logits
