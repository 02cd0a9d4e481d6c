"""MainWindow driven like a user: open, page, go to, time base, montage, filters, gain, errors."""

from __future__ import annotations

import html
from datetime import datetime

import pytest
from PyQt6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PyQt6.QtGui import QDropEvent

from sleepviewer import keys, montages
from sleepviewer.state import FilterSpec, ViewState, parse_go_to
from sleepviewer.widgets.main_window import MainWindow


@pytest.fixture
def make_window(qtbot, isolated_settings, error_log, no_leaked_windows):
    windows = []

    def make(opener=None):
        settings = QSettings(str(isolated_settings / "viewer.ini"), QSettings.Format.IniFormat)
        w = MainWindow(settings=settings, report_error=error_log.append, opener=opener)
        w.spectrogram_enabled = False  # the multitaper worker is tested with HypnogramView
        w.overview_in_background = False
        qtbot.addWidget(w)
        w.resize(1300, 800)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


@pytest.fixture
def window(make_window, small_edf):
    w = make_window()
    assert w.open_file(small_edf)
    return w


@pytest.fixture
def fake_window(make_window, fake_recording):
    w = make_window(opener=lambda path: fake_recording)
    assert w.open_file("/fake/night.edf")
    return w


# -- Qt-free pieces -----------------------------------------------------------------------
def test_view_state_navigation():
    st = ViewState(recording_duration_s=3600.0 + 12.0)
    assert st.n_epochs == 121
    st.step_epochs(3)
    assert st.start_s == 90.0 and st.epoch_index == 3
    st.go_to(95.0)
    st.step_epochs(-1)
    assert st.start_s == 90.0  # snaps back to the epoch first
    st.step_pages(1000)
    assert st.stop_s == pytest.approx(3612.0)
    st.set_time_base(7200.0)
    assert st.start_s == 0.0


def test_parse_go_to():
    st = ViewState(recording_duration_s=8 * 3600.0)
    start = datetime(2024, 3, 1, 22, 14, 7, 250000)
    assert parse_go_to("10", start, st) == 270.0
    assert parse_go_to("e2", start, st) == 30.0
    assert parse_go_to("5400s", start, st) == 5400.0
    assert parse_go_to("+1:30:00", start, st) == 5400.0
    assert parse_go_to("23:14:07.25", start, st) == pytest.approx(3600.0)
    assert parse_go_to("01:14:07.25", start, st) == pytest.approx(3 * 3600.0)
    for bad in ("", "abc", "0", "99999"):
        with pytest.raises(ValueError):
            parse_go_to(bad, start, st)


def test_montage_resolution_with_aliases_and_derivations():
    names = ["EEG C4-A1", "F4", "M1", "M2", "E1", "EOG(R)", "EMG chin", "SaO2"]
    rows = montages.resolve("AASM recommended", names)
    got = {r.name: r.derive for r in rows}
    assert got["EEG C4-A1"] is None  # alias of C4-M1
    assert got["F4-M1"] == ("F4", "M1")
    assert got["E1-M2"] == ("E1", "M2")
    assert "EOG(R)" in got and "EMG chin" in got and "SaO2" in got
    assert [r.name for r in montages.resolve("Sleep-EDF", ["X"])] == ["X"]  # never empty


def test_shortcut_sheet_lists_every_binding():
    sheet = keys.shortcut_sheet_html()
    for b in keys.KEY_TABLE:
        assert html.escape(b.description) in sheet
    assert len({b.action for b in keys.KEY_TABLE}) == len(keys.KEY_TABLE)


# -- the window -----------------------------------------------------------------------------
def test_open_shows_first_page_and_status(window):
    assert window.recording is not None
    assert window.state.n_epochs == 20
    assert window.epoch_label.text() == "Epoch 1/20"
    assert "22:14:07.250" in window.clock_label.text()
    assert "elapsed 00:00:00" in window.clock_label.text()
    assert window.decimation_label.text().startswith("Decimation: ")
    assert window.filter_label.text() == "Filters: on"
    assert len(window.trace_view.channel_axis.rows) == len(window.state.visible_channels) > 0
    assert window.recent_files()[0].endswith("small.edf")


def test_keyboard_navigation(window, qtbot):
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.state.start_s == 30.0 and window.epoch_label.text() == "Epoch 2/20"
    assert "elapsed 00:00:30" in window.clock_label.text()
    assert "22:14:37.250" in window.clock_label.text()
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.state.start_s == 60.0
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert window.state.start_s == 30.0
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.state.start_s == 570.0 and window.epoch_label.text() == "Epoch 20/20"
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.state.start_s == 0.0
    x0, x1 = window.trace_view.view_box.viewRange()[0]
    assert (x0, x1) == pytest.approx((0.0, 30.0))


