"""The search language of the query bar, Qt-free: free text plus structured filters.

>>> q = parse_query("obstructive apnea stage:REM after:02:00 min_dur:10s")
>>> q.text, q.filters.stages, q.filters.min_dur_s
('obstructive apnea', ('REM',), 10.0)

==================  ==========================================================================
filter              meaning
==================  ==========================================================================
``stage:REM``       the segment lies mostly in one of these scored stages (``stage:N2,N3``)
``after:02:00``     starts at or after a clock time of the recording (wraps past midnight)
``after:1h30m``     starts at or after an elapsed time (``90m``, ``5400s``, ``+1:30:00``)
``before:...``      ends at or before a time, same forms as ``after``
``min_dur:10s``     lasts at least (``10s``, ``2m``, ``1m30s``, ``45``)
``max_dur:2m``      lasts at most
``channel:EEG``     concerns a channel type (EEG, EOG, EMG, ECG, AIRFLOW, SPO2, ...)
==================  ==========================================================================

The free text is what the model searches for; the filters are applied afterwards by
:func:`apply_filters` to the segments it found. A token that looks like ``word:...`` but is
not a filter name stays in the text (so "ratio 2:1" searches for "ratio 2:1").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from sleeplm_core.results import Segment
from sleeplm_core.stages import EPOCH_S, normalize_stage

DAY_S = 86_400.0
BEFORE_START_S = 6 * 3600.0
"""A clock time up to this long before the recording start means "before the start"."""

FILTER_KEYS = ("stage", "after", "before", "min_dur", "max_dur", "channel")
_TOKEN = re.compile(r"^(?P<key>[A-Za-z_]+):(?P<value>.*)$")
_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?:in)?)?"
                       r"(?:(?P<s>\d+(?:\.\d+)?)s?)?$")
_CLOCK = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}(?:\.\d+)?))?$")

CHANNEL_ALIASES: dict[str, tuple[str, ...]] = {
    "EEG": ("EEG",),
    "EOG": ("EOG",),
    "EMG": ("EMG",),
    "ECG": ("ECG",),
    "EKG": ("ECG",),
    "AIRFLOW": ("AIRFLOW",),
    "FLOW": ("AIRFLOW",),
    "THORACIC": ("THORACIC",),
    "THX": ("THORACIC",),
    "ABDOMINAL": ("ABDOMINAL",),
    "ABD": ("ABDOMINAL",),
    "SPO2": ("SPO2",),
    "SAO2": ("SPO2",),
    "POSITION": ("POSITION",),
    "BRAIN": ("EEG", "EOG"),
    "HEART": ("ECG",),
    "RESP": ("AIRFLOW", "THORACIC", "ABDOMINAL", "SPO2"),
    "RESPIRATORY": ("AIRFLOW", "THORACIC", "ABDOMINAL", "SPO2"),
    "SOMATIC": ("EMG", "POSITION"),
}
"""Words ``channel:`` accepts, and the channel types each stands for."""


class QueryError(ValueError):
    """A filter the parser cannot read; ``str()`` is one line for the query bar."""


@dataclass(frozen=True)
class TimeBound:
    """A point in the night named by the user.

    Attributes
    ----------
    kind : {"clock", "elapsed"}
        ``clock``: ``seconds`` after midnight on the recording's clock; ``elapsed``:
        ``seconds`` after the recording start.
    seconds : float
        The time, in seconds.
    text : str
        What the user typed.
    """

    kind: Literal["clock", "elapsed"]
    seconds: float
    text: str = ""

    def elapsed_s(self, start: datetime | None, duration_s: float | None = None) -> float:
        """Seconds from the recording start (negative: before it).

        A clock time is the next time the recording's clock shows it, so ``after:02:00`` in
        a night that starts at 22:14 means 3 h 46 min in. A clock time a little before the
        start (within the recording's length, or 6 h without one) is before the start.
        """
        if self.kind == "elapsed":
            return self.seconds
        if start is None:
            raise QueryError(f"{self.text}: the recording has no start time; use elapsed (1h30m)")
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        start_clock = (start - midnight).total_seconds()
        delta = (self.seconds - start_clock) % DAY_S
        limit = DAY_S - BEFORE_START_S if duration_s is None else max(duration_s, 1.0)
        return delta - DAY_S if delta > limit and delta > DAY_S - BEFORE_START_S else delta


@dataclass(frozen=True)
class QueryFilters:
    """Structured filters of a query; empty fields do not filter."""

    stages: tuple[str, ...] = ()
    after: TimeBound | None = None
    before: TimeBound | None = None
    min_dur_s: float | None = None
    max_dur_s: float | None = None
    channel_types: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """Whether no filter is set."""
        return self == QueryFilters()

    def describe(self) -> str:
        """A short human summary ("stage REM, after 02:00, ≥ 10 s")."""
        parts: list[str] = []
        if self.stages:
            parts.append("stage " + "/".join(self.stages))
        if self.after is not None:
            parts.append(f"after {self.after.text}")
        if self.before is not None:
            parts.append(f"before {self.before.text}")
        if self.min_dur_s is not None:
            parts.append(f"≥ {self.min_dur_s:g} s")
        if self.max_dur_s is not None:
            parts.append(f"≤ {self.max_dur_s:g} s")
        if self.channel_types:
            parts.append("channel " + "/".join(self.channel_types))
        return ", ".join(parts)


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into the text the model searches for and the filters."""

    text: str
    filters: QueryFilters = QueryFilters()


def parse_query(query: str) -> ParsedQuery:
    """Split a query-bar line into free text and filters.

    Raises
    ------
    QueryError
        For a filter with a value the parser cannot read (one-line message).
    """
    words: list[str] = []
    f = QueryFilters()
    for token in query.split():
        m = _TOKEN.match(token)
        key = m.group("key").lower() if m else ""
        if m is None or key not in FILTER_KEYS:
            words.append(token)
            continue
        value = m.group("value").strip()
        if not value:
            raise QueryError(f"{key}: needs a value (e.g. {_EXAMPLES[key]})")
        if key == "stage":
            f = replace(f, stages=_stages(value))
        elif key in ("after", "before"):
            f = replace(f, **{key: parse_time(value)})
        elif key == "min_dur":
            f = replace(f, min_dur_s=parse_duration(value))
        elif key == "max_dur":
            f = replace(f, max_dur_s=parse_duration(value))
        else:
            f = replace(f, channel_types=_channels(value))
    if f.min_dur_s is not None and f.max_dur_s is not None and f.min_dur_s > f.max_dur_s:
        raise QueryError(f"min_dur {f.min_dur_s:g} s is longer than max_dur {f.max_dur_s:g} s")
    return ParsedQuery(" ".join(words), f)


_EXAMPLES = {
    "stage": "stage:REM or stage:N2,N3",
    "after": "after:02:00 or after:1h30m",
    "before": "before:05:30 or before:6h",
    "min_dur": "min_dur:10s",
    "max_dur": "max_dur:2m",
    "channel": "channel:EEG",
}


def parse_duration(text: str) -> float:
    """Seconds in ``"10s"``, ``"2m"``, ``"1m30s"``, ``"1h"``, ``"1.5m"`` or ``"45"``."""
    t = text.strip().lower().replace(" ", "")
    m = _DURATION.match(t)
    if not t or m is None or not any(m.groupdict().values()):
        raise QueryError(f"{text!r} is not a duration (write 10s, 2m, 1m30s or 1h)")
    h, mi, s = (float(m.group(k) or 0.0) for k in ("h", "m", "s"))
    return h * 3600.0 + mi * 60.0 + s


def parse_time(text: str) -> TimeBound:
    """A clock time (``02:00``, ``23:41:05``) or an elapsed time (``1h30m``, ``+1:30:00``)."""
    t = text.strip()
    if t.startswith("+"):
        m = _CLOCK.match(t[1:])
        if m is not None:
            return TimeBound("elapsed", _hms(m), t)
        return TimeBound("elapsed", parse_duration(t[1:]), t)
    m = _CLOCK.match(t)
    if m is not None:
        secs = _hms(m)
        if int(m.group("h")) > 23 or int(m.group("m")) > 59:
            raise QueryError(f"{text!r} is not a clock time (00:00 to 23:59:59)")
        return TimeBound("clock", secs, t)
    try:
        return TimeBound("elapsed", parse_duration(t), t)
    except QueryError:
        raise QueryError(
            f"{text!r} is not a time (write a clock time 02:00 or elapsed 1h30m)"
        ) from None


def _hms(m: re.Match[str]) -> float:
    return int(m.group("h")) * 3600.0 + int(m.group("m")) * 60.0 + float(m.group("s") or 0.0)


def _stages(value: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in value.split(","):
        stage = normalize_stage(part.strip()) if part.strip() else None
        if stage is None:
            raise QueryError(f"stage:{value}: {part!r} is not a stage (W, N1, N2, N3, REM)")
        if stage not in out:
            out.append(stage)
    return tuple(out)


def _channels(value: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in value.split(","):
        types = CHANNEL_ALIASES.get(part.strip().upper())
        if types is None:
            known = ", ".join(k for k in CHANNEL_ALIASES if k not in ("EKG", "SAO2", "THX", "ABD"))
            raise QueryError(f"channel:{value}: {part!r} is not a channel type ({known})")
        out.extend(t for t in types if t not in out)
    return tuple(out)


def segment_stage(
    segment: Segment, hypnogram_stages: Sequence[str], epoch_s: float = EPOCH_S
) -> str | None:
    """The scored stage covering most of ``segment`` (``None`` outside the hypnogram)."""
    cover: dict[str, float] = {}
    a, b = segment.onset_s, segment.onset_s + max(segment.duration_s, 1e-6)
    first = max(0, int(a // epoch_s))
    last = min(len(hypnogram_stages) - 1, int((b - 1e-9) // epoch_s))
    for e in range(first, last + 1):
        overlap = min(b, (e + 1) * epoch_s) - max(a, e * epoch_s)
        if overlap > 0:
            st = str(hypnogram_stages[e])
            cover[st] = cover.get(st, 0.0) + overlap
    return max(cover, key=lambda k: cover[k]) if cover else None


def apply_filters(
    segments: Sequence[Segment],
    parsed: ParsedQuery,
    hypnogram_stages: Sequence[str] | None,
    recording_start: datetime | None,
    *,
    duration_s: float | None = None,
    epoch_s: float = EPOCH_S,
) -> list[Segment]:
    """Keep the segments that pass every filter of ``parsed``, in their order.

    Parameters
    ----------
    segments : sequence of Segment
        What the model found (best first).
    parsed : ParsedQuery
        The query and its filters.
    hypnogram_stages : sequence of str or None
        The scored stage of each epoch (YASA names); ``None`` when the night is unscored,
        in which case a ``stage:`` filter keeps nothing.
    recording_start : datetime or None
        Wall-clock start of the recording, for clock-time filters.
    duration_s : float, optional
        Recording length, which decides whether a clock time just before the start means
        "before the start" (see :meth:`TimeBound.elapsed_s`).
    epoch_s : float
        Epoch length of ``hypnogram_stages``.

    Raises
    ------
    QueryError
        For a clock-time filter on a recording without a start time.
    """
    f = parsed.filters
    if f.is_empty():
        return list(segments)
    after = f.after.elapsed_s(recording_start, duration_s) if f.after else None
    before = f.before.elapsed_s(recording_start, duration_s) if f.before else None
    wanted_types = set(f.channel_types)
    out: list[Segment] = []
    for s in segments:
        end = s.onset_s + s.duration_s
        if after is not None and s.onset_s < after - 1e-9:
            continue
        if before is not None and end > before + 1e-9:
            continue
        if f.min_dur_s is not None and s.duration_s < f.min_dur_s - 1e-9:
            continue
        if f.max_dur_s is not None and s.duration_s > f.max_dur_s + 1e-9:
            continue
        if wanted_types and not wanted_types.intersection(s.channel_types):
            continue
        if f.stages:
            if hypnogram_stages is None:
                continue
            if segment_stage(s, hypnogram_stages, epoch_s) not in f.stages:
                continue
        out.append(s)
    return out
