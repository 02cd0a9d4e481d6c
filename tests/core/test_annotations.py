"""Annotation model, readers (EDF+ TAL, NSRR XML, CSV, DREAMS), writers and round trips."""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleeplm_core.errors import AnnotationError
from sleeplm_core.io import labels as L
from sleeplm_core.io.annotations import (
    Annotation,
    Annotations,
    Tal,
    parse_tals,
    read_annotations,
    write_csv,
    write_edf_annotations,
    write_nsrr_xml,
)
from sleeplm_core.io.atomic import atomic_open, atomic_write_bytes
from sleeplm_core.io.hypnogram import Hypnogram

START = datetime(2024, 3, 1, 22, 15, 7, 250000)


# --------------------------------------------------------------------------- model
def test_annotation_normalizes_label_channel_and_extras() -> None:
    a = Annotation(1, 2, "OA", "  ", (("b", "2"), ("a", "1")))
    assert a.label == L.OBSTRUCTIVE_APNEA
    assert a.channel is None
    assert a.extras == (("a", "1"), ("b", "2"))
    assert a.onset_s == 1.0 and isinstance(a.onset_s, float)
    assert a.extra("b") == "2" and a.extra("zz") is None
    assert Annotation(0, 30, "Sleep stage 4").label == L.STAGE_LABEL["N3"]
    assert Annotation(0, 30, "Stage 2 sleep|2").is_stage
    assert not a.is_stage


@pytest.mark.parametrize("onset, duration", [(0, -1), (math.nan, 1), (0, math.inf)])
def test_annotation_rejects_bad_times(onset: float, duration: float) -> None:
    with pytest.raises(ValueError):
        Annotation(onset, duration, "Arousal")


def test_annotations_order_and_editing() -> None:
    n2 = Annotation(30, 30, "N2")
    w = Annotation(0, 30, "W")
    oa = Annotation(40, 10, "Obstructive apnea", "Flow")
    ar = Annotation(40, 3, "Arousal")
    ann = Annotations([oa, n2, w, ar])
    assert list(ann) == [w, n2, ar, oa]  # by onset, then label
    assert len(ann) == 4 and ann[0] == w
    ann.remove(ar)
    assert ar not in list(ann)
    with pytest.raises(ValueError):
        ann.remove(ar)
    ann.add(ar)
    assert list(ann) == [w, n2, ar, oa]
    hyp = Annotation(45, 12, "Hypopnea")
    ann.replace(oa, hyp)
    assert list(ann) == [w, n2, ar, hyp]
    assert ann.counts() == {
        L.STAGE_LABEL["W"]: 1,
        L.STAGE_LABEL["N2"]: 1,
        "Arousal": 1,
        "Hypopnea": 1,
    }
    assert ann.stages() == [w, n2]
    assert ann.events() == [ar, hyp]
    assert ann.with_label("arousal", "H") == [ar, hyp]


def test_between_returns_overlapping() -> None:
    long = Annotation(0, 100, "N2")
    point = Annotation(50, 0, "Arousal")
    late = Annotation(60, 5, "Hypopnea")
    ann = Annotations([long, point, late])
    assert ann.between(50, 60) == [long, point]  # [50, 60): late starts at the stop
    assert ann.between(99, 200) == [long]
    assert ann.between(100, 200) == []
    assert ann.between(64, 65) == [long, late]


# --------------------------------------------------------------------------- TALs
def test_parse_tals_reads_well_formed_and_skips_malformed() -> None:
    raw = (
        b"+0.25\x14\x14\x00"  # time-keeping TAL
        b"+30\x1530\x14Sleep stage W\x14\x00"
        b"-2.5\x14a\x14b\x14\x00"  # two texts, negative onset
        b"+abc\x14bad onset\x14\x00"
        b"+60\x14no terminator\x00"
        b"+70\x15x\x14bad duration\x14\x00"
        b"\x14\x00"  # empty timing
        b"+80\x14caf\xe9\x14\x00"  # latin-1 text
        b"\x00\x00\x00"
    )
    assert parse_tals(raw) == [
        Tal(0.25, None, ("",)),
        Tal(30.0, 30.0, ("Sleep stage W",)),
        Tal(-2.5, None, ("a", "b")),
        Tal(80.0, None, ("café",)),
    ]
    assert parse_tals(raw)[0].is_timekeeping
    assert parse_tals(b"") == []
    assert parse_tals(b"\x00" * 64) == []


