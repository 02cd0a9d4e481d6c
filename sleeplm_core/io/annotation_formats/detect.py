"""Recognize an annotation file's format by its content and read it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sleeplm_core.errors import AnnotationError
from sleeplm_core.io.annotation_model import Annotations

__all__ = ["detect_and_read", "detect_format"]

_EDF_MAGIC = (b"0       ", b"\xffBIOSEMI")


def _text(path: Path, data: bytes) -> str:
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AnnotationError(path, "is not a text file")  # pragma: no cover - latin-1 decodes all


def detect_format(data: bytes) -> str:
    """Return ``"edf"``, ``"xml"``, ``"dreams"``, ``"csv"`` or ``"unknown"`` for file bytes."""
    if data[:8] in _EDF_MAGIC:
        return "edf"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "xml"
    if b"\x00" in head:
        return "unknown"
    if head.startswith(b"["):
        return "dreams"
    from sleeplm_core.io.annotation_formats.csv_format import looks_like_csv

    return "csv" if looks_like_csv(head.decode("latin-1")) else "unknown"


def detect_and_read(path: Path, *, start: datetime | None = None) -> Annotations:
    """Read ``path`` as EDF+, NSRR XML, DREAMS text or CSV, whichever its content is.

    Raises
    ------
    AnnotationError
        When the file is missing, of no known format, or malformed.
    """
    if path.is_dir():
        raise AnnotationError(path, "is a directory, not an annotation file")
    if path.exists() and not path.is_file():  # a named pipe would block the read forever
        raise AnnotationError(path, "is not a regular file (a pipe, device or socket?)")
    try:
        with path.open("rb") as fh:
            data = fh.read(8)
            if data not in _EDF_MAGIC:  # an EDF's signals (gigabytes) are not read here
                data += fh.read()
    except FileNotFoundError:
        raise AnnotationError(path, "no such file") from None
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read: {exc.strerror or exc}") from None
    kind = detect_format(data)
    if kind == "edf":
        from sleeplm_core.io.annotation_formats.edf_format import read_edf_annotations

        return read_edf_annotations(path, start=start)
    if kind == "xml":
        from sleeplm_core.io.annotation_formats.nsrr_xml import read_nsrr_xml

        return read_nsrr_xml(path, data)
    if kind == "dreams":
        from sleeplm_core.io.annotation_formats.dreams_txt import read_dreams_txt

        return read_dreams_txt(path, _text(path, data))
    if kind == "csv":
        from sleeplm_core.io.annotation_formats.csv_format import read_csv

        return read_csv(path, _text(path, data), start=start)
    if not data.strip():
        raise AnnotationError(path, "is empty")
    raise AnnotationError(
        path, "is not an annotation file this program knows (EDF+, NSRR XML, CSV, DREAMS text)"
    )
