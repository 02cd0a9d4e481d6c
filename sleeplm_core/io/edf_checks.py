"""Read and validate EDF/EDF+/BDF headers before MNE sees the file.

MNE's own errors on a damaged file are cryptic ("invalid literal for int()", a numpy
broadcast error) or come only as warnings (a header that lies about its record count is
silently "fixed"). :func:`read_header` checks every field a reader relies on and raises
:class:`~sleeplm_core.errors.RecordingError` naming the file and the problem.

It also lays the data records out in time (:func:`time_axis`) from the EDF+ time-keeping
TALs, which MNE drops: the sub-second part of the start time and the record onsets of EDF+D
(MNE reads an EDF+D as if it were continuous, gaps removed). :func:`read_records` returns
the digital samples of a run of records.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np

from sleeplm_core.errors import RecordingError

EXTENSIONS: Final[dict[str, str]] = {".edf": "EDF", ".bdf": "BDF"}
"""File extensions the reader accepts (case-insensitive), and the format each promises."""

ANNOTATION_LABELS: Final[tuple[str, ...]] = ("EDF Annotations", "BDF Annotations")
"""Labels of EDF+/BDF+ annotation signals (the same test MNE applies)."""

_BDF_MAGIC: Final = b"\xffBIOSEMI"
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_TAL_ONSET = re.compile(rb"\s*([+-]\d+(?:\.\d*)?)[\x14\x15]")
_MAX_SIGNALS: Final = 4096
MAX_DURATION_S: Final = 1e7
"""About 115 days: record times beyond this are corrupt time-keeping, not a recording."""
MAX_RECORD_S: Final = 600.0
"""Longest data record accepted (PSG systems write 1-30 s; a window read decodes whole
records, so a 4000-s record made every 30-s read decode over an hour of data)."""
MAX_RECORD_SAMPLES: Final = 1 << 20
"""Most samples per data record of one signal."""
MAX_PHYSICAL: Final = 1e30
"""Largest physical minimum/maximum magnitude: samples stay finite in float32 (max 3.4e38)."""
MAX_RATE_HZ: Final = 100_000.0
"""Highest sampling rate accepted."""


@dataclass(frozen=True, slots=True)
class SignalHeader:
    """The header fields of one signal (channel).

    Parameters
    ----------
    label, transducer, unit, prefilter : str
        As written, stripped.
    physical_min, physical_max, digital_min, digital_max : float
        Calibration: ``physical = (digital - digital_min) * gain + physical_min``.
    n_samples : int
        Samples per data record.
    """

    label: str
    transducer: str
    unit: str
    physical_min: float
    physical_max: float
    digital_min: float
    digital_max: float
    prefilter: str
    n_samples: int

    @property
    def is_annotation(self) -> bool:
        """Whether this is an EDF+/BDF+ annotation signal rather than a measurement."""
        return self.label in ANNOTATION_LABELS

    @property
    def gain(self) -> float:
        """Physical units per digital step."""
        return (self.physical_max - self.physical_min) / (self.digital_max - self.digital_min)


@dataclass(frozen=True, slots=True)
class EdfHeader:
    """A validated EDF/EDF+/BDF header.

    Parameters
    ----------
    path : Path
        The file.
    format : str
        ``"EDF"`` or ``"BDF"``.
    plus : str
        ``""`` for plain EDF/BDF, ``"C"`` for EDF+C/BDF+C, ``"D"`` for EDF+D/BDF+D.
    start : datetime
        Start date and time from the header, whole seconds (naive, local clock time).
    header_bytes : int
        Size of the header; the data records follow it.
    n_records : int
        Number of complete data records in the file.
    record_s : float
        Duration of one data record, in seconds.
    signals : tuple of SignalHeader
        All signals, annotation signals included, in file order.
    notes : tuple of str
        Harmless oddities found (an unreadable date, trailing bytes, ...).
    """

    path: Path
    format: str
    plus: str
    start: datetime
    header_bytes: int
    n_records: int
    record_s: float
    signals: tuple[SignalHeader, ...]
    notes: tuple[str, ...] = ()

    @property
    def bytes_per_sample(self) -> int:
        """2 for EDF, 3 for BDF."""
        return 3 if self.format == "BDF" else 2

    @property
    def record_samples(self) -> int:
        """Samples in one data record, all signals together."""
        return sum(s.n_samples for s in self.signals)

    @property
    def record_bytes(self) -> int:
        """Bytes in one data record."""
        return self.record_samples * self.bytes_per_sample

    @property
    def signal_index(self) -> list[int]:
        """Indices (into :attr:`signals`) of the measurement signals, in file order."""
        return [i for i, s in enumerate(self.signals) if not s.is_annotation]

    @property
    def annotation_index(self) -> int | None:
        """Index of the first annotation signal, or ``None``."""
        return next((i for i, s in enumerate(self.signals) if s.is_annotation), None)


def check_path(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` names an existing file with an accepted extension.

    Parameters
    ----------
    path : str or PathLike
        The recording to open.

    Returns
    -------
    Path
        The same path.

    Raises
    ------
    RecordingError
        When the file is missing, is a directory, or has an unknown extension.
    """
    p = Path(path)
    if p.is_dir():
        raise RecordingError(p, "is a directory, not a recording file")
    if not p.exists():
        raise RecordingError(p, "no such file")
    if not p.is_file():  # opening a named pipe or a device would wait forever
        raise RecordingError(p, "is not a regular file (a pipe, device or socket?)")
    if p.suffix.lower() not in EXTENSIONS:
        raise RecordingError(
            p,
            f"unknown format {p.suffix or '(no extension)'!r}: expected an EDF, EDF+ or "
            "BDF recording (.edf or .bdf)",
        )
    return p


