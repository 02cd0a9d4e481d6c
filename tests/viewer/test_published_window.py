"""An imported SleepLM-Base (a tiny random model of the published family) in the viewer.

The published family goes through the same LanguageController, worker and caption panel as
the bundled model: the Model menu lists the imported folder, the caption panel fills with its
generated captions for the page in view, and zero-shot stage suggestions arrive.
"""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def imported_model(tmp_path_factory):
    from tests.core.published_helpers import tiny_imported

    return tiny_imported(tmp_path_factory.mktemp("models"))


def test_imported_model_in_the_window(qtbot, isolated_settings, error_log, tmp_path,
                                      imported_model, torch_one_thread, monkeypatch):  # fmt: skip
    from PyQt6.QtCore import QSettings

    import sleeplm_core.published.predictor as published

    monkeypatch.setattr(published, "MAX_CAPTION_TOKENS", 24)  # random weights never stop

    from sleepviewer.language import LanguageController
    from sleepviewer.model_menu import ModelMenuController
    from sleepviewer.widgets.main_window import MainWindow
    from sleepviewer.workers import load_predictor
    from tests.core.test_inference import small_night

    night = small_night(tmp_path / "night")
    settings = QSettings(str(isolated_settings / "viewer.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, report_error=error_log.append)
    w.spectrogram_enabled = False
    qtbot.addWidget(w)
    lc = LanguageController(w, predictor_factory=load_predictor(imported_model, "cpu"))
    menu = ModelMenuController(w, lc, models_dir=imported_model.parent)
    try:
        assert imported_model.name in [a.text() for a in menu.model_actions()]
        w.resize(1200, 760)
        w.show()
        assert w.open_file(night)
        w.go_to(60.0)
        qtbot.waitUntil(lambda: 2 in lc.caption_panel.generated, timeout=120000)
        generated = lc.caption_panel.generated[2]
        assert "stage_event" in generated
        assert all(c.text.strip() for c in generated.values())
        qtbot.waitUntil(lambda: lc.host.embedding_ready, timeout=120000)
        assert not error_log
    finally:
        menu.close()
        w.close()
        shutil.rmtree(tmp_path / "night", ignore_errors=True)
    assert lc.host.closed
