"""The dark theme reaches every part of the window; the annotation list follows the page."""

from __future__ import annotations

import pytest
from PyQt6.QtGui import QPalette
from PyQt6.QtWidgets import QApplication

from sleepviewer import theme


@pytest.fixture
def window(qtbot, make_window, small_edf):
    w = make_window()
    qtbot.waitExposed(w)
    assert w.open_file(small_edf)
    yield w
    theme.apply_palette(QApplication.instance(), "light")


def test_dark_palette_covers_placeholders_and_disabled_text(qapp):
    theme.apply_palette(qapp, "dark")
    try:
        pal = qapp.palette()
        placeholder = pal.color(QPalette.ColorRole.PlaceholderText)
        base = pal.color(QPalette.ColorRole.Base)
        assert placeholder.lightness() - base.lightness() > 80  # legible on the dark field
        disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        text = pal.color(QPalette.ColorRole.Text)
        assert base.lightness() < disabled.lightness() < text.lightness()
    finally:
        theme.apply_palette(qapp, "light")


def test_set_theme_reaches_the_hypnogram_and_the_annotation_labels(window):
    if window.store is None:
        pytest.skip("annotation store (viewer part 2) not in this checkout")
    window.set_theme("dark")
    assert window.hypnogram_view.graphics.backgroundBrush().color().name() == "#1b1d21"
    assert window.annotation_overlay.labels._fill.name() == "#1b1d21"
    window.set_theme("light")
    assert window.hypnogram_view.graphics.backgroundBrush().color().name() == "#ffffff"
    assert window.annotation_overlay.labels._fill.name() == "#ffffff"


def test_the_list_follows_the_page_and_the_choice_persists(window, qtbot):
    if window.store is None:
        pytest.skip("annotation store (viewer part 2) not in this checkout")
    dock = window.annotation_dock
    dock.show()
    window.go_to(90.0)
    on_page = window.store.in_range(window.state.start_s, window.state.stop_s)
    qtbot.waitUntil(lambda: dock.selected_annotations() == [on_page[0]])  # once idle
    dock.follow_check.setChecked(False)
    assert window.settings.value("annotations/follow_page", True, bool) is False
    window.go_to(0.0)
    qtbot.wait(20)
    assert dock.selected_annotations() == [on_page[0]]  # not following any more


def test_double_click_on_the_plot_opens_the_edit_dialog(window, monkeypatch):
    if window.store is None:
        pytest.skip("annotation store (viewer part 2) not in this checkout")
    asked = []
    monkeypatch.setattr(window.annotation_dock, "edit_with_dialog", asked.append)
    window.go_to(90.0)
    ann = window.annotation_overlay.items[0].annotation
    window.annotation_overlay.annotationActivated.emit(ann)
    assert asked == [ann]
