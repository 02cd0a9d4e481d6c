"""Text from facts: JSON templates with paraphrases and seeded, randomized rounding.

Templates live in ``captions/templates/<book>.json``::

    {
      "rounding": {"%": [1, 5], "bpm": [1, 5]},        # steps a unit may be rounded to
      "sentences": {"rate": ["Heart rate {hr_bpm} bpm.", "The heart beat {hr_bpm} times a minute."]}
    }

A placeholder names either a :class:`~sleeplm_core.captions.facts.Fact` (rendered as a number,
rounded to a step drawn from the unit's list) or a word (a string, or a :class:`Rendered`
fragment whose own numbers are kept in order). Template text itself never contains digits, so
every number in a caption is a stated fact.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import cast

import numpy as np

from sleeplm_core.captions.facts import Caption, Fact, Stated

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

DEFAULT_STEPS: dict[str, tuple[float, ...]] = {
    "%": (1.0, 5.0),
    "bpm": (1.0, 5.0),
    "ms": (1.0, 5.0),
    "s": (1.0, 5.0),
    "/min": (1.0, 0.5),
    "/h": (0.1, 1.0),
    "min": (1.0, 5.0),
    "count": (1.0,),
}
_FORMATTER = string.Formatter()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered piece of text with the numbers it states, in order."""

    text: str
    stated: tuple[Stated, ...] = ()

    def __add__(self, other: Rendered) -> Rendered:
        """Concatenate two fragments, keeping the order of their numbers."""
        return Rendered(self.text + other.text, self.stated + other.stated)


Word = str | Rendered


def join(parts: list[Rendered], sep: str = ", ", last: str = " and ") -> Rendered:
    """Join fragments as an English list ("a, b and c")."""
    if not parts:
        return Rendered("")
    out = parts[0]
    for i, p in enumerate(parts[1:], start=1):
        out = out + Rendered(last if i == len(parts) - 1 else sep) + p
    return out


def format_number(value: float, step: float) -> str:
    """Round ``value`` to a multiple of ``step``; write the step's decimals, less trailing zeros."""
    rounded = round(value / step) * step
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    text = f"{rounded:.{decimals}f}"
    if "." in text:  # "3.0" reads as "3"
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@cache
def _load(book: str) -> dict[str, object]:
    with open(TEMPLATE_DIR / f"{book}.json", encoding="utf-8") as fh:
        data: dict[str, object] = json.load(fh)
    return data


class TemplateBook:
    """The sentences and rounding rules of one template file.

    Parameters
    ----------
    book : str
        File name below ``captions/templates`` without ``.json`` (``"heart"``).
    rng : numpy.random.Generator
        Draws paraphrases and rounding steps; seed it for reproducible captions.
    """

    def __init__(self, book: str, rng: np.random.Generator) -> None:
        data = _load(book)
        self.book = book
        self.rng = rng
        # the template JSON: {"sentences": {key: [str, ...]}, "rounding": {unit: [number, ...]}}
        sentences = cast(Mapping[str, list[str]], data["sentences"])
        rounding = cast(Mapping[str, list[float]], data.get("rounding", {}))
        self._sentences: dict[str, list[str]] = dict(sentences)
        steps = dict(DEFAULT_STEPS)
        for unit, values in dict(rounding).items():
            steps[unit] = tuple(float(v) for v in values)
        self._steps = steps

    def keys(self) -> list[str]:
        """Return the sentence keys of this book."""
        return list(self._sentences)

    def step_for(self, fact: Fact) -> float:
        """Draw a rounding step for ``fact``: only steps small enough to keep the value readable."""
        options = self._steps.get(fact.unit, (1.0,))
        fine = min(options)
        usable = [s for s in options if s == fine or abs(fact.value) >= 4 * s]
        return float(usable[int(self.rng.integers(len(usable)))])

    def render(
        self,
        key: str,
        facts: Mapping[str, Fact] | None = None,
        words: Mapping[str, Word] | None = None,
    ) -> Rendered:
        """Render one paraphrase of sentence ``key``.

        Parameters
        ----------
        key : str
            The sentence key in the book.
        facts : mapping of str to Fact, optional
            Facts by placeholder name; rendered as rounded numbers.
        words : mapping of str to str or Rendered, optional
            Non-numeric placeholders.

        Returns
        -------
        Rendered
            The sentence and its stated numbers.
        """
        facts = facts or {}
        words = words or {}
        options = self._sentences[key]
        template = options[int(self.rng.integers(len(options)))]
        out = Rendered("")
        for literal, field, _spec, _conv in _FORMATTER.parse(template):
            out = out + Rendered(literal)
            if field is None:
                continue
            if field in facts:
                fact = facts[field]
                step = self.step_for(fact)
                text = format_number(fact.value, step)
                out = out + Rendered(text, (Stated(fact.name, text, step),))
            elif field in words:
                word = words[field]
                out = out + (word if isinstance(word, Rendered) else Rendered(word))
            else:
                raise KeyError(f"template {self.book}.{key} needs {field!r}")
        return out


def caption_from(
    level: str, modality: str, sentences: list[Rendered], facts: list[Fact]
) -> Caption:
    """Assemble sentences into a :class:`Caption` that keeps every fact it was built from."""
    body = Rendered("")
    for s in sentences:
        if s.text:
            s = Rendered(s.text[:1].upper() + s.text[1:], s.stated)
            body = s if not body.text else body + Rendered(" ") + s
    return Caption(level, modality, body.text, tuple(facts), body.stated)