def _edf_annotation_bytes(tals: bytes, *, starttime: str = "22.15.07") -> bytes:
    """A Sleep-EDF style annotation-only EDF+ file: one record of TALs."""
    n = (len(tals) + 1) // 2
    tals = tals.ljust(2 * n, b"\x00")

    def f(text: str, width: int) -> bytes:
        return text.ljust(width).encode("ascii")

    header = (
        f("0", 8)
        + f("X X X X", 80)
        + f("Startdate 01-MAR-2024 X X X", 80)
        + f("01.03.24", 8)
        + f(starttime, 8)
        + f("512", 8)
        + f("EDF+C", 44)
        + f("1", 8)
        + f("0", 8)
        + f("1", 4)
    )
    signal = (
        f("EDF Annotations", 16)
        + f("", 80)
        + f("", 8)
        + f("-1", 8)
        + f("1", 8)
        + f("-32768", 8)
        + f("32767", 8)
        + f("", 80)
        + f(str(n), 8)
        + f("", 32)
    )
    return header + signal + tals


def test_reads_sleep_edf_hypnogram(tmp_path: Path) -> None:
    tals = (
        b"+0\x14\x14\x00"
        b"+0\x1560\x14Sleep stage W\x14\x00"
        b"+60\x1530\x14Sleep stage 1\x14\x00"
        b"+90\x1530\x14Sleep stage 4\x14\x00"
        b"+120\x1530\x14Sleep stage R\x14\x00"
        b"+150\x1530\x14Movement time\x14\x00"
        b"+180\x1560\x14Sleep stage ?\x14\x00"
        b"+bad\x14ignored\x14\x00"
    )
    path = tmp_path / "SC4001EC-Hypnogram.edf"
    path.write_bytes(_edf_annotation_bytes(tals))
    ann = read_annotations(path, duration_s=240)
    assert [(a.onset_s, a.duration_s, a.label) for a in ann] == [
        (0.0, 60.0, "Sleep stage W"),
        (60.0, 30.0, "Sleep stage N1"),
        (90.0, 30.0, "Sleep stage N3"),
        (120.0, 30.0, "Sleep stage R"),
        (150.0, 30.0, "Movement time"),
        (180.0, 60.0, "Sleep stage ?"),
    ]
    hyp = Hypnogram.from_annotations(ann, 240)
    assert hyp is not None
    assert hyp.stages.tolist() == ["W", "W", "N1", "N3", "REM", "ART", "UNS", "UNS"]


def test_edf_annotations_subtract_subsecond_start_and_align_to_recording(tmp_path: Path) -> None:
    path = tmp_path / "ann.edf"
    path.write_bytes(_edf_annotation_bytes(b"+0.5\x14\x14\x00+10.5\x152\x14Arousal\x14\x00"))
    assert [a.onset_s for a in read_annotations(path)] == [10.0]
    # The recording started 2.5 s before this file's first sample: onsets move by +2.5 s.
    rec_start = datetime(2024, 3, 1, 22, 15, 5)
    assert [a.onset_s for a in read_annotations(path, start=rec_start)] == [12.5]


def test_edf_without_annotations_is_refused(tmp_path: Path) -> None:
    raw = bytearray(_edf_annotation_bytes(b"+0\x14\x14\x00"))
    raw[256:272] = b"EEG Fpz-Cz      "
    path = tmp_path / "plain.edf"
    path.write_bytes(bytes(raw))
    with pytest.raises(AnnotationError, match="without EDF\\+ annotations"):
        read_annotations(path)


