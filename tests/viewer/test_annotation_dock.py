"""AnnotationDock and AnnotationOverlay: filters, jumps, undoable edits and deletes."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPointF, Qt

from sleeplm_core.io.annotations import Annotation
from sleepviewer.annotation_store import AnnotationStore
from sleepviewer.widgets.annotation_dock import (
    COL_CLOCK,
    COL_DURATION,
    COL_LABEL,
    COL_ONSET,
    AnnotationDock,
    AnnotationEditDialog,
)


def make_dock(qtbot, store, **kwargs):
    dock = AnnotationDock(store, **kwargs)
    qtbot.addWidget(dock)
    dock.resize(520, 400)
    return dock


def test_rows_show_clock_seconds_duration_label_channel(qtbot, night_store, fake_recording):
    dock = make_dock(qtbot, night_store, start=fake_recording.start)
    m = dock.model
    assert m.rowCount() == 4
    assert [m.index(r, COL_LABEL).data() for r in range(4)] == [
        "Obstructive apnea", "Hypopnea", "Oxygen desaturation", "Arousal"]
    assert m.index(0, COL_CLOCK).data() == "22:15:42"  # 22:14:07.25 + 95 s
    assert m.index(0, COL_ONSET).data() == "95.0"
    assert m.index(2, COL_DURATION).data() == "20.0"
    assert m.index(2, 4).data() == "SpO2"
    assert "spo2_nadir: 88" in m.index(2, COL_LABEL).data(Qt.ItemDataRole.ToolTipRole)
    assert dock.count_label.text() == "4 events"


def test_filter_by_label_and_text(qtbot, night_store):
    dock = make_dock(qtbot, night_store)
    combo_labels = [dock.label_combo.itemData(i) for i in range(dock.label_combo.count())]
    assert combo_labels == [None, "Arousal", "Hypopnea", "Obstructive apnea",
                            "Oxygen desaturation"]
    dock.set_filter("Hypopnea")
    assert dock.model.rowCount() == 1
    assert dock.count_label.text() == "1 of 4 events"
    dock.set_filter(None, "spo2")  # channel text
    assert [a.label for a in map(dock.model.annotation, range(dock.model.rowCount()))] == [
        "Oxygen desaturation"]
    dock.set_filter(None, "APNEA")
    assert dock.model.rowCount() == 1
    dock.set_filter(None, "")
    assert dock.model.rowCount() == 4


def test_click_and_activate_emit_jump(qtbot, night_store):
    dock = make_dock(qtbot, night_store)
    dock.show()
    index = dock.model.index(1, COL_LABEL)
    rect = dock.table.visualRect(index)
    with qtbot.waitSignal(dock.jumpRequested) as blocker:
        qtbot.mouseClick(dock.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [400.0]
    with qtbot.waitSignal(dock.jumpRequested) as blocker:
        dock.table.activated.emit(dock.model.index(3, 0))
    assert blocker.args == [1200.0]


def test_inline_edit_goes_through_the_store_and_undoes(qtbot, night_store):
    dock = make_dock(qtbot, night_store)
    m = dock.model
    before = night_store.events()
    assert m.flags(m.index(0, COL_LABEL)) & Qt.ItemFlag.ItemIsEditable
    assert not m.flags(m.index(0, COL_ONSET)) & Qt.ItemFlag.ItemIsEditable
    assert m.setData(m.index(0, COL_LABEL), "Central apnea")
    assert m.index(0, COL_LABEL).data() == "Central apnea"
    assert m.setData(m.index(0, COL_DURATION), 30.5)
    assert night_store.event_at(0).duration_s == 30.5
    assert not m.setData(m.index(0, COL_DURATION), -3.0)  # invalid: refused
    assert not m.setData(m.index(0, COL_LABEL), "Sleep stage N2")  # stages are scored
    assert night_store.undo_stack.count() == 2
    night_store.undo_stack.undo()
    night_store.undo_stack.undo()
    assert night_store.events() == before


def test_delete_key_deletes_selection_undoably(qtbot, night_store):
    dock = make_dock(qtbot, night_store)
    dock.show()
    dock.table.selectRow(1)
    dock.table.selectionModel().select(
        dock.model.index(2, 0),
        dock.table.selectionModel().SelectionFlag.Select
        | dock.table.selectionModel().SelectionFlag.Rows,
    )
    qtbot.keyClick(dock.table, Qt.Key.Key_Delete)
    assert [a.label for a in night_store.events()] == ["Obstructive apnea", "Arousal"]
    assert night_store.undo_stack.count() == 1
    night_store.undo_stack.undo()
    assert dock.model.rowCount() == 4


def test_label_filter_survives_edits_and_vanishing_labels(qtbot, night_store):
    dock = make_dock(qtbot, night_store)
    dock.set_filter("Arousal")
    night_store.add(Annotation(2000.0, 5.0, "Arousal"))
    assert dock.model.rowCount() == 2 and dock.label_combo.currentData() == "Arousal"
    night_store.delete([a for a in night_store.events() if a.label == "Arousal"])
    assert dock.label_combo.currentData() is None and dock.model.rowCount() == 3


def test_edit_dialog_result(qtbot, night_store):
    ann = night_store.event_at(2)
    dialog = AnnotationEditDialog(ann, night_store.labels(), ["C4-M1", "SpO2"])
    qtbot.addWidget(dialog)
    dialog.duration.setValue(42.0)
    dialog.label.setCurrentText("Hypopnea")
    dialog.channel.setCurrentText("")
    new = dialog.result_annotation()
    assert new == Annotation(ann.onset_s, 42.0, "Hypopnea", None, ann.extras)
    dialog.label.setCurrentText("Sleep stage 2")
    assert dialog.result_annotation() is None


def test_ten_thousand_events_are_handled(qtbot, many_events):
    store = AnnotationStore(many_events, duration_s=8 * 3600.0)
    dock = make_dock(qtbot, store)
    dock.show()
    assert dock.model.rowCount() == 10_000
    dock.set_filter("Hypopnea")
    n_hyp = sum(a.label == "Hypopnea" for a in many_events)
    assert dock.model.rowCount() == n_hyp
    last = dock.model.annotation(n_hyp - 1)
    assert dock.select_annotation(last)
    assert dock.selected_annotations() == [last]
    dock.set_filter(None, "")
    assert dock.selected_annotations() == [last]  # the selection survives the filter change
    dock.table.clearSelection()
    assert dock.delete_selected() == 0
    dock.table.selectAll()
    assert dock.delete_selected() == 10_000
    assert store.event_count() == 0
    store.undo_stack.undo()
    assert dock.model.rowCount() == 10_000


# -- AnnotationOverlay (annotations drawn on the trace plot) ------------------------------------
def make_overlay(qtbot, store, chooser=None):
    import pyqtgraph as pg

    from sleepviewer.items.annotation_item import AnnotationOverlay

    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    plot = widget.getPlotItem()
    plot.setXRange(0, 1800, padding=0)
    plot.setYRange(0, 3, padding=0)
    bands = {"SpO2": (0.0, 1.0), "C4-M1": (2.0, 3.0), "E1-M2": (1.0, 2.0)}
    overlay = AnnotationOverlay(plot, store, lambda: bands, label_chooser=chooser)
    return widget, overlay


def test_overlay_draws_page_events_and_ties_channels(qtbot, night_store):
    from sleepviewer.items.annotation_item import label_color

    widget, overlay = make_overlay(qtbot, night_store)
    plot = widget.getPlotItem()
    n_items = len(plot.items)
    assert overlay.update_view(0.0, 1800.0) == 4
    by_label = {d.annotation.label: d for d in overlay.items}
    assert by_label["Hypopnea"].span == (0.0, 1.0)  # whole height
    assert by_label["Oxygen desaturation"].span == (0.0, pytest.approx(1 / 3))
    assert by_label["Arousal"].span == (pytest.approx(2 / 3), 1.0)
    assert (by_label["Hypopnea"].x0, by_label["Hypopnea"].x1) == (400.0, 415.0)
    assert by_label["Arousal"].color == label_color("Arousal")
    assert by_label["Oxygen desaturation"].text == "Oxygen desaturation (SpO2)"
    assert overlay.update_view(380.0, 420.0) == 2
    assert len(plot.items) == n_items  # the same few items, whatever the number of events
    night_store.add(Annotation(401.0, 2.0, "Spindle"))  # the overlay follows the store
    assert len(overlay.items) == 3
    overlay.update_view(405.0, 435.0)
    assert overlay.items[0].label_x == 405.0  # begun before the page: labelled at its edge


def test_overlay_layer_finds_the_event_under_the_mouse(qtbot, night_store):
    _, overlay = make_overlay(qtbot, night_store)
    overlay.update_view(0.0, 1800.0)
    assert overlay.layer.annotation_at(405.0, 2.5).label == "Hypopnea"
    assert overlay.layer.annotation_at(420.0, 2.5) is None  # desaturation: SpO2 band only
    assert overlay.layer.annotation_at(420.0, 0.5).label == "Oxygen desaturation"
    assert overlay.layer.annotation_at(395.0, 2.5) is None
    assert overlay.layer.annotation_at(398.0, 2.5, tolerance=3.0).label == "Hypopnea"
    assert not overlay.layer.boundingRect().isEmpty()
    assert overlay.layer.shape().contains(QPointF(405.0, 2.5))


def test_overlay_paints_merged_bands_and_labels(qtbot, night_store):
    from sleepviewer.items.annotation_item import label_color

    widget, overlay = make_overlay(qtbot, night_store)
    widget.resize(900, 300)
    widget.show()
    for k in range(6):  # overlapping same-label events: one merged fill
        night_store.add(Annotation(100.0 + 3 * k, 10.0, "Arousal"))
    widget.getPlotItem().setXRange(90.0, 130.0, padding=0)
    assert overlay.update_view(90.0, 130.0) == 7  # and the apnea at 95 s
    image = widget.grab()
    assert not image.isNull()
    fills = {c.name(): rects for c, rects in overlay.layer._fills}
    assert len(fills[label_color("Arousal")]) == 1  # six events, one rectangle
    boxes = overlay.labels.boxes
    assert boxes, "labels were painted"
    for a in boxes:  # no two labels overlap
        assert all(a is b or not a.rect.intersects(b.rect) for b in boxes)


def test_label_layout_stacks_then_elides():
    from sleepviewer.items.annotation_layer import MAX_LANES, layout_labels

    items = [(10.0 * k, 0.0, 500.0, f"Label {k}", "#000000") for k in range(MAX_LANES + 2)]
    boxes = layout_labels(items, 16.0, lambda t: 60.0, lambda t, w: t[:2] + "…")
    assert len({b.rect.top() for b in boxes}) == MAX_LANES  # stacked in lanes
    for a in boxes:
        assert all(a is b or not a.rect.intersects(b.rect) for b in boxes)
    assert [b.text for b in boxes if b.text.endswith("…")]  # crowded ones elided or dropped
    low = layout_labels([(0.0, 0.0, 40.0, "A", "#000"), (5.0, 0.0, 40.0, "B", "#000")],
                        16.0, lambda t: 60.0, lambda t, w: t)
    assert len({b.rect.top() for b in low}) == 1  # a low band has room for one lane


def test_overlay_caps_items_when_zoomed_out(qtbot, many_events):
    store = AnnotationStore(many_events, duration_s=8 * 3600.0)
    _, overlay = make_overlay(qtbot, store)
    with qtbot.waitSignal(overlay.tooMany) as blocker:
        assert overlay.update_view(0.0, 8 * 3600.0) == 0
    assert blocker.args == [10_000]
    assert 0 < overlay.update_view(0.0, 30.0) < 300


def test_overlay_edge_drag_edits_undoably(qtbot, night_store):
    _, overlay = make_overlay(qtbot, night_store)
    overlay.update_view(0.0, 1800.0)
    overlay.hover(overlay.layer.annotation_at(405.0, 2.5))
    item = overlay.editor
    assert item.isVisible() and item.annotation.label == "Hypopnea"
    assert item.getRegion() == (400.0, 415.0) and item.span == (0.0, 1.0)
    item.lines[1].setValue(430.0)
    item.lines[1].sigPositionChangeFinished.emit(item.lines[1])
    assert Annotation(400.0, 30.0, "Hypopnea") in night_store.events()
    assert item.annotation == Annotation(400.0, 30.0, "Hypopnea")  # still on the event
    night_store.undo_stack.undo()
    assert Annotation(400.0, 15.0, "Hypopnea") in night_store.events()
    assert not item.isVisible()  # its event is gone: parked until hovered again
    overlay.update_view(1000.0, 1030.0)
    overlay.hover(Annotation(400.0, 15.0, "Hypopnea"))  # not on this page: nothing
    assert not item.isVisible()


def test_overlay_click_deletes_or_activates(qtbot, night_store, monkeypatch):
    from sleepviewer.items import annotation_item

    _, overlay = make_overlay(qtbot, night_store)
    overlay.update_view(0.0, 1800.0)

    class Click:
        def __init__(self, button, double=False):
            self._button, self._double, self.accepted = button, double, False

        def button(self):
            return self._button

        def double(self):
            return self._double

        def accept(self):
            self.accepted = True

        def screenPos(self):  # noqa: N802
            return QPointF(0, 0)

        def pos(self):
            return QPointF(405.0, 2.5)

    with qtbot.waitSignal(overlay.annotationActivated) as blocker:
        overlay.layer.mouseClickEvent(Click(Qt.MouseButton.LeftButton, double=True))
    assert blocker.args[0].label == "Hypopnea"

    class Menu:
        def __init__(self):
            self.acts = []

        def addAction(self, text):  # noqa: N802
            self.acts.append(text)
            return text

        def exec(self, pos):
            return self.acts[0]

    monkeypatch.setattr(annotation_item, "QMenu", Menu)
    overlay.layer.mouseClickEvent(Click(Qt.MouseButton.RightButton))
    assert Annotation(400.0, 15.0, "Hypopnea") not in night_store.events()
    night_store.undo_stack.undo()
    assert Annotation(400.0, 15.0, "Hypopnea") in night_store.events()


def test_ctrl_drag_creates_an_event_tied_to_the_channel(qtbot, night_store, drag_event):
    asked = []

    def chooser(pos, channel):
        asked.append(channel)
        return "Arousal", channel

    _, overlay = make_overlay(qtbot, night_store, chooser)
    catcher = overlay._catcher
    plain = drag_event((10, 2.5), (20, 2.5), start=True)
    catcher.mouseDragEvent(plain)
    assert plain.accepted is False  # the view keeps plain drags (channel reordering)
    ctrl = Qt.KeyboardModifier.ControlModifier
    for ev in (drag_event((20, 2.5), (25, 2.5), start=True, modifiers=ctrl),
               drag_event((20, 2.5), (31, 2.4), modifiers=ctrl),
               drag_event((20, 2.5), (32, 2.4), finish=True, modifiers=ctrl)):
        catcher.mouseDragEvent(ev)
        assert ev.accepted is True
    assert asked == ["C4-M1"]
    assert Annotation(20.0, 12.0, "Arousal", "C4-M1") in night_store.events()
    assert not overlay._preview.isVisible()
    # cancelled chooser: nothing added
    overlay._chooser = lambda pos, channel: None
    assert overlay.create_from_drag(100.0, 110.0, 0.5) is None
    assert night_store.undo_stack.count() == 1


def test_overlay_detach_removes_its_items(qtbot, night_store):
    import pyqtgraph as pg

    from sleepviewer.items.annotation_item import AnnotationOverlay

    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    plot = widget.getPlotItem()
    before = set(plot.items)
    overlay = AnnotationOverlay(plot, night_store, dict)
    overlay.update_view(0.0, 1800.0)
    assert len(plot.items) > len(before)
    overlay.detach()
    assert set(plot.items) == before
    night_store.add(Annotation(5.0, 1.0, "Arousal"))  # no longer followed: no error
    assert overlay.items == []


def test_place_in_the_list_survives_edits_and_deletes(qtbot, many_events):
    store = AnnotationStore(many_events, duration_s=8 * 3600.0)
    dock = make_dock(qtbot, store)
    dock.show()
    target = dock.model.annotation(5000)
    assert dock.select_annotation(target)
    scroll = dock.table.verticalScrollBar().value()
    assert scroll > 0
    assert dock.model.setData(dock.model.index(5000, COL_DURATION), 99.0)
    edited = dock.selected_annotations()
    assert len(edited) == 1 and edited[0].duration_s == 99.0 and edited[0].onset_s == target.onset_s
    assert dock.table.verticalScrollBar().value() == scroll
    after = dock.model.annotation(dock.table.currentIndex().row() + 1)
    dock.delete_selected()
    assert dock.selected_annotations() == [after]  # the next event is selected


def test_hover_puts_the_editor_on_the_event_and_its_edge_drags(qtbot, night_store):
    from PyQt6.QtCore import QEvent
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    widget, overlay = make_overlay(qtbot, night_store)
    widget.resize(900, 300)
    widget.show()
    qtbot.waitExposed(widget)
    plot = widget.getPlotItem()
    plot.setXRange(390.0, 430.0, padding=0)
    overlay.update_view(390.0, 430.0)
    vb = plot.getViewBox()

    def at(x, y):
        return widget.mapFromScene(vb.mapViewToScene(QPointF(x, y)))

    def move(x, y, buttons=Qt.MouseButton.NoButton):
        qtbot.wait(15)  # pyqtgraph drops mouse moves closer than 10 ms
        pos = QPointF(at(x, y))
        ev = QMouseEvent(QEvent.Type.MouseMove, pos, widget.viewport().mapToGlobal(pos),
                         Qt.MouseButton.NoButton, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget.viewport(), ev)

    move(405.0, 2.5)
    assert overlay.editor.isVisible() and overlay.editor.annotation.label == "Hypopnea"
    move(425.0, 0.5)
    assert overlay.editor.annotation.label == "Oxygen desaturation"
    assert overlay.editor.span == (0.0, pytest.approx(1 / 3))
    move(414.9, 2.5)  # back on the hypopnea, by its edge
    assert overlay.editor.annotation.label == "Hypopnea"
    move(415.0, 2.5)  # the next move finds the editor's edge under the mouse
    left = Qt.MouseButton.LeftButton
    QTest.mousePress(widget.viewport(), left, Qt.KeyboardModifier.NoModifier, at(415.0, 2.5))
    for x in (417.0, 419.0, 420.0):
        move(x, 2.5, left)
    QTest.mouseRelease(widget.viewport(), left, Qt.KeyboardModifier.NoModifier, at(420.0, 2.5))
    edited = [a for a in night_store.events() if a.label == "Hypopnea"]
    assert len(edited) == 1 and edited[0].onset_s == 400.0
    assert edited[0].duration_s == pytest.approx(20.0, abs=0.3)
    assert night_store.undo_stack.count() == 1


# -- Follow page ---------------------------------------------------------------------------------
def test_follow_page_selects_the_first_event_in_view_without_taking_focus(qtbot, night_store):
    from PyQt6.QtWidgets import QApplication, QLineEdit

    dock = make_dock(qtbot, night_store)
    other = QLineEdit()
    qtbot.addWidget(other)
    dock.show()
    other.show()
    other.activateWindow()
    other.setFocus()
    qtbot.waitUntil(other.hasFocus)
    focus = QApplication.focusWidget()
    jumps = []
    dock.jumpRequested.connect(jumps.append)

    def follow(start_s, stop_s):
        dock.follow_page(start_s, stop_s)
        assert dock._follow_timer.isActive() == dock.follow_check.isChecked()
        qtbot.waitUntil(lambda: not dock._follow_timer.isActive())  # after the page is painted

    follow(390.0, 420.0)
    assert [a.label for a in dock.selected_annotations()] == ["Hypopnea"]
    follow(420.0, 450.0)  # the desaturation (410-430 s) still runs into the page
    assert [a.label for a in dock.selected_annotations()] == ["Oxygen desaturation"]
    follow(0.0, 30.0)  # nothing on the page
    assert dock.selected_annotations() == []
    assert QApplication.focusWidget() is focus and not dock.table.hasFocus()
    assert jumps == []  # following never moves the view
    dock.select_annotation(night_store.event_at(2))  # a row picked on the page stays picked
    follow(405.0, 435.0)
    assert [a.label for a in dock.selected_annotations()] == ["Oxygen desaturation"]
    dock.follow_check.setChecked(False)
    follow(90.0, 120.0)
    assert [a.label for a in dock.selected_annotations()] == ["Oxygen desaturation"]
    dock.follow_check.setChecked(True)  # catches up with the page
    assert [a.label for a in dock.selected_annotations()] == ["Obstructive apnea"]
    dock.hide()
    dock.follow_page(1190.0, 1220.0)
    assert not dock._follow_timer.isActive()  # a hidden list only remembers the page
    dock.show()  # a hidden list catches up when shown
    assert [a.label for a in dock.selected_annotations()] == ["Arousal"]


def test_first_row_in_matches_a_scan(qtbot, many_events):
    store = AnnotationStore(many_events, duration_s=8 * 3600.0)
    dock = make_dock(qtbot, store)
    events = store.events()
    for start in np.linspace(0.0, 8 * 3600.0 - 30.0, 97):
        stop = start + 30.0
        want = next((i for i, a in enumerate(events)
                     if a.onset_s < stop and a.offset_s > start), None)
        assert dock.model.first_row_in(start, stop) == want