def test_go_to_dialog(window):
    dlg = window._on_action_go_to()
    dlg.setTextValue("12")
    dlg.accept()
    assert window.state.start_s == 330.0
    assert window.epoch_label.text() == "Epoch 12/20"


def test_time_base_menu_and_keys(window, qtbot):
    window.time_base_actions[60.0].trigger()
    assert window.state.duration_s == 60.0
    qtbot.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert window.state.duration_s == 120.0
    assert "page 2 min" in window.clock_label.text()
    window.time_base_actions[0.0].trigger()  # whole night
    assert window.state.duration_s == pytest.approx(600.0)
    assert window.decimation_label.text().startswith("Decimation: ")
    window.time_base_actions[10.0].trigger()
    assert window.state.duration_s == 10.0
    assert window.settings.value("view/time_base", type=float) == 10.0


def test_montage_preset_derives_channels(window):
    window.set_montage("AASM recommended")
    names = [c.name for c in window.state.channels]
    assert names[:3] == ["F4-M1", "C4-M1", "O2-M1"]
    assert "E1-M2" in names and "Chin" in names and "SpO2" in names
    assert "F4-M1" in window.recording.ch_names
    assert window.trace_view.channel_axis.rows[0].name == "F4-M1"
    window.set_montage(montages.AS_RECORDED)
    assert [c.name for c in window.state.channels][:3] == ["F4", "C4", "O2"]


def test_filters_toggle_and_dialog(fake_window, qtbot):
    w = fake_window
    qtbot.keyClick(w, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert not w.state.filters_enabled and w.filter_label.text() == "Filters: off"
    w.set_filters_enabled(True)
    dlg = w.open_channel_dialog("C4-M1")
    dlg.set_filters("C4-M1", FilterSpec(1.0, 15.0, 50.0))
    dlg.positive.setCurrentText("C4-M1")
    dlg.reference.setCurrentText("E1-M2")
    dlg.derivation_name.setText("C4-E1")
    dlg._on_add_clicked()
    dlg.accept()
    assert w.state.channel("C4-M1").filters == FilterSpec(1.0, 15.0, 50.0)
    assert "C4-E1" in [c.name for c in w.state.visible_channels]
    assert "C4-E1" in w.trace_view._curves


def test_gain_keys(fake_window, qtbot):
    w = fake_window
    w.trace_view._hover_y = None
    before = w.state.channel("C4-M1").gain
    qtbot.keyClick(w, Qt.Key.Key_Plus)
    assert w.state.channel("C4-M1").gain == pytest.approx(before * 1.25)
    qtbot.keyClick(w, Qt.Key.Key_Minus)
    assert w.state.channel("C4-M1").gain == pytest.approx(before)


def test_flat_channel_flagged_in_window(fake_window):
    rows = {r.name: r.flat for r in fake_window.trace_view.channel_axis.rows}
    assert rows["Flat"] and rows["Dead"] and not rows["C4-M1"]


def test_bad_file_shows_one_line_and_window_stays_usable(window, bad_edf, error_log, small_edf):
    assert not window.open_file(bad_edf)
    assert len(error_log) == 1 and "\n" not in error_log[0]
    assert "broken.edf" in error_log[0]
    assert window.recording is not None  # the previous recording is still shown
    window._on_action_next_epoch()
    assert window.state.start_s == 30.0
    assert not window.open_file(small_edf.parent / "missing.edf")
    assert len(error_log) == 2 and "missing.edf" in error_log[1]


def test_default_error_dialog_is_non_blocking(make_window, bad_edf, qtbot):
    w = make_window()
    w._report_error = w._show_error_box
    assert not w.open_file(bad_edf)
    from PyQt6.QtWidgets import QMessageBox

    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1 and "broken.edf" in boxes[0].text()
    boxes[0].close()


def test_theme_and_settings_persist(make_window, small_edf, isolated_settings):
    w = make_window()
    w.open_file(small_edf)
    w.set_theme("dark")
    assert w.trace_view.plot_widget.backgroundBrush().color().name() == "#1b1d21"
    w.close()
    w2 = make_window()
    assert w2.state.theme == "dark"
    assert w2.recent_files()[0].endswith("small.edf")
    assert w2.recent_menu.actions()[0].text() == "small.edf"
    w2.set_theme("light")


def test_drop_opens_file(make_window, small_edf):
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_edf))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                    Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    w.dropEvent(ev)
    assert w.recording is not None and w.windowTitle().startswith("small.edf")


def test_screenshot_offscreen(window, tmp_path):
    out = tmp_path / "shot.png"
    assert window.save_screenshot(out)
    assert out.stat().st_size > 10_000


def test_annotations_are_drawn_on_the_page(window):
    if window.store is None:
        pytest.skip("annotation store (viewer part 2) not in this checkout")
    window.go_to(90.0)
    drawn = [it.annotation.label for it in window.annotation_overlay.items]
    assert "Obstructive apnea" in drawn


