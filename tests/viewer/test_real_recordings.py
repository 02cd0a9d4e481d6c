"""The viewer on vendor-like recordings: automatic montage, scoring files beside the EDF,
stage channels, vendor exports imported through a label mapping, long labels."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from sleeplm_core.io.annotations import Annotation, write_edf_annotations, write_nsrr_xml
from sleeplm_core.io.recording import Recording
from sleepviewer import app, montage_views
from sleepviewer.widgets.main_window import MainWindow
from tests.vendor_edf import HYPNOGRAM, MONTAGE, SECONDS, write_vendor_edf

STAGES = ["Sleep stage W", "Sleep stage N1", "Sleep stage N2", "Sleep stage R"]


@pytest.fixture(scope="module")
def vendor_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vendor_edf(tmp_path_factory.mktemp("vendor") / "night.edf")


@pytest.fixture
def vendor(tmp_path: Path, vendor_file: Path) -> Path:
    """A fresh copy per test: scoring files and sidecars are written beside it."""
    return Path(shutil.copy(vendor_file, tmp_path / "night.edf"))


def _scoring() -> list[Annotation]:
    stages = [Annotation(30.0 * k, 30.0, s) for k, s in enumerate(STAGES)]
    return [*stages, Annotation(35.0, 12.0, "Obstructive apnea"),
            Annotation(50.0, 3.0, "Arousal")]


def _assert_scored(w: MainWindow) -> None:
    assert list(w.store.stage_codes[:4]) != [w.store.stage_codes[0]] * 4  # scored, not blank
    assert [w.store.stage_at(k) for k in range(4)] == ["W", "N1", "N2", "REM"]
    assert sorted(a.label for a in w.store.events()) == ["Arousal", "Obstructive apnea"]
    assert w.hypnogram_view is not None and w.hypnogram_view._store is w.store


def test_nsrr_xml_beside_the_edf_is_shown(make_window, vendor: Path, error_log) -> None:
    write_nsrr_xml(_scoring(), vendor.with_suffix(".xml"))
    w = make_window()
    assert w.open_file(vendor)
    _assert_scored(w)
    msg = w.statusBar().currentMessage()
    assert "4 stages and 2 events from night.xml" in msg and str(vendor.parent) in msg
    assert error_log == []


def test_profusion_style_name_edf_xml(make_window, vendor: Path) -> None:
    write_nsrr_xml(_scoring(), vendor.with_name("night.edf.XML"))
    w = make_window()
    assert w.open_file(vendor)
    _assert_scored(w)


def test_sleep_edf_hypnogram_beside_the_psg(make_window, tmp_path: Path, vendor: Path) -> None:
    psg = vendor.rename(tmp_path / "SC4001E0-PSG.edf")
    with Recording.open(psg) as rec:
        start = rec.start
    write_edf_annotations(_scoring(), tmp_path / "SC4001EC-Hypnogram.edf", start=start)
    w = make_window()
    assert w.open_file(psg)
    _assert_scored(w)
    assert "SC4001EC-Hypnogram.edf" in w.statusBar().currentMessage()


def test_broken_xml_is_a_notice_and_the_recording_opens(
    make_window, vendor: Path, error_log
) -> None:
    vendor.with_suffix(".xml").write_text("<PSGAnnotation><ScoredEvents><ScoredEvent>")
    w = make_window()
    assert w.open_file(vendor)
    msg = w.statusBar().currentMessage()
    assert msg.startswith("Scoring not loaded: ") and "night.xml" in msg and "\n" not in msg
    assert w.recording is not None and error_log == []
    assert w.store.events() == []


def test_scoring_of_another_recording_is_not_loaded(make_window, vendor: Path) -> None:
    write_nsrr_xml([Annotation(5000.0, 10.0, "Obstructive apnea")], vendor.with_suffix(".xml"))
    w = make_window()
    assert w.open_file(vendor)
    msg = w.statusBar().currentMessage()
    assert "Scoring not loaded" in msg and "another recording" in msg
    assert w.store.events() == []


def test_annotations_flag_names_the_scoring_file(make_window, vendor: Path, tmp_path) -> None:
    other = tmp_path / "elsewhere" / "scoring.xml"
    other.parent.mkdir()
    write_nsrr_xml(_scoring(), other)
    args = app.build_parser().parse_args([str(vendor), "--annotations", str(other)])
    assert args.annotations == other
    w = make_window()
    assert w.open_file(vendor, annotations=args.annotations)
    _assert_scored(w)
    assert "scoring.xml" in w.statusBar().currentMessage()


def test_automatic_montage_rest_hidden_and_layout_remembered(make_window, vendor: Path) -> None:
    w = make_window()
    assert w.open_file(vendor)
    assert w.state.montage == montage_views.AUTOMATIC
    visible = [c.name for c in w.state.channels if c.visible]
    assert visible == MONTAGE
    hidden = {c.name for c in w.state.channels if not c.visible}
    assert {"C3 Imp", "Battery", "Acc X", "Hypnogram", "RIP Sum", "Lumière"} <= hidden
    assert len(w.state.channels) == len(w.recording.ch_names)  # nothing lost
    # scaling per type: EEG in µV/mm, the chin finer, SpO2 1 %/mm
    views = {c.name: c for c in w.state.channels}
    assert views["C4-M1"].sensitivity == pytest.approx(7.5)
    assert views["Sättigung"].sensitivity == pytest.approx(1.0)
    # the user shows the battery and hides the ECG: remembered for this layout
    dlg = w.open_channel_dialog()
    chans = dlg.result_channels()
    for c in chans:
        if c.name == "Battery":
            c.visible = True
        if c.name == "ECG II":
            c.visible = False
    dlg.result_channels = lambda: chans  # what the user ticked
    dlg.accept()
    w.close()
    w2 = make_window()
    assert w2.open_file(vendor)
    shown = [c.name for c in w2.state.channels if c.visible]
    assert "Battery" in shown and "ECG II" not in shown


def test_stage_channel_not_flat_and_offered_for_import(make_window, vendor: Path, qtbot) -> None:
    w = make_window()
    assert w.open_file(vendor)
    assert "Hypnogram channel 'Hypnogram'" in w.statusBar().currentMessage()
    for c in w.state.channels:
        c.visible = c.name in ("Hypnogram", "Event", "Battery", "C3 Imp")
    w.refresh()
    assert w.trace_view.flat_channels == set()  # constant codes are not a fault
    from sleepviewer.widgets.import_dialog import import_channel_scoring

    dlg = import_channel_scoring(w, "Hypnogram")
    assert dlg is not None and "R&K numeric" in dlg.plan.source
    assert dlg.mapping()["Sleep stage R"] == "Sleep stage R"
    dlg.accept()
    expect = {0: "W", 1: "N1", 2: "N2", 5: "REM"}
    assert [w.store.stage_at(k) for k in range(SECONDS // 30)] == [expect[c] for c in HYPNOGRAM]


def _nox_csv(start, encoding: str) -> bytes:
    t = [start + timedelta(seconds=s) for s in (35.0, 50.0, 70.0)]
    fmt = "%d.%m.%Y %H:%M:%S,000"
    rows = [
        "Heure de début;Heure de fin;Événement;Durée",
        f"{t[0]:{fmt}};{t[0] + timedelta(seconds=12):{fmt}};Apnée obstructive;12",
        f"{t[1]:{fmt}};{t[1] + timedelta(seconds=3):{fmt}};Micro-éveil;3",
        f"{t[2]:{fmt}};{t[2] + timedelta(seconds=20):{fmt}};Ronflement;20",
    ]
    return "\r\n".join(["Patient: X", "", *rows]).encode(encoding)


def test_noxturnal_utf16_french_import_shows_mapping_first(
    make_window, vendor: Path, tmp_path: Path
) -> None:
    w = make_window()
    assert w.open_file(vendor)
    path = tmp_path / "events.csv"
    path.write_bytes(_nox_csv(w.recording.start, "utf-16"))
    assert w.import_annotations(path)
    dlg = w.import_dialog
    assert "Noxturnal event CSV, UTF-16" in dlg.plan.source
    assert dlg.mapping() == {"Apnée obstructive": "Obstructive apnea",
                             "Micro-éveil": "Arousal", "Ronflement": ""}
    assert w.store.events() == []  # nothing applied before the user says so
    dlg.set_target("Ronflement", "-")  # the user skips snoring
    dlg.accept()
    got = sorted((a.label, round(a.onset_s), round(a.duration_s)) for a in w.store.events())
    assert got == [("Arousal", 50, 3), ("Obstructive apnea", 35, 12)]


def test_remlogic_text_stages_and_events(make_window, vendor: Path, tmp_path: Path) -> None:
    w = make_window()
    assert w.open_file(vendor)
    s = w.recording.start
    lines = ["Patient Name:\tX", "Scoring Session:\tY", "",
             "Sleep Stage\tPosition\tTime [hh:mm:ss]\tEvent\tDuration[s]\tLocation"]
    for k, ev in enumerate(["SLEEP-S0", "SLEEP-S1", "SLEEP-S2", "SLEEP-REM"]):
        lines.append(f"{ev[6:]}\tSupine\t{s + timedelta(seconds=30 * k):%H:%M:%S}\t{ev}\t30\t")
    lines.append(f"S2\tSupine\t{s + timedelta(seconds=65):%H:%M:%S}\tMCAP-A1\t4\tEEG-C4-A1")
    path = tmp_path / "remlogic.txt"
    path.write_text("\n".join(lines), encoding="latin-1")
    assert w.import_annotations(path)
    dlg = w.import_dialog
    assert "RemLogic/Embla event text" in dlg.plan.source
    assert dlg.mapping()["SLEEP-REM"] == "Sleep stage R"
    dlg.accept()
    assert [w.store.stage_at(k) for k in range(4)] == ["W", "N1", "N2", "REM"]
    assert [(a.label, a.channel) for a in w.store.events()] == [("Arousal", "EEG-C4-A1")]


def test_vendor_export_for_another_night_is_one_line(
    make_window, vendor: Path, tmp_path: Path, error_log
) -> None:
    w = make_window()
    assert w.open_file(vendor)
    path = tmp_path / "events.csv"
    path.write_bytes(_nox_csv(w.recording.start + timedelta(days=3), "utf-8"))
    assert not w.import_annotations(path)
    assert len(error_log) == 1 and "outside the recording" in error_log[0]
    assert "\n" not in error_log[0]


def test_long_labels_are_elided_with_a_tooltip(make_window, vendor: Path) -> None:
    w = make_window()
    assert w.open_file(vendor)
    axis = w.trace_view.channel_axis
    axis.setWidth(80)
    w.refresh()
    w.grab()  # paint
    shown = axis.drawn_labels()
    assert "Pression nasale" not in shown.values()
    full = [n for n, text in shown.items() if text.endswith("…")]
    assert "Pression nasale" in full
    assert axis.tooltip_for("Pression nasale") == "Pression nasale"
    assert axis.tooltip_for("C4-M1") == ""  # short labels need none
    assert shown["C4-M1"] == "C4-M1"


def test_refused_derivation_is_said_in_the_status_bar(make_window, tmp_path: Path) -> None:
    import numpy as np

    from tests.vendor_edf import VSig

    sigs = [VSig("C4", 256, "uV", -500, 500, np.zeros(256 * 60)),
            VSig("M1", 200, "uV", -500, 500, np.zeros(200 * 60))]
    w = make_window()
    assert w.open_file(write_vendor_edf(tmp_path / "rates.edf", 60, sigs))
    msg = w.statusBar().currentMessage()
    assert "C4-M1 not derived: C4 is sampled at 256 Hz, M1 at 200 Hz" in msg
    assert [c.name for c in w.state.channels if c.visible] == ["C4"]
