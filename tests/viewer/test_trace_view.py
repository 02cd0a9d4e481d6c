"""TraceView on the fake recording, and the display filters it applies."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QEvent, QPoint, QPointF, Qt
from PyQt6.QtGui import QMouseEvent, QWheelEvent
from PyQt6.QtWidgets import QApplication

from sleepviewer import filters as flt
from sleepviewer.state import FilterSpec, ViewState, default_channel_view
from sleepviewer.widgets.trace_view import TraceView


@pytest.fixture
def view(qtbot, fake_recording):
    rec = fake_recording
    state = ViewState(
        recording_duration_s=rec.duration_s,
        channels=[default_channel_view(c.name, c.type, c.unit) for c in rec.channels],
    )
    tv = TraceView()
    qtbot.addWidget(tv)
    tv.resize(1200, 700)
    tv.set_recording(rec, state)
    tv.show()
    qtbot.waitExposed(tv)
    tv.refresh()
    return tv


def _curve_y(tv, name):
    return tv._curves[name].yData


# -- filters (Qt-free) ---------------------------------------------------------------------
def test_filter_is_zero_phase_and_removes_mains():
    sf = 256.0
    t = np.arange(int(60 * sf)) / sf
    slow = np.sin(2 * np.pi * 2.0 * t)
    x = (slow + 0.5 * np.sin(2 * np.pi * 50.0 * t) + 3.0)[None, :]
    y = flt.apply_filters(x, sf, [FilterSpec(0.3, 35.0, 50.0)])
    mid = slice(int(10 * sf), int(50 * sf))
    np.testing.assert_allclose(y[0, mid], slow[mid], atol=0.03)  # no lag, no DC, no 50 Hz


def test_filter_keeps_nan_gaps_and_groups_channels():
    sf = 100.0
    x = np.random.default_rng(0).normal(size=(3, 3000)).astype(np.float32)
    x[1, 1000:1500] = np.nan
    specs = [FilterSpec(0.5, None, None), FilterSpec(0.5, None, None), FilterSpec()]
    y = flt.apply_filters(x, sf, specs)
    assert np.isnan(y[1, 1000:1500]).all() and np.isfinite(y[1, :1000]).all()
    np.testing.assert_array_equal(y[2], x[2])  # unfiltered channel untouched


def test_filter_stage_above_nyquist_is_skipped():
    assert flt.design_sos("lowpass", 35.0, 1.0) is None
    x = np.linspace(0, 1, 50)[None, :]
    np.testing.assert_allclose(flt.apply_filters(x, 1.0, [FilterSpec(None, 35.0)]), x, rtol=1e-6)


def test_margin_covers_the_highpass_transient():
    assert flt.margin_s([FilterSpec()]) == 0.0
    assert flt.margin_s([FilterSpec(0.3, 35.0)]) == pytest.approx(10.0)
    assert flt.margin_s([FilterSpec(None, 35.0)]) == 1.0


# -- the view ------------------------------------------------------------------------------
def test_page_draws_every_visible_channel(view):
    info = view.render_info
    assert set(view._curves) == set(view.state.ch_names if hasattr(view.state, "ch_names")
                                    else [c.name for c in view.state.channels])
    assert info.filtered and info.mode in ("peak", "none")
    rows = view.channel_axis.rows
    assert [r.name for r in rows][:2] == ["C4-M1", "E1-M2"]
    assert rows[0].scale == "7.5 µV/mm"
    x0, x1 = view.view_box.viewRange()[0]
    assert (x0, x1) == pytest.approx((0.0, 30.0))


def test_flat_and_empty_channels_are_flagged_not_fatal(view):
    assert view.flat_channels == {"Flat", "Dead"}
    flagged = {r.name for r in view.channel_axis.rows if r.flat}
    assert flagged == {"Flat", "Dead"}
    assert np.all(_curve_y(view, "Flat") == 0) and np.all(_curve_y(view, "Dead") == 0)


def test_gap_page_breaks_lines_and_is_shaded(view):
    view.state.go_to(590.0)
    view.refresh()
    y = _curve_y(view, "C4-M1")
    assert np.isnan(y).any() and np.isfinite(y).any()
    assert view.grid.gaps == [(600.0, 30.0)]


def test_filtered_page_edges_match_a_long_filter(view, fake_recording):
    view.state.go_to(300.0)
    view.refresh()
    view_y = view._last.y[0]
    win = fake_recording.window(0.0, 900.0, ["C4-M1"])
    long = flt.apply_filters(win.data, win.sf, [view.state.channels[0].filters])[0]
    ref = long[int(300 * win.sf): int(330 * win.sf)]
    if view._last.factor == 1:
        np.testing.assert_allclose(view_y[:50], ref[:50], atol=1.0)
        np.testing.assert_allclose(view_y[-50:], ref[-50:], atol=1.0)
    assert abs(view_y.max() - ref.max()) < 1.0


def test_gain_keyboard_all_and_wheel_over_one_channel(view, qtbot):
    before = {c.name: c.gain for c in view.state.channels}
    view._hover_y = None
    view.scale_gain(2.0)
    assert all(c.gain == pytest.approx(2 * before[c.name]) for c in view.state.channels)
    assert view.channel_axis.rows[0].scale == "3.75 µV/mm"
    # a real wheel event over the second row (E1-M2)
    y_center = view.row_y("E1-M2")
    scene = view.view_box.mapViewToScene(QPointF(15.0, y_center))
    pos = view.plot_widget.mapFromScene(scene)
    vp = view.plot_widget.viewport()
    ev = QWheelEvent(QPointF(pos), QPointF(vp.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 120),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, ev)
    assert view.state.channel("E1-M2").gain == pytest.approx(2.0 * 1.25)
    assert view.state.channel("C4-M1").gain == pytest.approx(2.0)


def test_ruler_shows_duration_and_peak_to_peak(view, qtbot):
    y = view.row_y("C4-M1")
    view.view_box.sigRuler.emit(QPointF(2.0, y), QPointF(4.5, y), False)
    assert view._ruler_label.isVisible()
    assert view.ruler_text.startswith("2.50 s")
    assert "C4-M1" in view.ruler_text and "uV p-p" in view.ruler_text
    pp = view.peak_to_peak("C4-M1", 2.0, 4.5)
    assert 80 < pp < 200  # 40 + 20 µV sines: ~120 µV p-p


def test_ruler_drag_with_shift(view, qtbot):
    vp = view.plot_widget.viewport()
    y = view.row_y("C4-M1")

    def px(t):
        scene = view.view_box.mapViewToScene(QPointF(t, y))
        return QPointF(view.plot_widget.mapFromScene(scene))

    def send(kind, t, buttons):
        ev = QMouseEvent(kind, px(t), QPointF(vp.mapToGlobal(px(t).toPoint())),
                         Qt.MouseButton.LeftButton, buttons, Qt.KeyboardModifier.ShiftModifier)
        QApplication.sendEvent(vp, ev)

    left = Qt.MouseButton.LeftButton
    send(QEvent.Type.MouseButtonPress, 5.0, left)
    for t in (6.0, 7.0, 8.0):
        qtbot.wait(25)  # the scene drops moves that come faster than a frame
        send(QEvent.Type.MouseMove, t, left)
    assert view._ruler_label.isVisible()
    assert view.ruler_text.startswith("3.0") and "C4-M1" in view.ruler_text
    send(QEvent.Type.MouseButtonRelease, 8.0, Qt.MouseButton.NoButton)
    assert view._ruler_label.isVisible()  # stays readable after the release


def test_hide_show_and_reorder(view):
    menu = view.build_channel_menu("ECG")
    hide = [a for a in menu.actions() if a.text() == "Hide ECG"][0]
    hide.trigger()
    assert "ECG" not in view._curves
    assert "ECG" not in [r.name for r in view.channel_axis.rows]
    view.show_all_channels()
    assert "ECG" in view._curves
    # drag the ECG label onto the first row
    view.channel_axis.sigRowDragged.emit(view.row_y("ECG"), view.row_y("C4-M1"))
    assert [c.name for c in view.state.visible_channels][0] == "ECG"
    assert view.channel_axis.rows[0].name == "ECG"
    # and down again below E1-M2
    view.view_box.sigRowDragged.emit(view.row_y("ECG"), view.row_y("E1-M2"))
    assert [c.name for c in view.state.visible_channels][:3] == ["C4-M1", "E1-M2", "ECG"]


def test_whole_night_uses_the_pyramid(view, fake_recording):
    view.state.set_time_base(fake_recording.duration_s)
    view.state.go_to(0.0)
    info = view.refresh()
    assert info.mode == "pyramid" and info.factor > 1 and not info.filtered
    reads = fake_recording.n_reads
    view.refresh()
    assert fake_recording.n_reads == reads  # redraw from the pyramid, not from the file
    view.invalidate_overview()
    view.refresh()
    assert fake_recording.n_reads > reads


def test_dark_theme(view):
    view.state.theme = "dark"
    view.apply_theme()
    assert view.plot_widget.backgroundBrush().color().name() == "#1b1d21"


def test_overview_is_built_in_the_background(view, fake_recording, qtbot):
    worker = view.prepare_overview()
    assert worker is not None
    with qtbot.waitSignal(worker.done, timeout=20_000):
        pass
    reads = fake_recording.n_reads
    view.state.set_time_base(fake_recording.duration_s)
    assert view.refresh().mode == "pyramid"
    assert fake_recording.n_reads == reads  # drawn from the background pyramid
    assert view.prepare_overview() is None  # already current


def test_overview_worker_stops_on_new_recording(view, fake_recording):
    worker = view.prepare_overview()
    view.set_recording(fake_recording, view.state)
    assert worker.isFinished()


def test_steady_channels_are_not_flagged_when_constant(view):
    view.state.channel("Flat").type = "POSITION"  # body position: constant for hours
    view.refresh()
    assert view.flat_channels == {"Dead"}
    assert np.all(_curve_y(view, "Flat") == 0)


def test_next_block_is_read_while_idle(view, fake_recording, qtbot):
    for _ in range(3):  # walk to the end of the cached block
        view.state.step_epochs(1)
        view.refresh()
    qtbot.wait(50)  # idle: the prefetch timer reads ahead
    reads = fake_recording.n_reads
    for _ in range(3):
        view.state.step_epochs(1)
        view.refresh()
    assert fake_recording.n_reads == reads  # the flips themselves read nothing


def test_resize_redraws_at_the_new_scale(view, qtbot):
    y0 = float(np.ptp(_curve_y(view, "C4-M1")))
    view.resize(1200, 350)  # half the height: rows are half as many mm
    qtbot.wait(20)
    assert float(np.ptp(_curve_y(view, "C4-M1"))) == pytest.approx(2 * y0, rel=0.15)


def test_traces_are_clipped_to_their_rows_but_measured_whole(view):
    """A trace drawn at 64x gain stays within CLIP_ROWS of its row (no sweep across the
    others); unclipped it runs far past; the ruler's amplitude is the same both ways."""
    from sleepviewer.state import CLIP_ROWS

    view.scale_gain(64.0, at_cursor=False)
    assert view.state.clip_traces  # the default
    clipped = _curve_y(view, "C4-M1")
    measured = view.peak_to_peak("C4-M1", 0.0, 30.0)
    assert np.nanmax(np.abs(clipped)) == pytest.approx(CLIP_ROWS)
    view.state.clip_traces = False
    view.refresh()
    unclipped = _curve_y(view, "C4-M1")
    assert np.nanmax(np.abs(unclipped)) > 10 * CLIP_ROWS
    assert view.peak_to_peak("C4-M1", 0.0, 30.0) == pytest.approx(measured)
    inside = np.abs(unclipped) < CLIP_ROWS  # where nothing was clipped, nothing moved
    np.testing.assert_array_equal(clipped[inside], unclipped[inside])
