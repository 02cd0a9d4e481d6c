"""Damaged and wrong input: every failure is a RecordingError naming the file and problem."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleeplm_core.errors import RecordingError
from sleeplm_core.io.recording import Recording
from tests.core.test_recording import EdfSpec, Sig, edf_bytes, sine

N_SIGNALS = 2  # + the annotation signal
GOOD = edf_bytes(
    EdfSpec(
        [
            Sig("C3-M2", 64, sine(64, 4)),
            Sig("SpO2", 1, np.full(4, 95.0), unit="%", pmin=0, pmax=100),
        ],
        plus="C",
    )
)
HEADER_BYTES = 256 * (N_SIGNALS + 2)
RECORD_BYTES = (len(GOOD) - HEADER_BYTES) // 4


def _signal_field(offset_per_signal: int, width: int, signal: int, n: int = N_SIGNALS + 1) -> slice:
    """Slice of one signal's header field; offset_per_signal is the sum of earlier widths."""
    start = 256 + offset_per_signal * n + signal * width
    return slice(start, start + width)


PMIN = 16 + 80 + 8  # label, transducer, unit
PMAX = PMIN + 8
NSAMP = PMAX + 8 + 8 + 8 + 80  # pmax, dmin, dmax, prefilter


def _patch(data: bytes, where: slice, text: str) -> bytes:
    width = where.stop - where.start
    return data[: where.start] + text.ljust(width).encode("latin-1")[:width] + data[where.stop :]


def _expect(path: Path, *words: str) -> RecordingError:
    with pytest.raises(RecordingError) as info:
        Recording.open(path)
    line = info.value.one_line()
    assert str(path) in line and "\n" not in line
    for word in words:
        assert word in line.lower(), line
    return info.value


