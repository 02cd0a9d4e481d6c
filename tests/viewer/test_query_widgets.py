"""QueryBar and ResultsDock: what the user types, sees and presses."""

from __future__ import annotations

from datetime import datetime

import pytest
from PyQt6.QtCore import QPoint, Qt

from sleeplm_core.results import SearchResult, Segment
from sleepviewer.query import ParsedQuery
from sleepviewer.widgets.query_bar import QueryBar
from sleepviewer.widgets.results_dock import (
    COL_CAPTION,
    COL_CLOCK,
    COL_DURATION,
    ResultsDock,
    format_duration,
)

START = datetime(2024, 3, 1, 22, 14, 7, 250000)
SEGMENTS = [
    Segment(95.0, 12.0, 0.82, ["AIRFLOW", "SPO2"], "Flow drops for about 12 s."),
    Segment(1300.0, 20.0, 0.71, ["AIRFLOW"], "Airflow falls by half."),
    Segment(2500.0, 95.0, 0.60, ["AIRFLOW"], ""),
]


@pytest.fixture
def bar(qtbot):
    w = QueryBar()
    qtbot.addWidget(w)
    w.set_state("ready")
    return w


@pytest.fixture
def dock(qtbot):
    d = ResultsDock(START)
    qtbot.addWidget(d)
    d.resize(700, 300)
    d.show()
    d.set_result(SearchResult("obstructive apnea", SEGMENTS, 0.35, [0.82, 0.71, 0.6]))
    return d


def test_enter_runs_a_parsed_query(qtbot, bar):
    bar.edit.setText("obstructive apnea stage:REM min_dur:10s")
    with qtbot.waitSignal(bar.searchRequested) as blocker:
        qtbot.keyClick(bar.edit, Qt.Key.Key_Return)
    q = blocker.args[0]
    assert isinstance(q, ParsedQuery)
    assert q.text == "obstructive apnea" and q.filters.stages == ("REM",)
    assert bar.state == "searching" and bar.run_button.text() == "Cancel"
    assert bar.status_label.text() == "Searching…"


@pytest.mark.parametrize(
    ("line", "shown"),
    [("apnea stage:X", "not a stage"), ("stage:REM", "Type what to look for"), ("", "Type")],
)
def test_bad_queries_show_a_message_and_emit_nothing(qtbot, bar, line, shown):
    bar.edit.setText(line)
    with qtbot.assertNotEmitted(bar.searchRequested):
        bar.run_button.click()
    assert shown in bar.status_label.text()
    assert "c0392b" in bar.status_label.styleSheet()
    assert bar.state == "ready"


def test_cancel_by_button_and_escape(qtbot, bar):
    bar.edit.setText("apnea")
    bar.run()
    with qtbot.waitSignal(bar.cancelRequested):
        bar.run_button.click()
    with qtbot.waitSignal(bar.cancelRequested):
        qtbot.keyClick(bar.edit, Qt.Key.Key_Escape)


def test_states_say_what_the_model_is_doing(qtbot):
    bar = QueryBar()
    qtbot.addWidget(bar)
    assert bar.state == "no_recording" and not bar.edit.isEnabled()
    bar.set_state("not_ready")
    bar.set_progress("Embedding night: 43% — about 20 s left")
    assert bar.status_label.text().startswith("Embedding not ready (43% — about 20 s left)")
    assert bar.edit.isEnabled()
    bar.edit.setText("apnea")
    with qtbot.waitSignal(bar.searchRequested):
        bar.run()  # a search while embedding waits for it
    assert "waiting for the night" in bar.status_label.text()
    bar.set_state("unavailable", "resources/models: no checkpoint here")
    assert not bar.run_button.isEnabled()
    assert bar.status_label.text() == "Search unavailable: resources/models: no checkpoint here"
    with qtbot.assertNotEmitted(bar.searchRequested):
        bar.run()


def test_history_up_and_down(qtbot, bar):
    for text in ("apnea", "spindles"):
        bar.edit.setText(text)
        bar.run()
        bar.set_state("ready")
    bar.edit.clear()
    qtbot.keyClick(bar.edit, Qt.Key.Key_Up)
    assert bar.edit.text() == "spindles"
    qtbot.keyClick(bar.edit, Qt.Key.Key_Up)
    assert bar.edit.text() == "apnea"
    qtbot.keyClick(bar.edit, Qt.Key.Key_Down)
    qtbot.keyClick(bar.edit, Qt.Key.Key_Down)
    assert bar.edit.text() == ""


