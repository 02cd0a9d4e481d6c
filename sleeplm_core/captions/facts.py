"""The atoms of a caption: facts with their provenance, and rendered captions.

A caption never states what its sources do not support. Every number in a caption's text
is a rendering of one :class:`Fact`, and the caption keeps, in order, which fact each
number came from and to what step it was rounded (:class:`Stated`), so a test can parse the
numbers back out of the text and check them against the signal features and annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODALITIES: tuple[str, ...] = ("brain", "heart", "respiratory", "somatic", "stage_event")
"""Epoch-level caption modalities, in the order used by shards and datasets."""

LEVELS: tuple[str, ...] = ("epoch", "segment", "night")


@dataclass(frozen=True, slots=True)
class Fact:
    """One measured or annotated quantity a caption may state.

    Parameters
    ----------
    name : str
        Key of the fact within its caption, e.g. ``"hr_bpm"`` or ``"event1_duration_s"``.
    value : float
        The exact value, in ``unit``.
    unit : str
        Unit of ``value`` (``"bpm"``, ``"%"``, ``"s"``, ``"/h"``, ``"min"``, ``"count"`` ...).
    source : str
        Where the value comes from: ``"feature:<key>"`` (a signal feature of the epoch),
        ``"annotation:<index>:<field>"`` (an annotation of the recording: ``onset``,
        ``duration``, ``offset`` for onset minus epoch start, or ``extra:<key>``),
        ``"stats:<key>"`` (hypnogram statistics), ``"indices:<key>"`` (event indices),
        ``"hypnogram:<what>"`` or ``"derived:<what>"`` (counted from the other sources).
    """

    name: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class Stated:
    """A number as written in a caption: which fact, what was written, and its rounding step."""

    fact: str
    text: str
    step: float


@dataclass(frozen=True, slots=True)
class Caption:
    """A rendered caption: text plus the facts that support it.

    Parameters
    ----------
    level : str
        ``"epoch"``, ``"segment"`` or ``"night"``.
    modality : str
        One of :data:`MODALITIES` for epoch captions, ``"segment"`` or ``"night"`` otherwise.
    text : str
        The caption.
    facts : tuple of Fact
        Every fact the caption was built from.
    stated : tuple of Stated
        The numbers of ``text`` in the order they appear.
    """

    level: str
    modality: str
    text: str
    facts: tuple[Fact, ...] = ()
    stated: tuple[Stated, ...] = field(default=())

    def fact(self, name: str) -> Fact:
        """Return the fact called ``name`` (``KeyError`` when absent)."""
        for f in self.facts:
            if f.name == name:
                return f
        raise KeyError(name)
