"""Text in the published model's own caption style: stage prompts and the event bank.

The released model was trained on captions such as "Sleep stage evaluation reveals Stable
Light Sleep (N2) for this epoch." and "The Hypopnea event is documented from 0.0 to 5.6
seconds." (the authors' README). Zero-shot staging averages several such wordings per stage;
search routes a free query towards the event and stage sentences it resembles; the spans of
generated ``stage_event`` captions are parsed back into events.
"""

from __future__ import annotations

import re
from typing import Final

from sleeplm_core.model.prompts import EVENT_TYPES

STAGE_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "W": ("Wake", "Wakefulness"),
    "N1": ("Light Sleep (N1)", "N1 Sleep"),
    "N2": ("Stable Light Sleep (N2)", "N2 Sleep"),
    "N3": ("Deep Sleep (N3)", "Slow Wave Sleep (N3)"),
    "REM": ("REM Sleep", "Rapid Eye Movement Sleep (REM)"),
}
STAGE_TEMPLATES: Final = (
    "Sleep stage analysis shows {} for this epoch.",
    "Sleep stage evaluation reveals {} for this epoch.",
    "The patient presents {} during this period.",
)
EVENT_NAMES: Final[dict[str, str]] = {
    "spindle": "Sleep Spindle", "k-complex": "K-Complex", "arousal": "Arousal",
    "apnea": "Obstructive Apnea", "central apnea": "Central Apnea", "hypopnea": "Hypopnea",
    "desaturation": "Oxygen Desaturation", "limb movement": "Limb Movement",
}  # fmt: skip
EVENT_SPAN: Final = re.compile(
    r"(?P<label>[a-z][a-z0-9 \-]*?) event\b[^.]*?\bfrom (?P<a>\d+(?:\.\d+)?) to "
    r"(?P<b>\d+(?:\.\d+)?) seconds",
    re.IGNORECASE,
)


def stage_prompts() -> dict[str, list[str]]:
    """Stage -> sentences in the released caption style (names x templates)."""
    return {s: [t.format(n) for n in names for t in STAGE_TEMPLATES]
            for s, names in STAGE_NAMES.items()}  # fmt: skip


def event_sentence(name: str) -> str:
    """An event named in the released caption style, without a span."""
    return f"The {name} event occurs during this epoch."


def event_bank() -> dict[str, str]:
    """Event type name (of :data:`EVENT_TYPES`) -> a sentence in the released style."""
    return {t.name: event_sentence(EVENT_NAMES[t.name]) for t in EVENT_TYPES}


def event_spans(caption: str) -> list[tuple[str, float, float]]:
    """The ``(label, start_s, stop_s)`` events a ``stage_event`` caption states.

    >>> event_spans("The Hypopnea event is documented from 0.0 to 5.6 seconds.")
    [('Hypopnea', 0.0, 5.6)]
    """
    out = []
    for m in EVENT_SPAN.finditer(caption):
        a, b = float(m["a"]), float(m["b"])
        label = re.sub(r"^(?:the|a|an)\s+", "", m["label"].strip(), flags=re.IGNORECASE)
        if b > a:
            out.append((label, a, b))
    return out
