"""The viewer's typed state: what is shown, where, and how (Qt-free).

``ViewState`` replaces the untyped state bag of mne-qt-browser (``self.mne``): every widget reads
the fields it needs from one dataclass, and navigation arithmetic lives here so that it can be
tested without Qt.

This module also states the small protocol the viewer reads a recording through
(:class:`RecordingLike`), so that widgets and tests agree on it while
``sleeplm_core.io.recording.Recording`` is the real implementation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from sleeplm_core.stages import EPOCH_S

Theme = Literal["light", "dark"]

TIME_BASES_S: tuple[float, ...] = (10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
                                   7200.0)
"""Page lengths offered in View → Time base (10 s … 2 h)."""

DEFAULT_SENSITIVITY: dict[str, float] = {
    "EEG": 7.5,
    "EOG": 7.5,
    "EMG": 3.0,
    "ECG": 50.0,
}
"""Clinical sensitivity per channel type, in µV/mm (other types are scaled to their data)."""

MICROVOLT_UNITS: frozenset[str] = frozenset({"uV", "µV", "μV", "microvolt", "uv"})


class ChannelInfoLike(Protocol):
    """What the viewer reads of one channel (``sleeplm_core.io.recording.ChannelInfo``)."""

    name: str
    type: str
    sf: float
    unit: str


class WindowLike(Protocol):
    """A block of samples (``sleeplm_core.io.recording.Window``)."""

    data: np.ndarray
    sf: float
    ch_names: list[str]
    units: list[str]
    start_s: float


class RecordingLike(Protocol):
    """What the viewer reads of a recording (``sleeplm_core.io.recording.Recording``)."""

    path: Path
    channels: list[Any]
    ch_names: list[str]
    duration_s: float
    start: datetime
    gaps: list[tuple[float, float]]
    annotations: Any
    hypnogram: Any

    def window(
        self, start_s: float, stop_s: float, ch_names: Sequence[str] | None = None
    ) -> Any:
        """Return the samples between two times (see ``Recording.window``)."""
        ...

    def add_derivation(self, name: str, positive: str, reference: str) -> None:
        """Add a bipolar channel ``positive - reference``."""
        ...


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """Display filters of one channel; ``None`` switches a stage off.

    Parameters
    ----------
    highpass_hz : float or None
        High-pass cut-off in Hz.
    lowpass_hz : float or None
        Low-pass cut-off in Hz.
    notch_hz : float or None
        Mains notch frequency in Hz (50 or 60).
    """

    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    notch_hz: float | None = None

    @property
    def active(self) -> bool:
        """Whether any stage is on."""
        return any(v is not None for v in (self.highpass_hz, self.lowpass_hz, self.notch_hz))


DEFAULT_FILTERS: dict[str, FilterSpec] = {
    "EEG": FilterSpec(0.3, 35.0, None),
    "EOG": FilterSpec(0.3, 35.0, None),
    "EMG": FilterSpec(10.0, 100.0, None),
    "ECG": FilterSpec(0.3, 70.0, None),
}
"""AASM-recommended display filters per channel type (others unfiltered)."""
CLIP_ROWS = 1.5
"""Half-height, in rows, to which a clipped trace is drawn (mne-qt-browser's default)."""


@dataclass(slots=True)
class ChannelView:
    """How one channel is shown.

    Parameters
    ----------
    name : str
        Channel (or derivation) name as known to the recording.
    type : str
        Channel type (``io.channels.CHANNEL_TYPES``).
    unit : str
        Physical unit of the samples.
    visible : bool
        Hidden channels keep their settings.
    gain : float
        Multiplier on top of the sensitivity (keyboard +/- and wheel).
    sensitivity : float or None
        Units per millimetre on screen (µV/mm for EEG); ``None`` until scaled to the data.
    filters : FilterSpec
        Display filters.
    """

    name: str
    type: str = "OTHER"
    unit: str = ""
    visible: bool = True
    gain: float = 1.0
    sensitivity: float | None = None
    filters: FilterSpec = field(default_factory=FilterSpec)

    @property
    def effective_sensitivity(self) -> float | None:
        """Units per millimetre after the gain (``sensitivity / gain``)."""
        if self.sensitivity is None:
            return None
        return self.sensitivity / self.gain


def default_channel_view(name: str, type_: str, unit: str) -> ChannelView:
    """Return a channel's view with the clinical defaults for its type.

    Parameters
    ----------
    name, type_, unit : str
        Channel name, type and physical unit.

    Returns
    -------
    ChannelView
        Sensitivity from :data:`DEFAULT_SENSITIVITY` when the unit is µV, filters from
        :data:`DEFAULT_FILTERS`.
    """
    sens = DEFAULT_SENSITIVITY.get(type_) if unit in MICROVOLT_UNITS else None
    if type_ == "SPO2" and unit == "%":
        sens = 1.0  # desaturations of a few % must look like desaturations
    return ChannelView(
        name=name,
        type=type_,
        unit=unit,
        sensitivity=sens,
        filters=DEFAULT_FILTERS.get(type_, FilterSpec()),
    )


@dataclass(slots=True)
class ViewState:
    """Everything that defines the picture, except the data.

    Parameters
    ----------
    recording_duration_s : float
        Length of the recording (navigation clamps to it).
    start_s : float
        Left edge of the page, seconds from the recording start.
    duration_s : float
        Page length (time base) in seconds.
    channels : list of ChannelView
        Display order; hidden channels stay in the list.
    montage : str
        Name of the montage preset in use.
    theme : {"light", "dark"}
        Colour theme.
    filters_enabled : bool
        Master switch for all display filters.
    clip_traces : bool
        Draw each trace within :data:`CLIP_ROWS` rows of its own row (as MNE's browser does
        by default): an electrode pop, a saturated sensor or a signal's start-up never sweeps
        across the other channels. Only the picture is clipped; the ruler measures samples.
    px_per_mm : float or None
        Screen calibration (device-independent pixels per millimetre) for true µV/mm;
        ``None`` trusts the screen's logical DPI.
    """

    recording_duration_s: float = 0.0
    start_s: float = 0.0
    duration_s: float = EPOCH_S
    channels: list[ChannelView] = field(default_factory=list)
    montage: str = "As recorded"
    theme: Theme = "light"
    filters_enabled: bool = True
    clip_traces: bool = True
    px_per_mm: float | None = None

    # -- channels -------------------------------------------------------------------------
    @property
    def visible_channels(self) -> list[ChannelView]:
        """The channels drawn, top to bottom."""
        return [c for c in self.channels if c.visible]

    def channel(self, name: str) -> ChannelView:
        """Return the view of channel ``name`` (``KeyError`` if unknown)."""
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(name)

    def move_channel(self, name: str, before: str | None) -> None:
        """Move ``name`` in front of ``before`` (or to the end when ``None``)."""
        ch = self.channel(name)
        self.channels.remove(ch)
        if before is None or before == name:
            idx = len(self.channels)
        else:
            idx = next((i for i, c in enumerate(self.channels) if c.name == before),
                       len(self.channels))
        self.channels.insert(idx, ch)

    def scale_gain(self, factor: float, name: str | None = None) -> None:
        """Multiply the gain of one channel, or of all visible channels when ``name`` is None."""
        targets = self.visible_channels if name is None else [self.channel(name)]
        for c in targets:
            c.gain = float(min(max(c.gain * factor, 1 / 64), 64.0))

    # -- time -----------------------------------------------------------------------------
    @property
    def stop_s(self) -> float:
        """Right edge of the page."""
        return self.start_s + self.duration_s

    @property
    def n_epochs(self) -> int:
        """Number of 30-s epochs in the recording (the last one may be partial)."""
        return max(1, math.ceil(self.recording_duration_s / EPOCH_S - 1e-9))

    @property
    def epoch_index(self) -> int:
        """Zero-based epoch at the left edge of the page."""
        return min(int((self.start_s + 1e-6) // EPOCH_S), self.n_epochs - 1)

    def clamp(self, start_s: float) -> float:
        """Clamp a page start so that the page stays inside the recording."""
        last = max(0.0, self.recording_duration_s - min(self.duration_s,
                                                        self.recording_duration_s))
        return float(min(max(start_s, 0.0), last))

    def go_to(self, start_s: float) -> None:
        """Move the page to ``start_s`` (clamped)."""
        self.start_s = self.clamp(start_s)

    def step_epochs(self, n: int) -> None:
        """Move by ``n`` epochs, snapping to the epoch grid."""
        base = math.floor(self.start_s / EPOCH_S + 1e-9) * EPOCH_S
        if n < 0 and base < self.start_s - 1e-9:
            n += 1  # the first step back only snaps to the current epoch
        self.go_to(base + n * EPOCH_S)

    def step_pages(self, n: int) -> None:
        """Move by ``n`` pages."""
        self.go_to(self.start_s + n * self.duration_s)

    def go_to_epoch(self, index: int) -> None:
        """Show epoch ``index`` (zero-based) at the left edge."""
        self.go_to(index * EPOCH_S)

    def set_time_base(self, duration_s: float) -> None:
        """Change the page length, keeping the left edge (clamped)."""
        self.duration_s = float(max(1.0, duration_s))
        self.go_to(self.start_s)

    def copy(self) -> ViewState:
        """Return a deep enough copy (channel views are copied)."""
        return replace(self, channels=[replace(c) for c in self.channels])


def parse_go_to(text: str, start: datetime | None, state: ViewState) -> float:
    """Turn the text of the Go-to dialog into a page start in seconds.

    Parameters
    ----------
    text : str
        ``"123"`` (epoch number, 1-based), ``"e123"``, ``"23:41:05"`` (clock time, the next
        occurrence after the recording start), ``"+1:30:00"`` (elapsed), ``"5400s"``.
    start : datetime or None
        Recording start, for clock times.
    state : ViewState
        For the number of epochs.

    Returns
    -------
    float
        Seconds from the recording start (not yet clamped).

    Raises
    ------
    ValueError
        When the text is none of these forms or the epoch does not exist.
    """
    t = text.strip().lower()
    if not t:
        raise ValueError("empty")
    if t.endswith("s") and _is_number(t[:-1]):
        return float(t[:-1])
    if t.startswith("e") and t[1:].strip().isdigit():
        t = t[1:].strip()
    if t.isdigit():
        epoch = int(t)
        if not 1 <= epoch <= state.n_epochs:
            raise ValueError(f"epoch {epoch} is not between 1 and {state.n_epochs}")
        return (epoch - 1) * EPOCH_S
    elapsed = t.startswith("+")
    parts = t.lstrip("+").split(":")
    if not 2 <= len(parts) <= 3 or not all(_is_number(p) for p in parts):
        raise ValueError(f"not an epoch, time or seconds: {text!r}")
    secs = sum(float(p) * 60**i for i, p in enumerate(reversed(parts)))
    if elapsed or start is None:
        return secs
    start_of_day = start.hour * 3600 + start.minute * 60 + start.second + start.microsecond / 1e6
    return (secs - start_of_day) % 86400.0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