# --------------------------------------------------------------------------- NSRR XML
NSRR = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<PSGAnnotation>
<SoftwareVersion>Compumedics</SoftwareVersion>
<EpochLength>30</EpochLength>
<ScoredEvents>
<ScoredEvent>
<EventType/>
<EventConcept>Recording Start Time</EventConcept>
<Start>0</Start>
<Duration>28800.0</Duration>
<ClockTime>00.00.00 22.15.07</ClockTime>
</ScoredEvent>
<ScoredEvent>
<EventType>Stages|Stages</EventType>
<EventConcept>Wake|0</EventConcept>
<Start>0.0</Start>
<Duration>60.0</Duration>
</ScoredEvent>
<ScoredEvent>
<EventType>Stages|Stages</EventType>
<EventConcept>Stage 2 sleep|2</EventConcept>
<Start>60.0</Start>
<Duration>30.0</Duration>
</ScoredEvent>
<ScoredEvent>
<EventType>Stages|Stages</EventType>
<EventConcept>REM sleep|5</EventConcept>
<Start>90.0</Start>
<Duration>30.0</Duration>
</ScoredEvent>
<ScoredEvent>
<EventType>Respiratory|Respiratory</EventType>
<EventConcept>Obstructive apnea|Obstructive Apnea</EventConcept>
<Start>65.3</Start>
<Duration>14.2</Duration>
<SignalLocation>ABDO RES</SignalLocation>
</ScoredEvent>
<ScoredEvent>
<EventType>Respiratory|Respiratory</EventType>
<EventConcept>SpO2 desaturation|SpO2 desaturation</EventConcept>
<Start>80.1</Start>
<Duration>20.0</Duration>
<SignalLocation>SaO2</SignalLocation>
<SpO2Nadir>88</SpO2Nadir>
<SpO2Baseline>95</SpO2Baseline>
</ScoredEvent>
<ScoredEvent>
<EventType>Arousals|Arousals</EventType>
<EventConcept>Arousal|Arousal ()</EventConcept>
<Start>79.0</Start>
<Duration>4.0</Duration>
<SignalLocation>C3</SignalLocation>
</ScoredEvent>
<ScoredEvent>
<EventType>Limb Movement|Limb Movement</EventType>
<EventConcept>Limb movement - left|Limb Movement (Left)</EventConcept>
<Start>100</Start>
<Duration>2</Duration>
<SignalLocation>Left Leg</SignalLocation>
</ScoredEvent>
<ScoredEvent>
<EventType>|</EventType>
<EventConcept>Unsure|Unsure</EventConcept>
<Start>110</Start>
<Duration>0</Duration>
</ScoredEvent>
</ScoredEvents>
</PSGAnnotation>
"""


def test_reads_nsrr_xml(tmp_path: Path) -> None:
    path = tmp_path / "shhs1-200001-nsrr.xml"
    path.write_text(NSRR)
    ann = read_annotations(path, duration_s=28800)
    assert [(a.onset_s, a.label) for a in ann.stages()] == [
        (0.0, "Sleep stage W"),
        (60.0, "Sleep stage N2"),
        (90.0, "Sleep stage R"),
    ]
    oa, ar, desat = (ann.with_label(lab)[0] for lab in ("OA", "Arousal", "Desaturation"))
    assert (oa.onset_s, oa.duration_s, oa.channel) == (65.3, 14.2, "ABDO RES")
    assert (ar.onset_s, ar.channel) == (79.0, "C3")
    assert desat.extras == (("spo2_baseline", "95"), ("spo2_nadir", "88"))
    assert ann.with_label("Limb movement")[0].channel == "Left Leg"
    assert ann.with_label("Unsure")[0].onset_s == 110.0
    assert len(ann) == 8  # the "Recording Start Time" event is not an annotation


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
            "<PSGAnnotation>&lol;</PSGAnnotation>",
            "entity declarations",
        ),
        ("<PSGAnnotation><ScoredEvents><ScoredEvent>", "not well-formed XML"),
        ("<html><body/></html>", "not NSRR annotations"),
        (
            "<PSGAnnotation><ScoredEvents><ScoredEvent><EventConcept>Arousal</EventConcept>"
            "<Start>soon</Start></ScoredEvent></ScoredEvents></PSGAnnotation>",
            "Start 'soon' is not a number",
        ),
        (
            "<PSGAnnotation><ScoredEvents><ScoredEvent><EventConcept>Arousal</EventConcept>"
            "</ScoredEvent></ScoredEvents></PSGAnnotation>",
            "has no Start",
        ),
    ],
)
def test_bad_xml_is_a_one_line_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=problem) as info:
        read_annotations(path)
    assert "\n" not in info.value.one_line() and str(path) in info.value.one_line()


# --------------------------------------------------------------------------- CSV
def test_reads_edfbrowser_csv(tmp_path: Path) -> None:
    path = tmp_path / "edfbrowser.csv"
    path.write_text(
        "Onset,Duration,Annotation\n"
        "+0.0000000,30,Sleep stage W\n"
        "+30.5000000,,Arousal\n"
        "00:01:05.250,-1,Obstructive Apnea\n"
    )
    ann = read_annotations(path)
    assert [(a.onset_s, a.duration_s, a.label) for a in ann] == [
        (0.0, 30.0, "Sleep stage W"),
        (30.5, 0.0, "Arousal"),
        (65.25, 0.0, "Obstructive apnea"),
    ]


def test_reads_yasa_spindle_table(tmp_path: Path) -> None:
    path = tmp_path / "yasa_events.csv"
    path.write_text(
        "Start,Peak,End,Duration,Amplitude,Frequency,Oscillations,Stage,Channel,IdxChannel\n"
        "12.5,12.9,13.6,1.1,45.2,12.8,13,2,C3-M2,0\n"
        "40.0,40.4,40.8,,38.0,13.1,10,2,C4-M1,1\n"
    )
    first, second = read_annotations(path)
    assert (first.onset_s, first.duration_s, first.label, first.channel) == (
        12.5,
        1.1,
        "Spindle",
        "C3-M2",
    )
    assert ("Stage", "2") in first.extras and ("Frequency", "12.8") in first.extras
    assert second.duration_s == pytest.approx(0.8)  # from End - Start


def test_reads_mne_csv_with_clock_onsets(tmp_path: Path) -> None:
    path = tmp_path / "mne_annotations.csv"
    path.write_text(
        "onset,duration,description,ch_names\n"
        "2024-03-01 22:15:37.250000,30.0,Sleep stage 2,()\n"
        "2024-03-01 22:16:10.250000,1.5,Spindle,\"('C3', 'C4')\"\n"
    )
    ann = read_annotations(path, start=START)
    assert [(a.onset_s, a.label, a.channel) for a in ann] == [
        (30.0, "Sleep stage N2", None),
        (63.0, "Spindle", "C3,C4"),
    ]
    with pytest.raises(AnnotationError, match="clock time; the recording start is needed"):
        read_annotations(path)


def test_reads_mne_txt_annotations(tmp_path: Path) -> None:
    path = tmp_path / "saved-annot.txt"
    path.write_text(
        "# MNE-Annotations\n"
        "# orig_time : 2024-03-01 22:15:07.250000\n"
        "# onset, duration, description, ch_names\n"
        "3.5,2.0,Spindle,C3:C4\n"
        "10.0,0.0,Sleep stage 2,\n"
    )
    assert [(a.onset_s, a.label, a.channel) for a in read_annotations(path)] == [
        (3.5, "Spindle", "C3:C4"),
        (10.0, "Sleep stage N2", None),
    ]
    # Onsets count from orig_time; placed on a recording that started 0.25 s earlier.
    shifted = read_annotations(path, start=datetime(2024, 3, 1, 22, 15, 7))
    assert [a.onset_s for a in shifted] == [3.75, 10.25]


def test_timekeeping_tal_may_carry_annotations(tmp_path: Path) -> None:
    path = tmp_path / "tk.edf"
    path.write_bytes(
        _edf_annotation_bytes(b"+0.5\x14\x14Lights off\x14\x00+1.5\x14Arousal\x14\x00")
    )
    assert [(a.onset_s, a.label) for a in read_annotations(path)] == [
        (0.0, "Lights off"),
        (1.0, "Arousal"),
    ]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("foo,bar\n1,2\n", "not an annotation file"),
        ("onset,duration,description\n1,2\n", "row 2: 2 fields where the header has 3"),
        ("onset,duration,description\nsoon,2,Arousal\n", "row 2: onset 'soon' is neither"),
        ("onset,duration,description\n1,-5,Arousal\n", "row 2: negative duration"),
        ("onset,duration,description\n1,2,\n", "row 2: empty description"),
        ("onset,duration,description\n1,nan,Arousal\n", "not a finite number"),
    ],
)
def test_bad_csv_is_a_one_line_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=problem):
        read_annotations(path)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "is empty"),
        (b"\x00\x01\x02garbage", "not an annotation file"),
        (b"0       short", "too short to be an EDF file"),
    ],
)
def test_malformed_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "x.dat"
    path.write_bytes(content)
    with pytest.raises(AnnotationError, match=problem):
        read_annotations(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="no such file"):
        read_annotations(tmp_path / "nope.xml")
    with pytest.raises(AnnotationError, match="is a directory"):
        read_annotations(tmp_path)


# --------------------------------------------------------------------------- fit check
def test_annotations_for_another_recording_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    write_csv([Annotation(40123.0, 10, "Arousal")], path)
    with pytest.raises(AnnotationError) as info:
        read_annotations(path, duration_s=28800.0)
    line = info.value.one_line()
    assert line.startswith(str(path))
    assert "event at 40123.0 s lies beyond the recording's 28800.0 s" in line
    assert "another recording" in line and "do not fit this recording" in line
    # Within one epoch past the end is tolerated (a last partial epoch).
    write_csv([Annotation(28800.0 + 29.0, 10, "Arousal")], path)
    assert len(read_annotations(path, duration_s=28800.0)) == 1
    write_csv([Annotation(-5.0, 10, "Arousal")], path)
    with pytest.raises(AnnotationError, match="before the recording's start"):
        read_annotations(path, duration_s=28800.0)


# --------------------------------------------------------------------------- writers
def test_writers_refuse_unwritable_paths(tmp_path: Path) -> None:
    ann = [Annotation(0, 30, "W")]
    target = tmp_path / "missing_dir" / "a"
    for write in (write_csv, write_nsrr_xml):
        with pytest.raises(AnnotationError, match="cannot write here"):
            write(ann, target)
    with pytest.raises(AnnotationError, match="cannot write here"):
        write_edf_annotations(ann, target, start=START)


def test_edf_sidecar_rows_go_to_the_closest_annotation(tmp_path: Path) -> None:
    """Two annotations at one onset with one label, durations within the match tolerance:
    the sidecar's channel goes back to its own one (a case the round-trip property found)."""
    ann = Annotations(
        [
            Annotation(0.0, 0.0, "Obstructive apnea"),
            Annotation(0.0, 5e-324, "Obstructive apnea", channel="C3-M2"),
        ]
    )
    path = tmp_path / "two.edf"
    write_edf_annotations(ann, path, start=START)
    got = {(a.duration_s, a.channel) for a in read_annotations(path)}
    assert got == {(0.0, None), (5e-324, "C3-M2")}


