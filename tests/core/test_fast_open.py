"""Opening fast: the vectorised TAL reader and MNE's channel names without MNE."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from sleeplm_core.io.annotation_formats.edf_tal import read_all_tals, read_edf_header
from sleeplm_core.io.annotations import Annotation, read_annotations
from sleeplm_core.io.edf_writer import SignalSpec, write_edf
from sleeplm_core.io.recording import Recording, unique_names


def _edf(path: Path, events: list[Annotation], labels: list[str], seconds: int = 120) -> Path:
    rng = np.random.default_rng(0)
    signals = [SignalSpec(n, "EEG", 64.0, "uV", rng.normal(0, 20, seconds * 64)) for n in labels]
    write_edf(path, signals, events, start=datetime(2024, 1, 1, 22, 0, 0, 250_000))
    return path


def test_skipping_bare_timekeeping_records_keeps_every_text(tmp_path: Path) -> None:
    events = [
        Annotation(0.0, 30.0, "Sleep stage W"),
        Annotation(12.5, 0.0, "Arousal", "C3-M2"),
        Annotation(12.5, 10.0, "Obstructive apnea", None, (("spo2_nadir", "88"),)),
        Annotation(61.25, 1.0, "Spindle"),
        Annotation(119.0, 0.5, "Lights on"),
    ]
    path = _edf(tmp_path / "a.edf", events, ["C3-M2", "C4-M1"])
    header = read_edf_header(path)
    every = read_all_tals(path, header)
    texted = read_all_tals(path, header, timekeeping=False)
    assert texted[0] == every[0]  # the first record's TAL: the sub-second start
    def with_text(tals: list) -> list:
        return [t for t in tals if any(x.strip() for x in t.texts)]

    assert with_text(texted) == with_text(every) and len(with_text(every)) == 5
    assert len(texted) < len(every)
    assert list(read_annotations(path)) == events


@pytest.mark.parametrize(
    "labels",
    [["C3", "C4", "EOG"], ["EEG", "EEG", "EMG", "EEG"], ["A", "A", "A-1"], ["X", "X-0", "X"]],
)
def test_channel_names_are_those_mne_gives(tmp_path: Path, labels: list[str]) -> None:
    path = _edf(tmp_path / "n.edf", [Annotation(1.0, 0.0, "x")], labels, seconds=4)
    with Recording.open(path) as rec:
        assert rec.ch_names == unique_names(read_edf_header(path).labels[: len(labels)])
        assert rec._raw is None  # not parsed by MNE on open
        assert list(rec.raw.ch_names) == rec.ch_names


def _reference_parse(raw: bytes) -> list[tuple[float, float | None, tuple[str, ...], str]]:
    """The former chunk-by-chunk parser, kept here as the reference."""
    import re

    number = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
    timing_re = re.compile(rf"([+-]?{number})(?:\x15({number})?)?")
    out = []
    for chunk in raw.split(b"\x00"):
        if not chunk or not chunk.endswith(b"\x14"):
            continue
        parts = chunk[:-1].split(b"\x14")
        timing = timing_re.fullmatch(parts[0].decode("latin-1"))
        if timing is None or len(parts) < 2:
            continue
        dur = None if timing.group(2) is None else float(timing.group(2))
        texts = tuple(p.decode("utf-8", "replace") for p in parts[1:])
        out.append((float(timing.group(1)), dur, texts, timing.group(1)))
    return out


def test_one_regex_parser_equals_the_chunk_parser_on_random_bytes() -> None:
    from sleeplm_core.io.annotation_formats.edf_tal import parse_tals

    rng = np.random.default_rng(11)
    tokens = [b"+12", b"-3.5", b"7", b".", b"e5", b"\x14", b"\x14", b"\x15", b"\x00", b"txt",
              b" "]  # fmt: skip
    found = 0
    for _ in range(3000):
        raw = b"".join(tokens[i] for i in rng.integers(0, len(tokens), rng.integers(0, 12)))
        got = [(t.onset_s, t.duration_s, t.texts, t.onset_text) for t in parse_tals(raw)]
        assert got == _reference_parse(raw), raw
        found += len(got)
    assert found > 20  # the strings did hold TALs (40 with this seed)
