"""AnnotationDock and AnnotationOverlay: filters, jumps, undoable edits and deletes."""

from __future__ import annotations

from PyQt6.QtCore import Qt

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
    assert dock.delete_selected() == 0  # the filter change cleared the selection
    dock.table.selectAll()
    assert dock.delete_selected() == 10_000
    assert store.event_count() == 0
    store.undo_stack.undo()
    assert dock.model.rowCount() == 10_000
