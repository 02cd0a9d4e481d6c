"""EDF+ Time-stamped Annotation Lists (TALs): a robust parser and the text encoding.

A TAL is ``+onset[<0x15>duration]<0x14>text<0x14>[text<0x14>...]<0x00>``. Malformed or empty
TALs are skipped, never guessed at. This module knows no annotation model, so the
recording reader can use it for record onsets (EDF+D) and the sub-second start.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sleeplm_core.errors import AnnotationError

__all__ = [
    "EdfHeader",
    "Tal",
    "decode_text",
    "encode_text",
    "parse_tals",
    "read_all_tals",
    "read_edf_header",
    "read_tal_records",
]

_NUMBER_B = rb"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# A whole TAL between zero bytes (or the ends): timing, 0x14, then texts each closed by 0x14.
_TAL = re.compile(
    rb"(?:(?<=\x00)|^)([+-]?" + _NUMBER_B + rb")(?:\x15(" + _NUMBER_B + rb")?)?"
    rb"\x14((?:[^\x00\x14]*\x14)+)(?=\x00|\Z)"
)
_CHUNK = re.compile(rb"[^\x00]+")  # the bytes between zero bytes
_CHANNEL_SEP = "@@"  # MNE's convention for "label@@channel"
_EXTRAS_SEP = "##"
_FORBIDDEN = ("\x00", "\x14", "\x15")
_MAX_TAL_S = 1e9  # ~31 years: larger onsets or durations are corrupt, not recordings


@dataclass(frozen=True, slots=True)
class Tal:
    """One Time-stamped Annotation List.

    Parameters
    ----------
    onset_s : float
        Onset in seconds from the header's start time (not corrected for a sub-second start).
    duration_s : float or None
        Duration in seconds, ``None`` when the TAL has none.
    texts : tuple of str
        The annotation texts; a record's time-keeping TAL starts with an empty one.
    onset_text : str
        The onset as written (decimal text), for exact arithmetic; not compared.
    """

    onset_s: float
    duration_s: float | None
    texts: tuple[str, ...]
    onset_text: str = field(default="", compare=False, repr=False)

    @property
    def is_timekeeping(self) -> bool:
        """Whether this is a record's time-keeping TAL (its first text is empty).

        EDF+ lets further annotations follow the empty text in the same TAL.
        """
        return not self.texts or self.texts[0] == ""


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _bounded(seconds: float) -> bool:
    return math.isfinite(seconds) and abs(seconds) <= _MAX_TAL_S


def parse_tals(raw: bytes) -> list[Tal]:
    """Parse the TALs in ``raw`` (one or more ``EDF Annotations`` data records).

    Parameters
    ----------
    raw : bytes
        Annotation-signal bytes, zero-padded as in an EDF+ data record.

    Returns
    -------
    list of Tal
        The well-formed TALs in order. A TAL without the closing ``0x14`` byte, with an
        unparseable, infinite or absurd (beyond 1e9 s) onset or duration, or with nothing in
        it is skipped.
    """
    return _parse(raw, bare=True)


def _parse(raw: bytes, *, bare: bool) -> list[Tal]:
    """:func:`parse_tals`; with ``bare`` False, TALs with one empty text are left out.

    One regular expression finds every well-formed TAL in C; Python only converts them.
    The zero padding is squeezed out first (a TAL may start at any byte of it).
    """
    out: list[Tal] = []
    for onset, duration, blob in _TAL.findall(b"\x00".join(_CHUNK.findall(raw))):
        if not bare and blob == b"\x14":
            continue
        texts = tuple(_decode(p) for p in blob[:-1].split(b"\x14"))
        onset_s = float(onset)
        duration_s = float(duration) if duration else None
        if not _bounded(onset_s) or (duration_s is not None and not _bounded(duration_s)):
            continue  # +1e999 (inf) or an onset beyond any night: not a time
        out.append(Tal(onset_s, duration_s, texts, onset_text=onset.decode("ascii")))
    return out


def encode_text(label: str, channel: str | None, extras: tuple[tuple[str, str], ...]) -> str:
    """Encode label, channel and extras in one TAL text, losslessly.

    Plain labels stay plain. A channel is appended as ``@@channel`` (MNE's convention) and
    extras as ``##`` plus a JSON list of pairs, so that :func:`decode_text` inverts it.

    Raises
    ------
    ValueError
        When a text contains a byte TALs reserve, or the channel contains ``@@``.
    """
    for text in (label, channel or "", *(x for kv in extras for x in kv)):
        if any(c in text for c in _FORBIDDEN):
            raise ValueError(f"text {text!r} contains a byte reserved by EDF+ TALs")
    if channel and _CHANNEL_SEP in channel:
        raise ValueError(f"channel name {channel!r} contains {_CHANNEL_SEP!r}")
    out = label
    if channel or _CHANNEL_SEP in label:
        out += _CHANNEL_SEP + (channel or "")
    if extras or _EXTRAS_SEP + "[" in out:
        out += _EXTRAS_SEP + json.dumps([list(kv) for kv in extras], ensure_ascii=False)
    return out


def _parse_extras(text: str) -> tuple[tuple[str, str], ...] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    pairs = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2):
            return None
        if not all(isinstance(x, str) for x in item):
            return None
        pairs.append((item[0], item[1]))
    return tuple(pairs)


def decode_text(text: str) -> tuple[str, str | None, tuple[tuple[str, str], ...]]:
    """Invert :func:`encode_text`: return ``(label, channel, extras)``."""
    extras: tuple[tuple[str, str], ...] = ()
    start = 0
    while (i := text.find(_EXTRAS_SEP + "[", start)) >= 0:
        parsed = _parse_extras(text[i + len(_EXTRAS_SEP) :])
        if parsed is not None:
            extras, text = parsed, text[:i]
            break
        start = i + 1
    channel: str | None = None
    j = text.rfind(_CHANNEL_SEP)
    if j >= 0:
        channel, text = text[j + len(_CHANNEL_SEP) :] or None, text[:j]
    return text, channel, extras


@dataclass(frozen=True, slots=True)
class EdfHeader:
    """The parts of an EDF(+) header needed to find the annotation signals.

    Parameters
    ----------
    version : str
        ``"0"`` for EDF, ``"<0xff>BIOSEMI"`` for BDF.
    start_date, start_time : str
        Header fields ``dd.mm.yy`` and ``hh.mm.ss``.
    reserved : str
        ``"EDF+C"``, ``"EDF+D"`` or ``""`` for plain EDF.
    n_records : int
        Number of data records (``-1`` when unknown).
    record_duration_s : float
        Duration of one data record in seconds (0 for annotation-only files).
    labels : tuple of str
        Signal labels.
    samples_per_record : tuple of int
        Samples per data record for each signal.
    header_bytes : int
        Size of the header.
    bytes_per_sample : int
        2 for EDF, 3 for BDF.
    """

    version: str
    start_date: str
    start_time: str
    reserved: str
    n_records: int
    record_duration_s: float
    labels: tuple[str, ...]
    samples_per_record: tuple[int, ...]
    header_bytes: int
    bytes_per_sample: int

    @property
    def annotation_signals(self) -> tuple[int, ...]:
        """Indices of the ``EDF Annotations`` / ``BDF Annotations`` signals."""
        return tuple(
            i for i, lab in enumerate(self.labels) if lab in ("EDF Annotations", "BDF Annotations")
        )

    @property
    def record_bytes(self) -> int:
        """Bytes in one data record."""
        return sum(self.samples_per_record) * self.bytes_per_sample


def _field(raw: bytes, start: int, length: int) -> str:
    return raw[start : start + length].decode("latin-1").strip()


def read_edf_header(path: Path) -> EdfHeader:
    """Read the fixed and per-signal EDF(+)/BDF header fields.

    Raises
    ------
    AnnotationError
        When the file is missing or its header is not an EDF header.
    """
    try:
        with path.open("rb") as f:
            fixed = f.read(256)
            if len(fixed) < 256:
                raise AnnotationError(path, "too short to be an EDF file")
            try:
                ns = int(_field(fixed, 252, 4))
                n_records = int(_field(fixed, 236, 8))
                record_duration = float(_field(fixed, 244, 8))
                header_bytes = int(_field(fixed, 184, 8))
            except ValueError:
                raise AnnotationError(path, "the EDF header is malformed") from None
            if ns < 0 or ns > 4096:
                raise AnnotationError(path, f"the EDF header names {ns} signals")
            sig = f.read(256 * ns)
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read: {exc.strerror or exc}") from None
    if len(sig) < 256 * ns:
        raise AnnotationError(path, "the EDF signal headers are truncated")
    labels = tuple(_field(sig, 16 * i, 16) for i in range(ns))
    offset = ns * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
    try:
        samples = tuple(int(_field(sig, offset + 8 * i, 8)) for i in range(ns))
    except ValueError:
        raise AnnotationError(path, "the EDF samples-per-record fields are malformed") from None
    version = fixed[:8].decode("latin-1").strip()
    return EdfHeader(
        version=version,
        start_date=_field(fixed, 168, 8),
        start_time=_field(fixed, 176, 8),
        reserved=_field(fixed, 192, 44),
        n_records=n_records,
        record_duration_s=record_duration,
        labels=labels,
        samples_per_record=samples,
        header_bytes=header_bytes,
        bytes_per_sample=3 if version.endswith("BIOSEMI") else 2,
    )


def _annotation_bytes(path: Path, h: EdfHeader) -> list[npt.NDArray[np.uint8]]:
    """Return, per annotation signal, its bytes of every complete record: (n_records, width)."""
    starts = [sum(h.samples_per_record[:i]) * h.bytes_per_sample for i in range(len(h.labels))]
    spans = [
        (starts[i], starts[i] + h.samples_per_record[i] * h.bytes_per_sample)
        for i in h.annotation_signals
    ]
    if not spans or h.record_bytes <= 0:
        return []
    try:
        size = path.stat().st_size
        n = max((size - h.header_bytes) // h.record_bytes, 0)
        if h.n_records >= 0:
            n = min(n, h.n_records)
        if n == 0:
            return []
        # A memory map touches only the pages holding annotation bytes, not the signals.
        mm = np.memmap(
            path, dtype=np.uint8, mode="r", offset=h.header_bytes, shape=(n, h.record_bytes)
        )
        try:
            return [np.ascontiguousarray(mm[:, a:b]) for a, b in spans]
        finally:
            del mm
    except (OSError, ValueError) as exc:
        problem = getattr(exc, "strerror", None) or exc
        raise AnnotationError(path, f"cannot be read: {problem}") from None


def read_tal_records(path: Path, header: EdfHeader | None = None) -> list[list[Tal]]:
    """Read the TALs of every data record (all annotation signals of a record together).

    Parameters
    ----------
    path : Path
        An EDF+ or BDF+ file.
    header : EdfHeader or None
        The header if already read.

    Returns
    -------
    list of list of Tal
        One list per complete data record; the first TAL of each is normally the record's
        time-keeping TAL. A truncated last record is ignored.

    Raises
    ------
    AnnotationError
        When the file cannot be read.
    """
    chunks = _annotation_bytes(path, header or read_edf_header(path))
    n = chunks[0].shape[0] if chunks else 0
    return [[t for c in chunks for t in parse_tals(c[r].tobytes())] for r in range(n)]


_TIMEKEEPING_MAX = 32
"""Bytes that hold any time-keeping TAL ``+<onset>\\x14\\x14`` of a real recording."""


def _bare_timekeeping(block: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    r"""Rows (records) holding nothing but a time-keeping TAL ``<onset>\x14\x14``.

    Found with whole-array operations, so a 24-h file's 86 400 records cost milliseconds:
    such a row has exactly two ``0x14`` bytes, right before its first ``0x00``, and only
    zeros after it. Everything else (annotation texts, odd layouts) is left to the parser.
    """
    n, width = block.shape
    head_width = min(width, _TIMEKEEPING_MAX)
    head = block[:, :head_width]  # a longer time-keeping TAL is left to the parser
    zero = head == 0
    first0 = np.where(zero.any(axis=1), zero.argmax(axis=1), head_width)
    rows = np.arange(n)
    last = np.maximum(first0 - 1, 0)
    before = np.maximum(first0 - 2, 0)
    result: npt.NDArray[np.bool_] = (
        (first0 >= 3)
        & (first0 < head_width)
        & ((~zero).sum(axis=1) == first0)
        & ((head == 0x14).sum(axis=1) == 2)
        & (head[rows, last] == 0x14)
        & (head[rows, before] == 0x14)
    )
    if width > head_width:
        result &= ~block[:, head_width:].any(axis=1)
    return result


def read_all_tals(
    path: Path, header: EdfHeader | None = None, *, timekeeping: bool = True
) -> list[Tal]:
    """Read every TAL of the file in one pass (faster than :func:`read_tal_records`).

    The TALs of the first annotation signal come first, record by record, so the first
    TAL is the first record's time-keeping TAL in a well-formed file.

    Parameters
    ----------
    path : Path
        An EDF+ or BDF+ file.
    header : EdfHeader or None
        The header if already read.
    timekeeping : bool
        With False, the records that hold only their time-keeping TAL (most records of a
        night) are skipped without parsing, and time-keeping TALs without text are left
        out, except the very first record's first TAL: it carries the sub-second start.
        Every TAL with a text is still returned, in the same order.

    Raises
    ------
    AnnotationError
        When the file cannot be read.
    """
    chunks = _annotation_bytes(path, header or read_edf_header(path))
    if timekeeping:
        return [t for c in chunks for t in parse_tals(c.tobytes())]
    out: list[Tal] = []
    for k, c in enumerate(chunks):
        keep = ~_bare_timekeeping(c)
        if k == 0 and len(keep):
            out.extend(parse_tals(c[0].tobytes()))  # its time-keeping TAL: the sub-second start
            keep[0] = False
        # One zero byte between rows keeps a TAL from running into the next record's; the
        # padding after each row's last TAL is dropped here, with whole-array operations.
        rows = np.zeros((int(keep.sum()), c.shape[1] + 1), np.uint8)
        rows[:, :-1] = c[keep]
        filled = rows != 0
        length = np.where(filled.any(axis=1), rows.shape[1] - filled[:, ::-1].argmax(axis=1), 0)
        out.extend(_parse(rows[np.arange(rows.shape[1]) <= length[:, None]].tobytes(), bare=False))
    return out
