"""Writing EDF+ files with edfio: signals with annotations, or annotations alone.

Main functions
--------------
=========================  ==========================================================
``SignalSpec``             one channel to write: name, type, sf, unit, float64 data
``write_edf``              EDF+C with signals and TAL annotations (sub-second start kept)
``write_edf_annotations``  annotation-only EDF+ file
``record_duration_s``      the data-record duration making every sample count integral
=========================  ==========================================================

Both writers are atomic (temporary file, fsync, ``os.replace``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from fractions import Fraction
from os import PathLike
from pathlib import Path

import edfio
import numpy as np
import numpy.typing as npt

from sleeplm_core.errors import AnnotationError, RecordingError, SleepLMError
from sleeplm_core.io.annotation_formats.edf_extras import write_extras
from sleeplm_core.io.annotation_formats.edf_tal import encode_text
from sleeplm_core.io.annotation_model import Annotation
from sleeplm_core.io.atomic import atomic_open, atomic_write_bytes

__all__ = [
    "DIGITAL_RANGE",
    "SignalSpec",
    "physical_range",
    "record_duration_s",
    "write_edf",
    "write_edf_annotations",
]

DIGITAL_RANGE: tuple[int, int] = (-32767, 32767)
"""Digital minimum and maximum written for every signal."""

_HEADROOM = 0.01  # fraction of the data's span added above and below
_DECIMAL_DIGITS = 1100  # enough for any double's exact decimal sum with a sub-second start
_MAX_RECORD_S = 60.0  # EDF+ asks for data records of at most ~61440 bytes; keep them short


@dataclass(frozen=True)
class SignalSpec:
    """One channel to write.

    Parameters
    ----------
    name : str
        Channel label, written as the EDF signal label (at most 16 characters).
    type : str
        Channel type (one of :data:`sleeplm_core.io.channels.CHANNEL_TYPES`); not written.
    sf : float
        Sampling frequency in Hz.
    unit : str
        Physical dimension, e.g. ``"uV"`` or ``"%"``.
    data : np.ndarray
        float64 (n_samples,), physical values in ``unit``.
    """

    name: str
    type: str
    sf: float
    unit: str
    data: npt.NDArray[np.float64]


def record_duration_s(sfs: Iterable[float]) -> float:
    """Return the data-record duration for signals sampled at ``sfs``.

    1 s when every rate is a whole number of Hz; otherwise the shortest duration in which
    every signal has a whole number of samples (the least common multiple of the
    rates' denominators, in whole seconds).

    Raises
    ------
    ValueError
        When no duration up to a minute makes every sample count integral.
    """
    rates = [Fraction(sf).limit_denominator(1_000_000) for sf in sfs]
    if all(r.denominator == 1 for r in rates):
        return 1.0
    # p/q * d is integral for a whole d exactly when q divides d.
    duration = math.lcm(*(r.denominator for r in rates))
    if duration > _MAX_RECORD_S:
        raise ValueError(f"no data-record duration up to {_MAX_RECORD_S:g} s fits rates {sfs}")
    return float(duration)


def physical_range(data: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Return ``(min, max)`` of ``data`` with 1 % headroom; a constant signal is widened."""
    lo, hi = float(np.min(data)), float(np.max(data))
    span = hi - lo
    if span == 0:
        pad = max(abs(lo) * _HEADROOM, 1.0)
    else:
        pad = span * _HEADROOM
    return lo - pad, hi + pad


def _edf_annotations(
    ann: Iterable[Annotation], error: type[SleepLMError], path: Path, *, channels: bool = True
) -> list[edfio.EdfAnnotation]:
    out = []
    for a in ann:
        try:  # extras (and, without channels, the channel) go to the sidecar: edf_extras
            text = encode_text(a.label, a.channel if channels else None, ())
        except ValueError as exc:
            raise error(path, f"cannot store annotation {a.label!r} in EDF+: {exc}") from None
        out.append(edfio.EdfAnnotation(a.onset_s, a.duration_s or None, text))
    return out


def _recording(start: datetime) -> edfio.Recording:
    return edfio.Recording(startdate=start.date())


def write_edf(
    path: str | PathLike[str],
    signals: Sequence[SignalSpec],
    annotations: Iterable[Annotation],
    *,
    start: datetime,
) -> None:
    """Write an EDF+C file with ``signals`` and ``annotations``, atomically.

    Parameters
    ----------
    path : str or PathLike
        Target file.
    signals : sequence of SignalSpec
        Channels, all covering the same duration (a whole number of data records).
    annotations : iterable of Annotation
        Written as TALs with plain labels (``label`` or MNE's ``label@@channel``); extras
        go to the ``<path>.extras.json`` sidecar (see ``annotation_formats.edf_extras``).
    start : datetime
        Recording start; microseconds are kept in the first TAL.

    Raises
    ------
    ValueError
        When the signals are empty, non-finite or of unequal duration.
    RecordingError
        When the file cannot be written or an annotation text cannot be stored.
    """
    target = Path(path)
    annotations = list(annotations)
    if not signals:
        raise ValueError("write_edf needs at least one signal (see write_edf_annotations)")
    record_s = record_duration_s(s.sf for s in signals)
    durations = {round(len(s.data) / s.sf, 9) for s in signals}
    if len(durations) != 1:
        raise ValueError(f"signals cover different durations: {sorted(durations)} s")
    duration = durations.pop()
    n_records = duration / record_s
    if not math.isclose(n_records, round(n_records), abs_tol=1e-9) or round(n_records) < 1:
        raise ValueError(f"{duration:g} s is not a whole number of {record_s:g}-s data records")
    edf_signals = []
    for s in signals:
        data = np.asarray(s.data, dtype=np.float64)
        if not np.all(np.isfinite(data)):
            raise ValueError(f"signal {s.name!r} has non-finite samples")
        edf_signals.append(
            edfio.EdfSignal(
                data,
                s.sf,
                label=s.name,
                physical_dimension=s.unit,
                physical_range=physical_range(data),
                digital_range=DIGITAL_RANGE,
            )
        )
    edf = edfio.Edf(
        edf_signals,
        recording=_recording(start),
        starttime=start.time(),
        data_record_duration=record_s,
        annotations=_edf_annotations(annotations, RecordingError, target),
    )
    with atomic_open(target, "wb", error=RecordingError) as f:
        edf.write(f)
    write_extras(target, annotations, RecordingError)


def write_edf_annotations(
    ann: Iterable[Annotation], path: str | PathLike[str], *, start: datetime
) -> None:
    """Write an annotation-only EDF+ file (like Sleep-EDF's ``*Hypnogram.edf``), atomically.

    The file has one data record of duration 0 holding every TAL; the first TAL keeps the
    sub-second part of ``start``. An empty collection gives a valid file with no annotation.
    TAL texts are plain labels; channels and extras go to the ``<path>.extras.json`` sidecar.

    Written by hand rather than with edfio: edfio adds the sub-second start to each onset in
    floating point, which changes the last digit of some onsets; decimal TAL text here
    keeps every onset exact (tests/core/test_annotations.py round-trips random floats).

    Raises
    ------
    AnnotationError
        When the file cannot be written or an annotation text cannot be stored.
    """
    target = Path(path)
    ann = list(ann)
    # Onsets are written as exact decimal sums so the reader's decimal subtraction of the
    # sub-second start gives back exactly the float that was written.
    with localcontext(prec=_DECIMAL_DIGITS):
        subsecond = Decimal(start.microsecond) / 1_000_000
        tals = [_tal(subsecond, None, "")]
        for a in _edf_annotations(ann, AnnotationError, target, channels=False):
            tals.append(_tal(Decimal(repr(a.onset)) + subsecond, a.duration, a.text))
    record = b"".join(tals)
    n_samples = max((len(record) + 1) // 2, 1)
    record = record.ljust(2 * n_samples, b"\x00")
    atomic_write_bytes(
        target, _annotation_header(start, n_samples, target) + record, error=AnnotationError
    )
    write_extras(target, ann, AnnotationError, channels=True)


def _positional(x: float) -> str:
    return str(np.format_float_positional(x, unique=True, trim="-"))


def _tal(onset: Decimal, duration: float | None, text: str) -> bytes:
    timing = f"{onset.normalize():+f}"
    if duration is not None:
        timing += "\x15" + _positional(duration)
    return f"{timing}\x14{text}\x14\x00".encode()


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _annotation_header(start: datetime, n_samples: int, path: Path) -> bytes:
    """The 512-byte header of a one-record, one-signal annotation-only EDF+C file."""
    if not 1985 <= start.year <= 2084:
        raise AnnotationError(path, f"EDF cannot store the start year {start.year}")

    def f(text: str, width: int) -> bytes:
        return text.ljust(width)[:width].encode("ascii")

    startdate = f"{start.day:02d}-{_MONTHS[start.month - 1]}-{start.year}"
    fixed = (
        f("0", 8)
        + f("X X X X", 80)
        + f(f"Startdate {startdate} X X X", 80)
        + f(start.strftime("%d.%m.%y"), 8)
        + f(start.strftime("%H.%M.%S"), 8)
        + f("512", 8)
        + f("EDF+C", 44)
        + f("1", 8)
        + f("0", 8)
        + f("1", 4)
    )
    signal = (
        f("EDF Annotations", 16)
        + f("", 80)
        + f("", 8)
        + f("-32768", 8)
        + f("32767", 8)
        + f("-32768", 8)
        + f("32767", 8)
        + f("", 80)
        + f(str(n_samples), 8)
        + f("", 32)
    )
    return fixed + signal
