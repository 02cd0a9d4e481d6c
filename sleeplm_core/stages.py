"""Sleep-stage vocabulary, after YASA: the one place where stage names and codes are defined.

======  =====  =====================================
stage   code   meaning
======  =====  =====================================
W       0      wake
N1      1      NREM stage 1
N2      2      NREM stage 2
N3      3      NREM stage 3 (R&K S3 + S4)
REM     4      REM sleep
ART     -1     artefact / movement
UNS     -2     unscored
======  =====  =====================================
"""

from __future__ import annotations

from typing import Final

EPOCH_S: Final[float] = 30.0
"""Length of one scoring epoch, in seconds (AASM)."""

STAGES: Final[tuple[str, ...]] = ("W", "N1", "N2", "N3", "REM", "ART", "UNS")
SLEEP_STAGES: Final[tuple[str, ...]] = ("N1", "N2", "N3", "REM")
SCORED_STAGES: Final[tuple[str, ...]] = ("W", "N1", "N2", "N3", "REM")

STAGE_TO_INT: Final[dict[str, int]] = {
    "W": 0,
    "N1": 1,
    "N2": 2,
    "N3": 3,
    "REM": 4,
    "ART": -1,
    "UNS": -2,
}
INT_TO_STAGE: Final[dict[int, str]] = {v: k for k, v in STAGE_TO_INT.items()}

_ALIASES: Final[dict[str, str]] = {
    "w": "W",
    "wake": "W",
    "0": "W",
    "n1": "N1",
    "s1": "N1",
    "1": "N1",
    "n2": "N2",
    "s2": "N2",
    "2": "N2",
    "n3": "N3",
    "s3": "N3",
    "s4": "N3",
    "n4": "N3",
    "3": "N3",
    "4": "N3",
    "r": "REM",
    "rem": "REM",
    "5": "REM",
    "art": "ART",
    "movement": "ART",
    "movement time": "ART",
    "mt": "ART",
    "uns": "UNS",
    "?": "UNS",
    "unscored": "UNS",
    "unknown": "UNS",
}


def normalize_stage(text: str) -> str | None:
    """Map a stage spelling to YASA's vocabulary.

    Accepts "Sleep stage W", "Sleep stage 3", "Stage 2 sleep|2", "REM sleep|5", "N2", "s4", ...

    Parameters
    ----------
    text : str
        A stage label as written by a scoring system.

    Returns
    -------
    str or None
        One of :data:`STAGES`, or ``None`` when the text names no stage.
    """
    t = text.strip().lower()
    if "|" in t:  # NSRR EventConcept "Stage 2 sleep|2"
        t = t.split("|", 1)[0].strip()
    for prefix in ("sleep stage ", "sleep_stage_", "stage "):
        if t.startswith(prefix):
            t = t[len(prefix) :].strip()
    if t.endswith(" sleep"):
        t = t[: -len(" sleep")].strip()
    return _ALIASES.get(t)
