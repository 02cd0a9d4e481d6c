"""Vendor scoring exports as text tables (Noxturnal, RemLogic/Embla, Compumedics-style).

These exports are tables with a header row somewhere near the top (after patient and session
lines), a start column (clock time, or date and time), an event column, and an end or a
duration column, in English, French or German, separated by tabs, semicolons or commas, in
UTF-8, Latin-1 or UTF-16 (Noxturnal writes UTF-16 with a byte-order mark). The columns are
recognised by their names (:data:`COLUMN_NAMES`), so a variant export with an extra column
still reads. Labels are kept as written; :mod:`sleeplm_core.io.scoring_import` proposes the
mapping to our vocabulary and the viewer shows it before it is applied.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from sleeplm_core.errors import AnnotationError

__all__ = ["COLUMN_NAMES", "RawEvent", "VendorTable", "decode_text", "read_vendor_table"]

COLUMN_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "start": ("start time", "start", "time", "time [hh:mm:ss]", "time [hh:mm:ss.xxx]", "onset",
              "clock time", "heure de debut", "debut", "heure", "startzeit", "beginn", "zeit",
              "begin", "start epoch time"),
    "end": ("end time", "end", "stop", "heure de fin", "fin", "endzeit", "ende"),
    "duration": ("duration", "duration[s]", "duration [s]", "duration (s)", "duree",
                 "duree (s)", "duree [s]", "dauer", "dauer [s]", "dauer (s)", "length"),
    "label": ("event", "event type", "type", "name", "evenement", "type d'evenement",
              "type devenement", "ereignis", "ereignistyp", "description", "annotation"),
    "channel": ("location", "signal", "channel", "canal", "kanal", "voie"),
    "stage": ("sleep stage", "stade", "schlafstadium"),
}
"""Header names per column (case, accents and surrounding spaces ignored)."""


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One row of a vendor table, label as written.

    Parameters
    ----------
    onset_s, duration_s : float
        Seconds from the recording start, and length.
    label : str
        The vendor's label.
    channel : str or None
        The signal the event was scored on, if the table says.
    """

    onset_s: float
    duration_s: float
    label: str
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class VendorTable:
    """A vendor table read against a recording: which format it looked like, and its rows."""

    format: str
    encoding: str
    events: tuple[RawEvent, ...]


def decode_text(path: Path, data: bytes) -> tuple[str, str]:
    """Decode a text export: UTF-16 (BOM, or NUL bytes), UTF-8 (BOM or valid), else Latin-1.

    Returns
    -------
    (str, str)
        The text and the encoding used.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "UTF-16"
    head = data[:2000]
    if head and head.count(b"\x00") > len(head) // 4:  # UTF-16 without a byte-order mark
        enc = "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
        try:
            return data.decode(enc), "UTF-16"
        except UnicodeDecodeError:
            raise AnnotationError(path, "looks like UTF-16 text but cannot be decoded") from None
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def _key(text: str) -> str:
    bare = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(bare.replace("\ufeff", "").split()).casefold().strip('"')


def _columns(header: list[str]) -> dict[str, int]:
    keys = [_key(h) for h in header]
    found: dict[str, int] = {}
    for role, names in COLUMN_NAMES.items():
        for i, k in enumerate(keys):
            if k in names and i not in found.values():
                found[role] = i
                break
    return found


_CLOCK: Final = re.compile(
    r"(?:(?P<date>\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4})[ T])?"
    r"(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2}(?:[.,]\d+)?)"
)


def _clock(text: str, start: datetime) -> float | None:
    """Seconds from ``start`` of a clock time, or ``None`` when ``text`` is none.

    A date is used when given; else the time of day is placed in the night, so a night that
    passes midnight reads right.
    """
    m = _CLOCK.fullmatch(text.strip())
    if m is None:
        return None
    secs = float(m["s"].replace(",", "."))
    tod = timedelta(hours=int(m["h"]), minutes=int(m["m"]), seconds=secs)
    if m["date"]:
        d = m["date"]
        if "-" in d:
            day = datetime.strptime(d, "%Y-%m-%d")
        else:
            parts = re.split(r"[./]", d)
            year = int(parts[2]) + (2000 if len(parts[2]) == 2 else 0)
            day = datetime(year, int(parts[1]), int(parts[0]))
        return ((day + tod) - start).total_seconds()
    base = start.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = ((base + tod) - start).total_seconds()
    return offset + 86400.0 if offset < -3600.0 else offset  # a time after midnight


def _seconds(text: str) -> float | None:
    t = text.strip().replace(",", ".")
    try:
        return float(t)
    except ValueError:
        m = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)|(\d+):(\d{2}(?:\.\d+)?)", t)
        if m is None:
            return None
        if m.group(1):
            return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        return int(m.group(4)) * 60 + float(m.group(5))


def read_vendor_table(path: str | Path, start: datetime) -> VendorTable:
    """Read a vendor's event table against a recording that starts at ``start``.

    Parameters
    ----------
    path : str or Path
        The export.
    start : datetime
        The recording's start (clock times are counted from it).

    Returns
    -------
    VendorTable
        Format (``"Noxturnal event CSV"``, ``"RemLogic/Embla event text"`` or
        ``"Compumedics-style event list"``), encoding and the rows, labels as written.

    Raises
    ------
    AnnotationError
        When the file cannot be read, has no recognisable header, or a row's time cannot be
        read (one line naming the file and the line).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise AnnotationError(p, f"cannot be read: {exc.strerror or exc}") from None
    text, encoding = decode_text(p, data)
    lines = text.splitlines()
    for i, line in enumerate(lines[:60]):
        if not line.strip():
            continue
        delim = max(("\t", ";", ","), key=line.count)
        header = next(csv.reader([line], delimiter=delim))
        cols = _columns(header)
        if "start" in cols and "label" in cols:
            return VendorTable(_format_of(cols), encoding,
                               _rows(p, lines, i, delim, cols, start))
    raise AnnotationError(
        p, "no event table header found (a row naming a start/time and an event column)"
    )


def _format_of(cols: dict[str, int]) -> str:
    if "stage" in cols:
        return "RemLogic/Embla event text"
    if "end" in cols:
        return "Noxturnal event CSV"
    return "Compumedics-style event list"


def _rows(
    p: Path, lines: list[str], header_at: int, delim: str, cols: dict[str, int], start: datetime
) -> tuple[RawEvent, ...]:
    out: list[RawEvent] = []
    reader = csv.reader(lines[header_at + 1 :], delimiter=delim)
    for k, row in enumerate(reader, start=header_at + 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(cols.values()):
            raise AnnotationError(p, f"line {k}: {len(row)} fields, the header has more")
        onset = _clock(row[cols["start"]], start)
        if onset is None:
            onset = _seconds(row[cols["start"]])
        if onset is None:
            raise AnnotationError(p, f"line {k}: cannot read the time {row[cols['start']]!r}")
        duration = 0.0
        if "end" in cols and row[cols["end"]].strip():
            end = _clock(row[cols["end"]], start)
            if end is None:
                raise AnnotationError(p, f"line {k}: cannot read the time {row[cols['end']]!r}")
            duration = max(end - onset, 0.0)
        elif "duration" in cols and row[cols["duration"]].strip():
            d = _seconds(row[cols["duration"]])
            if d is None:
                raise AnnotationError(
                    p, f"line {k}: cannot read the duration {row[cols['duration']]!r}")
            duration = d
        label = row[cols["label"]].strip()
        channel = row[cols["channel"]].strip() if "channel" in cols else ""
        if label:
            out.append(RawEvent(onset, duration, label, channel or None))
    return tuple(out)
