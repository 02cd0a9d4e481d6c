"""Hypnogram: construction, conversion, resampling of stage annotations, night statistics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from sleeplm_core.io.annotations import Annotation, Annotations
from sleeplm_core.io.hypnogram import Hypnogram

# 20 epochs of 30 s (0.5 min each), written out so the statistics can be checked by hand.
#          0    1    2     3     4     5    6     7     8     9     10     11    12     13
NIGHT = ["W", "W", "N1", "N2", "N2", "W", "N2", "N3", "N3", "N3", "ART", "N2", "REM", "REM",
         "UNS", "N2", "REM", "W", "W", "UNS"]  # fmt: skip
#          14     15    16    17   18   19

# By hand (epoch = 0.5 min):
#   sleep epochs (N1/N2/N3/REM): 2,3,4,6,7,8,9,11,12,13,15,16 -> 12; first 2, last 16
EXPECTED = {
    "TIB": 10.0,  # 20 epochs * 0.5
    "SPT": 7.5,  # epochs 2..16 inclusive = 15 * 0.5
    "WASO": 0.5,  # wake inside 2..16: epoch 5 only
    "TST": 6.0,  # 12 sleep epochs * 0.5 (ART at 10 and UNS at 14 are not sleep)
    "W": 2.5,  # epochs 0,1,5,17,18
    "N1": 0.5,  # epoch 2
    "N2": 2.5,  # epochs 3,4,6,11,15
    "N3": 1.5,  # epochs 7,8,9
    "REM": 1.5,  # epochs 12,13,16
    "ART": 0.5,  # epoch 10
    "UNS": 1.0,  # epochs 14,19
    "NREM": 4.5,  # 0.5 + 2.5 + 1.5
    "SOL": 1.0,  # first sleep at epoch 2 -> 2 * 0.5
    "Lat_N1": 1.0,  # from the start (YASA): epoch 2
    "Lat_N1_SO": 0.0,  # from sleep onset (AASM): epoch 2 - 2
    "Lat_N2": 1.5,  # epoch 3
    "Lat_N2_SO": 0.5,  # epoch 3 - 2 = 1 epoch
    "Lat_N3": 3.5,  # epoch 7
    "Lat_N3_SO": 2.5,  # epoch 7 - 2 = 5 epochs
    "Lat_REM": 6.0,  # epoch 12
    "Lat_REM_SO": 5.0,  # epoch 12 - 2 = 10 epochs
    "%N1": 100 * 0.5 / 6.0,  # 8.33 %
    "%N2": 100 * 2.5 / 6.0,  # 41.67 %
    "%N3": 25.0,  # 1.5 / 6
    "%REM": 25.0,  # 1.5 / 6
    "%NREM": 75.0,  # 4.5 / 6
    "SE": 60.0,  # TST / TIB = 6 / 10
    "SME": 80.0,  # TST / SPT = 6 / 7.5
}


def test_sleep_statistics_by_hand() -> None:
    stats = Hypnogram(NIGHT).sleep_statistics()
    assert stats.keys() == EXPECTED.keys()
    for key, value in EXPECTED.items():
        assert stats[key] == pytest.approx(value), key


def test_sleep_statistics_match_yasa() -> None:
    yasa = pytest.importorskip("yasa")
    hyp = Hypnogram(NIGHT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # yasa 0.8 deprecates the function
        ref = yasa.sleep_statistics(hyp.as_int(), sf_hyp=1 / 30)
    ours = hyp.sleep_statistics()
    for key in ("TIB", "SPT", "WASO", "TST", "N1", "N2", "N3", "REM", "NREM", "SOL", "SE", "SME"):
        assert ours[key] == pytest.approx(ref[key]), key
    for key in ("%N1", "%N2", "%N3", "%REM", "%NREM"):
        assert ours[key] == pytest.approx(ref[key]), key
    for stage in ("N1", "N2", "N3", "REM"):  # same key, same meaning: from lights off
        assert ours[f"Lat_{stage}"] == pytest.approx(ref[f"Lat_{stage}"])
        assert ours[f"Lat_{stage}_SO"] == pytest.approx(ref[f"Lat_{stage}"] - ref["SOL"])


def test_statistics_without_sleep_are_nan() -> None:
    stats = Hypnogram(["W", "W", "UNS"]).sleep_statistics()
    assert stats["TIB"] == 1.5 and stats["TST"] == 0.0 and stats["SE"] == 0.0
    for key in ("SOL", "WASO", "Lat_REM", "Lat_REM_SO", "%N2", "SME"):
        assert math.isnan(stats[key]), key


def test_construction_and_conversion() -> None:
    hyp = Hypnogram(["Sleep stage W", "s2", "REM sleep|5", "Movement time", "?"], epoch_s=20)
    assert hyp.stages.tolist() == ["W", "N2", "REM", "ART", "UNS"]
    assert hyp.stages.dtype == np.dtype("<U3")
    assert len(hyp) == hyp.n_epochs == 5 and hyp.duration_s == 100.0
    assert hyp.as_int().tolist() == [0, 2, 4, -1, -2] and hyp.as_int().dtype == np.int8
    assert Hypnogram.from_integers(hyp.as_int(), epoch_s=20) == hyp
    with pytest.raises(ValueError, match="unknown sleep stage"):
        Hypnogram(["N5"])
    with pytest.raises(TypeError, match="from_integers"):
        Hypnogram(np.array([0, 4]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown stage code"):
        Hypnogram.from_integers([7])
    assert hyp.stage_at(25.0) == "N2" and hyp.stage_at(100.0) is None
    assert hyp.stage_at(-1.0) is None
    assert hyp.epoch_of([0.0, 39.9, 40.0, 500.0]).tolist() == [0, 1, 2, -1]


def test_to_annotations_merges_runs_and_round_trips() -> None:
    hyp = Hypnogram(["W", "W", "N1", "N2", "N2", "N2", "REM"])
    ann = hyp.to_annotations()
    assert [(a.onset_s, a.duration_s, a.label) for a in ann] == [
        (0.0, 60.0, "Sleep stage W"),
        (60.0, 30.0, "Sleep stage N1"),
        (90.0, 90.0, "Sleep stage N2"),
        (180.0, 30.0, "Sleep stage R"),
    ]
    assert Hypnogram.from_annotations(Annotations(ann), hyp.duration_s) == hyp


def test_from_annotations_takes_the_majority_per_epoch() -> None:
    # R&K 20-s epochs onto 30-s epochs: [0,20) W, [20,60) N2, [60,80) N3, then nothing.
    ann = Annotations(
        [
            Annotation(0, 20, "Sleep stage W"),
            Annotation(20, 20, "Sleep stage 2"),
            Annotation(40, 20, "Sleep stage 2"),
            Annotation(60, 20, "Sleep stage 4"),
            Annotation(65, 3, "Arousal"),  # events do not vote
        ]
    )
    hyp = Hypnogram.from_annotations(ann, duration_s=125)
    assert hyp is not None
    # epoch 0 [0,30): W 20 s vs N2 10 s -> W;  epoch 1 [30,60): N2 30 s -> N2
    # epoch 2 [60,90): N3 20 s vs nothing 10 s -> N3;  epoch 3 [90,120): nothing -> UNS
    # the partial epoch [120,125) is dropped
    assert hyp.stages.tolist() == ["W", "N2", "N3", "UNS"]


def test_from_annotations_edge_cases() -> None:
    assert Hypnogram.from_annotations(Annotations([Annotation(0, 5, "Arousal")]), 60) is None
    # A stage mark without duration lasts one epoch; half an epoch scored beats unscored.
    hyp = Hypnogram.from_annotations([Annotation(30, 0, "N2"), Annotation(75, 15, "REM")], 90)
    assert hyp is not None and hyp.stages.tolist() == ["UNS", "N2", "REM"]


def test_upsample_to_seconds() -> None:
    hyp = Hypnogram(["W", "N2"])
    up = hyp.upsample_to_seconds()
    assert up.shape == (60,) and up[29] == "W" and up[30] == "N2"
    assert hyp.upsample_to_seconds(0.1).tolist() == ["W", "W", "W", "N2", "N2", "N2"]
