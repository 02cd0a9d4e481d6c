"""Issue 13, item 4/5: gaps, flat and all-zero stretches are unscored, uncaptioned, unfound."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sleeplm_core.io.edf_writer import SignalSpec, write_edf
from sleeplm_core.io.recording import Recording
from sleeplm_core.signal_quality import UNSCORED_CAPTION, live_seconds, scorable_windows
from tests.core.test_inference import micro_checkpoint_in

pytestmark = pytest.mark.usefixtures("torch_one_thread")



@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from sleeplm_core.inference import Predictor

    return Predictor.load(micro_checkpoint_in(tmp_path_factory.getbasetemp()), device="cpu")


DEAD = (60.0, 150.0)  # epochs 2, 3 and 4: zeros, then a flat line


def _night_with_a_dead_stretch(path: Path) -> Path:
    rng = np.random.default_rng(3)
    seconds = 300
    signals = []
    for name, ctype, sf in [("C3-M2", "EEG", 128.0), ("E1-M2", "EOG", 128.0),
                            ("Chin1-Chin2", "EMG", 128.0), ("SpO2", "SPO2", 1.0)]:  # fmt: skip
        x = rng.normal(0.0, 20.0, int(seconds * sf)) if ctype != "SPO2" else np.full(seconds, 95.0)
        a, b = int(DEAD[0] * sf), int(DEAD[1] * sf)
        x[a : (a + b) // 2] = 0.0  # all zero (as an EDF+D gap is read) ...
        x[(a + b) // 2 : b] = 12.5  # ... then disconnected: a flat line
        signals.append(SignalSpec(name, ctype, sf, "%" if ctype == "SPO2" else "uV", x))
    write_edf(path, signals, [], start=datetime(2024, 1, 1, 22, 0, 0))
    return path


def test_live_seconds_marks_zero_and_flat_stretches() -> None:
    data = np.zeros((12, 64 * 10), np.float32)
    data[6] = np.random.default_rng(0).normal(size=640)  # C3_M2
    data[6, 64 * 3 : 64 * 6] = 0.0
    data[6, 64 * 6 : 64 * 8] = 4.2
    data[10] = 95.0  # SpO2: constant is normal, not a sign of life
    mask = np.zeros(12, bool)
    mask[[6, 10]] = True
    live = live_seconds(data, mask)
    assert live.tolist() == [True] * 3 + [False] * 5 + [True] * 2
    assert scorable_windows(live, np.array([0.0, 2.0, 6.0]), 4.0).tolist() == [True, False, True]


def test_dead_stretch_is_not_staged_captioned_or_found(predictor: Any, tmp_path: Path) -> None:
    path = _night_with_a_dead_stretch(tmp_path / "gap.edf")
    with Recording.open(path) as rec:
        emb = predictor.embed_recording(rec, use_cache=False)
        staged = predictor.stage(emb)
        captions = predictor.caption(rec, 0.0, 300.0, modalities=["stage_event"])
    by_epoch = {e.epoch: e for e in staged.epochs}
    for k in (2, 3, 4):
        assert by_epoch[k].stage == "UNS" and by_epoch[k].confidence == 0.0
        assert not any(by_epoch[k].proba.values())
    assert all(by_epoch[k].stage != "UNS" for k in (0, 1, 5, 6, 7, 8))
    texts = {round(c.onset_s): c.text for c in captions}
    assert [texts[t] == UNSCORED_CAPTION for t in range(0, 300, 30)] == [
        False, False, True, True, True, False, False, False, False, False]  # fmt: skip
    assert emb.live_s is not None
    assert not emb.live_s[62:103].any() and not emb.live_s[107:148].any()  # the step rings ±1 s
    for query in ("wake", "obstructive apnea", "sleep spindle"):
        found = predictor.search(emb, query, min_score=-1.0, top=1000)  # every live cell passes
        assert found.segments
        for seg in found.segments:
            for t in (82.5, 127.5):  # inside the zeros, inside the flat line
                assert not seg.onset_s < t < seg.onset_s + seg.duration_s, (query, seg)
        assert all(np.isfinite(found.best_scores))


def test_cached_embeddings_keep_the_dead_seconds(predictor: Any, tmp_path: Path) -> None:
    path = _night_with_a_dead_stretch(tmp_path / "gap.edf")
    with Recording.open(path) as rec:
        first = predictor.embed_recording(rec)
        again = predictor.embed_recording(rec)  # from the cache
    assert again.live_s is not None and np.array_equal(again.live_s, first.live_s)
    assert predictor.stage(again).stages()[2:5] == ["UNS"] * 3
