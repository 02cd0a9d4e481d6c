"""HypnogramView: step plot, colours, unscored hatch, page marker, jumps and the spectrogram."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPointF, Qt

from sleeplm_core.io.annotations import Annotation
from sleepviewer.annotation_store import AnnotationStore
from sleepviewer.widgets.hypnogram_view import (
    STAGE_COLORS,
    STAGE_LEVELS,
    HypnogramView,
    hypnogram_lines,
    multitaper_psd_db,
    pick_eeg_channel,
    stage_segments,
)


def make_view(qtbot, store, **kwargs):
    view = HypnogramView(store, **kwargs)
    qtbot.addWidget(view)
    view.resize(900, 300)
    return view


def test_step_line_breaks_at_unscored_epochs():
    codes = np.array([0, 0, 2, -2, 4, 4, 3], dtype=np.int8)
    x, y, connect = hypnogram_lines(codes, 30.0)
    assert x.tolist() == [0, 60, 60, 90, 120, 180, 180, 210]
    assert y.tolist() == [4, 4, 1, 1, 3, 3, 0, 0]
    # W→N2 joined; N2 | unscored | REM broken; REM→N3 joined
    assert connect.tolist() == [True, True, True, False, True, True, True, False]
    sx, sy = stage_segments(codes, 30.0, "REM")
    assert sx.tolist() == [120, 180] and sy.tolist() == [STAGE_LEVELS["REM"]] * 2


def test_levels_put_wake_on_top_and_n3_at_the_bottom():
    order = sorted(("W", "REM", "N1", "N2", "N3"), key=STAGE_LEVELS.get, reverse=True)
    assert order == ["W", "REM", "N1", "N2", "N3"]


def test_view_draws_stage_colours_rem_red_and_unscored_hatch(qtbot, night_store):
    view = make_view(qtbot, night_store)
    rem = view._bars["REM"]
    assert rem.opts["pen"].color().name() == STAGE_COLORS["REM"] == "#d62728"
    assert rem.opts["pen"].width() > view._bars["N2"].opts["pen"].width()
    n2x, _ = view._bars["N2"].getData()
    assert n2x.tolist() == [300.0, 1800.0]
    assert view._bars["REM"].getData()[0] is None or len(view._bars["REM"].getData()[0]) == 0
    # epochs 60-119 are unscored: one hatched band, and the line stops at 1800 s
    assert [(r.left(), r.right()) for r in view._hatch._rects] == [(1800.0, 3600.0)]
    assert view._line.getData()[0].max() == 1800.0
    ticks = [name for _, name in view.hypno_plot.getAxis("left")._tickLevels[0]]
    assert ticks == ["N3", "N2", "N1", "REM", "W"]  # no movement time: no "Art" row
    view.show()
    assert not view.grab().isNull()  # paints (hatch included) without error


def test_view_follows_scoring_and_undo(qtbot, night_store):
    view = make_view(qtbot, night_store)
    night_store.set_stage(range(60, 70), "REM")
    assert view._bars["REM"].getData()[0].tolist() == [1800.0, 2100.0]
    assert [(r.left(), r.right()) for r in view._hatch._rects] == [(2100.0, 3600.0)]
    night_store.set_stage(70, "ART")
    ticks = [name for _, name in view.hypno_plot.getAxis("left")._tickLevels[0]]
    assert ticks[-1] == "Art"
    night_store.undo_stack.undo()
    night_store.undo_stack.undo()
    assert len(view._bars["REM"].getData()[0]) == 0


def test_event_ticks_follow_the_store(qtbot, night_store):
    view = make_view(qtbot, night_store)
    assert len(view._tick_curves) == 4  # apnea, hypopnea, desaturation, arousal
    night_store.add(Annotation(2000.0, 1.0, "Limb movement"))
    qtbot.waitUntil(lambda: len(view._tick_curves) == 5, timeout=2000)


def test_marker_and_click_jump(qtbot, night_store):
    view = make_view(qtbot, night_store)
    view.show()
    qtbot.waitExposed(view)
    view.set_position(900.0, 930.0)
    assert view.position == (900.0, 930.0)
    assert view._marker_line.value() == 915.0
    vb = view.hypno_plot.getViewBox()
    scene_pt = vb.mapViewToScene(QPointF(1500.0, 2.0))
    pos = view.graphics.mapFromScene(scene_pt)
    with qtbot.waitSignal(view.jumpRequested) as blocker:
        qtbot.mouseClick(view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args[0] == pytest.approx(1500.0, abs=3600.0 / 400)


def test_pick_eeg_channel_prefers_central(fake_recording):
    assert pick_eeg_channel(fake_recording.channels) == "C4-M1"
    assert pick_eeg_channel([c for c in fake_recording.channels if c.name != "C4-M1"]) == "Flat"
    assert pick_eeg_channel([c for c in fake_recording.channels if c.type != "EEG"]) is None


def test_multitaper_psd_peaks_at_the_sine_and_blanks_missing_epochs():
    sf = 100.0
    t = np.arange(3000) / sf
    epochs = np.stack([np.sin(2 * np.pi * 11.0 * t), np.full(3000, np.nan)])
    freqs, psd = multitaper_psd_db(epochs, sf)
    assert freqs[0] >= 0.5 and freqs[-1] <= 25.0
    assert freqs[np.argmax(psd[0])] == pytest.approx(11.0, abs=0.1)
    assert np.isnan(psd[1]).all() and psd.dtype == np.float32


def test_spectrogram_is_computed_in_the_background(qtbot, night_store, fake_recording):
    view = make_view(qtbot, night_store)
    assert view.start_spectrogram(fake_recording) == "C4-M1"
    worker = view.spectrogram_worker
    with qtbot.waitSignal(view.spectrogramProgress, check_params_cb=lambda p: p == 100,
                          timeout=20000):
        pass
    worker.wait(5000)
    qtbot.waitUntil(
        lambda: view.spectrogram is not None and np.isfinite(view.spectrogram[-1]).any()
    )
    spec = view.spectrogram
    assert spec.shape[0] == 120
    assert np.isnan(spec[20]).all()  # the EDF+D gap 600-630 s
    assert np.isfinite(spec[19]).all()
    freqs = view._freqs
    assert freqs[np.argmax(spec[0])] == pytest.approx(1.0, abs=0.2)  # the 1-Hz component
    assert view.image.image is not None


def test_spectrogram_thread_can_be_cancelled(qtbot, night_store, slow_recording):
    view = make_view(qtbot, night_store)
    view.start_spectrogram(slow_recording, "C4-M1", chunk_epochs=1)
    worker = view.spectrogram_worker
    with qtbot.waitSignal(worker.chunkReady, timeout=5000):
        pass
    view.cancel_spectrogram()
    assert worker.isFinished()
    assert view.spectrogram_worker is None
    assert slow_recording.reads < 120  # stopped long before the end of the night
    done = slow_recording.reads
    qtbot.wait(100)
    assert slow_recording.reads == done


def test_no_eeg_channel_leaves_the_spectrogram_empty(qtbot, night_store, fake_recording):
    view = make_view(qtbot, night_store)
    fake_recording.channels = [c for c in fake_recording.channels if c.type != "EEG"]
    assert view.start_spectrogram(fake_recording) is None
    assert view.spectrogram_worker is None and view.spectrogram is None


def test_close_stops_the_worker(qtbot, fake_recording, slow_recording):
    store = AnnotationStore([], duration_s=3600.0)
    view = make_view(qtbot, store)
    view.start_spectrogram(slow_recording, "C4-M1", chunk_epochs=1)
    worker = view.spectrogram_worker
    view.close()
    assert worker.isFinished()


def test_dark_theme(qtbot, night_store):
    view = make_view(qtbot, night_store)
    view.apply_theme("dark")
    assert view.graphics.backgroundBrush().color().name() == "#1b1d21"
    # the spectrogram's caption, the axis titles ("Hz") and the hatch follow the theme
    assert view._spec_text.fill.color().name() == "#1b1d21"
    assert view._spec_text.color.lightness() > 180
    assert view.spec_plot.getAxis("left").labelStyle["color"] == "#d0d0d0"
    assert view._hatch._fill.name() == "#3a3d44"
    view.apply_theme("light")
    assert view.graphics.backgroundBrush().color().name() == "#ffffff"
    assert view._spec_text.fill.color().name() == "#ffffff"
    assert view._spec_text.color.lightness() < 60


def test_hover_text_names_clock_epoch_and_stage(qtbot, night_store, fake_recording):
    view = make_view(qtbot, night_store, start=fake_recording.start)
    assert view.describe_time(0.0) == "22:14:07  epoch 1: W"
    assert view.describe_time(345.0) == "22:19:52  epoch 12: N2"
    assert view.describe_time(3599.0).endswith("epoch 120: unscored")
    assert view.describe_time(-1.0) == ""


def test_viewer_and_report_spectrograms_are_the_same_numbers():
    from sleeplm_core import sample_night
    from sleeplm_core.io.recording import Recording
    from sleepviewer.report.model import _central_eeg, _spectrogram

    with Recording.open(sample_night()) as rec:
        report = _spectrogram(rec, [])
        name = _central_eeg(rec)
        assert report is not None and report.channel == name
        # the viewer's worker: one chunk of epochs read through Recording.window
        win = rec.window(0.0, 10 * 30.0, [name])
        per = int(round(30.0 * win.sf))
        freqs, psd = multitaper_psd_db(np.asarray(win.data[0], np.float64).reshape(10, per), win.sf)
    assert np.array_equal(freqs, report.freqs)
    assert np.allclose(psd, report.psd_db[:10], atol=1e-4)
