"""Breathing (airflow, thoracic and abdominal effort), SpO2 and ECG of a synthetic night.

Breathing is a phase oscillator (12-18 breaths/min, slower and more regular in N3, irregular in
W and REM). Respiratory events scale the airflow and effort amplitudes on the control grid:

- central apnea: airflow and effort both stop;
- obstructive apnea: airflow stops, effort continues and grows, thorax and abdomen drift out of
  phase (paradoxical breathing, up to about 160 degrees);
- mixed apnea: central first (~40 %), then obstructive;
- hypopnea: airflow falls by 40-70 %, effort by ~25 %, slight paradox;
- in obstructive events the remaining inspiratory flow is flat-topped (flow limitation).

Each event is followed by a few large recovery breaths. SpO2 falls after a circulation delay
(the fall starts 6-12 s after the event onset and the nadir comes 12-22 s after the event ends),
then recovers within ~15 s. The ECG is built from a PQRST template placed at beat times that
follow an instantaneous heart rate with stage effects, respiratory sinus arrhythmia, cyclic
bradycardia/tachycardia around apneas and a brief rise at each arousal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sleeplm_core.synth.events import RespEvent
from sleeplm_core.synth.timeline import CTRL_SF, FloatArray, Timeline, place_pulses, slow_lognormal

INSP_FRACTION = 0.42
"""Fraction of a breath cycle spent in inspiration."""


@dataclass
class Breathing:
    """Control-grid state of breathing.

    Attributes
    ----------
    phase : ndarray, shape (n_ctrl,)
        Cumulative breath phase, in cycles.
    flow_amp, effort_amp : ndarray, shape (n_ctrl,)
        Amplitude of airflow and of thoracic effort (1 = normal tidal breathing).
    paradox : ndarray, shape (n_ctrl,)
        Phase lag of the abdomen behind the thorax, in cycles (0.5 = fully paradoxical).
    abdo_amp : ndarray, shape (n_ctrl,)
        Amplitude of abdominal effort.
    flatten : ndarray, shape (n_ctrl,)
        Inspiratory flow limitation (0 round, 1 fully flat-topped), in obstructive events.
    """

    phase: FloatArray
    flow_amp: FloatArray
    effort_amp: FloatArray
    abdo_amp: FloatArray
    paradox: FloatArray
    flatten: FloatArray


def _ramp_window(n_ctrl: int, a_s: float, b_s: float, ramp_s: float) -> tuple[slice, FloatArray]:
    """A window that is 1 on [a, b] with cosine ramps of ``ramp_s``, as (slice, values)."""
    i0 = max(int((a_s - ramp_s) * CTRL_SF), 0)
    i1 = min(int((b_s + ramp_s) * CTRL_SF) + 1, n_ctrl)
    t = np.arange(i0, i1) / CTRL_SF
    up = np.clip((t - (a_s - ramp_s)) / ramp_s, 0, 1)
    down = np.clip(((b_s + ramp_s) - t) / ramp_s, 0, 1)
    w = 0.5 - 0.5 * np.cos(np.pi * np.minimum(up, down))
    return slice(i0, i1), w


def simulate_breathing(
    tl: Timeline,
    rng: np.random.Generator,
    events: list[RespEvent],
    arousals: list[tuple[float, float]],
    *,
    rate_bpm: float,
) -> Breathing:
    """Breathing rate, amplitude and thoraco-abdominal phase on the control grid."""
    n = tl.n_ctrl
    irregular = tl.stage_mix((1.0, 0.4, 0.15, 0.05, 1.0))
    rate = rate_bpm * tl.stage_mix((1.04, 1.0, 0.97, 0.94, 1.06))
    rate *= slow_lognormal(n, 90.0, 0.06, rng) * slow_lognormal(n, 6.0, 0.10, rng) ** irregular
    amp = tl.stage_mix((1.0, 0.95, 0.9, 0.92, 0.85)) * slow_lognormal(n, 40.0, 0.1, rng)
    amp *= slow_lognormal(n, 5.0, 0.18, rng) ** irregular
    flow = amp.copy()
    effort = amp.copy()
    abdo = amp * float(rng.uniform(0.7, 1.2))
    paradox = np.zeros(n)
    flatten = np.zeros(n)
    for ev in events:
        sl, w = _ramp_window(n, ev.onset_s, ev.end_s, 2.0)
        t = np.arange(sl.start, sl.stop) / CTRL_SF
        prog = np.clip((t - ev.onset_s) / ev.duration_s, 0, 1)
        # scale the event against the breathing just before it, so that the reduction holds
        # against the pre-event baseline whatever the spontaneous amplitude drift does
        j = int(ev.onset_s * CTRL_SF)
        pre = slice(max(j - int(30 * CTRL_SF), 0), max(j, 1))
        flow[sl] = flow[sl] * (1 - w) + w * ev.flow_fraction * float(np.mean(flow[pre]))
        if ev.kind == "central":
            eff, par = np.full_like(w, 0.03), np.zeros_like(w)
        elif ev.kind == "hypopnea":
            eff, par = np.full_like(w, 0.75), np.full_like(w, 0.12)
        else:
            eff, par = 0.8 + 0.5 * prog, 0.1 + 0.35 * prog
            if ev.kind == "mixed":
                central = prog < 0.4
                eff = np.where(central, 0.03, 0.8 + 0.5 * (prog - 0.4) / 0.6)
                par = np.where(central, 0.0, 0.1 + 0.35 * (prog - 0.4) / 0.6)
        effort[sl] = effort[sl] * (1 - w) + w * eff * float(np.mean(effort[pre]))
        abdo[sl] = abdo[sl] * (1 - w) + w * eff * float(np.mean(abdo[pre]))
        paradox[sl] = np.maximum(paradox[sl], w * par)
        if ev.kind != "central":  # a narrowed upper airway flattens the inspiratory flow
            flatten[sl] = np.maximum(flatten[sl], 0.8 * w)
        # recovery breaths: large and fast after the event ends
        j0 = int(ev.end_s * CTRL_SF)
        j1 = min(j0 + int(20 * CTRL_SF), n)
        k = np.arange(j1 - j0) / CTRL_SF
        boost = 1.4 * (1 - np.exp(-k / 1.0)) * np.exp(-k / 6.0)
        for arr in (flow, effort, abdo):
            arr[j0:j1] *= 1 + boost
        rate[j0:j1] *= 1 + 0.25 * boost
    for onset, dur in arousals:
        sl, w = _ramp_window(n, onset, onset + dur, 1.5)
        for arr in (flow, effort, abdo):
            arr[sl] *= 1 + 0.3 * w
    phase = np.cumsum(rate / 60.0 / CTRL_SF)
    return Breathing(phase, flow, effort, abdo, paradox, flatten)


_P_GRID = np.linspace(0.2, 1.0, 33)
_P_MEAN = np.array([np.mean(np.sin(np.pi * (np.arange(400) + 0.5) / 400) ** p) for p in _P_GRID])


def _breath_flow(frac: FloatArray, flatten: FloatArray | float = 0.0) -> FloatArray:
    """Airflow waveform over one cycle (positive = inspiration), zero net volume.

    ``flatten`` (0-1) turns the inspiratory half-sine into a plateau of the same volume, the
    shape of inspiratory flow limitation.
    """
    ti = INSP_FRACTION
    p = 1.0 - 0.8 * np.asarray(flatten)
    insp = np.sin(np.pi * np.minimum(frac, ti) / ti) ** p * (
        (2 / np.pi) / np.interp(p, _P_GRID, _P_MEAN)
    )
    expi = -np.sin(np.pi * (np.maximum(frac, ti) - ti) / (1 - ti)) * ti / (1 - ti)
    return np.where(frac < ti, insp, expi)


def _breath_volume(frac: FloatArray) -> FloatArray:
    """Lung-volume waveform over one cycle, 0 at end-expiration and 1 at end-inspiration."""
    ti = INSP_FRACTION
    up = 0.5 - 0.5 * np.cos(np.pi * np.minimum(frac, ti) / ti)
    down = 0.5 + 0.5 * np.cos(np.pi * (np.maximum(frac, ti) - ti) / (1 - ti))
    return np.where(frac < ti, up, down)


def respiratory_signals(
    tl: Timeline, rng: np.random.Generator, br: Breathing, *, sf: float
) -> dict[str, FloatArray]:
    """Render airflow, thoracic and abdominal effort at ``sf`` Hz (arbitrary units, ~±1)."""
    phase = tl.to_rate(br.phase, sf)
    n = len(phase)
    flow = tl.to_rate(br.flow_amp, sf) * _breath_flow(phase % 1.0, tl.to_rate(br.flatten, sf))
    vol_t = _breath_volume(phase % 1.0) - 0.5
    ph_ab = phase - tl.to_rate(br.paradox, sf)
    vol_a = _breath_volume(ph_ab % 1.0) - 0.5
    thor = tl.to_rate(br.effort_amp, sf) * vol_t
    abdo = tl.to_rate(br.abdo_amp, sf) * vol_a
    drift = slow_lognormal(tl.n_ctrl, 30.0, 1.0, rng)
    drift = tl.to_rate(np.log(drift) * 0.05, sf)
    return {
        "Airflow": flow + 0.02 * rng.standard_normal(n),
        "Thor": thor + drift + 0.01 * rng.standard_normal(n),
        "Abdo": abdo - 0.5 * drift + 0.01 * rng.standard_normal(n),
    }


def simulate_spo2(
    tl: Timeline,
    rng: np.random.Generator,
    events: list[RespEvent],
    *,
    baseline: float,
    sf: float,
) -> tuple[FloatArray, list[tuple[float, float, float, float]]]:
    """SpO2 (%) at ``sf`` Hz, quantized to 1 % like an oximeter, and its desaturations.

    Returns
    -------
    spo2 : ndarray, shape (n_samples,)
        Saturation in %.
    desats : list of (onset_s, duration_s, baseline_pct, nadir_pct)
        Falls of >= 3 %: from the start of the fall to the nadir.
    """
    n = tl.n_ctrl
    t = tl.t_ctrl
    drop = np.zeros(n)
    plan: list[tuple[float, float]] = []
    for ev in events:
        start = ev.onset_s + float(rng.uniform(6.0, 12.0))
        nadir = ev.end_s + float(rng.uniform(12.0, 22.0))
        tau = float(rng.uniform(4.0, 7.0))
        i0, i1 = int(start * CTRL_SF), min(int((nadir + 6 * tau) * CTRL_SF), n)
        if i0 >= n:
            continue
        tt = t[i0:i1]
        fall = ev.desat_pct * (
            0.5 - 0.5 * np.cos(np.pi * np.clip((tt - start) / (nadir - start), 0, 1))
        )
        rec = ev.desat_pct * np.exp(-np.maximum(tt - nadir, 0) / tau)
        drop[i0:i1] = np.maximum(drop[i0:i1], np.where(tt < nadir, fall, rec))
        plan.append((start, nadir))
    base = baseline - 0.6 * tl.weights[4] + np.log(slow_lognormal(n, 120.0, 1.0, rng)) * 0.4
    fine = np.log(slow_lognormal(n, 3.0, 1.0, rng)) * 0.25
    sat = np.clip(np.round(base - drop + fine), 50, 100)
    desats: list[tuple[float, float, float, float]] = []
    for start, nadir in plan:
        i0 = int(start * CTRL_SF)
        pre = sat[max(i0 - int(10 * CTRL_SF), 0) : i0 + 1]
        win = sat[i0 : min(int((nadir + 4) * CTRL_SF), n)]
        if len(pre) == 0 or len(win) == 0:
            continue
        b = float(np.median(pre))
        k = int(np.argmin(win))
        if b - float(win[k]) >= 3.0:
            desats.append((start, max(k / CTRL_SF, 1.0), b, float(win[k])))
    out = np.round(tl.to_rate(sat, sf))
    return out, desats


def heart_rate(
    tl: Timeline,
    rng: np.random.Generator,
    br: Breathing,
    events: list[RespEvent],
    arousals: list[tuple[float, float]],
    *,
    hr_base: float,
    rsa_bpm: float,
) -> FloatArray:
    """Instantaneous heart rate (beats/min) on the control grid."""
    n = tl.n_ctrl
    hr: FloatArray = hr_base * tl.stage_mix((1.0, 0.96, 0.93, 0.9, 0.97))
    hr = hr + 2.0 * np.log(slow_lognormal(n, 25.0, 1.0, rng))
    hr = hr + 4.0 * tl.weights[4] * np.log(slow_lognormal(n, 8.0, 1.0, rng))
    hr = hr + 2.5 * tl.weights[0] * np.log(slow_lognormal(n, 10.0, 1.0, rng))
    rsa = rsa_bpm * (0.6 + 0.4 * tl.stage_mix((0.6, 0.8, 1.0, 1.1, 0.7)))
    hr = hr + rsa * np.sin(2 * np.pi * (br.phase - 0.15))
    t = tl.t_ctrl
    for ev in events:
        sl, w = _ramp_window(n, ev.onset_s + 3, ev.end_s, 3.0)
        hr[sl] -= 4.0 * w  # bradycardia during the event
        j0 = int(ev.end_s * CTRL_SF)
        j1 = min(j0 + int(25 * CTRL_SF), n)
        tt = t[j0:j1] - ev.end_s
        hr[j0:j1] += 6.0 * (1 - np.exp(-tt / 2.0)) * np.exp(-tt / 8.0)
    for onset, dur in arousals:
        j0 = int(onset * CTRL_SF)
        j1 = min(j0 + int((dur + 25) * CTRL_SF), n)
        tt = t[j0:j1] - onset
        gain = float(rng.uniform(6.0, 14.0))
        hr[j0:j1] += gain * (1 - np.exp(-tt / 2.5)) * np.exp(-np.maximum(tt - dur, 0) / 7.0)
    return np.clip(hr, 35.0, 160.0)


def beat_times(tl: Timeline, hr: FloatArray, rng: np.random.Generator) -> FloatArray:
    """R-peak times (s) from the heart-rate series, with a little beat-to-beat jitter."""
    cum = np.concatenate([[0.0], np.cumsum(hr / 60.0 / CTRL_SF)])
    tt = np.arange(len(cum)) / CTRL_SF
    k = np.arange(np.ceil(cum[0] + rng.random()), np.floor(cum[-1]))
    beats = np.interp(k, cum, tt) + 0.004 * rng.standard_normal(len(k))
    return np.sort(beats[(beats > 0.4) & (beats < tl.duration_s - 0.6)])


def ecg_template(sf: float, scale: float) -> tuple[FloatArray, float]:
    """PQRST beat (mV) as a sum of Gaussians, and the R-peak offset from its start (s)."""
    t = np.arange(-0.3, 0.55, 1.0 / sf)
    waves = (  # (time of peak s, amplitude mV, width s)
        (-0.18, 0.12, 0.025),
        (-0.035, -0.12, 0.008),
        (0.0, 1.1, 0.010),
        (0.032, -0.28, 0.010),
        (0.27, 0.30, 0.045),
    )
    beat = sum(a * np.exp(-0.5 * ((t - mu) / s) ** 2) for mu, a, s in waves)
    return np.asarray(beat) * scale, 0.3


def ecg_signal(
    tl: Timeline,
    rng: np.random.Generator,
    beats: FloatArray,
    br: Breathing,
    *,
    sf: float,
    scale: float,
) -> FloatArray:
    """Render the ECG (mV) at ``sf`` Hz from beat times, with respiratory modulation and noise."""
    n = tl.n_samples(sf)
    kernel, offset = ecg_template(sf, scale)
    resp_ctrl = np.sin(2 * np.pi * br.phase)
    resp_at_beat = np.interp(beats * CTRL_SF, np.arange(tl.n_ctrl), resp_ctrl)
    weights = (1 + 0.08 * resp_at_beat) * (1 + 0.02 * rng.standard_normal(len(beats)))
    ecg = place_pulses(n, sf, beats - offset, weights, kernel)
    wander = tl.to_rate(
        0.05 * scale * resp_ctrl + 0.05 * np.log(slow_lognormal(tl.n_ctrl, 20.0, 1.0, rng)), sf
    )
    return ecg + wander + 0.01 * rng.standard_normal(n)
