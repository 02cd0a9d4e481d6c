"""A tower with other patches than the bundled 16 samples: training targets and the dense track
follow the config (issue 16: token reduction is a config change and a retrain)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sleeplm_core.model.tokenizer import CaptionTokenizer
from sleeplm_core.train.collate import SleepLMCollator
from sleeplm_core.train.synthetic_data import SyntheticEpochs
from tests.core.test_inference import small_night
from tests.core.test_model import micro_config_dict

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A micro checkpoint with 32-sample (0.5-s) patches, trained for 2 steps."""
    from sleeplm_core.cli.main import main

    base = tmp_path_factory.mktemp("p32")
    cfg = micro_config_dict()
    cfg["name"] = "sleeplm-micro-p32"
    cfg["signal"]["patch_size"] = 32
    path = base / "p32.json"
    path.write_text(json.dumps(cfg))
    out = base / "ckpt"
    argv = ["train", "--config", str(path), "--synthetic", "1", "--epochs-per-night", "8",
            "--steps", "2", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_event_masks_have_one_row_per_patch_of_the_config() -> None:
    ds = SyntheticEpochs(1, epochs_per_night=4, seed=5)
    tok = CaptionTokenizer.from_corpus(ds.caption_corpus())
    events = [
        [("Spindle", 3.1, 0.8), ("Arousal", 20.2, 4.0)],
        [("Obstructive apnea", 0.0, 12.3)],
        [("K-complex", 29.9, 0.0)],  # zero length: the patch it falls in
        [],
    ]
    samples = [{**ds[i], "events": ev} for i, ev in enumerate(events)]
    fine = SleepLMCollator(tok, ["stage_event"], max_len=32)(samples)["event_masks"]
    coarse = SleepLMCollator(tok, ["stage_event"], max_len=32, patch_size=32)(samples)
    assert fine.shape[-1] == 120 and coarse["event_masks"].shape[-1] == 60
    assert fine.sum() > 0
    # a 0.5-s patch is marked exactly when one of its two 0.25-s halves is
    pairs = fine.reshape(*fine.shape[:-1], 60, 2).amax(dim=-1)
    assert torch.equal(coarse["event_masks"], pairs)


def test_dense_track_and_search_follow_the_patch_size(checkpoint: Path, tmp_path: Path) -> None:
    from sleeplm_core.inference import Predictor
    from sleeplm_core.io.recording import Recording

    pred = Predictor.load(checkpoint, device="cpu")
    night = small_night(tmp_path / "n")
    with Recording.open(night) as rec:
        emb = pred.embed_recording(rec)
    dn = pred.dense_night(emb)
    assert dn is not None and dn.features.shape[1] == 60 and dn.step_s == 0.5
    times, scores = pred.score_track(dn, "obstructive apnea")
    assert np.allclose(np.diff(times), 0.5) and np.all(np.isfinite(scores))
    assert times[-1] + 0.5 == pytest.approx(emb.onsets_s[-1] + 30.0)
    res: Any = pred.search(emb, "obstructive apnea", min_score=0.0)
    assert res.segments
    for seg in res.segments:  # segments are whole cells of the 0.5-s grid
        assert seg.onset_s / 0.5 == pytest.approx(round(seg.onset_s / 0.5))
        assert seg.duration_s / 0.5 == pytest.approx(round(seg.duration_s / 0.5))
