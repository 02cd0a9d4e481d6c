"""Lazy access to a PSG recording (EDF, EDF+C, EDF+D, BDF): the one reader of the file.

Headers are validated and parsed by :mod:`sleeplm_core.io.edf_checks` (channel names made
unique as MNE makes them); MNE's own parse (``read_raw_edf``/``read_raw_bdf``,
``preload=False``) runs only when :attr:`Recording.raw` is first asked for. Samples are read on
demand, straight from the data records with numpy, so a night of any size costs a few kilobytes of
memory and a 30-s page costs well under a millisecond. Reading the records ourselves also
lets us keep what MNE smooths away: each channel's native rate, upper-case units (``"UV"``),
the sub-second start time and the gaps of EDF+D (MNE reads an EDF+D as if it were
continuous, closing the gaps; here records sit at their time-keeping onsets and the gaps
read as NaN).

Main methods
------------
=====================  ========================================================
``Recording.open``     validate, parse, type the channels, read annotations
``window``             float32 samples of some channels, common rate, physical units
``canonical``          the model's 12 slots at 64 Hz, with mask and sources
``montage``            the automatic AASM montage (derivations made on first use)
``add_derivation``     a bipolar/re-referenced channel computed on the fly
``load_scoring``       merge a scoring file (NSRR XML, Hypnogram EDF, CSV) into annotations
=====================  ========================================================

Examples
--------
>>> with Recording.open("night.edf") as rec:  # doctest: +SKIP
...     page = rec.window(0.0, 30.0, ["C3-M2", "E1-M2"])
...     x = rec.canonical(0.0, 30.0)
"""

from __future__ import annotations

import os
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sleeplm_core.errors import RecordingError
from sleeplm_core.io import annotations as _annotations
from sleeplm_core.io import hypnogram as _hypnogram
from sleeplm_core.io.annotations import Annotation, Annotations
from sleeplm_core.io.channels import (
    CANONICAL_SF,
    CANONICAL_SLOTS,
    MICROVOLT_TYPES,
    OTHER,
    ChannelType,
    classify,
    decode_label,
    pick_slots,
    spell_unit,
    to_uv,
)
from sleeplm_core.io.edf_checks import EdfHeader, read_header, read_records, time_axis
from sleeplm_core.io.hypnogram import Hypnogram
from sleeplm_core.io.montage import MontageTrace, build_montage
from sleeplm_core.io.position import mask_unknown
from sleeplm_core.io.resample import resample

_CHUNK_BYTES = 8_000_000  # raw bytes read at once by window()
_CANONICAL_CHUNK_S = 600.0  # canonical() resamples long spans in pieces of this length
_POSITION_SLOT = CANONICAL_SLOTS.index("POSITION")


@dataclass(frozen=True)
class ChannelInfo:
    """One channel as the viewer and the model see it.

    Parameters
    ----------
    name : str
        Unique channel name (MNE's, so duplicates get ``-0``, ``-1`` suffixes).
    type : str
        One of :data:`sleeplm_core.io.channels.CHANNEL_TYPES`.
    sf : float
        The channel's native sampling rate in Hz (from the header, not MNE's common rate).
    unit : str
        Unit of :meth:`Recording.window` data: ``"uV"`` for EEG, EOG and EMG.
    """

    name: str
    type: str
    sf: float
    unit: str


@dataclass(frozen=True)
class Window:
    """Samples of some channels over a time span.

    Parameters
    ----------
    data : numpy.ndarray
        float32 (n_channels, n_samples), physical units; NaN inside EDF+D gaps.
    sf : float
        Sampling rate of ``data`` in Hz: the highest native rate among the channels.
    ch_names : list of str
        Row names.
    units : list of str
        Row units.
    start_s : float
        Time of the first sample, seconds from the recording start.
    """

    data: np.ndarray
    sf: float
    ch_names: list[str]
    units: list[str]
    start_s: float


