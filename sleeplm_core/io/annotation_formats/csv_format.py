"""CSV annotations: EDFbrowser, YASA event tables, MNE, and our own lossless layout.

Recognized by the header (case-insensitive):

- ours / MNE:   ``onset,duration,description[,channel][,extras]`` (MNE: ``ch_names``)
- EDFbrowser:   ``Onset,Duration,Annotation``
- YASA events:  ``Start,End,Duration,...,Channel,...`` (label from the columns or file name)
- MNE text:     ``# MNE-Annotations`` / ``# orig_time : ...`` / ``# onset, duration, description``

Onsets may be seconds (``12.5``, ``+12.5``), elapsed ``hh:mm:ss.fff``, or ISO clock times
(which need the recording start). Columns not recognized become extras.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from sleeplm_core.errors import AnnotationError
from sleeplm_core.io.annotation_model import Annotation, Annotations
from sleeplm_core.io.atomic import atomic_open

__all__ = ["looks_like_csv", "read_csv", "write_csv"]

_ONSET = ("onset", "start", "onset_s", "start_s", "onset (s)", "start (s)", "time")
_DURATION = ("duration", "duration_s", "duration (s)", "dur")
_END = ("end", "end_s", "end (s)", "offset")
_LABEL = ("description", "annotation", "annotations", "label", "event", "type", "name")
_CHANNEL = ("channel", "ch_names", "ch_name", "channels", "signal")
_EXTRAS = "extras"
_EXACT_ONSET = "onset_s"  # exact seconds beside ISO clock-time onsets (see write_csv)
_MNE_ORIGIN = datetime(1970, 1, 1)  # MNE writes onsets of annotations without orig_time from here
# Column signatures of YASA's detection summaries, which carry no label column.
_YASA_KINDS = (
    ("oscillations", "Spindle"),
    ("negpeak", "Slow wave"),
    ("locabsvalpeak", "Rapid eye movement"),
)
_MNE_TXT = "# MNE-Annotations"
_HMS = re.compile(r"([+-]?)(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)")


def _fmt(x: float) -> str:
    """Shortest positional decimal that reads back as the same float."""
    return str(np.format_float_positional(x, unique=True, trim="-"))


def write_csv(ann: Iterable[Annotation], path: Path, *, start: datetime | None = None) -> None:
    """Write ``onset,duration,description,channel,extras,onset_s`` (extras: JSON list of pairs).

    ``onset`` is the clock time, ISO 8601 to the microsecond: the layout
    ``mne.read_annotations`` reads (it takes numeric onsets for milliseconds). It counts from
    ``start`` (the recording start) or, without one, from MNE's origin for annotations with no
    start (1970-01-01 00:00:00). ``onset_s`` keeps the exact seconds from the start, which our
    reader prefers, so the file round-trips losslessly. ``channel``, ``extras`` and ``onset_s``
    are extra columns to MNE.

    Raises
    ------
    AnnotationError
        When the file cannot be written.
    """
    base = _MNE_ORIGIN if start is None else start
    with atomic_open(path, "w", newline="", error=AnnotationError) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["onset", "duration", "description", "channel", _EXTRAS, _EXACT_ONSET])
        for a in ann:
            extras = json.dumps([list(kv) for kv in a.extras], ensure_ascii=False)
            try:
                clock = (base + timedelta(seconds=a.onset_s)).isoformat(
                    sep=" ", timespec="microseconds"
                )
            except OverflowError:  # beyond datetime's range: seconds, as onset_s
                clock = _fmt(a.onset_s)
            w.writerow(
                [
                    clock,
                    _fmt(a.duration_s),
                    a.label,
                    a.channel or "",
                    extras if a.extras else "",
                    _fmt(a.onset_s),
                ]
            )


def looks_like_csv(head: str) -> bool:
    """Whether the first line names an onset column (so the text is a CSV table)."""
    if head.startswith(_MNE_TXT):
        return True
    first = head.splitlines()[0] if head.strip() else ""
    delim = _delimiter(first)
    cols = [c.strip().strip('"').lower() for c in first.split(delim)]
    return any(c in _ONSET for c in cols)


def _delimiter(header: str) -> str:
    return max((",", ";", "\t"), key=header.count)


def _find(cols: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in cols:
            return cols.index(name)
    return None


class _Row:
    """Parses one row's cells into an annotation, reporting errors with the row number."""

    def __init__(self, path: Path, header: list[str], start: datetime | None) -> None:
        self.path = path
        cols = [c.strip().lower() for c in header]
        self.header = [c.strip() for c in header]
        onset = _find(cols, _ONSET)
        clock = None
        if onset is not None and _EXACT_ONSET in cols and cols[onset] != _EXACT_ONSET:
            clock, onset = onset, cols.index(_EXACT_ONSET)  # exact seconds beside clock times
        if onset is None:
            raise AnnotationError(path, "CSV without an onset column (onset, start, time)")
        self.onset = onset
        self.duration = _find(cols, _DURATION)
        self.end = _find(cols, _END)
        self.label = _find(cols, _LABEL)
        self.default_label = None
        if self.label is None:
            kinds = [lab for key, lab in _YASA_KINDS if key in cols]
            stage = _find(cols, ("stage", "sleep stage"))
            if kinds:
                self.default_label = kinds[0]
            elif stage is not None:
                self.label = stage
            else:
                self.default_label = path.stem
        self.channel = _find(cols, _CHANNEL)
        self.extras = cols.index(_EXTRAS) if _EXTRAS in cols else None
        used = {self.onset, clock, self.duration, self.end, self.label, self.channel, self.extras}
        self.other = [i for i in range(len(cols)) if i not in used]
        self.start = start

    def _err(self, n: int, problem: str) -> AnnotationError:
        return AnnotationError(self.path, f"row {n}: {problem}")

    def _seconds(self, n: int, text: str, what: str) -> float:
        t = text.strip()
        try:
            value = float(t)
        except ValueError:
            value = self._time_text(n, t, what)
        if not math.isfinite(value):
            raise self._err(n, f"{what} {text!r} is not a finite number")
        return value

    def _time_text(self, n: int, t: str, what: str) -> float:
        m = _HMS.fullmatch(t)
        if m:
            sign = -1.0 if m.group(1) == "-" else 1.0
            return sign * (int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4)))
        try:
            when = datetime.fromisoformat(t)
        except ValueError:
            raise self._err(n, f"{what} {t!r} is neither seconds nor a time") from None
        if self.start is None:
            raise self._err(
                n,
                f"{what} {t!r} is a clock time; the recording start is needed to place it "
                "(open the file together with its recording)",
            )
        start = self.start
        if (when.tzinfo is None) != (start.tzinfo is None):
            when, start = when.replace(tzinfo=None), start.replace(tzinfo=None)
        return (when - start).total_seconds()

    def parse(self, n: int, cells: list[str]) -> Annotation:
        if len(cells) != len(self.header):
            raise self._err(n, f"{len(cells)} fields where the header has {len(self.header)}")
        onset = self._seconds(n, cells[self.onset], "onset")
        duration = 0.0
        if self.duration is not None and cells[self.duration].strip():
            duration = self._seconds(n, cells[self.duration], "duration")
        elif self.end is not None and cells[self.end].strip():
            duration = self._seconds(n, cells[self.end], "end") - onset
        if duration == -1.0:  # EDFbrowser's "no duration"
            duration = 0.0
        if duration < 0:
            raise self._err(n, f"negative duration {duration:g} s")
        label = cells[self.label] if self.label is not None else self.default_label or ""
        if not label.strip():
            raise self._err(n, "empty description")
        channel = _channel(cells[self.channel]) if self.channel is not None else None
        extras = [(self.header[i], cells[i]) for i in self.other if cells[i] != ""]
        if self.extras is not None and cells[self.extras]:
            extras.extend(_extras(cells[self.extras]))
        return Annotation(onset, duration, label, channel, tuple(extras))


