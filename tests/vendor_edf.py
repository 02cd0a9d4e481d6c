"""A generated "vendor-like" PSG export: 60+ signals as sleep-lab systems write them.

Referential and already-derived EEG side by side, impedance traces (kOhm, 1 Hz), battery and
radio voltages, accelerometer axes, light, audio level, temperature, pulse, PTT, pleth, RIP
sums and flows, thermistor and nasal pressure, leg EMG in French, labels in Latin-1 and in
UTF-8, a hypnogram and an event-code channel at 1 Hz, and a position channel with vendor codes.
:data:`EXPECTED` holds the type, role and side each label must get.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SECONDS = 120
"""Length of the generated recording (four 30-s epochs)."""


@dataclass(frozen=True)
class VSig:
    """One signal: label (str), the label's encoding in the header, rate, unit, range, data."""

    label: str
    sf: int
    unit: str
    pmin: float
    pmax: float
    data: np.ndarray
    encoding: str = "ascii"


EXPECTED: dict[str, tuple[str, str, str]] = {
    # label: (type, role, side)
    "F3": ("EEG", "frontal", "L"), "F4": ("EEG", "frontal", "R"),
    "C3": ("EEG", "C3", "L"), "C4": ("EEG", "C4", "R"),
    "O1": ("EEG", "occipital", "L"), "O2": ("EEG", "occipital", "R"),
    "M1": ("EEG", "reference", "L"), "M2": ("EEG", "reference", "R"),  # left/right mastoid
    "Fpz": ("EEG", "frontal", ""), "Cz": ("EEG", "central", ""),
    "Pz": ("EEG", "occipital", ""), "Oz": ("EEG", "occipital", ""),
    "C3-M2": ("EEG", "C3", "L"), "EEG O1:M2": ("EEG", "occipital", "L"),
    "E1": ("EOG", "left", "L"), "E2": ("EOG", "right", "R"),
    "Chin1": ("EMG", "chin", ""), "Chin2": ("EMG", "chin", ""), "Chin3": ("EMG", "chin", ""),
    "Jambe gauche": ("EMG", "leg", "L"), "Jambe droite": ("EMG", "leg", "R"),
    "ECG II": ("ECG", "ecg", ""), "ECG I": ("ECG", "ecg", ""),
    "Thermistance": ("AIRFLOW", "thermistor", ""), "Pression nasale": ("AIRFLOW", "pressure", ""),
    "Thorax": ("THORACIC", "thoracic", ""), "Abdomen": ("ABDOMINAL", "abdominal", ""),
    "RIP Sum": ("THORACIC", "sum", ""), "RIP Flow": ("THORACIC", "rip flow", ""),
    "Sättigung": ("SPO2", "spo2", ""), "Körperlage": ("POSITION", "position", ""),
    "Pulse": ("PULSE", "rate", ""), "Pleth": ("PULSE", "pleth", ""), "PTT": ("PULSE", "ptt", ""),
    "Snore": ("SNORE", "snore", ""), "Audio Volume": ("NONPHYS", "audio", ""),
    "Lumière": ("NONPHYS", "light", ""), "Température": ("NONPHYS", "temperature", ""),
    "Battery": ("NONPHYS", "battery", ""), "BT RSSI": ("NONPHYS", "radio", ""),
    "Acc X": ("NONPHYS", "accelerometer", ""), "Acc Y": ("NONPHYS", "accelerometer", ""),
    "Acc Z": ("NONPHYS", "accelerometer", ""), "Activity": ("NONPHYS", "accelerometer", ""),
    "Hypnogram": ("STAGE", "hypnogram", ""), "Event": ("EVENT", "marker", ""),
    "CPAP": ("NONPHYS", "therapy", ""), "Leak": ("NONPHYS", "therapy", ""),
    "DC1": ("OTHER", "other", ""), "DC2": ("OTHER", "other", ""),
    **{f"{e} Imp": ("NONPHYS", "impedance", "")
       for e in ("F3", "F4", "C3", "C4", "O1", "O2", "M1", "M2", "E1", "E2", "Chin1", "Chin2")},
}
"""Type, role and side that each label must get."""

MONTAGE = [
    "F4-M1", "C4-M1", "O2-M1", "C3-M2", "E1-M2", "E2-M2", "Chin1-Chin2", "ECG II",
    "Jambe gauche", "Jambe droite", "Thermistance", "Pression nasale", "Thorax", "Abdomen",
    "Sättigung", "Körperlage",
]
"""The automatic montage in display order (derivations by their names)."""

UTF8_LABELS = ("Sättigung", "Lumière")
LATIN1_LABELS = ("Körperlage", "Température")
POSITION_CODES = (1, 2, 3, 9)
"""Vendor position codes written, 9 being one no scheme knows."""
HYPNOGRAM = (0, 1, 2, 5)
"""Hypnogram channel codes per 30-s epoch (R&K style: 0 W, 1 S1, 2 S2, 5 REM)."""


