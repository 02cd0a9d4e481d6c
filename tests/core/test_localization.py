"""Dense language-guided localization: features, loss, per-patch masks, track -> segments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from sleeplm_core.losses import LocalizationLoss, SleepLMLoss, StageLoss
from sleeplm_core.model.config import config_from_dict
from sleeplm_core.model.prompts import EVENT_TYPES, LABEL_TYPES, stage_prompts
from sleeplm_core.model.sleeplm import SleepLM
from sleeplm_core.model.tokenizer import CaptionTokenizer
from sleeplm_core.results import NightEmbeddings
from sleeplm_core.train.collate import event_patch_masks, type_validity

from .test_model import micro_config_dict

K = len(EVENT_TYPES)
SPINDLE = next(k for k, t in enumerate(EVENT_TYPES) if t.name == "spindle")
APNEA = next(k for k, t in enumerate(EVENT_TYPES) if t.name == "apnea")
CENTRAL = next(k for k, t in enumerate(EVENT_TYPES) if t.name == "central apnea")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def model() -> SleepLM:
    torch.manual_seed(0)
    tokenizer = CaptionTokenizer.from_corpus(["stage n2."])
    return SleepLM(config_from_dict(micro_config_dict()), tokenizer)


def test_dense_features_shape_and_norm(model: SleepLM) -> None:
    x = torch.randn(3, 12, 1920)
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[:, 6] = True  # a single central EEG
    mask[0] = True
    loc = model.text.encode_texts(["sleep spindle", "obstructive apnea"])
    stages = torch.stack([model.text.encode_texts(p) for p in stage_prompts().values()])
    model.eval()  # no masked-patch noise
    out = model(x, mask, loc_text_emb=loc, stage_text_emb=stages)
    dense = out["dense_features"]
    assert dense.shape == (3, 120, 16)
    assert torch.allclose(dense.norm(dim=-1), torch.ones(3, 120), atol=1e-4)
    assert out["loc_logits"].shape == (3, 2, 120)
    assert out["stage_logits"].shape == (3, 5)
    # missing channels do not change the features of the present one
    y = x.clone()
    y[1:, :6] = 123.0
    assert torch.allclose(model(y, mask)["dense_features"][1:], dense[1:], atol=1e-5)
    _, d2 = model.encode_signal_dense(x, mask)
    assert torch.allclose(d2, dense.detach(), atol=1e-5)


def test_localization_loss_on_hand_made_tensors() -> None:
    target = torch.zeros(1, 2, 4)
    target[0, 0, 1:3] = 1.0
    good = (target * 2 - 1) * 10.0  # confident and right
    bad = -good
    loss = LocalizationLoss(pos_weight=1.0)
    assert loss(good, target)["localization_loss"] < 1e-3
    assert loss(bad, target)["localization_loss"] > 5.0
    # plain BCE with logits 0 is log 2; the positive weight scales positive cells only
    zero = torch.zeros(1, 2, 4)
    assert torch.isclose(loss(zero, target)["localization_loss"], torch.tensor(float(np.log(2.0))))
    w4 = LocalizationLoss(pos_weight=4.0)(zero, target)["localization_loss"]
    assert torch.isclose(w4, torch.tensor(float(np.log(2.0)) * (6 + 2 * 4) / 8), atol=1e-6)
    # a type invalid for the sample (its channels missing) adds nothing
    valid = torch.tensor([[True, False]])
    only_first = loss(bad, target, valid)["localization_loss"]
    expected = loss(bad[:, :1], target[:, :1])["localization_loss"]
    assert torch.isclose(only_first, expected)


def test_stage_loss_skips_unscored() -> None:
    logits = torch.tensor([[5.0, 0, 0, 0, 0], [0, 0, 0, 0, 5.0], [9.0, 0, 0, 0, 0]])
    value = StageLoss()(logits, torch.tensor([0, 4, -2]))["stage_loss"]
    assert value < 0.05
    assert StageLoss()(logits, torch.tensor([-2, -1, -2]))["stage_loss"] == 0.0


def test_total_includes_localization_weight() -> None:
    cfg = config_from_dict(micro_config_dict()).loss
    fn = SleepLMLoss(cfg)
    losses = {"localization_loss": torch.tensor(1.0), "stage_loss": torch.tensor(1.0)}
    assert float(fn.total(losses)) == pytest.approx(cfg.localization_weight + cfg.stage_weight)


def test_event_patch_masks_from_intervals() -> None:
    events = [
        [("Spindle", 1.0, 0.5), ("Obstructive apnea", 20.0, 25.0)],  # runs past the epoch end
        [("Central apnea", -5.0, 5.1), ("Sleep stage N2", 0.0, 30.0)],  # from the epoch before
        [],
    ]
    m = event_patch_masks(events)
    assert m.shape == (3, K, 120)
    assert m[0, SPINDLE].nonzero().flatten().tolist() == [4, 5]  # [1.0, 1.5) s
    assert m[0, APNEA, 80:].all() and not m[0, APNEA, :80].any()
    assert m[1, APNEA, 0] == 1 and m[1, CENTRAL, 0] == 1  # central apnea is also "apnea"
    assert m[1, :, 1:].sum() == 0  # 5.1 s from -5 s ends in patch 0; stages are ignored
    assert m[2].sum() == 0
    assert set(LABEL_TYPES["Central apnea"]) == {APNEA, CENTRAL}
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[0, 6] = True
    mask[1, 3] = True
    valid = type_validity(mask)
    assert valid[0, SPINDLE] and not valid[0, APNEA]
    assert valid[1, APNEA] and not valid[1, SPINDLE]


def test_track_to_segments_merge() -> None:
    from sleeplm_core.tracks import track_segments

    t = np.arange(80) * 0.25
    s = np.zeros(80)
    s[4:8] = 0.9  # 1.0-2.0 s
    s[9] = 0.5  # after a 0.25 s gap, above the low threshold: joins
    s[20] = 0.95  # a single 0.25 s cell: shorter than min_s
    s[30:36] = 0.45  # never reaches the threshold
    s[40:44] = 0.85
    s[48:52] = 0.85  # 1 s after the previous run: merged only with gap_s >= 1
    segs = track_segments(t, s, 0.8, low_ratio=0.6, gap_s=0.5, min_s=0.3, step_s=0.25)
    assert [(a, b) for a, b, _ in segs] == [(1.0, 2.5), (10.0, 11.0), (12.0, 13.0)]
    # a segment scores the mean of its cells: (4 x 0.9 + 0.5) / 5
    assert [m for _, _, m in segs] == pytest.approx([0.82, 0.85, 0.85])
    merged = track_segments(t, s, 0.8, low_ratio=0.6, gap_s=1.0, min_s=0.3, step_s=0.25)
    assert merged[-1] == pytest.approx((10.0, 13.0, 0.85))
    # a hole in the covered grid splits a run
    holey = np.delete(np.arange(80), [6])
    segs = track_segments(t[holey], s[holey], 0.8, low_ratio=0.6, gap_s=0.0, min_s=0.3, step_s=0.25)
    assert segs[0] == pytest.approx((1.0, 1.5, 0.9))
    assert track_segments(t, np.zeros(80), 0.5, step_s=0.25) == []


def test_overlap_average() -> None:
    from sleeplm_core.tracks import overlap_average

    vals = np.stack([np.full(120, 1.0), np.full(120, 0.0)])
    times, avg = overlap_average(np.array([0.0, 15.0]), vals, 0.25)
    assert len(times) == 180
    assert avg[0] == 1.0 and avg[60] == 0.5 and avg[-1] == 0.0


def test_overlap_average_matches_a_window_by_window_sum() -> None:
    from sleeplm_core.tracks import overlap_average

    rng = np.random.default_rng(3)
    onsets = np.sort(rng.choice(np.arange(0, 900, 7.5), 40, replace=False))
    vals = rng.random((40, 120))
    times, avg = overlap_average(onsets, vals, 0.25)
    total, count = np.zeros(4000), np.zeros(4000)
    for onset, row in zip(onsets, vals, strict=True):
        first = int(round(onset / 0.25))
        total[first : first + 120] += row
        count[first : first + 120] += 1
    covered = count > 0
    np.testing.assert_allclose(times, np.flatnonzero(covered) * 0.25)
    np.testing.assert_allclose(avg, total[covered] / count[covered], rtol=1e-12)


def test_dense_projection_in_chunks_equals_the_whole_product() -> None:
    from sleeplm_core.tracks import DenseNight

    rng = np.random.default_rng(4)
    n = 2 * DenseNight.CHUNK + 5  # two whole chunks and a short one
    dn = DenseNight(np.arange(n) * 15.0, rng.standard_normal((n, 120, 16)).astype(np.float16))
    q = rng.standard_normal(16).astype(np.float32)
    got = dn.project(q)
    assert got.dtype == np.float32 and got.shape == (n, 120)
    np.testing.assert_allclose(got, dn.features.astype(np.float32) @ q, rtol=1e-5, atol=1e-5)


def test_search_returns_sub_epoch_segments(model: SleepLM, monkeypatch: Any) -> None:
    from sleeplm_core.inference import DenseNight, Predictor

    pred = Predictor(model.eval(), {"calibration": {"match_threshold": 0.5}}, torch.device("cpu"))
    onsets = np.arange(0.0, 91.0, 15.0)
    emb = NightEmbeddings(onsets, 30.0, np.zeros((7, 16), np.float32), np.ones(12, bool), "m")
    pred._keep_dense(emb, DenseNight(onsets, np.zeros((7, 120, 16), np.float16)))

    def track(dn: DenseNight, query: str) -> tuple[np.ndarray, np.ndarray]:
        t = np.arange(480) * 0.25
        s = np.zeros(480)
        s[200:204] = 0.9  # a 1-s spindle at 50 s
        s[300:400] = 0.7  # a 25-s apnea at 75 s
        return t, s

    monkeypatch.setattr(pred, "score_track", track)
    monkeypatch.setattr(pred, "query_kind", lambda q: "dense")
    res = pred.search(emb, "sleep spindle", top=100)
    spans = sorted((s.onset_s, s.duration_s) for s in res.segments)
    assert spans == [(50.0, 1.0), (75.0, 25.0)]
    assert res.threshold == 0.5
