"""The language features in a real window with the bundled SleepLM (torch, no fakes).

One night, the bundled sample (never trained on), copied so the sidecar caches stay in
``tmp_path``: cancelling the first embedding leaves the app usable, a search restarts it and
lands on a true apnea, and the caption panel fills and follows navigation.
"""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.slow


def _bundled_checkpoint_present() -> bool:
    from sleeplm_core.resources import resource_path

    models = resource_path("models")
    return models.is_dir() and any(models.glob("meta_*.json"))


@pytest.fixture
def sample_copy(tmp_path):
    from sleeplm_core.resources import resource_path

    night = tmp_path / "sample_night.edf"
    shutil.copy(resource_path("sample", "sample_night.edf"), night)
    shutil.copy(resource_path("sample", "sample_night.xml"), tmp_path / "sample_night.xml")
    return night


@pytest.fixture
def real_language_window(qtbot, isolated_settings, error_log, no_leaked_windows,
                         torch_one_thread):
    if not _bundled_checkpoint_present():
        pytest.skip("no bundled checkpoint")
    from PyQt6.QtCore import QSettings

    from sleepviewer.language import LanguageController
    from sleepviewer.widgets.main_window import MainWindow

    settings = QSettings(str(isolated_settings / "viewer.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, report_error=error_log.append)
    w.spectrogram_enabled = False
    qtbot.addWidget(w)
    lc = LanguageController(w)  # the bundled checkpoint, loaded in the worker thread
    w.resize(1400, 820)
    w.show()
    yield w, lc
    w.close()
    assert lc.host.closed and not lc.host.thread.isRunning()
    assert not error_log


def test_bundled_model_in_the_window(qtbot, real_language_window, sample_copy):
    from sleeplm_core.io.annotations import read_annotations
    from sleeplm_core.io.labels import APNEAS

    w, lc = real_language_window
    assert w.open_file(sample_copy)
    # cancel the night's embedding at once: the viewer stays usable and says what happened
    lc.cancel()
    qtbot.waitUntil(lambda: not lc.host.busy, timeout=30000)
    assert not lc.host.embedding_ready and lc.query_bar.state == "not_ready"
    w.go_to(600.0)
    assert w.state.start_s == 600.0

    # a search restarts the embedding (even while the page's captions are still pending),
    # then answers from the signal alone
    lc.query_bar.set_query("apnea")
    lc.query_bar.run()
    qtbot.waitUntil(lambda: lc.results_dock.model.rowCount() > 0, timeout=180000)
    assert lc.host.embedding_ready
    truth = [a for a in read_annotations(sample_copy.with_suffix(".xml")) if a.label in APNEAS]
    best = lc.results_dock.next_result()  # F3: the first match, and the view jumps to it
    assert best is not None
    a, b = best.onset_s, best.onset_s + best.duration_s
    assert any(t.onset_s < b and t.onset_s + t.duration_s > a for t in truth)
    assert w.state.start_s == (a // 30) * 30  # the page shows the epoch holding the match

    # the caption panel follows navigation: the REM period, then N3, each described
    for start_s in (4560.0, 1560.0):
        w.go_to(start_s)
        epoch = int(start_s // 30)
        qtbot.waitUntil(lambda e=epoch: e in lc.caption_panel.generated, timeout=60000)
        assert lc.caption_panel.epoch == epoch
    rem, n3 = lc.caption_panel.generated[152], lc.caption_panel.generated[52]
    assert all(c.text.strip() for c in (*rem.values(), *n3.values()))
    assert "REM" in rem["stage_event"].text and "N3" in n3["stage_event"].text