def test_import_annotations(window, tmp_path, error_log):
    if window.store is None:
        pytest.skip("annotation store (viewer part 2) not in this checkout")
    from sleeplm_core.io.annotations import Annotation, write_csv

    good = tmp_path / "events.csv"
    write_csv([Annotation(200.0, 15.0, "Hypopnea")], good)
    before = window.store.event_count()
    assert window.import_annotations(good)
    assert window.store.event_count() == before + 1
    late = tmp_path / "late.csv"
    write_csv([Annotation(5000.0, 15.0, "Hypopnea")], late)  # after the 600-s recording
    assert not window.import_annotations(late)
    assert len(error_log) == 1 and "\n" not in error_log[0] and "late.csv" in error_log[0]


def test_language_shortcuts_are_in_the_key_table():
    language = pytest.importorskip("sleepviewer.language")
    for name, (key, text) in language.SHORTCUTS.items():
        b = keys.binding(name)
        assert b.keys[0] == key and b.description == text and not b.bound_by_window
    bound = [k for b in keys.KEY_TABLE for k in b.keys]
    assert len(bound) == len(set(bound)), "one key bound twice"


def test_scoring_key_scores_and_advances(window, qtbot):
    if window.store is None:
        pytest.skip("annotation store (viewer part 2) not in this checkout")
    window.go_to(60.0)
    qtbot.keyClick(window, Qt.Key.Key_3)
    assert window.store.stage_at(2) == "N3"
    assert window.state.start_s == 90.0  # auto-advance to the next epoch
    window.store.undo_stack.undo()
    assert window.store.stage_at(2) == "N2"


def test_hypnogram_and_list_jump_to_the_epoch(window):
    if window.hypnogram_view is None:
        pytest.skip("hypnogram view (viewer part 2) not in this checkout")
    window.hypnogram_view.jumpRequested.emit(100.0)
    assert window.state.start_s == 90.0
    window.annotation_dock.jumpRequested.emit(250.0)
    assert window.state.start_s == 240.0


def test_background_threads_stop_on_close(make_window, small_edf, qtbot):
    w = make_window()
    w.spectrogram_enabled = w.overview_in_background = True
    assert w.open_file(small_edf)
    qtbot.wait(400)  # the overview starts 300 ms after the first page
    assert w.trace_view._overview_worker is not None
    w.close()  # no_leaked_windows then checks that no QThread is still running


def test_export_report_and_annotations(window, tmp_path, error_log):
    pytest.importorskip("sleepviewer.report.export")
    assert window.export_action.isEnabled()
    assert window.export_to(tmp_path / "night.csv")
    assert "Obstructive apnea" in (tmp_path / "night.csv").read_text()
    assert window.export_to(tmp_path / "night.html")
    assert (tmp_path / "night.html").stat().st_size > 1000
    assert not window.export_to(tmp_path / "night.docx")
    assert len(error_log) == 1 and "\n" not in error_log[0]


def test_screen_calibration_scales_microvolts_per_mm(fake_window, qtbot):
    w = fake_window
    qtbot.wait(20)  # the layout settles (docks) and the page is redrawn at its final size
    curve = w.trace_view._curves["C4-M1"]
    before = float(curve.yData.max() - curve.yData.min())
    w.set_screen_calibration(2 * w.trace_view.screen_px_per_mm())  # twice the pixels per mm
    after = float(curve.yData.max() - curve.yData.min())
    # the same µV/mm now spans twice the pixels: the trace doubles in view units per row
    assert after == pytest.approx(2 * before, rel=0.02)
    assert w.settings.value("view/px_per_mm", type=float) > 0
    w.set_screen_calibration(0.0)
    assert w.state.px_per_mm is None


def test_command_line():
    from sleepviewer.app import build_parser

    args = build_parser().parse_args(
        ["night.edf", "--start", "90", "--montage", "AASM recommended", "--screenshot", "o.png",
         "--time-base", "60", "--theme", "dark", "--query", "apnea", "--report", "r.pdf"]
    )
    assert args.file.name == "night.edf" and args.start == 90.0 and args.time_base == 60.0
    assert args.montage == "AASM recommended" and args.theme == "dark"
    assert args.screenshot.name == "o.png" and args.query == "apnea" and args.report.name == "r.pdf"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--montage", "nonsense"])


def test_clipping_toggle_from_the_keyboard(fake_window, qtbot):
    w = fake_window
    assert w.state.clip_traces and w.actions_by_name["toggle_clipping"].isChecked()
    qtbot.keyClick(w, Qt.Key.Key_J, Qt.KeyboardModifier.ControlModifier)
    assert not w.state.clip_traces and not w.actions_by_name["toggle_clipping"].isChecked()
    w.set_clip_traces(True)
    assert w.state.clip_traces and w.actions_by_name["toggle_clipping"].isChecked()
