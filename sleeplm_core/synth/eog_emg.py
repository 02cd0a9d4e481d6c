"""EOG (E1-M2, E2-M2), chin EMG and leg EMG of a synthetic night.

EOG model: the corneo-retinal dipole gives a horizontal eye-position signal ``h`` and a vertical
one ``v``. E1 sits at the left outer canthus 1 cm below, E2 at the right outer canthus 1 cm
above, so conjugate horizontal movements appear with opposite polarity (E1 = +h, E2 = -h) and
vertical ones (blinks) mostly in E2. Both electrodes share M2 with the frontal EEG, which
therefore appears in phase in both (slow waves in N3). Eye movements are:

- saccades (steps that drift back with a ~1.5 s amplifier time constant): frequent in wake with
  eyes open, in bursts during phasic REM, rare otherwise;
- slow rolling eye movements (0.1-0.6 Hz) in drowsy wake and N1, fading in early N2;
- blinks (0.3 s, 100-250 uV) in wake with eyes open.

Chin EMG is band-limited noise (10 Hz-Nyquist) whose RMS falls with depth (W > N1 > N2 > N3),
is lowest in REM (atonia) with brief phasic twitches, and rises at arousals; a small ECG
artefact is added. Leg EMG is a low baseline with bursts for each limb movement.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import lfilter

from sleeplm_core.synth.events import LimbMovement
from sleeplm_core.synth.timeline import (
    CTRL_SF,
    FloatArray,
    Timeline,
    colored_noise,
    place_pulses,
    shifted,
    slow_lognormal,
)

CHIN_RMS = (12.0, 7.0, 5.0, 4.0, 1.0)  # uV in W, N1, N2, N3, REM


def _emg_psd(sf: float) -> Callable[[FloatArray], FloatArray]:
    hi = min(100.0, 0.45 * sf)

    def shape(f: FloatArray) -> FloatArray:
        return ((f >= 10.0) & (f <= hi)).astype(np.float64) + 0 * f

    return shape


def _saccade_rate(tl: Timeline, eyes_closed: FloatArray, rem_phasic: FloatArray) -> FloatArray:
    """Saccades per second on the control grid."""
    wake_open = tl.weights[0] * (1 - eyes_closed)
    rem = tl.weights[4]
    # rows of tl.weights are float64; indexing is typed Any
    rate: FloatArray = 0.6 * wake_open + rem * (0.04 + 1.4 * rem_phasic) + 0.02 * tl.weights[1]
    return rate


def eye_movements(
    tl: Timeline,
    rng: np.random.Generator,
    *,
    sf: float,
    eyes_closed: FloatArray,
    rem_phasic: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Horizontal and vertical eye-position signals (uV at the electrodes), at ``sf`` Hz."""
    n = tl.n_samples(sf)
    rate = _saccade_rate(tl, eyes_closed, rem_phasic)
    p = np.clip(rate / CTRL_SF, 0, 1)
    idx = np.flatnonzero(rng.random(tl.n_ctrl) < p)
    t_sac = (idx + rng.random(len(idx))) / CTRL_SF
    amp = rng.normal(0.0, 90.0, len(t_sac))
    steps = np.zeros(n)
    np.add.at(steps, np.clip(np.round(t_sac * sf).astype(np.int64), 0, n - 1), amp)
    # leaky integrator: step, then drift back with the EOG amplifier time constant
    a = np.exp(-1.0 / (1.5 * sf))
    h = lfilter([1.0], [1.0, -a], steps)
    rise = np.hanning(max(int(0.04 * sf), 3))
    h = np.convolve(h, rise / rise.sum(), mode="same")
    sem_amp = tl.stage_mix((0.0, 60.0, 8.0, 0.0, 0.0)) + 30.0 * tl.weights[0] * eyes_closed
    sem_psd = lambda f: ((f > 0.08) & (f < 0.6)).astype(np.float64) + 0 * f  # noqa: E731
    h = h + colored_noise(n, sf, sem_psd, rng) * tl.to_rate(sem_amp, sf)
    blink_rate = 0.3 * tl.weights[0] * (1 - eyes_closed)
    pb = np.clip(blink_rate / CTRL_SF, 0, 1)
    bidx = np.flatnonzero(rng.random(tl.n_ctrl) < pb)
    kt = np.arange(0, 0.45, 1.0 / sf)
    kernel = np.exp(-0.5 * ((kt - 0.15) / 0.05) ** 2) * (1 + 0.8 * (kt > 0.15))
    kernel = np.where(kt > 0.15, np.exp(-0.5 * ((kt - 0.15) / 0.09) ** 2), kernel)
    v = place_pulses(
        n,
        sf,
        (bidx + rng.random(len(bidx))) / CTRL_SF,
        rng.uniform(100.0, 250.0, len(bidx)),
        kernel,
    )
    return h, v


