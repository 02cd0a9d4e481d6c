"""Text prompts shared by training and inference: stage prompts and the event phrase bank.

Zero-shot staging compares an epoch's embedding with the mean embedding of the stage
prompts (the ``stage`` sentences of the ``stage_event`` caption templates, e.g. "stage N2.");
training aligns epochs with the same prompts (``stage_loss``), so both sides agree.

Dense localization learns, per 0.25-s patch, the similarity to a phrase of each event type of
:data:`EVENT_TYPES` (``localization_loss``). Each type lists the annotation labels that count
as positives, several paraphrases (one is drawn per training step; inference uses any text,
through the same MiniLM + projection), and the canonical slots where it can be seen (the
loss skips a type on a sample whose slots are all missing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sleeplm_core.io import labels as L

SCORED = ("W", "N1", "N2", "N3", "REM")
STAGE_WORDS = {"W": "wake", "N1": "N1", "N2": "N2", "N3": "N3", "REM": "REM sleep"}
"""As in :data:`sleeplm_core.captions.epoch.STAGE_WORDS` (the captions' wording)."""

_TEMPLATES = Path(__file__).resolve().parent.parent / "captions" / "templates"

EEG_SLOTS = (4, 5, 6, 7)  # EOG_L, EOG_R, C3_M2, C4_M1
RESP_SLOTS = (1, 2, 3)  # ABD, THX, AIRFLOW
SPO2_SLOTS = (10,)
LEG_SLOTS = (11,)


@dataclass(frozen=True)
class EventType:
    """One localizable event type of the phrase bank."""

    name: str
    labels: tuple[str, ...]  # annotation labels that are positives
    phrases: tuple[str, ...]  # paraphrases (the first is the canonical one)
    slots: tuple[int, ...]  # canonical slots where it shows


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("spindle", (L.SPINDLE,),
              ("sleep spindle", "spindle on C3", "sleep spindles", "a spindle on the EEG"),
              EEG_SLOTS),
    EventType("k-complex", (L.K_COMPLEX,), ("K-complex", "a K-complex on the EEG"), EEG_SLOTS),
    EventType("arousal", (L.AROUSAL,),
              ("arousal", "cortical arousal", "an EEG arousal", "brief arousal"),
              (*EEG_SLOTS, 8)),
    EventType("apnea", L.APNEAS,
              ("obstructive apnea", "apnea", "breathing pause", "an apnea with no airflow"),
              RESP_SLOTS),
    EventType("central apnea", (L.CENTRAL_APNEA,),
              ("central apnea", "central apnea without effort"), RESP_SLOTS),
    EventType("hypopnea", (L.HYPOPNEA,),
              ("hypopnea", "a hypopnea with reduced airflow", "shallow breathing"), RESP_SLOTS),
    EventType("desaturation", (L.DESATURATION,),
              ("oxygen desaturation", "desaturation", "a drop in SpO2"), SPO2_SLOTS),
    EventType("limb movement", (L.LIMB_MOVEMENT,),
              ("limb movement", "leg movement", "a periodic limb movement"), LEG_SLOTS),
)  # fmt: skip

LABEL_TYPES: dict[str, tuple[int, ...]] = {}
"""Annotation label -> indices into :data:`EVENT_TYPES` where it is a positive."""
for _k, _t in enumerate(EVENT_TYPES):
    for _label in _t.labels:
        LABEL_TYPES[_label] = (*LABEL_TYPES.get(_label, ()), _k)

LONG_QUERIES = ("REM period", "a period of REM sleep", "deep sleep", "wake after sleep onset")
"""Examples of queries better answered by the epoch-level search (see Predictor.search)."""


def stage_prompts() -> dict[str, list[str]]:
    """Stage -> its prompts, from the ``stage`` sentences of the ``stage_event`` templates."""
    book = json.loads((_TEMPLATES / "stage_event.json").read_text(encoding="utf-8"))
    sentences = book["sentences"]["stage"]
    return {s: [t.format(stage=STAGE_WORDS[s]) for t in sentences] for s in SCORED}


def all_event_phrases() -> list[str]:
    """Every phrase of the bank (for precomputing text embeddings)."""
    return [p for t in EVENT_TYPES for p in t.phrases]
