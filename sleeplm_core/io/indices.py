"""Event indices per hour of sleep (AHI, ODI, arousal index, PLMI, ...), as AASM reports them.

An event counts only when its onset falls in a sleep epoch (N1, N2, N3, REM) of the
hypnogram, and every index is events per hour of total sleep time (TST).

======  ==================================================================
AHI     apneas (obstructive, central, mixed) + hypopneas per hour of TST
AI      apneas per hour
OAI     obstructive apneas per hour
CAI     central apneas per hour
MAI     mixed apneas per hour
HI      hypopneas per hour
RDI     AHI events + RERAs per hour
ODI     oxygen desaturations of >= 3 % per hour (events without drop info count)
ArI     arousals per hour
PLMI    limb movements that belong to a PLM series, per hour
TST_h   total sleep time in hours (the denominator)
======  ==================================================================

With no sleep at all, every index is NaN.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from sleeplm_core.io import labels as L
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.hypnogram import Hypnogram
from sleeplm_core.stages import SLEEP_STAGES

__all__ = ["ODI_DROP_PCT", "PLM_RULES", "desaturation_drop", "event_indices", "plm_series"]

ODI_DROP_PCT = 3.0
"""Minimum SpO2 drop (percentage points) for a desaturation to count in the ODI."""

PLM_RULES: dict[str, float] = {
    "min_duration_s": 0.5,  # an LM lasts 0.5 to 10 s
    "max_duration_s": 10.0,
    "min_interval_s": 5.0,  # onset-to-onset interval within a series: 5 to 90 s
    "max_interval_s": 90.0,
    "min_count": 4,  # at least 4 consecutive LMs make a series
    "bilateral_s": 5.0,  # LMs on two legs less than 5 s apart count as one
}
"""AASM rules for periodic limb movements (AASM Manual v2.6, PLM rules)."""


def desaturation_drop(a: Annotation) -> float | None:
    """Return the SpO2 drop of a desaturation in percentage points, or ``None`` if unknown.

    Uses the extra ``spo2_drop`` (or ``desaturation``), else ``spo2_baseline - spo2_nadir``.
    """
    for key in ("spo2_drop", "desaturation"):
        value = _number(a.extra(key))
        if value is not None:
            return value
    baseline, nadir = _number(a.extra("spo2_baseline")), _number(a.extra("spo2_nadir"))
    if baseline is not None and nadir is not None:
        return baseline - nadir
    return None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def plm_series(ann: Iterable[Annotation]) -> list[Annotation]:
    """Return the limb movements that belong to a PLM series (AASM rules, :data:`PLM_RULES`).

    LMs shorter than 0.5 s or longer than 10 s are not LMs for this purpose. LMs on
    different channels (legs) starting less than 5 s apart are merged into one (the earlier
    is kept). A series is at least 4 consecutive LMs whose onset-to-onset intervals are all
    5 to 90 s; any other interval ends the series. Respiratory-associated LMs are not
    excluded.
    """
    r = PLM_RULES
    lms = sorted(
        (
            a
            for a in ann
            if a.label == L.LIMB_MOVEMENT
            and r["min_duration_s"] <= a.duration_s <= r["max_duration_s"]
        ),
        key=lambda a: a.onset_s,
    )
    merged: list[Annotation] = []
    for a in lms:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and a.channel != prev.channel
            and a.onset_s - prev.onset_s < r["bilateral_s"]
        ):
            continue
        merged.append(a)
    out: list[Annotation] = []
    run: list[Annotation] = []
    for a in merged:
        if run and r["min_interval_s"] <= a.onset_s - run[-1].onset_s <= r["max_interval_s"]:
            run.append(a)
            continue
        if len(run) >= r["min_count"]:
            out.extend(run)
        run = [a]
    if len(run) >= r["min_count"]:
        out.extend(run)
    return out


def event_indices(ann: Iterable[Annotation], hypnogram: Hypnogram) -> dict[str, float]:
    """Return event indices per hour of sleep (see the module docstring for the keys).

    Parameters
    ----------
    ann : Annotations or iterable of Annotation
        The night's annotations; stages among them are ignored.
    hypnogram : Hypnogram
        Decides which events happened during sleep and gives the TST.

    Returns
    -------
    dict of str to float
        Indices in events per hour of TST, and ``TST_h``.
    """
    items = list(ann)
    tst_h = hypnogram.sleep_statistics()["TST"] / 60.0
    sleep_epoch = np.isin(np.asarray(hypnogram.stages, dtype=str), list(SLEEP_STAGES))

    def asleep(events: list[Annotation]) -> list[Annotation]:
        """The events whose onset lies in a sleep epoch (one lookup for all of them)."""
        if not events or not len(sleep_epoch):
            return []
        k = hypnogram.epoch_of([a.onset_s for a in events])
        keep = (k >= 0) & sleep_epoch[np.maximum(k, 0)]
        return [a for a, ok in zip(events, keep.tolist(), strict=True) if ok]

    sleep_events = asleep([a for a in items if not a.is_stage])

    def count(*labels: str) -> int:
        return sum(1 for a in sleep_events if a.label in labels)

    def desat_counts(a: Annotation) -> bool:
        drop = desaturation_drop(a)
        return drop is None or drop >= ODI_DROP_PCT

    n = {
        "AHI": count(*L.RESPIRATORY_EVENTS),
        "AI": count(*L.APNEAS),
        "OAI": count(L.OBSTRUCTIVE_APNEA),
        "CAI": count(L.CENTRAL_APNEA),
        "MAI": count(L.MIXED_APNEA),
        "HI": count(L.HYPOPNEA),
        "RDI": count(*L.RESPIRATORY_EVENTS, L.RERA),
        "ODI": sum(1 for a in sleep_events if a.label == L.DESATURATION and desat_counts(a)),
        "ArI": count(L.AROUSAL),
        "PLMI": len(asleep(plm_series(items))),
    }
    out = {k: (v / tst_h if tst_h > 0 else float("nan")) for k, v in n.items()}
    out["TST_h"] = tst_h
    return out
