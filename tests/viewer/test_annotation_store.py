"""AnnotationStore: undoable edits and scoring, the onset index, atomic autosave and fallback."""

from __future__ import annotations

import numpy as np
import pytest

from sleeplm_core.io.annotations import Annotation, read_annotations
from sleepviewer.annotation_store import (
    AddAnnotation,
    AnnotationStore,
    fallback_sidecar_path,
    sidecar_path_for,
)


def snapshot(store: AnnotationStore) -> tuple[list[Annotation], list[int]]:
    return store.events(), store.stage_codes.tolist()


def test_initial_state_splits_stages_from_events(night_store):
    codes = night_store.stage_codes
    assert codes.shape == (120,)
    assert (codes[:10] == 0).all() and (codes[10:60] == 2).all() and (codes[60:] == -2).all()
    assert night_store.event_count() == 4
    assert night_store.labels() == ["Arousal", "Hypopnea", "Obstructive apnea",
                                    "Oxygen desaturation"]
    assert night_store.stage_at(0) == "W" and night_store.stage_at(119) == "UNS"
    with pytest.raises(ValueError):
        codes[0] = 3  # read-only view


def test_add_edit_delete_score_undo_redo_restores_exact_state(night_store):
    store = night_store
    states = [snapshot(store)]
    store.add(Annotation(500.0, 10.0, "Arousal"))
    states.append(snapshot(store))
    old = store.in_range(400.0, 401.0)[0]
    store.edit(old, Annotation(old.onset_s, 25.0, "Obstructive apnea", old.channel, old.extras))
    states.append(snapshot(store))
    store.delete([store.event_at(0), store.event_at(1)])
    states.append(snapshot(store))
    assert store.score(10, "N3") == 11
    states.append(snapshot(store))
    store.set_stage(range(60, 70), "REM")
    states.append(snapshot(store))
    store.set_stage([0, 1], "UNS")
    states.append(snapshot(store))
    assert len({repr(s) for s in states}) == len(states)  # every step changed something
    stack = store.undo_stack
    assert stack.count() == 6
    for expected in reversed(states[:-1]):
        stack.undo()
        assert snapshot(store) == expected
    for expected in states[1:]:
        stack.redo()
        assert snapshot(store) == expected


def test_no_op_scoring_is_not_an_undo_step(night_store):
    night_store.set_stage(3, "W")  # already wake
    assert night_store.undo_stack.count() == 0
    night_store.edit(night_store.event_at(0), night_store.event_at(0))
    assert night_store.undo_stack.count() == 0


def test_signals(night_store, qtbot):
    with qtbot.waitSignal(night_store.stagesChanged) as blocker:
        night_store.set_stage([5, 7], "N1")
    assert blocker.args == [5, 8]
    with qtbot.waitSignals([night_store.eventsChanged, night_store.changed]):
        night_store.add(Annotation(1.0, 1.0, "Spindle"))


def test_stage_annotations_are_refused_as_events(night_store):
    with pytest.raises(ValueError):
        AddAnnotation(night_store, Annotation(0.0, 30.0, "Sleep stage N2"))
    with pytest.raises(ValueError):
        night_store.set_stage(120, "N2")
    with pytest.raises(ValueError):
        night_store.set_stage(1, "S5")


def test_in_range_matches_brute_force(many_events, qapp):
    long = [Annotation(100.0, 5000.0, "Artifact"), Annotation(20000.0, 3000.0, "Lights off")]
    store = AnnotationStore(many_events + long, duration_s=8 * 3600.0)
    assert store.event_count() == 10_002
    rng = np.random.default_rng(1)
    for start in rng.uniform(0, 8 * 3600.0, 40):
        stop = start + rng.choice([10.0, 30.0, 300.0])
        expected = [a for a in store.events() if a.onset_s < stop and a.offset_s > start]
        assert store.in_range(start, stop) == sorted(expected, key=lambda a: a.onset_s)
    # zero-duration marks inside the window count
    store.add(Annotation(50.0, 0.0, "Lights on"))
    assert Annotation(50.0, 0.0, "Lights on") in store.in_range(40.0, 60.0)
    assert Annotation(50.0, 0.0, "Lights on") not in store.in_range(51.0, 60.0)
    # the index follows edits
    a = store.in_range(40.0, 60.0)[0]
    store.delete(a)
    assert a not in store.in_range(40.0, 60.0)
    store.undo_stack.undo()
    assert a in store.in_range(40.0, 60.0)


