"""A tiny published-family model for tests (random weights; the CLIP vocabulary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY: dict[str, Any] = {
    "name": "published-tiny-test",
    "embed_dim": 16,
    "multimodal_cfg": {"width": 32, "context_length": 256, "mlp_ratio": 2, "layers": 1, "heads": 2},
    "biosignals_cfg": {
        "architecture": "pure_transformer", "input_channels": 10, "signal_length": 1920,
        "sampling_rate": 64, "patch_size": 16, "conv_embed_dim": 8, "num_temporal_layers": 1,
        "activation": "swiglu", "norm_type": "rmsnorm", "mlp_bias": False,
        "share_channel_rope": True, "transformer_layers": 1, "transformer_width": 32,
        "transformer_heads": 2, "mlp_ratio": 2.0, "pool_type": "attn", "dropout": 0.0,
        "decoder_tokens": 4,
    },
    "text_cfg": {"context_length": 256, "vocab_size": 49408, "layers": 1, "heads": 2, "width": 32,
                 "embed_cls": True, "output_tokens": True},
    "prefix_len": 2,
    "num_caption_channels": 5,
    "decoder_type": "cross_attention",
}  # fmt: skip

REF = Path(__file__).resolve().parents[3] / "shared" / "data" / "sleeplm-base-reference"


def tiny_pt(path: Path, *, prefix: str = "module.", seed: int = 0, wrap: bool = True) -> Path:
    """Save a tiny model's state dict the way the authors' checkpoint is saved."""
    import torch

    from sleeplm_core.published.config import config_from_dict
    from sleeplm_core.published.model import PublishedCoCa

    torch.manual_seed(seed)
    model = PublishedCoCa(config_from_dict(TINY))
    state = {prefix + k: v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 1} if wrap else state, path)
    return path


def tiny_imported(folder: Path) -> Path:
    """A tiny published-family checkpoint folder made through the import path."""
    import json

    from sleeplm_core.published.convert import import_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    out = folder / "tiny-imported"
    if not out.exists():
        import_checkpoint(tiny_pt(folder / "tiny.pt"), out, cfg)
    return out
