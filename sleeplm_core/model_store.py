"""Where the user's models live, and what is there: bundled, imported and fine-tuned.

Qt-free and torch-free (it reads ``meta_NNNNNN.json`` files only). The CLI
(``sleeplm models list``) and the viewer's Model menu both use :func:`default_models_dir`:
``$SLEEPLM_MODELS_DIR``, else ``~/.local/share/SleepLM/models``. Each sub-folder with a
complete checkpoint is one model.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ENV_MODELS_DIR: Final = "SLEEPLM_MODELS_DIR"
_META_RE: Final = re.compile(r"^meta_(\d{6,})\.json$")


def default_models_dir() -> Path:
    """``$SLEEPLM_MODELS_DIR``, else ``~/.local/share/SleepLM/models`` (not created here)."""
    env = os.environ.get(ENV_MODELS_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "SleepLM" / "models"


def checkpoint_steps(folder: Path) -> list[int]:
    """Steps of the complete checkpoints (meta + model present) in ``folder``, ascending."""
    if not folder.is_dir():
        return []
    steps = []
    for p in folder.iterdir():
        m = _META_RE.match(p.name)
        if m and (folder / f"model_{m.group(1)}.safetensors").is_file():
            steps.append(int(m.group(1)))
    return sorted(steps)


@dataclass(frozen=True)
class StoredModel:
    """One checkpoint folder: its name, family, kind and where it came from."""

    name: str
    path: Path
    family: str  # "sleeplm" (ours) or "published" (SleepLM-Base)
    kind: str  # "bundled", "imported", "fine-tuned" or "trained"
    config: str
    step: int
    source: str


def read_model(folder: Path, *, bundled: bool = False) -> StoredModel | None:
    """The model in ``folder`` (its newest complete step), or None."""
    steps = checkpoint_steps(folder)
    if not steps:
        return None
    try:
        meta: Any = json.loads((folder / f"meta_{steps[-1]:06d}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    cfg: dict[str, Any] = meta["config"] if isinstance(meta.get("config"), dict) else {}
    if bundled:
        kind, source = "bundled", "ships with the viewer"
    elif meta.get("imported_from"):
        kind, source = "imported", f"imported from {meta['imported_from']}"
    elif meta.get("finetuned_from") or meta.get("finetune"):
        kind, source = "fine-tuned", f"fine-tuned from {meta.get('finetuned_from', '?')}"
    else:
        kind, source = "trained", "trained here"
    family, name = str(meta.get("family", "sleeplm")), str(cfg.get("name", "?"))
    return StoredModel(
        folder.name, folder, family, kind, name, int(meta.get("step", steps[-1])), source
    )


def list_stored(
    models_dir: Path | None = None, bundled_dir: Path | None = None
) -> list[StoredModel]:
    """The bundled model, then every model in the user's folder (by name)."""
    from sleeplm_core.resources import resource_path

    out = []
    bundled = read_model(bundled_dir or resource_path("models"), bundled=True)
    if bundled is not None:
        out.append(bundled)
    folder = models_dir or default_models_dir()
    if folder.is_dir():
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.name.startswith("."):
                model = read_model(sub)
                if model is not None:
                    out.append(model)
    return out
