"""``sleepviewer FILE --query TEXT --screenshot OUT.png``: the snapshot waits for the search."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleepviewer import app as app_module


@pytest.fixture
def fake_language(monkeypatch, fake_predictor):
    """Attach the language controller with the fake predictor (no torch, no checkpoint)."""
    made: list[object] = []

    def controller(window):
        from sleepviewer.language import LanguageController

        lc = LanguageController(window, predictor_factory=lambda: fake_predictor)
        made.append(lc)
        return lc

    monkeypatch.setattr(app_module, "_language_controller", controller)
    return made


def test_query_screenshot_shows_the_first_match(qapp, small_edf, tmp_path, fake_language,
                                                fake_predictor, capsys):
    out = tmp_path / "query.png"
    rc = app_module.main([str(small_edf), "--query", "obstructive apnea", "--screenshot",
                          str(out)])
    assert rc == 0 and out.stat().st_size > 10_000
    (lc,) = fake_language
    # the search ran, and the first (best) match is the one selected and shown
    assert "search" in fake_predictor.calls
    assert lc.results_dock.current_segment().onset_s == pytest.approx(95.0)
    assert "found nothing" not in capsys.readouterr().err


def test_query_screenshot_without_a_model_still_writes(qapp, small_edf, tmp_path, monkeypatch,
                                                       capsys):
    from sleeplm_core.errors import CheckpointError

    def controller(window):
        from sleepviewer.language import LanguageController

        def no_model():
            raise CheckpointError("resources/models", "no checkpoint here")

        return LanguageController(window, predictor_factory=no_model)

    monkeypatch.setattr(app_module, "_language_controller", controller)
    out = tmp_path / "nomodel.png"
    assert app_module.main([str(small_edf), "--query", "apnea", "--screenshot", str(out)]) == 0
    assert Path(out).is_file()
    assert "no checkpoint here" in capsys.readouterr().err


def test_screenshot_leaves_no_temporary_folder(qapp, small_edf, tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "shot.png"
    assert app_module.main([str(small_edf), "--screenshot", str(out)]) == 0
    assert out.is_file() and list(scratch.iterdir()) == []