def signals(seconds: int = SECONDS, seed: int = 0) -> list[VSig]:
    """Build the signals (physical values)."""
    rng = np.random.default_rng(seed)
    t256 = np.arange(256 * seconds) / 256.0

    def eeg(amp: float = 30.0) -> np.ndarray:
        return rng.normal(0, amp, t256.size) + 20 * np.sin(2 * np.pi * 10 * t256)

    ref = {e: eeg() for e in ("F3", "F4", "C3", "C4", "O1", "O2", "Fpz", "Cz", "Pz", "Oz")}
    ref["M1"], ref["M2"] = rng.normal(0, 5, t256.size), rng.normal(0, 5, t256.size)
    out = [VSig(e, 256, "uV", -1000, 1000, x) for e, x in ref.items()]
    out.append(VSig("C3-M2", 256, "uV", -1000, 1000, ref["C3"] - ref["M2"]))
    out.append(VSig("EEG O1:M2", 256, "uV", -1000, 1000, ref["O1"] - ref["M2"]))
    out += [VSig(e, 256, "uV", -1000, 1000, eeg(50)) for e in ("E1", "E2")]
    out += [VSig(e, 256, "uV", -500, 500, rng.normal(0, 10, t256.size))
            for e in ("Chin1", "Chin2", "Chin3")]
    out += [VSig(e, 256, "uV", -500, 500, rng.normal(0, 8, t256.size))
            for e in ("Jambe gauche", "Jambe droite")]
    out += [VSig(e, 256, "mV", -5, 5, 0.8 * np.sin(2 * np.pi * 1.2 * t256))
            for e in ("ECG II", "ECG I")]
    t32 = np.arange(32 * seconds) / 32.0
    breath = np.sin(2 * np.pi * 0.25 * t32)
    out += [
        VSig("Thermistance", 32, "uV", -200, 200, 100 * breath),
        VSig("Pression nasale", 32, "cmH2O", -2, 2, breath),
        VSig("Thorax", 32, "uV", -500, 500, 200 * breath),
        VSig("Abdomen", 32, "uV", -500, 500, 180 * breath),
        VSig("RIP Sum", 32, "uV", -1000, 1000, 380 * breath),
        VSig("RIP Flow", 32, "", -1, 1, np.gradient(breath)),
        VSig("Pleth", 32, "", -1, 1, np.sin(2 * np.pi * 1.2 * t32)),
        VSig("Snore", 32, "uV", -100, 100, rng.normal(0, 5, t32.size)),
        VSig("Audio Volume", 32, "dB", 0, 120, 40 + rng.normal(0, 2, t32.size)),
    ]
    ones = np.ones(seconds)
    out += [
        VSig("Sättigung", 1, "%", 0, 100, np.linspace(97, 92, seconds), "utf-8"),
        VSig("Körperlage", 1, "", 0, 255,
             np.repeat(POSITION_CODES, seconds // len(POSITION_CODES)).astype(float), "latin-1"),
        VSig("Pulse", 1, "bpm", 0, 250, 62 * ones),
        VSig("PTT", 1, "ms", 0, 500, 250 * ones),
        VSig("Lumière", 1, "lux", 0, 1000, 2 * ones, "utf-8"),
        VSig("Température", 1, "degC", 20, 45, 36.6 * ones, "latin-1"),
        VSig("Battery", 1, "V", 0, 5, 3.9 * ones),
        VSig("BT RSSI", 1, "dBm", -120, 0, -60 * ones),
        VSig("Acc X", 10, "g", -4, 4, np.zeros(10 * seconds)),
        VSig("Acc Y", 10, "g", -4, 4, np.zeros(10 * seconds)),
        VSig("Acc Z", 10, "g", -4, 4, np.ones(10 * seconds)),
        VSig("Activity", 1, "", 0, 100, ones),
        VSig("Hypnogram", 1, "", -1, 9, np.repeat(HYPNOGRAM, 30).astype(float)[:seconds]),
        VSig("Event", 1, "", 0, 255, np.where(np.arange(seconds) == 40, 3.0, 0.0)),
        VSig("CPAP", 1, "cmH2O", 0, 25, 0 * ones),
        VSig("Leak", 1, "L/min", 0, 100, 0 * ones),
        VSig("DC1", 1, "V", -5, 5, 0 * ones),
        VSig("DC2", 1, "V", -5, 5, 0 * ones),
    ]
    for e in ("F3", "F4", "C3", "C4", "O1", "O2", "M1", "M2", "E1", "E2", "Chin1", "Chin2"):
        out.append(VSig(f"{e} Imp", 1, "kOhm", 0, 100, 4 * ones))
    return out


def write_vendor_edf(
    path: Path, seconds: int = SECONDS, sigs: list[VSig] | None = None
) -> Path:
    """Write the vendor-like EDF (or ``sigs``; no annotations channel, 1-s records)."""
    sigs = signals(seconds) if sigs is None else sigs
    ns = len(sigs)
    head = (
        "0".ljust(8)
        + "X M 01-JAN-1970 Vendor".ljust(80)
        + "Startdate 03-DEC-2026 X X Vendor-export".ljust(80)
        + "03.12.26" + "22.00.00"
        + str(256 * (ns + 1)).ljust(8) + "".ljust(44)
        + str(seconds).ljust(8) + "1".ljust(8) + str(ns).ljust(4)
    ).encode("ascii")

    def field(values: list[bytes], width: int) -> bytes:
        for v in values:
            assert len(v) <= width, v
        return b"".join(v.ljust(width) for v in values)

    labels = [s.label.encode(s.encoding) for s in sigs]
    header = head + field(labels, 16) + field([b""] * ns, 80)
    header += field([s.unit.encode("ascii") for s in sigs], 8)
    header += field([f"{s.pmin:g}".encode() for s in sigs], 8)
    header += field([f"{s.pmax:g}".encode() for s in sigs], 8)
    header += field([b"-32768"] * ns, 8) + field([b"32767"] * ns, 8)
    header += field([b""] * ns, 80) + field([str(s.sf).encode() for s in sigs], 8)
    header += field([b""] * ns, 32)
    digital = []
    for s in sigs:
        gain = (s.pmax - s.pmin) / 65535.0
        d = np.clip(np.round((s.data - s.pmin) / gain - 32768), -32768, 32767).astype("<i2")
        digital.append(d.reshape(seconds, s.sf))
    body = b"".join(d[r].tobytes() for r in range(seconds) for d in digital)
    path.write_bytes(header + body)
    return path
