"""EEG of a synthetic night: aperiodic background, stage rhythms and transient waveforms.

Each derivation (F3-M2, C3-M2, C4-M1, O1-M2) is a weighted sum of shared sources, so that
the topography is plausible and neighbouring channels are coherent, plus an independent local
part. Continuous sources (unit-SD coloured noise) are multiplied by amplitude envelopes that are
blended from per-stage values with the smoothed stage weights of the :class:`Timeline`, so the
spectrum changes gradually at stage transitions:

============  ===========================  =====  =====  =====  =====  =====  ==========
source        band                          W      N1     N2     N3     REM    topography
============  ===========================  =====  =====  =====  =====  =====  ==========
aperiodic     1/f^1.6, steeper above 16 Hz  7      8      11     11     8      diffuse
delta         slow waves, 0.4-2 Hz          2      3.5    8.5    24     6.5    frontal
theta         4-7 Hz                        1.5    2.5    3.5    6      3.5    central
alpha         individual alpha +-0.5 Hz     *      5.5    1.5    2.5    2.5    occipital
sigma         spindle frequency +-1.2 Hz    1      0.6    2.0    1.6    0.2    central
beta          15-30 Hz                      2.5    1.8    0.8    0.6    1.5    frontal
muscle        20 Hz-Nyquist                 1.5    0.6    0.3    0.2    0.2    frontal
============  ===========================  =====  =====  =====  =====  =====  ==========

(SD in uV at gain 1 for ``amplitude_scale = 1``; * the wake alpha is 8.5 with eyes closed, 2.5 with
eyes open; slow waves scale with age. The values were calibrated so that stage-wise SDs and
relative band powers of C3 resemble those of real clinical recordings: W ~10, N2 ~17,
N3 ~30-45 uV SD for a middle-aged subject.) Arousals add alpha, beta and muscle activity and
suppress slow waves. Transients are added on top: sleep spindles (11-16 Hz, 0.5-2 s, waxing and
waning, central; N2 and fewer in N3), K-complexes (N2), vertex waves (N1) and sawtooth-wave
trains (REM).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from sleeplm_core.synth.timeline import (
    CTRL_SF,
    FloatArray,
    Timeline,
    colored_noise,
    gaussian_band,
    shifted,
    slow_lognormal,
)

EEG_CHANNELS: tuple[str, ...] = ("F3-M2", "C3-M2", "C4-M1", "O1-M2")
SPINDLE_CHANNEL = "C3-M2"

# Gains of each source on (F3, C3, C4, O1).
GAINS: dict[str, tuple[float, ...]] = {
    "aperiodic": (1.0, 1.0, 1.0, 0.95),
    "delta": (1.15, 1.0, 1.0, 0.7),
    "theta": (0.95, 1.0, 1.0, 0.8),
    "alpha": (0.25, 0.4, 0.4, 1.0),
    "beta": (1.1, 1.0, 1.0, 0.8),
    "sigma": (0.8, 1.0, 1.0, 0.4),
    "muscle": (1.6, 0.7, 0.7, 0.6),
    "spindle": (0.75, 1.0, 1.0, 0.35),
    "kcomplex": (1.1, 1.0, 1.0, 0.5),
    "vertex": (0.7, 1.0, 1.0, 0.3),
    "sawtooth": (0.9, 1.0, 1.0, 0.5),
}

STAGE_AMP: dict[str, tuple[float, ...]] = {  # SD (uV) in W, N1, N2, N3, REM
    "aperiodic": (7.0, 8.0, 11.0, 11.0, 8.0),
    "delta": (2.0, 3.5, 8.5, 24.0, 6.5),
    "theta": (1.5, 2.5, 3.5, 6.0, 3.5),
    "alpha": (0.0, 5.5, 1.5, 2.5, 2.5),  # wake alpha depends on the eyes, see below
    "beta": (2.5, 1.8, 0.8, 0.6, 1.5),
    "sigma": (1.0, 0.6, 2.0, 1.6, 0.2),
    "muscle": (1.5, 0.6, 0.3, 0.2, 0.2),
}
ALPHA_EYES_CLOSED = 8.5
ALPHA_EYES_OPEN = 2.5
N3_DELTA_FLOOR_UV = 21.0
SLOW_WAVE_ASYMMETRY = 0.2


@dataclass
class EEGParams:
    """Subject parameters that shape the EEG.

    Attributes
    ----------
    alpha_hz : float
        Individual alpha frequency.
    spindle_hz : float
        Mean spindle frequency (11-16 Hz).
    amplitude_scale : float
        Overall amplitude factor (skull thickness, age).
    slow_wave_scale : float
        Extra factor on slow waves and K-complexes (declines with age).
    spindle_density : float
        Spindles per minute of N2.
    kc_density : float
        K-complexes per minute of N2.
    aperiodic_exponent : float
        Slope of the 1/f background (about 1.3-1.9).
    """

    alpha_hz: float = 10.0
    spindle_hz: float = 13.0
    amplitude_scale: float = 1.0
    slow_wave_scale: float = 1.0
    spindle_density: float = 3.5
    kc_density: float = 1.2
    aperiodic_exponent: float = 1.6


@dataclass
class EEGResult:
    """Rendered EEG and the transients it contains.

    Attributes
    ----------
    signals : dict
        Derivation name -> signal (uV).
    spindles : list of (onset_s, duration_s, freq_hz, peak_uv)
        Every generated spindle (exact support of its envelope).
    kcomplexes : list of (onset_s, duration_s)
        Every generated K-complex (from the start of its negative wave to its end).
    """

    signals: dict[str, FloatArray]
    spindles: list[tuple[float, float, float, float]] = field(default_factory=list)
    kcomplexes: list[tuple[float, float]] = field(default_factory=list)


def aperiodic_psd(exponent: float = 1.6) -> Callable[[FloatArray], FloatArray]:
    """1/f^exponent background with a 0.3-Hz high-pass and a steeper fall above 16 Hz."""

    def shape(f: FloatArray) -> FloatArray:
        hp = (f / 0.3) ** 4 / (1 + (f / 0.3) ** 4)
        return np.asarray(hp / (f**exponent + 0.5) / (1 + (f / 16.0) ** 4))

    return shape


def _delta_psd(f: FloatArray) -> FloatArray:
    lf = np.log(np.maximum(f, 1e-3) / 0.85)
    return np.exp(-0.5 * (lf / 0.45) ** 2) * (f / 0.3) ** 4 / (1 + (f / 0.3) ** 4)


def _band_psd(lo: float, hi: float) -> Callable[[FloatArray], FloatArray]:
    def shape(f: FloatArray) -> FloatArray:
        return ((f >= lo) & (f <= hi)).astype(np.float64) * (1 + 0 * f)

    return shape


def envelopes(
    tl: Timeline,
    rng: np.random.Generator,
    p: EEGParams,
    *,
    arousal: FloatArray,
    eyes_closed: FloatArray,
) -> dict[str, FloatArray]:
    """Amplitude envelope (uV SD at gain 1) of each continuous source on the control grid."""
    # each subject has its own stage profile: every (source, stage) amplitude is jittered
    jitter = np.exp(0.15 * rng.standard_normal((len(STAGE_AMP), 5)))
    prof = {k: np.asarray(v) * jitter[i] for i, (k, v) in enumerate(STAGE_AMP.items())}
    prof["delta"] = prof["delta"] * p.slow_wave_scale
    # Scored N3 needs >= 20 % of 0.5-2 Hz waves > 75 uV peak-to-peak: keep the N3 slow-wave
    # SD (after amplitude_scale) at or above N3_DELTA_FLOOR_UV, so that the label stays true.
    # Ageing then shows as less N3 time in the hypnogram, not as N3 that is not N3.
    prof["delta"][3] = max(prof["delta"][3], N3_DELTA_FLOOR_UV / max(p.amplitude_scale, 1e-6))
    env = {k: tl.stage_mix(v) for k, v in prof.items()}
    n = tl.n_ctrl
    w_wake = tl.weights[0]
    env["alpha"] = env["alpha"] + w_wake * (
        ALPHA_EYES_OPEN + (ALPHA_EYES_CLOSED - ALPHA_EYES_OPEN) * eyes_closed
    )
    # burstiness (real EEG is heavier-tailed than Gaussian noise) and, in wake, larger
    # minute-to-minute changes (eyes, posture, tension)
    env["alpha"] = env["alpha"] * slow_lognormal(n, 4.0, 0.3, rng)
    env["delta"] = (
        env["delta"] * slow_lognormal(n, 20.0, 0.15, rng) * slow_lognormal(n, 3.0, 0.15, rng)
    )
    env["theta"] = env["theta"] * slow_lognormal(n, 3.0, 0.35, rng)
    env["aperiodic"] = env["aperiodic"] * slow_lognormal(n, 1.5, 0.3, rng)
    wake_mod = slow_lognormal(n, 20.0, 0.35, rng) ** w_wake
    for k in ("aperiodic", "beta", "muscle", "theta"):
        env[k] = env[k] * wake_mod
    env["alpha"] = env["alpha"] + 8.0 * arousal
    env["beta"] = env["beta"] + 3.0 * arousal
    env["muscle"] = env["muscle"] + 4.0 * arousal
    env["delta"] = env["delta"] * (1 - 0.6 * arousal)
    return {k: v * p.amplitude_scale for k, v in env.items()}


def simulate_eeg(
    tl: Timeline,
    rng: np.random.Generator,
    p: EEGParams,
    *,
    sf: float,
    arousal: FloatArray,
    eyes_closed: FloatArray,
    rem_phasic: FloatArray,
    arousal_onsets: list[float],
) -> EEGResult:
    """Generate the four EEG derivations (uV) at ``sf`` Hz.

    Parameters
    ----------
    tl : Timeline
        The night.
    rng : numpy.random.Generator
        Source of randomness.
    p : EEGParams
        Subject parameters.
    sf : float
        Sampling rate, in Hz.
    arousal : ndarray, shape (n_ctrl,)
        Arousal intensity (0-1) on the control grid.
    eyes_closed : ndarray, shape (n_ctrl,)
        1 while the eyes are closed (matters in wake: alpha).
    rem_phasic : ndarray, shape (n_ctrl,)
        1 during phasic REM (sawtooth waves cluster with eye movements).
    arousal_onsets : list of float
        Arousal onsets, some of which evoke a K-complex in N2.

    Returns
    -------
    EEGResult
        Signals and the generated spindles and K-complexes.
    """
    n = tl.n_samples(sf)
    nyq = sf / 2.0
    env = envelopes(tl, rng, p, arousal=arousal, eyes_closed=eyes_closed)
    psds: dict[str, Callable[[FloatArray], FloatArray]] = {
        "aperiodic": aperiodic_psd(p.aperiodic_exponent),
        "delta": _delta_psd,
        "theta": gaussian_band(5.5, 1.1),
        "alpha": gaussian_band(p.alpha_hz, 0.45),
        "beta": gaussian_band(20.0, 5.0),
        "sigma": gaussian_band(p.spindle_hz, 1.2),
        "muscle": _band_psd(20.0, 0.9 * nyq),
    }
    f32 = np.float32
    out = np.zeros((len(EEG_CHANNELS), n), dtype=f32)
    for name, psd in psds.items():
        src = colored_noise(n, sf, psd, rng, dtype=f32)
        if name == "delta":
            # slow oscillations are asymmetric: sharp, deep negative down-states and broader,
            # flatter positive up-states (x - c x^2 deepens troughs and flattens crests)
            src -= f32(SLOW_WAVE_ASYMMETRY) * (src * src - f32(1.0))
        src *= tl.to_rate(env[name], sf, f32)
        for c, g in enumerate(GAINS[name]):
            out[c] += f32(g) * src
    src = colored_noise(n, sf, psds["aperiodic"], rng, dtype=f32)
    src *= tl.to_rate(0.45 * env["aperiodic"], sf, f32)
    for c in range(len(EEG_CHANNELS)):
        out[c] += shifted(src, c + 1, len(EEG_CHANNELS) + 1)
    res = EEGResult(signals={})
    _add_spindles(tl, rng, p, out, sf, arousal, res)
    _add_kcomplexes(tl, rng, p, out, sf, arousal, arousal_onsets, res)
    _add_vertex_waves(tl, rng, p, out, sf)
    _add_sawtooth(tl, rng, p, out, sf, rem_phasic)
    res.signals = {ch: out[i].astype(np.float64) for i, ch in enumerate(EEG_CHANNELS)}
    return res


def _poisson_times(
    tl: Timeline, rng: np.random.Generator, rate_per_min: FloatArray, refractory_s: float
) -> list[float]:
    """Event times from a control-grid rate (events/min), with a refractory period."""
    p = np.clip(rate_per_min / 60.0 / CTRL_SF, 0.0, 1.0)
    idx = np.flatnonzero(rng.random(len(p)) < p)
    times: list[float] = []
    for t in (idx + rng.random(len(idx))) / CTRL_SF:
        if not times or t - times[-1] >= refractory_s:
            times.append(float(t))
    return times


def spindle_wave(sf: float, dur: float, freq: float, peak: float, phase: float) -> FloatArray:
    """A waxing-waning spindle of ``dur`` s whose envelope is non-zero over exactly ``dur``."""
    m = max(int(round(dur * sf)), 2)
    u = (np.arange(m) + 0.5) / m
    env = np.sin(np.pi * u) ** 0.8
    inst_f = freq + 0.4 * (0.5 - u)  # slight deceleration, as in real spindles
    ph = 2 * np.pi * np.cumsum(inst_f) / sf + phase
    return np.asarray(peak * env * np.sin(ph))


def _add_at(
    out: NDArray[np.float32], sf: float, t0: float, wave: FloatArray, gains: FloatArray
) -> None:
    i0 = int(round(t0 * sf))
    i1 = min(i0 + len(wave), out.shape[1])
    if i0 < 0 or i1 <= i0:
        return
    out[:, i0:i1] += gains[:, None] * wave[None, : i1 - i0]


def _add_spindles(
    tl: Timeline,
    rng: np.random.Generator,
    p: EEGParams,
    out: NDArray[np.float32],
    sf: float,
    arousal: FloatArray,
    res: EEGResult,
    extra: list[float] | None = None,
) -> None:
    rate = p.spindle_density * tl.stage_mix((0.0, 0.0, 1.0, 0.45, 0.0)) * (1 - arousal)
    rate = np.where(np.isin(tl.stage_ctrl, (2, 3)), rate, 0.0)
    times = _poisson_times(tl, rng, rate, 3.0) + list(extra or [])
    g0 = np.asarray(GAINS["spindle"])
    for t0 in times:
        dur = float(np.clip(0.8 * np.exp(0.3 * rng.standard_normal()), 0.5, 2.0))
        if t0 + dur >= tl.duration_s - 1 or tl.stage_at(t0) not in (2, 3):
            continue
        freq = float(np.clip(p.spindle_hz + 0.5 * rng.standard_normal(), 11.0, 15.8))
        peak = float(np.clip(12.0 * np.exp(0.35 * rng.standard_normal()), 5.0, 50.0))
        peak *= p.amplitude_scale
        wave = spindle_wave(sf, dur, freq, peak, float(rng.uniform(0, 2 * np.pi)))
        # slower spindles are more frontal, faster ones more central-parietal
        gains = g0 * (1 + 0.15 * rng.standard_normal(len(g0)))
        gains[0] *= 1.25 if freq < 12.5 else 0.9
        _add_at(out, sf, t0, wave, np.abs(gains))
        res.spindles.append((round(t0 * sf) / sf, len(wave) / sf, freq, peak))


def kcomplex_wave(sf: float, scale_t: float, pp_uv: float) -> FloatArray:
    """K-complex: small P200, large negative N550, positive P900 (about 1.2 s * scale_t)."""
    t = np.arange(0, 1.3 * scale_t, 1.0 / sf) / scale_t
    w = (
        0.15 * np.exp(-0.5 * ((t - 0.15) / 0.04) ** 2)
        - 1.0 * np.exp(-0.5 * ((t - 0.45) / 0.11) ** 2)
        + 0.5 * np.exp(-0.5 * ((t - 0.85) / 0.16) ** 2)
    )
    return np.asarray(w / (w.max() - w.min()) * pp_uv)


def _add_kcomplexes(
    tl: Timeline,
    rng: np.random.Generator,
    p: EEGParams,
    out: NDArray[np.float32],
    sf: float,
    arousal: FloatArray,
    arousal_onsets: list[float],
    res: EEGResult,
) -> None:
    rate = p.kc_density * tl.weights[2] * (1 - arousal)
    rate = np.where(tl.stage_ctrl == 2, rate, 0.0)
    times = _poisson_times(tl, rng, rate, 5.0)
    times += [t - 0.5 for t in arousal_onsets if tl.stage_at(t) == 2 and rng.random() < 0.3]
    g0 = np.asarray(GAINS["kcomplex"])
    follow: list[float] = []
    for t0 in sorted(times):
        s = float(rng.uniform(0.85, 1.2))
        if t0 < 1 or t0 + 1.5 * s >= tl.duration_s - 1:
            continue
        pp = float(np.clip(120.0 * np.exp(0.25 * rng.standard_normal()), 75.0, 250.0))
        wave = kcomplex_wave(sf, s, pp * p.amplitude_scale * p.slow_wave_scale)
        _add_at(out, sf, t0, wave, g0 * (1 + 0.08 * rng.standard_normal(len(g0))))
        # annotate from the start of the negative wave (~0.25 s) to the end of the P900
        res.kcomplexes.append((t0 + 0.25 * s, 0.95 * s))
        if rng.random() < 0.4:
            follow.append(t0 + 0.9 * s + float(rng.uniform(0.0, 0.4)))
    if follow:
        zero = np.zeros_like(arousal)
        _add_spindles(
            tl,
            rng,
            EEGParams(**{**p.__dict__, "spindle_density": 0.0}),
            out,
            sf,
            zero,
            res,
            extra=follow,
        )
        res.spindles.sort()


def _add_vertex_waves(
    tl: Timeline, rng: np.random.Generator, p: EEGParams, out: NDArray[np.float32], sf: float
) -> None:
    rate = np.where(tl.stage_ctrl == 1, 4.0 * tl.weights[1], 0.0)
    g0 = np.asarray(GAINS["vertex"])
    t = np.arange(0, 0.4, 1.0 / sf)
    for t0 in _poisson_times(tl, rng, rate, 2.0):
        amp = float(rng.uniform(40.0, 90.0)) * p.amplitude_scale
        wave = -amp * np.exp(-0.5 * ((t - 0.2) / 0.045) ** 2) + 0.25 * amp * np.exp(
            -0.5 * ((t - 0.32) / 0.05) ** 2
        )
        _add_at(out, sf, t0, wave, g0)


def _add_sawtooth(
    tl: Timeline,
    rng: np.random.Generator,
    p: EEGParams,
    out: NDArray[np.float32],
    sf: float,
    rem_phasic: FloatArray,
) -> None:
    rate = np.where(tl.stage_ctrl == 4, 0.5 + 2.0 * rem_phasic, 0.0)
    g0 = np.asarray(GAINS["sawtooth"])
    for t0 in _poisson_times(tl, rng, rate, 8.0):
        dur = float(rng.uniform(1.5, 5.0))
        freq = float(rng.uniform(2.0, 4.0))
        amp = float(rng.uniform(10.0, 22.0)) * p.amplitude_scale
        t = np.arange(0, dur, 1.0 / sf)
        frac = (t * freq) % 1.0
        saw = np.where(frac < 0.75, frac / 0.75, (1 - frac) / 0.25) * 2 - 1
        wave = amp * saw * np.sin(np.pi * t / dur) ** 0.5
        _add_at(out, sf, t0, wave, g0)
