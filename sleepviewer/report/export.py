"""Write reports and annotation files, atomically, with one-line errors.

Every file is written to a temporary file in the target's directory and renamed over the
target only when complete (:mod:`sleeplm_core.io.atomic`), so an interrupted export leaves
neither a partial file nor a damaged older one.

Main functions
--------------
======================  ====================================================================
``export_report``       ``.pdf`` or ``.html`` from a :class:`~sleepviewer.report.model.ReportData`
``export_annotations``  ``.csv``, ``.edf`` (EDF+ annotations only) or ``.xml`` (NSRR)
======================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from sleeplm_core.errors import AnnotationError, SleepLMError
from sleeplm_core.io.annotations import (
    Annotation,
    write_csv,
    write_edf_annotations,
    write_nsrr_xml,
)
from sleeplm_core.io.atomic import atomic_open

if TYPE_CHECKING:  # annotation export must not load the report machinery (Qt, MNE)
    from sleepviewer.report.model import ReportData

__all__ = [
    "ANNOTATION_SUFFIXES",
    "REPORT_SUFFIXES",
    "ReportError",
    "export_annotations",
    "export_report",
]

REPORT_SUFFIXES: Final[tuple[str, ...]] = (".pdf", ".html")
ANNOTATION_SUFFIXES: Final[tuple[str, ...]] = (".csv", ".edf", ".xml")
_CHUNK: Final[int] = 1 << 16


class ReportError(SleepLMError):
    """A report cannot be written (unknown format, directory missing or not writable)."""


def _write_all(f: IO[bytes], data: bytes) -> None:
    """Write ``data`` in chunks (a disk that fills up fails part-way, as in real life)."""
    for i in range(0, len(data), _CHUNK):
        f.write(data[i : i + _CHUNK])


def export_report(path: str | PathLike[str], data: ReportData) -> Path:
    """Write the report as PDF or HTML, chosen by the suffix of ``path``.

    Parameters
    ----------
    path : str or PathLike
        ``*.pdf`` (A4, Qt's PDF writer) or ``*.html`` (self-contained).
    data : ReportData
        The report (:func:`~sleepviewer.report.model.build_report_data`).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ReportError
        For another suffix, or when the file cannot be written (one line naming the path).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ReportError(target, f"unknown report format {target.suffix or '(none)'!r}; "
                                  "use .pdf or .html")
    _check_dir(target, ReportError)
    # Render first (no file is touched if drawing fails), then write in one atomic step.
    if suffix == ".pdf":
        from sleepviewer.report.pdf import pdf_bytes

        payload = pdf_bytes(data)
    else:
        from sleepviewer.report.html import html_text

        payload = html_text(data).encode("utf-8")
    with atomic_open(target, "wb", error=ReportError) as f:
        _write_all(f, payload)
    return target


def export_annotations(
    path: str | PathLike[str], annotations: Iterable[Annotation], recording_start: datetime
) -> Path:
    """Write annotations as CSV, EDF+ or NSRR XML, chosen by the suffix of ``path``.

    Parameters
    ----------
    path : str or PathLike
        ``*.csv`` (onset as ISO clock time, duration, description, channel, extras, exact
        onset_s: read by ``mne.read_annotations`` too), ``*.edf`` (annotation-only
        EDF+ starting at ``recording_start``) or ``*.xml`` (NSRR ``PSGAnnotation``).
    annotations : iterable of Annotation
        Stages and events, onsets in seconds from the recording start.
    recording_start : datetime
        The recording's start (microseconds kept), written into the EDF+ header.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    AnnotationError
        For another suffix, or when the file cannot be written (one line naming the path).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in ANNOTATION_SUFFIXES:
        raise AnnotationError(target, f"unknown annotation format {target.suffix or '(none)'!r}; "
                                      "use .csv, .edf or .xml")
    _check_dir(target, AnnotationError)
    items = list(annotations)
    if suffix == ".csv":
        write_csv(items, target, start=recording_start)
    elif suffix == ".edf":
        write_edf_annotations(items, target, start=recording_start)
    else:
        write_nsrr_xml(items, target)
    return target


def _check_dir(target: Path, error: type[SleepLMError]) -> None:
    """Refuse early, in one line, a target whose directory is missing or is a directory."""
    parent = target.parent
    if target.is_dir():
        raise error(target, "is a directory")
    if not parent.is_dir():
        raise error(target, f"cannot write here: {str(parent)!r} is not an existing folder")