def _write(tmp_path: Path, data: bytes, name: str = "bad.edf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_good_file_opens(tmp_path: Path) -> None:
    with Recording.open(_write(tmp_path, GOOD, "good.edf")) as rec:
        assert rec.ch_names == ["C3-M2", "SpO2"] and rec.duration_s == 4.0


def test_missing_file(tmp_path: Path) -> None:
    _expect(tmp_path / "absent.edf", "no such file")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "night.edf"
    folder.mkdir()
    _expect(folder, "directory")


@pytest.mark.parametrize("name", ["night.txt", "night", "night.xml", "night.edf.gz"])
def test_wrong_extension(tmp_path: Path, name: str) -> None:
    _expect(_write(tmp_path, GOOD, name), "unknown format")


def test_not_an_edf(tmp_path: Path) -> None:
    _expect(_write(tmp_path, b"<?xml version='1.0'?>" + b" " * 400), "not an edf")
    _expect(_write(tmp_path, b"hello"), "truncated")
    _expect(_write(tmp_path, b""), "truncated")


def test_bdf_content_named_edf(tmp_path: Path) -> None:
    bdf = edf_bytes(EdfSpec([Sig("Cz", 64, sine(64, 2))], bdf=True))
    _expect(_write(tmp_path, bdf, "x.edf"), "bdf", "rename")
    _expect(_write(tmp_path, GOOD, "x.bdf"), "edf", "rename")


def test_truncated_inside_a_record(tmp_path: Path) -> None:
    _expect(_write(tmp_path, GOOD[: HEADER_BYTES + 2 * RECORD_BYTES + 10]), "truncated", "partial")


def test_truncated_inside_the_header(tmp_path: Path) -> None:
    _expect(_write(tmp_path, GOOD[: HEADER_BYTES - 100]), "truncated")


@pytest.mark.parametrize(("claimed", "words"), [("9", ("truncated", "9")), ("2", ("wrong",))])
def test_header_lies_about_record_count(tmp_path: Path, claimed: str, words: tuple[str]) -> None:
    _expect(_write(tmp_path, _patch(GOOD, slice(236, 244), claimed)), "records", *words)


def test_unknown_record_count_is_inferred(tmp_path: Path) -> None:
    with Recording.open(_write(tmp_path, _patch(GOOD, slice(236, 244), "-1"))) as rec:
        assert rec.duration_s == 4.0 and any("-1" in n for n in rec.notes)


@pytest.mark.parametrize(
    ("where", "text", "words"),
    [
        (slice(236, 244), "four", ("number of data records",)),
        (slice(244, 252), "1s", ("data record duration",)),
        (slice(252, 256), "x", ("number of signals",)),
        (slice(184, 192), "abc", ("header size",)),
        (_signal_field(PMIN, 8, 0), "-5O0", ("physical minimum", "c3-m2")),
        (_signal_field(PMAX, 8, 1), "nan", ("physical maximum", "spo2")),
        (_signal_field(NSAMP, 8, 0), "64.5", ("samples per record", "c3-m2")),
    ],
)
def test_non_numeric_fields(tmp_path: Path, where: slice, text: str, words: tuple[str]) -> None:
    _expect(_write(tmp_path, _patch(GOOD, where, text)), "not", *words)


def test_physical_min_equals_max(tmp_path: Path) -> None:
    data = _patch(_patch(GOOD, _signal_field(PMIN, 8, 0), "7"), _signal_field(PMAX, 8, 0), "7")
    _expect(_write(tmp_path, data), "physical minimum equals maximum", "c3-m2")


@pytest.mark.parametrize("reserved", ["EDF+", "EDF+X", "EDF+D", "BDF+C", "24BIT"])
def test_odd_reserved_field_opens(tmp_path: Path, reserved: str) -> None:
    with Recording.open(_write(tmp_path, _patch(GOOD, slice(192, 236), reserved))) as rec:
        assert rec.duration_s == 4.0 and rec.window(0, 4).data.shape == (2, 256)


def test_zero_record_duration(tmp_path: Path) -> None:
    _expect(_write(tmp_path, _patch(GOOD, slice(244, 252), "0")), "duration")


def test_annotation_only_edf_plus(tmp_path: Path) -> None:
    ns = 1
    head = bytearray(GOOD[:256])
    head[184:192] = str(256 * (ns + 1)).ljust(8).encode()
    head[236:244] = b"1".ljust(8)
    head[244:252] = b"0".ljust(8)
    head[252:256] = b"1".ljust(4)
    sig = (
        "EDF Annotations".ljust(16)
        + " " * 80
        + " " * 8
        + "-1".ljust(8)
        + "1".ljust(8)
        + "-32768".ljust(8)
        + "32767".ljust(8)
        + " " * 80
        + "30".ljust(8)
        + " " * 32
    ).encode()
    tal = b"+0\x14\x14\x00+10\x155\x14Arousal\x14\x00".ljust(60, b"\x00")
    _expect(_write(tmp_path, bytes(head) + sig + tal), "no signal channels")


def test_mne_failure_is_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mne

    def broken(*args: object, **kwargs: object) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(mne.io, "read_raw_edf", broken)
    path = _write(tmp_path, GOOD, "ok.edf")
    with Recording.open(path) as rec:  # MNE parses the file only when rec.raw is used
        assert rec.ch_names
        with pytest.raises(RecordingError) as info:
            _ = rec.raw
    line = info.value.one_line()
    assert str(path) in line and "\n" not in line and "mne cannot read it" in line.lower()


# --------------------------------------------------------------------------- fuzz

_PRINTABLE = st.sampled_from(list(b"0123456789 .+-eE") + [0, 0xFF, ord("x")])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, HEADER_BYTES - 1), st.one_of(_PRINTABLE, st.integers(0, 255))),
        min_size=1,
        max_size=8,
    ),
    cut=st.one_of(st.none(), st.integers(0, len(GOOD))),
)
def test_fuzzed_header_never_crashes(edits: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(GOOD)
    for pos, value in edits:
        data[pos] = value
    if cut is not None:
        data = data[:cut]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.edf"
        path.write_bytes(bytes(data))
        try:
            rec = Recording.open(path)
        except RecordingError as exc:
            assert exc.one_line().startswith(str(path))
            return
        with rec:
            assert rec.ch_names and rec.duration_s > 0
            w = rec.window(0.0, min(rec.duration_s, 2.0))
            assert w.data.dtype == np.float32 and w.data.shape[0] == len(rec.ch_names)
            c = rec.canonical(0.0, min(rec.duration_s, 2.0))
            assert c.data.shape[0] == 12
            len(rec.annotations)
