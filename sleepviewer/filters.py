"""Zero-phase display filters per channel (Qt-free).

The viewer filters only what it shows: the page plus a margin on each side, which is cut off
after filtering so that page edges carry no start-up transients. Filters are Butterworth
second-order sections run forwards and backwards (``scipy.signal.sosfiltfilt``, zero phase,
as ``mne.filter`` does with ``method="iir"``); designs are cached per (kind, cut-off, sf).
Channels with the same filter settings are filtered together in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import signal

from sleepviewer.state import FilterSpec

HIGHPASS_ORDER = 2
LOWPASS_ORDER = 4
NOTCH_Q = 30.0
MAX_MARGIN_S = 10.0


@lru_cache(maxsize=256)
def design_sos(kind: str, freq_hz: float, sf: float) -> np.ndarray | None:
    """Return second-order sections for one filter stage, or ``None`` if it cannot apply.

    Parameters
    ----------
    kind : {"highpass", "lowpass", "notch"}
        Filter stage.
    freq_hz : float
        Cut-off (or notch) frequency in Hz.
    sf : float
        Sampling frequency in Hz.

    Returns
    -------
    np.ndarray or None
        ``(n_sections, 6)`` SOS, or ``None`` when the frequency is at or above Nyquist
        (a 35-Hz low-pass on a 1-Hz SpO2 channel does nothing).
    """
    nyq = sf / 2.0
    if not 0.0 < freq_hz < nyq * 0.99:
        return None
    if kind == "highpass":
        return signal.butter(HIGHPASS_ORDER, freq_hz, "highpass", fs=sf, output="sos")
    if kind == "lowpass":
        return signal.butter(LOWPASS_ORDER, freq_hz, "lowpass", fs=sf, output="sos")
    if kind == "notch":
        b, a = signal.iirnotch(freq_hz, NOTCH_Q, fs=sf)
        return signal.tf2sos(b, a)
    raise ValueError(f"unknown filter kind {kind!r}")


def chain_sos(spec: FilterSpec, sf: float) -> np.ndarray | None:
    """Return the cascade of all active stages of ``spec`` as one SOS array (or ``None``)."""
    parts = []
    for kind, freq in (("highpass", spec.highpass_hz), ("lowpass", spec.lowpass_hz),
                       ("notch", spec.notch_hz)):
        if freq is not None:
            sos = design_sos(kind, float(freq), float(sf))
            if sos is not None:
                parts.append(sos)
    return np.concatenate(parts, axis=0) if parts else None


def margin_s(specs: Sequence[FilterSpec]) -> float:
    """Seconds to read on each side of a page so that edge transients fall outside it.

    Parameters
    ----------
    specs : sequence of FilterSpec
        Filters of the channels on screen.

    Returns
    -------
    float
        About three time constants of the lowest high-pass (capped at
        :data:`MAX_MARGIN_S`), at least 1 s when any filter is on, else 0.
    """
    active = [s for s in specs if s.active]
    if not active:
        return 0.0
    hps = [s.highpass_hz for s in active if s.highpass_hz]
    m = 3.0 / min(hps) if hps else 1.0
    return float(min(max(m, 1.0), MAX_MARGIN_S))


def apply_filters(data: np.ndarray, sf: float, specs: Sequence[FilterSpec]) -> np.ndarray:
    """Filter each channel with its own settings, zero-phase.

    Parameters
    ----------
    data : np.ndarray
        (n_ch, n) samples; NaN (EDF+D gaps) is kept as NaN in the output.
    sf : float
        Sampling frequency in Hz.
    specs : sequence of FilterSpec
        One per channel.

    Returns
    -------
    np.ndarray
        float32 (n_ch, n). Channels without an active filter are returned unchanged.
    """
    if len(specs) != data.shape[0]:
        raise ValueError(f"{len(specs)} filter specs for {data.shape[0]} channels")
    out = np.array(data, dtype=np.float32, copy=True)
    n = out.shape[1]
    groups: dict[FilterSpec, list[int]] = {}
    for i, s in enumerate(specs):
        if s.active:
            groups.setdefault(s, []).append(i)
    for spec, rows in groups.items():
        sos = chain_sos(spec, sf)
        if sos is None:
            continue
        padlen = min(3 * (2 * sos.shape[0] + 1), n - 1)
        if padlen < 1:
            continue
        block = out[rows].astype(np.float64)
        nan = np.isnan(block)
        has_nan = bool(nan.any())
        if has_nan:  # filter across gaps with zeros, then put the gaps back
            block[nan] = 0.0
        filtered = signal.sosfiltfilt(sos, block, axis=-1, padlen=padlen)
        if has_nan:
            filtered[nan] = np.nan
        out[rows] = filtered
    return out
