"""Event indices on a small night constructed by hand (TST = exactly 1 hour)."""

from __future__ import annotations

import math

import pytest

from sleeplm_core.io.annotations import Annotation, Annotations
from sleeplm_core.io.hypnogram import Hypnogram
from sleeplm_core.io.indices import desaturation_drop, event_indices, plm_series

# epochs 0-1 W (0-60 s), 2-61 N2 (60-1860 s), 62 W (1860-1890 s), 63-122 REM (1890-3690 s),
# 123 W (3690-3720 s): 120 sleep epochs, TST = 60 min = 1 h, so indices equal counts.
NIGHT = Hypnogram(["W"] * 2 + ["N2"] * 60 + ["W"] + ["REM"] * 60 + ["W"])


def _lm(onset: float, duration: float = 2.0, channel: str = "Left Leg") -> Annotation:
    return Annotation(onset, duration, "Limb movement", channel)


def _desat(onset: float, **extras: str) -> Annotation:
    return Annotation(onset, 15, "Oxygen desaturation", "SpO2", tuple(extras.items()))


EVENTS = [
    # respiratory: in sleep unless marked
    Annotation(100, 12, "Obstructive apnea"),
    Annotation(2000, 15, "Obstructive apnea"),
    Annotation(30, 12, "Obstructive apnea"),  # wake before sleep onset: not counted
    Annotation(1870, 12, "Obstructive apnea"),  # epoch 62 is wake: not counted
    Annotation(500, 11, "Central apnea"),
    Annotation(600, 14, "Mixed apnea"),
    Annotation(700, 20, "Hypopnea"),
    Annotation(3700, 20, "Hypopnea"),  # final wake: not counted
    Annotation(800, 10, "RERA"),
    # desaturations
    _desat(110, spo2_drop="4"),  # counts
    _desat(200, spo2_baseline="95", spo2_nadir="93"),  # 2 % drop: does not count
    _desat(300, spo2_baseline="96", spo2_nadir="92"),  # 4 %: counts
    _desat(400),  # no drop information: counts
    _desat(410, spo2_drop="3"),  # exactly 3 %: counts
    _desat(420, spo2_drop="n/a"),  # unreadable drop = no information: counts
    _desat(1880),  # during wake: not counted
    # arousals
    Annotation(120, 5, "Arousal"),
    Annotation(2100, 4, "Arousal"),
    Annotation(40, 5, "Arousal"),  # wake: not counted
    # limb movements
    *[_lm(t) for t in (1000, 1020, 1040, 1060)],  # series A: 4 LMs, all in N2 -> 4 PLMS
    *[_lm(t) for t in (1200, 1220, 1240)],  # only 3 LMs: no series
    _lm(1600),
    _lm(1620, duration=12),  # longer than 10 s: not an LM, so 1600/1640/1660 are only 3
    _lm(1640),
    _lm(1660),
    *[_lm(t) for t in (1850, 1870, 1890, 1910)],  # series F: 1870 in wake -> 3 PLMS
    *[_lm(t) for t in (2200, 2220, 2240, 2400, 2420)],  # 160-s gap splits into 3 + 2: none
]


def test_event_indices_by_hand() -> None:
    ann = Annotations([*EVENTS, *NIGHT.to_annotations()])  # stage annotations are ignored
    idx = event_indices(ann, NIGHT)
    assert idx["TST_h"] == 1.0
    expected = {
        "AHI": 5.0,  # OA 100, 2000 + CA 500 + MA 600 + H 700
        "AI": 4.0,  # OA 2 + CA 1 + MA 1
        "OAI": 2.0,
        "CAI": 1.0,
        "MAI": 1.0,
        "HI": 1.0,
        "RDI": 6.0,  # AHI events + RERA 800
        "ODI": 5.0,  # desaturations at 110, 300, 400, 410, 420
        "ArI": 2.0,  # arousals at 120 and 2100
        "PLMI": 7.0,  # series A (4) + series F in sleep (3)
    }
    for key, value in expected.items():
        assert idx[key] == pytest.approx(value), key


def test_indices_scale_with_tst() -> None:
    half = Hypnogram(["N2"] * 60)  # 30 min of sleep
    idx = event_indices([Annotation(10, 10, "OA"), Annotation(20, 10, "Hypopnea")], half)
    assert idx["TST_h"] == 0.5
    assert idx["AHI"] == 4.0  # 2 events / 0.5 h
    assert idx["OAI"] == 2.0 and idx["HI"] == 2.0


def test_no_sleep_gives_nan() -> None:
    idx = event_indices([Annotation(10, 10, "OA")], Hypnogram(["W"] * 10))
    assert idx["TST_h"] == 0.0
    assert all(math.isnan(v) for k, v in idx.items() if k != "TST_h")


def test_plm_series_merges_bilateral_movements() -> None:
    lms = [_lm(0), _lm(4, channel="Right Leg"), _lm(10), _lm(20), _lm(30)]
    # The right-leg LM 4 s after the left one counts as the same movement.
    assert [a.onset_s for a in plm_series(lms)] == [0.0, 10.0, 20.0, 30.0]
    # On the same leg, 2 s apart is too short an interval: it breaks the series.
    assert plm_series([_lm(0), _lm(2), _lm(10), _lm(20)]) == []
    # Too short (< 0.5 s) LMs are not LMs at all.
    assert plm_series([_lm(t, duration=0.3) for t in (0, 10, 20, 30)]) == []
    # Intervals of exactly 5 and 90 s are allowed.
    assert len(plm_series([_lm(0), _lm(5), _lm(95), _lm(100)])) == 4


def test_desaturation_drop() -> None:
    assert desaturation_drop(_desat(0, spo2_drop="4.5")) == 4.5
    assert desaturation_drop(_desat(0, spo2_baseline="95", spo2_nadir="88")) == 7.0
    assert desaturation_drop(_desat(0, spo2_nadir="88")) is None
    assert desaturation_drop(_desat(0)) is None


def test_sleep_lookup_matches_the_stage_at_each_onset() -> None:
    """Events are kept by one vectorised lookup; it agrees with ``stage_at`` event by event.

    Onsets before, inside and after the hypnogram, on epoch boundaries, and unscored epochs.
    """
    import random

    from sleeplm_core.io.labels import AROUSAL, HYPOPNEA, OBSTRUCTIVE_APNEA
    from sleeplm_core.stages import SLEEP_STAGES

    rng = random.Random(3)
    stages = [rng.choice(["W", "N1", "N2", "N3", "REM", "UNS", "ART"]) for _ in range(200)]
    hyp = Hypnogram(stages, start_s=45.0)
    onsets = [45.0 + 30 * k for k in range(-2, 203)] + [rng.uniform(-100, 6200) for _ in range(500)]
    labels = (OBSTRUCTIVE_APNEA, HYPOPNEA, AROUSAL)
    events = [Annotation(t, 10, rng.choice(labels)) for t in onsets]
    got = event_indices(events, hyp)
    tst_h = hyp.sleep_statistics()["TST"] / 60
    kept = [a for a in events if hyp.stage_at(a.onset_s) in SLEEP_STAGES]
    assert 0 < len(kept) < len(events)
    assert got["ArI"] * tst_h == pytest.approx(sum(a.label == AROUSAL for a in kept))
    assert got["AHI"] * tst_h == pytest.approx(sum(a.label != AROUSAL for a in kept))
