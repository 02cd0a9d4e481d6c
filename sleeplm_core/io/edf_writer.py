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
from sleeplm_core.io.atomic import atomic_open

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
_PLACEHOLDER = "sleeplm-empty"
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

    edfio writes it: one data record of duration 0 holding every TAL, the first TAL keeping
    the sub-second part of ``start``. An empty collection gives a valid file with no
    annotation. TAL texts are plain labels; channels and extras go to the
    ``<path>.extras.json`` sidecar.

    edfio adds the sub-second start to each onset in floating point, so an onset read back
    can differ from the one written in its last binary digit (under 1e-9 s for any onset
    within a day; the round-trip property test allows exactly that).

    Raises
    ------
    AnnotationError
        When the file cannot be written, the start year is outside EDF's 1985-2084, or an
        annotation text cannot be stored.
    """
    target = Path(path)
    ann = list(ann)
    if not 1985 <= start.year <= 2084:
        raise AnnotationError(target, f"EDF cannot store the start year {start.year}")
    tals = _edf_annotations(ann, AnnotationError, target, channels=False)
    # edfio wants at least one annotation: an empty file is written from a placeholder
    # dropped again (the time-keeping TAL with the sub-second start stays).
    edf = edfio.Edf(
        [],
        recording=_recording(start),
        starttime=start.time(),
        annotations=tals or [edfio.EdfAnnotation(0.0, None, _PLACEHOLDER)],
    )
    if not tals:
        edf.drop_annotations(_PLACEHOLDER)
    with atomic_open(target, "wb", error=AnnotationError) as f:
        edf.write(f)
    write_extras(target, ann, AnnotationError, channels=True)
