"""The automatic PSG montage: the AASM recommended set a recording allows, in display order.

From the typed channels (:mod:`sleeplm_core.io.channels`) it picks, in this order:

==============  =============================================================================
trace           taken from
==============  =============================================================================
F4-M1 (F3-M2)   a recorded F4-M1 (or F4-A1), else F4 minus M1 (A1) derived from referential
C4-M1 (C3-M2)   signals; the left-side backup when the right side is missing
O2-M1 (O1-M2)
C3-M2           also shown when it exists beside C4-M1: it is the model's second EEG input
E1-M2, E2-M2    the left/right EOG (derived from E1/E2 and M2 when only those exist)
Chin            chin EMG (Chin1-Chin2 derived from referential chin electrodes)
ECG             the best-ranked ECG
Leg L, Leg R    leg EMG by side (an unsided leg EMG when no side is known)
Airflow         thermistor (or unspecified airflow)
Nasal pressure  nasal pressure, kept apart from the thermistor
Thorax, Abd.    the RIP/belt channels (not their sums or flows)
SpO2            oxygen saturation
Position        body position
==============  =============================================================================

Everything else stays in the recording, hidden in the viewer but one click away. A derivation
is only made from two signals of the same rate and unit; otherwise the reason is one line in
the recording's notes and the referential signal is shown instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from sleeplm_core.io.channels import ChannelType

__all__ = ["MontageTrace", "MontageSource", "build_montage"]

_EEG_SITES: Final[tuple[tuple[str, str, str], ...]] = (
    ("F4", "F3", "frontal"), ("C4", "C3", "central"), ("O2", "O1", "occipital")
)
_CONTRA: Final[dict[str, tuple[str, ...]]] = {"L": ("M2", "A2"), "R": ("M1", "A1")}


@dataclass(frozen=True, slots=True)
class MontageTrace:
    """One trace of the automatic montage.

    Parameters
    ----------
    name : str
        The recording's channel to show: a file channel, or the derivation made for it.
    type : str
        Channel type (one of :data:`~sleeplm_core.io.channels.CHANNEL_TYPES`).
    role : str
        What the trace stands for in the montage (``"F4-M1"``, ``"Chin"``, ``"Leg L"``, ...).
    sources : tuple of str
        For a derivation, its two source signals ``(positive, reference)``; else empty.
    """

    name: str
    type: str
    role: str
    sources: tuple[str, ...] = ()


class MontageSource(Protocol):
    """What :func:`build_montage` needs of a recording."""

    @property
    def ch_names(self) -> list[str]:
        """Names of the file channels (and derivations)."""
        ...

    def channel_type(self, name: str) -> ChannelType:
        """The typing of a channel."""
        ...


@dataclass(frozen=True, slots=True)
class _Ch:
    name: str
    ct: ChannelType
    sf: float
    unit: str


Deriver = Callable[[str, str, str], str | None]
"""``(name, positive, reference) -> name or None``: make a derivation (None: refused)."""


def build_montage(
    channels: Sequence[tuple[str, ChannelType, float, str]], derive: Deriver
) -> list[MontageTrace]:
    """Choose the automatic AASM montage of a recording.

    Parameters
    ----------
    channels : sequence of (name, ChannelType, sf, unit)
        The recording's channels in file order.
    derive : callable
        ``derive(name, positive, reference)`` adds the derivation and returns its name, or
        returns ``None`` when it cannot be made (the caller records why).

    Returns
    -------
    list of MontageTrace
        The traces in display order; empty when the recording has none of these signals.
    """
    chans = [_Ch(n, ct, sf, u) for n, ct, sf, u in channels]
    by_name = {c.name: c for c in chans}
    out: list[MontageTrace] = []
    used: set[str] = set()

    def add(ch: _Ch | None, role: str, sources: tuple[str, ...] = ()) -> bool:
        if ch is None or ch.name in used:
            return False
        used.add(ch.name)
        out.append(MontageTrace(ch.name, ch.ct.type, role, sources))
        return True

    def bipolar(kind: str, electrode: str, refs: tuple[str, ...], role: str) -> bool:
        """A recorded electrode-ref pair, else a derivation from referential signals."""
        direct = [
            c for c in chans
            if c.ct.type == kind and c.ct.electrode == electrode and c.ct.reference in refs
        ]
        if direct:
            return add(min(direct, key=lambda c: c.ct.rank), role)
        pos = _first(chans, lambda c: c.ct.type == kind and c.ct.electrode == electrode
                     and not c.ct.reference)
        ref = _first(chans, lambda c: c.ct.electrode in refs and not c.ct.reference
                     and c.ct.type in ("EEG", kind))
        if pos is None or ref is None:
            return False
        made = derive(f"{electrode}-{refs[0]}", pos.name, ref.name)
        if made is None:
            return add(pos, role)  # the referential signal, rather than nothing
        by_name[made] = _Ch(made, pos.ct, pos.sf, pos.unit)
        return add(by_name[made], role, (pos.name, ref.name))

    for right, left, region in _EEG_SITES:
        ok = bipolar("EEG", right, _CONTRA["R"], f"{right}-M1")
        if not ok and right == "C4":  # NSRR "EEG" is C4-A1 without saying so
            ok = add(_best(chans, "EEG", role="C4"), "C4-M1")
        if not ok:
            ok = bipolar("EEG", left, _CONTRA["L"], f"{left}-M2")
            if not ok and left == "C3":
                ok = add(_best(chans, "EEG", role="C3"), "C3-M2")
        if not ok:  # no contralateral mastoid: the region's best recorded derivation (DREAMS)
            add(_best(chans, "EEG", role=region, referenced=True), f"{right}-M1")
    if not bipolar("EEG", "C3", _CONTRA["L"], "C3-M2"):
        add(_best(chans, "EEG", role="C3"), "C3-M2")
    for side, electrode in (("L", "E1"), ("R", "E2")):
        role = f"{electrode}-M2"
        direct = _best(chans, "EOG", side=side)
        if direct is not None and (direct.ct.reference or direct.ct.electrode != electrode):
            add(direct, role)
        elif not bipolar("EOG", electrode, ("M2", "A2"), role):
            add(direct, role)
    chin = _best(chans, "EMG", role="chin")
    if chin is not None and chin.ct.electrode.startswith("Chin") and not chin.ct.reference:
        first = chin  # a referential chin electrode: derive Chin1-Chin2 from two of them
        other = _first(chans, lambda c: c.ct.role == "chin" and c.name != first.name
                       and c.ct.electrode.startswith("Chin") and not c.ct.reference)
        if other is not None:
            made = derive(f"{first.ct.electrode}-{other.ct.electrode}", first.name, other.name)
            if made is not None:
                by_name[made] = _Ch(made, first.ct, first.sf, first.unit)
                add(by_name[made], "Chin", (first.name, other.name))
    if not any(m.role == "Chin" for m in out):
        add(chin, "Chin")
    add(_best(chans, "ECG"), "ECG")
    left_leg = _best(chans, "EMG", role="leg", side="L")
    right_leg = _best(chans, "EMG", role="leg", side="R")
    add(left_leg or _best(chans, "EMG", role="leg", side=""), "Leg L")
    add(right_leg or _best(chans, "EMG", role="leg", side=""), "Leg R")
    add(_best(chans, "AIRFLOW", role="thermistor") or _best(chans, "AIRFLOW", role="airflow"),
        "Airflow")
    add(_best(chans, "AIRFLOW", role="pressure"), "Nasal pressure")
    add(_best(chans, "THORACIC", role="thoracic"), "Thorax")
    add(_best(chans, "ABDOMINAL", role="abdominal"), "Abdomen")
    add(_best(chans, "SPO2"), "SpO2")
    add(_best(chans, "POSITION"), "Position")
    return out


def _first(chans: Sequence[_Ch], pred: Callable[[_Ch], bool]) -> _Ch | None:
    return next((c for c in chans if pred(c)), None)


def _best(
    chans: Sequence[_Ch],
    kind: str,
    *,
    role: str | None = None,
    side: str | None = None,
    referenced: bool = False,
) -> _Ch | None:
    hits = [
        c for c in chans
        if c.ct.type == kind
        and (role is None or c.ct.role == role)
        and (side is None or c.ct.side == side)
        and (not referenced or bool(c.ct.reference))
    ]
    return min(hits, key=lambda c: c.ct.rank) if hits else None  # file order breaks ties
