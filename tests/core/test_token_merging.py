"""Token merging in the signal tower (issue 16: fewer tokens in the late blocks, same weights)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sleeplm_core.errors import ConfigError
from sleeplm_core.model.config import SignalEncoderConfig, SleepLMConfig
from sleeplm_core.model.signal_encoder import SignalEncoder, rotary_tables

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SMALL = SignalEncoderConfig(width=32, layers=2, heads=2, decoder_tokens=4, pool_heads=2)


def _towers(merge_size: int, merge_from: int = 1) -> tuple[SignalEncoder, SignalEncoder]:
    torch.manual_seed(0)
    plain = SignalEncoder(SMALL).eval()
    cfg = dataclasses.replace(SMALL, merge_size=merge_size, merge_from=merge_from)
    merged = SignalEncoder(cfg).eval()
    merged.load_state_dict(plain.state_dict())  # no parameter of its own
    return plain, merged


def test_merged_rotary_positions_are_the_centres_of_the_merged_patches() -> None:
    full_cos, _ = rotary_tables(120, 16, 10_000.0)
    cos, sin = rotary_tables(120, 16, 10_000.0, merge=2)
    assert cos.shape == (60, 16)
    # row j is the centre of patches 2j and 2j + 1: position 2j + 0.5
    inv = 1.0 / 10_000.0 ** (torch.arange(0, 16, 2, dtype=torch.float32) / 16)
    want = torch.cat([(2 * torch.arange(60.0) + 0.5)[:, None] * inv] * 2, dim=-1)
    torch.testing.assert_close(cos, want.cos())
    torch.testing.assert_close(sin[:, 8:], want[:, 8:].sin())
    torch.testing.assert_close(sin[:, :8], -want[:, :8].sin())
    assert not torch.allclose(cos, full_cos[0::2])  # not the even patches' positions


def test_no_merging_is_the_plain_tower() -> None:
    plain, merged = _towers(merge_size=2, merge_from=2)  # no block after the last: unchanged
    x, m = torch.randn(3, 12, 1920), torch.ones(3, 12, dtype=torch.bool)
    with torch.no_grad():
        a, b = plain(x, m, decoder=False), merged(x, m, decoder=False)
    torch.testing.assert_close(a["tokens"], b["tokens"])


def test_merged_blocks_give_both_patches_of_a_pair_the_same_update() -> None:
    plain, merged = _towers(merge_size=2)
    x = torch.randn(2, 12, 120, 32)
    with torch.no_grad():
        out = merged._merged_blocks(x, None)
    update = out - x
    torch.testing.assert_close(update[:, :, 0::2], update[:, :, 1::2])
    # the update is the late block's on the pair means, at the merged positions
    mean = x.view(2, 12, 60, 2, 32).mean(3)
    with torch.no_grad():
        want = merged.blocks[1](mean, None, (merged.merged_cos, merged.merged_sin)) - mean
    torch.testing.assert_close(update[:, :, 0::2], want)


def test_merged_tower_keeps_full_resolution_and_masks() -> None:
    plain, merged = _towers(merge_size=4)
    x, m = torch.randn(2, 12, 1920), torch.ones(2, 12, dtype=torch.bool)
    m[0, 3:] = False
    with torch.no_grad():
        a, b = plain(x, m), merged(x, m)
    assert b["tokens"].shape == a["tokens"].shape == (2, 12, 120, 32)
    assert b["decoder_tokens"].shape == (2, 4, 32)
    assert torch.isfinite(b["pooled"]).all()
    # merging changes the late block's input, so the result moves, but not far at init
    cos = torch.nn.functional.cosine_similarity(a["pooled"], b["pooled"], dim=-1)
    assert bool((cos < 1 - 1e-6).any()) and bool((cos > 0.5).all())


def test_merged_tower_trains() -> None:
    _, merged = _towers(merge_size=2)
    merged.train()
    x, m = torch.randn(2, 12, 1920), torch.ones(2, 12, dtype=torch.bool)
    out = merged(x, m, mask_ratio=0.25)
    out["pooled"].sum().backward()
    grad = merged.blocks[1].attn_t.q.weight.grad
    assert grad is not None and bool(grad.abs().sum() > 0)


@pytest.mark.parametrize(
    ("key", "value"), [("merge_size", 7), ("merge_size", 0), ("merge_from", 3)]
)
def test_bad_merge_settings_are_refused(key: str, value: int) -> None:
    cfg = SleepLMConfig()
    cfg.signal = dataclasses.replace(cfg.signal, **{key: value})
    with pytest.raises(ConfigError, match=f"signal.{key}"):
        cfg.validate()
