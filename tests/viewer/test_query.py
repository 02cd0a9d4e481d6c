"""The query language: free text plus filters, and applying the filters to found segments."""

from __future__ import annotations

from datetime import datetime

import pytest

from sleeplm_core.results import Segment
from sleepviewer.query import (
    ParsedQuery,
    QueryError,
    QueryFilters,
    apply_filters,
    parse_duration,
    parse_query,
    parse_time,
    segment_stage,
)

START = datetime(2024, 3, 1, 22, 14, 7, 250000)


def seg(onset: float, dur: float, types=("AIRFLOW",), score=0.5) -> Segment:
    return Segment(onset, dur, score, list(types))


def test_plain_text_has_no_filters():
    q = parse_query("  obstructive   apnea with desaturation ")
    assert q == ParsedQuery("obstructive apnea with desaturation", QueryFilters())
    assert q.filters.is_empty()


def test_filters_are_taken_out_of_the_text():
    q = parse_query("obstructive apnea stage:REM after:02:00 min_dur:10s max_dur:2m channel:EEG")
    assert q.text == "obstructive apnea"
    f = q.filters
    assert f.stages == ("REM",)
    assert f.after is not None and (f.after.kind, f.after.seconds) == ("clock", 7200.0)
    assert (f.min_dur_s, f.max_dur_s) == (10.0, 120.0)
    assert f.channel_types == ("EEG",)
    assert "stage REM" in f.describe() and "≥ 10 s" in f.describe()


def test_stage_lists_and_spellings():
    assert parse_query("stage:N2,N3 x").filters.stages == ("N2", "N3")
    assert parse_query("x stage:wake,rem").filters.stages == ("W", "REM")


def test_unknown_key_stays_in_the_text():
    assert parse_query("ratio 2:1 foo:bar").text == "ratio 2:1 foo:bar"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("2m", 120), ("1m30s", 90), ("1h", 3600), ("1.5m", 90), ("45", 45),
     ("2min", 120)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "query",
    ["stage:X", "stage:", "after:25:00", "min_dur:abc", "before:soon", "channel:foo",
     "min_dur:2m max_dur:1m"],
)
def test_bad_filters_raise_one_line(query):
    with pytest.raises(QueryError) as err:
        parse_query(query)
    assert "\n" not in str(err.value) and str(err.value)


def test_clock_time_wraps_past_midnight():
    # the night starts at 22:14:07.25: 02:00 is 3 h 45 min 52.75 s in
    assert parse_time("02:00").elapsed_s(START) == pytest.approx(13552.75)
    assert parse_time("23:00").elapsed_s(START) == pytest.approx(2752.75)
    # a clock time a little before the start means "before the start"
    assert parse_time("22:00").elapsed_s(START) < 0
    assert parse_time("1h30m").elapsed_s(START) == 5400.0
    assert parse_time("+1:30:00").elapsed_s(None) == 5400.0
    with pytest.raises(QueryError):
        parse_time("02:00").elapsed_s(None)


def test_apply_time_and_duration_filters():
    segs = [seg(100, 20), seg(5000, 40), seg(14000, 8), seg(20000, 200)]
    q = parse_query("apnea after:02:00 min_dur:10s")
    assert apply_filters(segs, q, None, START) == [segs[3]]
    q = parse_query("apnea before:1h30m")
    assert apply_filters(segs, q, None, START) == segs[:2]
    q = parse_query("apnea max_dur:30s")
    assert apply_filters(segs, q, None, START) == [segs[0], segs[2]]
    assert apply_filters(segs, parse_query("apnea"), None, None) == segs


def test_apply_stage_filter_uses_majority_of_overlap():
    stages = ["W"] * 2 + ["N2"] * 4 + ["REM"] * 4
    a = seg(50, 20)   # 50-60 W, 60-70 N2: tie → the first best
    b = seg(170, 40)  # 170-180 N2, 180-210 REM → REM
    c = seg(400, 30)  # past the hypnogram
    assert segment_stage(b, stages) == "REM"
    assert segment_stage(c, stages) is None
    q = parse_query("x stage:REM")
    assert apply_filters([a, b, c], q, stages, START) == [b]
    assert apply_filters([a, b, c], q, None, START) == []


def test_apply_channel_filter():
    eeg, resp = seg(0, 30, ("EEG", "EOG")), seg(60, 30, ("AIRFLOW", "SPO2"))
    assert apply_filters([eeg, resp], parse_query("x channel:EEG"), None, None) == [eeg]
    assert apply_filters([eeg, resp], parse_query("x channel:resp"), None, None) == [resp]
