"""Signal features per 30 s epoch, measured on the 64 Hz canonical night.

Every function here is a pure function of numpy arrays. Input is the whole night in the
canonical layout (:data:`~sleeplm_core.io.channels.CANONICAL_SLOTS`, physical units: uV for
EEG/EOG/EMG, % for SpO2), because some features are relative to the night (chin tone, airflow
amplitude) and some detectors need the neighbouring epochs (R peaks, breaths).

The result is one flat ``dict[str, float]`` per epoch; a key is present only when its slot is
present and the feature could be measured. Keys:

==========================  =====  ==================================================
key                          unit   meaning
==========================  =====  ==================================================
``<site>.<band>_pct``       %      relative power (0.5-30 Hz total), site C3_M2/C4_M1,
                                   band delta/theta/alpha/sigma/beta
``spindles``                count  sigma bursts of 0.5-2 s on the first central site
``k_complexes``             count  isolated large (>= 75 uV) slow waves
``slow_wave_pct``           %      share of the epoch covered by >= 75 uV 0.5-2 Hz waves
``rapid_eye_movements``     count  fast EOG deflections
``slow_eye_movements``      0/1    slow rolling EOG drift
``hr_bpm`` ``rmssd_ms``     bpm/ms from R peaks (``hr_change_bpm``: vs preceding 5 min)
``resp_rate``               /min   breaths a minute (airflow, else belts)
``breath_cv``               ratio  variation of breath intervals (regularity)
``flow_amp_pct``            %      0.1-1 Hz RMS, % of the night's median epoch
``flattening_pct``          %      breaths with a flattened inspiratory lobe
``spo2_mean`` ``spo2_min``  %      SpO2 level; ``spo2_trend`` last minus first 5 s
``emg_rel_pct``             %      chin EMG RMS, % of the night's median epoch
``twitches``                count  short chin EMG bursts
``leg_movements``           count  leg EMG bursts of 0.5-10 s
``position``                code   median body-position code (coded channels only)
==========================  =====  ==================================================
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal as sps
from scipy.ndimage import median_filter

from sleeplm_core.io.channels import CANONICAL_SF, CANONICAL_SLOTS
from sleeplm_core.stages import EPOCH_S

FloatArray = NDArray[np.floating]
EpochFeatures = dict[str, float]

SLOT = {name: i for i, name in enumerate(CANONICAL_SLOTS)}
BANDS: dict[str, tuple[float, float]] = {
    "delta": (0.5, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 12.0),
    "sigma": (12.0, 16.0),
    "beta": (16.0, 30.0),
}
EEG_SITES: tuple[str, ...] = ("C3_M2", "C4_M1")
HR_REFERENCE_EPOCHS = 10
"""Heart-rate rises and falls are stated against the preceding 10 epochs (5 min)."""


def _sos(sf: float, low: float | None, high: float | None, order: int = 3) -> NDArray[np.float64]:
    nyq = sf / 2.0
    sos: NDArray[np.float64]  # scipy.signal is untyped; butter(..., output="sos") is float64
    if low is not None and high is not None:
        sos = sps.butter(order, [low / nyq, min(high / nyq, 0.99)], "bandpass", output="sos")
    elif low is not None:
        sos = sps.butter(order, low / nyq, "highpass", output="sos")
    else:
        assert high is not None
        sos = sps.butter(order, min(high / nyq, 0.99), "lowpass", output="sos")
    return sos


def bandfilter(
    x: FloatArray, sf: float, low: float | None, high: float | None, order: int = 3
) -> NDArray[np.float64]:
    """Zero-phase Butterworth filter (band-, high- or low-pass); returns float64."""
    x64 = np.asarray(x, dtype=np.float64)
    if x64.size < 64:
        return x64 - x64.mean() if x64.size else x64
    return np.asarray(sps.sosfiltfilt(_sos(sf, low, high, order), x64), dtype=np.float64)


def moving_rms(x: FloatArray, n: int) -> NDArray[np.float64]:
    """Centered moving RMS over ``n`` samples."""
    kernel = np.ones(max(1, n)) / max(1, n)
    return np.sqrt(np.convolve(np.asarray(x, np.float64) ** 2, kernel, mode="same"))


def runs(flags: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Return ``(start, stop)`` sample pairs of the True runs of ``flags``, shape (n, 2)."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return edges.reshape(-1, 2).astype(np.int64)


def _per_epoch_counts(onsets: NDArray[np.int64], spe: int, n_epochs: int) -> NDArray[np.int64]:
    idx = onsets // spe
    idx = idx[(idx >= 0) & (idx < n_epochs)]
    return np.bincount(idx, minlength=n_epochs).astype(np.int64)


# --- brain ------------------------------------------------------------------------------------


def band_powers(epochs: FloatArray, sf: float) -> dict[str, NDArray[np.float64]]:
    """Relative band powers in % of 0.5-30 Hz power, for each row of ``epochs`` (n, samples)."""
    freqs, psd = sps.welch(epochs, fs=sf, nperseg=min(int(4 * sf), epochs.shape[-1]), axis=-1)
    total_sel = (freqs >= 0.5) & (freqs < 30.0)
    total = psd[:, total_sel].sum(axis=1)
    total = np.where(total > 0, total, np.nan)
    out: dict[str, NDArray[np.float64]] = {}
    for band, (lo, hi) in BANDS.items():
        sel = (freqs >= lo) & (freqs < hi)
        out[band] = 100.0 * psd[:, sel].sum(axis=1) / total
    return out


def detect_spindles(eeg: FloatArray, sf: float) -> NDArray[np.int64]:
    """Spindle ``(start, stop)`` samples: sigma bursts of 0.5-2 s standing out of the night.

    A burst is where the 11-16 Hz RMS exceeds twice its night median and carries at least
    20 % of the 1-30 Hz power (the relative-power criterion of YASA's detector).
    """
    sigma = moving_rms(bandfilter(eeg, sf, 11.0, 16.0, order=4), int(0.3 * sf))
    broad = moving_rms(bandfilter(eeg, sf, 1.0, 30.0), int(0.3 * sf))
    ref = float(np.median(sigma[sigma > 0])) if np.any(sigma > 0) else 0.0
    if ref <= 0:
        return np.zeros((0, 2), np.int64)
    ratio = sigma**2 / np.maximum(broad**2, 1e-12)
    bursts = runs((sigma > 2.0 * ref) & (ratio > 0.2))
    dur = (bursts[:, 1] - bursts[:, 0]) / sf
    return bursts[(dur >= 0.5) & (dur <= 2.0)]


def slow_waves(eeg: FloatArray, sf: float) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Large 0.5-2 Hz waves (>= 75 uV peak to peak, AASM).

    Returns
    -------
    waves : ndarray of int, shape (n, 2)
        ``(start, stop)`` samples of each qualifying wave (negative half first).
    isolated : ndarray of bool, shape (n,)
        True for waves whose neighbouring waves do not qualify (K-complex candidates).
    """
    x = bandfilter(eeg, sf, 0.3, 2.0)
    down = np.flatnonzero((x[:-1] >= 0) & (x[1:] < 0))
    if down.size < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0, bool)
    starts, stops = down[:-1], down[1:]
    dur = (stops - starts) / sf
    cum_max = np.maximum.reduceat(x, starts)[: starts.size]
    cum_min = np.minimum.reduceat(x, starts)[: starts.size]
    ok = (dur >= 0.5) & (dur <= 2.0) & ((cum_max - cum_min) >= 75.0)
    prev_ok = np.concatenate([[False], ok[:-1]])
    next_ok = np.concatenate([ok[1:], [False]])
    isolated = ok & ~prev_ok & ~next_ok
    waves = np.stack([starts, stops], axis=1)[ok].astype(np.int64)
    return waves, isolated[ok]


