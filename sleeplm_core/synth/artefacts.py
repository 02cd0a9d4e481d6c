"""Recording imperfections: electrode noise, mains interference, movement and electrode pops.

- Electrode/amplifier noise: white noise of ``noise_uv`` RMS on every EEG/EOG/EMG channel.
- Mains: a ``line_hz`` sinusoid of a few uV with slowly varying amplitude, only when below
  0.45 * sf (above that a real amplifier's anti-aliasing filter removes it).
- Movement artefacts: 1-6 s of large slow swings plus muscle activity on all EEG/EOG channels,
  at body-position changes, at some arousals and at random in wake (``artefact_rate`` per hour).
- Electrode pops: a sudden step on one EEG channel decaying over ~0.5-1.5 s.
- Slow drift (sweat, electrode polarization): 0.03-0.5 Hz wander of ``drift_uv`` SD whose size
  changes over minutes, independent per channel.
- ECG artefact: QRS-shaped spikes of ``ecg_artifact_uv`` at each heartbeat in the EEG (the
  mastoid reference sits near the neck's large vessels).

Each movement artefact and pop is returned so that it is annotated ("Artifact").
"""

from __future__ import annotations

import numpy as np

from sleeplm_core.synth.timeline import (
    FloatArray,
    Timeline,
    colored_noise,
    place_pulses,
    shifted,
    slow_lognormal,
)


def add_electrode_noise(
    signals: dict[str, FloatArray], rng: np.random.Generator, noise_uv: float
) -> None:
    """Add white noise of ``noise_uv`` RMS to each signal, in place."""
    for x in signals.values():
        x += noise_uv * rng.standard_normal(len(x), dtype=np.float32)


def add_line_noise(
    signals: dict[str, FloatArray],
    rng: np.random.Generator,
    *,
    sf: float,
    line_hz: float | None,
) -> None:
    """Add mains interference to each signal, in place (skipped above 0.45 * sf)."""
    if line_hz is None or line_hz >= 0.45 * sf or not signals:
        return
    n = max(len(x) for x in signals.values())
    ph = 2 * np.pi * line_hz * np.arange(n) / sf
    s, c = np.sin(ph), np.cos(ph)
    slow = np.sin(2 * np.pi * np.arange(n) / (sf * float(rng.uniform(600, 3600))))
    for x in signals.values():
        amp = float(rng.uniform(0.2, 3.0))
        phi = float(rng.uniform(0, 2 * np.pi))
        m = len(x)
        x += amp * (1 + 0.3 * slow[:m]) * (np.cos(phi) * s[:m] + np.sin(phi) * c[:m])


def movement_times(
    tl: Timeline,
    rng: np.random.Generator,
    *,
    position_changes: list[float],
    arousals: list[tuple[float, float]],
    rate_per_h: float,
) -> list[tuple[float, float]]:
    """Onsets and durations (s) of movement artefacts."""
    times = [t + float(rng.uniform(-1.0, 1.0)) for t in position_changes]
    times += [a + float(rng.uniform(0.0, d)) for a, d in arousals if rng.random() < 0.1]
    wake = np.flatnonzero(np.repeat(tl.stages, 30) == 0)
    n_rand = rng.poisson(rate_per_h * len(wake) / 3600.0) if len(wake) else 0
    times += (
        [float(t) + float(rng.random()) for t in rng.choice(wake, size=n_rand)] if n_rand else []
    )
    out = []
    for t in sorted(times):
        dur = float(rng.uniform(1.0, 6.0))
        if 1.0 < t < tl.duration_s - dur - 1.0:
            out.append((t, dur))
    return out


def add_movement_artefacts(
    signals: dict[str, FloatArray],
    rng: np.random.Generator,
    *,
    sf: float,
    events: list[tuple[float, float]],
) -> None:
    """Add each movement artefact to all given signals, in place."""
    for onset, dur in events:
        m = int(dur * sf)
        i0 = int(onset * sf)
        env = np.sin(np.pi * (np.arange(m) + 0.5) / m) ** 0.5
        slow = colored_noise(m, sf, lambda f: ((f > 0.3) & (f < 3.0)) + 0.0 * f, rng)
        fast = colored_noise(m, sf, lambda f: ((f > 15.0) & (f < 0.45 * sf)) + 0.0 * f, rng)
        amp_slow = float(rng.uniform(60.0, 250.0))
        amp_fast = float(rng.uniform(10.0, 40.0))
        for x in signals.values():
            g = float(rng.uniform(0.6, 1.2))
            x[i0 : i0 + m] += g * env * (amp_slow * slow + amp_fast * fast)


def add_electrode_pops(
    signals: dict[str, FloatArray],
    rng: np.random.Generator,
    *,
    sf: float,
    duration_s: float,
    rate_per_h: float,
) -> list[tuple[float, float, str]]:
    """Add electrode pops to random channels, in place; return (onset_s, duration_s, channel)."""
    names = list(signals)
    n_pops = rng.poisson(rate_per_h * duration_s / 3600.0)
    out = []
    for _ in range(n_pops):
        ch = names[int(rng.integers(len(names)))]
        onset = float(rng.uniform(5.0, duration_s - 10.0))
        tau = float(rng.uniform(0.3, 0.6))
        m = int(5 * tau * sf)
        i0 = int(onset * sf)
        k = np.arange(m) / sf
        signals[ch][i0 : i0 + m] += rng.choice([-1, 1]) * rng.uniform(80, 300) * np.exp(-k / tau)
        out.append((i0 / sf, 3 * tau, ch))
    return out


def add_slow_drift(
    signals: dict[str, FloatArray],
    rng: np.random.Generator,
    tl: Timeline,
    *,
    sf: float,
    sd_uv: float,
) -> None:
    """Add independent slow baseline wander (SD about ``sd_uv``) to each signal, in place."""
    if sd_uv <= 0 or not signals:
        return
    n = tl.n_samples(sf)

    def psd(f: FloatArray) -> FloatArray:
        # bool / float64 is float64; the stubs type it Any
        shape: FloatArray = ((f >= 0.03) & (f <= 0.5)) / np.maximum(f, 0.03) ** 2
        return shape

    base = colored_noise(n, sf, psd, rng, dtype=np.float32)
    for k, x in enumerate(signals.values()):
        env = tl.to_rate(sd_uv * slow_lognormal(tl.n_ctrl, 300.0, 0.6, rng), sf, np.float32)
        x += shifted(base, k + 1, len(signals) + 1)[: len(x)] * env[: len(x)]


def add_ecg_artifact(
    signals: dict[str, FloatArray],
    rng: np.random.Generator,
    *,
    sf: float,
    beats: FloatArray,
    amp_uv: float,
) -> None:
    """Add a QRS-shaped spike at each beat (``amp_uv`` peak, varying by channel), in place."""
    if amp_uv <= 0 or not signals or len(beats) == 0:
        return
    kt = np.arange(0, 0.1, 1.0 / sf)
    qrs = np.exp(-0.5 * ((kt - 0.05) / 0.012) ** 2) - 0.35 * np.exp(
        -0.5 * ((kt - 0.08) / 0.012) ** 2
    )
    n = max(len(x) for x in signals.values())
    spikes = place_pulses(n, sf, beats - 0.05, np.ones(len(beats)), qrs)
    for x in signals.values():
        x += float(rng.uniform(0.3, 1.0)) * amp_uv * spikes[: len(x)]
