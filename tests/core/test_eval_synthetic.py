"""The ``synthetic`` evaluation suite: its metric blocks on hand-made inputs, and one tiny run
end to end on a micro checkpoint (plumbing only: a 2-step model scores near chance)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sleeplm_core.eval import synthetic as syn
from sleeplm_core.eval.suites import SUITES, SuiteOptions, format_table, run_suite
from tests.core.test_inference import micro_checkpoint_in


def test_registered_and_held_out() -> None:
    assert "synthetic" in SUITES
    assert syn.SEED0 >= 10_000
    rates = {v.get("sf") for _, v in syn.VARIANTS}
    assert {100, 128, 256} <= rates
    assert any("missing" in v for _, v in syn.VARIANTS)
    assert any("noise_uv" in v for _, v in syn.VARIANTS)
    assert any("amplitude_scale" in v for _, v in syn.VARIANTS)


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("Stage N2. Sleep spindle at the start of the epoch.",
         [("stage", "N2"), ("event", "spindle")]),
        ("scored as rem sleep. obstructive apnea lasting 12 s, starting 3 s into the epoch.",
         [("stage", "REM"), ("event", "apnea")]),
        ("This epoch is wake. A 4% drop in SpO2, continuing from 2 s before the epoch. Arousal.",
         [("stage", "W"), ("event", "desaturation"), ("event", "arousal")]),
        ("the epoch is unscored. hypopnea of 11 s; limb movement; 2 scored K-complexes.",
         [("stage", "UNS"), ("event", "hypopnea"), ("event", "limb movement"),
          ("event", "k-complex")]),
        ("tone0 tone00", []),
    ],
)  # fmt: skip
def test_caption_facts(text: str, facts: list[tuple[str, str]]) -> None:
    assert syn.caption_facts(text) == facts


def test_fewshot_prototypes_separate_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:5]

    def draw(n: int) -> tuple[np.ndarray, list[str]]:
        labels = [s for s in ("W", "N1", "N2", "N3", "REM") for _ in range(n)]
        x = np.repeat(centres, n, axis=0) + rng.normal(0, 0.05, (5 * n, 8))
        return x / np.linalg.norm(x, axis=1, keepdims=True), labels

    support, query = draw(30), draw(10)
    for k in (1, 5, 20):
        got = syn.fewshot_scores(support, query, k, repeats=2)
        assert got["accuracy"] == 1.0 and got["kappa"] == 1.0
    missing = (support[0][:30], support[1][:30])  # only W in the support set
    assert syn.fewshot_scores(missing, query, 5, repeats=1)["accuracy"] == pytest.approx(0.2)


class _Texts:
    """A stand-in predictor whose text embedding of caption ``i`` is the unit vector ``i``."""

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = vocab

    def text_embeddings(self, texts: list[str]) -> np.ndarray:
        return np.eye(len(self.vocab))[[self.vocab.index(t) for t in texts]]


def test_retrieval_is_multi_positive() -> None:
    vocab = ["a", "b", "c"]
    texts = ["a", "a", "b", "c"]  # "a" repeats: both its epochs are positives
    emb = np.eye(3)[[0, 0, 1, 2]].astype(np.float32)
    got = syn.retrieval_scores(_Texts(vocab), emb, texts)
    assert got["s2t_R@1"] == 1.0 and got["t2s_R@1"] == 1.0
    assert (got["n_epochs"], got["n_texts"]) == (4, 3)
    shuffled = np.eye(3)[[1, 2, 0, 0]].astype(np.float32)
    assert syn.retrieval_scores(_Texts(vocab), shuffled, texts)["s2t_R@1"] == 0.0


def test_localization_pools_nights_and_says_nan_when_nothing_to_measure() -> None:
    def night(truth: list[tuple[float, float]], found: list[tuple[float, float]]) -> Any:
        nd = syn.NightData(
            night=None,  # type: ignore[arg-type]
            truth=[], predicted=[], epoch_emb=np.zeros((0, 2)), captions={},
            windows=np.zeros((0, 12, 1920)), mask=np.ones(12, bool),
            events={k: [] for k in syn.EVENT_LABELS},
        )  # fmt: skip
        nd.events["apnea"] = truth
        nd.found = {q: [] for q in syn.EVENT_QUERIES.values()}
        nd.found["obstructive apnea"] = found
        return nd

    nights = [night([(10.0, 20.0)], [(5.0, 30.0)]), night([(100.0, 15.0)], [(400.0, 30.0)])]
    got = syn.localization_scores(nights, syn.EVENT_QUERIES)
    assert (got["apnea"]["tp"], got["apnea"]["n_true"], got["apnea"]["n_pred"]) == (1, 2, 2)
    assert got["apnea"]["f1"] == 0.5
    assert math.isnan(got["spindle"]["f1"])  # no event and no prediction: not a perfect score


def test_tiny_run_end_to_end(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    ckpt = micro_checkpoint_in(tmp_path_factory.getbasetemp())
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        options = SuiteOptions(
            checkpoint=ckpt, data_root=tmp_path, nights=1, hours=0.1, caption_epochs=2
        )
        res = run_suite("synthetic", options)
    finally:
        torch.set_num_threads(before)
    metrics = [r.metric for r in res.rows]
    for want in (
        "zero-shot staging accuracy",
        "zero-shot staging Cohen's kappa",
        "few-shot staging K=20 macro-F1 (prototype)",
        "retrieval stage_event signal->text R@10",
        "retrieval brain text->signal R@1",
        "caption stage_event BLEU-4",
        "caption stage_event factual accuracy",
        "localization F1 limb movement (IoU>=0.3)",
        "unseen phrasing F1 apnea: 'breathing stops while asleep'",
    ):
        assert want in metrics
    assert all(set(r.values) == {"value"} for r in res.rows)
    assert res.rows[0].n == 12
    data = json.loads(json.dumps(res.to_json()))  # strict JSON (NaN -> null)
    assert data["nights"][0]["seed"] == syn.SEED0 and data["captioning"]["n"] == 2
    table = format_table([res]).splitlines()
    assert [c.strip() for c in table[0].split("|")] == ["suite", "metric", "value", "n"]
    assert len({len(line) for line in table[2:]}) <= 2  # fixed width (rstrip on the last column)
    assert (tmp_path / "base-256Hz-seed10000-0.1h.edf").is_file()