def read_header(path: str | os.PathLike[str]) -> EdfHeader:
    """Read and validate the header of an EDF, EDF+ or BDF file.

    Parameters
    ----------
    path : str or PathLike
        An ``.edf`` or ``.bdf`` file.

    Returns
    -------
    EdfHeader
        The parsed header; its record count agrees with the file size.

    Raises
    ------
    RecordingError
        For a missing file, a directory, an unknown format, a truncated file, a record
        count that disagrees with the file size, a non-numeric field, a signal whose
        physical or digital range is empty, or a file without signal channels.
    """
    p = check_path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            fixed = fh.read(256)
            if len(fixed) < 256:
                raise RecordingError(p, f"truncated: only {size} bytes, less than an EDF header")
            fmt = _format(p, fixed[:8])
            n_signals = _int(p, fixed[252:256], "number of signals")
            if not 0 <= n_signals <= _MAX_SIGNALS:
                raise RecordingError(p, f"header says {n_signals} signals")
            block = fh.read(256 * n_signals)
    except OSError as exc:
        raise RecordingError(p, f"cannot be read: {exc.strerror or exc}") from exc
    if len(block) < 256 * n_signals:
        raise RecordingError(p, "truncated: the file ends inside the signal headers")

    notes: list[str] = []
    header_bytes = _int(p, fixed[184:192], "header size")
    if header_bytes != 256 * (n_signals + 1):
        raise RecordingError(
            p,
            f"header size field says {header_bytes} bytes, but {n_signals} signals "
            f"need {256 * (n_signals + 1)}",
        )
    reserved = fixed[192:236].decode("latin-1").strip().upper()
    plus = reserved[4:5] if reserved[:4] in ("EDF+", "BDF+") and reserved[4:5] in ("C", "D") else ""
    n_records = _int(p, fixed[236:244], "number of data records")
    record_s = _float(p, fixed[244:252], "data record duration")
    start = _start(fixed, notes)
    signals = _signals(p, block, n_signals)

    if not any(not s.is_annotation for s in signals):
        raise RecordingError(
            p, "holds no signal channels (an annotation-only EDF+? open it as annotations)"
        )
    if record_s <= 0 or not np.isfinite(record_s):
        raise RecordingError(p, f"data record duration must be positive, not {record_s:g} s")
    if record_s > MAX_RECORD_S:
        raise RecordingError(
            p, f"data record duration {record_s:g} s is longer than {MAX_RECORD_S:g} s"
        )
    for i, sig in enumerate(signals):
        if not sig.is_annotation and sig.n_samples / record_s > MAX_RATE_HZ:
            raise RecordingError(
                p, f"signal {i + 1} ({sig.label!r}): {sig.n_samples / record_s:g} Hz is above "
                f"{MAX_RATE_HZ:g} Hz",
            )
    if plus and not any(s.is_annotation for s in signals):
        notes.append(f"marked EDF+{plus} but has no annotation signal; read as continuous")
        plus = ""

    record_bytes = sum(s.n_samples for s in signals) * (3 if fmt == "BDF" else 2)
    data_bytes = size - header_bytes
    whole, rest = divmod(data_bytes, record_bytes)
    if n_records == -1:  # allowed while recording: infer from the file size
        notes.append(f"record count unknown (-1) in header; {whole} records in the file")
        n_records = whole
    elif n_records < 0:
        raise RecordingError(p, f"header says {n_records} data records")
    elif whole < n_records:
        raise RecordingError(
            p,
            f"truncated: header says {n_records} data records of {record_bytes} bytes, "
            f"but the file holds only {whole}{' and a partial one' if rest else ''}",
        )
    elif whole > n_records:
        raise RecordingError(
            p,
            f"header says {n_records} data records, but the file holds {whole}: "
            "the record count in the header is wrong",
        )
    elif rest:
        notes.append(f"{rest} trailing bytes after the last data record were ignored")
    if n_records == 0:
        raise RecordingError(p, "holds no data records")
    return EdfHeader(
        path=p,
        format=fmt,
        plus=plus,
        start=start,
        header_bytes=header_bytes,
        n_records=n_records,
        record_s=record_s,
        signals=signals,
        notes=tuple(notes),
    )


