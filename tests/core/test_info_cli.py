"""``sleeplm info`` on a synthetic night, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleeplm_core.cli.main import main
from sleeplm_core.io.recording import Recording
from sleeplm_core.synth import generate_night, write_night


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("info") / "night.edf"
    write_night(generate_night(hours=0.5, seed=11, ahi=30), out)
    return out


def test_info_json_keys_and_values(night: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(night), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) == {"channels", "montage", "duration_s", "start", "annotations", "scoring",
                         "hypnogram", "indices", "notes"}
    assert info["notes"] == []  # a clean file has nothing odd to report
    assert info["duration_s"] == pytest.approx(1800.0)
    types = {c["name"]: c["type"] for c in info["channels"]}
    assert types["C3-M2"] == "EEG" and types["SpO2"] == "SPO2"
    assert all({"name", "type", "role", "sf", "unit", "rule"} <= set(c) for c in info["channels"])
    assert info["hypnogram"]["n_epochs"] == 60
    assert info["indices"]["AHI"] is not None and info["indices"]["AHI"] >= 0


def test_sidecar_does_not_double_events(night: Path) -> None:
    """The XML beside the EDF repeats its events; each must count once."""
    with Recording.open(night) as rec:
        alone = rec.annotations.counts()
    with Recording.open(night, annotations=night.with_suffix(".xml")) as rec:
        merged = rec.annotations.counts()
    assert merged == alone


def test_info_text_lists_channels(night: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(night)]) == 0
    out = capsys.readouterr().out
    assert "C3-M2" in out and "AHI" in out


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: d / "missing.edf", "missing.edf"),
        (lambda d: d, "directory"),
    ],
)
def test_bad_input_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, needle: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert needle in err.lower() or needle in err


def test_truncated_file_one_line(night: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "cut.edf"
    bad.write_bytes(night.read_bytes()[:100_000])
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cut.edf" in err
