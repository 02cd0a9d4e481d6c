"""Readable captions from the uncased WordPiece decoder: casing and spacing restored.

The caption decoder writes MiniLM's uncased WordPiece, whose decoder spaces out numbers and
punctuation (``"spo2 fell to 89 % after a 13. 5 s apnea"``). :func:`tidy_caption` gives the
text a sleep scientist expects (``"SpO2 fell to 89% after a 13.5 s apnea."``):

- decimals, percentages, ratios and hyphenated words are rejoined;
- terms the caption templates spell with capitals (``SpO2``, ``REM``, ``N2``, ``ECG``,
  ``AHI`` ...) get that spelling back, read once from ``captions/templates``;
- every sentence starts with a capital letter.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

_TEMPLATES = Path(__file__).resolve().parent.parent / "captions" / "templates"
_EXTRA_TERMS = (
    "W", "N1", "N2", "N3", "REM", "NREM", "EEG", "EOG", "EMG", "ECG", "SpO2", "AHI", "ODI",
    "PLM", "PLMI", "RMSSD", "WASO", "TST", "SOL", "bpm", "µV", "Hz",
    "C3", "C4", "Cz", "F3", "F4", "Fz", "O1", "O2", "Pz", "M1", "M2", "A1", "A2",
)  # fmt: skip

_SPACED = [
    (re.compile(r"(\d)\s*\.\s+(\d)"), r"\1.\2"),  # 13. 5 -> 13.5
    (re.compile(r"(\d)\s+%"), r"\1%"),  # 89 % -> 89%
    (re.compile(r"(\d)\s*:\s*(\d)"), r"\1:\2"),  # 02 : 30 -> 02:30
    (re.compile(r"(\w)\s+-\s+(\w)"), r"\1-\2"),  # non - rem -> non-rem
    (re.compile(r"(\w)\s+/\s+(\w)"), r"\1/\2"),  # events / h -> events/h
    (re.compile(r"(\w)\s*'\s*(s|t|d|m|re|ve|ll)\b"), r"\1'\2"),  # night ' s -> night's
    (re.compile(r"\(\s+"), "("),
    (re.compile(r"\s+\)"), ")"),
    (re.compile(r"\s+([,.;:!?])"), r"\1"),
    (re.compile(r"\s{2,}"), " "),
]
_WORD = re.compile(r"[A-Za-zµ][A-Za-z0-9µ]*")
_K_COMPLEX = re.compile(r"\bk-complex", re.IGNORECASE)
_NEXT_SENTENCE = re.compile(r"([.!?]\s+)([a-z])")


@lru_cache(maxsize=1)
def cased_terms() -> dict[str, str]:
    """Lower-case word -> the spelling with capitals used by the caption templates."""
    terms: dict[str, str] = {t.lower(): t for t in _EXTRA_TERMS}
    if _TEMPLATES.is_dir():
        for path in sorted(_TEMPLATES.glob("*.json")):
            for word in _WORD.findall(path.read_text(encoding="utf-8")):
                if word != word.lower() and word[1:] != word[1:].lower():
                    terms.setdefault(word.lower(), word)  # "SpO2", "REM"; not "The"
    return terms


def tidy_caption(text: str, *, capitalize_first: bool = True) -> str:
    """Rejoin spaced-out numbers and punctuation, restore casing, capitalise sentences.

    Parameters
    ----------
    text : str
        Decoded WordPiece text (lower-case).
    capitalize_first : bool
        False for the continuation of a prompt: later sentences are still capitalised.

    Returns
    -------
    str
        The caption as a person would write it; an empty string stays empty.
    """
    out = text.strip()
    for pattern, repl in _SPACED:
        out = pattern.sub(repl, out)
    terms = cased_terms()
    out = _WORD.sub(lambda m: terms.get(m.group(0).lower(), m.group(0)), out)
    out = _K_COMPLEX.sub("K-complex", out)
    out = _NEXT_SENTENCE.sub(lambda m: m.group(1) + m.group(2).upper(), out)
    return out[:1].upper() + out[1:] if capitalize_first else out
