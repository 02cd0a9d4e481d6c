"""The published biosignal tower: per-channel patches, dual channel/temporal attention.

Written from the architecture the SleepLM paper (arXiv 2602.23605) and its released model
describe; parameter names follow the released state dict so that checkpoint loads with
``strict=True``. Input is ``x`` float (B, 10, 1920): the authors' 10 channels at 64 Hz.

1. A shared ``Conv1d(1, conv_embed_dim, 16, stride 16)`` patches every channel (120 patches),
   a linear layer lifts the patches to the model width and a channel-ID embedding is added.
2. Each :class:`DualBlock` runs attention across the channels of each patch (rotary
   positions with *learned* frequencies, one set shared by all blocks), then attention across
   the patches of each channel (fixed rotary frequencies); each attention and each SwiGLU MLP
   is followed by a post-norm residual (RMSNorm).
3. A final RMSNorm; the (C x P) tokens are read by two attention poolers: one query for the
   global token, ``decoder_tokens`` queries for the caption decoder's memory.
4. The global token queries the decoder tokens once more (``attn_pool``) and is projected to
   the shared space (``proj_to_embed``).

All channels attend to each other, missing ones (zeros) included: the released model was
trained that way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sleeplm_core.model.signal_encoder import RMSNorm
from sleeplm_core.published.config import SignalTowerConfig

RMS_EPS = 1e-6


class Rotary(nn.Module):
    """Interleaved rotary position embedding over ``dim`` features.

    Parameters
    ----------
    dim : int
        Head size (even).
    learned : bool
        Learnable frequencies (channel axis, small random init) instead of the fixed
        ``10000 ** (-2i / dim)`` (time axis).
    """

    def __init__(self, dim: int, learned: bool = False) -> None:
        super().__init__()
        if learned:
            self.freqs = nn.Parameter(torch.randn(dim // 2) * 0.02)
        else:
            fixed = 1.0 / (10000.0 ** (torch.arange(0, dim, 2).float() / dim))
            self.register_buffer("freqs", fixed)

    def forward(self, x: Tensor) -> Tensor:
        """Rotate ``x`` (B, H, L, dim) by its position along L (0, 1, ...)."""
        pos = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)
        angles = pos[:, None] * self.freqs.float()[None, :]  # (L, dim/2)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


class RotaryAttention(nn.Module):
    """Multi-head self-attention with rotary queries and keys (no biases on q, k, v)."""

    def __init__(self, width: int, heads: int, rotary: Rotary) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(width, width, bias=False)
        self.v_proj = nn.Linear(width, width, bias=False)
        self.out_proj = nn.Linear(width, width)
        self.rotary_emb = rotary

    def forward(self, x: Tensor) -> Tensor:
        """Attend within each sequence of ``x`` (B, L, D)."""
        b, n, d = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        q = self.rotary_emb(heads(self.q_proj(x)))
        k = self.rotary_emb(heads(self.k_proj(x)))
        out = F.scaled_dot_product_attention(q, k, heads(self.v_proj(x)))
        result: Tensor = self.out_proj(out.transpose(1, 2).reshape(b, n, d))
        return result


class _Gate(nn.Module):
    """The two input projections of the SwiGLU (released names ``w1``, ``w2``)."""

    def __init__(self, width: int, hidden: int, bias: bool) -> None:
        super().__init__()
        self.w1 = nn.Linear(width, hidden, bias=bias)
        self.w2 = nn.Linear(width, hidden, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """``silu(w1 x) * w2 x``."""
        out: Tensor = F.silu(self.w1(x)) * self.w2(x)
        return out


class GatedMLP(nn.Module):
    """SwiGLU MLP ``down(silu(w1 x) * w2 x)`` with the released parameter names."""

    def __init__(self, width: int, hidden: int, bias: bool, dropout: float) -> None:
        super().__init__()
        self.gate_proj = _Gate(width, hidden, bias)
        self.down_proj = nn.Linear(hidden, width, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP to the last dimension."""
        out: Tensor = self.drop(self.down_proj(self.drop(self.gate_proj(x))))
        return out


