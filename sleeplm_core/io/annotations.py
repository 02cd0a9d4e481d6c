"""The annotation model every reader fills and every writer empties.

An :class:`Annotation` is one scored event or stage (onset and duration in seconds from the
recording start, an AASM label, an optional channel and free-form string extras); an
:class:`Annotations` collection keeps them ordered by onset, then label.

Main functions
--------------
=========================  ==================================================================
``read_annotations``       read EDF+/BDF+ (incl. Sleep-EDF ``*Hypnogram.edf``), NSRR XML,
                           Profusion XML, CSV (EDFbrowser, YASA, MNE), MNE ``.txt``,
                           DREAMS text
``write_csv``              MNE-readable CSV (ISO ``onset``, ..., exact ``onset_s``)
``write_nsrr_xml``         NSRR ``<PSGAnnotation>`` XML
``write_edf_annotations``  annotation-only EDF+ file
``parse_tals``             EDF+ Time-stamped Annotation Lists from raw bytes
=========================  ==================================================================

All writers are atomic; all failures reach the user as one-line
:class:`~sleeplm_core.errors.AnnotationError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from os import PathLike
from pathlib import Path

from sleeplm_core.errors import AnnotationError
from sleeplm_core.io.annotation_formats.edf_tal import Tal, parse_tals
from sleeplm_core.io.annotation_model import Annotation, Annotations
from sleeplm_core.stages import EPOCH_S

__all__ = [
    "Annotation",
    "Annotations",
    "Tal",
    "check_fits",
    "parse_tals",
    "read_annotations",
    "write_csv",
    "write_edf_annotations",
    "write_nsrr_xml",
]


def read_annotations(
    path: str | PathLike[str],
    *,
    duration_s: float | None = None,
    start: datetime | None = None,
) -> Annotations:
    """Read an annotation file, recognizing its format by content.

    Parameters
    ----------
    path : str or PathLike
        EDF+/BDF+ (or Sleep-EDF ``*Hypnogram.edf``), NSRR or Profusion XML, CSV
        (EDFbrowser, YASA, MNE), MNE ``.txt`` or DREAMS text; recognized by content.
    duration_s : float or None
        Duration of the recording the annotations belong to. When given, an event beginning
        before 0 s or more than one epoch after the end is refused: the file was most likely
        made for another recording.
    start : datetime or None
        The recording start (with microseconds). Needed for CSV files whose onsets are
        clock times; also used to place a separate EDF+ or MNE ``.txt`` file whose own
        start differs from the recording's (by less than a day).

    Returns
    -------
    Annotations
        The annotations, labels normalized.

    Raises
    ------
    AnnotationError
        When the file is missing, malformed, or does not fit the recording.
    """
    from sleeplm_core.io.annotation_formats.detect import detect_and_read

    p = Path(path)
    ann = detect_and_read(p, start=start)
    if duration_s is not None:
        check_fits(ann, p, duration_s)
    return ann


def check_fits(ann: Annotations, path: str | PathLike[str], duration_s: float) -> None:
    """Refuse annotations that cannot belong to a recording of ``duration_s`` seconds.

    Raises
    ------
    AnnotationError
        When an event begins before 0 s or more than one epoch after the end.
    """
    for a in ann:
        if a.onset_s < 0:
            raise AnnotationError(
                path,
                f"event at {a.onset_s:.1f} s lies before the recording's start: "
                "annotations made for another recording? They do not fit this recording.",
            )
        if a.onset_s > duration_s + EPOCH_S:
            raise AnnotationError(
                path,
                f"event at {a.onset_s:.1f} s lies beyond the recording's {duration_s:.1f} s: "
                "annotations made for another recording? They do not fit this recording.",
            )


def write_csv(
    ann: Iterable[Annotation], path: str | PathLike[str], *, start: datetime | None = None
) -> None:
    """Write ``onset,duration,description,channel,extras,onset_s`` CSV (atomically).

    ``onset`` holds ISO clock times from ``start`` (or from 1970-01-01, MNE's origin, without
    one), which ``mne.read_annotations`` reads; ``onset_s`` the exact seconds, which
    :func:`read_annotations` prefers (lossless).

    Raises
    ------
    AnnotationError
        When the file cannot be written.
    """
    from sleeplm_core.io.annotation_formats.csv_format import write_csv as _write

    _write(ann, Path(path), start=start)


def write_nsrr_xml(
    ann: Iterable[Annotation], path: str | PathLike[str], *, epoch_s: float = EPOCH_S
) -> None:
    """Write NSRR ``<PSGAnnotation>`` XML (atomically).

    Raises
    ------
    AnnotationError
        When the file cannot be written or a text cannot be stored in XML.
    """
    from sleeplm_core.io.annotation_formats.nsrr_xml import write_nsrr_xml as _write

    _write(ann, Path(path), epoch_s=epoch_s)


def write_edf_annotations(
    ann: Iterable[Annotation], path: str | PathLike[str], *, start: datetime
) -> None:
    """Write an annotation-only EDF+ file (atomically); sub-second ``start`` is kept.

    Raises
    ------
    AnnotationError
        When the file cannot be written or a text cannot be stored in a TAL.
    """
    from sleeplm_core.io.edf_writer import write_edf_annotations as _write

    _write(ann, Path(path), start=start)
