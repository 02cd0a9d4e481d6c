"""Annotation label vocabulary: the AASM terms every reader normalizes to.

Readers map whatever a scoring system wrote (EDF+ texts, Sleep-EDF, NSRR ``EventConcept``,
EDFbrowser/YASA CSV) onto these labels, so that indices, captions and the viewer meet one
vocabulary. Stage annotations use the Sleep-EDF/EDF+ spelling ("Sleep stage N2"); the
stage itself, in YASA's vocabulary, is :func:`stage_of`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from sleeplm_core.stages import normalize_stage

STAGE_LABEL: Final[dict[str, str]] = {
    "W": "Sleep stage W",
    "N1": "Sleep stage N1",
    "N2": "Sleep stage N2",
    "N3": "Sleep stage N3",
    "REM": "Sleep stage R",
    "ART": "Movement time",
    "UNS": "Sleep stage ?",
}

OBSTRUCTIVE_APNEA: Final = "Obstructive apnea"
CENTRAL_APNEA: Final = "Central apnea"
MIXED_APNEA: Final = "Mixed apnea"
HYPOPNEA: Final = "Hypopnea"
DESATURATION: Final = "Oxygen desaturation"
AROUSAL: Final = "Arousal"
RERA: Final = "RERA"
LIMB_MOVEMENT: Final = "Limb movement"
SPINDLE: Final = "Spindle"
K_COMPLEX: Final = "K-complex"
ARTIFACT: Final = "Artifact"
LIGHTS_OFF: Final = "Lights off"
LIGHTS_ON: Final = "Lights on"

APNEAS: Final[tuple[str, ...]] = (OBSTRUCTIVE_APNEA, CENTRAL_APNEA, MIXED_APNEA)
RESPIRATORY_EVENTS: Final[tuple[str, ...]] = (*APNEAS, HYPOPNEA)
EVENT_LABELS: Final[tuple[str, ...]] = (
    OBSTRUCTIVE_APNEA,
    CENTRAL_APNEA,
    MIXED_APNEA,
    HYPOPNEA,
    DESATURATION,
    AROUSAL,
    RERA,
    LIMB_MOVEMENT,
    SPINDLE,
    K_COMPLEX,
    ARTIFACT,
    LIGHTS_OFF,
    LIGHTS_ON,
)

# Lower-cased patterns (regular expressions, matched against the whole text) -> label.
_EVENT_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    (r"(obstructive apnea|obstructive apnoea|oa|apnea[- ]obstructive)", OBSTRUCTIVE_APNEA),
    (r"(central apnea|central apnoea|ca|apnea[- ]central)", CENTRAL_APNEA),
    (r"(mixed apnea|mixed apnoea|ma|apnea[- ]mixed)", MIXED_APNEA),
    (r"(apnea|apnoea)", OBSTRUCTIVE_APNEA),
    (r"(hypopnea|hypopnoea|obstructive hypopnea|central hypopnea|mixed hypopnea|h)", HYPOPNEA),
    (
        r"(oxygen desaturation|spo2 desaturation|sao2 desaturation|desaturation|desat"
        r"|od|spo2 artifact desaturation)",
        DESATURATION,
    ),
    (r"(arousal.*|asda arousal|arousal \(.*\)|eeg arousal|ar)", AROUSAL),
    (r"(rera|respiratory effort[- ]related arousal)", RERA),
    (
        r"(limb movement.*|leg movement.*|periodic (leg|limb) movement.*|plm.*|lm|"
        r"limb movement - (left|right))",
        LIMB_MOVEMENT,
    ),
    (r"(spindle|sleep spindle|spindles|ss)", SPINDLE),
    (r"(k-complex|k complex|kc)", K_COMPLEX),
    (r"(artifact|artefact|signal artifact)", ARTIFACT),
    (r"(lights off|lightsoff|lights out)", LIGHTS_OFF),
    (r"(lights on|lightson)", LIGHTS_ON),
)
_COMPILED: Final = tuple((re.compile(p + r"$"), lab) for p, lab in _EVENT_PATTERNS)


def stage_of(label: str) -> str | None:
    """Return the YASA stage (W, N1, N2, N3, REM, ART, UNS) a label names, or ``None``."""
    t = label.strip()
    if t.lower() in ("movement time", "sleep stage m", "sleep stage movement"):
        return "ART"
    return normalize_stage(t)


@lru_cache(maxsize=4096)  # a night repeats a few labels thousands of times
def normalize_label(text: str) -> str:
    """Map a scoring system's text to the project's label.

    Stages become :data:`STAGE_LABEL` values, known events the AASM term, and anything else
    is kept as written (stripped), so no information is lost.

    Parameters
    ----------
    text : str
        The label as written in the source file, e.g. ``"Obstructive apnea|Obstructive Apnea"``.

    Returns
    -------
    str
        The normalized label.
    """
    raw = text.strip()
    stage = stage_of(raw)
    if stage is not None:
        return STAGE_LABEL[stage]
    key = raw.split("|", 1)[0].strip().lower()
    for pattern, label in _COMPILED:
        if pattern.match(key):
            return label
    return raw
