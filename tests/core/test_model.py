"""SleepLM model: configs, tokenizer, text tower, output shapes, decoding, missing channels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sleeplm_core.errors import ConfigError
from sleeplm_core.model.config import config_from_dict, load_config
from sleeplm_core.model.sleeplm import SleepLM
from sleeplm_core.model.tokenizer import (
    BOS_ID,
    EOS_ID,
    MODALITIES,
    PAD_ID,
    CaptionTokenizer,
    modality_id,
)
from sleeplm_core.train.collate import SleepLMCollator
from sleeplm_core.train.synthetic_data import SyntheticEpochs

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def micro_config_dict() -> dict[str, Any]:
    """sleeplm-tiny shrunk further so that CPU tests take milliseconds per step."""
    data = json.loads(
        (Path(__file__).parents[2] / "sleeplm_core/configs/sleeplm-tiny.json").read_text()
    )
    data["name"] = "sleeplm-micro"
    data["embed_dim"] = 16
    data["signal"].update(width=16, layers=1, heads=2, pool_heads=2, decoder_tokens=4)
    data["decoder"].update(width=16, layers=1, heads=2, max_len=32)
    data["recon"].update(width=8, heads=2)
    data["train"].update(batch_size=4, warmup_steps=1, checkpoint_every=2, log_every=1)
    return data


def micro_config_file(tmp_path: Path) -> Path:
    path = tmp_path / "sleeplm-micro.json"
    path.write_text(json.dumps(micro_config_dict()))
    return path


@pytest.fixture(scope="module")
def synthetic() -> SyntheticEpochs:
    return SyntheticEpochs(1, epochs_per_night=20, seed=3, channel_dropout=0.2)


@pytest.fixture(scope="module")
def tokenizer(synthetic: SyntheticEpochs) -> CaptionTokenizer:
    return CaptionTokenizer.from_corpus(synthetic.caption_corpus())


@pytest.fixture(scope="module")
def model(tokenizer: CaptionTokenizer) -> SleepLM:
    torch.manual_seed(0)
    return SleepLM(config_from_dict(micro_config_dict()), tokenizer)


@pytest.fixture(scope="module")
def batch(synthetic: SyntheticEpochs, tokenizer: CaptionTokenizer) -> dict[str, Any]:
    collate = SleepLMCollator(tokenizer, list(MODALITIES[:5]), max_len=32, seed=0)
    return collate([synthetic[i] for i in range(3)])


# --- configs -----------------------------------------------------------------------------


def test_named_configs_load() -> None:
    tiny = load_config("sleeplm-tiny")
    assert tiny.name == "sleeplm-tiny" and tiny.signal.patch_size == 16
    assert load_config("sleeplm-base").decoder.layers > tiny.decoder.layers


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    data = micro_config_dict()
    data["signal"]["widht"] = 32
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"signal\.widht: unknown key") as info:
        load_config(path)
    assert str(path) in info.value.one_line()


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("signal", "layers", "2", r"signal\.layers: expected int"),
        ("signal", "layers", True, r"signal\.layers: expected int"),
        ("decoder", "restrict_vocab", 1, r"decoder\.restrict_vocab: expected bool"),
        ("text", "backbone", "bert", r"text\.backbone: 'bert' is not one of"),
        ("train", "modalities", ["brain", 3], r"train\.modalities\[1\]: expected str"),
        (None, "loss", 1.0, r"loss: expected an object"),
        (None, "tokenizer", "x", r"tokenizer: unknown key"),
    ],
)
def test_wrong_types_raise(section: str | None, key: str, value: object, message: str) -> None:
    data = micro_config_dict()
    (data[section] if section else data)[key] = value
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_int_accepted_for_float_and_cross_field_checks() -> None:
    data = micro_config_dict()
    data["train"]["lr"] = 1  # JSON has no float/int distinction for whole numbers
    assert config_from_dict(data).train.lr == 1.0
    data["signal"]["heads"] = 3
    with pytest.raises(ConfigError, match="signal.width"):
        config_from_dict(data)


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")
def test_base_is_published_scale() -> None:
    with torch.device("meta"):
        base = SleepLM(load_config("sleeplm-base"), CaptionTokenizer())
    total = base.param_counts()["total"]
    assert 370e6 < total < 400e6, total


# --- tokenizer and text tower --------------------------------------------------------------


def test_tokenizer_layout_and_round_trip(tokenizer: CaptionTokenizer) -> None:
    tokens, targets = tokenizer.encode_caption("stage N2, no events", prompt="stage", max_len=32)
    n_prompt = len(tokenizer.encode("stage"))
    assert tokens[n_prompt] == BOS_ID and tokens[-1] == EOS_ID
    assert targets[: n_prompt + 1] == [PAD_ID] * (n_prompt + 1)
    assert targets[n_prompt + 1 :] == tokens[n_prompt + 1 :]
    assert tokenizer.decode(tokens[n_prompt + 1 :]) == "Stage N2, no events"
    assert len(tokenizer) < 200  # restricted to the synthetic captions
    assert CaptionTokenizer(tokenizer.tokens).tokens == tokenizer.tokens


def test_text_cache_and_projection(model: SleepLM) -> None:
    texts = ["stage N2, no events", "heart rate about 60 bpm with regular rhythm"]
    first = model.text.encode_texts(texts)
    assert first.shape == (2, 384)
    assert torch.allclose(first.norm(dim=1), torch.ones(2), atol=1e-5)
    n = len(model.text._cache)
    again = model.text.encode_texts(texts[::-1])
    assert len(model.text._cache) == n and torch.equal(again, first.flip(0))
    assert model.encode_text(texts).shape == (2, 16)


def test_precompute_captions_of_a_dataset(model: SleepLM, synthetic: SyntheticEpochs) -> None:
    n = model.text.precompute_captions((synthetic[i] for i in range(4)), limit=3)
    assert n >= len({c for i in range(3) for c in synthetic.captions(i).values()})
    assert synthetic.captions(0)["brain"] in model.text._cache


@pytest.mark.slow
def test_native_minilm_matches_transformers() -> None:
    from sleeplm_core.model.config import TextEncoderConfig
    from sleeplm_core.model.text_encoder import TextEncoder

    texts = ["stage N2 with sleep spindles", "an obstructive apnea with airflow cessation"]
    native = TextEncoder(TextEncoderConfig(), 8).embed(texts)
    hf = TextEncoder(TextEncoderConfig(backbone="transformers"), 8).embed(texts)
    assert torch.allclose(native, hf, atol=1e-5)


# --- forward, decoding, missing channels ---------------------------------------------------


def test_output_shapes(model: SleepLM, batch: dict[str, Any]) -> None:
    b, length = batch["caption_tokens"].shape
    model.train()
    out = model(
        batch["signal"],
        batch["mask"],
        texts=batch["texts"],
        caption_tokens=batch["caption_tokens"],
        modality_ids=batch["modality_ids"],
    )
    assert out["signal_features"].shape == (b, 16)
    assert out["text_features"].shape == (b, 16)
    assert out["caption_logits"].shape == (b, length, len(model.tokenizer))
    assert out["recon"].shape == (b, 12, 1920)
    assert out["patch_mask"].shape == (b, 12, 120)
    assert out["logit_scale"].ndim == 0
    # masked signal modelling hides ~25 % of the present channels' patches, none of the others
    hidden = out["patch_mask"].float().mean(-1)
    assert torch.all(hidden[~batch["mask"]] == 0)
    assert torch.allclose(hidden[batch["mask"]], torch.tensor(0.25), atol=0.01)
    model.eval()
    assert not model(batch["signal"], batch["mask"])["patch_mask"].any()


def test_every_modality_prefix(model: SleepLM, batch: dict[str, Any]) -> None:
    model.eval()
    memory = model.signal(batch["signal"], batch["mask"])["decoder_tokens"]
    b, length = batch["caption_tokens"].shape
    per_prefix = []
    for modality in MODALITIES:
        mods = torch.full((b,), modality_id(modality))
        logits = model.decoder(memory, batch["caption_tokens"], mods)
        assert logits.shape == (b, length, len(model.tokenizer))
        per_prefix.append(logits)
        captions = model.generate(batch["signal"], batch["mask"], modality, beam=1, max_len=3)
        assert len(captions) == b and all(isinstance(c, str) for c in captions)
    assert not torch.allclose(per_prefix[0], per_prefix[1])  # the prefix conditions the text


def test_beam_search_and_prompt(model: SleepLM, batch: dict[str, Any]) -> None:
    greedy = model.generate(batch["signal"][:1], batch["mask"][:1], "brain", beam=1, max_len=6)
    beam = model.generate(batch["signal"][:1], batch["mask"][:1], "brain", beam=3, max_len=6)
    prompted = model.generate(
        batch["signal"][:1], batch["mask"][:1], "heart", prompt="heart rate", beam=2, max_len=6
    )
    assert all(isinstance(c, str) for c in greedy + beam + prompted)
    both = model.generate_modalities(
        batch["signal"], batch["mask"], ["brain", "heart"], beam=2, max_len=4
    )
    assert set(both) == {"brain", "heart"} and len(both["heart"]) == len(batch["texts"])
    with pytest.raises(ValueError, match="unknown modality"):
        model.generate(batch["signal"][:1], batch["mask"][:1], "kidney")


def test_beam_search_beats_greedy_on_a_known_table(
    model: SleepLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Greedy: A (0.6) then [EOS] (0.5), p = 0.30; beam: B (0.4) then [EOS] (0.9), p = 0.36."""
    a, b = 4, 5
    table = {BOS_ID: {a: 0.6, b: 0.4}, a: {EOS_ID: 0.5, a: 0.25, b: 0.25},
             b: {EOS_ID: 0.9, a: 0.05, b: 0.05}}  # fmt: skip
    vocab = len(model.tokenizer)

    def fake_next_logprobs(
        memory: torch.Tensor, tokens: torch.Tensor, mods: torch.Tensor, *_: object
    ) -> torch.Tensor:
        out = torch.full((tokens.shape[0], vocab), float("-inf"))
        for row, last in enumerate(tokens[:, -1].tolist()):
            for tok, p in table[last].items():
                out[row, tok] = torch.tensor(p).log()
        return out

    monkeypatch.setattr(model.decoder, "_next_logprobs", fake_next_logprobs)
    memory = torch.zeros(1, 4, 16)
    greedy = model.decoder.greedy(memory, [BOS_ID], torch.zeros(1, dtype=torch.long), 5)
    beam = model.decoder.beam_search(
        memory.expand(3, -1, -1), [BOS_ID], torch.zeros(3, dtype=torch.long), beam=2, max_new=5
    )
    assert greedy == [[a]] and beam == [[b]] * 3


