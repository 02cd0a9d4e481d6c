"""EDF+/BDF+ annotations (including Sleep-EDF ``*Hypnogram.edf``) read into the model."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path

from sleeplm_core.errors import AnnotationError
from sleeplm_core.io.annotation_formats.edf_extras import attach_extras
from sleeplm_core.io.annotation_formats.edf_tal import (
    EdfHeader,
    decode_text,
    read_all_tals,
    read_edf_header,
)
from sleeplm_core.io.annotation_model import Annotation, Annotations

__all__ = ["header_start", "read_edf_annotations"]

# A header start further than this from the recording's is an anonymized date, not a shift.
_MAX_SHIFT = timedelta(days=1)


def header_start(header: EdfHeader) -> datetime | None:
    """Return the header's start date and time (whole seconds), or ``None`` if unreadable."""
    try:
        day, month, year = (int(x) for x in header.start_date.split("."))
        hour, minute, second = (int(x) for x in header.start_time.split("."))
        year += 1900 if year >= 85 else 2000
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def read_edf_annotations(path: Path, *, start: datetime | None = None) -> Annotations:
    """Read the TAL annotations of an EDF+/BDF+ file.

    Onsets are made relative to the first sample: the first data record's time-keeping
    onset (the sub-second start) is subtracted. When ``start`` (the recording's start) is
    given and the file's own start differs by less than a day, onsets are shifted onto the
    recording's time axis, so a separate annotation EDF+ lines up with its recording.

    Raises
    ------
    AnnotationError
        When the file is not EDF+ (no annotation signal) or cannot be read.
    """
    header = read_edf_header(path)
    if not header.annotation_signals:
        raise AnnotationError(path, "is an EDF file without EDF+ annotations")
    tals = read_all_tals(path, header, timekeeping=False)
    first = tals[0] if tals else None
    # Decimal arithmetic: TAL onsets are decimal text, so x + 0.25 - 0.25 gives x back.
    offset = Decimal(0)
    if first is not None and first.is_timekeeping:
        offset = Decimal(first.onset_text or repr(first.onset_s))
    own_offset = offset
    own = header_start(header)
    if start is not None and own is not None:
        shift = own - start.replace(tzinfo=None)
        if abs(shift) < _MAX_SHIFT:
            offset = -(
                Decimal(shift.days * 86400 + shift.seconds) + Decimal(shift.microseconds) / 10**6
            )
    items = []
    own_onsets = []
    with localcontext(prec=1100):  # exact for any pair of doubles
        for tal in tals:
            written: Decimal | None = None
            onset = own_onset = 0.0
            for text in tal.texts:
                if not text.strip():
                    continue
                label, channel, extras = decode_text(text)
                if not label.strip():
                    continue
                if written is None:  # once per TAL
                    written = Decimal(tal.onset_text or repr(tal.onset_s))
                    onset = float(written - offset)
                    own_onset = float(written - own_offset)
                own_onsets.append(own_onset)
                items.append(Annotation(onset, tal.duration_s or 0.0, label, channel, extras))
    return Annotations(attach_extras(path, items, own_onsets))