def read_record_onsets(header: EdfHeader, records: range | None = None) -> np.ndarray:
    r"""Read the time-keeping TAL of EDF+ data records.

    The first TAL of every record in an EDF+ annotation signal is ``"+<onset>\x14\x14"``:
    the record's start in seconds after the header's start time (``"+0.123"`` carries the
    sub-second part of the start). Malformed or empty TALs give NaN instead of an error.

    Parameters
    ----------
    header : EdfHeader
        A header with an annotation signal.
    records : range, optional
        Which records to read; all by default.

    Returns
    -------
    numpy.ndarray
        float64 (n_records,), seconds; NaN where the TAL could not be read. All NaN when
        the file has no annotation signal.
    """
    rng = range(header.n_records) if records is None else records
    out = np.full(len(rng), np.nan)
    ann = header.annotation_index
    if ann is None:
        return out
    bps = header.bytes_per_sample
    offset = sum(s.n_samples for s in header.signals[:ann]) * bps
    length = header.signals[ann].n_samples * bps
    fd = os.open(header.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        for k, r in enumerate(rng):
            pos = header.header_bytes + r * header.record_bytes + offset
            m = _TAL_ONSET.match(os.pread(fd, length, pos))
            if m is not None:
                value = float(m.group(1))
                if np.isfinite(value):
                    out[k] = value
    finally:
        os.close(fd)
    return out


def _format(p: Path, version: bytes) -> str:
    expected = EXTENSIONS[p.suffix.lower()]
    if version == _BDF_MAGIC:
        found = "BDF"
    elif version.decode("latin-1").strip() == "0":
        found = "EDF"
    else:
        raise RecordingError(
            p, f"not an {expected} file: its version field is {version[:8]!r}, not '0'"
        )
    if found != expected:
        raise RecordingError(p, f"holds {found} data but is named {p.suffix}; rename it")
    return found


def _field(raw: bytes) -> str:
    return raw.decode("latin-1").strip()


def _int(p: Path, raw: bytes, what: str) -> int:
    text = _field(raw)
    if not _INT.fullmatch(text):
        raise RecordingError(p, f"header field {what!r} is not an integer: {text!r}")
    return int(text)


def _float(p: Path, raw: bytes, what: str) -> float:
    text = _field(raw)
    if not _FLOAT.fullmatch(text):
        raise RecordingError(p, f"header field {what!r} is not a number: {text!r}")
    value = float(text)
    if not np.isfinite(value):  # "1e999" is a number to the regex but infinite to float
        raise RecordingError(p, f"header field {what!r} is not a finite number: {text!r}")
    return value


def _start(fixed: bytes, notes: list[str]) -> datetime:
    date, time = _field(fixed[168:176]), _field(fixed[176:184])
    try:
        day, month, yy = (int(x) for x in date.split("."))
        hour, minute, second = (int(x) for x in time.split("."))
        year = yy + (1900 if yy >= 85 else 2000)
        # EDF+ writes the 4-digit year in the recording field: "Startdate 02-MAR-2002 ..."
        rec = _field(fixed[88:168]).split()
        if len(rec) >= 2 and rec[0] == "Startdate":
            try:
                year = datetime.strptime(rec[1].title(), "%d-%b-%Y").year
            except ValueError:
                pass
        return datetime(year, month, day) + timedelta(hours=hour, minutes=minute, seconds=second)
    except ValueError:
        notes.append(f"unreadable start date/time {date!r} {time!r}; using 1985-01-01")
        return datetime(1985, 1, 1)


def _signals(p: Path, block: bytes, n: int) -> tuple[SignalHeader, ...]:
    widths = (16, 80, 8, 8, 8, 8, 8, 80, 8, 32)
    cols: list[list[bytes]] = []
    pos = 0
    for w in widths:
        cols.append([block[pos + i * w : pos + (i + 1) * w] for i in range(n)])
        pos += w * n
    out: list[SignalHeader] = []
    for i in range(n):
        label = _field(cols[0][i])
        who = f"signal {i + 1} ({label!r})"
        sig = SignalHeader(
            label=label,
            transducer=_field(cols[1][i]),
            unit=_field(cols[2][i]),
            physical_min=_float(p, cols[3][i], f"physical minimum of {who}"),
            physical_max=_float(p, cols[4][i], f"physical maximum of {who}"),
            digital_min=_float(p, cols[5][i], f"digital minimum of {who}"),
            digital_max=_float(p, cols[6][i], f"digital maximum of {who}"),
            prefilter=_field(cols[7][i]),
            n_samples=_int(p, cols[8][i], f"samples per record of {who}"),
        )
        if not 0 < sig.n_samples <= MAX_RECORD_SAMPLES:
            raise RecordingError(p, f"{who} has {sig.n_samples} samples per data record")
        if not sig.is_annotation:
            if max(abs(sig.physical_min), abs(sig.physical_max)) > MAX_PHYSICAL:
                raise RecordingError(
                    p, f"{who}: physical range {sig.physical_min:g}..{sig.physical_max:g} is "
                    f"beyond ±{MAX_PHYSICAL:g} (samples would overflow)",
                )
            if sig.physical_min == sig.physical_max:
                raise RecordingError(
                    p, f"{who}: physical minimum equals maximum ({sig.physical_min:g})"
                )
            if sig.digital_min >= sig.digital_max:
                raise RecordingError(
                    p,
                    f"{who}: digital minimum {sig.digital_min:g} is not below "
                    f"digital maximum {sig.digital_max:g}",
                )
        out.append(sig)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """Where the data records lie in time.

    Parameters
    ----------
    start : datetime
        Start of the first record: the header's start plus the first time-keeping onset
        (which carries the sub-second part).
    segments : tuple of (int, int, float)
        ``(first_record, n_records, onset_s)`` for each run of records without a gap; a
        continuous file has one.
    gaps : tuple of (float, float)
        ``(onset_s, duration_s)`` of the EDF+D gaps.
    duration_s : float
        From the first record's start to the last record's end, gaps included.
    notes : tuple of str
        Time-keeping problems that were repaired.
    """

    start: datetime
    segments: tuple[tuple[int, int, float], ...]
    gaps: tuple[tuple[float, float], ...]
    duration_s: float
    notes: tuple[str, ...] = ()


def time_axis(header: EdfHeader) -> TimeAxis:
    """Lay the records of a file out in time.

    Plain EDF/BDF and EDF+C are contiguous. For EDF+D each record's onset comes from its
    time-keeping TAL; an unreadable, backwards or overlapping onset puts the record right
    after the previous one (and says so in ``notes``).

    Parameters
    ----------
    header : EdfHeader
        A validated header.

    Returns
    -------
    TimeAxis
        Times in seconds from the start of the first record.

    Raises
    ------
    RecordingError
        When the records span more than :data:`MAX_DURATION_S`.
    """
    n, rec_s = header.n_records, header.record_s
    onsets = np.arange(n) * rec_s
    notes: list[str] = []
    first = float("nan")
    if header.annotation_index is not None:
        tal = read_record_onsets(header, None if header.plus == "D" else range(1))
        first = float(tal[0])
        if header.plus == "D":
            onsets, bad = _repair(tal - first if np.isfinite(first) else tal, rec_s)
            if bad:
                notes.append(
                    f"{bad} EDF+D record onsets unreadable or overlapping; placed right "
                    "after the previous record"
                )
    start = header.start
    if np.isfinite(first) and 0.0 <= first < MAX_DURATION_S:
        start = header.start + timedelta(seconds=first)
    elif header.annotation_index is not None:
        notes.append("first data record has no readable time-keeping TAL")
    breaks = np.flatnonzero(np.diff(onsets) > rec_s + 1e-6) + 1
    bounds = np.concatenate([[0], breaks, [n]]).astype(int)
    duration = float(onsets[-1] + rec_s)
    if duration > MAX_DURATION_S:
        raise RecordingError(header.path, f"record times span {duration / 86400:.0f} days")
    return TimeAxis(
        start=start,
        segments=tuple(
            (int(a), int(b - a), float(onsets[a]))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ),
        gaps=tuple(
            (float(onsets[b - 1] + rec_s), float(onsets[b] - onsets[b - 1] - rec_s)) for b in breaks
        ),
        duration_s=duration,
        notes=tuple(notes),
    )


def _repair(onsets: np.ndarray, rec_s: float) -> tuple[np.ndarray, int]:
    out = onsets.copy()
    bad = 0
    for r in range(len(out)):
        prev_end = out[r - 1] + rec_s if r else 0.0
        if not np.isfinite(out[r]) or out[r] < prev_end - 1e-6 or out[r] > MAX_DURATION_S:
            out[r] = prev_end
            bad += 1
    return out, bad


def read_records(fd: int, header: EdfHeader, first: int, count: int) -> np.ndarray:
    """Read the digital samples of ``count`` data records starting at record ``first``.

    Parameters
    ----------
    fd : int
        An open file descriptor of ``header.path`` (``os.pread`` needs no shared position,
        so several threads may read at once).
    header : EdfHeader
        The file's header.
    first, count : int
        The records to read.

    Returns
    -------
    numpy.ndarray
        int16 (EDF) or int32 (BDF), shape (count, header.record_samples).

    Raises
    ------
    RecordingError
        When the file became shorter since it was opened.
    """
    size = count * header.record_bytes
    raw = os.pread(fd, size, header.header_bytes + first * header.record_bytes)
    if len(raw) < size:
        raise RecordingError(header.path, "the file became shorter while it was open")
    if header.format == "EDF":
        return np.frombuffer(raw, "<i2").reshape(count, header.record_samples)
    b = np.frombuffer(raw, np.uint8).reshape(count, header.record_samples, 3).astype(np.int32)
    value = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
    return (value ^ 0x800000) - 0x800000  # sign-extend 24 bits
