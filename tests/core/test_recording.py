"""Recording: lazy EDF/EDF+/BDF reading, channel typing, windows, derivations, canonical."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from sleeplm_core.io.channels import CANONICAL_SLOTS, classify, pick_slots, spell_unit, to_uv
from sleeplm_core.io.recording import Recording

# --------------------------------------------------------------------------- EDF factory


@dataclass
class Sig:
    """A signal for :func:`make_edf`: ``data`` holds physical values, sf * record_s per record."""

    label: str
    sf: float
    data: np.ndarray
    unit: str = "uV"
    pmin: float = -500.0
    pmax: float = 500.0


@dataclass
class EdfSpec:
    signals: list[Sig]
    record_s: float = 1.0
    plus: str = ""  # "", "C" or "D"
    bdf: bool = False
    subsecond: float = 0.0
    onsets: Sequence[float] | None = None  # EDF+D record onsets (seconds after header time)
    tals: dict[int, bytes] = field(default_factory=dict)  # extra TAL bytes per record
    raw_tal: dict[int, bytes] = field(default_factory=dict)  # replaces a record's whole TAL


def _num(v: float) -> str:
    if float(v).is_integer():
        return str(int(v))
    for prec in range(8, 0, -1):
        s = f"{v:.{prec}g}"
        if len(s) <= 8:
            return s
    raise ValueError(v)


def edf_bytes(spec: EdfSpec) -> bytes:
    """Build an EDF/EDF+/BDF file in memory (small, exact, and breakable on purpose)."""
    bps = 3 if spec.bdf else 2
    dmax = 8388607 if spec.bdf else 32767
    dmin = -dmax - 1
    n_rec = min(len(s.data) // round(s.sf * spec.record_s) for s in spec.signals)
    if spec.onsets is not None:
        n_rec = len(spec.onsets)
    labels = [s.label for s in spec.signals]
    nsamp = [round(s.sf * spec.record_s) for s in spec.signals]
    units = [s.unit for s in spec.signals]
    pmins = [_num(s.pmin) for s in spec.signals]
    pmaxs = [_num(s.pmax) for s in spec.signals]
    dmins, dmaxs = [str(dmin)] * len(labels), [str(dmax)] * len(labels)
    tal_len = 0
    if spec.plus:
        tal_len = 60 + max(
            (len(t) for t in [*spec.tals.values(), *spec.raw_tal.values()]), default=0
        )
        tal_len = -(-tal_len // bps)
        labels.append("BDF Annotations" if spec.bdf else "EDF Annotations")
        nsamp.append(tal_len)
        units.append("")
        pmins.append("-1")
        pmaxs.append("1")
        dmins.append(str(dmin))
        dmaxs.append(str(dmax))
    ns = len(labels)
    version = b"\xffBIOSEMI" if spec.bdf else b"0".ljust(8)
    reserved = (f"{'BDF' if spec.bdf else 'EDF'}+{spec.plus}" if spec.plus else "").ljust(44)
    head = (
        "X M 01-JAN-1970 Test".ljust(80)
        + "Startdate 17-NOV-2003 X X X".ljust(80)
        + "17.11.03"
        + "03.27.00"
        + str(256 * (ns + 1)).ljust(8)
        + reserved
        + str(n_rec).ljust(8)
        + _num(spec.record_s).ljust(8)
        + str(ns).ljust(4)
    )
    cols = [
        [x.ljust(16) for x in labels],
        ["".ljust(80)] * ns,
        [x.ljust(8) for x in units],
        [x.ljust(8) for x in pmins],
        [x.ljust(8) for x in pmaxs],
        [x.ljust(8) for x in dmins],
        [x.ljust(8) for x in dmaxs],
        ["".ljust(80)] * ns,
        [str(x).ljust(8) for x in nsamp],
        ["".ljust(32)] * ns,
    ]
    out = bytearray(version + head.encode("latin-1") + "".join(sum(cols, [])).encode("latin-1"))
    digital = []
    for s, n in zip(spec.signals, nsamp, strict=False):
        gain = (s.pmax - s.pmin) / (dmax - dmin)
        d = np.clip(np.round((np.asarray(s.data, float) - s.pmin) / gain + dmin), dmin, dmax)
        digital.append(d.astype(np.int64)[: n_rec * n].reshape(n_rec, n))
    for r in range(n_rec):
        for d in digital:
            rec = d[r]
            if spec.bdf:
                u = rec & 0xFFFFFF
                out += (
                    np.stack([u & 255, (u >> 8) & 255, (u >> 16) & 255], 1)
                    .astype(np.uint8)
                    .tobytes()
                )
            else:
                out += rec.astype("<i2").tobytes()
        if spec.plus:
            onset = spec.onsets[r] if spec.onsets is not None else r * spec.record_s
            tal = spec.raw_tal.get(r)
            if tal is None:
                tal = f"+{onset + spec.subsecond:g}\x14\x14\x00".encode() + spec.tals.get(r, b"")
            out += tal.ljust(tal_len * bps, b"\x00")
    return bytes(out)


def make_edf(path: Path, spec: EdfSpec) -> Path:
    path.write_bytes(edf_bytes(spec))
    return path


def sine(sf: float, seconds: float, hz: float = 10.0, amp: float = 50.0) -> np.ndarray:
    t = np.arange(round(sf * seconds)) / sf
    return amp * np.sin(2 * np.pi * hz * t)


def psg_spec(seconds: float = 60.0, plus: str = "C") -> EdfSpec:
    rng = np.random.default_rng(0)
    return EdfSpec(
        signals=[
            Sig("C3-M2", 256, sine(256, seconds, 10, 40)),
            Sig("C4", 256, rng.normal(0, 20, round(256 * seconds))),
            Sig("M1", 256, rng.normal(0, 5, round(256 * seconds))),
            Sig("E1-M2", 128, sine(128, seconds, 0.5, 0.08), unit="mV", pmin=-1, pmax=1),
            Sig("Chin1-Chin2", 256, rng.normal(0, 10, round(256 * seconds)), unit="UV"),
            Sig("SpO2", 1, np.linspace(90, 97, round(seconds)), unit="%", pmin=0, pmax=100),
            Sig("ECG", 256, sine(256, seconds, 1.2, 0.8), unit="MV", pmin=-5, pmax=5),
        ],
        plus=plus,
        subsecond=0.25,
    )


@pytest.fixture
def psg(tmp_path: Path) -> Path:
    return make_edf(tmp_path / "psg.edf", psg_spec())


# --------------------------------------------------------------------------- channel table

TYPES = {
    # Sleep-EDF
    "EEG Fpz-Cz": "EEG",
    "EEG Pz-Oz": "EEG",
    "EOG horizontal": "EOG",
    "Resp oro-nasal": "AIRFLOW",
    "EMG submental": "EMG",
    "Temp rectal": "NONPHYS",
    "Event marker": "EVENT",
    # NSRR / SHHS
    "C3": "EEG",
    "C4": "EEG",
    "EEG": "EEG",
    "EEG(sec)": "EEG",
    "EEG2": "EEG",
    "EOG(L)": "EOG",
    "EOG(R)": "EOG",
    "EMG": "EMG",
    "ECG": "ECG",
    "THOR RES": "THORACIC",
    "ABDO RES": "ABDOMINAL",
    "AIRFLOW": "AIRFLOW",
    "NEW AIR": "AIRFLOW",
    "SaO2": "SPO2",
    "POSITION": "POSITION",
    "H.R.": "PULSE",
    "LIGHT": "NONPHYS",
    "OX STAT": "NONPHYS",
    # EDF+ standard texts
    "ECG I": "ECG",
    "SpO2": "SPO2",
    # AASM
    "F3-M2": "EEG",
    "F4-M1": "EEG",
    "C3-M2": "EEG",
    "C4-M1": "EEG",
    "O1-M2": "EEG",
    "O2-M1": "EEG",
    "E1-M2": "EOG",
    "E2-M2": "EOG",
    "Chin1-Chin2": "EMG",
    "LAT": "EMG",
    "RAT": "EMG",
    "LLeg": "EMG",
    "RLeg": "EMG",
    "Thorax": "THORACIC",
    "Abdomen": "ABDOMINAL",
    "Flow": "AIRFLOW",
    "Nasal Pressure": "AIRFLOW",
    "Therm": "AIRFLOW",
    "Pleth": "PULSE",
    "Pos": "POSITION",
    # DREAMS
    "C3-A1": "EEG",
    "CZ-A1": "EEG",
    "O1-A1": "EEG",
    "FP1-A1": "EEG",
    "EOG1-A1": "EOG",
    "EOG2-A1": "EOG",
    "EMG1": "EMG",
    "NAF1": "AIRFLOW",
    "VTH": "THORACIC",
    "VAB": "ABDOMINAL",
    "SAO2": "SPO2",
    "POS": "POSITION",
    "PR": "PULSE",
    "PULSE": "PULSE",
    "PHONO": "SNORE",
    "hypnogram": "STAGE",
    "hypnogram_aut": "STAGE",
    "event_pneumo": "EVENT",
}


@pytest.mark.parametrize(("name", "ctype"), sorted(TYPES.items()))
def test_channel_types_from_names(name: str, ctype: str) -> None:
    assert classify(name).type == ctype


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("Chin1-Chin2", "chin"),
        ("EMG", "chin"),
        ("LAT", "leg"),
        ("RLeg", "leg"),
        ("E1-M2", "left"),
        ("EOG(R)", "right"),
        ("EOG2-A1", "right"),
        ("C4", "C4"),
        ("EEG(sec)", "C3"),
        ("Resp oro-nasal", "thermistor"),
        ("Nasal Pressure", "pressure"),
    ],
)
def test_channel_roles(name: str, role: str) -> None:
    assert classify(name).role == role


def test_unit_fallback_and_spelling() -> None:
    assert classify("Sat", "%").type == "SPO2"
    assert classify("DC3", "%").type == "SPO2" and classify("DC3", "").type == "OTHER"
    assert to_uv("UV") == 1.0 and to_uv("mV") == 1e3 and to_uv("V") == 1e6
    assert to_uv("\u00b5V") == 1.0 and to_uv("%") is None
    assert spell_unit("MV") == "mV" and spell_unit("BPM") == "BPM"


def test_slot_preferences() -> None:
    def pick(*names: str) -> dict[str, str | None]:
        slots = pick_slots([(n, classify(n)) for n in names])
        return dict(zip(CANONICAL_SLOTS, slots, strict=True))

    assert pick("C3-A1", "C3", "C3-A2", "C3-M2")["C3_M2"] == "C3-M2"
    assert pick("C3-A1", "C3")["C3_M2"] == "C3"
    got = pick("C4-M1")
    assert got["C4_M1"] == "C4-M1" and got["C3_M2"] is None  # not used twice
    assert pick("EEG Fpz-Cz", "EEG Pz-Oz")["C3_M2"] == "EEG Fpz-Cz"
    assert pick("Nasal Pressure", "Therm")["AIRFLOW"] == "Therm"
    got = pick("LAT", "Chin1-Chin2")
    assert got["EMG_CHIN"] == "Chin1-Chin2" and got["EMG_LEG"] == "LAT"
    got = pick("EOG(R)", "EOG(L)")
    assert got["EOG_L"] == "EOG(L)" and got["EOG_R"] == "EOG(R)"


# --------------------------------------------------------------------------- reading


def test_open_types_rates_units_and_start(psg: Path) -> None:
    with Recording.open(psg) as rec:
        info = {c.name: c for c in rec.channels}
        files = ["C3-M2", "C4", "M1", "E1-M2", "Chin1-Chin2", "SpO2", "ECG"]
        assert rec.ch_names == [*files, "C4-M1"]  # + the automatic montage's derivation
        assert info["C3-M2"].type == "EEG" and info["C3-M2"].sf == 256.0
        assert info["E1-M2"].sf == 128.0 and info["SpO2"].sf == 1.0  # native, not MNE's
        assert info["E1-M2"].unit == "uV" and info["Chin1-Chin2"].unit == "uV"
        assert info["ECG"].unit == "mV" and info["SpO2"].unit == "%"
        assert rec.duration_s == 60.0 and rec.gaps == []
        assert rec.start.microsecond == 250_000 and rec.start.second == 0
        assert rec.start.year == 2003 and rec.start.hour == 3
        assert rec.raw is not None and not rec.raw.preload


def test_window_values_units_and_rates(psg: Path) -> None:
    spec = psg_spec()
    with Recording.open(psg) as rec:
        w = rec.window(10.0, 40.0, ["C3-M2", "E1-M2", "SpO2", "Chin1-Chin2", "ECG"])
        assert w.data.dtype == np.float32 and w.data.shape == (5, 30 * 256)
        assert w.sf == 256.0 and w.start_s == 10.0
        assert w.units == ["uV", "uV", "%", "uV", "mV"]
        q = 1000 / 65535  # one digital step of a +-500 range
        np.testing.assert_allclose(w.data[0], spec.signals[0].data[2560:10240], atol=q)
        # mV EOG becomes uV; 128 Hz is held to 256 Hz
        eog = spec.signals[3].data[1280:5120] * 1000
        np.testing.assert_allclose(w.data[1][::2], eog, atol=2 / 65535 * 1000)
        np.testing.assert_array_equal(w.data[1][::2], w.data[1][1::2])
        spo2 = spec.signals[5].data[10:40]
        np.testing.assert_allclose(w.data[2][::256], spo2, atol=0.01)
        np.testing.assert_allclose(w.data[4], spec.signals[6].data[2560:10240], atol=1e-3)
        one = rec.window(10.0, 40.0, ["E1-M2"])
        assert one.sf == 128.0 and one.data.shape == (1, 30 * 128)


def test_window_clips_and_rejects(psg: Path) -> None:
    with Recording.open(psg) as rec:
        w = rec.window(-5.0, 2.0, ["C4"])
        assert w.start_s == 0.0 and w.data.shape == (1, 512)
        w = rec.window(55.0, 90.0, ["C4"])
        assert w.start_s == 55.0 and w.data.shape == (1, 5 * 256)
        assert rec.window(100.0, 130.0, ["C4"]).data.shape == (1, 0)
        with pytest.raises(ValueError, match="before"):
            rec.window(10.0, 10.0)
        with pytest.raises(ValueError, match="before"):
            rec.window(20.0, 10.0)
        with pytest.raises(ValueError, match="unknown channel"):
            rec.window(0.0, 1.0, ["nope"])
        assert rec.window(0.5, 1.5, ["C4"]).data.shape == (1, 256)
        assert rec.window(0.5, 1.5, "C4").ch_names == ["C4"]
    with pytest.raises(ValueError, match="closed"):
        rec.window(0.0, 1.0)


def test_close_is_idempotent_and_a_forgotten_recording_frees_its_file(psg: Path) -> None:
    import gc
    import os

    n_fds = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").is_dir() else None
    rec = Recording.open(psg)
    rec.close()
    rec.close()
    rec = Recording.open(psg)
    del rec
    gc.collect()
    if n_fds is not None:
        assert len(os.listdir("/proc/self/fd")) <= n_fds


def test_full_window_matches_mne(psg: Path) -> None:
    import mne

    raw = mne.io.read_raw_edf(psg, preload=False, verbose="error")
    with Recording.open(psg) as rec:
        w = rec.window(0.0, rec.duration_s, ["C3-M2", "C4"])
    np.testing.assert_allclose(w.data, raw.get_data(picks=["C3-M2", "C4"]) * 1e6, atol=1e-3)


def test_window_reads_only_the_records_it_needs(psg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sleeplm_core.io.recording as recording

    counts: list[int] = []
    real = recording.read_records

    def spy(fd: int, header: object, first: int, count: int) -> np.ndarray:
        counts.append(count)
        return real(fd, header, first, count)  # type: ignore[arg-type]

    monkeypatch.setattr(recording, "read_records", spy)
    with Recording.open(psg) as rec:
        assert counts == []  # opening reads no samples
        rec.window(20.0, 30.0)
        assert counts == [10]
        rec.window(20.5, 21.5, ["SpO2"])
        assert counts[-1] == 2


def test_duplicate_labels_get_unique_names(tmp_path: Path) -> None:
    spec = EdfSpec([Sig("EEG", 64, sine(64, 2)), Sig("EEG", 64, sine(64, 2, 3))])
    with Recording.open(make_edf(tmp_path / "dup.edf", spec)) as rec:
        assert len(set(rec.ch_names)) == 2
        assert all(c.type == "EEG" for c in rec.channels)
        w = rec.window(0, 2)
        assert not np.allclose(w.data[0], w.data[1])


def test_bdf_24_bit(tmp_path: Path) -> None:
    data = sine(512, 4, 3, 3000) - 1000
    path = make_edf(
        tmp_path / "x.bdf", EdfSpec([Sig("Cz", 512, data, pmin=-8000, pmax=8000)], bdf=True)
    )
    with Recording.open(path) as rec:
        w = rec.window(0, 4)
        np.testing.assert_allclose(w.data[0], data, atol=16000 / 2**24 * 2)
        assert rec.channels[0].type == "EEG"


def test_bdf_plus_with_annotations(tmp_path: Path) -> None:
    spec = EdfSpec([Sig("C3-M2", 256, sine(256, 4))], bdf=True, plus="C", subsecond=0.5)
    with Recording.open(make_edf(tmp_path / "x.bdf", spec)) as rec:
        assert rec.start.microsecond == 500_000
        assert rec.window(0, 4).data.shape == (1, 1024)


def test_edf_plus_discontinuous_gaps(tmp_path: Path) -> None:
    data = np.arange(5 * 100, dtype=float) - 250  # 5 records of 100 samples
    spec = EdfSpec([Sig("C3-M2", 100, data)], plus="D", onsets=[0, 1, 2, 5, 6])
    with Recording.open(make_edf(tmp_path / "d.edf", spec)) as rec:
        assert rec.gaps == [(3.0, 2.0)]
        assert rec.duration_s == 7.0
        w = rec.window(0, 7)
        assert w.data.shape == (1, 700)
        x = w.data[0]
        assert np.isnan(x[300:500]).all() and not np.isnan(x[:300]).any()
        np.testing.assert_allclose(x[:300], data[:300], atol=0.02)
        np.testing.assert_allclose(x[500:], data[300:], atol=0.02)
        w = rec.window(4.5, 5.5)  # straddles the end of the gap
        assert np.isnan(w.data[0][:50]).all()
        np.testing.assert_allclose(w.data[0][50:], data[300:350], atol=0.02)
        c = rec.canonical(0, 7)
        assert c.data.shape == (12, 448) and np.isfinite(c.data).all()


def test_malformed_tals_keep_signals_and_invent_nothing(tmp_path: Path) -> None:
    spec = EdfSpec(
        [Sig("C3-M2", 100, sine(100, 3))],
        plus="C",
        raw_tal={0: b"garbage\x14\x14", 1: b"", 2: b"+2\x14\x14\x00+x.y\x15\x14broken\x14"},
    )
    with Recording.open(make_edf(tmp_path / "bad_tal.edf", spec)) as rec:
        assert rec.duration_s == 3.0
        np.testing.assert_allclose(rec.window(0, 3).data[0], spec.signals[0].data, atol=0.02)
        assert rec.start.microsecond == 0
        assert [a.label for a in rec.annotations if "broken" in a.label] == []


@pytest.mark.skipif(
    importlib.util.find_spec("sleeplm_core.io.annotations") is None,
    reason="annotation reader not in this checkout",
)
def test_annotations_from_tals(tmp_path: Path) -> None:
    spec = psg_spec(60.0)
    spec.tals = {
        0: b"+0.25\x1530\x14Sleep stage W\x14\x00",
        1: b"+30.25\x1530\x14Sleep stage 2\x14\x00",
    }
    with Recording.open(make_edf(tmp_path / "scored.edf", spec)) as rec:
        labels = [(a.onset_s, a.label) for a in rec.annotations]
        assert labels == [(0.0, "Sleep stage W"), (30.0, "Sleep stage N2")]
        hyp = rec.hypnogram
        assert hyp is not None and list(hyp.stages) == ["W", "N2"]


@pytest.mark.skipif(
    importlib.util.find_spec("sleeplm_core.io.annotations") is None,
    reason="annotation reader not in this checkout",
)
def test_sidecar_annotations(tmp_path: Path, psg: Path) -> None:
    from sleeplm_core.errors import AnnotationError

    side = tmp_path / "events.csv"
    side.write_text("onset,duration,description\n12.5,15,Obstructive apnea\n40,3,Arousal\n")
    with Recording.open(psg, annotations=side) as rec:
        assert [(a.onset_s, a.label) for a in rec.annotations] == [
            (12.5, "Obstructive apnea"),
            (40.0, "Arousal"),
        ]
    side.write_text("onset,duration,description\n5000,15,Obstructive apnea\n")
    with pytest.raises(AnnotationError, match="another recording"):
        Recording.open(psg, annotations=side)


def test_derivation(psg: Path) -> None:
    spec = psg_spec()
    with Recording.open(psg) as rec:
        # the automatic montage derived C4-M1 from the referential C4 and M1 on open
        assert rec.ch_names[-1] == "C4-M1" and rec.derivation_sources("C4-M1") == ("C4", "M1")
        assert rec.derivation_sources("C4") is None
        info = rec.channels[-1]
        assert (info.type, info.sf, info.unit) == ("EEG", 256.0, "uV")
        w = rec.window(0, 10, ["C4-M1", "C4"])
        expect = spec.signals[1].data[:2560] - spec.signals[2].data[:2560]
        np.testing.assert_allclose(w.data[0], expect, atol=0.05)
        assert rec.canonical_sources[CANONICAL_SLOTS.index("C4_M1")] == "C4-M1"
        rec.add_derivation("mixed", "C4-M1", "E1-M2")  # derivation of a derivation, 2 rates
        assert rec.window(0, 1, ["mixed"]).data.shape == (1, 256)
        with pytest.raises(ValueError, match="already exists"):
            rec.add_derivation("C4", "C3-M2", "M1")
        with pytest.raises(ValueError, match="already exists"):
            rec.add_derivation("C4-M1", "C4", "M1")
        with pytest.raises(ValueError, match="unknown channel"):
            rec.add_derivation("x", "C3-M2", "A2")
        with pytest.raises(ValueError, match="cannot subtract"):
            rec.add_derivation("x", "C3-M2", "SpO2")


def test_canonical(psg: Path) -> None:
    with Recording.open(psg) as rec:
        c = rec.canonical(30.0, 60.0)
        slots = dict(zip(CANONICAL_SLOTS, c.sources, strict=True))
        assert c.data.shape == (12, 1920) and c.data.dtype == np.float32
        assert slots["C3_M2"] == "C3-M2" and slots["EOG_L"] == "E1-M2"
        assert slots["EMG_CHIN"] == "Chin1-Chin2" and slots["SPO2"] == "SpO2"
        assert slots["ECG"] == "ECG" and slots["AIRFLOW"] is None
        assert list(c.mask) == [s is not None for s in c.sources]
        assert not c.data[~c.mask].any()
        c3 = c.data[CANONICAL_SLOTS.index("C3_M2")]
        t = 30.0 + np.arange(1920) / 64.0
        np.testing.assert_allclose(c3, 40 * np.sin(2 * np.pi * 10 * t), atol=1.5)
        spo2 = c.data[CANONICAL_SLOTS.index("SPO2")]
        assert 93 < spo2.mean() < 97


def test_long_spans_are_read_in_chunks_with_the_same_result(
    psg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sleeplm_core.io.recording as recording

    with Recording.open(psg) as rec:
        assert "C4-M1" in rec.ch_names  # derived on open by the automatic montage
        whole = rec.window(0.5, 59.5)
        canon = rec.canonical(0.0, 60.0)
        monkeypatch.setattr(recording, "_CHUNK_BYTES", 3000)  # about one record per read
        monkeypatch.setattr(recording, "_CANONICAL_CHUNK_S", 7.0)
        np.testing.assert_array_equal(rec.window(0.5, 59.5).data, whole.data)
        np.testing.assert_allclose(rec.canonical(0.0, 60.0).data, canon.data, atol=1e-2)


def test_one_central_eeg_is_enough(tmp_path: Path) -> None:
    path = make_edf(tmp_path / "one.edf", EdfSpec([Sig("EEG", 100, sine(100, 30))]))
    with Recording.open(path) as rec:
        c = rec.canonical(0, 30)
        assert c.mask.sum() == 1 and c.sources[CANONICAL_SLOTS.index("C4_M1")] == "EEG"
        assert c.data[c.mask].std() > 10


def test_edfio_written_file(tmp_path: Path) -> None:
    edfio = pytest.importorskip("edfio")
    x = sine(200, 10, 5, 30)
    edf = edfio.Edf(
        [edfio.EdfSignal(x, sampling_frequency=200, label="EEG C3-M2", physical_dimension="uV")]
    )
    edf.write(tmp_path / "e.edf")
    with Recording.open(tmp_path / "e.edf") as rec:
        assert rec.channels[0].type == "EEG"
        np.testing.assert_allclose(rec.window(0, 10).data[0], x, atol=0.01)


# --------------------------------------------------------------------------- real files


def _pyedflib_files() -> list[Path]:
    spec = importlib.util.find_spec("pyedflib")
    if spec is None or spec.origin is None:
        return []
    root = Path(spec.origin).parent
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".edf", ".bdf"))


@pytest.mark.parametrize("path", _pyedflib_files() or [None], ids=lambda p: p.name if p else "none")
def test_pyedflib_sample_files(path: Path | None) -> None:
    if path is None:
        pytest.skip("pyedflib sample files not found")
    with Recording.open(path) as rec:
        assert rec.channels and rec.duration_s > 0
        w = rec.window(0, min(30.0, rec.duration_s))
        assert w.data.shape[0] == len(rec.ch_names) and np.isfinite(w.data).all()
        if path.name == "test_subsecond.edf":
            assert rec.start.microsecond != 0
        assert all(0 <= a.onset_s <= rec.duration_s + 30 for a in rec.annotations)


DREAMS = Path(__file__).parents[3] / "shared" / "data" / "real" / "dreams-spindles" / "excerpt3.edf"


@pytest.mark.real
@pytest.mark.skipif(not DREAMS.is_file(), reason="DREAMS excerpt3.edf not present")
def test_dreams_excerpt3() -> None:
    with Recording.open(DREAMS) as rec:
        types = {c.name: c.type for c in rec.channels}
        assert len(types) == 20
        assert types["C3-A1"] == types["O1-A1"] == types["FP1-A1"] == "EEG"
        assert types["EOG1-A1"] == types["EOG2-A1"] == "EOG" and types["EMG1"] == "EMG"
        assert (types["VTH"], types["VAB"], types["NAF1"]) == ("THORACIC", "ABDOMINAL", "AIRFLOW")
        assert (types["SAO2"], types["POS"], types["hypnogram"]) == ("SPO2", "POSITION", "STAGE")
        slots = dict(zip(CANONICAL_SLOTS, rec.canonical_sources, strict=True))
        assert slots["C3_M2"] == "C3-A1" and slots["EOG_L"] == "EOG1-A1"
        w = rec.window(600, 630, ["C3-A1"])
        assert w.units == ["uV"] and w.sf == 50.0
        assert 10 < float(np.std(w.data)) < 100
        c = rec.canonical(600, 630)
        assert c.data.shape == (12, 1920) and c.mask[CANONICAL_SLOTS.index("C3_M2")]
        txt = DREAMS.with_name("excerpt3.txt")
        if txt.is_file():
            ref = np.loadtxt(txt, skiprows=1, max_rows=31500)[30000:31500]
            np.testing.assert_allclose(w.data[0], ref, atol=0.01)
