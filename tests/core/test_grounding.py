"""Grounded captions: absent modalities, banned words, sentence checks against measurements."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sleeplm_core import grounding as G
from sleeplm_core.io import labels as L
from sleeplm_core.io.channels import CANONICAL_SLOTS
from sleeplm_core.results import Caption, SentenceCheck

SLOT = {s: i for i, s in enumerate(CANONICAL_SLOTS)}


def mask_of(*slots: str) -> np.ndarray:
    m = np.zeros(len(CANONICAL_SLOTS), bool)
    for s in slots:
        m[SLOT[s]] = True
    return m


EEG_ONLY = mask_of("C3_M2", "EOG_L", "EMG_CHIN")
FULL = np.ones(len(CANONICAL_SLOTS), bool)
FEATS = {
    "C3_M2.delta_pct": 62.0, "C3_M2.theta_pct": 20.0, "C3_M2.alpha_pct": 8.0,
    "C3_M2.sigma_pct": 6.0, "C3_M2.beta_pct": 4.0, "spindles": 2.0, "k_complexes": 0.0,
    "slow_wave_pct": 0.0, "hr_bpm": 61.0, "rmssd_ms": 40.0, "hr_change_bpm": 1.0,
    "resp_rate": 15.0, "breath_cv": 0.1, "flattening_pct": 0.0, "leg_movements": 0.0,
}  # fmt: skip


def status(sentence: str, modality: str, mask: np.ndarray = FULL, events: Any = None) -> str:
    return G.check_sentence(sentence, modality, G.EpochFacts(FEATS, mask, events)).status


def test_absent_modalities_and_mentions() -> None:
    assert G.present_modalities(EEG_ONLY) == ["brain", "somatic"]
    assert G.absent_text("heart") == "no heart channels in this recording"
    assert G.absent_mentions("Stage N2. Apnea lasting 20 s.", EEG_ONLY) == ["apnea"]
    assert G.absent_mentions("Stage N2. Apnea lasting 20 s.", FULL) == []
    assert G.absent_mentions("Heart rate 60 bpm, legs quiet.", EEG_ONLY) == ["heart", "bpm", "legs"]
    assert status("Apnea lasting 20 s, at the start of the epoch.", "stage_event", EEG_ONLY) == (
        "absent"
    )


def test_numbers_are_checked_against_the_measured_features() -> None:
    assert status("Heart rate 60 bpm with an RMSSD of 40 ms.", "heart") == "agrees"
    assert status("Heart rate 90 bpm with an RMSSD of 40 ms.", "heart") == "disagrees"
    assert status("Regular breathing at 15 breaths per minute on the airflow.", "respiratory") == (
        "agrees"
    )
    irregular = "Irregular breathing at 15 breaths per minute on the airflow."
    assert status(irregular, "respiratory") == "disagrees"  # breath_cv 0.1 is regular
    assert status("Legs are quiet.", "somatic") == "agrees"
    assert status("The leg EMG shows 3 movements.", "somatic") == "disagrees"
    # relative to the whole night: not measurable on a caption's epochs
    assert status("Breath amplitude is 80% of the night's median.", "respiratory") == "unchecked"
    # not one of the model's sentences: never printed
    assert status("No highleg.", "somatic") == "unchecked"
    assert status("At C3-M2, relative power was 60% delta, 20% theta, 10% alpha, 5% sigma and "
                  "5% beta.", "brain") == "agrees"  # fmt: skip


def test_events_are_checked_against_annotations_or_detectors() -> None:
    events = [(L.SPINDLE, 3.0, 1.0), (L.SPINDLE, 12.0, 0.8)]
    assert status("Stage N2.", "stage_event", events=events) == "plain"
    assert status("2 scored spindles.", "stage_event", events=events) == "agrees"
    assert status("The scorer marked 3 spindles.", "stage_event", events=events) == "disagrees"
    assert status("Hypopnea of 20 s, at the start of the epoch.", "stage_event",
                  events=events) == "disagrees"  # fmt: skip
    hyp = [(L.HYPOPNEA, -4.0, 21.0)]
    assert status("Hypopnea lasting 20 s, which began 5 s before this epoch.", "stage_event",
                  events=hyp) == "agrees"  # fmt: skip
    assert status("Hypopnea lasting 60 s, which began 5 s before this epoch.", "stage_event",
                  events=hyp) == "disagrees"  # fmt: skip
    # unannotated recording: the spindle detector (2 in FEATS) and the leg detector (0) decide
    assert status("2 scored spindles.", "stage_event") == "agrees"
    assert status("5 scored spindles.", "stage_event") == "disagrees"
    assert status("Limb movement lasting 2 s, at the start of the epoch.", "stage_event") == (
        "disagrees"
    )
    assert status("Arousal lasting 5 s, at the start of the epoch.", "stage_event") == "unchecked"


def test_check_caption_and_printable_text() -> None:
    facts = G.EpochFacts(FEATS, FULL, None)
    text = "Heart rate 90 bpm with an RMSSD of 40 ms. The rate is steady compared with the " \
        "preceding minutes."  # fmt: skip
    checks = G.check_caption(text, "heart", facts)
    assert [c.status for c in checks] == ["disagrees", "agrees"]
    cap = Caption(0.0, 30.0, "epoch", "heart", text, checks)
    assert cap.checked_text() == "The rate is steady compared with the preceding minutes."
    absent = G.check_caption(G.absent_text("heart"), "heart", facts)
    assert absent == (SentenceCheck(G.absent_text("heart"), "plain", ""),)
    assert G.split_sentences("Rate 12.5/min. SpO2 95%.") == ["Rate 12.5/min.", "SpO2 95%."]
    assert G.dedupe_sentences("No chin. Legs quiet. no chin. No chin") == "No chin. Legs quiet."
    assert G.absent_mentions(G.absent_text("heart"), EEG_ONLY) == []  # the right answer


def test_banned_ids_cover_absent_words_only() -> None:
    from sleeplm_core.model.tokenizer import CaptionTokenizer

    tok = CaptionTokenizer.from_corpus(
        ["stage N2. obstructive apnea lasting 20 s. heart rate 60 bpm. REM sleep. legs quiet."]
    )
    ban = G.banned_token_ids(tok, EEG_ONLY)
    words = {tok.tokens[i] for i in ban}
    assert {"heart", "legs"} <= words
    for word in ("bpm", "apnea"):  # word pieces: at least one of each word is banned
        assert set(tok.encode(word)) & ban
    assert not words & {"stage", "rem", "sleep", "n2", "s", "."}
    assert G.banned_token_ids(tok, FULL) == frozenset()


class _NoDecoder:
    """A model whose decoder must not run."""

    tokenizer = None

    def generate(self, *a: Any, **k: Any) -> list[str]:
        raise AssertionError("decoded a caption for an absent modality")


def test_predictor_does_not_decode_absent_modalities() -> None:
    pytest.importorskip("torch")
    from sleeplm_core.inference import Predictor

    pred = Predictor(_NoDecoder(), {}, device=None)  # type: ignore[arg-type]
    windows = np.zeros((2, len(CANONICAL_SLOTS), 1920), np.float32)
    got = pred.generate(windows, EEG_ONLY, "respiratory")
    assert got == ["no respiratory channels in this recording"] * 2


def test_hallucinated_mentions_count_absent_channels_and_unseen_events() -> None:
    from sleeplm_core.eval.grounding_eval import hallucinated_mentions

    facts = G.EpochFacts(FEATS, EEG_ONLY, [(L.SPINDLE, 2.0, 1.0)])
    assert hallucinated_mentions("Stage N2. 1 scored spindle.", facts) == 0
    # an apnea on an EEG-only night: an absent channel and an event that is not there
    assert hallucinated_mentions("Stage N2. Apnea lasting 20 s.", facts) == 2
    assert hallucinated_mentions("No spindles or K-complexes on C3-M2.", facts) == 0


def test_grounding_suite_needs_real_recordings(tmp_path: Any) -> None:
    from sleeplm_core.errors import SleepLMError
    from sleeplm_core.eval.grounding_eval import real_recordings, run_grounding
    from sleeplm_core.eval.suites import SUITES, SuiteOptions

    assert "grounding" in SUITES
    assert real_recordings(tmp_path) == []
    with pytest.raises(SleepLMError, match="no real recording"):
        run_grounding(SuiteOptions(data_root=tmp_path))
    (tmp_path / "excerpt3.edf").write_bytes(b"")
    (tmp_path / "excerpt1.txt").write_text("x")
    assert [n for n, _ in real_recordings(tmp_path)] == [
        "DREAMS excerpt3.edf (PSG)", "DREAMS excerpt1.txt (one EEG)"
    ]
