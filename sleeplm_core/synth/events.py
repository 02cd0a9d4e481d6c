"""Scheduling of discrete events: respiratory events, arousals, limb movements, body position.

Everything here works on event times only (no signals). The signal generators then render the
scheduled events, so the ground-truth annotations and the waveforms cannot disagree.

Body position codes (written to the ``Pos`` channel; NSRR/SHHS-like):

====  ========
code  position
====  ========
0     right
1     supine
2     left
3     prone
====  ========
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sleeplm_core.io import labels
from sleeplm_core.synth.timeline import Timeline

POSITION_CODES: dict[int, str] = {0: "right", 1: "supine", 2: "left", 3: "prone"}
SUPINE = 1

RESP_KINDS: dict[str, str] = {
    "obstructive": labels.OBSTRUCTIVE_APNEA,
    "central": labels.CENTRAL_APNEA,
    "mixed": labels.MIXED_APNEA,
    "hypopnea": labels.HYPOPNEA,
}


@dataclass(frozen=True)
class RespEvent:
    """One scheduled respiratory event.

    Attributes
    ----------
    onset_s, duration_s : float
        Start and length of the airflow reduction, in seconds.
    kind : str
        ``"obstructive"``, ``"central"``, ``"mixed"`` or ``"hypopnea"``.
    flow_fraction : float
        Remaining airflow amplitude during the event (0.02-0.08 apnea, 0.3-0.6 hypopnea).
    desat_pct : float
        Planned SpO2 fall, in % saturation.
    arousal : bool
        Whether the event ends with a cortical arousal.
    """

    onset_s: float
    duration_s: float
    kind: str
    flow_fraction: float
    desat_pct: float
    arousal: bool

    @property
    def end_s(self) -> float:
        """End of the event, in seconds."""
        return self.onset_s + self.duration_s


@dataclass(frozen=True)
class LimbMovement:
    """One leg EMG burst: onset, duration (s), leg ("LLeg", "RLeg") and bilateral flag."""

    onset_s: float
    duration_s: float
    leg: str
    bilateral: bool
    periodic: bool


def sleep_mask_1s(tl: Timeline) -> NDArray[np.bool_]:
    """Whether each second of the night is scored as sleep."""
    per_s = np.repeat(tl.stages, 30)
    return np.asarray(per_s != 0)


def _interval_free(starts: list[float], ends: list[float], a: float, b: float) -> bool:
    """Whether [a, b) overlaps none of the sorted, disjoint intervals."""
    i = bisect.bisect_left(starts, b)
    return i == 0 or ends[i - 1] <= a


def _insert(starts: list[float], ends: list[float], a: float, b: float) -> None:
    i = bisect.bisect_left(starts, a)
    starts.insert(i, a)
    ends.insert(i, b)


def schedule_spontaneous_arousals(
    tl: Timeline, rng: np.random.Generator, rate_per_h: float
) -> list[tuple[float, float]]:
    """Draw spontaneous arousals (onset_s, duration_s) during sleep.

    The rate is per hour of sleep, weighted by stage (fewer in N3 and REM).
    """
    per_s = np.repeat(tl.stages, 30).astype(np.int64)
    w = np.array([0.0, 1.3, 1.0, 0.35, 0.7])[per_s]
    p = w * rate_per_h / 3600.0
    onsets = np.flatnonzero(rng.random(len(p)) < p) + rng.random()
    return [(float(t), _arousal_duration(rng)) for t in onsets]


def _arousal_duration(rng: np.random.Generator) -> float:
    return float(np.clip(6.5 * np.exp(0.45 * rng.standard_normal()), 3.0, 14.5))


def simulate_position(
    tl: Timeline, rng: np.random.Generator, arousal_onsets: list[float]
) -> tuple[NDArray[np.int8], list[float]]:
    """Body position per second, changing mostly at arousals and during wake.

    Returns
    -------
    position : ndarray of int8, shape (n_seconds,)
        Position code per second (see :data:`POSITION_CODES`).
    changes : list of float
        Times of the position changes, in seconds.
    """
    n = int(tl.duration_s)
    per_s = np.repeat(tl.stages, 30)[:n]
    cand: list[float] = [t for t in arousal_onsets if rng.random() < 0.15]
    wake_start = np.flatnonzero((per_s[1:] == 0) & (per_s[:-1] != 0)) + 1
    cand += [float(t) + 5.0 * rng.random() for t in wake_start if rng.random() < 0.35]
    cand.sort()
    pos = np.empty(n, dtype=np.int8)
    current = int(rng.choice(4, p=[0.3, 0.45, 0.2, 0.05]))
    last = 0
    changes: list[float] = []
    for t in cand:
        i = int(t)
        if i <= last + 60 or i >= n:  # people rarely turn twice within a minute
            continue
        pos[last:i] = current
        choices = [c for c in range(4) if c != current]
        probs = np.array([0.35 if c in (0, 2) else (0.45 if c == 1 else 0.08) for c in choices])
        current = int(rng.choice(choices, p=probs / probs.sum()))
        last = i
        changes.append(float(i))
    pos[last:] = current
    return pos, changes


def schedule_respiratory(
    tl: Timeline,
    rng: np.random.Generator,
    *,
    ahi: float,
    position: NDArray[np.int8],
    kind_probs: dict[str, float],
    supine_factor: float = 2.0,
    rem_factor: float = 2.0,
    desat_gain: float = 1.0,
) -> list[RespEvent]:
    """Place apneas and hypopneas so that their rate per hour of sleep is about ``ahi``.

    Events favour REM and supine sleep, last 10-60 s (longer in REM), never overlap, and are
    followed by 8-25 s of recovery breathing before the next event can start.
    """
    sleep = sleep_mask_1s(tl)
    n = min(len(sleep), len(position))
    tst_h = float(sleep.sum()) / 3600.0
    n_target = int(round(ahi * tst_h))
    if n_target == 0:
        return []
    per_s = np.repeat(tl.stages, 30)[:n].astype(np.int64)
    w = np.array([0.0, 0.8, 1.0, 0.35, rem_factor])[per_s]
    w = w * np.where(position[:n] == SUPINE, supine_factor, 1.0)
    w[: min(n, 60)] = 0.0
    if w.sum() <= 0:
        return []
    cand = rng.choice(n, size=20 * n_target + 50, replace=True, p=w / w.sum())
    kinds = list(kind_probs)
    kp = np.array([kind_probs[k] for k in kinds])
    starts: list[float] = []
    ends: list[float] = []
    events: list[RespEvent] = []
    for c in cand:
        t0 = float(c) + float(rng.random())
        rem = per_s[int(t0)] == 4
        dur = float(
            np.clip(19.0 * (1.3 if rem else 1.0) * np.exp(0.35 * rng.standard_normal()), 10.0, 60.0)
        )
        recovery = float(rng.uniform(8.0, 25.0))
        if t0 + dur + 30.0 > n:  # keep the event and its SpO2 response inside the night
            continue
        end_i = int(t0 + dur)
        if not sleep[end_i] or not _interval_free(starts, ends, t0 - 5.0, t0 + dur + recovery):
            continue
        kind = str(rng.choice(kinds, p=kp / kp.sum()))
        events.append(_make_event(rng, t0, dur, kind, rem, desat_gain))
        _insert(starts, ends, t0 - 5.0, t0 + dur + recovery)
        if len(events) >= n_target:
            break
    events.sort(key=lambda e: e.onset_s)
    return events


def _make_event(
    rng: np.random.Generator, t0: float, dur: float, kind: str, rem: bool, desat_gain: float
) -> RespEvent:
    rate = {"obstructive": 0.3, "mixed": 0.3, "central": 0.24, "hypopnea": 0.2}[kind]
    desat = (
        rate * dur * desat_gain * (1.3 if rem else 1.0) * float(np.exp(0.3 * rng.standard_normal()))
    )
    desat = float(np.clip(desat, 1.0, 15.0))
    if kind == "hypopnea":
        flow = float(rng.uniform(0.3, 0.6))
    else:
        flow = float(rng.uniform(0.02, 0.08))
    p_ar = {"obstructive": 0.75, "mixed": 0.75, "central": 0.35, "hypopnea": 0.55}[kind]
    arousal = bool(rng.random() < p_ar) or (kind == "hypopnea" and desat < 3.0)
    return RespEvent(t0, dur, kind, flow, desat, arousal)


def schedule_limb_movements(
    tl: Timeline, rng: np.random.Generator, plm_index: float
) -> list[LimbMovement]:
    """Periodic limb movements in series (mostly NREM), plus isolated movements in wake.

    A series has 4-20 movements of 0.5-10 s, 5-90 s apart (typically 20-40 s).
    """
    per_s = np.repeat(tl.stages, 30).astype(np.int64)
    n = len(per_s)
    out: list[LimbMovement] = []
    tst_h = float((per_s != 0).sum()) / 3600.0
    n_series = rng.poisson(plm_index * tst_h / 9.0) if plm_index > 0 else 0
    w = np.array([0.0, 1.0, 1.2, 0.3, 0.1])[per_s]
    if n_series and w.sum() > 0:
        for start in rng.choice(n, size=n_series, p=w / w.sum()):
            count = int(rng.integers(4, 21))
            period = float(np.clip(rng.normal(28.0, 6.0), 10.0, 60.0))
            side = str(rng.choice(["LLeg", "RLeg", "both"], p=[0.35, 0.35, 0.3]))
            t = float(start)
            for _ in range(count):
                if t >= n - 12:
                    break
                leg = side if side != "both" else str(rng.choice(["LLeg", "RLeg"]))
                dur = float(np.clip(2.0 * np.exp(0.5 * rng.standard_normal()), 0.5, 10.0))
                out.append(LimbMovement(t, dur, leg, side == "both", True))
                t += float(np.clip(period * np.exp(0.15 * rng.standard_normal()), 5.0, 90.0))
    wake_s = np.flatnonzero(per_s == 0)
    n_wake = rng.poisson(len(wake_s) / 3600.0 * 12.0)
    for t in rng.choice(wake_s, size=n_wake) if len(wake_s) and n_wake else []:
        dur = float(np.clip(2.5 * np.exp(0.6 * rng.standard_normal()), 0.5, 10.0))
        out.append(
            LimbMovement(
                float(t) + rng.random(),
                dur,
                "LLeg" if rng.random() < 0.5 else "RLeg",
                rng.random() < 0.5,
                False,
            )
        )
    out.sort(key=lambda m: m.onset_s)
    return out


def finalize_arousals(
    tl: Timeline, candidates: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Keep scorable arousals: in sleep, after >= 10 s of sleep, >= 10 s apart, inside the night.

    Parameters
    ----------
    tl : Timeline
        The night.
    candidates : list of (onset_s, duration_s)
        Arousals from all sources, in any order.

    Returns
    -------
    list of (onset_s, duration_s)
        Sorted, non-overlapping arousals that satisfy the AASM context rule.
    """
    sleep = sleep_mask_1s(tl)
    n = len(sleep)
    kept: list[tuple[float, float]] = []
    last_end = -1e9
    for onset, dur in sorted(candidates):
        i0 = int(onset)
        if i0 < 10 or i0 + int(dur) + 1 >= n or onset < last_end + 10.0:
            continue
        if not sleep[i0 - 10 : i0 + 1].all():
            continue
        kept.append((onset, dur))
        last_end = onset + dur
    return kept
