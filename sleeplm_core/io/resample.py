"""Resampling to the model's 64 Hz with a filter of bounded, known cost.

A rate that is a simple fraction of 64 Hz (256, 200, 500, 100, 1 Hz ...) goes through
:func:`scipy.signal.resample_poly`, whose filter has ``20 * max(up, down) + 1`` taps. A rate
such as 255 / 0.996094 s (an EDF header's 8-character record duration) is no simple fraction:
the exact ratio once asked for an 80-million-tap filter (608 MiB). Here such a rate is first
approximated by a fraction with terms at most :data:`MAX_POLY_TERM` when that is within
:data:`RATE_TOLERANCE` (far below the header's own precision); otherwise the signal is
low-pass filtered (at most :data:`MAX_FIR_TAPS` taps) and linearly interpolated at the exact
output times.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

MAX_POLY_TERM: Final[int] = 1024
"""Largest up or down factor of a polyphase design (at most 20,481 taps)."""

RATE_TOLERANCE: Final[float] = 1e-5
"""Relative rate error accepted to use a polyphase design (10 ppm: 18 ms over 30 min)."""

MAX_FIR_TAPS: Final[int] = 4097
"""Longest anti-alias filter of the interpolating path."""


def poly_ratio(sf: float, target: float) -> tuple[int, int] | None:
    """``(up, down)`` with ``up / down ≈ target / sf`` and both ≤ :data:`MAX_POLY_TERM`.

    Returns ``None`` when no such fraction is within :data:`RATE_TOLERANCE`.
    """
    exact = target / sf
    approx = Fraction(exact).limit_denominator(MAX_POLY_TERM)
    if approx.numerator == 0 or approx.numerator > MAX_POLY_TERM:
        return None
    if abs(float(approx) - exact) > RATE_TOLERANCE * exact:
        return None
    return approx.numerator, approx.denominator


def resample(
    x: NDArray[np.floating[Any]],
    sf: float,
    target: float,
    *,
    lag_s: float = 0.0,
    n: int | None = None,
) -> NDArray[np.floating[Any]]:
    """Resample rows of ``x`` from ``sf`` to ``target`` Hz.

    Parameters
    ----------
    x : ndarray, float32 or float64 (c, n_in)
        Signals; sample ``k`` at ``k / sf`` seconds (filtered in float64).
    sf, target : float
        Input and output rates (Hz).
    lag_s : float
        Time of the first output sample after the first input sample.
    n : int or None
        Number of output samples (default: as many as the input spans).

    Returns
    -------
    ndarray, float64 (c, m) (``x`` itself, cut, when the rates are equal)
        Output sample ``j`` at ``lag_s + j / target`` seconds (``m <= n``); cost
        O(n_in × taps), taps bounded.
    """
    from scipy.signal import resample_poly

    shift = lag_s * target
    aligned = abs(shift - round(shift)) < 1e-3
    ratio = poly_ratio(sf, target)
    if aligned and ratio is not None:
        up, down = ratio
        y: NDArray[np.floating[Any]] = x
        if (up, down) != (1, 1):
            y = resample_poly(x, up, down, axis=1, window=_fir(up, down), padtype="line")
        off = max(round(shift), 0)
        return y[:, off : None if n is None else off + n]
    return _interpolate(x, sf, target, lag_s, n)


def _interpolate(
    x: NDArray[np.floating[Any]], sf: float, target: float, lag_s: float, n: int | None
) -> NDArray[np.floating[Any]]:
    """Anti-alias (when downsampling) and interpolate linearly at the exact output times."""
    from scipy.signal import oaconvolve

    if sf > target and x.shape[1]:
        taps = _lowpass(round(sf / target, 6))
        x = oaconvolve(x, taps[None, :], mode="same", axes=1)
    span = x.shape[1] / sf - lag_s
    n_out = max(int(np.floor(span * target + 1e-9)), 0) if n is None else min(
        n, max(int(np.ceil(span * target - 1e-9)), 0)
    )
    t_in = np.arange(x.shape[1]) / sf
    t_out = lag_s + np.arange(n_out) / target
    if not len(x) or not x.shape[1]:
        return np.zeros((len(x), 0))
    return np.stack([np.interp(t_out, t_in, row) for row in x])


@lru_cache(maxsize=32)
def _fir(up: int, down: int) -> NDArray[np.float64]:
    """resample_poly's default anti-alias filter, designed once per rate pair."""
    from scipy.signal import firwin

    max_rate = max(up, down)
    taps: NDArray[np.float64] = firwin(20 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    taps.flags.writeable = False
    return taps


@lru_cache(maxsize=32)
def _lowpass(decimation: float) -> NDArray[np.float64]:
    from scipy.signal import firwin

    n = min(2 * int(np.ceil(10 * decimation)) + 1, MAX_FIR_TAPS)
    taps: NDArray[np.float64] = firwin(n, 1.0 / decimation, window=("kaiser", 5.0))
    taps.flags.writeable = False
    return taps
