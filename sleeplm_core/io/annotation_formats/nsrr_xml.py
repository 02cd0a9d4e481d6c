"""NSRR XML annotations (``<PSGAnnotation><ScoredEvents><ScoredEvent>``).

Compumedics Profusion XML (``<CMPStudyConfig>``) is handed to :mod:`.profusion_xml`.

Each ``ScoredEvent`` has ``EventType``, ``EventConcept`` (e.g. ``"Stage 2 sleep|2"``,
``"Obstructive apnea|Obstructive Apnea"``), ``Start`` and ``Duration`` in seconds, and
optionally ``SignalLocation``, ``SpO2Nadir`` and ``SpO2Baseline``. The "Recording Start Time"
event is not an annotation. Documents with a DTD or entity declarations are refused, so
no entity is ever expanded.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sleeplm_core.errors import AnnotationError
from sleeplm_core.io import labels as L
from sleeplm_core.io.annotation_model import Annotation, Annotations
from sleeplm_core.io.atomic import atomic_write_bytes
from sleeplm_core.stages import EPOCH_S

__all__ = ["read_nsrr_xml", "write_nsrr_xml"]

_EXTRA_TAGS = {"SpO2Nadir": "spo2_nadir", "SpO2Baseline": "spo2_baseline"}
_TAG_OF_EXTRA = {v: k for k, v in _EXTRA_TAGS.items()}
_CORE_TAGS = {"EventType", "EventConcept", "Start", "Duration", "SignalLocation"}
_SKIP_CONCEPTS = ("recording start time",)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# Our label -> (EventType, EventConcept) as NSRR writes them.
_CONCEPT = {
    L.STAGE_LABEL["W"]: ("Stages|Stages", "Wake|0"),
    L.STAGE_LABEL["N1"]: ("Stages|Stages", "Stage 1 sleep|1"),
    L.STAGE_LABEL["N2"]: ("Stages|Stages", "Stage 2 sleep|2"),
    L.STAGE_LABEL["N3"]: ("Stages|Stages", "Stage 3 sleep|3"),
    L.STAGE_LABEL["REM"]: ("Stages|Stages", "REM sleep|5"),
    L.STAGE_LABEL["ART"]: ("Stages|Stages", "Movement|6"),
    L.STAGE_LABEL["UNS"]: ("Stages|Stages", "Unscored|9"),
    L.OBSTRUCTIVE_APNEA: ("Respiratory|Respiratory", "Obstructive apnea|Obstructive Apnea"),
    L.CENTRAL_APNEA: ("Respiratory|Respiratory", "Central apnea|Central Apnea"),
    L.MIXED_APNEA: ("Respiratory|Respiratory", "Mixed apnea|Mixed Apnea"),
    L.HYPOPNEA: ("Respiratory|Respiratory", "Hypopnea|Hypopnea"),
    L.DESATURATION: ("Respiratory|Respiratory", "SpO2 desaturation|SpO2 desaturation"),
    L.AROUSAL: ("Arousals|Arousals", "Arousal|Arousal ()"),
    L.LIMB_MOVEMENT: ("Limb Movement|Limb Movement", "Limb movement|Limb Movement"),
}


def _label_of(concept: str) -> str:
    """Map an EventConcept to our label; ``"X|X"`` (our own writing) is read as ``X``."""
    c = concept.strip()
    half = (len(c) - 1) // 2
    if len(c) % 2 == 1 and c[half] == "|" and c[:half] == c[half + 1 :]:
        return L.normalize_label(c[:half])
    label = L.normalize_label(c)
    if label == c and "|" in c:  # unknown concept: keep NSRR's name, drop its display text
        name = c.split("|", 1)[0].strip()
        return L.normalize_label(name) if name else label
    return label


def _concept_of(label: str) -> tuple[str, str]:
    if label in _CONCEPT:
        return _CONCEPT[label]
    return ("|", f"{label}|{label}")


def _float(path: Path, n: int, elem: ET.Element, tag: str, default: float | None) -> float:
    node = elem.find(tag)
    text = (node.text or "").strip() if node is not None else ""
    if not text:
        if default is None:
            raise AnnotationError(path, f"ScoredEvent {n} has no {tag}")
        return default
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(path, f"ScoredEvent {n}: {tag} {text!r} is not a number") from None
    if not math.isfinite(value) or (tag == "Duration" and value < 0):
        raise AnnotationError(path, f"ScoredEvent {n}: {tag} {text!r} is out of range")
    return value


def read_nsrr_xml(path: Path, data: bytes) -> Annotations:
    """Parse NSRR XML bytes.

    Raises
    ------
    AnnotationError
        On entity declarations, malformed XML, or an event without a valid Start.
    """
    head = data.upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise AnnotationError(path, "XML with a DTD or entity declarations is refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise AnnotationError(path, f"is not well-formed XML ({exc})") from None
    if root.tag == "CMPStudyConfig":
        from sleeplm_core.io.annotation_formats.profusion_xml import read_profusion

        return read_profusion(path, root)
    events = root.findall(".//ScoredEvent")
    if root.tag != "PSGAnnotation" and not events:
        raise AnnotationError(path, f"is XML but not NSRR annotations (root <{root.tag}>)")
    items = []
    for n, ev in enumerate(events, start=1):
        concept = (ev.findtext("EventConcept") or "").strip()
        if not concept or concept.lower().startswith(_SKIP_CONCEPTS):
            continue
        onset = _float(path, n, ev, "Start", None)
        duration = _float(path, n, ev, "Duration", 0.0)
        channel = (ev.findtext("SignalLocation") or "").strip() or None
        extras = []
        for child in ev:
            if child.tag in _CORE_TAGS:
                continue
            text = child.text or ""
            if child.tag == "Extra":
                extras.append((child.get("name", ""), text))
            elif child.tag in _EXTRA_TAGS:
                extras.append((_EXTRA_TAGS[child.tag], text.strip()))
            elif text.strip():
                extras.append((child.tag, text.strip()))
        items.append(Annotation(onset, duration, _label_of(concept), channel, tuple(extras)))
    return Annotations(items)


def _fmt(x: float) -> str:
    return str(np.format_float_positional(x, unique=True, trim="-"))


def _check_xml_text(path: Path, text: str) -> str:
    if _XML_ILLEGAL.search(text) or "\r" in text:
        raise AnnotationError(path, f"text {text!r} has characters XML cannot keep")
    return text


def write_nsrr_xml(ann: Iterable[Annotation], path: Path, *, epoch_s: float = EPOCH_S) -> None:
    """Write NSRR XML atomically; extras NSRR has no element for go to ``<Extra name=...>``.

    Raises
    ------
    AnnotationError
        When the file cannot be written or a text cannot be stored in XML.
    """
    root = ET.Element("PSGAnnotation")
    ET.SubElement(root, "SoftwareVersion").text = "SleepLM Viewer"
    ET.SubElement(root, "EpochLength").text = _fmt(epoch_s)
    events = ET.SubElement(root, "ScoredEvents")
    for a in ann:
        ev = ET.SubElement(events, "ScoredEvent")
        event_type, concept = _concept_of(a.label)
        ET.SubElement(ev, "EventType").text = event_type
        ET.SubElement(ev, "EventConcept").text = _check_xml_text(path, concept)
        ET.SubElement(ev, "Start").text = _fmt(a.onset_s)
        ET.SubElement(ev, "Duration").text = _fmt(a.duration_s)
        if a.channel is not None:
            ET.SubElement(ev, "SignalLocation").text = _check_xml_text(path, a.channel)
        for key, value in a.extras:
            _check_xml_text(path, key)
            _check_xml_text(path, value)
            tag = _TAG_OF_EXTRA.get(key)
            if tag is not None and value == value.strip():
                ET.SubElement(ev, tag).text = value
            else:
                ET.SubElement(ev, "Extra", name=key).text = value
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    atomic_write_bytes(path, data, error=AnnotationError)