@dataclass(frozen=True)
class CanonicalWindow:
    """The model input for a time span.

    Parameters
    ----------
    data : numpy.ndarray
        float32 (12, n) at :data:`~sleeplm_core.io.channels.CANONICAL_SF` Hz, rows in
        :data:`~sleeplm_core.io.channels.CANONICAL_SLOTS` order, physical units; zeros where
        ``mask`` is False and inside EDF+D gaps.
    mask : numpy.ndarray
        bool (12,): which slots the file really has.
    sources : tuple of (str or None)
        The file channel used for each slot.
    """

    data: np.ndarray
    mask: np.ndarray
    sources: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class _Signal:
    """Where a file channel lives in a data record, and how to calibrate it."""

    column: int  # first sample of the channel within a record
    n_samples: int  # per record
    gain: float  # output units per digital step
    offset: float  # output units at digital 0


class Recording:
    """A PSG recording opened lazily; use :meth:`open`, then :meth:`close` (or ``with``).

    Parameters
    ----------
    header : EdfHeader
        The validated header.
    ch_names : sequence of str
        Unique names of the signal channels, in file order (from MNE).
    raw : mne.io.BaseRaw, optional
        MNE's lazy view of the file; when None, :attr:`raw` parses it on first use.

    Attributes
    ----------
    path : Path
        The file.
    start : datetime
        Start of the first data record, microseconds included (naive, clock time).
    duration_s : float
        Length in seconds, EDF+D gaps included.
    gaps : list of (float, float)
        ``(onset_s, duration_s)`` of the EDF+D gaps, in recording time.
    notes : list of str
        Oddities met while reading (bad TALs, unreadable date, ...); never fatal.
    """

    def __init__(self, header: EdfHeader, ch_names: Sequence[str], raw: Any = None) -> None:
        self.path: Path = header.path
        self._raw = raw
        self.notes: list[str] = list(header.notes)
        self._header = header
        axis = time_axis(header)
        self.start: datetime = axis.start
        self.duration_s: float = axis.duration_s
        self.gaps: list[tuple[float, float]] = list(axis.gaps)
        self.notes.extend(axis.notes)
        self._segments = axis.segments
        self._fd: int | None = os.open(header.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._release = weakref.finalize(self, os.close, self._fd)  # closes a forgotten file
        self._signals: dict[str, _Signal] = {}
        self._types: dict[str, ChannelType] = {}
        self._sf: dict[str, float] = {}
        self._units: dict[str, str] = {}
        self._derived: dict[str, tuple[str, str]] = {}
        self._sources: tuple[str | None, ...] | None = None
        self.scoring_source: Path | None = None
        self._annotations: Any = None
        self._sidecar: list[Any] = []
        self._build_channels(ch_names)
        files = list(self._signals)
        chans = [(n, self._types[n], self._sf[n], self._units[n]) for n in files]
        self._montage: list[MontageTrace] = build_montage(chans, self._derive_for_montage)

    # ------------------------------------------------------------------ construction
    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, annotations: str | os.PathLike[str] | None = None
    ) -> Recording:
        """Open an EDF, EDF+ (continuous or discontinuous) or BDF recording.

        Parameters
        ----------
        path : str or PathLike
            The recording.
        annotations : str or PathLike, optional
            A sidecar annotation file (NSRR XML, CSV, EDF+), read with
            :func:`sleeplm_core.io.annotations.read_annotations` and merged with the
            annotations inside the recording.

        Returns
        -------
        Recording
            Open; no samples are read yet.

        Raises
        ------
        RecordingError
            When the file is missing, unreadable, damaged or of an unknown format.
        AnnotationError
            When the sidecar cannot be read or belongs to another recording.
        """
        header = read_header(path)
        names = unique_names([header.signals[i].label for i in header.signal_index])
        rec = cls(header, names)
        if annotations is not None:
            try:
                rec.load_scoring(annotations)
            except BaseException:
                rec.close()
                raise
        return rec

    def _build_channels(self, ch_names: Sequence[str]) -> None:
        h = self._header
        columns = np.concatenate([[0], np.cumsum([s.n_samples for s in h.signals])])
        taken: set[str] = set()
        for mne_name, idx in zip(ch_names, h.signal_index, strict=True):
            sig = h.signals[idx]
            name = decode_label(mne_name)  # UTF-8 labels read as Latin-1 by the EDF readers
            if name in taken:
                name = mne_name
            taken.add(name)
            sf = sig.n_samples / h.record_s
            ctype = classify(
                decode_label(sig.label), sig.unit, sf=sf,
                physical_range=(sig.physical_min, sig.physical_max),
            )
            scale = to_uv(sig.unit) if ctype.type in MICROVOLT_TYPES else None
            unit = "uV" if scale is not None else spell_unit(sig.unit)
            scale = 1.0 if scale is None else scale
            self._signals[name] = _Signal(
                column=int(columns[idx]),
                n_samples=sig.n_samples,
                gain=sig.gain * scale,
                offset=(sig.physical_min - sig.digital_min * sig.gain) * scale,
            )
            self._types[name] = ctype
            self._sf[name] = sf
            self._units[name] = unit

    # ------------------------------------------------------------------ public state
    @property
    def raw(self) -> Any:
        """MNE's lazy view of the file (``mne.io.BaseRaw``), parsed on first access.

        Raises
        ------
        RecordingError
            When MNE cannot read the file or names its channels otherwise.
        """
        if self._raw is None:
            raw = _mne_open(self._header)
            if list(raw.ch_names) != self.ch_names[: len(self._signals)]:
                raw.close()
                raise RecordingError(self.path, "MNE names the channels otherwise")
            self._raw = raw
        return self._raw

    @property
    def ch_names(self) -> list[str]:
        """Names of the file channels, then of the derivations."""
        return [*self._signals, *self._derived]

    @property
    def channels(self) -> list[ChannelInfo]:
        """Every channel (file channels, then derivations) with type, native rate and unit."""
        return [
            ChannelInfo(n, self._types[n].type, self._sf[n], self._units[n]) for n in self.ch_names
        ]

    def channel_type(self, name: str) -> ChannelType:
        """Return what the channel type table says about a channel (type, role, slots)."""
        self._check_names([name])
        return self._types[name]

    @property
    def canonical_sources(self) -> tuple[str | None, ...]:
        """The channel chosen for each of :data:`CANONICAL_SLOTS` (``None`` where absent).

        A derivation the automatic :attr:`montage` made (C4-M1 from C4 and M1) feeds the
        model like a recorded C4-M1 would: the viewer, the captions and the report start
        from the same selection.
        """
        if self._sources is None:  # montage traces first: they win ties of rank
            shown = [m.name for m in self._montage]
            order = [*shown, *(n for n in self.ch_names if n not in set(shown))]
            self._sources = pick_slots([(n, self._types[n]) for n in order])
        return self._sources

    def channels_used(self, mask: NDArray[np.bool_] | None = None) -> list[str]:
        """The channels filling model slots (those where ``mask`` is True), in slot order, once.

        ``mask`` is an embedding's slot mask (e.g. ``NightEmbeddings.mask`` of a staging-montage
        pass); all filled slots when None.
        """
        sources = self.canonical_sources
        if mask is not None:
            sources = tuple(s if m else None for s, m in zip(sources, mask, strict=True))
        return list(dict.fromkeys(s for s in sources if s))

    @property
    def montage(self) -> list[MontageTrace]:
        """The automatic AASM montage (:func:`sleeplm_core.io.montage.build_montage`).

        Built on open; the derivations it needs are added to the recording (they follow the
        file channels in :attr:`ch_names`, see :meth:`derivation_sources`). A derivation of two
        signals with different rates or units is refused with one line in :attr:`notes`.
        """
        return list(self._montage)

    def derivation_sources(self, name: str) -> tuple[str, str] | None:
        """Return ``(positive, reference)`` of a derivation, ``None`` for a file channel."""
        self._check_names([name])
        return self._derived.get(name)

    def _derive_for_montage(self, name: str, positive: str, reference: str) -> str | None:
        if self._sf[positive] != self._sf[reference]:
            self.notes.append(
                f"{name} not derived: {positive} is sampled at {self._sf[positive]:g} Hz, "
                f"{reference} at {self._sf[reference]:g} Hz"
            )
            return None
        if name in self._sf:
            name = f"{name} (derived)"
        try:
            self.add_derivation(name, positive, reference)
        except ValueError as exc:
            self.notes.append(f"{name} not derived: {exc}")
            return None
        return name

    def load_scoring(self, path: str | os.PathLike[str]) -> Annotations:
        """Read a scoring file and merge it into :attr:`annotations` (replacing an earlier one).

        Parameters
        ----------
        path : str or PathLike
            NSRR/Profusion XML, Sleep-EDF ``*Hypnogram.edf``, EDF+ or CSV annotations.

        Returns
        -------
        Annotations
            What the file held.

        Raises
        ------
        AnnotationError
            When the file cannot be read or belongs to another recording (an event outside
            the recording); the recording is unchanged then.
        """
        found = _annotations.read_annotations(path, duration_s=self.duration_s, start=self.start)
        self._sidecar = list(found)
        self.scoring_source = Path(path)
        self._annotations = None
        return found

    @property
    def annotations(self) -> Annotations:
        """Annotations inside the recording (EDF+ TALs) plus the sidecar, by onset.

        Malformed TALs are skipped (see :attr:`notes`); nothing is invented. An event that
        both the file and its sidecar hold (same onset, duration, label and channel, to the
        millisecond) is kept once, with the sidecar's extras (e.g. SpO2 nadir).
        """
        if self._annotations is None:
            self._annotations = Annotations(
                _dedupe([*self._embedded_annotations(), *self._sidecar])
            )
        return self._annotations  # type: ignore[no-any-return]

    @property
    def hypnogram(self) -> Hypnogram | None:
        """The hypnogram scored in the annotations, or ``None``.

        Built from :attr:`annotations` on each access, so edits to them show up.
        """
        return _hypnogram.Hypnogram.from_annotations(self.annotations, self.duration_s)

    def _embedded_annotations(self) -> list[Any]:
        if self._header.annotation_index is None:
            return []
        try:
            found = list(_annotations.read_annotations(self.path))
        except Exception as exc:  # a messy TAL must not stop the signals from opening
            self.notes.append(f"annotations inside the file ignored: {exc}")
            return []
        return found  # onsets already count from the first record, like ours

    # ------------------------------------------------------------------ derivations
    def add_derivation(self, name: str, positive: str, reference: str) -> None:
        """Add a channel computed on the fly as ``positive - reference``.

        Parameters
        ----------
        name : str
            New, unique name, e.g. ``"C4-M1"``; it is typed from the table like a file
            channel (falling back to the type of ``positive``) and may fill a canonical slot.
        positive, reference : str
            Existing channels (file channels or earlier derivations) in the same unit.

        Raises
        ------
        ValueError
            When ``name`` exists, a source is unknown, or the units differ.
        """
        if name in self._sf:
            raise ValueError(f"channel {name!r} already exists")
        self._check_names([positive, reference])
        if self._units[positive] != self._units[reference]:
            raise ValueError(
                f"cannot subtract {reference!r} ({self._units[reference]}) from "
                f"{positive!r} ({self._units[positive]})"
            )
        ctype = classify(name, self._units[positive], sf=self._sf[positive])
        if ctype.type == OTHER.type:
            ctype = replace(self._types[positive], slots=(), rank=1000)
        self._derived[name] = (positive, reference)
        self._types[name] = ctype
        self._sf[name] = max(self._sf[positive], self._sf[reference])
        self._units[name] = self._units[positive]
        self._sources = None

    # ------------------------------------------------------------------ reading
    def window(
        self, start_s: float, stop_s: float, ch_names: Sequence[str] | None = None
    ) -> Window:
        """Read the samples of some channels between two times.

        The span is clipped to the recording: asking for [-10, 20) s gives [0, 20) s, and
        a span wholly outside it gives zero samples. Channels of a lower native rate are
        brought to the highest rate among ``ch_names`` by repeating samples (no filter, no
        invented values). On an EDF+D the samples sit on the real time axis and are NaN
        inside the gaps (:attr:`gaps`).

        Parameters
        ----------
        start_s, stop_s : float
            Seconds from the recording start; ``start_s < stop_s``.
        ch_names : sequence of str, optional
            Channels to read, file channels or derivations; all by default. A single
            name may be given as a plain string.

        Returns
        -------
        Window
            float32 (n_channels, n_samples) in physical units (uV for EEG, EOG, EMG).

        Raises
        ------
        ValueError
            When ``start_s >= stop_s``, a channel is unknown or the recording is closed.
        """
        if isinstance(ch_names, str):  # one name, not its letters
            ch_names = [ch_names]
        names = list(self.ch_names if ch_names is None else ch_names)
        if not start_s < stop_s:
            raise ValueError(f"window start {start_s} s must be before its stop {stop_s} s")
        self._check_names(names)
        if not names:
            return Window(np.zeros((0, 0), np.float32), 0.0, [], [], float(start_s))
        sf = max(self._sf[n] for n in names)
        spr = round(sf * self._header.record_s)  # samples per record at sf (an integer)
        total = round(self.duration_s * sf)
        i0 = min(max(int(np.floor(start_s * sf + 1e-9)), 0), total)
        i1 = min(max(int(np.ceil(stop_s * sf - 1e-9)), i0), total)
        base = self._read(self._base_of(names), i0, i1 - i0, spr)
        data = np.empty((len(names), i1 - i0), np.float32)
        for k, name in enumerate(names):
            data[k] = self._evaluate(name, base)
        return Window(data, sf, names, [self._units[n] for n in names], i0 / sf)

    def canonical(
        self, start_s: float, stop_s: float, slots: Sequence[str] | None = None
    ) -> CanonicalWindow:
        """Build the model input for a time span.

        Each slot is filled from :attr:`canonical_sources`, resampled from its native rate
        to 64 Hz (:func:`sleeplm_core.io.resample.resample`: polyphase or interpolation, of
        bounded cost) on a window widened by a margin, so the filter has no edge effects
        inside the span. The span is clipped to the recording like :meth:`window`; EDF+D
        gaps become zeros.

        Parameters
        ----------
        start_s, stop_s : float
            Seconds from the recording start; ``start_s < stop_s``.
        slots : sequence of str, optional
            Only these of :data:`CANONICAL_SLOTS` are read (the others are zeros and absent
            in ``mask``), e.g. the staging montage; all when None.

        Returns
        -------
        CanonicalWindow
            data float32 (12, n) with ``n = round((stop - start) * 64)`` after clipping.
        """
        if not start_s < stop_s:
            raise ValueError(f"window start {start_s} s must be before its stop {stop_s} s")
        a, b = max(start_s, 0.0), min(stop_s, self.duration_s)
        n = max(round((b - a) * CANONICAL_SF), 0)
        data = np.zeros((len(CANONICAL_SLOTS), n), np.float32)
        sources = self.canonical_sources
        if slots is not None:
            wanted = set(slots)
            sources = tuple(
                src if slot in wanted else None
                for slot, src in zip(CANONICAL_SLOTS, sources, strict=True)
            )
        mask = np.array([s is not None for s in sources])
        by_rate: dict[float, list[int]] = {}
        for i, src in enumerate(sources):
            if src is not None:
                by_rate.setdefault(self._sf[src], []).append(i)
        step = round(_CANONICAL_CHUNK_S * CANONICAL_SF)
        for k0 in range(0, n, step):  # long spans in chunks: bounded memory, same result
            k1 = min(k0 + step, n)
            t0 = a + k0 / CANONICAL_SF
            for sf, rows in by_rate.items():
                margin = max(1.0, 64.0 / sf)
                names = [str(sources[i]) for i in rows]
                win = self.window(t0 - margin, t0 + (k1 - k0) / CANONICAL_SF + margin, names)
                x = np.nan_to_num(win.data, copy=False, nan=0.0)  # the read's own array
                # bounded cost for any rate; output sample 0 at t0 exactly
                seg = resample(x, sf, CANONICAL_SF, lag_s=max(t0 - win.start_s, 0.0), n=k1 - k0)
                data[rows, k0 : k0 + seg.shape[1]] = seg
        if mask[_POSITION_SLOT]:  # a vendor code the scheme does not know is no position
            data[_POSITION_SLOT] = mask_unknown(data[_POSITION_SLOT])
        return CanonicalWindow(data=data, mask=mask, sources=sources)

    def _check_names(self, names: Sequence[str]) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path}: the recording is closed")
        unknown = [n for n in names if n not in self._sf]
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; known: {self.ch_names}")

    def _base_of(self, names: Sequence[str]) -> list[str]:
        out: dict[str, None] = {}
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in self._derived:
                todo.extend(self._derived[name])
            else:
                out[name] = None
        return list(out)

    def _evaluate(self, name: str, base: dict[str, NDArray[np.float32]]) -> NDArray[np.float32]:
        if name in base:
            return base[name]
        positive, reference = self._derived[name]
        # float32 - float32 is float32; the stubs say floating[Any]
        diff: NDArray[np.float32] = self._evaluate(positive, base) - self._evaluate(reference, base)
        return diff

    def _read(self, names: list[str], i0: int, n: int, spr: int) -> dict[str, NDArray[np.float32]]:
        """Read file channels over samples [i0, i0 + n) of a rate with ``spr`` per record.

        Records are read in chunks of about :data:`_CHUNK_BYTES`, so a whole-night read
        never holds more than one chunk of raw data besides its float32 result.
        """
        out = {name: np.full(n, np.nan, np.float32) for name in names}
        per = max(1, _CHUNK_BYTES // self._header.record_bytes)
        for first, count, onset_s in self._segments:
            s0 = round(onset_s * spr / self._header.record_s)
            lo, hi = max(i0, s0), min(i0 + n, s0 + count * spr)
            if lo >= hi:
                continue
            r_a, r_b = (lo - s0) // spr, -(-(hi - s0) // spr)
            for c0 in range(r_a, r_b, per):
                c1 = min(c0 + per, r_b)
                block = self._records(first + c0, c1 - c0)
                clo, chi = max(lo, s0 + c0 * spr), min(hi, s0 + c1 * spr)
                u0, u1 = clo - s0 - c0 * spr, chi - s0 - c0 * spr  # within the block
                for name in names:
                    sig = self._signals[name]
                    x = block[:, sig.column : sig.column + sig.n_samples].reshape(-1)
                    if sig.n_samples == spr:
                        x = x[u0:u1]
                    else:  # lower native rate: sample-and-hold up to the common rate
                        x = x[(np.arange(u0, u1) * sig.n_samples) // spr]
                    out[name][clo - i0 : chi - i0] = x * sig.gain + sig.offset
        return out

    def _records(self, first: int, count: int) -> np.ndarray:
        if self._fd is None:
            raise ValueError(f"{self.path}: the recording is closed")
        return read_records(self._fd, self._header, first, count)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Release the file; further reads raise ``ValueError``. Safe to call twice."""
        self._release()
        self._fd = None
        if self._raw is not None:
            self._raw.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Recording {self.path.name}: {len(self.ch_names)} channels, "
            f"{self.duration_s:.0f} s, {len(self.gaps)} gaps>"
        )


def _dedupe(items: Sequence[Annotation]) -> list[Annotation]:
    """Drop repeats of an event; a later copy (the sidecar's) replaces an earlier one."""
    kept: dict[tuple[float, float, str, str | None], Annotation] = {}
    for a in items:
        kept[(round(a.onset_s, 3), round(a.duration_s, 3), a.label, a.channel)] = a
    return list(kept.values())


def unique_names(labels: Sequence[str]) -> list[str]:
    """Channel labels made unique as MNE makes them (``C3``, ``C3`` -> ``C3-0``, ``C3-1``).

    MNE's rule (``mne._fiff.meas_info._unique_channel_names``): every copy of a repeated
    label gets ``-<copy index>``, or, when that name is taken, ``-a``, ``-b``, ...
    """
    names = list(labels)
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    for stem in sorted(n for n, k in counts.items() if k > 1):
        for idx, i in enumerate([i for i, n in enumerate(names) if n == stem]):
            for suffix in (str(idx), *"abcdefghijklmnopqrstuvwxyz"):
                if f"{stem}-{suffix}" not in names:
                    names[i] = f"{stem}-{suffix}"
                    break
    return names


def _mne_open(header: EdfHeader) -> Any:
    """Let MNE parse the validated header (lazily); its exceptions become RecordingError."""
    import mne  # heavy: imported only when a file is opened

    reader = mne.io.read_raw_bdf if header.format == "BDF" else mne.io.read_raw_edf
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MNE warns about everything; we validated
            return reader(header.path, preload=False, verbose="error")
    except Exception as exc:
        raise RecordingError(header.path, f"MNE cannot read it: {exc}") from exc
