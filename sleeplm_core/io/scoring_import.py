"""Scoring from vendor exports and from stage/event channels, mapped to our vocabulary.

An import is planned first and applied second, so that the viewer can show the user how each
label of the source will be read before anything changes:

======================  ======================================================================
``plan_from_file``      a vendor text table (Noxturnal CSV incl. UTF-16, RemLogic/Embla text,
                        Compumedics-style list; English, French or German labels)
``plan_from_channel``   a hypnogram or event-code signal inside the recording
``propose_label``       the proposed label for a source label (``resources/event_label_map.csv``
                        first, then :func:`sleeplm_core.io.labels.normalize_label`)
``ImportPlan.apply``    the annotations, with the (possibly edited) mapping
======================  ======================================================================
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np

from sleeplm_core.errors import AnnotationError
from sleeplm_core.io.annotation_formats.vendor_text import RawEvent, read_vendor_table
from sleeplm_core.io.annotation_model import Annotation, Annotations
from sleeplm_core.io.annotations import check_fits
from sleeplm_core.io.labels import STAGE_LABEL, normalize_label
from sleeplm_core.resources import resource_path
from sleeplm_core.stages import EPOCH_S

__all__ = ["KEEP", "SKIP", "ImportPlan", "plan_from_channel", "plan_from_file", "propose_label"]

KEEP: Final = ""
"""Mapping value: keep the source label as written."""
SKIP: Final = "-"
"""Mapping value: leave such rows out."""

STAGE_CODES: Final[dict[str, dict[int, str]]] = {
    "R&K numeric": {0: "W", 1: "N1", 2: "N2", 3: "N3", 4: "N3", 5: "REM", 6: "ART", 9: "UNS"},
    "DREAMS": {5: "W", 4: "REM", 3: "N1", 2: "N2", 1: "N3", 0: "N3", -1: "ART", -2: "UNS",
               -3: "UNS"},
}
"""Stage code schemes of hypnogram channels (DREAMS: its documented reversed R&K order)."""


@dataclass
class ImportPlan:
    """A scoring import, before it is applied.

    Parameters
    ----------
    source : str
        What is imported, for the user (``"night.csv (Noxturnal event CSV, UTF-16)"``).
    events : list of RawEvent
        The rows, labels as written.
    mapping : dict of str to str
        Source label -> our label, :data:`KEEP` or :data:`SKIP`; proposed, then editable.
    path : Path or None
        The file (``None`` for a channel).
    """

    source: str
    events: list[RawEvent]
    mapping: dict[str, str]
    path: Path | None = None

    def counts(self) -> Counter[str]:
        """How many rows carry each source label."""
        return Counter(e.label for e in self.events)

    def apply(
        self, duration_s: float, mapping: Mapping[str, str] | None = None
    ) -> Annotations:
        """Build the annotations with ``mapping`` (default: the plan's).

        Raises
        ------
        AnnotationError
            When the events do not fit a recording of ``duration_s`` (another recording's
            scoring): nothing is imported then.
        """
        use = dict(self.mapping if mapping is None else mapping)
        out: list[Annotation] = []
        for e in self.events:
            target = use.get(e.label, KEEP)
            if target == SKIP:
                continue
            out.append(Annotation(e.onset_s, e.duration_s, target or e.label, e.channel))
        ann = Annotations(out)
        check_fits(ann, self.path or self.source, duration_s)
        return ann


@lru_cache(maxsize=1)
def _label_table() -> tuple[tuple[re.Pattern[str], str], ...]:
    src = resource_path("event_label_map.csv")
    lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    return tuple(
        (re.compile(row["pattern"], re.IGNORECASE), row["label"].strip())
        for row in csv.DictReader(lines)
    )


def propose_label(label: str) -> str:
    """Propose our label for a source label: a vocabulary term, :data:`KEEP` or :data:`SKIP`.

    >>> propose_label("Apnée obstructive"), propose_label("SLEEP-REM"), propose_label("MCAP-B")
    ('Obstructive apnea', 'Sleep stage R', '')
    """
    key = " ".join(label.split())
    for pattern, target in _label_table():
        if pattern.fullmatch(key):
            return target
    normalized = normalize_label(key)
    return normalized if normalized != key else KEEP


def _plan(source: str, events: list[RawEvent], path: Path | None) -> ImportPlan:
    mapping = {lab: propose_label(lab) for lab in sorted({e.label for e in events})}
    return ImportPlan(source, events, mapping, path)


def plan_from_file(path: str | Path, start: datetime, duration_s: float) -> ImportPlan:
    """Plan the import of a vendor text export for a recording.

    Raises
    ------
    AnnotationError
        When the file cannot be read, or its events lie outside the recording (scoring of
        another recording, or a start that does not match): one line, nothing loaded.
    """
    p = Path(path)
    table = read_vendor_table(p, start)
    if not table.events:
        raise AnnotationError(p, "the event table has no rows")
    plan = _plan(f"{p.name} ({table.format}, {table.encoding})", list(table.events), p)
    outside = [e for e in table.events if e.onset_s < -1.0 or e.onset_s > duration_s + EPOCH_S]
    if outside:
        raise AnnotationError(
            p, f"{len(outside)} of {len(table.events)} events lie outside the recording "
            f"(first at {outside[0].onset_s:.0f} s of {duration_s:.0f} s): scoring of another "
            "recording, or another start time? Not loaded.",
        )
    return plan


def plan_from_channel(rec: Any, name: str, epoch_s: float = EPOCH_S) -> ImportPlan:
    """Plan the import of a hypnogram (type STAGE) or event-code (type EVENT) channel.

    A hypnogram channel gives one stage per epoch (the most frequent code in it), read with
    the DREAMS scheme when its unit says ``stade`` and the R&K numeric one otherwise; codes
    the scheme does not know are kept as ``"Stage code N"`` for the user to map. An event
    channel gives one event per run of a non-zero code (``"Event code N"``).
    """
    info = {c.name: c for c in rec.channels}[name]
    x = rec.window(0.0, float(rec.duration_s), [name]).data[0]
    sf = float(info.sf)
    events: list[RawEvent] = []
    if info.type == "STAGE":
        scheme_name = "DREAMS" if info.unit.lower().startswith("stade") else "R&K numeric"
        scheme = STAGE_CODES[scheme_name]
        per = max(int(round(epoch_s * sf)), 1)
        for k in range(int(len(x) // per)):
            seg = x[k * per : (k + 1) * per]
            seg = seg[np.isfinite(seg)]
            if not seg.size:
                continue
            vals, counts = np.unique(np.round(seg).astype(int), return_counts=True)
            code = int(vals[np.argmax(counts)])
            events.append(RawEvent(k * epoch_s, epoch_s, _stage_text(code, scheme)))
        source = f"channel {name} (hypnogram, {scheme_name} codes)"
    else:
        codes = np.nan_to_num(np.round(x), nan=0.0).astype(int)
        edges = np.flatnonzero(np.diff(np.r_[0, codes, 0]) != 0)
        for a, b in zip(edges[:-1], edges[1:], strict=False):
            if codes[a] != 0:
                events.append(RawEvent(a / sf, (b - a) / sf, f"Event code {codes[a]}", name))
        source = f"channel {name} (event codes)"
    plan = _plan(source, events, None)
    for e in events:  # a stage code stands for its stage: proposed already mapped
        if e.label.startswith("Sleep stage") or e.label == STAGE_LABEL["ART"]:
            plan.mapping[e.label] = e.label
    return plan


def _stage_text(code: int, scheme: dict[int, str]) -> str:
    stage = scheme.get(code)
    return STAGE_LABEL[stage] if stage is not None else f"Stage code {code}"