_QUOTED = re.compile(r"""\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*(?:,|$)""")
_MAX_CHANNEL_CELL = 4096


def _channel(text: str) -> str | None:
    """The channel cell: a name, or MNE's ``('Fpz', 'Cz')`` tuple literal joined by commas.

    The literal is read by a flat, bounded parser (quoted names separated by commas), never
    by ``ast.literal_eval``: a nested or huge literal in an untrusted file is kept as text.
    """
    t = text.strip()
    if t[:1] in "([" and t[-1:] in ")]" and len(t) <= _MAX_CHANNEL_CELL:
        names = _flat_names(t[1:-1])
        if names is not None:
            return ",".join(names) or None
    return t or None


def _flat_names(body: str) -> list[str] | None:
    """``'a', "b",`` → ``['a', 'b']``; ``None`` unless the text is only quoted names."""
    names: list[str] = []
    pos = 0
    body = body.rstrip()
    while pos < len(body):
        m = _QUOTED.match(body, pos)
        if m is None or m.end() == pos:
            return None
        names.append(m.group(1) if m.group(1) is not None else m.group(2))
        pos = m.end()
    return names


def _extras(text: str) -> list[tuple[str, str]]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a deeply nested untrusted cell
        return [(_EXTRAS, text)]
    if isinstance(value, dict):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, list) and all(isinstance(kv, list) and len(kv) == 2 for kv in value):
        return [(str(k), str(v)) for k, v in value]
    return [(_EXTRAS, text)]


