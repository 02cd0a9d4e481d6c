"""Compumedics Profusion XML (NSRR ``*-profusion.xml``): ``<CMPStudyConfig>``.

Events are ``<ScoredEvent>`` with ``Name``, ``Start``, ``Duration``, ``Input`` (channel),
and for desaturations ``LowestSpO2`` and ``Desaturation`` (the drop); stages are one
``<SleepStage>`` code per ``EpochLength`` seconds (0 W, 1-2 N1-N2, 3-4 N3, 5 REM).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from sleeplm_core.errors import AnnotationError
from sleeplm_core.io.annotation_model import Annotation, Annotations
from sleeplm_core.io.labels import STAGE_LABEL
from sleeplm_core.stages import EPOCH_S

__all__ = ["read_profusion"]

_STAGE_OF_CODE = {0: "W", 1: "N1", 2: "N2", 3: "N3", 4: "N3", 5: "REM", 6: "ART"}
_EXTRA_TAGS = {"LowestSpO2": "spo2_nadir", "Desaturation": "spo2_drop"}
_CORE_TAGS = {"Name", "Start", "Duration", "Input"}


def _number(path: Path, what: str, text: str | None, default: float | None = None) -> float:
    t = (text or "").strip()
    if not t and default is not None:
        return default
    try:
        value = float(t)
    except ValueError:
        raise AnnotationError(path, f"{what} {t!r} is not a number") from None
    if not math.isfinite(value):
        raise AnnotationError(path, f"{what} {t!r} is not finite")
    return value


def read_profusion(path: Path, root: ET.Element) -> Annotations:
    """Read events and the epoch-by-epoch stages of a parsed ``<CMPStudyConfig>``.

    Raises
    ------
    AnnotationError
        When an event's start or a stage code is malformed.
    """
    epoch_s = _number(path, "EpochLength", root.findtext("EpochLength"), EPOCH_S)
    if epoch_s <= 0:
        raise AnnotationError(path, f"EpochLength {epoch_s:g} is not positive")
    items = []
    for n, ev in enumerate(root.iter("ScoredEvent"), start=1):
        name = (ev.findtext("Name") or "").strip()
        if not name:
            continue
        onset = _number(path, f"ScoredEvent {n}: Start", ev.findtext("Start"))
        duration = _number(path, f"ScoredEvent {n}: Duration", ev.findtext("Duration"), 0.0)
        if duration < 0:
            raise AnnotationError(path, f"ScoredEvent {n}: negative Duration")
        channel = (ev.findtext("Input") or "").strip() or None
        extras = [
            (_EXTRA_TAGS.get(child.tag, child.tag), (child.text or "").strip())
            for child in ev
            if child.tag not in _CORE_TAGS and (child.text or "").strip()
        ]
        items.append(Annotation(onset, duration, name, channel, tuple(extras)))
    for k, node in enumerate(root.iter("SleepStage")):
        try:
            code = int((node.text or "").strip())
        except ValueError:
            raise AnnotationError(path, f"SleepStage {k + 1}: {node.text!r} is no code") from None
        stage = _STAGE_OF_CODE.get(code, "UNS")
        items.append(Annotation(k * epoch_s, epoch_s, STAGE_LABEL[stage]))
    return Annotations(_merge_stage_runs(items))


def _merge_stage_runs(items: list[Annotation]) -> list[Annotation]:
    """Join consecutive epochs of the same stage into one annotation, as NSRR XML has them."""
    out: list[Annotation] = []
    for a in items:
        prev = out[-1] if out else None
        if (
            prev is not None
            and a.is_stage
            and prev.is_stage
            and prev.label == a.label
            and math.isclose(prev.offset_s, a.onset_s)
        ):
            out[-1] = Annotation(prev.onset_s, prev.duration_s + a.duration_s, prev.label)
        else:
            out.append(a)
    return out
