"""Training-time augmentation toward what real labs record (canonical 64 Hz windows, µV).

The synthetic generator already draws mains interference (50/60 Hz at the native rate, before
the canonical resampler), electrode noise, movement, electrode pops, slow drift and ECG
artefact per night (:mod:`sleeplm_core.synth.artefacts`). Real recordings differ from it in
ways a generator seed does not vary, so each training sample is, with probability ``prob``,
passed through :func:`augment_window`, which draws each of these independently:

==========================  ===================================================================
reference                    C3/C4 re-referenced: contralateral mastoid kept, linked mastoids
                             (minus half the other side), average (minus the mean of both), or
                             a Cz-like reference (minus a shared smoothed component)
hardware filter              high-pass 0.1, 0.3 or 0.5 Hz and/or low-pass 25 or 30 Hz (order 2,
                             zero phase), or none
amplitude                    EEG/EOG gain x 0.5-2 (amplifier calibration, skull thickness)
inverted polarity            EEG and EOG sign flipped (montage conventions)
electrode pop                a step with exponential decay on one EEG/EOG channel
sweat                        0.1-0.5 Hz sway of 30-150 µV on the EEG
ECG artefact                 the ECG slot (or R-like spikes at 50-90 /min) leaking into the EEG
clipping                     amplifier saturation at 100-250 µV
sampling-rate mismatch       the window stretched by 0.97-1.03 (clock differences)
==========================  ===================================================================

Non-EEG channels keep their values except for the sampling-rate mismatch. Staging on 20-s
R&K epochs is a label question, not a signal one, and is handled by the DREAMS reader.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from scipy import signal as sps

from sleeplm_core.io.channels import CANONICAL_SF, CANONICAL_SLOTS

SLOT: Final = {s: i for i, s in enumerate(CANONICAL_SLOTS)}
EEG: Final = (SLOT["C3_M2"], SLOT["C4_M1"])
EOG: Final = (SLOT["EOG_L"], SLOT["EOG_R"])
EXG: Final = EEG + EOG
P_EACH: Final[dict[str, float]] = {
    "reference": 0.4,
    "filter": 0.5,
    "amplitude": 0.5,
    "polarity": 0.15,
    "pop": 0.1,
    "sweat": 0.15,
    "ecg": 0.15,
    "clip": 0.1,
    "rate": 0.2,
}
"""Probability of each perturbation, given that the sample is augmented."""


def _present(mask: np.ndarray, slots: tuple[int, ...]) -> list[int]:
    return [s for s in slots if mask[s]]


def augment_window(
    signal: np.ndarray, mask: np.ndarray, rng: np.random.Generator, sf: float = CANONICAL_SF
) -> tuple[np.ndarray, list[str]]:
    """Return a perturbed copy of one window (12, T) in µV and the names of what was applied.

    Parameters
    ----------
    signal : ndarray, float32 (12, T)
        A canonical window (physical units).
    mask : ndarray, bool (12,)
        Present slots; absent slots stay zero.
    rng : numpy.random.Generator
        Draws every choice.
    sf : float
        Sampling rate (64 Hz).
    """
    x = np.array(signal, dtype=np.float64, copy=True)
    n = x.shape[1]
    t = np.arange(n) / sf
    eeg, exg = _present(mask, EEG), _present(mask, EXG)
    done: list[str] = []

    def draw(name: str) -> bool:
        hit = bool(rng.random() < P_EACH[name])
        if hit:
            done.append(name)
        return hit

    if len(eeg) == 2 and draw("reference"):
        a, b = x[EEG[0]].copy(), x[EEG[1]].copy()
        kind = int(rng.integers(3))
        if kind == 0:  # linked mastoids
            x[EEG[0]], x[EEG[1]] = a - 0.5 * b, b - 0.5 * a
        elif kind == 1:  # average reference over the two
            x[EEG[0]], x[EEG[1]] = a - 0.5 * (a + b), b - 0.5 * (a + b)
        else:  # a vertex-like reference: a shared smooth component removed
            common = sps.sosfiltfilt(sps.butter(2, 8.0, fs=sf, output="sos"), 0.5 * (a + b))
            x[EEG[0]], x[EEG[1]] = a - common, b - common
    if exg and draw("filter"):
        high = float(rng.choice([0.1, 0.3, 0.5]))
        low = float(rng.choice([25.0, 30.0]))
        sos = sps.butter(2, [high, low], btype="bandpass", fs=sf, output="sos")
        x[exg] = sps.sosfiltfilt(sos, x[exg], axis=1)
    if exg and draw("amplitude"):
        x[exg] *= float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    if exg and draw("polarity"):
        x[exg] = -x[exg]
    if exg and draw("pop"):
        ch = int(rng.choice(exg))
        at = int(rng.integers(n))
        tau = float(rng.uniform(0.2, 1.5))
        step = float(rng.choice([-1, 1]) * rng.uniform(100.0, 400.0))
        x[ch, at:] += step * np.exp(-(t[at:] - t[at]) / tau)
    if eeg and draw("sweat"):
        f = float(rng.uniform(0.1, 0.5))
        amp = float(rng.uniform(30.0, 150.0))
        x[eeg] += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    if eeg and draw("ecg"):
        if mask[SLOT["ECG"]]:
            ecg = x[SLOT["ECG"]] - np.median(x[SLOT["ECG"]])
            scale = np.percentile(np.abs(ecg), 99) or 1.0
            leak = ecg / scale * float(rng.uniform(5.0, 30.0))
        else:
            rate = float(rng.uniform(50.0, 90.0)) / 60.0
            phase = np.mod(t * rate + rng.uniform(0, 1), 1.0)
            leak = float(rng.uniform(5.0, 30.0)) * np.exp(-(((phase - 0.5) / 0.012) ** 2))
        x[eeg] += leak
    if exg and draw("clip"):
        level = float(rng.uniform(100.0, 250.0))
        x[exg] = np.clip(x[exg], -level, level)
    if draw("rate"):
        factor = float(rng.uniform(0.97, 1.03))
        src = np.clip(np.arange(n) * factor, 0, n - 1)
        x = np.stack([np.interp(src, np.arange(n), row) for row in x])
    x[~np.asarray(mask, bool)] = 0.0
    return x.astype(np.float32), done
