"""Event facts from annotations: what happened in an epoch, and what followed it.

Pure functions of a sequence of :class:`~sleeplm_core.io.annotations.Annotation`.
Respiratory events and limb movements are linked to their consequences the way a scorer
reads them: a desaturation starting between the event's onset and 30 s after its end, an
arousal starting within 5 s before to 15 s after its end.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sleeplm_core.io import labels as L
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.indices import desaturation_drop as annotated_drop

DESAT_AFTER_S = 30.0
AROUSAL_BEFORE_S = 5.0
AROUSAL_AFTER_S = 15.0

PRIMARY: tuple[str, ...] = (*L.RESPIRATORY_EVENTS, L.RERA, L.LIMB_MOVEMENT)
"""Events whose consequences (desaturation, arousal) are linked to them."""
DESCRIBED: tuple[str, ...] = (*PRIMARY, L.DESATURATION, L.AROUSAL, L.ARTIFACT)
"""Events described one by one in epoch captions."""
COUNTED: tuple[str, ...] = (L.SPINDLE, L.K_COMPLEX)
"""Events only counted in epoch captions."""
MARKERS: tuple[str, ...] = (L.LIGHTS_OFF, L.LIGHTS_ON)


@dataclass(frozen=True, slots=True)
class Links:
    """Consequences of one primary event: annotation indices (or ``None``)."""

    desaturation: int | None = None
    arousal: int | None = None


@dataclass(frozen=True, slots=True)
class EpochEvent:
    """One annotated event as seen from an epoch.

    Parameters
    ----------
    index : int
        Position of the annotation in the recording's sequence.
    label : str
        Normalized label.
    offset_s : float
        Onset minus the epoch's start (negative when it began in an earlier epoch).
    duration_s : float
        Full duration of the event.
    channel : str or None
        The channel it was scored on.
    links : Links
        Linked consequences (for primary events).
    """

    index: int
    label: str
    offset_s: float
    duration_s: float
    channel: str | None
    links: Links


def link_consequences(anns: Sequence[Annotation]) -> dict[int, Links]:
    """Link each primary event to the first desaturation and arousal that follow it.

    Each consequence is given to at most one event (the earliest that claims it).

    Parameters
    ----------
    anns : sequence of annotations
        Ordered by onset.

    Returns
    -------
    dict
        ``{index of primary event: Links}`` for events with at least one consequence.
    """
    desats = [i for i, a in enumerate(anns) if a.label == L.DESATURATION]
    arousals = [i for i, a in enumerate(anns) if a.label == L.AROUSAL]
    taken: set[int] = set()
    out: dict[int, Links] = {}
    for i, a in enumerate(anns):
        if a.label not in PRIMARY:
            continue
        end = a.onset_s + a.duration_s
        d = None
        if a.label != L.LIMB_MOVEMENT:
            d = next(
                (
                    j
                    for j in desats
                    if j not in taken and a.onset_s <= anns[j].onset_s <= end + DESAT_AFTER_S
                ),
                None,
            )
        r = next(
            (
                j
                for j in arousals
                if j not in taken
                and end - AROUSAL_BEFORE_S <= anns[j].onset_s <= end + AROUSAL_AFTER_S
            ),
            None,
        )
        taken.update(j for j in (d, r) if j is not None)
        if d is not None or r is not None:
            out[i] = Links(d, r)
    return out


def epoch_events(
    anns: Sequence[Annotation],
    links: dict[int, Links],
    start_s: float,
    stop_s: float,
    longest_s: float | None = None,
) -> tuple[list[EpochEvent], dict[str, int]]:
    """Events to describe in the epoch ``[start_s, stop_s)``, and counts of counted events.

    A consequence (desaturation, arousal) is not described on its own when the event it
    follows is described in the same epoch. ``longest_s`` (the longest annotation duration)
    may be passed to spare a scan of ``anns`` per call.

    Returns
    -------
    events : list of EpochEvent
        Described events overlapping the epoch, by onset.
    counts : dict
        ``{label: n}`` for :data:`COUNTED` and :data:`MARKERS` labels starting in the epoch.
    """
    events: list[EpochEvent] = []
    counts: dict[str, int] = {}
    # anns are ordered by onset: only those starting before stop_s and less than the longest
    # duration before start_s can overlap the epoch
    longest = longest_s if longest_s is not None else max((a.duration_s for a in anns), default=0.0)
    first = bisect.bisect_left(anns, start_s - longest - 1e-9, key=lambda a: a.onset_s)
    last = bisect.bisect_left(anns, stop_s, key=lambda a: a.onset_s)
    for i in range(first, last):
        a = anns[i]
        if a.onset_s + max(a.duration_s, 1e-9) <= start_s:
            continue
        if a.label in COUNTED or a.label in MARKERS:
            if start_s <= a.onset_s < stop_s:
                counts[a.label] = counts.get(a.label, 0) + 1
        elif a.label in DESCRIBED:
            events.append(
                EpochEvent(
                    i, a.label, a.onset_s - start_s, a.duration_s, a.channel, links.get(i, Links())
                )
            )
    described = {e.index for e in events}
    consequences = {
        j for e in events for j in (e.links.desaturation, e.links.arousal) if j is not None
    }
    shown = [e for e in events if e.index not in consequences or e.index not in described]
    return shown, counts


def desaturation_drop(
    a: Annotation, spo2: NDArray[np.floating] | None, sf: float
) -> tuple[float, str] | None:
    """Depth of a desaturation in SpO2 % points and where it came from.

    From the annotation's extras when present (source ``"extras"``, read by
    :func:`sleeplm_core.io.indices.desaturation_drop`), else measured on the SpO2 signal
    (source ``"signal"``, :func:`measure_drop`).

    Returns
    -------
    tuple of (float, str) or None
        ``(drop, "extras" | "signal")``, or ``None`` when neither is available.
    """
    drop = annotated_drop(a)
    if drop is not None:
        return drop, "extras"
    if spo2 is None:
        return None
    measured = measure_drop(spo2, sf, a.onset_s, a.duration_s)
    return None if measured is None else (measured, "signal")


def measure_drop(
    spo2: NDArray[np.floating], sf: float, onset_s: float, duration_s: float
) -> float | None:
    """Highest SpO2 in the 10 s before ``onset_s`` minus the lowest until 5 s after the end."""
    lo = max(0, int((onset_s - 10.0) * sf))
    mid = max(lo + 1, int(onset_s * sf))
    hi = min(spo2.size, int((onset_s + duration_s + 5.0) * sf))
    before = spo2[lo:mid]
    during = spo2[mid:hi]
    before = before[(before >= 50) & (before <= 100)]
    during = during[(during >= 50) & (during <= 100)]
    if before.size == 0 or during.size == 0:
        return None
    return float(before.max() - during.min())
