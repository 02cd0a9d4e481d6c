"""write_edf: EDF+ written with edfio, read back with MNE (signals) and our TAL reader."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import edfio
import mne
import numpy as np
import pytest

from sleeplm_core.errors import RecordingError
from sleeplm_core.io.annotations import Annotation, Annotations, read_annotations
from sleeplm_core.io.edf_writer import (
    DIGITAL_RANGE,
    SignalSpec,
    physical_range,
    record_duration_s,
    write_edf,
)

START = datetime(2024, 3, 1, 22, 15, 7, 250000)
ANN = Annotations(
    [
        Annotation(0, 30, "Sleep stage W"),
        Annotation(30, 30, "Sleep stage N2"),
        Annotation(12.345678, 14.5, "Obstructive apnea", "Flow", (("scorer", "A"),)),
        Annotation(40.1, 0, "Arousal", "C3-M2"),
        Annotation(41.0, 18, "Oxygen desaturation", "SpO2", (("spo2_nadir", "88"),)),
    ]
)


def _step(data: np.ndarray) -> float:
    lo, hi = physical_range(data)
    return (hi - lo) / (DIGITAL_RANGE[1] - DIGITAL_RANGE[0])


def _signals(seconds: int = 60) -> list[SignalSpec]:
    rng = np.random.default_rng(7)
    t = np.arange(seconds * 128) / 128
    eeg = 30 * np.sin(2 * np.pi * 10 * t) + rng.normal(0, 10, t.size)
    eog = rng.normal(0, 50, t.size)
    spo2 = np.full(seconds * 128, 95.0)  # constant: the range must be widened
    return [
        SignalSpec("C3-M2", "EEG", 128.0, "uV", eeg),
        SignalSpec("E1-M2", "EOG", 128.0, "uV", eog),
        SignalSpec("SpO2", "SPO2", 128.0, "%", spo2),
    ]


def test_write_edf_reads_back_with_mne(tmp_path: Path) -> None:
    path = tmp_path / "night.edf"
    signals = _signals()
    write_edf(path, signals, ANN, start=START)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    assert raw.ch_names == ["C3-M2", "E1-M2", "SpO2"]
    assert raw.info["sfreq"] == 128.0
    assert raw.n_times == 60 * 128
    for i, s in enumerate(signals):
        got = raw.get_data(picks=[i])[0]
        if s.unit == "uV":
            got = got * 1e6  # MNE returns volts
        # Quantization: half a digital step, plus float noise.
        assert np.max(np.abs(got - s.data)) <= _step(s.data) / 2 + 1e-9, s.name
    assert raw.info["meas_date"].replace(tzinfo=None, microsecond=0) == START.replace(microsecond=0)
    # MNE sees the same onsets and the texts (channel and extras encoded after the label).
    assert "Sleep stage N2" in list(raw.annotations.description)
    assert sorted(raw.annotations.onset) == pytest.approx(sorted(a.onset_s for a in ANN))
    assert read_annotations(path, duration_s=60.0) == ANN  # exactly, sub-second start included


def test_write_edf_keeps_subsecond_start_and_header_fields(tmp_path: Path) -> None:
    path = tmp_path / "night.edf"
    write_edf(path, _signals(10), [], start=START)
    edf = edfio.read_edf(path)
    assert edf.startdate == START.date()
    assert edf.starttime == START.time()  # microseconds kept in the first TAL
    assert edf.reserved == "EDF+C"
    assert edf.data_record_duration == 1.0
    sig = edf.get_signal("SpO2")
    assert (sig.digital_min, sig.digital_max) == DIGITAL_RANGE
    assert sig.physical_min < 95.0 < sig.physical_max
    assert sig.physical_dimension == "%"
    assert sig.transducer_type == "" and sig.prefiltering == ""


def test_mixed_rates_share_a_record_duration(tmp_path: Path) -> None:
    path = tmp_path / "mixed.edf"
    rng = np.random.default_rng(1)
    signals = [
        SignalSpec("C3-M2", "EEG", 256.0, "uV", rng.normal(0, 20, 256 * 20)),
        SignalSpec("Pos", "POSITION", 0.5, "", np.repeat([1.0, 2.0], 5)),
        SignalSpec("SpO2", "SPO2", 1.0, "%", np.linspace(90, 97, 20)),
    ]
    write_edf(path, signals, ANN.between(0, 20), start=START)
    edf = edfio.read_edf(path)
    assert edf.data_record_duration == 2.0  # 0.5 Hz needs 2-s records
    for s in signals:
        sig = edf.get_signal(s.name)
        assert sig.sampling_frequency == s.sf
        assert np.max(np.abs(sig.data - s.data)) <= _step(s.data) / 2 + 1e-9
    assert list(read_annotations(path)) == ANN.between(0, 20)


@pytest.mark.parametrize(
    "sfs, expected",
    [([256, 100, 1], 1.0), ([256, 0.5], 2.0), ([200, 1 / 30], 30.0), ([2.5, 64], 2.0)],
)
def test_record_duration(sfs: list[float], expected: float) -> None:
    assert record_duration_s(sfs) == expected


def test_physical_range_has_headroom_and_widens_constants() -> None:
    lo, hi = physical_range(np.array([-100.0, 100.0]))
    assert lo == pytest.approx(-102.0) and hi == pytest.approx(102.0)
    lo, hi = physical_range(np.zeros(5))
    assert lo < 0 < hi
    lo, hi = physical_range(np.full(5, 95.0))
    assert lo < 95.0 < hi


def test_write_edf_refuses_bad_input(tmp_path: Path) -> None:
    good = _signals(2)
    with pytest.raises(ValueError, match="different durations"):
        write_edf(
            tmp_path / "x.edf",
            [good[0], SignalSpec("S", "OTHER", 128.0, "", np.zeros(3))],
            [],
            start=START,
        )
    with pytest.raises(ValueError, match="non-finite"):
        write_edf(
            tmp_path / "x.edf",
            [SignalSpec("S", "OTHER", 1.0, "", np.array([1.0, np.nan]))],
            [],
            start=START,
        )
    with pytest.raises(ValueError, match="at least one signal"):
        write_edf(tmp_path / "x.edf", [], [], start=START)
    with pytest.raises(RecordingError, match="cannot write here"):
        write_edf(tmp_path / "no_dir" / "x.edf", good, [], start=START)
    assert not (tmp_path / "x.edf").exists()
