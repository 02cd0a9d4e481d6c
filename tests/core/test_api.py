"""The notebook API: the README example runs; a path, a Recording and an mne Raw all stage."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_importing_sleeplm_core_stays_cheap() -> None:
    code = (
        "import sys, sleeplm_core\n"
        "heavy = [m for m in ('torch', 'numpy', 'scipy', 'mne') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
        "from sleeplm_core import Recording\n"
        "print(Recording.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, module = out.stdout.splitlines()
    assert heavy == "" and module == "sleeplm_core.io.recording"


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sleeplm_core import sample_night

    copy = tmp_path_factory.mktemp("api") / "night.edf"
    shutil.copy(sample_night(), copy)
    return copy


@pytest.fixture(scope="module")
def predictor() -> Iterator[object]:
    from sleeplm_core import Predictor

    yield Predictor.load(device="cpu")


@pytest.mark.slow
def test_readme_notebook_example_runs(night, monkeypatch, tmp_path) -> None:
    import sleeplm_core

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## In a notebook\n.*?```python\n(.*?)```", text, re.S)
    assert block is not None, "README lost its notebook example"
    monkeypatch.setattr(sleeplm_core, "sample_night", lambda: night)  # never write in resources/
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(block.group(1), "README.md", "exec"), scope)
    stages, df = scope["stages"], scope["df"]
    assert len(df) == len(stages.epochs) == 180  # 90 min
    assert set(df["stage"]) <= {"W", "N1", "N2", "N3", "REM"}
    assert np.allclose(df[["p_W", "p_N1", "p_N2", "p_N3", "p_REM"]].sum(axis=1), 1.0, atol=1e-5)
    ann = scope["annotations"]
    assert ann.orig_time is not None and sum(ann.duration) == pytest.approx(180 * 30.0)
    assert (tmp_path / "night-stages.csv").is_file() and (tmp_path / "night-stages.edf").is_file()
    captions = scope["captions"]
    assert len(captions) == 2 and all(c.modality == "respiratory" for c in captions)


@pytest.mark.slow
def test_path_recording_and_raw_stage_alike(night, predictor) -> None:
    import mne

    from sleeplm_core import Recording
    from sleeplm_core.embedding_cache import cache_path

    cache_path(night).unlink(missing_ok=True)  # other tests of the module may have made one
    by_path = predictor.stage(night)  # no cache: one pass over the staging montage
    with Recording.open(night) as rec:
        by_rec = predictor.stage(rec)
        emb = predictor.embed_recording(rec)  # every channel, 2x overlap, cached
        by_emb = predictor.stage(emb)  # the embedding-based signature still works
    assert by_rec.stages() == by_path.stages()
    assert by_path.channels_used == ["E1-M2", "C3-M2", "C4-M1", "Chin1-Chin2"]
    # the full montage's stages agree with the staging montage's on nearly every epoch
    assert np.mean(np.array(by_emb.stages()) == np.array(by_path.stages())) >= 0.95
    assert predictor.stage(night).stages() == by_emb.stages()  # a valid cache is reused
    assert by_path.start == rec.start and by_emb.start is None
    raw = mne.io.read_raw_edf(night, verbose="error")
    by_raw = predictor.stage(raw)
    # the Raw goes through a re-quantized EDF+: nearly every epoch gets the same stage
    same = np.mean(np.array(by_raw.stages()) == np.array(by_path.stages()))
    assert len(by_raw.epochs) == len(by_path.epochs) and same >= 0.95
    assert by_raw.channels_used == by_path.channels_used
    with pytest.raises(TypeError, match="expected a path"):
        predictor.stage(42)


@pytest.mark.slow
def test_stage_exports_read_back(night, predictor, tmp_path) -> None:
    import mne

    from sleeplm_core.io.annotations import read_annotations
    from sleeplm_core.io.hypnogram import Hypnogram

    result = predictor.stage(night)
    for suffix in (".csv", ".xml", ".edf"):
        path = tmp_path / f"stages{suffix}"
        result.save(path)
        back = read_annotations(path, start=result.start)
        hyp = Hypnogram.from_annotations(back, 180 * 30.0)
        assert hyp is not None and list(hyp.stages) == result.stages(), suffix
    for suffix in (".csv", ".edf"):
        ann = mne.read_annotations(tmp_path / f"stages{suffix}")
        assert all(d.startswith("Sleep stage ") for d in ann.description), suffix
    yasa = pytest.importorskip("yasa")
    hyp = result.to_yasa()
    assert isinstance(hyp, yasa.Hypnogram) and hyp.n_epochs == 180
    assert hyp.proba is not None and hyp.start is not None


@pytest.mark.slow
def test_search_and_captions_convert(night, predictor) -> None:
    hits = predictor.search(night, "obstructive apnea")
    df = hits.to_dataframe()
    assert list(df.columns) == ["onset_s", "duration_s", "score", "channel_types", "caption"]
    assert len(df) == len(hits.segments) > 0
    ann = hits.to_mne()
    assert list(ann.description) == ["obstructive apnea"] * len(hits.segments)
    assert list(ann.onset) == sorted(s.onset_s for s in hits.segments)
    caps = predictor.caption(night, 600, 630)
    assert {c.modality for c in caps} >= {"stage_event", "respiratory"}
    assert len(caps.to_mne()) == len(caps)


def test_a_raws_annotations_travel_with_it(night, tmp_path) -> None:
    import mne

    from sleeplm_core.api import _opened

    raw = mne.io.read_raw_edf(night, preload=True, verbose="error")
    # MNE onsets count from orig_time (the measurement date): the first kept sample moves
    # with a crop, and our onsets must follow it.
    raw.set_annotations(
        mne.Annotations(
            [raw.first_time + t for t in (100.0, 700.0, 5.0, 50.0)],
            [20.0, 12.5, 30.0, 30.0],
            ["Obstructive apnea", "Arousal", "Sleep stage W", "Sleep stage N1"],
            orig_time=raw.info["meas_date"],
            ch_names=[[], ["C3-M2"], [], []],
        )
    )
    raw.crop(tmin=60.0)
    with _opened(raw) as (rec, cached):
        got = [(a.label, round(a.onset_s, 3), a.duration_s, a.channel) for a in rec.annotations]
    assert not cached
    assert ("Obstructive apnea", 40.0, 20.0, None) in got
    assert ("Arousal", 640.0, 12.5, "C3-M2") in got
    # the stage that ended before the crop is gone; the one across it is clipped to it
    stages = [(label, onset, dur) for label, onset, dur, _ in got if "W" in label or "N1" in label]
    assert len(stages) == 1 and stages[0][1:] == (0.0, 20.0), stages
