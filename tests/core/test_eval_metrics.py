"""Metrics on hand-made inputs; every expected value is worked out by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sleeplm_core.eval.metrics import (
    EventMatch,
    accuracy,
    bleu4,
    cohen_kappa,
    confusion_matrix,
    factual_accuracy,
    interval_iou,
    macro_f1,
    match_events,
    per_class_f1,
    recall_at_k,
    rouge_l,
    staging_scores,
    tokenize,
)

TRUE = ["W", "N2", "N2", "N3", "REM"]
PRED = ["W", "N2", "N3", "N3", "N2"]


def test_accuracy_and_confusion() -> None:
    assert accuracy(TRUE, PRED) == pytest.approx(3 / 5)
    # labels present, in W N1 N2 N3 REM order: W N2 N3 REM
    cm = confusion_matrix(TRUE, PRED)
    expected = [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 1, 0, 0]]
    np.testing.assert_array_equal(cm, expected)
    # an explicit label order, and labels outside it are not counted
    cm2 = confusion_matrix(TRUE, PRED, labels=["N3", "N2"])
    np.testing.assert_array_equal(cm2, [[1, 0], [1, 1]])
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError):
        accuracy(["W"], [])


def test_kappa_by_hand() -> None:
    # p_o = 3/5; true marginals W1 N2:2 N3:1 REM1, predicted W1 N2:2 N3:2 REM0
    # p_e = (1*1 + 2*2 + 1*2 + 1*0) / 25 = 7/25; kappa = (0.6 - 0.28) / 0.72 = 4/9
    assert cohen_kappa(TRUE, PRED) == pytest.approx(4 / 9)
    assert cohen_kappa(["W", "N2"], ["W", "N2"]) == pytest.approx(1.0)
    assert cohen_kappa(["W", "W"], ["W", "W"]) == 1.0  # p_e == 1, full agreement
    # opposite raters: p_o = 0, p_e = 0.5 -> -1
    assert cohen_kappa(["W", "N2"], ["N2", "W"]) == pytest.approx(-1.0)
    assert math.isnan(cohen_kappa([], []))


def test_f1_by_hand() -> None:
    f1 = per_class_f1(TRUE, PRED)
    # F1 = 2 tp / (row + column sums): W 2/2, N2 2/4, N3 2/3, REM 0 (no true positive)
    assert f1 == pytest.approx({"W": 1.0, "N2": 0.5, "N3": 2 / 3, "REM": 0.0})
    assert macro_f1(TRUE, PRED) == pytest.approx((1 + 0.5 + 2 / 3 + 0) / 4)


def test_staging_scores_drop_art_uns() -> None:
    s = staging_scores([*TRUE, "ART", "N2"], [*PRED, "N2", "UNS"])
    assert s.n == 5
    assert s.accuracy == pytest.approx(0.6)
    assert s.kappa == pytest.approx(4 / 9)


def test_against_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    stages = np.array(["W", "N1", "N2", "N3", "REM"])
    t = list(stages[rng.integers(0, 5, 200)])
    p = [s if rng.random() < 0.6 else str(stages[rng.integers(0, 5)]) for s in t]
    labels = ["W", "N1", "N2", "N3", "REM"]
    assert cohen_kappa(t, p) == pytest.approx(metrics.cohen_kappa_score(t, p))
    assert macro_f1(t, p) == pytest.approx(metrics.f1_score(t, p, average="macro", zero_division=0))
    np.testing.assert_array_equal(
        confusion_matrix(t, p, labels), metrics.confusion_matrix(t, p, labels=labels)
    )
    assert accuracy(t, p) == pytest.approx(metrics.accuracy_score(t, p))


def test_interval_iou() -> None:
    assert interval_iou((0.0, 2.0), (1.0, 2.0)) == pytest.approx(1 / 3)
    assert interval_iou((0.0, 1.0), (1.0, 1.0)) == 0.0  # touching
    assert interval_iou((0.0, 4.0), (1.0, 1.0)) == pytest.approx(0.25)


def test_match_events_by_hand() -> None:
    true = [(0.0, 1.0), (2.0, 1.0), (10.0, 2.0)]
    pred = [(0.5, 1.0), (2.0, 1.0), (2.2, 1.0), (20.0, 1.0)]
    # IoUs: t0-p0 1/3, t1-p1 1.0, t1-p2 0.8/1.2; greedy takes t1-p1 first, then t0-p0
    m = match_events(true, pred, iou_threshold=0.3)
    assert (m.tp, m.n_true, m.n_pred) == (2, 3, 4)
    assert m.pairs == ((1, 1), (0, 0))
    assert m.precision == pytest.approx(0.5)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(4 / 7)
    # at IoU >= 0.4 the t0-p0 pair (1/3) no longer counts
    assert match_events(true, pred, iou_threshold=0.4).f1 == pytest.approx(2 / 7)


def test_match_events_one_to_one_and_empty() -> None:
    # two predictions overlap one true event: only the better one counts
    m = match_events([(0.0, 2.0)], [(0.0, 1.0), (0.0, 2.0)])
    assert m.pairs == ((0, 1),)
    assert m.f1 == pytest.approx(2 / 3)
    assert match_events([], []).f1 == 1.0
    none = match_events([(0.0, 1.0)], [])
    assert (none.precision, none.recall, none.f1) == (0.0, 0.0, 0.0)
    assert EventMatch(tp=0, n_true=0, n_pred=2).precision == 0.0
    with pytest.raises(ValueError):
        match_events([], [], iou_threshold=0.0)


def test_recall_at_k_multi_positive() -> None:
    sim = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.7], [0.3, 0.6, 0.1]])
    # ranks: q0 -> 0,2,1 (positive 0 first); q1 -> 1,2,0 (positive 2 second);
    # q2 -> 1,0,2 (positives {0, 2}: best at rank 2)
    positives: list[int | set[int]] = [0, 2, {0, 2}]
    assert recall_at_k(sim, positives, 1) == pytest.approx(1 / 3)
    assert recall_at_k(sim, positives, 2) == pytest.approx(1.0)
    # ties: the lower item index ranks first
    assert recall_at_k(np.array([[0.5, 0.5]]), [1], 1) == 0.0
    assert recall_at_k(np.array([[0.5, 0.5]]), [0], 1) == 1.0
    with pytest.raises(ValueError):
        recall_at_k(sim, [0, 1], 1)


def test_tokenize() -> None:
    assert tokenize("HR 62.5 bpm.") == ["hr", "62.5", "bpm", "."]


def test_bleu4_by_hand() -> None:
    assert bleu4(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(1.0)
    # precisions 4/5, 3/4, 2/3, 1/2; equal lengths -> BP 1
    assert bleu4(["a b c d f"], ["a b c d e"]) == pytest.approx(0.2**0.25)
    # no 4-gram match: smoothed p4 = 0.1 / 1; hyp 4 < ref 5 -> BP = exp(1 - 5/4)
    expected = math.exp(-0.25) * (3 / 4 * 2 / 3 * 1 / 2 * 0.1) ** 0.25
    assert bleu4(["a b c d e"], ["a b c x"]) == pytest.approx(expected)


def test_bleu4_is_corpus_level() -> None:
    # counts are summed over the corpus: 8/9, 6/7, 4/5, 2/3 (not a mean of sentence scores)
    refs = ["a b c d f", "a b c d"]
    hyps = ["a b c d e", "a b c d"]
    assert bleu4(refs, hyps) == pytest.approx((8 / 9 * 6 / 7 * 4 / 5 * 2 / 3) ** 0.25)
    # several references: n-grams clipped by the best one; closest length tie -> shorter (2)
    assert bleu4([["a b c d e f", "a b"]], ["a b c d"]) == pytest.approx(1.0)
    assert bleu4([], []) == 0.0
    assert bleu4(["a b c"], ["a b c"]) == 0.0  # no 4-grams at all


def test_rouge_l_by_hand() -> None:
    # LCS("a b c d e", "a c e f") = 3: R = 3/5, P = 3/4, F1 = 2RP/(R+P) = 2/3
    assert rouge_l(["a b c d e"], ["a c e f"]) == pytest.approx(2 / 3)
    assert rouge_l(["a b c d e", "a b"], ["a c e f", "x y"]) == pytest.approx(1 / 3)
    # beta = 2: 5RP / (R + 4P) = 2.25 / 3.6
    assert rouge_l(["a b c d e"], ["a c e f"], beta=2.0) == pytest.approx(0.625)
    assert rouge_l([["x", "a b c d e"]], ["a c e f"]) == pytest.approx(2 / 3)
    assert math.isnan(rouge_l([], []))


def test_factual_accuracy() -> None:
    ref = [("hr_bpm", 62.0), ("stage", "N2"), ("spo2_nadir", 88)]
    pred = [("hr_bpm", 63.0), ("stage", "n2"), ("spo2_nadir", 85)]
    tol = {"hr_bpm": 1.0, "spo2_nadir": 2.0}
    # hr within 1.0, stage matches case-insensitively, SpO2 off by 3 > 2
    assert factual_accuracy(ref, pred, tolerances=tol) == pytest.approx(2 / 3)
    assert factual_accuracy(ref, pred, default_tolerance=5.0) == pytest.approx(1.0)
    # a predicted fact matches one reference fact only
    assert factual_accuracy([("a", 1), ("a", 1)], [("a", 1)]) == pytest.approx(0.5)
    assert factual_accuracy([("a", 0.3)], [("a", 0.1 + 0.2)]) == 1.0  # float rounding
    assert math.isnan(factual_accuracy([], pred))
