"""The published model's tokenizer: OpenAI CLIP's byte-level BPE, lower-cased, context 256.

Built on Hugging Face ``tokenizers`` (a BPE model with the ``</w>`` end-of-word suffix over
CLIP's merges in ``resources/tokenizers``), so no BPE is written here. Text is cleaned the
way OpenCLIP's ``SimpleTokenizer`` cleans it before splitting: ``ftfy.fix_text``, HTML
entities unescaped twice, white space collapsed, lower case. Each digit is its own token.

>>> tok = ClipTokenizer()                            # doctest: +SKIP
>>> tok(["Sleep stage analysis shows Wake."]).shape  # doctest: +SKIP
torch.Size([1, 256])
"""

from __future__ import annotations

import gzip
import html
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

import numpy as np

from sleeplm_core.errors import ConfigError
from sleeplm_core.resources import resource_path

SOT: Final = 49406
EOT: Final = 49407
PAD: Final = 0
CONTEXT: Final = 256
N_MERGES: Final = 49152 - 256 - 2
_SPLIT: Final = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map of the 256 bytes to printable characters."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]  # fmt: skip
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def clean(text: str) -> str:
    """OpenCLIP's ``lower`` cleaning: ftfy, HTML unescape (twice), collapse spaces, lower."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


class ClipTokenizer:
    """CLIP BPE token ids with start/end tokens, padded to ``context_length`` with 0.

    Raises
    ------
    ConfigError
        When the bundled vocabulary file is missing or unreadable.
    """

    def __init__(self, context_length: int = CONTEXT) -> None:
        from tokenizers import Regex, Tokenizer, models, pre_tokenizers

        path = resource_path("tokenizers", "clip_bpe_simple_vocab_16e6.txt.gz")
        try:
            lines = gzip.open(path).read().decode("utf-8").split("\n")[1 : N_MERGES + 1]
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise ConfigError(
                path, f"CLIP vocabulary unreadable ({exc.__class__.__name__})"
            ) from None
        merges = [tuple(line.split()) for line in lines]
        chars = list(byte_to_unicode().values())
        vocab = [*chars, *(c + "</w>" for c in chars), *("".join(m) for m in merges),
                 "<start_of_text>", "<end_of_text>"]  # fmt: skip
        bpe = models.BPE(
            vocab={t: i for i, t in enumerate(vocab)},
            merges=[(a, b) for a, b in merges],
            end_of_word_suffix="</w>",
        )
        self._tok = Tokenizer(bpe)
        self._tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])  # fmt: skip
        self._vocab = vocab
        self._bytes = {c: b for b, c in byte_to_unicode().items()}
        self.context_length = context_length
        self.vocab_size = len(vocab)

    def encode(self, text: str) -> list[int]:
        """BPE ids of ``text`` without start/end tokens."""
        return list(self._tok.encode(clean(text), add_special_tokens=False).ids)

    def ids(self, texts: Sequence[str], context_length: int | None = None) -> np.ndarray:
        """Token ids int64 (n, context): start, BPE ids, end, zeros; cut to fit (end kept)."""
        n_ctx = context_length or self.context_length
        out = np.zeros((len(texts), n_ctx), np.int64)
        for i, text in enumerate(texts):
            row = [SOT, *self.encode(text)][: n_ctx - 1] + [EOT]
            out[i, : len(row)] = row
        return out

    def __call__(self, texts: Sequence[str], context_length: int | None = None) -> "torch.Tensor":  # type: ignore[name-defined]  # noqa: F821, UP037
        """Token ids as a torch ``LongTensor`` (n, context)."""
        import torch

        return torch.from_numpy(self.ids(texts, context_length))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids, special tokens and padding dropped, numbers re-joined."""
        pieces = "".join(self._vocab[i] for i in ids if 0 < i < SOT and i < len(self._vocab))
        raw = bytearray(self._bytes[c] for c in pieces).decode("utf-8", errors="replace")
        return tidy(raw.replace("</w>", " "))


def tidy(text: str) -> str:
    """Re-join what CLIP's tokenizer splits, then restore casing (:func:`tidy_caption`).

    Digits are single tokens, so numbers come out spaced ("6 4 . 0 7" becomes "64.07") and
    so do stage and electrode names ("n 2" becomes "N2", "spo 2" becomes "SpO2").

    >>> tidy("heart rate : minimum value of 6 4 . 0 7 ")
    'Heart rate: minimum value of 64.07'
    """
    from sleeplm_core.model.detok import tidy_caption

    t = " ".join(text.split())
    t = re.sub(r"(?<=\d) (?=\d)", "", t)
    t = re.sub(r"(?<=\d) \. (?=\d)", ".", t)
    t = re.sub(r"\b(spo|[acfmnot]) (?=\d\b)", r"\1", t)
    return tidy_caption(t)
