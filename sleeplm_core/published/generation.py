"""Caption generation for the published model: greedy and group beam search.

The released demo generates with OpenCLIP/transformers machinery that current
``transformers`` no longer has (``BeamSearchScorer`` was removed in 4.62). This module is our
own implementation of the same two procedures, token for token (proved on the parity
fixture):

**Greedy** (their ``generation_type="top_k", top_k=1``): from the start token, append the
most likely token; the end token is banned until the sequence holds ``min_len`` tokens and
forced at ``max_len``; finished rows are padded with ``pad``.

**Group beam search** (their demo: 3 beams in 3 groups): ``num_beams`` beams split into
``num_groups`` groups searched side by side. As in the release, a beam's score is the running
*sum of raw logits* (no log-softmax), there is no diversity penalty between groups, a
finished hypothesis scores ``sum / length``, an end token is kept only when it ranks within
the group's size, and a group stops when no open beam can beat its worst kept hypothesis.
The best hypothesis over all groups is returned, followed by one end token.

Both run on :meth:`PublishedCoCa.caption_logits` and recompute the text tower at each step
(no key/value cache): captions are short (tens of tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from sleeplm_core.published.model import PublishedCoCa

SOT, EOT, PAD = 49406, 49407, 0


@dataclass
class _Hyps:
    """Finished hypotheses of one group of one sample (at most ``size`` kept)."""

    size: int
    beams: list[tuple[float, list[int]]] = field(default_factory=list)
    worst: float = 1e9
    done: bool = False

    def add(self, tokens: list[int], score_sum: float, length: int) -> None:
        score = score_sum / length
        if len(self.beams) < self.size or score > self.worst:
            self.beams.append((score, tokens))
            if len(self.beams) > self.size:
                order = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[order[0][1]]
                self.worst = order[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum: float, length: int) -> bool:
        return len(self.beams) >= self.size and self.worst >= best_sum / length


@torch.no_grad()
def greedy(
    model: PublishedCoCa,
    memory: Tensor,
    modality_ids: Tensor | None,
    *,
    max_len: int = 60,
    min_len: int = 5,
    sot: int = SOT,
    eot: int = EOT,
    pad: int = PAD,
) -> Tensor:
    """Greedy captions: token ids (B, <= max_len), start token first, padded with ``pad``."""
    out = torch.full((memory.shape[0], 1), sot, dtype=torch.long, device=memory.device)
    while True:
        open_rows = (out[:, -1] != eot) & (out[:, -1] != pad)
        if not bool(open_rows.any()):
            break
        cur = out.shape[1]
        logits = model.caption_logits(
            memory[open_rows], out[open_rows], _rows(modality_ids, open_rows)
        )
        logits = logits[:, -1].float()
        if cur < min_len:
            logits[:, eot] = float("-inf")
        nxt = torch.full((out.shape[0],), pad, dtype=torch.long, device=out.device)
        nxt[open_rows] = eot if cur + 1 == max_len else logits.argmax(-1)
        out = torch.cat([out, nxt[:, None]], dim=1)
        if out.shape[1] >= max_len:
            break
    return out


def _rows(t: Tensor | None, rows: Tensor) -> Tensor | None:
    return None if t is None else t[rows]


@torch.no_grad()
def group_beam_search(
    model: PublishedCoCa,
    memory: Tensor,
    modality_ids: Tensor | None,
    *,
    num_beams: int = 3,
    num_groups: int = 3,
    max_len: int = 60,
    min_len: int = 5,
    sot: int = SOT,
    eot: int = EOT,
    pad: int = PAD,
) -> Tensor:
    """Group beam search (see the module docstring): token ids (B, <= max_len)."""
    if num_beams % num_groups:
        raise ValueError("num_beams must be a multiple of num_groups")
    b, gs = memory.shape[0], num_beams // num_groups
    dev = memory.device
    memory = memory.repeat_interleave(num_beams, 0)
    mods = None if modality_ids is None else modality_ids.repeat_interleave(num_beams, 0)
    ids = torch.full((b * num_beams, 1), sot, dtype=torch.long, device=dev)
    scores = torch.full((b, num_beams), -1e9, device=dev)
    scores[:, ::gs] = 0.0
    scores = scores.view(-1)
    hyps = [[_Hyps(gs) for _ in range(num_groups)] for _ in range(b)]
    while True:
        logits = model.caption_logits(memory, ids, mods)[:, -1].float()
        current = torch.zeros(b * num_beams, dtype=torch.long, device=dev)
        for g in range(num_groups):
            rows = torch.tensor([i * num_beams + j for i in range(b)
                                 for j in range(g * gs, (g + 1) * gs)], device=dev)  # fmt: skip
            group_ids = ids[rows]
            lg = logits[rows].clone()
            if group_ids.shape[1] < min_len:
                lg[:, eot] = float("-inf")
            vocab = lg.shape[-1]
            total = (lg + scores[rows][:, None]).view(b, gs * vocab)
            top_s, top_i = torch.topk(total, 2 * gs, dim=1)
            src_i, tok_i = top_i // vocab, top_i % vocab
            length = group_ids.shape[1] + 1
            new_s = torch.zeros(b, gs, device=dev)
            new_t = torch.full((b, gs), pad, dtype=torch.long, device=dev)
            new_src = torch.zeros(b, gs, dtype=torch.long, device=dev)
            for i in range(b):
                h = hyps[i][g]
                if h.done:
                    continue
                k = 0
                for rank in range(2 * gs):
                    tok, sc, src = (
                        int(tok_i[i, rank]),
                        float(top_s[i, rank]),
                        i * gs + int(src_i[i, rank]),
                    )
                    if tok == eot:
                        if rank < gs:
                            h.add(group_ids[src].tolist(), sc, length)
                    else:
                        new_s[i, k], new_t[i, k], new_src[i, k] = sc, tok, src
                        k += 1
                    if k == gs:
                        break
                h.done = h.done or h.is_done(float(top_s[i].max()), length)
            scores[rows] = new_s.view(-1)
            ids[rows] = group_ids[new_src.view(-1)]
            current[rows] = new_t.view(-1)
        ids = torch.cat([ids, current[:, None]], dim=1)
        if all(h.done for row in hyps for h in row) or ids.shape[1] >= max_len:
            break
    for i in range(b):
        for g in range(num_groups):
            if not hyps[i][g].done:
                for j in range(gs):
                    r = i * num_beams + g * gs + j
                    hyps[i][g].add(ids[r].tolist(), float(scores[r]), ids.shape[1])
    best = []
    for i in range(b):
        cands = [beam for h in hyps[i] for beam in h.beams]
        best.append(sorted(cands, key=lambda c: c[0])[-1][1])
    width = min(max(len(t) for t in best) + 1, max_len)
    out = torch.full((b, width), pad, dtype=torch.long, device=dev)
    for i, t in enumerate(best):
        out[i, : len(t)] = torch.tensor(t, device=dev)
        if len(t) < width:
            out[i, len(t)] = eot
    return out