def test_edf_sidecar_rows_break_rounded_ties_by_duration(tmp_path: Path) -> None:
    """Onsets that differ by 2e-102 s (written as one) and durations by 2e-137: the two
    distances add up to the same float, so the duration alone must decide (a case the
    round-trip property found)."""
    ann = Annotations(
        [
            Annotation(0.0, 0.0, "Obstructive apnea"),
            Annotation(0.0, 0.0, "Obstructive apnea"),
            Annotation(2.0465041352496486e-102, 1.8741122463252846e-137, "Obstructive apnea",
                       extras=(("spo2_nadir", ""),)),
        ]
    )  # fmt: skip
    path = tmp_path / "three.edf"
    write_edf_annotations(ann, path, start=START)
    got = sorted((a.duration_s, a.extras) for a in read_annotations(path))
    assert got == [(0.0, ()), (0.0, ()), (1.8741122463252846e-137, (("spo2_nadir", ""),))]


def test_writers_refuse_texts_their_format_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="XML cannot keep"):
        write_nsrr_xml([Annotation(0, 1, "Arousal", extras=(("k", "a\x01b"),))], tmp_path / "x")
    with pytest.raises(AnnotationError, match="EDF\\+"):
        write_edf_annotations([Annotation(0, 1, "bad\x14label")], tmp_path / "e", start=START)


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError), atomic_open(path, "w") as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.csv"]  # no temporary file left behind
    with atomic_open(path) as f:
        f.write("new")
    assert path.read_text() == "new"


