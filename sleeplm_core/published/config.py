"""Configuration of the published SleepLM-Base family, read from the authors' config JSON.

The authors build their model with open_clip-style keyword arguments (``embed_dim``,
``biosignals_cfg``, ``text_cfg``, ``multimodal_cfg``, ``prefix_len``,
``num_caption_channels``, ``decoder_type``); this module reads exactly those, so the JSON of
their repository (``sleep_coca_base_dualtransformer.json``) or of a reduced parity model loads
unchanged. Keys this port does not implement (another architecture, a concat decoder, a HF
text tower) are refused with a :class:`~sleeplm_core.errors.ConfigError` rather than ignored.

Named configurations live in ``sleeplm_core/published/configs/``: ``sleeplm-base-published``
is the released model (385,408,033 parameters; ``num_caption_channels=5, prefix_len=2`` as
the checkpoint needs, where the JSON in their repository says 12 and 1).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sleeplm_core.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
FAMILY = "published"
"""The ``family`` field of the checkpoint metadata of this model family."""


@dataclass(frozen=True)
class SignalTowerConfig:
    """The biosignal tower (``biosignals_cfg``): per-channel patches, dual attention."""

    input_channels: int = 10  # their 10 channels, in their order
    signal_length: int = 1920  # 30 s at 64 Hz
    sampling_rate: int = 64
    patch_size: int = 16  # samples per patch (0.25 s)
    conv_embed_dim: int = 256  # Conv1d patch embedding width
    num_temporal_layers: int = 1  # temporal attention layers per block
    mlp_bias: bool = False
    share_channel_rope: bool = True  # one learnable channel RoPE shared by all blocks
    transformer_layers: int = 3  # dual (channel + temporal) blocks
    transformer_width: int = 768
    transformer_heads: int = 12
    mlp_ratio: float = 3.0
    dropout: float = 0.1
    decoder_tokens: int = 32  # queries of the decoder attention pooler

    @property
    def num_patches(self) -> int:
        """Patches per channel of one window."""
        return self.signal_length // self.patch_size


@dataclass(frozen=True)
class TextTowerConfig:
    """The CLIP text tower (``text_cfg``), with a CLS embedding appended CoCa-style."""

    context_length: int = 256
    vocab_size: int = 49408
    width: int = 768
    heads: int = 12
    layers: int = 12
    mlp_ratio: float = 4.0
    pad_id: int = 0


@dataclass(frozen=True)
class DecoderConfig:
    """The cross-attention caption decoder (``multimodal_cfg``)."""

    width: int = 768
    heads: int = 12
    layers: int = 12
    mlp_ratio: float = 4.0
    context_length: int = 256


@dataclass(frozen=True)
class PublishedConfig:
    """The whole published model.

    Attributes
    ----------
    name : str
        Configuration name (``sleeplm-base-published`` for the release).
    embed_dim : int
        Size of the shared signal/text space (512 in the release).
    prefix_len : int
        Modality-prefix slots of the decoder (2 in the release; unused slots take the
        learned padding embedding).
    num_caption_channels : int
        Modality embeddings: brain 0, heart 1, respiratory 2, position_muscle 3, stage_event 4.
    """

    name: str
    embed_dim: int
    signal: SignalTowerConfig
    text: TextTowerConfig
    decoder: DecoderConfig
    prefix_len: int = 2
    num_caption_channels: int = 5

    def to_dict(self) -> dict[str, Any]:
        """The configuration in the authors' keyword format (round-trips through from_dict)."""
        sig = asdict(self.signal)
        sig.update(architecture="pure_transformer", activation="swiglu", norm_type="rmsnorm",
                   pool_type="attn")  # fmt: skip
        text = asdict(self.text)
        text.update(embed_cls=True, output_tokens=True)
        return {
            "name": self.name,
            "embed_dim": self.embed_dim,
            "biosignals_cfg": sig,
            "text_cfg": text,
            "multimodal_cfg": asdict(self.decoder),
            "prefix_len": self.prefix_len,
            "num_caption_channels": self.num_caption_channels,
            "decoder_type": "cross_attention",
        }


# (key, required value) pairs of the authors' options that this port implements only one way
_FIXED_SIGNAL = {"architecture": "pure_transformer", "activation": "swiglu",
                 "norm_type": "rmsnorm", "pool_type": "attn"}  # fmt: skip
