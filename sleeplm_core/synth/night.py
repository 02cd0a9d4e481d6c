"""Synthetic polysomnography nights with exact ground truth.

Main functions
--------------
=================  ===============================================================
``generate_night``  seeded night: signals, stage + event annotations, hypnogram
``write_night``     EDF+ (signals and annotations) and NSRR XML beside it
=================  ===============================================================

Pipeline (each step has its own random stream, so changing one generator leaves the others'
output unchanged): subject -> stages -> spontaneous arousals -> body position -> respiratory
events -> SpO2 (and hypopnea arousals) -> limb movements -> arousals -> breathing, heart rate,
ECG -> EEG -> EOG, chin and leg EMG -> artefacts -> annotations.

Example
-------
>>> night = generate_night(hours=0.5, seed=1, ahi=20)
>>> edf, xml = write_night(night, "night.edf")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from sleeplm_core.errors import ConfigError, RecordingError
from sleeplm_core.io import labels
from sleeplm_core.io.annotations import Annotation, Annotations, write_nsrr_xml
from sleeplm_core.io.edf_writer import SignalSpec, write_edf
from sleeplm_core.io.hypnogram import Hypnogram
from sleeplm_core.stages import EPOCH_S, STAGE_TO_INT, normalize_stage
from sleeplm_core.synth import artefacts, eog_emg, events
from sleeplm_core.synth import cardiorespiratory as cr
from sleeplm_core.synth import eeg as eeg_mod
from sleeplm_core.synth.hypnogram_model import simulate_stages
from sleeplm_core.synth.settings import FLOW_SF, POS_SF, SPO2_SF, Subject, resolve
from sleeplm_core.synth.timeline import CTRL_SF, FloatArray, Timeline, smooth

__all__ = ["SyntheticNight", "generate_night", "write_night"]

_STREAMS = (
    "subject", "stages", "arousal", "position", "resp", "spo2", "plm", "breath", "heart",
    "eeg", "eog", "emg", "artefact", "state",
)  # fmt: skip


@dataclass
class SyntheticNight:
    """A generated night.

    Attributes
    ----------
    signals : list of SignalSpec
        Channels with names as a PSG would label them, physical units, float64 data.
    annotations : Annotations
        Stages (one per run of equal epochs) and every generated event.
    hypnogram : Hypnogram
        The scored stage of each 30-s epoch.
    subject : dict
        Subject and recording parameters, JSON-serializable (age, sex, alpha_hz, spindle_hz,
        amplitude_scale, ahi (target), ahi_actual, plm_index, sf, seed, channels, ...).
    start : datetime
        Recording start (lights off).
    """

    signals: list[SignalSpec]
    annotations: Annotations
    hypnogram: Hypnogram
    subject: dict[str, Any]
    start: datetime

    @property
    def duration_s(self) -> float:
        """Length of the night, in seconds."""
        return float(len(self.hypnogram) * EPOCH_S)

    def signal(self, name: str) -> SignalSpec:
        """Return the channel called ``name`` (KeyError when absent)."""
        for s in self.signals:
            if s.name == name:
                return s
        raise KeyError(name)


def channel_names(subject: Subject) -> list[str]:
    """Names of every channel a night with these settings has (before ``missing``)."""
    legs = ["LLeg", "RLeg"] if subject.legs == 2 else ["Leg"]
    return [*eeg_mod.EEG_CHANNELS, "E1-M2", "E2-M2", "Chin1-Chin2", *legs, "ECG", "Airflow",
            "Thor", "Abdo", "SpO2", "Pos"]  # fmt: skip


def _stage_codes(subject: Subject, n_epochs: int, rng: np.random.Generator) -> np.ndarray:
    if subject.hypnogram is None:
        return simulate_stages(
            n_epochs, rng, age=subject.age, ahi=subject.ahi, sol_min=subject.sol_min
        )
    codes = []
    for s in subject.hypnogram:
        name = s if isinstance(s, str) and s in STAGE_TO_INT else normalize_stage(str(s))
        if name is None or STAGE_TO_INT[name] < 0:
            raise ConfigError(None, f"hypnogram setting has an unusable stage {s!r}")
        codes.append(STAGE_TO_INT[name])
    if not codes:
        raise ConfigError(None, "hypnogram setting is empty")
    arr = np.array(codes, dtype=np.int8)
    if len(arr) < n_epochs:
        arr = np.concatenate([arr, np.full(n_epochs - len(arr), arr[-1], dtype=np.int8)])
    return arr[:n_epochs]


def _alternating(
    n_ctrl: int, rng: np.random.Generator, mean_on_s: float, mean_off_s: float
) -> FloatArray:
    """A 0/1 renewal process with exponential on/off durations, on the control grid."""
    out = np.zeros(n_ctrl)
    i, on = 0, bool(rng.random() < mean_on_s / (mean_on_s + mean_off_s))
    while i < n_ctrl:
        d = int(rng.exponential(mean_on_s if on else mean_off_s) * CTRL_SF) + 1
        if on:
            out[i : i + d] = 1.0
        i += d
        on = not on
    return out


def _state_processes(tl: Timeline, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """Eyes-closed (wake) and phasic-REM processes, smoothed over ~1 s."""
    eyes = _alternating(tl.n_ctrl, rng, 40.0, 25.0)
    # the minute before falling asleep is spent with the eyes closed (drowsiness)
    lead = int(60 * CTRL_SF)
    sleep_next = np.zeros(tl.n_ctrl, dtype=bool)
    sleep_next[: max(tl.n_ctrl - lead, 0)] = tl.stage_ctrl[lead:] != 0
    eyes = np.where((tl.stage_ctrl == 0) & sleep_next, 1.0, eyes)
    phasic = _alternating(tl.n_ctrl, rng, 12.0, 30.0)
    return smooth(eyes, CTRL_SF), smooth(phasic, 2 * CTRL_SF)


def _arousal_envelope(tl: Timeline, arousals: list[tuple[float, float]]) -> FloatArray:
    env = np.zeros(tl.n_ctrl)
    for onset, dur in arousals:
        sl, w = cr._ramp_window(tl.n_ctrl, onset + 0.5, onset + dur - 0.5, 0.5)
        env[sl] = np.maximum(env[sl], w)
    return env


def generate_night(
    *, hours: float, seed: int, ahi: float | None = None, **settings: Any
) -> SyntheticNight:
    """Generate a seeded synthetic PSG night with ground-truth annotations.

    Parameters
    ----------
    hours : float
        Time in bed, rounded down to whole 30-s epochs (at least one epoch).
    seed : int
        Seed; the same seed and settings give the same night, bit for bit.
    ahi : float, optional
        Apnea-hypopnea index (events per hour of sleep, 0-120); drawn when not given.
    **settings
        Subject and recording settings, see :mod:`sleeplm_core.synth.settings`.

    Returns
    -------
    SyntheticNight
        Signals, annotations, hypnogram and subject description.

    Raises
    ------
    ConfigError
        For an unknown setting or an impossible value.
    """
    n_epochs = int(np.floor(float(hours) * 3600.0 / EPOCH_S + 1e-9))
    if n_epochs < 1:
        raise ConfigError(None, f"hours must cover at least one 30-s epoch, got {hours!r}")
    streams = dict(
        zip(_STREAMS, np.random.SeedSequence(int(seed)).spawn(len(_STREAMS)), strict=True)
    )
    rng = {k: np.random.default_rng(v) for k, v in streams.items()}
    subj = resolve(rng["subject"], ahi, settings)
    unknown_missing = set(subj.missing) - set(channel_names(subj))
    if unknown_missing:
        raise ConfigError(None, f"missing names unknown channel(s) {sorted(unknown_missing)}")
    tl = Timeline(_stage_codes(subj, n_epochs, rng["stages"]))
    eyes_closed, rem_phasic = _state_processes(tl, rng["state"])

    spont = events.schedule_spontaneous_arousals(tl, rng["arousal"], 8.0 + 0.15 * (subj.age - 20))
    position, pos_changes = events.simulate_position(tl, rng["position"], [a for a, _ in spont])
    cf = subj.central_fraction
    kinds = {
        "obstructive": 0.4 * (1 - cf),
        "hypopnea": 0.55 * (1 - cf),
        "mixed": 0.05 * (1 - cf),
        "central": cf,
    }
    resp = events.schedule_respiratory(
        tl,
        rng["resp"],
        ahi=subj.ahi,
        position=position,
        kind_probs=kinds,
        supine_factor=subj.supine_factor,
        desat_gain=subj.desat_gain,
    )
    spo2, desats = cr.simulate_spo2(tl, rng["spo2"], resp, baseline=subj.spo2_baseline, sf=SPO2_SF)
    desat_starts = np.array([d[0] for d in desats])
    resp_arousals: list[tuple[float, float]] = []
    for ev in resp:
        has_desat = bool(np.any((desat_starts >= ev.onset_s) & (desat_starts <= ev.end_s + 15)))
        if ev.arousal or (ev.kind == "hypopnea" and not has_desat):
            onset = ev.end_s + float(rng["arousal"].uniform(-1.0, 3.0))
            resp_arousals.append(
                (onset, float(np.clip(rng["arousal"].lognormal(np.log(7), 0.4), 3.0, 14.5)))
            )
    plms = events.schedule_limb_movements(tl, rng["plm"], subj.plm_index)
    plm_arousals = [
        (m.onset_s + m.duration_s * 0.5, float(rng["plm"].uniform(3.0, 10.0)))
        for m in plms
        if m.periodic and rng["plm"].random() < 0.3
    ]
    arousals = events.finalize_arousals(tl, spont + resp_arousals + plm_arousals)
    arousal_env = _arousal_envelope(tl, arousals)
    # respiratory-related leg movements: a kick at some event-terminating arousals
    rp = rng["plm"]
    kept = set(arousals)
    for onset, _dur in resp_arousals:
        if (onset, _dur) in kept and rp.random() < 0.25:
            leg = "LLeg" if rp.random() < 0.5 else "RLeg"
            dur = float(np.clip(rp.lognormal(np.log(1.5), 0.4), 0.5, 10.0))
            plms.append(events.LimbMovement(onset + float(rp.uniform(0, 2)), dur, leg,
                                            bool(rp.random() < 0.5), False))  # fmt: skip
    plms.sort(key=lambda m: m.onset_s)

    br = cr.simulate_breathing(tl, rng["breath"], resp, arousals, rate_bpm=subj.resp_rate)
    resp_sig = cr.respiratory_signals(tl, rng["breath"], br, sf=FLOW_SF)
    hr = cr.heart_rate(
        tl, rng["heart"], br, resp, arousals, hr_base=subj.hr_base, rsa_bpm=subj.rsa_bpm
    )
    beats = cr.beat_times(tl, hr, rng["heart"])
    ecg = cr.ecg_signal(tl, rng["heart"], beats, br, sf=subj.ecg_sf, scale=subj.ecg_scale)

    sf = subj.sf
    eeg_params = eeg_mod.EEGParams(
        alpha_hz=subj.alpha_hz,
        spindle_hz=subj.spindle_hz,
        amplitude_scale=subj.amplitude_scale,
        slow_wave_scale=subj.slow_wave_scale,
        spindle_density=subj.spindle_density,
        kc_density=subj.kc_density,
        aperiodic_exponent=subj.aperiodic_exponent,
    )
    eeg = eeg_mod.simulate_eeg(
        tl,
        rng["eeg"],
        eeg_params,
        sf=sf,
        arousal=arousal_env,
        eyes_closed=eyes_closed,
        rem_phasic=rem_phasic,
        arousal_onsets=[a for a, _ in arousals],
    )
    eog = eog_emg.simulate_eog(
        tl,
        rng["eog"],
        sf=sf,
        eyes_closed=eyes_closed,
        rem_phasic=rem_phasic,
        eeg=eeg.signals,
    )
    chin = eog_emg.simulate_chin(
        tl,
        rng["emg"],
        sf=sf,
        arousal=arousal_env,
        rem_phasic=rem_phasic,
        beats=beats,
        tone_scale=subj.chin_tone,
    )
    leg_names = ("LLeg", "RLeg") if subj.legs == 2 else ("Leg",)
    legs = eog_emg.simulate_legs(tl, rng["emg"], sf=sf, movements=plms, legs=leg_names)

    ra = rng["artefact"]
    exg: dict[str, FloatArray] = {**eeg.signals, **eog}
    moves = artefacts.movement_times(
        tl, ra, position_changes=pos_changes, arousals=arousals, rate_per_h=subj.artefact_rate
    )
    artefacts.add_movement_artefacts(exg, ra, sf=sf, events=moves)
    artefacts.add_slow_drift(exg, ra, tl, sf=sf, sd_uv=subj.drift_uv)
    artefacts.add_ecg_artifact(eeg.signals, ra, sf=sf, beats=beats, amp_uv=subj.ecg_artifact_uv)
    pops = artefacts.add_electrode_pops(
        eeg.signals, ra, sf=sf, duration_s=tl.duration_s, rate_per_h=subj.pop_rate
    )
    emg_sigs: dict[str, FloatArray] = {"Chin1-Chin2": chin, **legs}
    artefacts.add_movement_artefacts(emg_sigs, ra, sf=sf, events=moves)
    every = {**exg, **emg_sigs}
    artefacts.add_electrode_noise(every, ra, subj.noise_uv)
    artefacts.add_line_noise(every, ra, sf=sf, line_hz=subj.line_hz)
    pos_sig = np.repeat(position.astype(np.float64), int(POS_SF))[: tl.n_samples(POS_SF)]
    pos_sig = np.concatenate([pos_sig, np.full(tl.n_samples(POS_SF) - len(pos_sig), pos_sig[-1])])
    signals = [SignalSpec(ch, "EEG", sf, "uV", every[ch]) for ch in eeg_mod.EEG_CHANNELS]
    signals += [SignalSpec(ch, "EOG", sf, "uV", every[ch]) for ch in ("E1-M2", "E2-M2")]
    signals += [SignalSpec("Chin1-Chin2", "EMG", sf, "uV", every["Chin1-Chin2"])]
    signals += [SignalSpec(ch, "EMG", sf, "uV", every[ch]) for ch in leg_names]
    signals += [SignalSpec("ECG", "ECG", subj.ecg_sf, "mV", ecg)]
    signals += [
        SignalSpec("Airflow", "AIRFLOW", FLOW_SF, "a.u.", resp_sig["Airflow"]),
        SignalSpec("Thor", "THORACIC", FLOW_SF, "a.u.", resp_sig["Thor"]),
        SignalSpec("Abdo", "ABDOMINAL", FLOW_SF, "a.u.", resp_sig["Abdo"]),
        SignalSpec("SpO2", "SPO2", SPO2_SF, "%", spo2),
        SignalSpec("Pos", "POSITION", POS_SF, "", pos_sig),
    ]
    signals = [s for s in signals if s.name not in subj.missing]

    hyp = Hypnogram.from_integers(tl.stages.tolist())
    ann = _annotations(hyp, resp, desats, arousals, plms, eeg, moves, pops, subj)
    tst_h = float((tl.stages != 0).sum()) * EPOCH_S / 3600.0
    info = subj.as_dict()
    info.update(
        seed=int(seed),
        hours=n_epochs * EPOCH_S / 3600.0,
        ahi_actual=len(resp) / tst_h if tst_h > 0 else 0.0,
        n_spindles=len(eeg.spindles),
        n_arousals=len(arousals),
        position_codes={str(k): v for k, v in events.POSITION_CODES.items()},
        start=subj.start.isoformat(),
        missing=list(subj.missing),
        channels=[s.name for s in signals],
    )  # plain JSON-serializable values, so the dict can go into shard metadata as is
    return SyntheticNight(signals, ann, hyp, info, subj.start)


def _annotations(
    hyp: Hypnogram,
    resp: list[events.RespEvent],
    desats: list[tuple[float, float, float, float]],
    arousals: list[tuple[float, float]],
    plms: list[events.LimbMovement],
    eeg: eeg_mod.EEGResult,
    moves: list[tuple[float, float]],
    pops: list[tuple[float, float, str]],
    subj: Subject,
) -> Annotations:
    """Collect every stage and event as an :class:`Annotation`."""
    items = list(hyp.to_annotations())

    def r3(x: float) -> float:
        return round(float(x), 3)

    items += [Annotation(r3(e.onset_s), r3(e.duration_s), events.RESP_KINDS[e.kind]) for e in resp]
    items += [
        Annotation(
            r3(t),
            r3(d),
            labels.DESATURATION,
            "SpO2",
            (("spo2_nadir", f"{nadir:.0f}"), ("spo2_baseline", f"{base:.0f}")),
        )
        for t, d, base, nadir in desats
    ]
    items += [Annotation(r3(t), r3(d), labels.AROUSAL) for t, d in arousals]
    leg_single = subj.legs == 1
    items += [
        Annotation(
            r3(m.onset_s), r3(m.duration_s), labels.LIMB_MOVEMENT, "Leg" if leg_single else m.leg
        )
        for m in plms
    ]
    # spindle onsets/durations are sample-exact at the EEG rate; keep full precision
    items += [
        Annotation(t, d, labels.SPINDLE, eeg_mod.SPINDLE_CHANNEL, (("freq_hz", f"{f:.2f}"),))
        for t, d, f, _ in eeg.spindles
    ]
    items += [
        Annotation(r3(t), r3(d), labels.K_COMPLEX, eeg_mod.SPINDLE_CHANNEL)
        for t, d in eeg.kcomplexes
    ]
    items += [Annotation(r3(t), r3(d), labels.ARTIFACT) for t, d in moves]
    items += [Annotation(r3(t), r3(d), labels.ARTIFACT, ch) for t, d, ch in pops]
    return Annotations(items)


def write_night(night: SyntheticNight, path_edf: str | PathLike[str]) -> tuple[Path, Path]:
    """Write ``night`` as EDF+ (signals and annotations) and NSRR XML beside it.

    Parameters
    ----------
    night : SyntheticNight
        The night to write.
    path_edf : str or PathLike
        Target ``.edf`` file; the XML goes to the same name with ``.xml``.

    Returns
    -------
    (Path, Path)
        The EDF and XML paths.

    Raises
    ------
    RecordingError
        When the path does not end in ``.edf`` or its folder does not exist or is not writable.
    """
    edf = Path(path_edf)
    if edf.suffix.lower() != ".edf":
        raise RecordingError(edf, "output must be an .edf file")
    if not edf.parent.is_dir():
        raise RecordingError(edf, f"folder {str(edf.parent)!r} does not exist")
    if edf.is_dir():
        raise RecordingError(edf, "is a folder, not a file")
    xml = edf.with_suffix(".xml")
    write_edf(edf, night.signals, night.annotations, start=night.start)
    write_nsrr_xml(night.annotations, xml)
    return edf, xml