# --------------------------------------------------------------------------- round trips
_TEXT = st.characters(categories=("L", "N", "P", "S", "Zs"))
_label = st.one_of(
    st.sampled_from([*L.EVENT_LABELS, *L.STAGE_LABEL.values(), "Unsure", "a@@b", "x##[]"]),
    st.text(_TEXT, min_size=1, max_size=12),
).filter(lambda s: s.strip() != "")
_channel = st.one_of(
    st.none(),
    st.sampled_from(["C3-M2", "SpO2", "Left Leg"]),
    st.text(st.characters(categories=("L", "N", "Zs"), exclude_characters="@"), max_size=8),
)
_extras = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["spo2_nadir", "spo2_baseline"]), st.text(_TEXT, max_size=6)),
        st.text(_TEXT, max_size=8),
    ),
    max_size=3,
).map(tuple)
_annotation = st.builds(
    Annotation,
    onset_s=st.floats(0, 86400, allow_nan=False, allow_infinity=False),
    duration_s=st.floats(0, 3600, allow_nan=False, allow_infinity=False),
    label=_label,
    channel=_channel,
    extras=_extras,
)
_sets = st.lists(_annotation, max_size=12).map(Annotations)
_RT = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_same(got: Annotations, want: Annotations, *, onset_tol: float = 0.0) -> None:
    assert len(got) == len(want)

    def key(a: Annotation) -> tuple[object, ...]:
        return (round(a.onset_s, 6), a.label, a.duration_s, a.channel or "", a.extras)

    for g, w in zip(sorted(got, key=key), sorted(want, key=key), strict=True):
        assert abs(g.onset_s - w.onset_s) <= onset_tol
        assert (g.duration_s, g.label, g.channel, g.extras) == (
            w.duration_s,
            w.label,
            w.channel,
            w.extras,
        )