def eye_movements(
    eog: FloatArray, sf: float, spe: int, n_epochs: int
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Rapid eye movements per epoch and a slow-eye-movement flag per epoch.

    Parameters
    ----------
    eog : ndarray
        One EOG derivation in uV (the left-minus-right difference when both exist, so that
        conjugate eye movements add and frontal EEG cancels).
    sf : float
        Sampling rate in Hz.
    spe : int
        Samples per epoch.
    n_epochs : int
        Number of epochs.

    Returns
    -------
    rapid : ndarray of int, shape (n_epochs,)
        Deflections steeper than 400 uV/s with at least 40 uV amplitude.
    slow : ndarray of bool, shape (n_epochs,)
        Epochs with >= 80 uV of < 0.5 Hz drift and no rapid movement.
    """
    fast = bandfilter(eog, sf, 0.3, 5.0)
    slope = np.abs(np.gradient(fast) * sf)
    peaks, _ = sps.find_peaks(slope, height=400.0, distance=max(1, int(0.5 * sf)))
    half = int(0.25 * sf)
    amp = np.array([np.ptp(fast[max(0, p - half) : p + half]) for p in peaks], dtype=np.float64)
    peaks = peaks[amp >= 40.0] if peaks.size else peaks
    rapid = _per_epoch_counts(peaks.astype(np.int64), spe, n_epochs)
    slow_sig = bandfilter(eog, sf, None, 0.5)[: n_epochs * spe].reshape(n_epochs, spe)
    slow = (np.ptp(slow_sig, axis=1) >= 80.0) & (rapid == 0)
    return rapid, slow


# --- heart ------------------------------------------------------------------------------------


def detect_r_peaks(ecg: FloatArray, sf: float) -> NDArray[np.float64]:
    """R-peak times in samples (sub-sample, parabolic refinement) on a low-rate ECG.

    A Pan-Tompkins-like energy detector: 5-25 Hz band-pass, squared, smoothed over 0.1 s,
    peaks at least 0.3 s apart above 30 % of the local (10 s median of 2 s maxima) peak level,
    each then placed on the largest absolute deflection of the high-passed ECG within 60 ms.
    Robust to polarity and to isolated artefacts.
    """
    x = np.asarray(ecg, np.float64)
    if x.size < int(5 * sf) or not np.any(x != x[0]):
        return np.zeros(0, np.float64)
    hp = bandfilter(x, sf, 1.0, None)
    band = bandfilter(x, sf, 5.0, min(25.0, 0.45 * sf))
    energy = np.convolve(band**2, np.ones(int(0.1 * sf)) / int(0.1 * sf), mode="same")
    blk = int(2 * sf)
    n_blk = max(1, energy.size // blk)
    block_max = energy[: n_blk * blk].reshape(n_blk, blk).max(axis=1)
    level = median_filter(block_max, size=5, mode="nearest")
    thr = np.repeat(0.3 * level, blk)
    thr = np.concatenate([thr, np.full(energy.size - thr.size, thr[-1])])
    cand, _ = sps.find_peaks(energy, height=thr, distance=max(1, int(0.3 * sf)))
    w = max(1, int(0.06 * sf))
    out = np.empty(cand.size, np.float64)
    for k, c in enumerate(cand):
        lo, hi = max(1, c - w), min(hp.size - 1, c + w + 1)
        i = lo + int(np.argmax(np.abs(hp[lo:hi])))
        i = min(max(i, 1), hp.size - 2)
        y0, y1, y2 = np.abs(hp[i - 1 : i + 2])
        den = y0 - 2 * y1 + y2
        out[k] = i + (0.5 * (y0 - y2) / den if den != 0 else 0.0)
    return np.unique(out)


def heart_features(
    peaks: NDArray[np.float64], sf: float, n_epochs: int, spe: int
) -> list[EpochFeatures]:
    """Heart rate, RMSSD and the change against the preceding 5 min, per epoch.

    Beats are used when their RR interval lies in 0.3-2.0 s and within 30 % of the epoch's
    median RR; an epoch needs ten such intervals.
    """
    out: list[EpochFeatures] = [{} for _ in range(n_epochs)]
    if peaks.size < 3:
        return out
    rr = np.diff(peaks) / sf
    at = peaks[1:]
    epoch_of = (at // spe).astype(np.int64)
    for e in range(n_epochs):
        r = rr[epoch_of == e]
        r = r[(r >= 0.3) & (r <= 2.0)]
        if r.size < 10:
            continue
        r = r[np.abs(r - np.median(r)) <= 0.3 * np.median(r)]
        if r.size < 10:
            continue
        out[e]["hr_bpm"] = float(60.0 / r.mean())
        out[e]["rmssd_ms"] = float(1000.0 * np.sqrt(np.mean(np.diff(r) ** 2)))
    for e in range(n_epochs):
        if "hr_bpm" not in out[e]:
            continue
        window = range(max(0, e - HR_REFERENCE_EPOCHS), e)
        ref = [out[k]["hr_bpm"] for k in window if "hr_bpm" in out[k]]
        if len(ref) >= HR_REFERENCE_EPOCHS // 2:
            out[e]["hr_change_bpm"] = out[e]["hr_bpm"] - float(np.mean(ref))
    return out


# --- respiration ------------------------------------------------------------------------------


def detect_breaths(x: FloatArray, sf: float) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Breath peaks (samples) and their prominences on a band-passed flow or effort signal.

    Peaks at least 1.5 s apart whose prominence reaches 25 % of the night's median breath
    prominence. ``x`` is the signal after :func:`bandfilter` to 0.1-1 Hz.
    """
    peaks, props = sps.find_peaks(x, distance=max(1, int(1.5 * sf)), prominence=0.0)
    if peaks.size == 0:
        return peaks.astype(np.int64), np.zeros(0)
    prom = np.asarray(props["prominences"], np.float64)
    keep = prom >= 0.25 * float(np.median(prom))
    return peaks[keep].astype(np.int64), prom[keep]


def flattening(flow: FloatArray, sf: float, peaks: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Flag breaths whose inspiratory lobe is flattened (mean/max above 0.8; a sine gives 0.64)."""
    x = bandfilter(flow, sf, None, 3.0)
    base = np.convolve(x, np.ones(int(10 * sf)) / int(10 * sf), mode="same")
    x = x - base
    above = x > 0
    flags = np.zeros(peaks.size, bool)
    lobes = runs(above)
    if lobes.size == 0:
        return flags
    which = np.searchsorted(lobes[:, 0], peaks, side="right") - 1
    for k, (p, j) in enumerate(zip(peaks, which, strict=True)):
        if j < 0 or not (lobes[j, 0] <= p < lobes[j, 1]):
            continue
        lobe = x[lobes[j, 0] : lobes[j, 1]]
        if lobe.size >= 3 and lobe.max() > 0:
            flags[k] = float(lobe.mean() / lobe.max()) > 0.8
    return flags


def respiratory_features(
    resp: FloatArray | None,
    flow_is_airflow: bool,
    spo2: FloatArray | None,
    sf: float,
    n_epochs: int,
    spe: int,
) -> list[EpochFeatures]:
    """Breathing rate, regularity, amplitude, flattening and SpO2 per epoch.

    Parameters
    ----------
    resp : ndarray or None
        Airflow, or an effort belt when no airflow exists.
    flow_is_airflow : bool
        Whether ``resp`` is airflow (flattening is only measured on airflow).
    spo2 : ndarray or None
        SpO2 in %; samples outside 50-100 % are ignored.
    sf : float
        Sampling rate in Hz.
    n_epochs, spe : int
        Number of epochs and samples per epoch.

    Returns
    -------
    list of dict
        One feature dict per epoch.
    """
    out: list[EpochFeatures] = [{} for _ in range(n_epochs)]
    if resp is not None and np.any(resp != resp[0]):
        x = bandfilter(resp, sf, 0.1, 1.0, order=2)
        peaks, _ = detect_breaths(x, sf)
        flat = flattening(resp, sf, peaks) if flow_is_airflow else None
        rms = np.sqrt(np.mean(x[: n_epochs * spe].reshape(n_epochs, spe) ** 2, axis=1))
        ref = float(np.median(rms))
        epoch_of = peaks // spe
        for e in range(n_epochs):
            sel = np.flatnonzero(epoch_of == e)
            if sel.size >= 3:
                # the first interval runs from the previous epoch's last breath
                iv = np.diff(peaks[max(sel[0] - 1, 0) : sel[-1] + 1] / sf)
                out[e]["resp_rate"] = float(60.0 / iv.mean())
                out[e]["breath_cv"] = float(iv.std() / iv.mean())
            else:
                out[e]["resp_rate"] = float(sel.size * 60.0 / (spe / sf))
            if ref > 0:
                out[e]["flow_amp_pct"] = float(100.0 * rms[e] / ref)
            if flat is not None and sel.size >= 3:
                out[e]["flattening_pct"] = 100.0 * float(flat[sel].mean())
    if spo2 is not None:
        n5 = int(5 * sf)
        for e in range(n_epochs):
            seg = np.asarray(spo2[e * spe : (e + 1) * spe], np.float64)
            ok = (seg >= 50.0) & (seg <= 100.0)
            if ok.sum() < spe // 2:
                continue
            out[e]["spo2_mean"] = float(seg[ok].mean())
            out[e]["spo2_min"] = float(seg[ok].min())
            head, tail = seg[:n5][ok[:n5]], seg[-n5:][ok[-n5:]]
            if head.size and tail.size:
                out[e]["spo2_trend"] = float(tail.mean() - head.mean())
    return out


# --- somatic ----------------------------------------------------------------------------------


def emg_bursts(
    emg: FloatArray, sf: float, factor: float, min_s: float, max_s: float, ref: float | None = None
) -> NDArray[np.int64]:
    """Bursts of a high-passed EMG whose 0.25 s RMS exceeds ``factor`` x the night median RMS."""
    env = moving_rms(bandfilter(emg, sf, 10.0, None), max(1, int(0.25 * sf)))
    level = float(np.median(env)) if ref is None else ref
    if level <= 0:
        return np.zeros((0, 2), np.int64)
    bursts = runs(env > factor * level)
    # merge bursts separated by < 0.5 s (one movement)
    if bursts.shape[0] > 1:
        gap = bursts[1:, 0] - bursts[:-1, 1]
        keep_start = np.concatenate([[True], gap >= int(0.5 * sf)])
        keep_stop = np.concatenate([gap >= int(0.5 * sf), [True]])
        bursts = np.stack([bursts[keep_start, 0], bursts[keep_stop, 1]], axis=1)
    dur = (bursts[:, 1] - bursts[:, 0]) / sf
    return bursts[(dur >= min_s) & (dur <= max_s)]


def somatic_features(
    chin: FloatArray | None,
    leg: FloatArray | None,
    position: FloatArray | None,
    sf: float,
    n_epochs: int,
    spe: int,
) -> list[EpochFeatures]:
    """Chin tone relative to the night, twitches, leg movements and body position per epoch."""
    out: list[EpochFeatures] = [{} for _ in range(n_epochs)]
    if chin is not None and np.any(chin != chin[0]):
        hp = bandfilter(chin, sf, 10.0, None)[: n_epochs * spe].reshape(n_epochs, spe)
        rms = np.sqrt(np.mean(hp**2, axis=1))
        ref = float(np.median(rms[rms > 0])) if np.any(rms > 0) else 0.0
        twitch = _per_epoch_counts(emg_bursts(chin, sf, 4.0, 0.0, 0.5)[:, 0], spe, n_epochs)
        for e in range(n_epochs):
            if ref > 0:
                out[e]["emg_rel_pct"] = float(100.0 * rms[e] / ref)
            out[e]["twitches"] = float(twitch[e])
    if leg is not None and np.any(leg != leg[0]):
        lm = _per_epoch_counts(emg_bursts(leg, sf, 4.0, 0.5, 10.0)[:, 0], spe, n_epochs)
        for e in range(n_epochs):
            out[e]["leg_movements"] = float(lm[e])
    if position is not None:
        pos = np.asarray(position[: n_epochs * spe], np.float64).reshape(n_epochs, spe)
        # only a coded channel (whole numbers) says a position; a raw sensor voltage does not
        coded = np.mean(np.abs(pos - np.round(pos)) < 0.1, axis=1) >= 0.9
        for e in np.flatnonzero(coded).tolist():
            out[e]["position"] = float(np.round(np.median(pos[e])))
    return out


# --- the night --------------------------------------------------------------------------------


def night_features(
    data: FloatArray, mask: NDArray[np.bool_], sf: float = CANONICAL_SF
) -> list[EpochFeatures]:
    """Measure every feature of every full 30 s epoch of a canonical night.

    Parameters
    ----------
    data : ndarray, shape (12, n_samples)
        The canonical night (:data:`CANONICAL_SLOTS` order, physical units).
    mask : ndarray of bool, shape (12,)
        Which slots hold a signal.
    sf : float
        Sampling rate in Hz (64 for canonical windows).

    Returns
    -------
    list of dict
        One ``{feature: value}`` dict per epoch (see the module table); only features of
        present slots appear.
    """
    spe = int(round(EPOCH_S * sf))
    n_epochs = data.shape[1] // spe
    feats: list[EpochFeatures] = [{} for _ in range(n_epochs)]
    if n_epochs == 0:
        return feats

    def slot(name: str) -> NDArray[np.float64] | None:
        i = SLOT[name]
        return np.asarray(data[i, : n_epochs * spe], np.float64) if mask[i] else None

    def merge(per_epoch: list[EpochFeatures]) -> None:
        for f, extra in zip(feats, per_epoch, strict=True):
            f.update(extra)

    sites = [s for s in EEG_SITES if mask[SLOT[s]]]
    for site in sites:
        x = slot(site)
        assert x is not None
        powers = band_powers(x.reshape(n_epochs, spe), sf)
        for band, values in powers.items():
            for e in range(n_epochs):
                if np.isfinite(values[e]):
                    feats[e][f"{site}.{band}_pct"] = float(values[e])
    if sites:
        x = slot(sites[0])
        assert x is not None
        spin = _per_epoch_counts(detect_spindles(x, sf)[:, 0], spe, n_epochs)
        waves, isolated = slow_waves(x, sf)
        sw_time = np.zeros(n_epochs)
        for a, b in waves:
            e = int((a + b) // 2 // spe)
            if e < n_epochs:
                sw_time[e] += (b - a) / sf
        sw_pct = np.minimum(100.0, 100.0 * sw_time / EPOCH_S)
        kc = _per_epoch_counts(waves[isolated, 0], spe, n_epochs)
        for e in range(n_epochs):
            feats[e]["spindles"] = float(spin[e])
            feats[e]["slow_wave_pct"] = float(sw_pct[e])
            feats[e]["k_complexes"] = float(kc[e]) if sw_pct[e] < 20.0 else 0.0
    eog_l, eog_r = slot("EOG_L"), slot("EOG_R")
    eog = (
        eog_l - eog_r
        if eog_l is not None and eog_r is not None
        else (eog_l if eog_l is not None else eog_r)
    )
    if eog is not None:
        rapid, slow = eye_movements(eog, sf, spe, n_epochs)
        for e in range(n_epochs):
            feats[e]["rapid_eye_movements"] = float(rapid[e])
            feats[e]["slow_eye_movements"] = float(slow[e])
    ecg = slot("ECG")
    if ecg is not None:
        merge(heart_features(detect_r_peaks(ecg, sf), sf, n_epochs, spe))
    flow = slot("AIRFLOW")
    resp = flow if flow is not None else (slot("THX") if mask[SLOT["THX"]] else slot("ABD"))
    merge(respiratory_features(resp, flow is not None, slot("SPO2"), sf, n_epochs, spe))
    merge(somatic_features(slot("EMG_CHIN"), slot("EMG_LEG"), slot("POSITION"), sf, n_epochs, spe))
    return feats