def test_results_table_shows_clock_duration_score_caption(dock):
    m = dock.model
    assert m.rowCount() == 3
    assert m.index(0, COL_CLOCK).data() == "22:15:42"
    assert m.index(2, COL_DURATION).data() == "1 min 35 s"
    assert m.index(1, 3).data() == "0.71"
    assert m.index(2, COL_CAPTION).data() == "—"
    assert "3</b> matches" in dock.summary_label.text()
    assert format_duration(120) == "2 min"


def test_f3_and_enter_walk_the_matches_and_jump(qtbot, dock):
    jumps: list[float] = []
    dock.jumpRequested.connect(jumps.append)
    dock.table.setFocus()
    qtbot.keyClick(dock.table, Qt.Key.Key_F3)
    qtbot.keyClick(dock.table, Qt.Key.Key_Return)
    qtbot.keyClick(dock.table, Qt.Key.Key_F3)
    qtbot.keyClick(dock.table, Qt.Key.Key_F3)  # wraps to the first
    qtbot.keyClick(dock.table, Qt.Key.Key_F3, Qt.KeyboardModifier.ShiftModifier)
    assert jumps == [95.0, 1300.0, 2500.0, 95.0, 2500.0]


def test_click_jumps_once(qtbot, dock):
    jumps: list[float] = []
    dock.jumpRequested.connect(jumps.append)
    rect = dock.table.visualRect(dock.model.index(1, COL_CLOCK))
    qtbot.mouseClick(dock.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert jumps == [1300.0]
    qtbot.mouseClick(dock.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert jumps == [1300.0, 1300.0]  # a second click on the same row jumps back there


def test_a_accepts_the_current_match_once(qtbot, dock):
    accepted: list[Segment] = []
    dock.acceptRequested.connect(accepted.append)
    assert not dock.accept_button.isEnabled()
    dock.select_row(1)
    assert dock.accept_button.isEnabled()
    qtbot.keyClick(dock.table, Qt.Key.Key_A)
    qtbot.keyClick(dock.table, Qt.Key.Key_A)
    assert accepted == [SEGMENTS[1]]
    assert dock.model.index(1, 0).data() == "2 ✓"
    assert not dock.accept_button.isEnabled()


def test_nothing_matched_shows_best_scores_not_invented_matches(dock):
    dock.set_result(SearchResult("bruxism", [], 0.35, [0.31, 0.29, 0.27, 0.22]))
    assert dock.model.rowCount() == 0
    assert dock.stack.currentWidget() is dock.empty_label
    assert dock.empty_label.text().startswith(
        "Nothing matched well (best scores: 0.31, 0.29, 0.27, …"
    )
    assert dock.next_result() is None and dock.accept_current() is None


def test_a_refused_query_shows_why(dock):
    note = "“no apnea” asks for the absence of apnea: the search finds events, not their absence."
    dock.set_result(SearchResult("no apnea", [], float("nan"), [], note=note))
    assert dock.stack.currentWidget() is dock.empty_label
    assert dock.empty_label.text() == note


def test_filters_that_remove_everything_say_so(dock):
    dock.set_result(SearchResult("apnea", [], 0.35, [0.8]), n_found=4, filters="stage REM")
    assert "4 matches found, but none passes the filters (stage REM)" in dock.empty_label.text()
    dock.set_result(SearchResult("apnea", SEGMENTS[:1], 0.35, [0.8]), n_found=4, filters="x")
    assert "3 more outside the filters" in dock.summary_label.text()


# -- LanguageController in a real MainWindow, against the fake Predictor ----------------------
@pytest.fixture
def language_window(qtbot, isolated_settings, error_log, no_leaked_windows, fake_recording,
                    fake_predictor, fake_opener):
    from PyQt6.QtCore import QSettings

    from sleepviewer.language import LanguageController
    from sleepviewer.widgets.main_window import MainWindow

    settings = QSettings(str(isolated_settings / "viewer.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, report_error=error_log.append,
                   opener=lambda path: fake_recording)
    w.spectrogram_enabled = False
    w.overview_in_background = False
    qtbot.addWidget(w)
    lc = LanguageController(w, predictor_factory=lambda: fake_predictor, opener=fake_opener)
    w.resize(1400, 820)
    w.show()
    assert w.open_file("/fake/night.edf")
    qtbot.waitUntil(lambda: lc.host.embedding_ready, timeout=5000)
    yield w, lc
    w.close()
    assert lc.host.closed and not lc.host.thread.isRunning()
    assert not error_log


def test_controller_search_jump_and_accept(qtbot, language_window):
    w, lc = language_window
    assert lc.query_bar.state == "ready"
    qtbot.waitUntil(lambda: lc.caption_panel.reference is not None, timeout=10000)
    lc.query_bar.set_query("obstructive apnea min_dur:15s")
    with qtbot.waitSignal(lc.host.finished, timeout=5000):
        lc.query_bar.run()
    assert lc.results_dock.model.rowCount() == 2  # 12 s and 8 s matches are too short
    assert [line.value() for _, line in lc._marks] == [1310.0, 2522.5]  # on the hypnogram
    lc.actions["next_match"].trigger()  # F3
    assert w.state.start_s == 1290.0  # the epoch holding the 1300 s match
    assert lc.caption_panel.match is not None and lc.caption_panel.match.onset_s == 1300.0
    n = len(w.store.events())
    lc.results_dock.accept_current()
    added = [a for a in w.store.events() if a.onset_s == 1300.0]
    assert len(w.store.events()) == n + 1 and added[0].label == "Obstructive apnea"
    assert ("source", "SleepLM search") in added[0].extras
    w.store.undo_stack.undo()
    assert len(w.store.events()) == n


def test_controller_follows_navigation_with_captions_and_evidence(qtbot, language_window):
    w, lc = language_window
    w.go_to(90.0)
    qtbot.waitUntil(lambda: 3 in lc.caption_panel.generated, timeout=5000)
    assert lc.caption_panel.epoch == 3
    with qtbot.waitSignal(lc.host.finished, timeout=5000):
        lc.caption_panel.prompt_edit.setText("describe breathing")
        lc.caption_panel.submit_prompt()
    assert lc.caption_panel.answer[0] == "describe breathing"
    assert "breaths/min" in lc.caption_panel.answer[1]
    lc.caption_panel.evidenceRequested.emit(1312.0)
    assert w.state.start_s == 1290.0


def test_controller_without_a_model_stays_usable(qtbot, isolated_settings, error_log,
                                                  fake_recording, fake_opener):
    from PyQt6.QtCore import QSettings

    from sleeplm_core.errors import CheckpointError
    from sleepviewer.language import LanguageController
    from sleepviewer.widgets.main_window import MainWindow

    def no_model():
        raise CheckpointError("resources/models", "no checkpoint here")

    settings = QSettings(str(isolated_settings / "viewer.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, report_error=error_log.append,
                   opener=lambda path: fake_recording)
    w.spectrogram_enabled = False
    w.overview_in_background = False
    qtbot.addWidget(w)
    lc = LanguageController(w, predictor_factory=no_model, opener=fake_opener)
    assert w.open_file("/fake/night.edf")
    qtbot.waitUntil(lambda: lc.query_bar.state == "unavailable", timeout=5000)
    assert "no checkpoint here" in lc.query_bar.status_label.text()
    assert "SleepLM unavailable" in lc.caption_panel.model_note
    qtbot.waitUntil(lambda: lc.caption_panel.reference is not None, timeout=10000)
    w.go_to(300.0)  # navigation still works
    assert w.state.start_s == 300.0
    lc.model_changed()  # a switch to another model forgets the failure
    assert lc.query_bar.state == "not_ready"
    assert not lc._model_error
    w.close()
    assert lc.host.closed and not lc.host.thread.isRunning()
    assert not error_log


def test_segment_to_annotation_labels():
    from sleepviewer.language import segment_to_annotation

    seg = Segment(10.0, 20.0, 0.7, ["EEG"], "x")
    assert segment_to_annotation(seg, "spindles").label == "Spindle"
    odd = segment_to_annotation(seg, "snoring with gasps")
    assert odd.label == "SleepLM: snoring with gasps" and ("score", "0.70") in odd.extras


# -- SuggestionView: the zero-shot hypnogram beside the scoring ---------------------------------
def stage_result(stages, conf=0.8):
    from sleeplm_core.results import EpochStage, StageResult

    return StageResult([EpochStage(i, 30.0 * i, s, conf, {s: conf}) for i, s in enumerate(stages)],
                       ["C4-M1"], "fake@0")


def test_agreement_counts_only_epochs_both_staged():
    from sleeplm_core.eval.metrics import cohen_kappa
    from sleepviewer.widgets.suggestion_view import agreement

    scored = ["W", "N2", "N2", "UNS", "REM", "N3"]
    suggested = ["W", "N2", "N1", "N2", "REM", "N3"]
    kappa, agree, n = agreement(scored, suggested)
    assert n == 5 and agree == 0.8
    assert kappa == pytest.approx(cohen_kappa(["W", "N2", "N2", "REM", "N3"],
                                              ["W", "N2", "N1", "REM", "N3"],
                                              ["W", "N1", "N2", "N3", "REM"]))
    assert agreement(["UNS"], ["W"])[2] == 0


def test_suggestion_view_shows_kappa_and_accepts_by_signal(qtbot):
    from sleepviewer.widgets.suggestion_view import SuggestionView

    v = SuggestionView()
    qtbot.addWidget(v)
    v.resize(800, 90)
    v.show()
    assert "No SleepLM suggestions yet" in v.summary_label.text()
    v.set_scored(["W", "N2", "N2", "UNS", "REM", "N3"])
    v.set_suggestions(stage_result(["W", "N2", "N1", "N2", "N2", "N3"]))
    assert v.disagreements() == [2, 4]
    assert "Cohen's κ = " in v.summary_label.text() and "2 disagree" in v.summary_label.text()
    got: list = []
    v.acceptRequested.connect(got.append)
    v.set_position(65.0)  # epoch 2
    assert v.accept_epoch_button.isEnabled()
    v.accept_epoch_button.click()
    assert got == [{"N1": [2]}]
    v.accept_all_button.click()
    assert got[-1] == {"N1": [2], "N2": [4]}
    with qtbot.waitSignal(v.jumpRequested) as blocker:
        x = int(v.strip._x(4.5))
        qtbot.mouseClick(v.strip, Qt.MouseButton.LeftButton, pos=QPoint(x, 10))
    assert blocker.args == [120.0]
    assert "scored REM, SleepLM N2 (80% likely right)" in v.describe(4)


def test_controller_suggestions_become_scoring_only_when_accepted(qtbot, language_window):
    w, lc = language_window
    before = list(w.store.stage_codes)
    with qtbot.waitSignal(lc.host.finished, timeout=5000):
        lc.actions["suggest_stages"].trigger()
    assert lc.suggestion_dock.isVisible()
    v = lc.suggestion_view
    assert len(v.suggested) == 120 and v.disagreements()
    assert list(w.store.stage_codes) == before  # nothing changed by showing them
    n = v.accept_disagreements()
    assert n == len([e for e in range(120) if v.suggested[e] != "N2"])
    assert w.store.stage_at(0) == "W" and not v.disagreements()
    w.store.undo_stack.undo()  # one step undoes them all
    assert list(w.store.stage_codes) == before


def test_typing_a_query_does_not_score_epochs(qtbot, language_window):
    """Scoring keys (W, R, 0-4, M, Backspace) are window shortcuts: the line edits win."""
    w, lc = language_window
    before = list(w.store.stage_codes)
    start = w.state.start_s
    lc.focus_search()
    qtbot.keyClicks(lc.query_bar.edit, "rem 2 w m")
    qtbot.keyClick(lc.query_bar.edit, Qt.Key.Key_Backspace)
    assert lc.query_bar.edit.text() == "rem 2 w "
    lc.focus_prompt()
    qtbot.keyClicks(lc.caption_panel.prompt_edit, "r0")
    assert list(w.store.stage_codes) == before and w.state.start_s == start


def test_controller_reuses_key_table_actions(qtbot, isolated_settings, error_log, fake_opener,
                                             fake_predictor):
    """A ``next_match`` row in keys.KEY_TABLE must not give F3 to two actions."""
    from PyQt6.QtCore import QSettings
    from PyQt6.QtGui import QAction, QKeySequence

    from sleepviewer.language import LanguageController
    from sleepviewer.widgets.main_window import MainWindow

    settings = QSettings(str(isolated_settings / "viewer.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, report_error=error_log.append)
    qtbot.addWidget(w)
    table_act = QAction("Next search match", w)
    table_act.setShortcut(QKeySequence("F3"))
    w.addAction(table_act)
    w.actions_by_name["next_match"] = table_act
    lc = LanguageController(w, predictor_factory=lambda: fake_predictor, opener=fake_opener)
    assert lc.actions["next_match"] is table_act
    f3 = [a for a in w.actions() if a.shortcut() == QKeySequence("F3")]
    assert f3 == [table_act]
    w.close()