def test_repetition_guard_blocks_loops_and_banned_ids(
    model: SleepLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder that always prefers token a, then b, then c: unguarded it loops on a."""
    a, b, c, d = 4, 5, 6, 7
    vocab = len(model.tokenizer)

    def fake_forward(
        memory: torch.Tensor, tokens: torch.Tensor, mods: torch.Tensor, mask: object = None
    ) -> torch.Tensor:
        out = torch.full((tokens.shape[0], tokens.shape[1], vocab), -10.0)
        out[..., a], out[..., b], out[..., c], out[..., d] = 4.0, 3.0, 2.0, 1.0
        return out

    monkeypatch.setattr(model.decoder, "forward", fake_forward)
    monkeypatch.setattr(model.decoder, "free_ids", frozenset())  # ids 4-7 may be digits here
    memory, mods = torch.zeros(2, 4, 16), torch.zeros(2, dtype=torch.long)
    loop = model.decoder.greedy(memory, [BOS_ID], mods, 8, no_repeat_ngram=0)
    assert loop == [[a] * 8] * 2
    for ids in (
        model.decoder.greedy(memory, [BOS_ID], mods, 12)[0],
        model.decoder.beam_search(memory, [BOS_ID], mods, beam=3, max_new=12)[0],
    ):
        assert 0 < len(ids) <= 12
        assert all(x != y for x, y in zip(ids, ids[1:], strict=False))  # no immediate repeat
        grams = [tuple(ids[i : i + 3]) for i in range(len(ids) - 2)]
        assert len(grams) == len(set(grams))  # no repeated 3-gram
    banned = model.decoder.greedy(memory, [BOS_ID], mods, 6, banned=frozenset({a}))[0]
    assert a not in banned and banned[:2] == [b, c]


def test_blocked_ids_counts_only_the_generated_part() -> None:
    from sleeplm_core.model.decoder import blocked_ids

    assert blocked_ids([2, 9, 8, 9], start=1, n=2) == {9, 8}  # last piece; "9" was followed by 8
    assert blocked_ids([2, 9, 8, 9], start=1, n=3) == {9}
    assert blocked_ids([9, 8, 9, 8], start=2, n=3) == {8}  # the prompt "9 8" does not count
    assert blocked_ids([2, 4, 5, 6], start=1, n=2) == {6}
    # sentence by sentence: "9 8" of an earlier sentence (ended by 7) may come back
    assert blocked_ids([9, 8, 7, 9], start=0, n=2, sentence_ends=frozenset({7})) == {9}
    assert blocked_ids([9, 8, 7, 9], start=0, n=2) == {9, 8}
    assert blocked_ids([9, 8, 7], start=0, n=2, sentence_ends=frozenset({7})) == {7}
    assert blocked_ids([2], start=1, n=3, sentence_ends=frozenset({7})) == set()  # first step
    # digits and "%" are never blocked themselves; the word after "8 %" still may not repeat
    assert blocked_ids([8, 5, 4, 8, 5], start=0, n=3, free=frozenset({8, 5})) == {4}
    assert blocked_ids([8, 5, 4, 8, 5], start=0, n=3) == {4, 5}


def test_missing_channels_train_and_infer_without_nan(
    model: SleepLM, batch: dict[str, Any]
) -> None:
    from sleeplm_core.losses import SleepLMLoss

    signal, mask = batch["signal"].clone(), batch["mask"].clone()
    mask[0] = False
    mask[0, 6] = True  # one EEG channel only
    mask[1] = False  # nothing at all
    signal = signal * mask[..., None]
    model.train()
    model.zero_grad()
    out = model(
        signal,
        mask,
        text_emb=model.text.encode_texts(batch["texts"]),
        caption_tokens=batch["caption_tokens"],
        modality_ids=batch["modality_ids"],
    )
    loss_fn = SleepLMLoss(model.cfg.loss)
    losses = loss_fn(out, {**batch, "signal": signal, "mask": mask})
    loss_fn.total(losses).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name
    assert torch.isfinite(model.encode_signal(signal, mask)).all()


def test_checkpoint_state_leaves_out_frozen_minilm(model: SleepLM) -> None:
    keys = model.checkpoint_state_dict().keys()
    assert not any(k.startswith("text.backbone.") for k in keys)
    assert "text.proj.weight" in keys and "logit_scale" in keys


def test_unfrozen_top_layer_trains_and_is_saved(tokenizer: CaptionTokenizer) -> None:
    data = micro_config_dict()
    data["text"]["unfreeze_top_layers"] = 1
    m = SleepLM(config_from_dict(data), tokenizer)
    assert not m.text.frozen
    feats = m.encode_text(["stage W, no events"])  # no_grad path still works
    assert feats.shape == (1, 16)
    out = m(torch.zeros(1, 12, 1920), torch.ones(1, 12, dtype=torch.bool), texts=["stage W"])
    out["text_features"].sum().backward()
    layers = m.text.backbone.encoder.layer
    assert layers[5].output.dense.weight.grad is not None
    assert layers[0].output.dense.weight.grad is None
    keys = m.checkpoint_state_dict().keys()
    assert "text.backbone.encoder.layer.5.output.dense.weight" in keys
    assert not any(k.startswith("text.backbone.encoder.layer.0.") for k in keys)
    assert not m.text._cache  # unfrozen: nothing is cached


def test_mask_prefix_conditions_the_decoder_on_the_channels(tokenizer: CaptionTokenizer) -> None:
    data = micro_config_dict()
    data["decoder"]["mask_prefix"] = True
    torch.manual_seed(0)
    m = SleepLM(config_from_dict(data), tokenizer)
    assert m.decoder.mask_embed is not None
    memory = torch.randn(2, 4, 16)
    tokens = torch.full((2, 3), BOS_ID)
    mods = torch.zeros(2, dtype=torch.long)
    full = torch.ones(2, 12, dtype=torch.bool)
    eeg = torch.zeros(2, 12, dtype=torch.bool)
    eeg[:, 6] = True
    a, b = m.decoder(memory, tokens, mods, mask=full), m.decoder(memory, tokens, mods, mask=eeg)
    assert not torch.allclose(a, b)
    signal = torch.randn(2, 12, 1920)
    assert len(m.generate(signal, eeg, "brain", beam=2, max_len=4)) == 2
    # new runs of sleeplm-tiny train with it; a checkpoint whose config predates it loads
    # without it (the bundled one: no mask_embed weights to miss)
    assert load_config("sleeplm-tiny").decoder.mask_prefix is True
    old = micro_config_dict()
    del old["decoder"]["mask_prefix"]
    assert config_from_dict(old).decoder.mask_prefix is False


def test_collator_draws_bank_wordings_and_absent_modality_answers(
    synthetic: SyntheticEpochs, tokenizer: CaptionTokenizer
) -> None:
    from sleeplm_core.grounding import absent_text
    from sleeplm_core.model.phrases import training_wordings
    from sleeplm_core.model.prompts import EVENT_TYPES

    collate = SleepLMCollator(tokenizer, list(MODALITIES[:5]), max_len=32, seed=1, absent_prob=1.0)
    sample = dict(synthetic[0])
    mask = np.zeros(12, bool)
    mask[6] = True  # C3 only: heart, respiratory and somatic are absent
    sample["mask"] = torch.from_numpy(mask)
    drawn: set[str] = set()
    for _ in range(20):
        out = collate([sample])
        assert out["texts"][0] == absent_text(out["modalities"][0])
        assert out["modalities"][0] in ("heart", "respiratory", "somatic")
        drawn.update(out["loc_phrases"])
    bank = {w for t in EVENT_TYPES for w in training_wordings(t.name)}
    canonical = {p for t in EVENT_TYPES for p in t.phrases}
    assert drawn <= bank and drawn - canonical  # fresh draws reach beyond the canonical phrases


def test_augment_window_applies_real_lab_perturbations() -> None:
    from sleeplm_core.train import augment

    rng = np.random.default_rng(0)
    x = rng.normal(0, 20, (12, 1920)).astype(np.float32)
    mask = np.ones(12, bool)
    mask[11] = False
    x[11] = 0.0
    seen: set[str] = set()
    for _ in range(60):
        y, done = augment.augment_window(x, mask, rng)
        seen.update(done)
        assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
        assert not y[11].any()  # absent slots stay empty
    assert seen == set(augment.P_EACH)
    monkey = dict.fromkeys(augment.P_EACH, 0.0) | {"polarity": 1.0}
    old = dict(augment.P_EACH)
    try:
        augment.P_EACH.update(monkey)
        y, done = augment.augment_window(x, mask, rng)
    finally:
        augment.P_EACH.update(old)
    assert done == ["polarity"]
    np.testing.assert_allclose(y[list(augment.EXG)], -x[list(augment.EXG)], rtol=1e-6)
    np.testing.assert_allclose(y[0], x[0], rtol=1e-6)  # ECG untouched


def test_rotary_with_one_roll_is_the_half_split_rotation() -> None:
    from sleeplm_core.model.signal_encoder import apply_rotary, rotary_tables

    cos, signed_sin = rotary_tables(7, 8, 10000.0)
    x = torch.randn(3, 2, 7, 8)
    a, b = x.chunk(2, dim=-1)
    sin = torch.cat([signed_sin[:, 4:], signed_sin[:, 4:]], dim=-1)  # the unsigned table
    want = x * cos + torch.cat([-b, a], dim=-1) * sin
    torch.testing.assert_close(apply_rotary(x, cos, signed_sin), want)
    # position 0 is the identity; the rotation keeps each pair's norm
    torch.testing.assert_close(apply_rotary(x, cos, signed_sin)[..., 0, :], x[..., 0, :])
    pair = lambda t: t[..., :4] ** 2 + t[..., 4:] ** 2  # noqa: E731
    torch.testing.assert_close(pair(apply_rotary(x, cos, signed_sin)), pair(x))


def test_in_place_rotary_and_the_heads_layout_rotate_as_the_reference() -> None:
    from sleeplm_core.model.signal_encoder import apply_rotary, apply_rotary_, rotary_tables

    cos, signed_sin = rotary_tables(7, 8, 10000.0)
    x = torch.randn(3, 7, 2, 8)  # (N, L, heads, head_dim): the attention's layout
    want = apply_rotary(x.transpose(1, 2), cos, signed_sin).transpose(1, 2)
    got = apply_rotary_(x.clone(), cos[:, None], signed_sin[:, None])
    torch.testing.assert_close(got, want)


def test_inference_rotates_in_place_to_the_training_paths_result() -> None:
    from sleeplm_core.model.config import SignalEncoderConfig
    from sleeplm_core.model.signal_encoder import SignalEncoder

    torch.manual_seed(0)
    enc = SignalEncoder(SignalEncoderConfig(layers=2)).eval()
    x, mask = torch.randn(3, 12, 1920), torch.ones(3, 12, dtype=torch.bool)
    with torch.enable_grad():  # autograd on: out-of-place rotary
        want = enc(x, mask)["pooled"].detach()
    with torch.inference_mode():
        got = enc(x, mask)["pooled"]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_attention_to_one_key_is_its_value_without_the_kernel() -> None:
    import torch.nn.functional as F

    from sleeplm_core.model.signal_encoder import MultiHeadAttention

    torch.manual_seed(0)
    attn = MultiHeadAttention(64, 4).eval()
    x = torch.randn(50, 1, 64)  # 50 (window, patch) rows, one channel each
    with torch.no_grad():
        q = attn.q(x).view(50, 1, 4, 16).transpose(1, 2)
        k, v = (t.view(50, 1, 4, 16).transpose(1, 2) for t in attn.kv(x).chunk(2, dim=-1))
        want = attn.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(50, 1, 64))
        torch.testing.assert_close(attn(x), want)