class DualBlock(nn.Module):
    """Channel attention + MLP, then temporal attention + MLP layers; post-norm residuals."""

    def __init__(self, cfg: SignalTowerConfig, channel_rope: Rotary) -> None:
        super().__init__()
        w, h = cfg.transformer_width, cfg.transformer_heads
        hidden = int(w * cfg.mlp_ratio)
        self.channel_attention = RotaryAttention(w, h, channel_rope)
        self.channel_norm = RMSNorm(w, eps=RMS_EPS)
        self.temporal_attention_layers = nn.ModuleList(
            RotaryAttention(w, h, Rotary(w // h)) for _ in range(cfg.num_temporal_layers)
        )
        self.temporal_norms = nn.ModuleList(
            RMSNorm(w, eps=RMS_EPS) for _ in range(cfg.num_temporal_layers)
        )
        self.channel_mlp = GatedMLP(w, hidden, cfg.mlp_bias, cfg.dropout)
        self.temporal_mlps = nn.ModuleList(
            GatedMLP(w, hidden, cfg.mlp_bias, cfg.dropout) for _ in range(cfg.num_temporal_layers)
        )
        self.channel_mlp_norm = RMSNorm(w, eps=RMS_EPS)
        self.temporal_mlp_norms = nn.ModuleList(
            RMSNorm(w, eps=RMS_EPS) for _ in range(cfg.num_temporal_layers)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Update tokens ``x`` (B, C, P, D)."""
        b, c, p, d = x.shape
        y = x.transpose(1, 2).reshape(b * p, c, d)  # the channels of each patch
        y = self.channel_norm(y + self.channel_attention(y))
        y = self.channel_mlp_norm(y + self.channel_mlp(y))
        y = (
            y.reshape(b, p, c, d).transpose(1, 2).reshape(b * c, p, d)
        )  # the patches of each channel
        layers = zip(self.temporal_attention_layers, self.temporal_norms, self.temporal_mlps,
                     self.temporal_mlp_norms, strict=True)  # fmt: skip
        for attn, norm, mlp, mlp_norm in layers:
            y = norm(y + attn(y))
            y = mlp_norm(y + mlp(y))
        out: Tensor = y.reshape(b, c, p, d)
        return out


class QueryPooler(nn.Module):
    """Attention pooling: ``n_query`` learned queries read a token sequence."""

    def __init__(self, width: int, heads: int, n_query: int) -> None:
        super().__init__()
        self.query_tokens = nn.Parameter(torch.randn(1, n_query, width) * 0.02)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, tokens: Tensor) -> Tensor:
        """Pool ``tokens`` (B, L, D) into (B, n_query, D)."""
        q = self.query_tokens.expand(tokens.shape[0], -1, -1)
        out: Tensor = self.attn(q, tokens, tokens, need_weights=False)[0]
        return out


class ChannelPatching(nn.Module):
    """One Conv1d applied to every channel alone: (B, C, T) to (B, C, P, conv_embed_dim)."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.conv_patching = nn.Conv1d(1, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """Patch every channel of ``x``."""
        b, c, t = x.shape
        out: Tensor = self.conv_patching(x.reshape(b * c, 1, t))
        return out.reshape(b, c, out.shape[1], out.shape[2]).transpose(2, 3)


class PublishedSignalTower(nn.Module):
    """The biosignal tower; :meth:`forward` gives the embedding and the decoder memory."""

    def __init__(self, cfg: SignalTowerConfig, embed_dim: int) -> None:
        super().__init__()
        w, h = cfg.transformer_width, cfg.transformer_heads
        self.cfg = cfg
        self.proj_to_embed = nn.Linear(w, embed_dim)
        self.attn_pool = nn.MultiheadAttention(w, h, batch_first=True)
        self.patching = ChannelPatching(cfg.patch_size, cfg.conv_embed_dim)
        self.embed_projection = nn.Linear(cfg.conv_embed_dim, w)
        self.channel_id_embed = nn.Embedding(cfg.input_channels, w)
        shared = Rotary(w // h, learned=True)
        if cfg.share_channel_rope:
            self.shared_channel_rope = shared
        self.transformer_blocks = nn.ModuleList(
            DualBlock(cfg, shared if cfg.share_channel_rope else Rotary(w // h, learned=True))
            for _ in range(cfg.transformer_layers)
        )
        self.ln_final = RMSNorm(w, eps=RMS_EPS)
        self.contrastive_pooler = QueryPooler(w, h, 1)
        self.decoder_pooler = QueryPooler(w, h, cfg.decoder_tokens)

    def tokens(self, x: Tensor) -> Tensor:
        """The final-normed patch tokens (B, C, P, D) of ``x`` (B, C, T)."""
        t = self.embed_projection(self.patching(x))
        t = t + self.channel_id_embed.weight[None, :, None, :]
        for block in self.transformer_blocks:
            t = block(t)
        out: Tensor = self.ln_final(t)
        return out

    def pool(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Embedding (B, embed_dim, unnormalised) and decoder memory of tokens (B, C, P, D)."""
        seq = tokens.flatten(1, 2)
        global_token = self.contrastive_pooler(seq)
        memory = self.decoder_pooler(seq)
        pooled = self.attn_pool(global_token, memory, memory, need_weights=False)[0]
        return self.proj_to_embed(pooled[:, 0]), memory

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Embed windows ``x`` (B, C, T).

        Returns
        -------
        (Tensor, Tensor)
            The unnormalised embedding (B, embed_dim) and the decoder memory
            (B, decoder_tokens, width).
        """
        return self.pool(self.tokens(x))