@_RT
@given(ann=_sets)
def test_csv_round_trip_is_lossless(tmp_path: Path, ann: Annotations) -> None:
    path = tmp_path / "rt.csv"
    write_csv(ann, path)
    assert read_annotations(path) == ann


@_RT
@given(ann=_sets)
def test_nsrr_xml_round_trip_is_lossless(tmp_path: Path, ann: Annotations) -> None:
    path = tmp_path / "rt.xml"
    write_nsrr_xml(ann, path)
    assert read_annotations(path) == ann


@_RT
@given(
    ann=_sets,
    start=st.datetimes(datetime(1985, 1, 2), datetime(2084, 12, 30)),
)
def test_edf_round_trip_is_lossless(tmp_path: Path, ann: Annotations, start: datetime) -> None:
    path = tmp_path / "rt.edf"
    write_edf_annotations(ann, path, start=start)
    # edfio adds the sub-second start in floating point: onsets within a nanosecond.
    _assert_same(read_annotations(path), ann, onset_tol=1e-9)
    _assert_same(read_annotations(path, start=start), ann, onset_tol=1e-9)


# --------------------------------------------------------------------------- DREAMS
def test_reads_dreams_text_files(real_data_dir: Path) -> None:
    folder = real_data_dir / "dreams-spindles"
    hyp_ann = read_annotations(folder / "Hypnogram_excerpt1.txt", duration_s=1800)
    assert sum(a.duration_s for a in hyp_ann) == 1800.0  # 360 rows of 5 s
    hyp = Hypnogram.from_annotations(hyp_ann, 1800)
    assert hyp is not None and len(hyp) == 60
    spindles = read_annotations(folder / "Visual_scoring1_excerpt1.txt", duration_s=1800)
    assert len(spindles) == 52
    assert spindles[0] == Annotation(282.24, 0.72, "Spindle", "C3-A1", (("scorer", "vis1"),))
    with pytest.raises(AnnotationError, match="signal file"):
        read_annotations(folder / "excerpt1.txt")


def test_reads_dreams_hypnogram_codes(tmp_path: Path) -> None:
    path = tmp_path / "Hypnogram_x.txt"
    # Reversed DREAMS codes: 5 W, 4 REM, 3 S1, 2 S2, 1 S3, 0 S4, -1 movement, -2 unknown.
    path.write_text("[Hypnogram]\n5\n5\n4\n3\n2\n1\n0\n-1\n-2\n-3\n")
    got = [(a.onset_s, a.duration_s, a.label) for a in read_annotations(path)]
    assert got == [
        (0.0, 10.0, "Sleep stage W"),
        (10.0, 5.0, "Sleep stage R"),
        (15.0, 5.0, "Sleep stage N1"),
        (20.0, 5.0, "Sleep stage N2"),
        (25.0, 10.0, "Sleep stage N3"),
        (35.0, 5.0, "Movement time"),
        (40.0, 10.0, "Sleep stage ?"),
    ]


PROFUSION = """<?xml version="1.0" encoding="UTF-8"?>
<CMPStudyConfig>
<EpochLength>30</EpochLength>
<ScoredEvents>
<ScoredEvent><Name>Obstructive Apnea</Name><Start>35.5</Start><Duration>12</Duration>
<Input>ABDO RES</Input></ScoredEvent>
<ScoredEvent><Name>SpO2 desaturation</Name><Start>45</Start><Duration>20</Duration>
<Input>SaO2</Input><LowestSpO2>89</LowestSpO2><Desaturation>5</Desaturation></ScoredEvent>
<ScoredEvent><Name>Arousal (ASDA)</Name><Start>50</Start><Duration>5</Duration></ScoredEvent>
</ScoredEvents>
<SleepStages>
<SleepStage>0</SleepStage><SleepStage>2</SleepStage><SleepStage>2</SleepStage>
<SleepStage>4</SleepStage><SleepStage>5</SleepStage><SleepStage>9</SleepStage>
</SleepStages>
</CMPStudyConfig>
"""


