"""Caption decoder: a causal transformer conditioned on a modality prefix and the signal tokens.

Decoder input is ``[<modality>] + tokens`` where ``<modality>`` is a learned embedding
(``modality_ids``, see :data:`sleeplm_core.model.tokenizer.MODALITIES`), plus, with
``DecoderConfig.mask_prefix``, a linear embedding of the channel mask (which channels the
recording has: the prefix then knows what it may speak about), and ``tokens`` are
compact WordPiece ids (optional prompt, ``[BOS]``, caption, ``[EOS]``). Each layer has causal
self-attention, cross-attention to the pooled signal tokens, and an MLP (pre-LayerNorm).

``CaptionDecoder.forward`` returns logits aligned with ``tokens``: ``logits[:, i]`` is the
distribution of the token that follows ``tokens[:, i]``. The output at the prefix position is
dropped (it would only predict the first prompt token or ``[BOS]``). The loss pairs
``logits[:, :-1]`` with ``targets[:, 1:]`` in :func:`sleeplm_core.losses.next_token_pairs`.

Decoding (greedy and beam) carries a repetition guard: a token that would repeat an n-gram
already in the hypothesis (``no_repeat_ngram``, 3 by default) or repeat the previous word
piece straight away is never emitted, and ``banned`` ids (words about modalities the
recording lacks, see :mod:`sleeplm_core.grounding`) are masked out. ``max_new`` bounds the
length. A small decoder trained on template captions otherwise loops on real signals
("median median median").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sleeplm_core.io.channels import CANONICAL_SLOTS
from sleeplm_core.model.config import DecoderConfig
from sleeplm_core.model.signal_encoder import MultiHeadAttention
from sleeplm_core.model.tokenizer import BOS_ID, EOS_ID, MODALITIES, PAD_ID

N_SLOTS = len(CANONICAL_SLOTS)

NO_REPEAT_NGRAM = 3
"""Default n of the repetition guard: no n-gram of word pieces appears twice in a caption."""


def blocked_ids(
    row: list[int],
    start: int,
    n: int,
    sentence_ends: frozenset[int] = frozenset(),
    free: frozenset[int] = frozenset(),
) -> set[int]:
    """Ids that may not follow ``row``: they would repeat an ``n``-gram or the last piece.

    Only the generated part (``row[start:]``) counts, so a prompt may be echoed once, and only
    the current sentence (after the last of ``sentence_ends``, e.g. the id of "."): template
    sentences legitimately repeat across sentences ("at C3-M2, relative power was ... at
    C4-M1, relative power was ..."); repeated whole sentences are dropped after decoding.
    ``free`` ids (digits, "%", punctuation) are never blocked: numbers repeat legitimately
    ("8% alpha, 8% sigma").
    """
    gen = row[start:]
    if sentence_ends:
        last = max((i for i, t in enumerate(gen) if t in sentence_ends), default=-1)
        if gen and last == len(gen) - 1:  # a sentence just ended: "." may not follow "."
            return {gen[-1]} - (free - sentence_ends)
        gen = gen[last + 1 :]
    out: set[int] = set()
    if gen and gen[-1] != EOS_ID:
        out.add(gen[-1])
    if n >= 1 and len(gen) >= n - 1:
        ctx = tuple(gen[len(gen) - (n - 1) :]) if n > 1 else ()
        for i in range(len(gen) - n + 1):
            if tuple(gen[i : i + n - 1]) == ctx:
                out.add(gen[i + n - 1])
    out.discard(EOS_ID)
    return out - free


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the signal, GELU MLP."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        w = cfg.width
        self.norm_self = nn.LayerNorm(w)
        self.self_attn = MultiHeadAttention(w, cfg.heads, cfg.dropout)
        self.norm_cross = nn.LayerNorm(w)
        self.cross_attn = MultiHeadAttention(w, cfg.heads, cfg.dropout)
        self.norm_mlp = nn.LayerNorm(w)
        hidden = int(cfg.mlp_ratio * w)
        self.mlp = nn.Sequential(
            nn.Linear(w, hidden), nn.GELU(), nn.Linear(hidden, w), nn.Dropout(cfg.dropout)
        )

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        """Tokens (B, L, W) attending causally to themselves and to ``memory`` (B, Q, W)."""
        x = x + self.self_attn(self.norm_self(x), causal=True)
        x = x + self.cross_attn(self.norm_cross(x), memory)
        result: Tensor = x + self.mlp(self.norm_mlp(x))
        return result


class CaptionDecoder(nn.Module):
    """The caption decoder.

    Parameters
    ----------
    cfg : DecoderConfig
        Width, depth, heads, maximum length.
    vocab_size : int
        Size of the compact caption vocabulary.
    memory_width : int
        Width of the signal tokens it cross-attends to.
    """

    def __init__(self, cfg: DecoderConfig, vocab_size: int, memory_width: int) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.token_embed = nn.Embedding(vocab_size, w)
        self.modality_embed = nn.Embedding(len(MODALITIES), w)
        self.mask_embed = nn.Linear(N_SLOTS, w, bias=False) if cfg.mask_prefix else None
        self.free_ids: frozenset[int] = frozenset()  # never blocked by the guard (set by SleepLM)
        self.pos_embed = nn.Parameter(torch.randn(cfg.max_len, w) * 0.01)
        self.memory_proj = nn.Sequential(nn.Linear(memory_width, w), nn.LayerNorm(w))
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, vocab_size, bias=False)
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.modality_embed.weight, std=0.02)

    def forward(
        self, memory: Tensor, tokens: Tensor, modality_ids: Tensor, mask: Tensor | None = None
    ) -> Tensor:
        """Logits (B, L, V) for ``tokens`` (B, L) given signal ``memory`` (B, Q, D_signal).

        ``mask`` (B, 12) bool conditions the prefix when ``cfg.mask_prefix`` (else ignored).
        """
        if tokens.shape[1] + 1 > self.cfg.max_len:
            raise ValueError(f"caption of {tokens.shape[1]} tokens exceeds max_len - 1")
        prefix = self.modality_embed(modality_ids)
        if self.mask_embed is not None and mask is not None:
            prefix = prefix + self.mask_embed(mask.to(prefix.dtype))
        x = torch.cat([prefix[:, None], self.token_embed(tokens)], 1)
        x = x + self.pos_embed[: x.shape[1]]
        mem = self.memory_proj(memory)
        for layer in self.layers:
            x = layer(x, mem)
        result: Tensor = self.head(self.norm(x[:, 1:]))
        return result

    def _next_logprobs(
        self,
        memory: Tensor,
        tokens: Tensor,
        modality_ids: Tensor,
        start: int = 0,
        no_repeat_ngram: int = 0,
        banned: frozenset[int] = frozenset(),
        mask: Tensor | None = None,
        sentence_ends: frozenset[int] = frozenset(),
    ) -> Tensor:
        logits = self.forward(memory, tokens, modality_ids, mask)[:, -1].float()
        logits[:, [PAD_ID, BOS_ID, *sorted(banned)]] = float("-inf")  # never emitted
        if no_repeat_ngram:
            for i, row in enumerate(tokens.tolist()):
                ban = blocked_ids(row, start, no_repeat_ngram, sentence_ends, self.free_ids)
                if ban:
                    logits[i, sorted(ban)] = float("-inf")
        return F.log_softmax(logits, dim=-1)

    @torch.no_grad()
    def greedy(
        self,
        memory: Tensor,
        prefix: list[int],
        modality_ids: Tensor,
        max_new: int,
        *,
        no_repeat_ngram: int = NO_REPEAT_NGRAM,
        banned: frozenset[int] = frozenset(),
        mask: Tensor | None = None,
        sentence_ends: frozenset[int] = frozenset(),
    ) -> list[list[int]]:
        """Greedy decoding for a batch; returns the new ids per sample, without ``[EOS]``.

        ``no_repeat_ngram`` (0 turns the guard off) and ``banned``: see the module docstring.
        """
        b = memory.shape[0]
        tokens = torch.tensor([prefix] * b, dtype=torch.long, device=memory.device)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        max_new = min(max_new, self.cfg.max_len - 1 - len(prefix))
        for _ in range(max_new):
            logp = self._next_logprobs(
                memory, tokens, modality_ids, len(prefix), no_repeat_ngram, banned, mask,
                sentence_ends,
            )  # fmt: skip
            nxt = logp.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, EOS_ID), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            done |= nxt == EOS_ID
            if bool(done.all()):
                break
        out = []
        for row in tokens[:, len(prefix) :].tolist():
            out.append(row[: row.index(EOS_ID)] if EOS_ID in row else row)
        return out

    @torch.no_grad()
    def beam_search(
        self,
        memory: Tensor,
        prefix: list[int],
        modality_ids: Tensor,
        *,
        beam: int,
        max_new: int,
        length_penalty: float = 1.0,
        no_repeat_ngram: int = NO_REPEAT_NGRAM,
        banned: frozenset[int] = frozenset(),
        mask: Tensor | None = None,
        sentence_ends: frozenset[int] = frozenset(),
    ) -> list[list[int]]:
        """Batched beam search; the best ids per sample, without ``[EOS]``.

        All B x ``beam`` hypotheses advance in one decoder call per step. A hypothesis that
        emits ``[EOS]`` is finished with score log p / (length + 1) ** ``length_penalty``; a
        sample stops once it has ``beam`` finished ones (or at ``max_new`` tokens, when its
        live hypotheses compete too). ``no_repeat_ngram`` and ``banned``: see the module
        docstring.
        """
        b, k, dev = memory.shape[0], beam, memory.device
        start = len(prefix)
        max_new = min(max_new, self.cfg.max_len - 1 - start)
        seqs = torch.tensor([prefix] * (b * k), dtype=torch.long, device=dev)
        scores = torch.full((b, k), float("-inf"), device=dev)
        scores[:, 0] = 0.0  # k copies of the prefix: only one may expand at first
        mem = memory.repeat_interleave(k, dim=0)
        mods = modality_ids.repeat_interleave(k)
        masks = None if mask is None else mask.repeat_interleave(k, dim=0)
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
        done = [False] * b
        for _ in range(max_new):
            logp = self._next_logprobs(
                mem, seqs, mods, start, no_repeat_ngram, banned, masks, sentence_ends
            )
            logp = logp.view(b, k, -1)
            vocab = logp.shape[-1]
            top = (scores[..., None] + logp).view(b, -1).topk(min(2 * k, k * vocab), dim=1)
            parents = torch.arange(b * k, device=dev).view(b, k).clone()
            tokens = torch.full((b, k), PAD_ID, dtype=torch.long, device=dev)
            new_scores = torch.full((b, k), float("-inf"), device=dev)
            for i in range(b):
                if done[i]:
                    continue
                n_alive = 0
                for value, index in zip(
                    top.values[i].tolist(), top.indices[i].tolist(), strict=True
                ):
                    if value == float("-inf") or n_alive == k:
                        break
                    row, tok = divmod(index, vocab)
                    if tok == EOS_ID:
                        hyp = seqs[i * k + row, start:].tolist()
                        finished[i].append((value / (len(hyp) + 1) ** length_penalty, hyp))
                        continue
                    parents[i, n_alive] = i * k + row
                    tokens[i, n_alive] = tok
                    new_scores[i, n_alive] = value
                    n_alive += 1
                done[i] = len(finished[i]) >= k or n_alive == 0
            if all(done):
                break
            seqs = torch.cat([seqs[parents.flatten()], tokens.flatten()[:, None]], dim=1)
            scores = new_scores.masked_fill(torch.tensor(done, device=dev)[:, None], float("-inf"))
        best: list[list[int]] = []
        for i in range(b):
            pool = list(finished[i])
            if not done[i]:  # ran out of length: live hypotheses compete as they are
                for j in range(k):
                    if scores[i, j] > float("-inf"):
                        hyp = seqs[i * k + j, start:].tolist()
                        pool.append((float(scores[i, j]) / max(len(hyp), 1) ** length_penalty, hyp))
            best.append(max(pool, key=lambda sh: sh[0])[1] if pool else [])
        return best
