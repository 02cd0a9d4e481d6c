"""Open vocabulary: the phrase bank's sets, negation, routing and refusals; score calibration."""

from __future__ import annotations

import numpy as np
import pytest

from sleeplm_core.calibration import IsotonicMap, ScoreCalibration, fit_isotonic, rank_segments
from sleeplm_core.eval.language import expected_calibration_error, segment_outcomes
from sleeplm_core.eval.synthetic import PARAPHRASE_QUERIES
from sleeplm_core.model import phrases as P
from sleeplm_core.model.prompts import EVENT_TYPES, SCORED
from sleeplm_core.vocabulary import QueryRouter


def test_bank_has_30_wordings_per_type_and_stage() -> None:
    for t in EVENT_TYPES:
        assert len(P.training_wordings(t.name)) >= 30, t.name
        assert P.training_wordings(t.name)[: len(t.phrases)] == t.phrases
    assert set(P.stage_train()) == set(SCORED)
    assert all(len(set(w)) >= 30 for w in P.stage_train().values())


def test_training_development_and_evaluation_sets_are_disjoint() -> None:
    def low(bank: dict[str, tuple[str, ...]]) -> set[str]:
        return {w.lower() for ws in bank.values() for w in ws}

    train = low(P.TRAIN) | low(P.STAGE_TRAIN) | {p.lower() for t in EVENT_TYPES for p in t.phrases}
    dev, ev = low(P.DEV), low(P.EVAL)
    assert dev and ev and not train & dev and not train & ev and not dev & ev
    assert {q.lower() for q in PARAPHRASE_QUERIES.values()} <= ev
    far = {q.lower() for q in (*P.FAR_DEV, *P.FAR_EVAL)}
    assert not far & (train | dev | ev) and not set(P.FAR_DEV) & set(P.FAR_EVAL)


@pytest.mark.parametrize(
    ("query", "negated"),
    [("no apnea", "apnea"), ("without apneas", "apneas"), ("apnea-free breathing", "apnea"),
     ("absence of sleep spindles", "spindles"), ("sleep without arousals", "arousals"),
     ("not a single leg movement", "leg movement"), ("no airflow for several seconds", None),
     ("not breathing", None), ("obstructive apnea", None), ("no oxygen drop", None)],
)  # fmt: skip
def test_negated_events_are_found_and_descriptions_are_not(query: str, negated: str) -> None:
    assert P.negated_event(query) == negated


def test_every_eval_negation_is_a_negation() -> None:
    for qs in P.NEGATED_EVAL.values():
        assert all(P.negated_event(q) for q in qs)


def _fake_router() -> QueryRouter:
    """A router over a toy MiniLM: bag-of-letters vectors (deterministic, no model)."""

    def bag(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 27), np.float32)
        for i, t in enumerate(texts):
            for ch in t.lower():
                out[i, ord(ch) - 97 if "a" <= ch <= "z" else 26] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    prompts = {s: [f"stage {s}."] for s in SCORED}
    return QueryRouter(bag, bag, prompts, mix=1.0, tau=0.03)


def test_router_routes_refuses_and_keeps_canonical_phrases() -> None:
    r = _fake_router()
    assert r.label("obstructive apnea")[0] == "event:apnea"
    assert r.nearest_event_type("sleep spindle") == "spindle"
    assert r.kind("stage N3.") == "epoch" and r.kind("sleep spindle") == "dense"
    # a canonical phrase keeps (almost) its own projection
    own = r.shared_embed(["leg movement"])[0]
    assert float(r.embed("leg movement") @ own) > 0.9
    assert "absence of apnea" in r.refusal("no apnea")
    assert r.refusal("obstructive apnea") == ""
    assert 0.0 < r.floor() < 1.0
    assert "far from anything" in r.refusal("zzzz qqqq xxxx")


def test_isotonic_map_is_monotone_and_calibrated_on_its_data() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 1, 4000)
    truth = rng.uniform(0, 1, 4000) < raw**2  # P(right) = raw^2: raw is overconfident
    m = fit_isotonic(raw, truth)
    grid = np.linspace(0, 1, 101)
    assert np.all(np.diff(m(grid)) >= -1e-12)
    assert abs(float(m(0.5)) - 0.25) < 0.08 and abs(float(m(0.9)) - 0.81) < 0.08
    assert expected_calibration_error(m(raw), truth) < expected_calibration_error(raw, truth)
    assert IsotonicMap.from_json(m.to_json())(0.5) == pytest.approx(float(m(0.5)), abs=1e-4)
    with pytest.raises(ValueError):
        fit_isotonic([], [])


def test_score_calibration_from_meta_and_tie_break() -> None:
    flat = {"x": [0.0, 0.9, 1.0], "y": [0.1, 0.6, 0.6]}
    sc = ScoreCalibration.from_meta({"scores": {"search": {"global": flat}, "stage": flat}})
    assert sc.calibrated and float(sc.segment("apnea", 0.95)) == pytest.approx(0.6)
    assert float(sc.stage(0.45)) == pytest.approx(0.35)
    assert not ScoreCalibration.from_meta({}).calibrated
    assert float(ScoreCalibration.from_meta(None).segment("x", 0.7)) == 0.7
    ranked = rank_segments([(0, 1, 0.95), (5, 6, 0.99), (9, 10, 0.2)], [0.6, 0.6, 0.1])
    assert [r[0] for r in ranked] == [5, 0, 9]  # the tie at 0.6 goes to the stronger raw score


def test_expected_calibration_error_and_segment_outcomes() -> None:
    assert expected_calibration_error(np.array([0.8] * 10), np.array([1] * 8 + [0] * 2)) == (
        pytest.approx(0.0)
    )
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([0, 0])) == pytest.approx(1.0)
    found = [(0.0, 10.0, 0.9, 0.8), (1.0, 9.0, 0.8, 0.7), (50.0, 5.0, 0.5, 0.2)]
    out = segment_outcomes([(0.0, 10.0)], found)
    assert [ok for _, _, ok in out] == [True, False, False]  # one-to-one: the best IoU wins
