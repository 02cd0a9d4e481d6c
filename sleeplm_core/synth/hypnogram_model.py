"""Stage sequence of a synthetic night: a cycle-based semi-Markov model.

The night is built from bouts whose durations are drawn from distributions that depend on the
cycle index (and age and disease severity):

1. Wake for the sleep-onset latency, then a short N1 bout.
2. NREM-REM cycles of about 90 min (4-6 in 8 h). The NREM part descends through N2 into N3;
   the N3 share is large in cycle 1, smaller in cycle 2 and nearly absent later, and shrinks with
   age and with the AHI. REM periods lengthen across the night (about 5-10 min in cycle 1 to
   20-40 min at the end).
3. Brief awakenings (1-3 epochs of W followed by N1) are overlaid at a rate that grows with
   age, AHI and time of night and is highest at the end of REM periods. Short N1/N2 intrusions
   fragment N2/N3.

Stage codes follow :mod:`sleeplm_core.stages` (0 W, 1 N1, 2 N2, 3 N3, 4 REM).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from sleeplm_core.stages import EPOCH_S

W, N1, N2, N3, REM = 0, 1, 2, 3, 4
_EPM = 60.0 / EPOCH_S  # epochs per minute


def _epochs(minutes: float) -> int:
    return max(1, int(round(minutes * _EPM)))


def _lognormal(rng: np.random.Generator, median: float, sigma: float) -> float:
    return float(median * np.exp(sigma * rng.standard_normal()))


def n3_share(cycle: int, age: float, ahi: float) -> float:
    """Fraction of a cycle's NREM spent in N3.

    Parameters
    ----------
    cycle : int
        Cycle index, 0 for the first.
    age : float
        Age in years; slow-wave sleep declines steeply with age.
    ahi : float
        Apnea-hypopnea index; sleep apnea fragments deep sleep.

    Returns
    -------
    float
        The expected share, between 0 and about 0.55.
    """
    base = (0.50, 0.30, 0.10, 0.04, 0.0, 0.0, 0.0)[min(cycle, 6)]
    age_f = float(np.clip(1.35 - 0.014 * age, 0.2, 1.1))
    ahi_f = float(np.clip(1.0 - ahi / 90.0, 0.3, 1.0))
    return base * age_f * ahi_f


def simulate_stages(
    n_epochs: int,
    rng: np.random.Generator,
    *,
    age: float = 40.0,
    ahi: float = 0.0,
    sol_min: float | None = None,
) -> NDArray[np.int8]:
    """Draw the scored stage of each epoch of a night in bed.

    Parameters
    ----------
    n_epochs : int
        Number of 30-s epochs from lights off.
    rng : numpy.random.Generator
        Source of randomness.
    age : float
        Age in years: older subjects have longer sleep latency, less N3, more wake.
    ahi : float
        Apnea-hypopnea index: more awakenings and less N3.
    sol_min : float, optional
        Sleep-onset latency in minutes; drawn when not given.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        Stage codes (0 W, 1 N1, 2 N2, 3 N3, 4 REM).
    """
    if sol_min is None:
        sol_min = float(np.clip(_lognormal(rng, 8.0 + 0.12 * max(age - 25, 0), 0.55), 2, 60))
    seq: list[tuple[int, int]] = [(W, _epochs(sol_min)), (N1, _epochs(_lognormal(rng, 3, 0.5)))]
    total = sum(d for _, d in seq)
    cycle = 0
    while total < n_epochs:
        bouts = _cycle_bouts(rng, cycle, age, ahi)
        seq.extend(bouts)
        total += sum(d for _, d in bouts)
        cycle += 1
    stages = np.concatenate([np.full(d, s, dtype=np.int8) for s, d in seq])[:n_epochs]
    stages = _overlay_awakenings(stages, rng, age=age, ahi=ahi)
    stages = _final_awakening(stages, rng, age=age)
    return stages


def _cycle_bouts(
    rng: np.random.Generator, cycle: int, age: float, ahi: float
) -> list[tuple[int, int]]:
    """Bouts (stage, n_epochs) of one NREM-REM cycle."""
    cycle_min = float(np.clip(rng.normal(84.0 if cycle == 0 else 90.0, 12.0), 65.0, 125.0))
    rem_min = float(np.clip(_lognormal(rng, min(7.0 + 7.0 * cycle, 32.0), 0.3), 3.0, 50.0))
    if cycle == 0 and rng.random() < 0.08:  # the first REM period is sometimes skipped
        rem_min = 0.0
    nrem_min = max(cycle_min - rem_min, 30.0)
    n3_min = nrem_min * n3_share(cycle, age, ahi) * float(np.exp(0.25 * rng.standard_normal()))
    bouts: list[tuple[int, int]] = []
    if cycle > 0:  # lighter sleep on the way back down after REM
        bouts.append((N1, _epochs(_lognormal(rng, 1.5, 0.5))))
    descent = min(_lognormal(rng, 12.0, 0.35), max(nrem_min - n3_min - 2.0, 3.0))
    bouts.append((N2, _epochs(descent)))
    remaining_n3 = n3_min
    while remaining_n3 >= 1.0:  # N3 in 1-3 chunks separated by short N2 lightening
        chunk = min(remaining_n3, max(_lognormal(rng, 14.0, 0.5), 3.0))
        bouts.append((N3, _epochs(chunk)))
        remaining_n3 -= chunk
        if remaining_n3 >= 1.0:
            bouts.append((N2, _epochs(_lognormal(rng, 2.0, 0.5))))
    ascent = max(nrem_min - descent - n3_min, 3.0)
    bouts.extend(_fragment_n2(rng, ascent))
    if rem_min > 0:
        bouts.extend(_fragment_rem(rng, rem_min))
    return bouts


def _fragment_n2(rng: np.random.Generator, minutes: float) -> list[tuple[int, int]]:
    """N2 with occasional N1 intrusions."""
    bouts: list[tuple[int, int]] = []
    left = minutes
    while left > 0:
        piece = min(left, _lognormal(rng, 12.0, 0.6))
        bouts.append((N2, _epochs(piece)))
        left -= piece
        if left > 2 and rng.random() < 0.35:
            bouts.append((N1, 1))
    return bouts


def _fragment_rem(rng: np.random.Generator, minutes: float) -> list[tuple[int, int]]:
    """A REM period, sometimes interrupted by brief N1/W."""
    bouts: list[tuple[int, int]] = []
    left = minutes
    while left > 0:
        piece = min(left, _lognormal(rng, 10.0, 0.6))
        bouts.append((REM, _epochs(piece)))
        left -= piece
        if left > 2:
            bouts.append((N1 if rng.random() < 0.6 else W, 1))
    return bouts


def _overlay_awakenings(
    stages: NDArray[np.int8], rng: np.random.Generator, *, age: float, ahi: float
) -> NDArray[np.int8]:
    """Insert brief awakenings (W then N1) into sleep.

    The hazard per hour grows with age, with the AHI and through the night, and is tripled in
    the epoch that ends a REM period.
    """
    out = stages.copy()
    n = len(out)
    asleep = np.flatnonzero(out != W)
    if len(asleep) == 0:
        return out
    first_sleep = int(asleep[0])
    rate_per_h = 1.0 + 0.06 * max(age - 20.0, 0.0) + 0.05 * ahi
    pos = np.arange(n) / (n if n else 1)
    hazard = rate_per_h / (60.0 * _EPM) * (0.6 + 0.8 * pos)
    rem_end = np.zeros(n, dtype=bool)
    rem_end[:-1] = (out[:-1] == REM) & (out[1:] != REM)
    hazard = np.where(rem_end, hazard * 3.0 + 0.05, hazard)
    hazard[: first_sleep + _epochs(10)] = 0.0
    hazard[out == W] = 0.0
    for i in np.flatnonzero(rng.random(n) < hazard).tolist():
        long_wake = rng.random() < 0.04 + 0.003 * max(age - 30.0, 0.0)
        w_len = _epochs(_lognormal(rng, 6.0, 0.6)) if long_wake else int(rng.integers(1, 4))
        n1_len = int(rng.integers(1, 3))
        end_w = min(i + w_len, n)
        out[i:end_w] = W
        out[end_w : min(end_w + n1_len, n)] = N1
    return out


def _final_awakening(
    stages: NDArray[np.int8], rng: np.random.Generator, *, age: float
) -> NDArray[np.int8]:
    """Wake at the end of a full night (early-morning awakening, longer when older)."""
    out = stages.copy()
    n = len(out)
    if n * EPOCH_S < 5 * 3600:  # only full nights end with the final awakening
        return out
    minutes = float(np.clip(_lognormal(rng, 3.0 + 0.15 * max(age - 30, 0), 0.7), 0.5, 60))
    out[max(n - _epochs(minutes), 0) :] = W
    return out
