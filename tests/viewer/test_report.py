"""Reports (PDF and HTML) from a synthetic night: content checked against the core numbers.

One ~1-h synthetic night is generated per module; the statistics and indices read back from the
HTML are compared with ``Hypnogram.sleep_statistics()`` and ``event_indices()`` computed here
independently, the PDF is rendered with pdftoppm (when installed) and its pages must not be
blank, and an unwritable or interrupted export leaves no file behind.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from sleeplm_core.captions.levels import severity
from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.indices import event_indices
from sleeplm_core.io.recording import Recording
from sleeplm_core.results import (
    Caption,
    EpochStage,
    SearchResult,
    Segment,
    SentenceCheck,
    StageResult,
)


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def night_files(tmp_path_factory) -> tuple[Path, Path]:
    from sleeplm_core.synth import generate_night, write_night

    night = generate_night(hours=1.0, seed=5, ahi=22)
    edf, xml = write_night(night, tmp_path_factory.mktemp("night") / "night.edf")
    return Path(edf), Path(xml)


@pytest.fixture(scope="module")
def recording(night_files):
    edf, xml = night_files
    rec = Recording.open(edf, annotations=xml)
    yield rec
    rec.close()


def _stage_result(rec: Recording) -> StageResult:
    """A model staging that agrees with the scoring except every 7th epoch (called N1)."""
    stages = [str(s) for s in rec.hypnogram.stages]
    epochs = [
        EpochStage(k, 30.0 * k, "N1" if k % 7 == 0 else s, 0.8, {s: 0.8})
        for k, s in enumerate(stages)
    ]
    return StageResult(epochs, ["C4-M1", "E1-M2"], "sleeplm-tiny")


@pytest.fixture(scope="module")
def report_data(recording):
    from sleepviewer.report.model import build_report_data

    search = SearchResult(
        "obstructive apnea with desaturation",
        [Segment(900.0, 60.0, 0.42, ["respiratory"], "apnea then a 4 % desaturation"),
         Segment(1500.0, 30.0, 0.37, ["EEG"])],
        0.3, [0.42, 0.37],
    )
    empty = SearchResult("REM sleep with sawtooth waves", [], 0.3, [0.22, 0.19])
    generated = [
        Caption(0.0, recording.duration_s, "night", "night", "Model: moderate sleep apnea."),
        Caption(600.0, 300.0, "segment", "segment", "Model: repeated apneas in N2 & <N3>."),
        Caption(660.0, 30.0, "epoch", "heart", "Heart rate 90 bpm. The rate is steady.", (
            SentenceCheck("Heart rate 90 bpm.", "disagrees", "hr bpm 90 (measured 61)"),
            SentenceCheck("The rate is steady.", "agrees"))),
        Caption(690.0, 30.0, "epoch", "somatic", "No highleg.", (
            SentenceCheck("No highleg.", "unchecked", "not a sentence the model was taught"),)),
    ]
    return build_report_data(
        recording, stage_result=_stage_result(recording), searches=[search, empty],
        captions=generated,
    )


@pytest.fixture(scope="module")
def html_file(report_data, qapp, tmp_path_factory) -> Path:
    from sleepviewer.report.export import export_report

    return export_report(tmp_path_factory.mktemp("html") / "report.html", report_data)


@pytest.fixture(scope="module")
def pdf_file(report_data, qapp, tmp_path_factory) -> Path:
    from sleepviewer.report.export import export_report

    return export_report(tmp_path_factory.mktemp("pdf") / "report.pdf", report_data)


# -- a small reader of the HTML's semantic markup ------------------------------------------------
class _Doc(HTMLParser):
    """Collects rows of the tables (with their attributes and cells), captions and images."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[dict[str, str], list[tuple[dict[str, str], str]]]]] = {}
        self.captions: list[tuple[dict[str, str], str]] = []
        self.images: list[str] = []
        self.queries: list[dict[str, str]] = []
        self.matches = 0
        self._table: str | None = None
        self._row: tuple[dict[str, str], list[tuple[dict[str, str], str]]] | None = None
        self._cell: tuple[dict[str, str], list[str]] | None = None
        self._caption: tuple[dict[str, str], list[str]] | None = None
        self._caption_text = False

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = (a, [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = (a, [])
        if "caption" in a.get("class", "").split() and "data-source" in a:
            self._caption = (a, [])
        if "caption-text" in a.get("class", "").split():
            self._caption_text = True
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "article" and "query" in a.get("class", ""):
            self.queries.append(a)
        if tag == "figure" and "match" in a.get("class", ""):
            self.matches += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append((self._cell[0], "".join(self._cell[1]).strip()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        if tag in ("p", "td") and self._caption_text:
            self._caption_text = False
            if self._caption is not None:
                self.captions.append((self._caption[0], "".join(self._caption[1]).strip()))
                self._caption = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1].append(data)
        if self._caption_text and self._caption is not None:
            self._caption[1].append(data)


@pytest.fixture(scope="module")
def doc(html_file) -> _Doc:
    d = _Doc()
    d.feed(html_file.read_text(encoding="utf-8"))
    return d


def _rows(doc: _Doc, table: str, key: str = "data-key") -> dict[str, dict[str, tuple[str, str]]]:
    """``{row key: {cell class: (data-value, text)}}`` of one table."""
    out = {}
    for attrs, cells in doc.tables[table]:
        if key in attrs:
            out[attrs[key]] = {
                c.get("class", "th"): (c.get("data-value", ""), text) for c, text in cells
            }
    return out


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-9)


# -- HTML ----------------------------------------------------------------------------------------
def test_html_statistics_are_the_hypnograms(doc, recording):
    stats = recording.hypnogram.sleep_statistics()
    rows = _rows(doc, "sleep-statistics")
    assert {"TIB", "TST", "SE", "SOL", "WASO", "Lat_REM_SO"} <= set(rows)
    for key, cells in rows.items():
        value, text = cells["value"]
        assert _same(float(value), stats[key]), key
        shown = text.replace(",", "")
        assert shown == "–" if math.isnan(stats[key]) else float(shown) == round(stats[key], 1)
    stages = _rows(doc, "sleep-stages", "data-stage")
    assert set(stages) == {"W", "N1", "N2", "N3", "REM"}
    for stage, cells in stages.items():
        assert float(cells["minutes"][0]) == pytest.approx(stats[stage])
        if stage != "W":
            assert _same(float(cells["pct-tst"][0]), stats[f"%{stage}"])


def test_html_event_table_is_event_indices(doc, recording):
    hyp = recording.hypnogram
    indices = event_indices(list(dict.fromkeys(recording.annotations)), hyp)
    rows = _rows(doc, "event-table")
    for key in ("AHI", "OAI", "CAI", "MAI", "HI", "ODI", "ArI", "PLMI"):
        value, text = rows[key]["index"]
        assert float(value) == pytest.approx(indices[key]), key
        assert float(text) == round(indices[key], 1)
        count = int(rows[key]["count"][0])
        assert count == round(indices[key] * indices["TST_h"]), key
    ahi = indices["AHI"]
    assert rows["AHI"]["note"][1] == {
        "no sleep apnea": "normal", "mild sleep apnea": "mild",
        "moderate sleep apnea": "moderate", "severe sleep apnea": "severe",
    }[severity(ahi)]
    oxi = _rows(doc, "oximetry")
    assert 50 <= float(oxi["min"]["value"][0]) <= float(oxi["mean"]["value"][0]) <= 100
    hr = _rows(doc, "heart-rate")
    low, mean, high = (float(hr[k]["value"][0]) for k in ("min_sleep", "mean_sleep", "max_sleep"))
    assert 30 < low <= mean <= high < 150


def test_html_captions_reference_and_model(doc, recording):
    by = {}
    for attrs, text in doc.captions:
        by.setdefault((attrs["data-source"], attrs["data-level"]), []).append((attrs, text))
    night = by[("reference", "night")]
    assert len(night) == 1
    ahi = event_indices(list(dict.fromkeys(recording.annotations)), recording.hypnogram)["AHI"]
    assert severity(ahi) in night[0][1]  # the night caption states the severity
    n_epochs = int(recording.duration_s // 30)
    assert len(by[("reference", "segment")]) == math.ceil(n_epochs / 10)
    assert [t for _, t in by[("model", "night")]] == ["Model: moderate sleep apnea."]
    assert [t for _, t in by[("model", "segment")]] == ["Model: repeated apneas in N2 & <N3>."]
    # generated epoch captions: only the sentences checked against the signal are printed
    assert [t for _, t in by[("model", "epoch")]] == ["The rate is steady."]


def test_html_is_self_contained(doc, html_file):
    text = html_file.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert doc.images and all(src.startswith("data:image/png;base64,") for src in doc.images)
    # hypnogram, spectrogram, events and two thumbnails of the first query
    assert len(doc.images) == 5
    assert [q["data-query"] for q in doc.queries] == [
        "obstructive apnea with desaturation", "REM sleep with sawtooth waves"]
    assert doc.matches == 2


# -- PDF -----------------------------------------------------------------------------------------
def test_pdf_has_title_page_numbers_and_content(pdf_file, report_data):
    data = pdf_file.read_bytes()
    assert data.startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = subprocess.run(["pdftotext", "-layout", str(pdf_file), "-"], capture_output=True,
                          text=True, check=True).stdout
    pages = text.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) >= 3
    for k, page in enumerate(pages, start=1):
        assert "Polysomnography report" in page
        assert f"Page {k} of {len(pages)}" in page
    first = pages[0]
    assert "Patient ID" in first and "Sleep architecture" in first and "Summary" in first
    assert f"{report_data.indices['AHI']:.1f} /h" in first
    assert "Respiratory events" in text and "Signal search" in text and "Narrative" in text


def test_pdf_pages_render_and_are_not_blank(pdf_file, tmp_path, qapp):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    from PyQt6.QtGui import QImage

    subprocess.run(["pdftoppm", "-r", "30", "-gray", "-png", str(pdf_file), str(tmp_path / "p")],
                   check=True, capture_output=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) >= 3
    for png in pngs:
        img = QImage(str(png)).convertToFormat(QImage.Format.Format_Grayscale8)
        assert 200 < img.width() < 300 and img.height() > img.width()  # A4 portrait at 30 dpi
        ptr = img.constBits()
        ptr.setsize(img.sizeInBytes())
        pixels = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine())
        body = pixels[:, : img.width()].astype(float)
        assert body.std() > 10, f"{png.name} looks blank"
        assert (body < 128).mean() > 0.01, f"{png.name} has almost no ink"


# -- export errors -------------------------------------------------------------------------------
def test_unwritable_path_is_one_line_and_writes_nothing(report_data, tmp_path, qapp):
    from sleepviewer.report.export import ReportError, export_report

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    for target in (blocker / "report.pdf", tmp_path / "missing" / "report.html"):
        with pytest.raises(ReportError) as err:
            export_report(target, report_data)
        assert isinstance(err.value, SleepLMError)
        message = str(err.value)
        assert "\n" not in message and str(target) in message
        assert not target.exists()
    with pytest.raises(ReportError, match="unknown report format"):
        export_report(tmp_path / "report.docx", report_data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


@pytest.mark.parametrize("suffix", [".html", ".pdf"])
def test_interrupted_export_leaves_old_file(report_data, tmp_path, monkeypatch, qapp, suffix):
    from sleepviewer.report import export

    target = tmp_path / f"report{suffix}"
    target.write_bytes(b"the report of last week")

    def write_half(f, data):
        f.write(data[: len(data) // 2])
        raise KeyboardInterrupt  # the user pressed Ctrl+C in the middle of the write

    monkeypatch.setattr(export, "_write_all", write_half)
    with pytest.raises(KeyboardInterrupt):
        export.export_report(target, report_data)
    assert target.read_bytes() == b"the report of last week"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left


def test_export_replaces_old_report(report_data, tmp_path, qapp):
    from sleepviewer.report.export import export_report

    target = tmp_path / "report.html"
    target.write_text("old")
    export_report(target, report_data)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# -- model details -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ahi", "word"),
    [(0.0, "normal"), (4.99, "normal"), (5.0, "mild"), (14.9, "mild"), (15.0, "moderate"),
     (29.9, "moderate"), (30.0, "severe"), (80.0, "severe"), (float("nan"), "not assessable")],
)
def test_ahi_severity_follows_aasm(ahi, word):
    from sleepviewer.report.model import ahi_severity

    assert ahi_severity(ahi) == word


def test_model_staging_beside_scoring(report_data):
    assert [h.source for h in report_data.hypnograms] == ["scored", "model"]
    assert report_data.staging == "scored"  # statistics come from the scoring
    agree, kappa = report_data.agreement
    n = len(report_data.hypnograms[0].stages)
    changed = sum(1 for k, s in enumerate(report_data.hypnograms[0].stages)
                  if k % 7 == 0 and s != "N1")
    assert agree == pytest.approx(100.0 * (n - changed) / n)
    assert 0.0 < kappa < 1.0
    match = report_data.queries[0].matches[0]
    thumb = match.thumbnail
    assert thumb is not None and thumb.start_s < 900.0 and thumb.stop_s > 960.0
    assert 1 <= len(thumb.traces) <= 4 and all(t.t.shape == t.y.shape for t in thumb.traces)
    assert report_data.spectrogram is not None
    spec = report_data.spectrogram
    assert spec.freqs[0] >= 0.5 and spec.freqs[-1] <= 25.0
    assert spec.psd_db.shape == (int(report_data.recording.duration_s // 30), spec.freqs.size)


def test_unstaged_recording_reports_without_statistics(night_files, tmp_path, qapp):
    """An EDF without scoring still gives a report (recording block, spectrogram)."""
    from sleeplm_core.io.edf_writer import SignalSpec, write_edf
    from sleepviewer.report.export import export_report
    from sleepviewer.report.model import build_report_data

    sf = 128.0
    t = np.arange(int(sf * 600)) / sf
    path = tmp_path / "unscored.edf"
    write_edf(path, [SignalSpec("C4-M1", "EEG", sf, "uV", 20 * np.sin(2 * np.pi * 10 * t))], [],
              start=datetime(2024, 5, 2, 23, 0, 0))
    with Recording.open(path) as rec:
        data = build_report_data(rec)
    assert data.staging is None and not data.stats and not data.event_rows
    assert data.spectrogram is not None and data.notes
    out = export_report(tmp_path / "unscored.html", data)
    text = out.read_text(encoding="utf-8")
    assert "not staged" in text

    # With the model's staging, the statistics are those of the model's hypnogram.
    from sleeplm_core.io.hypnogram import Hypnogram

    stages = ["W", "N1", "N2", "N2", "N3", "N3", "N2", "REM", "REM", "W"] * 2
    result = StageResult([EpochStage(k, 30.0 * k, s, 0.9, {s: 0.9})
                          for k, s in enumerate(stages)], ["C4-M1"], "sleeplm-tiny")
    with Recording.open(path) as rec:
        data = build_report_data(rec, stage_result=result)
    assert data.staging == "model" and "sleeplm-tiny" in data.staging_label
    expected = Hypnogram(stages).sleep_statistics()
    assert all(_same(data.stats[k], v) for k, v in expected.items())
    assert [h.source for h in data.hypnograms] == ["model"] and data.agreement is None
    doc = _Doc()
    doc.feed(export_report(tmp_path / "model.html", data).read_text(encoding="utf-8"))
    assert float(_rows(doc, "sleep-statistics")["TST"]["value"][0]) == 8.0  # 16 epochs


# -- headless --------------------------------------------------------------------------------------
def test_build_report_headless_writes_html(night_files, tmp_path, qapp):
    from sleepviewer.report.cli import build_report_headless

    edf, xml = night_files
    out = build_report_headless(edf, tmp_path / "night.html", annotations=xml)
    assert out == tmp_path / "night.html"
    doc = _Doc()
    doc.feed(out.read_text(encoding="utf-8"))
    assert "sleep-statistics" in doc.tables and "event-table" in doc.tables


def test_build_report_headless_refuses_unknown_suffix_first(night_files, tmp_path):
    from sleepviewer.report.cli import build_report_headless
    from sleepviewer.report.export import ReportError

    with pytest.raises(ReportError, match=r"\.txt"):
        build_report_headless(night_files[0], tmp_path / "night.txt")


def test_implausible_spo2_and_unscored_events_are_said_not_reported(tmp_path):
    """A zero-centred 'SpO2' (as in some real files) is not summarised, and a night with
    stages but no events says so instead of claiming an AHI of 0 means no apnea."""
    from sleeplm_core.io.annotations import Annotation
    from sleeplm_core.io.edf_writer import SignalSpec, write_edf
    from sleepviewer.report.content import findings_sentence
    from sleepviewer.report.model import build_report_data

    sf = 64.0
    t = np.arange(int(sf * 600)) / sf
    path = tmp_path / "stages_only.edf"
    write_edf(path, [SignalSpec("C3-A1", "EEG", sf, "uV", 20 * np.sin(2 * np.pi * 2 * t)),
                     SignalSpec("SAO2", "SPO2", sf, "%", 0.4 * np.sin(2 * np.pi * 0.01 * t))],
              [Annotation(30.0 * k, 30.0, "N2" if k > 1 else "W") for k in range(20)],
              start=datetime(2024, 5, 2, 23, 0, 0))
    with Recording.open(path) as rec:
        data = build_report_data(rec, reference_captions=False)
    assert data.oximetry is None and data.spo2 is None
    assert any("SAO2" in n and "not reported" in n for n in data.notes)
    assert any("No events" in n for n in data.notes)
    assert data.indices["AHI"] == 0.0
    assert "no events are scored" in findings_sentence(data)
    assert data.spectrogram is not None and data.spectrogram.channel == "C3-A1"


def test_edited_annotations_replace_the_recordings(recording):
    """The main window passes its annotation store: the report follows the edits."""
    from sleeplm_core.io.labels import RESPIRATORY_EVENTS
    from sleepviewer.report.model import build_report_data

    kept = [a for a in recording.annotations if a.label not in RESPIRATORY_EVENTS]
    data = build_report_data(recording, annotations=kept, reference_captions=False)
    assert data.indices["AHI"] == 0.0 and data.severity == "normal"
    expected = recording.hypnogram.sleep_statistics()
    assert all(_same(data.stats[k], v) for k, v in expected.items())
