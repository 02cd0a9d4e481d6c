"""Reconstruction head: from the pooled signal tokens back to the (12, 1920) epoch.

One query per (channel, patch) position, built from a learned channel embedding plus a learned
time embedding, cross-attends to the ``decoder_tokens`` (B, Q, D) of the signal tower; a linear
layer turns each query into its 16 samples. Because everything passes through the Q pooled
tokens, the pooled representation has to keep the waveform ("physiological fidelity"). The
loss (only on present channels, optionally only on masked patches) is
:class:`sleeplm_core.losses.ReconstructionLoss`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sleeplm_core.model.config import ReconConfig, SignalEncoderConfig
from sleeplm_core.model.signal_encoder import MultiHeadAttention


class _CrossBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(width)
        self.attn = MultiHeadAttention(width, heads)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)
        )

    def forward(self, q: Tensor, memory: Tensor) -> Tensor:
        q = q + self.attn(self.norm_q(q), memory)
        result: Tensor = q + self.mlp(self.norm_mlp(q))
        return result


class ReconstructionHead(nn.Module):
    """Pooled tokens (B, Q, D_signal) -> signal (B, C, T)."""

    def __init__(self, cfg: ReconConfig, signal_cfg: SignalEncoderConfig) -> None:
        super().__init__()
        w = cfg.width
        self.n_channels = signal_cfg.n_channels
        self.n_patches = signal_cfg.n_samples // signal_cfg.patch_size
        self.patch_size = signal_cfg.patch_size
        self.channel_embed = nn.Parameter(torch.randn(self.n_channels, w) * 0.02)
        self.time_embed = nn.Parameter(torch.randn(self.n_patches, w) * 0.02)
        self.memory_proj = nn.Sequential(nn.Linear(signal_cfg.width, w), nn.LayerNorm(w))
        self.blocks = nn.ModuleList(_CrossBlock(w, cfg.heads) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, self.patch_size)

    def forward(self, memory: Tensor) -> Tensor:
        """Reconstructed signal, float (B, C, T), in z-score units."""
        b = memory.shape[0]
        q = self.channel_embed[:, None, :] + self.time_embed[None, :, :]  # (C, P, W)
        q = q.reshape(1, self.n_channels * self.n_patches, -1).expand(b, -1, -1)
        mem = self.memory_proj(memory)
        for block in self.blocks:
            q = block(q, mem)
        out = self.out(self.norm(q))  # (B, C*P, patch)
        result: Tensor = out.reshape(b, self.n_channels, self.n_patches * self.patch_size)
        return result