def test_many_events_bulk_delete_is_one_step(many_events, qapp):
    store = AnnotationStore(many_events, duration_s=8 * 3600.0)
    store.delete(store.events()[:5000])
    assert store.event_count() == 5000 and store.undo_stack.count() == 1
    store.undo_stack.undo()
    assert store.events() == sorted(many_events, key=lambda a: (a.onset_s, a.label))


def test_autosave_is_debounced_and_restores_on_reopen(night_store, qtbot, fake_recording):
    store = night_store
    rec = store._recording_path
    edf_bytes = rec.read_bytes()
    saves: list[str] = []
    store.saved.connect(saves.append)
    with qtbot.waitSignal(store.saved, timeout=2000):
        store.add(Annotation(500.0, 10.0, "Arousal"))
        store.set_stage(range(60, 80), "REM")
        store.score(80, "N3")
    assert saves == [str(sidecar_path_for(rec))]
    assert store.undo_stack.isClean()  # saved state is clean
    side = sidecar_path_for(rec)
    assert side.name == "night.sleepviewer.csv" and side.parent == rec.parent
    assert rec.read_bytes() == edf_bytes  # the recording is never written
    assert sorted(p.name for p in rec.parent.iterdir()) == ["night.edf", "night.sleepviewer.csv"]
    assert read_annotations(side) == store.annotations()

    fake_recording.path = rec
    reopened = AnnotationStore.for_recording(fake_recording, fallback_dir=store._fallback_dir)
    assert reopened.events() == store.events()
    assert np.array_equal(reopened.stage_codes, store.stage_codes)
    with qtbot.waitSignal(reopened.notice) as blocker:
        pass
    assert "Restored" in blocker.args[0]


def test_for_recording_without_sidecar_uses_recording_annotations(fake_recording, tmp_path):
    fake_recording.path = tmp_path / "night.edf"
    store = AnnotationStore.for_recording(fake_recording, fallback_dir=tmp_path / "appdata")
    assert store.event_count() == 1 and (store.stage_codes == 2).all()
    assert store.sidecar_path == tmp_path / "night.sleepviewer.csv"
    assert store.flush() is None  # nothing to save yet
    assert not store.sidecar_path.exists()


def test_failed_write_leaves_the_previous_sidecar_intact(night_store, monkeypatch):
    from sleeplm_core.io.annotation_formats import csv_format

    store = night_store
    path = store.save_now()
    before = path.read_bytes()
    store.add(Annotation(700.0, 3.0, "Spindle"))

    class Killed(Exception):
        pass

    class ExplodingJson:
        @staticmethod
        def dumps(*args, **kwargs):
            raise Killed  # the process "dies" half-way through the rows

    monkeypatch.setattr(csv_format, "json", ExplodingJson)
    with pytest.raises(Killed):
        store.save_now()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["night.edf", "night.sleepviewer.csv"]


def test_unwritable_folder_falls_back_with_a_notice(night_store, qtbot, fake_recording):
    store = night_store
    primary = store.sidecar_path
    primary.mkdir()  # a folder where the sidecar should be: cannot be replaced (even as root)
    notices: list[str] = []
    store.notice.connect(notices.append)
    store.add(Annotation(500.0, 10.0, "Arousal"))
    written = store.save_now()
    fallback = fallback_sidecar_path(store._recording_path, store._fallback_dir)
    assert written == fallback and fallback.is_file()
    assert store.sidecar_path == fallback
    assert len(notices) == 1 and str(fallback) in notices[0]
    # reopening finds the fallback copy
    fake_recording.path = store._recording_path
    reopened = AnnotationStore.for_recording(fake_recording, fallback_dir=store._fallback_dir)
    assert reopened.events() == store.events()


def test_nowhere_to_write_says_so(night_store, tmp_path):
    store = night_store
    store.sidecar_path.mkdir()
    (tmp_path / "appdata").write_text("a file, not a folder")
    store.add(Annotation(500.0, 10.0, "Arousal"))
    assert store.save_now() is None
    assert "NOT saved" in store.last_notice


def test_fallback_names_do_not_collide(tmp_path):
    a = fallback_sidecar_path(tmp_path / "a" / "night.edf", tmp_path)
    b = fallback_sidecar_path(tmp_path / "b" / "night.edf", tmp_path)
    assert a != b and a.name.startswith("night-") and a.name.endswith(".sleepviewer.csv")


