"""CaptionPanel: scored vs SleepLM captions, evidence links, prompts, following navigation."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest
from PyQt6.QtCore import QUrl

from sleeplm_core.captions.facts import Caption as ScoredCaption
from sleeplm_core.captions.facts import Fact, Stated
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.results import Caption, Segment
from sleepviewer.widgets.caption_panel import (
    CaptionPanel,
    checked_html,
    evidence_onset,
    linked_html,
)

START = datetime(2024, 3, 1, 22, 14, 7)
ANNS = (Annotation(95.0, 12.0, "Arousal"), Annotation(100.0, 30.0, "Obstructive apnea"))


def scored_epoch() -> ScoredCaption:
    return ScoredCaption(
        "epoch", "stage_event",
        "Scored as N2. Obstructive apnea of 30 s, starting 10 s into the epoch.",
        (Fact("ev0_duration_s", 30.0, "s", "annotation:1:duration"),
         Fact("ev0_offset_s", 10.0, "s", "annotation:1:offset")),
        (Stated("ev0_duration_s", "30", 1.0), Stated("ev0_offset_s", "10", 1.0)),
    )


def scored_brain() -> ScoredCaption:
    return ScoredCaption(
        "epoch", "brain", "C3-M2 power: delta 76%, beta 2%.",
        (Fact("d", 76.0, "%", "feature:C3_M2.delta_pct"),
         Fact("b", 2.0, "%", "feature:C3_M2.beta_pct")),
        (Stated("d", "76", 1.0), Stated("b", "2", 1.0)),
    )


def night_captions():
    segment = ScoredCaption(
        "segment", "segment", "3 respiratory events in this stretch.",
        (Fact("n", 3.0, "count", "count:0-300:respiratory"),), (Stated("n", "3", 1.0),),
    )
    night = ScoredCaption(
        "night", "night", "TST 80 min. Sleep began after 1 min.",
        (Fact("tst", 80.0, "min", "stats:TST"), Fact("sol", 1.0, "min", "stats:SOL")),
        (Stated("tst", "80", 5.0), Stated("sol", "1", 1.0)),
    )
    epochs = [{} for _ in range(12)]
    epochs[3] = {"stage_event": scored_epoch(), "brain": scored_brain()}
    return SimpleNamespace(epochs=epochs, segments=[segment, segment], segment_epochs=10,
                           night=night)


def plain(panel: CaptionPanel) -> str:
    """The panel's text with the badges' non-breaking spaces and line breaks as spaces."""
    return " ".join(panel.browser.toPlainText().replace("\xa0", " ").split())


@pytest.fixture
def panel(qtbot):
    p = CaptionPanel()
    qtbot.addWidget(p)
    p.resize(460, 700)
    p.set_recording(START, 360.0)
    p.set_reference(night_captions(), ANNS, ["W", "W", "N2", "N2"] + ["N2"] * 8)
    return p


def test_numbers_link_to_the_annotation_they_came_from():
    text = linked_html(scored_epoch(), ANNS)
    assert '<a href="evidence:100.000">30</a> s' in text
    assert '<a href="evidence:100.000">10</a> s into' in text
    assert text.startswith("Scored as N2. Obstructive apnea of ")


def test_features_of_the_epoch_and_statistics_do_not_link():
    text = linked_html(scored_brain(), ANNS)
    assert "<a" not in text
    assert text == "C3-M2 power: delta 76%, beta 2%."  # the "2" of C3-M2 is not the fact


def test_evidence_onsets():
    assert evidence_onset("annotation:0:duration", ANNS) == 95.0
    assert evidence_onset("annotation:9:duration", ANNS) is None
    assert evidence_onset("count:600-900:respiratory", ANNS) == 600.0
    assert evidence_onset("stats:TST", ANNS) is None
    assert evidence_onset("stats:SOL", ANNS, stages=["W", "W", "N1"]) == 60.0
    assert evidence_onset("feature:hr_bpm", ANNS, epoch_onset_s=90.0) == 90.0


def test_panel_labels_scored_and_sleeplm_captions(qtbot, panel):
    with qtbot.waitSignal(panel.captionsWanted) as blocker:
        panel.set_position(95.0)
    assert blocker.args == [90.0, 120.0]
    panel.set_generated([Caption(90.0, 30.0, "epoch", "stage_event", "N2 with an apnea.")])
    text = plain(panel)
    assert "Epoch 4" in panel.title_label.text() and "scored N2" in panel.title_label.text()
    assert "scored Scored as N2" in text
    assert "SleepLM N2 with an apnea." in text
    assert "This segment · 22:14:07–22:19:07" in text
    assert "The night" in text and "TST 80 min" in text
    panel.show_model.setChecked(False)
    assert "N2 with an apnea" not in plain(panel)
    panel.show_scored.setChecked(False)
    assert "Scored as N2" not in plain(panel)


def test_panel_marks_sentences_that_disagree_with_the_signal(qtbot, panel):
    from sleeplm_core.results import SentenceCheck

    panel.set_position(95.0)
    checks = (
        SentenceCheck("Heart rate 90 bpm.", "disagrees", "hr bpm 90 (measured 61)"),
        SentenceCheck("The rate is steady.", "agrees"),
        SentenceCheck("No highleg.", "unchecked", "not a sentence the model was taught"),
    )
    text = "Heart rate 90 bpm. The rate is steady. No highleg."
    panel.set_generated([Caption(90.0, 30.0, "epoch", "heart", text, checks)])
    shown = plain(panel)
    assert "Heart rate 90 bpm. [✗ disagrees with the signal: hr bpm 90 (measured 61)]" in shown
    assert "The rate is steady. No highleg. [? not checked" in shown
    assert "<s>Heart rate 90 bpm.</s>" in checked_html(panel.generated[3]["heart"])


def test_clicking_a_fact_requests_its_evidence(qtbot, panel):
    panel.set_position(95.0)
    assert "evidence:100.000" in panel.browser.toHtml()
    with qtbot.waitSignal(panel.evidenceRequested) as blocker:
        panel.browser.anchorClicked.emit(QUrl("evidence:100.000"))
    assert blocker.args == [100.0]
    with qtbot.assertNotEmitted(panel.evidenceRequested):
        panel.browser.anchorClicked.emit(QUrl("https://example.org"))


def test_follows_navigation_and_asks_once_per_epoch(qtbot, panel):
    wanted: list[tuple[float, float]] = []
    panel.captionsWanted.connect(lambda a, b: wanted.append((a, b)))
    panel.set_position(0.0)
    panel.set_position(10.0)  # same epoch
    panel.set_generated([Caption(30.0, 30.0, "epoch", "brain", "Alpha.")])
    panel.set_position(30.0)  # already known
    panel.set_position(60.0)
    assert wanted == [(0.0, 30.0), (60.0, 90.0)]
    assert "the model is describing this epoch" in plain(panel)
    panel.set_model_note("SleepLM unavailable: no checkpoint")
    panel.set_position(150.0)
    assert wanted[-1] == (60.0, 90.0)
    assert "SleepLM unavailable: no checkpoint" in plain(panel)


def test_prompt_round_trip(qtbot, panel):
    panel.set_position(95.0)
    panel.prompt_edit.setText("describe breathing")
    with qtbot.waitSignal(panel.promptSubmitted) as blocker:
        panel.ask_button.click()
    assert blocker.args == ["describe breathing"]
    assert "asking the model…" in plain(panel)
    assert not panel.ask_button.isEnabled()
    panel.set_answer("describe breathing",
                     [Caption(90.0, 30.0, "epoch", "respiratory", "Breathing stops twice.")])
    text = plain(panel)
    assert "You asked: “describe breathing”" in text and "SleepLM Breathing stops twice." in text
    assert panel.ask_button.isEnabled()
    panel.set_answer_failed("x", "no checkpoint")
    assert "Could not answer: no checkpoint" in plain(panel)


def test_search_match_and_no_recording(qtbot, panel):
    panel.set_position(95.0)
    panel.set_match(Segment(100.0, 30.0, 0.8, ["AIRFLOW"], "Flow stops."))
    text = plain(panel)
    assert "Search match · 22:15:47, 30 s, score 0.80" in text and "Flow stops." in text
    panel.set_recording(None, 100.0)
    assert "Open a recording" in plain(panel)
