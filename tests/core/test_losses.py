"""Loss values on hand-made tensors, each checked against a value worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from sleeplm_core.losses import (
    CaptionLoss,
    ContrastiveLoss,
    ReconstructionLoss,
    SleepLMLoss,
    gather_with_local_grad,
    multi_positive_targets,
    next_token_pairs,
)
from sleeplm_core.model.config import LossConfig

I2 = torch.eye(2)


def test_infonce_identity_2x2() -> None:
    # logits = [[1, 0], [0, 1]]: every row is -log(e / (e + 1)) = log(1 + e^-1)
    loss = ContrastiveLoss(multi_positive=False)(I2, I2, torch.tensor(1.0))["contrastive_loss"]
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1)), abs=1e-6)


def test_infonce_asymmetric_2x2_with_scale() -> None:
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # logits = 2 * S T^T = [[2, 1.2], [0, 1.6]]
    # signal->text rows: log(1 + e^-0.8), log(1 + e^-1.6)
    # text->signal rows (transpose [[2, 0], [1.2, 1.6]]): log(1 + e^-2), log(1 + e^-0.4)
    by_hand = sum(math.log1p(math.exp(-x)) for x in (0.8, 1.6, 2.0, 0.4)) / 4
    out = ContrastiveLoss()(I2, text, torch.tensor(2.0), torch.tensor([1, 2]))
    assert out["contrastive_loss"].item() == pytest.approx(by_hand, abs=1e-6)


def test_identical_texts_are_both_positives() -> None:
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # one caption, twice
    ids = torch.tensor([7, 7])
    # merged into one text column [1, 0]: logits (2 x 1) = [[1], [0]]
    # signal->text: a softmax over one column: 0 for both rows
    # text->signal: one row [1, 0], target [1/2, 1/2]: log(e + 1) - 1/2
    by_hand = (0.0 + math.log(math.e + 1) - 0.5) / 2
    out = ContrastiveLoss(multi_positive=True)(I2, text, torch.tensor(1.0), ids)
    assert out["contrastive_loss"].item() == pytest.approx(by_hand, abs=1e-6)
    # plain InfoNCE counts the copy as a negative: logits [[1, 1], [0, 0]]
    # signal->text rows: log 2 each; text->signal rows [1, 0]: log(1 + e^-1) and 1 + log(1 + e^-1)
    plain_by_hand = (math.log(2) + math.log1p(math.exp(-1)) + 0.5) / 2
    plain = ContrastiveLoss(multi_positive=False)(I2, text, torch.tensor(1.0), ids)
    assert plain["contrastive_loss"].item() == pytest.approx(plain_by_hand, abs=1e-6)


def test_multi_positive_targets_rows_sum_to_one() -> None:
    inverse, t = multi_positive_targets(torch.tensor([3, 5, 3]))
    assert inverse.tolist() == [0, 1, 0]
    assert torch.allclose(t, torch.tensor([[0.5, 0, 0.5], [0, 1, 0]]))


def test_distinct_ids_equal_plain_infonce() -> None:
    g = torch.Generator().manual_seed(0)
    s = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1)
    t = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1)
    scale = torch.tensor(3.0)
    multi = ContrastiveLoss(True)(s, t, scale, torch.arange(5))["contrastive_loss"]
    plain = ContrastiveLoss(False)(s, t, scale)["contrastive_loss"]
    assert multi.item() == pytest.approx(plain.item(), abs=1e-6)


def test_caption_shift_and_padding() -> None:
    logits = torch.zeros(1, 3, 4)
    logits[0, 1, 3] = math.log(3)  # p(3) = 3 / (1 + 1 + 1 + 3) = 0.5
    logits[0, 2] = torch.tensor([100.0, -100, -100, -100])  # last position predicts nothing
    targets = torch.tensor([[0, 2, 3]])  # [PAD] (e.g. [BOS] position), then two real tokens
    # pairs: logits[:, 0] -> 2 (uniform: log 4), logits[:, 1] -> 3 (p = 0.5: log 2)
    loss = CaptionLoss()(logits, targets)["caption_loss"]
    assert loss.item() == pytest.approx((math.log(4) + math.log(2)) / 2, abs=1e-6)
    padded = CaptionLoss()(logits, torch.tensor([[0, 2, 0]]))["caption_loss"]
    assert padded.item() == pytest.approx(math.log(4), abs=1e-6)
    pred, gold = next_token_pairs(logits, targets)
    assert pred.shape == (1, 2, 4) and gold.tolist() == [[2, 3]]


def test_caption_loss_all_padding_is_zero() -> None:
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = CaptionLoss()(logits, torch.zeros(2, 3, dtype=torch.long))["caption_loss"]
    loss.backward()
    assert loss.item() == 0.0


def test_reconstruction_only_present_channels_and_masked_patches() -> None:
    recon = torch.zeros(1, 2, 32)
    target = torch.stack([torch.tensor([1.0] * 16 + [3.0] * 16), torch.full((32,), 50.0)])[None]
    mask = torch.tensor([[True, False]])  # channel 1 is missing: its 50s never count
    everywhere = ReconstructionLoss(16, masked_only=False)(recon, target, mask)["recon_loss"]
    assert everywhere.item() == pytest.approx((16 * 1 + 16 * 9) / 32)
    patch_mask = torch.tensor([[[True, False], [True, True]]])
    hidden = ReconstructionLoss(16, masked_only=True)(recon, target, mask, patch_mask)
    assert hidden["recon_loss"].item() == pytest.approx(1.0)
    nothing = ReconstructionLoss(16)(recon, target, torch.zeros(1, 2, dtype=torch.bool))
    assert nothing["recon_loss"].item() == 0.0


def test_total_is_weighted_sum_of_loss_keys() -> None:
    cfg = LossConfig(contrastive_weight=1.0, caption_weight=2.0, recon_weight=0.5)
    loss_fn = SleepLMLoss(cfg, patch_size=16, masked_only=False)
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    out = {
        "signal_features": I2,
        "text_features": text,
        "logit_scale": torch.tensor(2.0),
        "caption_logits": torch.zeros(2, 2, 4),
        "recon": torch.zeros(2, 2, 16),
        "patch_mask": None,
    }
    batch = {
        "text_ids": torch.tensor([1, 2]),
        "caption_targets": torch.tensor([[0, 1], [0, 2]]),
        "signal": torch.ones(2, 2, 16),
        "mask": torch.ones(2, 2, dtype=torch.bool),
    }
    losses = loss_fn(out, batch)
    assert set(losses) == {"contrastive_loss", "caption_loss", "recon_loss"}
    assert losses["caption_loss"].item() == pytest.approx(math.log(4))
    assert losses["recon_loss"].item() == pytest.approx(1.0)
    expected = losses["contrastive_loss"] + 2.0 * math.log(4) + 0.5 * 1.0
    assert loss_fn.total(losses).item() == pytest.approx(expected.item(), abs=1e-6)


def test_gather_is_identity_without_process_group() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    assert gather_with_local_grad(x) is x
