"""Import the authors' ``model_checkpoint.pt`` once, into our safetensors checkpoint.

``sleeplm models import model_checkpoint.pt --out DIR`` (or :func:`import_checkpoint`) is the
only place in the project that reads a pickle, and it reads it with
``torch.load(weights_only=True)``: tensors and plain containers only, any other object (a
class instance, a function) is refused before anything runs. A bare state dict or
``{"state_dict": ...}`` is accepted, DistributedDataParallel's ``module.`` prefix is stripped,
every key, shape and value is checked against the configuration, and the result is written with
:func:`~sleeplm_core.published.checkpoint.save_published` (SHA-256 in the meta), so every later
load is safetensors only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sleeplm_core.errors import CheckpointError
from sleeplm_core.published.checkpoint import check_layout, save_published
from sleeplm_core.published.config import PublishedConfig, load_config
from sleeplm_core.published.model import PublishedCoCa
from sleeplm_core.train.meta_schema import check_weights

DEFAULT_CONFIG = "sleeplm-base-published"


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The state dict inside an authors'-style ``.pt`` file, without running any pickled code.

    Raises
    ------
    CheckpointError
        When the file is missing, not a torch file, holds anything but tensors and plain
        containers, or holds no state dict.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(p, "file is missing (or not a regular file)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        if "Weights only load failed" in str(exc) or "Unsupported global" in str(exc):
            first = (
                "it holds objects other than tensors and plain containers (refused, nothing run)"
            )
        raise CheckpointError(p, f"not a plain PyTorch weights file: {first[:200]}") from None
    state: Any = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not state:
        raise CheckpointError(
            p, "no state dict inside (expected a dict of tensors or {'state_dict': ...})"
        )
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise CheckpointError(p, f"state dict entry {str(key)[:80]!r} is not a named tensor")
        out[key.removeprefix("module.")] = value
    return out


def import_checkpoint(
    pt_path: str | Path, out_dir: str | Path, config: str | Path | PublishedConfig | None = None
) -> Path:
    """Convert ``pt_path`` into a safetensors checkpoint folder ``out_dir``; return its meta path.

    Raises
    ------
    CheckpointError
        For an unreadable or refused file, a missing or unexpected key, a wrong shape or a
        non-finite weight (the first problem is named).
    ConfigError
        For an unknown or invalid configuration.
    """
    cfg = config if isinstance(config, PublishedConfig) else load_config(config or DEFAULT_CONFIG)
    tensors = read_state_dict(pt_path)
    with torch.device("meta"):
        skeleton = PublishedCoCa(cfg)
    check_layout(tensors, skeleton, pt_path)
    source_sha = check_weights(tensors, {}, Path(pt_path))  # all finite; the file's SHA-256
    model = PublishedCoCa(cfg)
    model.load_state_dict(tensors, strict=True)
    meta = {
        "imported_from": Path(pt_path).name,
        "source_sha256": source_sha,
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_params": sum(p.numel() for p in model.parameters()),
    }
    return save_published(out_dir, model, meta)
