"""Checkpoints of the published family: our usual safetensors + JSON meta, never a pickle.

A published-family checkpoint folder is an ordinary SleepLM checkpoint
(``model_NNNNNN.safetensors`` + ``meta_NNNNNN.json``, :mod:`sleeplm_core.train.checkpoint`)
whose meta carries ``"family": "published"``, the configuration in the authors' keyword
format under ``"config"``, and ``"weights_sha256"`` (the SHA-256 of the safetensors file),
checked at every load together with the finiteness of every weight.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sleeplm_core.errors import CheckpointError, ConfigError
from sleeplm_core.io.atomic import atomic_write_bytes
from sleeplm_core.published.config import FAMILY, PublishedConfig, config_from_dict
from sleeplm_core.published.model import PublishedCoCa


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 8 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    meta_path = save_checkpoint(out_dir, step, state, optimizer, full, keep_last=keep_last)
    weights = meta_path.parent / f"model_{step:06d}.safetensors"
    written = json.loads(meta_path.read_text(encoding="utf-8"))
    written["weights_sha256"] = sha256_of(weights)
    atomic_write_bytes(meta_path, json.dumps(written, indent=1).encode("utf-8"),
                       error=CheckpointError)  # fmt: skip
    return meta_path


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


def check_weights(tensors: dict[str, Tensor], model: PublishedCoCa, where: str | Path) -> None:
    """Refuse weights whose keys, shapes or values do not fit ``model`` (one-line error)."""
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
    for key, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(where, f"weight {key} holds NaN or infinite values")


def load_published(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[PublishedCoCa, dict[str, Any]]:
    """Build the model of a published-family checkpoint folder, in eval mode.

    Raises
    ------
    CheckpointError
        When the files are missing or corrupt, the SHA-256 differs from the meta's, or the
        weights do not fit the configuration.
    """
    from sleeplm_core.train.checkpoint import _load_tensors, load_meta, resolve

    folder, step = resolve(path)
    meta = load_meta(folder / f"meta_{step:06d}.json")
    weights = folder / f"model_{step:06d}.safetensors"
    cfg = config_of(meta, folder)
    want = meta.get("weights_sha256")
    if want is not None and (not weights.is_file() or sha256_of(weights) != want):
        raise CheckpointError(
            weights, "SHA-256 differs from the one in its meta (changed or damaged)"
        )
    tensors, _ = _load_tensors(weights)
    with torch.device("meta"):
        skeleton = PublishedCoCa(cfg)
    check_weights(tensors, skeleton, weights)
    model = PublishedCoCa(cfg)
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), meta
