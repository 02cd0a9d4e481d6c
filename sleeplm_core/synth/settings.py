"""Settings and subject parameters of a synthetic night.

Every setting may be given to :func:`~sleeplm_core.synth.night.generate_night`; the ones left
out are drawn from population distributions with the night's seed, so each seed is a
different, plausible subject.

=====================  ==========================================================  ==========
setting                meaning                                                     default
=====================  ==========================================================  ==========
age                    years; less N3, more wake, lower slow waves when older     U(20, 75)
sex                    "F" or "M"                                                  random
alpha_hz               individual alpha frequency (Hz)                             ~10, age
spindle_hz             mean spindle frequency (Hz)                                 N(13, 0.6)
amplitude_scale        factor on all EEG amplitudes                                lognormal
noise_uv               electrode/amplifier white noise, uV RMS                     U(0.3, 2)
line_hz                mains frequency (50, 60) or None for none                   random
artefact_rate          movement artefacts per hour of wake                         U(2, 10)
pop_rate               electrode pops per hour                                     U(0, 2)
drift_uv               slow baseline wander (sweat), uV SD                         ~2 (0.3-12)
ecg_artifact_uv        heartbeat spikes in the EEG, uV peak                        U(0, 4)
plm_index              periodic limb movements per hour of sleep                   mostly 0
central_fraction       share of apneas/hypopneas that are central                  ~0.1
supine_factor          event-rate ratio supine vs lateral                          U(1, 3)
missing                channel names to leave out                                  ()
sf                     EEG/EOG/EMG sampling rate: 100, 128 or 256 Hz               256
ecg_sf                 ECG sampling rate                                           256
legs                   2 (LLeg, RLeg) or 1 ("Leg")                                 2
hypnogram              stage per epoch (names or codes) overriding the model      None
sol_min                sleep-onset latency (minutes)                               drawn
start                  recording start (datetime)                                  ~22:30
=====================  ==========================================================  ==========
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from sleeplm_core.errors import ConfigError

EEG_RATES: tuple[int, ...] = (100, 128, 256)
FLOW_SF = 32.0
SPO2_SF = 4.0
POS_SF = 1.0

_UNSET: Any = object()


@dataclass
class Subject:
    """Resolved subject and recording parameters (every field set)."""

    age: float
    sex: str
    alpha_hz: float
    spindle_hz: float
    amplitude_scale: float
    noise_uv: float
    line_hz: float | None
    artefact_rate: float
    pop_rate: float
    drift_uv: float
    ecg_artifact_uv: float
    plm_index: float
    central_fraction: float
    supine_factor: float
    ahi: float
    hr_base: float
    rsa_bpm: float
    resp_rate: float
    spo2_baseline: float
    desat_gain: float
    chin_tone: float
    ecg_scale: float
    spindle_density: float
    kc_density: float
    slow_wave_scale: float
    aperiodic_exponent: float
    sf: float
    ecg_sf: float
    legs: int
    missing: tuple[str, ...] = ()
    hypnogram: Sequence[Any] | None = None
    sol_min: float | None = None
    start: datetime = field(default_factory=lambda: datetime(2024, 1, 1, 22, 30))

    def as_dict(self) -> dict[str, Any]:
        """The subject as a plain dict (for :attr:`SyntheticNight.subject`)."""
        d = dict(self.__dict__)
        d.pop("hypnogram")
        return d


KNOWN: tuple[str, ...] = (
    "age", "sex", "alpha_hz", "spindle_hz", "amplitude_scale", "noise_uv", "line_hz",
    "artefact_rate", "pop_rate", "drift_uv", "ecg_artifact_uv", "plm_index", "central_fraction",
    "supine_factor", "missing",
    "sf", "ecg_sf", "legs", "hypnogram", "sol_min", "start",
)  # fmt: skip


def _draw_ahi(rng: np.random.Generator, age: float, sex: str) -> float:
    """Population AHI: most people normal, some mild to severe; more with age and in men."""
    p_osa = float(np.clip((0.15 + 0.01 * (age - 30)) * (1.3 if sex == "M" else 0.7), 0.05, 0.8))
    if rng.random() > p_osa:
        return float(rng.uniform(0.0, 5.0))
    return float(np.clip(rng.lognormal(np.log(15.0), 0.7), 5.0, 60.0))


def resolve(seed_rng: np.random.Generator, ahi: float | None, settings: dict[str, Any]) -> Subject:
    """Validate ``settings`` and draw every parameter not given.

    Raises
    ------
    ConfigError
        For an unknown setting or an out-of-range value.
    """
    unknown = sorted(set(settings) - set(KNOWN))
    if unknown:
        raise ConfigError(None, f"unknown synth setting(s) {unknown}; known: {', '.join(KNOWN)}")
    r = seed_rng

    def get(name: str, draw: Any) -> Any:
        return settings[name] if name in settings else draw

    age = float(get("age", r.uniform(20.0, 75.0)))
    if not 5 <= age <= 100:
        raise ConfigError(None, f"age must be within 5-100 years, got {age:g}")
    sex = str(get("sex", "F" if r.random() < 0.5 else "M"))
    alpha_hz = float(get("alpha_hz", np.clip(r.normal(10.3 - 0.015 * (age - 30), 0.6), 8.0, 12.5)))
    spindle_hz = float(get("spindle_hz", np.clip(r.normal(13.0, 0.6), 11.5, 15.0)))
    amp = float(get("amplitude_scale", np.clip(r.lognormal(0.0, 0.18), 0.6, 1.5)))
    amp_sex = 1.08 if sex == "F" else 1.0  # thinner skull: slightly larger EEG in women
    noise_uv = float(get("noise_uv", r.uniform(0.3, 2.0)))
    line_hz = get("line_hz", [50.0, 60.0, None][int(r.choice(3, p=[0.45, 0.35, 0.2]))])
    if line_hz not in (None, 50, 60, 50.0, 60.0):
        raise ConfigError(None, f"line_hz must be 50, 60 or None, got {line_hz!r}")
    ahi_v = float(ahi) if ahi is not None else _draw_ahi(r, age, sex)
    if not 0 <= ahi_v <= 120:
        raise ConfigError(None, f"ahi must be within 0-120 events/h, got {ahi_v:g}")
    sf = float(get("sf", 256))
    if int(sf) not in EEG_RATES or sf != int(sf):
        raise ConfigError(None, f"sf must be one of {EEG_RATES} Hz, got {sf:g}")
    legs = int(get("legs", 2))
    if legs not in (1, 2):
        raise ConfigError(None, f"legs must be 1 or 2, got {legs}")
    plm_draw = 0.0 if r.random() > 0.1 + 0.005 * max(age - 30, 0) else r.uniform(8.0, 50.0)
    start = get("start", datetime(2024, 1, 1, 22, 0) + timedelta(minutes=int(r.integers(0, 90))))
    return Subject(
        age=age,
        sex=sex,
        alpha_hz=alpha_hz,
        spindle_hz=spindle_hz,
        amplitude_scale=amp * amp_sex * float(np.clip(1.15 - 0.005 * age, 0.7, 1.1)),
        noise_uv=noise_uv,
        line_hz=None if line_hz is None else float(line_hz),
        artefact_rate=float(get("artefact_rate", r.uniform(2.0, 10.0))),
        pop_rate=float(get("pop_rate", r.uniform(0.0, 2.0))),
        drift_uv=float(get("drift_uv", np.clip(r.lognormal(np.log(2.0), 0.6), 0.3, 12.0))),
        ecg_artifact_uv=float(get("ecg_artifact_uv", r.uniform(0.0, 4.0))),
        plm_index=float(get("plm_index", plm_draw)),
        central_fraction=float(get("central_fraction", np.clip(r.beta(1.5, 12.0), 0.0, 0.6))),
        supine_factor=float(get("supine_factor", r.uniform(1.0, 3.0))),
        ahi=ahi_v,
        hr_base=float(np.clip(r.normal(64.0 if sex == "M" else 67.0, 7.0), 48.0, 88.0)),
        rsa_bpm=float(np.clip(r.normal(5.0 - 0.04 * (age - 30), 1.0), 0.8, 8.0)),
        resp_rate=float(np.clip(r.normal(14.5, 1.8), 11.0, 19.0)),
        spo2_baseline=float(
            np.clip(r.normal(96.5 - 0.03 * ahi_v - 0.02 * (age - 30), 0.8), 90.0, 99.0)
        ),
        desat_gain=float(r.lognormal(0.0, 0.25)),
        chin_tone=float(r.lognormal(0.0, 0.3)),
        ecg_scale=float(r.uniform(0.6, 1.5)),
        spindle_density=float(np.clip(r.normal(5.0 - 0.03 * (age - 30), 1.0), 1.0, 8.0)),
        kc_density=float(np.clip(r.normal(1.4 - 0.01 * (age - 30), 0.4), 0.3, 3.0)),
        slow_wave_scale=float(np.clip(1.3 - 0.008 * age, 0.7, 1.2)),
        aperiodic_exponent=float(np.clip(r.normal(1.6, 0.15), 1.2, 2.0)),
        sf=sf,
        ecg_sf=float(get("ecg_sf", max(256.0, sf))),
        legs=legs,
        missing=tuple(get("missing", ())),
        hypnogram=get("hypnogram", None),
        sol_min=get("sol_min", None),
        start=start,
    )
