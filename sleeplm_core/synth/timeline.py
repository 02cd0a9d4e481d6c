"""Shared time base of a synthetic night: the 10-Hz control grid and noise helpers.

Slow physiological state (stage depth, arousal, heart rate, breathing amplitude) is computed on
a coarse *control grid* (:data:`CTRL_SF` Hz) and interpolated onto each signal's own sampling
grid, so that state changes are smooth and every generator stays vectorized.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sp_fft

from sleeplm_core.stages import EPOCH_S

CTRL_SF: float = 10.0
"""Sampling rate of the control grid, in Hz."""

FloatArray = NDArray[np.float64]

STAGE_CODES: tuple[int, ...] = (0, 1, 2, 3, 4)
"""Scored stage codes (W, N1, N2, N3, REM), after :mod:`sleeplm_core.stages`."""


@dataclass
class Timeline:
    """The time base shared by all generators of one night.

    Parameters
    ----------
    stages : ndarray of int8, shape (n_epochs,)
        Stage code of each 30-s epoch (0 W, 1 N1, 2 N2, 3 N3, 4 REM).
    transition_s : float
        Width of the smoothing window applied to stage weights, in seconds.

    Attributes
    ----------
    duration_s : float
        Length of the night, in seconds.
    n_ctrl : int
        Number of control-grid samples.
    weights : ndarray, shape (5, n_ctrl)
        Smoothed one-hot stage weights (rows W, N1, N2, N3, REM), summing to 1.
    stage_ctrl : ndarray of int8, shape (n_ctrl,)
        The scored (unsmoothed) stage at each control sample.
    """

    stages: NDArray[np.int8]
    transition_s: float = 15.0
    duration_s: float = field(init=False)
    n_ctrl: int = field(init=False)
    weights: FloatArray = field(init=False)
    stage_ctrl: NDArray[np.int8] = field(init=False)

    def __post_init__(self) -> None:
        self.duration_s = float(len(self.stages) * EPOCH_S)
        per_epoch = int(round(EPOCH_S * CTRL_SF))
        self.stage_ctrl = np.repeat(self.stages.astype(np.int8), per_epoch)
        self.n_ctrl = len(self.stage_ctrl)
        onehot = (self.stage_ctrl[None, :] == np.arange(5)[:, None]).astype(np.float64)
        self.weights = smooth(onehot, self.transition_s * CTRL_SF)

    @property
    def t_ctrl(self) -> FloatArray:
        """Times of the control samples, in seconds, shape (n_ctrl,)."""
        return np.arange(self.n_ctrl) / CTRL_SF

    def stage_mix(self, values: dict[int, float] | tuple[float, ...]) -> FloatArray:
        """Blend per-stage values with the smoothed stage weights.

        Parameters
        ----------
        values : tuple of 5 float or dict {stage code: value}
            Value of the quantity in W, N1, N2, N3 and REM.

        Returns
        -------
        ndarray, shape (n_ctrl,)
            The quantity on the control grid, changing smoothly at stage transitions.
        """
        v = (
            np.array([values.get(c, 0.0) for c in STAGE_CODES])
            if isinstance(values, dict)
            else np.asarray(values, dtype=np.float64)
        )
        return np.asarray(v @ self.weights)

    def n_samples(self, sf: float) -> int:
        """Number of samples of a signal sampled at ``sf`` Hz over the whole night."""
        return int(round(self.duration_s * sf))

    def to_rate(self, ctrl: FloatArray, sf: float, dtype: type = np.float64) -> FloatArray:
        """Interpolate a control-grid series onto a signal grid of ``sf`` Hz.

        Parameters
        ----------
        ctrl : ndarray, shape (n_ctrl,)
            Values on the control grid.
        sf : float
            Target sampling rate, in Hz.
        dtype : type
            ``np.float64`` (default) or ``np.float32``.

        Returns
        -------
        ndarray, shape (n_samples(sf),)
            Linearly interpolated values.
        """
        n = self.n_samples(sf)
        pos = np.arange(n, dtype=np.float64) * (CTRL_SF / sf)
        out = np.interp(pos, np.arange(self.n_ctrl, dtype=np.float64), ctrl)
        return out if dtype is np.float64 else out.astype(dtype)

    def stage_at(self, t_s: float | FloatArray) -> NDArray[np.int8]:
        """Scored stage at times ``t_s`` (seconds); times past the end get the last epoch."""
        idx = np.clip((np.asarray(t_s) // EPOCH_S).astype(np.int64), 0, len(self.stages) - 1)
        return np.asarray(self.stages[idx])


def smooth(x: FloatArray, width: float) -> FloatArray:
    """Smooth along the last axis with a normalized Hann window of ``width`` samples.

    Edges are handled by reflecting, so a constant input stays constant.
    """
    w = int(round(width))
    if w < 3:
        return np.asarray(x, dtype=np.float64).copy()
    kernel = np.hanning(w + 2)[1:-1]
    kernel /= kernel.sum()
    pad = w // 2 + 1
    xp = np.pad(np.atleast_2d(x), ((0, 0), (pad, pad)), mode="reflect")
    out = np.stack([np.convolve(row, kernel, mode="same")[pad:-pad] for row in xp])
    return out.reshape(np.shape(x))


def _even_fast_len(n: int) -> int:
    """The smallest even FFT length >= n that pocketfft handles fast."""
    m = sp_fft.next_fast_len(max(n, 2), real=True)
    while m % 2:
        m = sp_fft.next_fast_len(m + 1, real=True)
    return int(m)


def noise_spectrum(
    n: int, sf: float, psd: Callable[[FloatArray], FloatArray]
) -> NDArray[np.float32]:
    """Amplitude spectrum for :func:`colored_noise`, normalized so that its output has unit SD.

    Compute it once and pass it as ``amp`` when several noises share one shape.
    """
    nfft = _even_fast_len(n)
    # rfftfreq is typed floating[Any]; it returns float64
    freqs = cast(FloatArray, np.fft.rfftfreq(nfft, 1.0 / sf))
    amp = np.sqrt(np.maximum(psd(freqs), 0.0))
    amp[0] = 0.0
    amp[-1] = 0.0
    # irfft of (a + ib) * amp, a and b unit normal: var = 4 * sum(amp^2) / nfft^2
    sd = 2.0 * float(np.sqrt(np.sum(amp**2))) / nfft
    return np.asarray(amp / sd if sd > 0 else amp, dtype=np.float32)


def colored_noise(
    n: int,
    sf: float,
    psd: Callable[[FloatArray], FloatArray] | None,
    rng: np.random.Generator,
    *,
    amp: NDArray[np.float32] | None = None,
    dtype: type = np.float64,
) -> FloatArray:
    """Gaussian noise with a given power spectral shape and unit standard deviation.

    Parameters
    ----------
    n : int
        Number of samples.
    sf : float
        Sampling rate, in Hz.
    psd : callable or None
        Maps frequencies (Hz, non-negative) to relative power; need not be normalized.
        Ignored when ``amp`` is given.
    rng : numpy.random.Generator
        Source of randomness.
    amp : ndarray, optional
        A spectrum from :func:`noise_spectrum` for the same ``n`` and ``sf``.
    dtype : type
        ``np.float64`` (default) or ``np.float32`` for large intermediate arrays.

    Returns
    -------
    ndarray, shape (n,)
        The noise, zero mean and (in expectation) unit SD.
    """
    if amp is None:
        if psd is None:
            raise ValueError("colored_noise needs psd or amp")
        amp = noise_spectrum(n, sf, psd)
    nf = len(amp)
    spec = rng.standard_normal(2 * nf, dtype=np.float32).view(np.complex64)
    spec *= amp
    nfft = 2 * (nf - 1)
    return np.asarray(sp_fft.irfft(spec, nfft)[:n], dtype=dtype)


def shifted(x: FloatArray, k: int, n_copies: int) -> FloatArray:
    """Copy ``k`` of ``n_copies`` decorrelated copies of a stationary noise (circular shift).

    Shifting by a large fraction of the length gives copies that are uncorrelated at all lags
    that matter (the noise's correlation time is seconds), at the cost of one FFT in total.
    """
    return np.roll(x, (k * len(x)) // max(n_copies, 1) + 7919 * k)


def gaussian_band(center_hz: float, sd_hz: float) -> Callable[[FloatArray], FloatArray]:
    """Return a Gaussian-shaped spectral peak (relative PSD) at ``center_hz``."""

    def shape(f: FloatArray) -> FloatArray:
        return np.exp(-0.5 * ((f - center_hz) / sd_hz) ** 2)

    return shape


def slow_lognormal(n_ctrl: int, tau_s: float, sigma: float, rng: np.random.Generator) -> FloatArray:
    """A positive random modulation with median 1 and correlation time ``tau_s``.

    Parameters
    ----------
    n_ctrl : int
        Length on the control grid.
    tau_s : float
        Correlation time, in seconds.
    sigma : float
        SD of the underlying log-amplitude.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray, shape (n_ctrl,)
        ``exp(sigma * z(t))`` with ``z`` unit-SD low-pass noise.
    """
    fc = 1.0 / (2.0 * np.pi * tau_s)
    z = colored_noise(n_ctrl, CTRL_SF, lambda f: 1.0 / (1.0 + (f / fc) ** 2), rng)
    return np.asarray(np.exp(sigma * z))


def place_pulses(
    n: int,
    sf: float,
    onsets_s: FloatArray,
    weights: FloatArray,
    kernel: FloatArray,
) -> FloatArray:
    """Add copies of ``kernel`` starting at ``onsets_s``, scaled by ``weights`` (vectorized).

    Parameters
    ----------
    n : int
        Length of the output, in samples.
    sf : float
        Sampling rate, in Hz.
    onsets_s : ndarray
        Start time of each copy, in seconds.
    weights : ndarray
        Amplitude of each copy.
    kernel : ndarray
        The waveform, sampled at ``sf``.

    Returns
    -------
    ndarray, shape (n,)
        Sum of the scaled, shifted kernels.
    """
    from scipy.signal import oaconvolve

    train = np.zeros(n)
    idx = np.round(np.asarray(onsets_s) * sf).astype(np.int64)
    ok = (idx >= 0) & (idx < n)
    np.add.at(train, idx[ok], np.asarray(weights, dtype=np.float64)[ok])
    if not np.any(ok):
        return train
    return np.asarray(oaconvolve(train, kernel)[:n])