def test_reads_profusion_xml(tmp_path: Path) -> None:
    path = tmp_path / "shhs1-200001-profusion.xml"
    path.write_text(PROFUSION)
    ann = read_annotations(path, duration_s=180)
    assert [(a.onset_s, a.duration_s, a.label) for a in ann.stages()] == [
        (0.0, 30.0, "Sleep stage W"),
        (30.0, 60.0, "Sleep stage N2"),  # consecutive epochs joined
        (90.0, 30.0, "Sleep stage N3"),  # R&K stage 4
        (120.0, 30.0, "Sleep stage R"),
        (150.0, 30.0, "Sleep stage ?"),
    ]
    oa, desat, arousal = ann.events()
    assert (oa.label, oa.channel, oa.onset_s) == ("Obstructive apnea", "ABDO RES", 35.5)
    assert desat.extras == (("spo2_drop", "5"), ("spo2_nadir", "89"))
    assert arousal.label == "Arousal"


def test_between_after_edits_uses_the_longest_duration() -> None:
    ann = Annotations([Annotation(t, 1, "Arousal") for t in range(0, 1000, 10)])
    long = Annotation(5, 500, "Sleep stage N2")
    ann.add(long)
    assert long in ann.between(400, 401)
    ann.remove(long)
    assert ann.between(400, 401) == [Annotation(400, 1, "Arousal")]
    assert ann.between(401.5, 409) == []


@pytest.mark.parametrize(
    "text, label",
    [
        ("Respiratory effort-related arousal|RERA", L.RERA),
        ("Periodic Limb Movement", L.LIMB_MOVEMENT),
        ("PLM (Left)", L.LIMB_MOVEMENT),
        ("Arousal resulting from respiratory effort|Arousal (RESP)", L.AROUSAL),
    ],
)
def test_label_aliases(text: str, label: str) -> None:
    assert L.normalize_label(text) == label


def test_atomic_write_gives_ordinary_permissions(tmp_path: Path) -> None:
    path = tmp_path / "perm.csv"
    old = os.umask(0o022)
    try:
        atomic_write_bytes(path, b"x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    atomic_write_bytes(path, b"y")  # an existing file keeps its mode
    assert path.stat().st_mode & 0o777 == 0o600


_VALID_FILES = {
    "a.edf": _edf_annotation_bytes(b"+0\x14\x14\x00+0\x1530\x14Sleep stage W\x14\x00"),
    "a.xml": NSRR.encode(),
    "b.xml": PROFUSION.encode(),
    "a.csv": b'onset,duration,description,channel,extras\n1.5,30,Arousal,C3,"[[""k"",""v""]]"\n',
    "a.txt": b"[Hypnogram]\n5\n2\n2\n",
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(sorted(_VALID_FILES)),
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.binary(min_size=0, max_size=3)), max_size=4
    ),
    cut=st.integers(0, 10_000),
)
def test_corrupt_files_give_annotation_errors_only(
    tmp_path: Path, name: str, edits: list[tuple[int, bytes]], cut: int
) -> None:
    data = bytearray(_VALID_FILES[name])
    for pos, new in edits:
        i = pos % (len(data) + 1)
        data[i : i + len(new)] = new
    path = tmp_path / name
    path.write_bytes(bytes(data[: max(cut, 1)] if cut < len(data) else data))
    try:
        read_annotations(path, duration_s=3600)
    except AnnotationError as exc:
        assert "\n" not in exc.one_line()


def test_csv_without_a_start_reads_in_mne_in_seconds(tmp_path: Path) -> None:
    import mne

    path = tmp_path / "night.csv"
    ann = [Annotation(450.0, 30.0, "Sleep stage W"), Annotation(1234.5, 12.0, "Hypopnea", "Flow")]
    write_csv(ann, path)
    got = mne.read_annotations(path)  # MNE: onsets relative to the first row, origin 1970
    first = (got.orig_time.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds()
    assert [first + o for o in got.onset] == pytest.approx([450.0, 1234.5])
    assert list(got.description) == ["Sleep stage W", "Hypopnea"]
    assert read_annotations(path) == Annotations(ann)
