"""DREAMS database text annotations (Univ. Mons): hypnograms and spindle scorings.

- ``[Hypnogram]`` then one R&K code per 5 s, in DREAMS' reversed order
  (5 W, 4 REM, 3 S1, 2 S2, 1 S3, 0 S4, -1 movement, -2/-3 unknown).
- ``[vis1_Spindles/C3-A1]`` (or ``[Spindles/C3-A1]``) then ``onset<TAB>duration`` rows.
"""

from __future__ import annotations

import re
from pathlib import Path

from sleeplm_core.errors import AnnotationError
from sleeplm_core.io.annotation_model import Annotation, Annotations
from sleeplm_core.io.labels import STAGE_LABEL

__all__ = ["DREAMS_ROW_S", "read_dreams_txt"]

DREAMS_ROW_S = 5.0
"""Seconds per row of a DREAMS hypnogram."""

_STAGE_OF_CODE = {5: "W", 4: "REM", 3: "N1", 2: "N2", 1: "N3", 0: "N3", -1: "ART", -2: "UNS"}
_HEADER = re.compile(r"\[(?:(?P<scorer>[A-Za-z]+\d+)_)?(?P<label>[^/\]]+)(?:/(?P<ch>[^\]]*))?\]")


def read_dreams_txt(path: Path, text: str) -> Annotations:
    """Parse a DREAMS hypnogram or event scoring.

    Raises
    ------
    AnnotationError
        When the header is unknown, a row is malformed, or the file is a signal file.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    head = _HEADER.fullmatch(lines[0]) if lines else None
    if head is None:
        raise AnnotationError(path, "has no DREAMS header such as [Hypnogram]")
    rows = [(n, ln.split()) for n, ln in enumerate(lines[1:], start=2) if ln]
    if head.group("label").strip().lower() == "hypnogram":
        return _hypnogram(path, rows)
    if head.group("ch") is None and rows and all(len(r) == 1 for _, r in rows[:10]):
        raise AnnotationError(path, "is a DREAMS signal file (one sample per row), not annotations")
    extras = (("scorer", head.group("scorer")),) if head.group("scorer") else ()
    items = []
    for n, cells in rows:
        if len(cells) != 2:
            raise AnnotationError(path, f"row {n}: expected onset and duration")
        try:
            onset, duration = float(cells[0]), float(cells[1])
            items.append(Annotation(onset, duration, head.group("label"), head.group("ch"), extras))
        except ValueError:
            raise AnnotationError(path, f"row {n}: {' '.join(cells)!r} are not numbers") from None
    return Annotations(items)


def _hypnogram(path: Path, rows: list[tuple[int, list[str]]]) -> Annotations:
    stages = []
    for n, cells in rows:
        try:
            code = int(cells[0])
        except ValueError:
            raise AnnotationError(
                path, f"row {n}: stage code {cells[0]!r} is not an integer"
            ) from None
        stages.append(_STAGE_OF_CODE.get(code, "UNS"))
    items = []
    run_start = 0
    for k in range(1, len(stages) + 1):
        if k == len(stages) or stages[k] != stages[run_start]:
            items.append(
                Annotation(
                    run_start * DREAMS_ROW_S,
                    (k - run_start) * DREAMS_ROW_S,
                    STAGE_LABEL[stages[run_start]],
                )
            )
            run_start = k
    return Annotations(items)
