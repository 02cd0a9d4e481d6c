"""Checkpoints of the published family: our usual safetensors + JSON meta, never a pickle.

A published-family checkpoint folder is an ordinary SleepLM checkpoint
(``model_NNNNNN.safetensors`` + ``meta_NNNNNN.json``, :mod:`sleeplm_core.train.checkpoint`,
which writes and checks ``weights_sha256`` and refuses non-finite weights) whose meta carries
``"family": "published"`` and the configuration in the authors' keyword format under
``"config"``; loading also checks every key and shape against that configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sleeplm_core.errors import CheckpointError, ConfigError
from sleeplm_core.published.config import FAMILY, PublishedConfig, config_from_dict
from sleeplm_core.published.model import PublishedCoCa


def is_published(meta: dict[str, Any]) -> bool:
    """Whether checkpoint metadata describes a published-family model."""
    return meta.get("family") == FAMILY


def save_published(
    out_dir: str | Path,
    model: PublishedCoCa,
    meta: dict[str, Any] | None = None,
    *,
    step: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    keep_last: int | None = 3,
) -> Path:
    """Write a published-family checkpoint (weights, meta with family, config and SHA-256).

    Returns
    -------
    Path
        The meta file written.
    """
    from sleeplm_core.train.checkpoint import save_checkpoint

    # safetensors refuses tensors that share storage (the shared channel rotary frequencies)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    full = {**(meta or {}), "family": FAMILY, "config": model.cfg.to_dict()}
    return save_checkpoint(out_dir, step, state, optimizer, full, keep_last=keep_last)


def config_of(meta: dict[str, Any], where: str | Path) -> PublishedConfig:
    """The configuration a checkpoint's meta describes.

    Raises
    ------
    CheckpointError
        When the meta holds no valid published configuration.
    """
    try:
        return config_from_dict(meta["config"], name=str(meta["config"].get("name", "custom")))
    except (KeyError, TypeError, AttributeError, ConfigError) as exc:
        problem = exc.problem if isinstance(exc, ConfigError) else f"no config ({exc})"
        raise CheckpointError(
            where, f"metadata does not describe a published model: {problem}"
        ) from None


def check_layout(tensors: dict[str, Tensor], model: PublishedCoCa, where: str | Path) -> None:
    """Refuse weights whose keys or shapes do not fit ``model`` (one-line error)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for key, shape in expected.items():
        if key not in tensors:
            raise CheckpointError(where, f"weight {key} is missing ({len(expected)} expected)")
        got = tuple(tensors[key].shape)
        if got != shape:
            raise CheckpointError(
                where, f"weight {key} has shape {list(got)}, expected {list(shape)}"
            )
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise CheckpointError(where, f"unexpected weight {extra[0]} (not in this configuration)")


def load_published(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[PublishedCoCa, dict[str, Any]]:
    """Build the model of a published-family checkpoint folder, in eval mode.

    Raises
    ------
    CheckpointError
        When the files are missing or corrupt, the SHA-256 differs from the meta's, a weight
        is not finite, or the weights do not fit the configuration.
    """
    from sleeplm_core.train.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(path)
    cfg = config_of(meta, path)
    with torch.device("meta"):
        skeleton = PublishedCoCa(cfg)
    check_layout(tensors, skeleton, path)
    model = PublishedCoCa(cfg)
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), meta
