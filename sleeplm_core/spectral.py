"""The per-epoch multitaper spectrum shared by the viewer's spectrogram and the report.

One function and one parameter set, so that the overview in the window and the figure in the
exported report show the same numbers: MNE's ``psd_array_multitaper`` with time-half-bandwidth
``HALF_BANDWIDTH`` (MNE's default, 7 DPSS tapers over a 30-s epoch), no adaptive weighting,
``normalization="full"`` (a PSD in units²/Hz), each epoch's mean removed first.
"""

from __future__ import annotations

from typing import Final

import numpy as np

FMIN_HZ: Final[float] = 0.5
FMAX_HZ: Final[float] = 25.0
HALF_BANDWIDTH: Final[float] = 4.0
"""Time-half-bandwidth product NW: frequencies within ``NW / T`` Hz are smoothed together."""


def epoch_psd_db(
    epochs: np.ndarray, sf: float, fmin: float = FMIN_HZ, fmax: float = FMAX_HZ
) -> tuple[np.ndarray, np.ndarray]:
    """Multitaper power spectral density of equal-length epochs, in dB.

    Parameters
    ----------
    epochs : np.ndarray
        Shape ``(n_epochs, n_samples)``, physical units (µV for EEG); NaNs count as missing.
    sf : float
        Sampling frequency in Hz.
    fmin, fmax : float
        Frequency band kept, in Hz.

    Returns
    -------
    freqs : np.ndarray
        Frequencies in Hz, shape ``(n_freqs,)``.
    psd_db : np.ndarray
        ``10 * log10(PSD)`` (PSD in units²/Hz), float32, shape ``(n_epochs, n_freqs)``; rows of
        epochs more than half missing are NaN.
    """
    from mne.time_frequency import psd_array_multitaper

    x = np.asarray(epochs, dtype=np.float64)
    n = x.shape[1]
    missing = np.isnan(x).mean(axis=1) > 0.5
    x = np.nan_to_num(x)
    x -= x.mean(axis=1, keepdims=True)
    psd, freqs = psd_array_multitaper(
        x, sf, fmin=fmin, fmax=fmax, bandwidth=2.0 * HALF_BANDWIDTH * sf / n, adaptive=False,
        normalization="full", verbose=False,
    )  # fmt: skip
    out = (10.0 * np.log10(np.maximum(psd, 1e-12))).astype(np.float32)
    out[missing] = np.nan
    return np.asarray(freqs), out
