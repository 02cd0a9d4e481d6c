"""A vendor-like 60+ signal export: harmonised typing, clean labels, the automatic montage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sleeplm_core.cli.main import main as sleeplm_main
from sleeplm_core.errors import ConfigError
from sleeplm_core.io import channels
from sleeplm_core.io.channels import CANONICAL_SLOTS, classify, decode_label, read_channel_table
from sleeplm_core.io.recording import Recording
from tests.vendor_edf import (
    EXPECTED,
    LATIN1_LABELS,
    MONTAGE,
    UTF8_LABELS,
    VSig,
    write_vendor_edf,
)


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vendor_edf(tmp_path_factory.mktemp("vendor") / "vendor.edf")


def test_every_signal_is_typed_with_its_side(vendor: Path) -> None:
    with Recording.open(vendor) as rec:
        files = [n for n in rec.ch_names if rec.derivation_sources(n) is None]
        assert len(files) >= 60
        assert sorted(files) == sorted(EXPECTED)  # every label decoded cleanly, none missing
        got = {n: rec.channel_type(n) for n in files}
        wrong = {n: (ct.type, ct.role, ct.side) for n, ct in got.items()
                 if (ct.type, ct.role, ct.side) != EXPECTED[n]}
        assert wrong == {}
        assert all(ct.rule.startswith("channel_types.csv:") or ct.type == "OTHER"
                   for ct in got.values())
        # electrodes and references parsed
        assert (got["EEG O1:M2"].electrode, got["EEG O1:M2"].reference) == ("O1", "M2")
        assert (got["C3-M2"].electrode, got["C3-M2"].reference) == ("C3", "M2")
        assert (got["C4"].electrode, got["C4"].reference) == ("C4", "")
        # an impedance trace named after its electrode is no EEG
        assert got["C3 Imp"].type == "NONPHYS" and "kOhm" in got["C3 Imp"].rule


def test_labels_decode_utf8_else_latin1(vendor: Path) -> None:
    with Recording.open(vendor) as rec:
        for label in (*UTF8_LABELS, *LATIN1_LABELS):
            assert label in rec.ch_names
        assert not any("\u00c3" in n or "\ufffd" in n for n in rec.ch_names)  # no mojibake
    assert decode_label("S\u00c3\u00a4ttigung") == "Sättigung"  # UTF-8 bytes read as Latin-1
    assert decode_label("K\u00f6rperlage") == "Körperlage"  # real Latin-1 stays


def test_montage_content_order_and_derivations(vendor: Path) -> None:
    with Recording.open(vendor) as rec:
        montage = rec.montage
        assert [m.name for m in montage] == MONTAGE
        derived = {m.name: m.sources for m in montage if m.sources}
        assert derived == {
            "F4-M1": ("F4", "M1"), "C4-M1": ("C4", "M1"), "O2-M1": ("O2", "M1"),
            "E1-M2": ("E1", "M2"), "E2-M2": ("E2", "M2"), "Chin1-Chin2": ("Chin1", "Chin2"),
        }
        assert "C3-M2" not in derived  # recorded, so used as it is
        for name, (pos, ref) in derived.items():
            w = rec.window(10.0, 40.0, [name, pos, ref])
            np.testing.assert_array_equal(w.data[0], w.data[1] - w.data[2])
        # and equal to the generated physical difference, to the EDF's 16-bit resolution
        from tests.vendor_edf import signals

        src = {s.label: s.data for s in signals()}
        w = rec.window(0.0, 120.0, ["F4-M1"])
        np.testing.assert_allclose(w.data[0], src["F4"] - src["M1"], atol=0.05)
        # the same selection feeds the model
        slots = dict(zip(CANONICAL_SLOTS, rec.canonical_sources, strict=True))
        assert (slots["C4_M1"], slots["C3_M2"], slots["EOG_L"], slots["EMG_CHIN"]) == (
            "C4-M1", "C3-M2", "E1-M2", "Chin1-Chin2")
        assert (slots["AIRFLOW"], slots["EMG_LEG"], slots["SPO2"]) == (
            "Thermistance", "Jambe gauche", "Sättigung")


def test_info_json_explains_types_and_lists_the_montage(
    vendor: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sleeplm_main(["info", str(vendor), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    by = {c["name"]: c for c in info["channels"]}
    assert by["Jambe gauche"]["type"] == "EMG" and by["Jambe gauche"]["side"] == "L"
    assert "label 'Jambe gauche'" in by["Jambe gauche"]["rule"]
    assert by["F4-M1"]["derived_from"] == ["F4", "M1"]
    assert [m["name"] for m in info["montage"]] == MONTAGE
    assert info["montage"][0] == {"name": "F4-M1", "type": "EEG", "role": "F4-M1",
                                  "sources": ["F4", "M1"]}


def test_derivation_of_two_rates_is_refused_with_one_line(tmp_path: Path) -> None:
    sigs = [VSig("C4", 256, "uV", -500, 500, np.zeros(256 * 4)),
            VSig("M1", 200, "uV", -500, 500, np.zeros(200 * 4))]
    with Recording.open(write_vendor_edf(tmp_path / "rates.edf", 4, sigs)) as rec:
        assert "C4-M1" not in rec.ch_names
        assert [m.name for m in rec.montage] == ["C4"]  # the referential signal, not nothing
        assert any("C4-M1 not derived" in n and "200 Hz" in n for n in rec.notes)


def test_site_table_is_tried_first_and_a_bad_one_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "site.csv"
    own.write_text("pattern,type,role,side,slot,rank\nmy leg,EMG,leg,L,EMG_LEG,1\n")
    monkeypatch.setenv(channels.TABLE_ENV, str(own))
    assert classify("MY LEG", "uV").side == "L"
    assert "site.csv:2" in classify("MY LEG", "uV").rule
    own.write_text("pattern,type,role\nx,BRAINWAVE,other\n")
    monkeypatch.setenv(channels.TABLE_ENV, str(tmp_path / "other.csv"))
    (tmp_path / "other.csv").write_text("pattern,type,role\nx,BRAINWAVE,other\n")
    with pytest.raises(ConfigError, match=r"other\.csv: line 2: unknown channel type 'BRAINWAVE'"):
        classify("x")
    monkeypatch.setenv(channels.TABLE_ENV, str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError, match="missing.csv: cannot read the channel table"):
        classify("x")


def test_unreadable_table_stops_info_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vendor: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"pattern,type\n\xff\xfe(\n")
    monkeypatch.setenv(channels.TABLE_ENV, str(bad))
    assert sleeplm_main(["info", str(vendor)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"sleeplm: error: {bad}: the channel table is not UTF-8 text"


def test_table_conditions_parse_and_fail_cleanly(tmp_path: Path) -> None:
    t = tmp_path / "t.csv"
    t.write_text("pattern,type,role,side,slot,rank,unit,sf,range\nx,EEG,c,L,,,volt,~5,\n")
    with pytest.raises(ConfigError, match="line 2: sf must be"):
        read_channel_table(t)
    t.write_text("pattern,type,role,side,slot,rank,unit,sf,range\nx,EEG,c,Q,,,,,\n")
    with pytest.raises(ConfigError, match="side must be L, R or empty"):
        read_channel_table(t)
    t.write_text("no header here\n")
    with pytest.raises(ConfigError, match="not a channel table"):
        read_channel_table(t)


def test_unknown_position_codes_are_unknown(
    vendor: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sleeplm_main(["info", str(vendor), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    pos = next(c for c in info["channels"] if c["type"] == "POSITION")
    assert pos["codes"] == {"1": "supine", "2": "left", "3": "prone", "9": "unknown"}
    with Recording.open(vendor) as rec:
        x = rec.canonical(0.0, 120.0).data[CANONICAL_SLOTS.index("POSITION")]
    last = x[-20 * 64 :]  # the last 30 s hold code 9: given to the model as -1, no position
    assert np.all(last == -1.0)
    assert not np.any(np.round(x) == 9)


@pytest.mark.real
def test_dreams_excerpt_montage_and_stage_channel(real_data_dir: Path) -> None:
    from sleeplm_core.io.scoring_import import plan_from_channel

    path = real_data_dir / "dreams-spindles" / "excerpt3.edf"
    if not path.is_file():
        pytest.skip("excerpt3.edf is not present")
    with Recording.open(path) as rec:
        assert [m.name for m in rec.montage] == [
            "FP1-A1", "C3-A1", "O1-A1", "EOG1-A1", "EOG2-A1", "EMG1", "ECG", "NAF1", "VTH",
            "VAB", "SAO2", "POS"]
        types = {c.name: c.type for c in rec.channels}
        assert types["hypnogram"] == "STAGE" and types["event_neuro"] == "EVENT"
        plan = plan_from_channel(rec, "hypnogram")
        assert "DREAMS codes" in plan.source
        ann = plan.apply(rec.duration_s)
        assert len(ann.stages()) == 60  # one per 30-s epoch of the 30-min excerpt