def test_refuses_to_use_the_recording_as_sidecar(tmp_path, qapp):
    rec = tmp_path / "x.csv"
    with pytest.raises(ValueError):
        AnnotationStore([], duration_s=60.0, sidecar_path=rec, recording_path=rec)


def test_hypnogram_drops_partial_last_epoch(qapp):
    store = AnnotationStore([Annotation(0.0, 90.0, "Sleep stage N2")], duration_s=95.0)
    assert store.grid.n_epochs == 4
    store.set_stage(3, "REM")
    hyp = store.hypnogram()
    assert hyp.stages.tolist() == ["N2", "N2", "N2"]


def test_merge_imports_events_and_stages_as_one_step(night_store):
    before = snapshot(night_store)
    imported = [
        night_store.event_at(0),  # already present: skipped
        Annotation(700.0, 5.0, "Spindle"),
        Annotation(700.0, 5.0, "Spindle"),  # duplicate in the file: added once
        Annotation(1800.0, 60.0, "Sleep stage R"),  # epochs 60, 61
        Annotation(0.0, 30.0, "Sleep stage W"),  # unchanged
    ]
    assert night_store.merge(imported) == 1 + 2
    assert night_store.event_count() == 5
    assert night_store.stage_codes[60:62].tolist() == [4, 4]
    assert night_store.undo_stack.count() == 1
    night_store.undo_stack.undo()
    assert snapshot(night_store) == before
    assert night_store.merge([night_store.event_at(0)]) == 0
    assert night_store.undo_stack.count() == 1  # the redo entry of the undone import only


def test_unreadable_sidecar_is_reported_and_kept_aside(tmp_path, fake_recording, qtbot):
    fake_recording.path = tmp_path / "night.edf"
    side = sidecar_path_for(fake_recording.path)
    side.write_text("onset,duration,description\n999999,1,Arousal\n")  # beyond the recording
    store = AnnotationStore.for_recording(fake_recording, fallback_dir=tmp_path / "appdata")
    with qtbot.waitSignal(store.notice) as blocker:
        pass
    assert "unreadable" in blocker.args[0]
    assert store.event_count() == 1  # the recording's own annotations
    store.add(Annotation(10.0, 1.0, "Arousal"))
    assert store.save_now() == side
    kept = tmp_path / "night.sleepviewer.csv.unreadable"
    assert kept.read_text().startswith("onset,duration,description\n999999")
    assert read_annotations(side) == store.annotations()


def test_real_edf_round_trip_never_writes_the_recording(tmp_path, qtbot):
    from datetime import datetime

    from sleeplm_core.io.edf_writer import SignalSpec, write_edf
    from sleeplm_core.io.recording import Recording

    sf, dur = 64.0, 600.0
    t = np.arange(int(sf * dur)) / sf
    eeg = SignalSpec("C4-M1", "EEG", sf, "uV", 30.0 * np.sin(2 * np.pi * 10.0 * t))
    anns = [Annotation(0.0, 300.0, "Sleep stage W"), Annotation(300.0, 300.0, "Sleep stage N2"),
            Annotation(120.0, 15.0, "Obstructive apnea")]
    edf = tmp_path / "night.edf"
    write_edf(edf, [eeg], anns, start=datetime(2024, 1, 2, 23, 0, 0))
    edf_bytes = edf.read_bytes()

    rec = Recording.open(edf)
    try:
        store = AnnotationStore.for_recording(rec, fallback_dir=tmp_path / "appdata")
        assert store.stage_codes.tolist() == [0] * 10 + [2] * 10
        assert store.events() == [Annotation(120.0, 15.0, "Obstructive apnea")]
        store.score(12, "N3")
        store.delete(store.event_at(0))
        store.add(Annotation(400.0, 3.0, "Arousal", "C4-M1"))
        assert store.flush() == tmp_path / "night.sleepviewer.csv"
    finally:
        rec.close()
    assert edf.read_bytes() == edf_bytes

    rec = Recording.open(edf)
    try:
        again = AnnotationStore.for_recording(rec, fallback_dir=tmp_path / "appdata")
        assert again.events() == [Annotation(400.0, 3.0, "Arousal", "C4-M1")]
        assert again.stage_at(12) == "N3" and again.stage_at(13) == "N2"
    finally:
        rec.close()