_FIXED_TEXT = {"embed_cls": True, "output_tokens": True}
_IGNORED = {"sampling_rate", "custom_text", "quick_gelu"}
MAX_SIZE = 1 << 20
"""Largest accepted size of any dimension (a typo must not allocate terabytes)."""


def _section(raw: dict[str, Any], key: str, cls: Any, fixed: dict[str, Any]) -> Any:
    sec = raw.get(key)
    if not isinstance(sec, dict):
        raise ConfigError(None, f"published config: {key!r} must be an object")
    sec = dict(sec)
    for k, want in fixed.items():
        if k in sec and sec.pop(k) != want:
            raise ConfigError(None, f"published config: {key}.{k} must be {want!r} in this port")
    fields = set(cls.__dataclass_fields__)
    unknown = sorted(set(sec) - fields - _IGNORED)
    if unknown:
        raise ConfigError(None, f"published config: unknown key {key}.{unknown[0]}")
    kwargs = {k: v for k, v in sec.items() if k in fields}
    for k, v in kwargs.items():
        default = cls.__dataclass_fields__[k].default
        if isinstance(default, bool) != isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(None, f"published config: {key}.{k} has the wrong type ({v!r})")
        if isinstance(default, int) and not isinstance(default, bool) and v != int(v):
            raise ConfigError(None, f"published config: {key}.{k} must be a whole number ({v!r})")
        low = 0 if k in ("dropout", "pad_id") else 1e-9
        if not isinstance(default, bool) and not low <= v <= MAX_SIZE:
            raise ConfigError(None, f"published config: {key}.{k} out of range ({v!r})")
    return cls(**{k: type(cls.__dataclass_fields__[k].default)(v) for k, v in kwargs.items()})


def config_from_dict(raw: dict[str, Any], name: str = "custom") -> PublishedConfig:
    """Build a :class:`PublishedConfig` from the authors' keyword dictionary.

    Raises
    ------
    ConfigError
        For a missing section, an unknown key, a wrong type or an option this port does not
        implement.
    """
    if not isinstance(raw, dict):
        raise ConfigError(None, "published config must be a JSON object")
    if raw.get("decoder_type", "cross_attention") != "cross_attention":
        raise ConfigError(None, "published config: only decoder_type 'cross_attention' is ported")
    signal = _section(raw, "biosignals_cfg", SignalTowerConfig, _FIXED_SIGNAL)
    text = _section(raw, "text_cfg", TextTowerConfig, _FIXED_TEXT)
    decoder = _section(raw, "multimodal_cfg", DecoderConfig, {})
    ints: dict[str, int] = {}
    for k, default in (("embed_dim", None), ("prefix_len", 0), ("num_caption_channels", 12)):
        v = raw.get(k, default)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_SIZE:
            raise ConfigError(None, f"published config: {k} must be a whole number ({v!r})")
        ints[k] = v
    if ints["embed_dim"] < 1:
        raise ConfigError(None, "published config: embed_dim must be positive")
    if (
        signal.transformer_width % signal.transformer_heads
        or (signal.transformer_width // signal.transformer_heads) % 2
    ):
        raise ConfigError(None, "published config: signal head size must be even and whole")
    return PublishedConfig(
        name=str(raw.get("name", name)), embed_dim=int(ints["embed_dim"]), signal=signal,
        text=text, decoder=decoder, prefix_len=int(ints["prefix_len"]),
        num_caption_channels=int(ints["num_caption_channels"]),
    )  # fmt: skip


def available_configs() -> list[str]:
    """Names of the shipped published configurations."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | Path) -> PublishedConfig:
    """A named configuration (``sleeplm-base-published``) or a JSON file of the authors' kind.

    Raises
    ------
    ConfigError
        When the name is unknown or the file unreadable or invalid.
    """
    p = Path(name_or_path)
    path = p if p.suffix == ".json" else CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = ", ".join(available_configs())
        raise ConfigError(path, f"no published config named {name_or_path!r} (known: {known})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(path, f"unreadable config ({exc.__class__.__name__})") from None
    try:
        return config_from_dict(raw, name=path.stem)
    except ConfigError as exc:
        raise ConfigError(path, exc.problem) from None