def _mne_txt(path: Path, text: str) -> tuple[str, datetime | None]:
    """Turn MNE's ``.txt`` annotations into plain CSV text; return it and ``orig_time``.

    MNE writes the rows without CSV quoting, so a description holding commas or quotes is
    split on every comma: the surplus fields are joined back into the description.
    """
    header = ["onset", "duration", "description"]
    orig_time = None
    body: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            if line.strip():
                body.append(line.split(","))
            continue
        comment = line.lstrip("#").strip()
        if comment.lower().startswith("onset"):
            header = [c.strip() for c in comment.split(",")]
        elif comment.startswith("orig_time"):
            value = comment.split(":", 1)[1].strip() if ":" in comment else ""
            try:
                orig_time = datetime.fromisoformat(value)
            except ValueError:
                if value.lower() != "none":
                    raise AnnotationError(path, f"orig_time {value!r} is not a time") from None
    desc = header.index("description") if "description" in header else None
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for cells in body:
        surplus = len(cells) - len(header)
        if surplus > 0 and desc is not None:
            cells[desc : desc + surplus + 1] = [",".join(cells[desc : desc + surplus + 1])]
        w.writerow([c.strip() if i != desc else c for i, c in enumerate(cells)])
    return out.getvalue(), orig_time


def read_csv(path: Path, text: str, *, start: datetime | None = None) -> Annotations:
    """Parse CSV annotation text (see the module docstring for the layouts).

    Raises
    ------
    AnnotationError
        When the header has no onset column or a row is malformed.
    """
    shift = 0.0
    if text.startswith(_MNE_TXT):
        text, orig_time = _mne_txt(path, text)
        if orig_time is not None and start is not None:
            shift = (orig_time.replace(tzinfo=None) - start.replace(tzinfo=None)).total_seconds()
    lines = text.splitlines()
    if not lines:
        raise AnnotationError(path, "the CSV file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(lines[0]))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise AnnotationError(path, f"malformed CSV: {exc}") from None
    parser = _Row(path, rows[0], start)
    items = []
    for n, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        try:
            a = parser.parse(n, cells)
        except ValueError as exc:  # pragma: no cover - Annotation validates again
            raise AnnotationError(path, f"row {n}: {exc}") from None
        items.append(a if shift == 0 else replace(a, onset_s=a.onset_s + shift))
    return Annotations(items)