# Spread of the eye dipole to the EEG derivations: (vertical, horizontal) gains.
OCULAR_SPREAD: dict[str, tuple[float, float]] = {
    "F3-M2": (0.12, 0.06),
    "C3-M2": (0.04, 0.04),
    "C4-M1": (0.04, -0.04),
    "O1-M2": (0.0, 0.0),
}


def simulate_eog(
    tl: Timeline,
    rng: np.random.Generator,
    *,
    sf: float,
    eyes_closed: FloatArray,
    rem_phasic: FloatArray,
    eeg: dict[str, FloatArray],
) -> dict[str, FloatArray]:
    """E1-M2 and E2-M2 (uV) at ``sf`` Hz; adds the eyes' spread to ``eeg`` in place.

    The EOG electrodes pick up the frontal EEG (``eeg["F3-M2"]``, taken before the ocular
    spread is added), and the EEG picks up blinks and eye movements, most at F3.
    """
    h, v = eye_movements(tl, rng, sf=sf, eyes_closed=eyes_closed, rem_phasic=rem_phasic)
    n = len(h)
    c1, c2 = rng.uniform(0.5, 0.8, 2)
    frontal = eeg["F3-M2"]
    e1 = h - 0.3 * v + c1 * frontal + 2.0 * rng.standard_normal(n)
    e2 = -h + 1.0 * v + c2 * frontal + 2.0 * rng.standard_normal(n)
    for ch, (gv, gh) in OCULAR_SPREAD.items():
        if ch in eeg and (gv or gh):
            eeg[ch] += gv * v + gh * h
    return {"E1-M2": e1, "E2-M2": e2}


def simulate_chin(
    tl: Timeline,
    rng: np.random.Generator,
    *,
    sf: float,
    arousal: FloatArray,
    rem_phasic: FloatArray,
    beats: FloatArray,
    tone_scale: float,
) -> FloatArray:
    """Chin EMG (uV) at ``sf`` Hz."""
    n = tl.n_samples(sf)
    rms = tl.stage_mix(CHIN_RMS) * tone_scale * slow_lognormal(tl.n_ctrl, 30.0, 0.2, rng)
    rms = rms + 15.0 * arousal * tone_scale
    # REM twitches: brief bursts, more in phasic REM
    twitch_rate = tl.weights[4] * (0.02 + 0.3 * rem_phasic)
    idx = np.flatnonzero(rng.random(tl.n_ctrl) < twitch_rate / CTRL_SF)
    for i in idx:
        width = int(rng.integers(1, 3))
        rms[i : i + width] += rng.uniform(5.0, 20.0)
    emg = colored_noise(n, sf, _emg_psd(sf), rng) * tl.to_rate(rms, sf)
    kt = np.arange(0, 0.1, 1.0 / sf)
    qrs = np.exp(-0.5 * ((kt - 0.05) / 0.01) ** 2) - 0.3 * np.exp(-0.5 * ((kt - 0.075) / 0.01) ** 2)
    ecg_art = place_pulses(n, sf, beats - 0.05, np.full(len(beats), rng.uniform(1.0, 6.0)), qrs)
    return np.asarray(emg + ecg_art)


def simulate_legs(
    tl: Timeline,
    rng: np.random.Generator,
    *,
    sf: float,
    movements: list[LimbMovement],
    legs: tuple[str, ...] = ("LLeg", "RLeg"),
) -> dict[str, FloatArray]:
    """Leg EMG channels (uV) at ``sf`` Hz with a burst for each limb movement."""
    n = tl.n_samples(sf)
    out: dict[str, FloatArray] = {}
    base = colored_noise(n, sf, _emg_psd(sf), rng)
    for k, leg in enumerate(legs):
        env = np.full(tl.n_ctrl, 1.5) * (1 + 0.5 * tl.weights[0])
        for m in movements:
            if not (m.leg == leg or m.bilateral or len(legs) == 1):
                continue
            i0 = int(m.onset_s * CTRL_SF)
            i1 = min(i0 + max(int(round(m.duration_s * CTRL_SF)), 1), tl.n_ctrl)
            amp = float(rng.uniform(15.0, 60.0)) * (1.0 if m.leg == leg else 0.6)
            ramp = np.arange(i1 - i0)
            env[i0:i1] += amp * np.sin(np.pi * (ramp + 0.5) / max(i1 - i0, 1)) ** 0.3
        # each leg gets its own decorrelated copy of the EMG noise carrier
        out[leg] = shifted(base, k + 1, len(legs) + 1) * tl.to_rate(env, sf)
    return out
