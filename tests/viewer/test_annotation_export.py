"""Annotation export (CSV, EDF+, NSRR XML): every file reads back to what was written."""

from __future__ import annotations

from datetime import datetime

import pytest

from sleeplm_core.errors import AnnotationError, SleepLMError
from sleeplm_core.io.annotations import Annotation, Annotations, read_annotations
from sleepviewer.report.export import ANNOTATION_SUFFIXES, export_annotations

START = datetime(2024, 3, 1, 22, 14, 7, 250000)  # sub-second start, as real recorders write


def _hand_made() -> list[Annotation]:
    """Stages and events with channels, extras and texts that need quoting or escaping."""
    items = [Annotation(30.0 * k, 30.0, s) for k, s in enumerate(
        ["W", "W", "N1", "N2", "N2", "N3", "N3", "N2", "REM", "REM", "W", "N2"])]
    items += [
        Annotation(95.25, 12.5, "Obstructive apnea"),
        Annotation(130.0, 18.0, "Hypopnea", "Flow"),
        Annotation(141.5, 21.0, "Oxygen desaturation", "SpO2",
                   (("spo2_baseline", "95"), ("spo2_nadir", "88"))),
        Annotation(150.0, 9.0, "Arousal", "C4-M1"),
        Annotation(200.0, 1.5, "Limb movement", "LLeg"),
        Annotation(250.0, 0.0, "Lights on"),
        Annotation(260.0, 4.0, "Technician note, \"check\" <SpO2> & flow"),
        Annotation(300.125, 2.0, "Spindle", "C3-M2", (("freq_hz", "13.5"),)),
    ]
    return items


@pytest.fixture(scope="module")
def synthetic() -> list[Annotation]:
    from sleeplm_core.synth import generate_night

    return list(generate_night(hours=0.25, seed=9, ahi=30).annotations)


@pytest.mark.parametrize("suffix", ANNOTATION_SUFFIXES)
def test_hand_made_annotations_round_trip(tmp_path, suffix):
    written = _hand_made()
    path = export_annotations(tmp_path / f"night{suffix}", written, START)
    assert path == tmp_path / f"night{suffix}"
    back = read_annotations(path, start=START)
    assert back == Annotations(written)
    # no temporary file left; an EDF+ keeps the extras beside it (its labels stay plain)
    sidecar = [f"{path.name}.extras.json"] if suffix == ".edf" else []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, *sidecar])


def test_exports_open_cleanly_in_mne(tmp_path):
    import mne

    written = _hand_made()
    csv_path = export_annotations(tmp_path / "night.csv", written, START)
    edf_path = export_annotations(tmp_path / "night.edf", written, START)
    order = sorted(range(len(written)), key=lambda i: (written[i].onset_s, written[i].label))
    for path in (csv_path, edf_path):
        ann = mne.read_annotations(path)
        # absolute times agree with the recording's clock: MNE's orig_time + onset (for a
        # lone EDF+ MNE gives no orig_time and counts from the sub-second start)
        origin = START
        if ann.orig_time is not None:
            origin = ann.orig_time.replace(tzinfo=None)
        got = sorted(
            ((origin - START).total_seconds() + float(o), str(d))
            for o, d in zip(ann.onset, ann.description, strict=True)
        )
        want = sorted((written[i].onset_s, written[i].label) for i in order)
        assert [d for _, d in got] == [d for _, d in want], path.name  # plain labels
        assert [t for t, _ in got] == pytest.approx([t for t, _ in want], abs=1e-6)
    # MNE's own text export reads back (onsets in seconds, orig_time in a comment)
    mne.read_annotations(edf_path).save(tmp_path / "mne.txt")
    back = read_annotations(tmp_path / "mne.txt", start=START)
    assert sorted(a.label for a in back) == sorted(a.label for a in written)
    assert sorted(a.onset_s for a in back) == pytest.approx(sorted(a.onset_s for a in written))


@pytest.mark.parametrize("suffix", ANNOTATION_SUFFIXES)
def test_synthetic_night_round_trips(tmp_path, synthetic, suffix):
    path = export_annotations(tmp_path / f"night{suffix.upper()}", synthetic, START)
    back = read_annotations(path, start=START, duration_s=0.25 * 3600)
    assert back == Annotations(synthetic)
    assert back.counts() == Annotations(synthetic).counts()


@pytest.mark.parametrize("suffix", ANNOTATION_SUFFIXES)
def test_export_replaces_an_older_file(tmp_path, suffix):
    path = tmp_path / f"night{suffix}"
    export_annotations(path, _hand_made(), START)
    fewer = _hand_made()[:3]
    export_annotations(path, fewer, START)
    assert read_annotations(path, start=START) == Annotations(fewer)


def test_unknown_suffix_and_unwritable_path(tmp_path):
    with pytest.raises(AnnotationError, match="unknown annotation format"):
        export_annotations(tmp_path / "night.json", _hand_made(), START)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for target in (blocker / "night.csv", tmp_path / "missing" / "night.xml",
                   blocker / "night.edf"):
        with pytest.raises(SleepLMError) as err:
            export_annotations(target, _hand_made(), START)
        assert "\n" not in str(err.value) and str(target) in str(err.value)
        assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("suffix", ANNOTATION_SUFFIXES)
def test_interrupted_export_keeps_the_old_file(tmp_path, monkeypatch, suffix):
    """A failure between writing and renaming (here: fsync) leaves the old file untouched."""
    import sleeplm_core.io.atomic as atomic

    path = tmp_path / f"night{suffix}"
    export_annotations(path, _hand_made(), START)
    before = path.read_bytes()

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_annotations(path, _hand_made()[:2], START)
    monkeypatch.undo()
    assert path.read_bytes() == before
    sidecar = [f"{path.name}.extras.json"] if suffix == ".edf" else []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, *sidecar])
    assert read_annotations(path, start=START) == Annotations(_hand_made())
