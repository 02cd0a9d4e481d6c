"""Which SleepLM checkpoints the viewer can use: the bundled one, imported and fine-tuned ones.

Qt-free and torch-free: it only reads ``meta_NNNNNN.json`` files. The user's models folder is
the one ``sleeplm models`` uses (:func:`default_models_dir`: ``$SLEEPLM_MODELS_DIR`` or
``~/.local/share/SleepLM/models``), so an imported SleepLM-Base is listed beside fine-tunes.
The model in use is remembered by the GUI (QSettings) as
the entry's :attr:`ModelEntry.key`::

    entries = list_models(user_dir=models_dir)          # bundled first, then newest first
    folder = new_model_dir(models_dir, "night.edf")     # <models>/finetuned-20261125-1003-night
    entry = read_entry(folder)                          # None until a checkpoint is complete

A fine-tune writes a checkpoint directory (``model_NNNNNN.safetensors`` + ``meta_NNNNNN.json``)
and a ``finetune.json`` status file (``{"status": "complete" | "cancelled" | "failed", ...}``)
into a *new* folder; the bundled folder is never written to.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sleeplm_core.model_store import ENV_MODELS_DIR, checkpoint_steps

STATUS_FILE: Final[str] = "finetune.json"
BUNDLED_KEY: Final[str] = "bundled"
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ModelEntry:
    """One usable checkpoint.

    Attributes
    ----------
    name : str
        What the menu shows ("Bundled (sleeplm-tiny)", the folder name otherwise).
    path : Path
        The checkpoint directory (its newest complete step is used).
    step : int
        Training step of that checkpoint.
    created : datetime or None
        When its metadata was written (file time).
    base_model : str
        The config name, or for a fine-tune the checkpoint it started from.
    metrics : dict
        The last logged training metrics (``loss`` ...), possibly empty.
    bundled : bool
        Whether this is the checkpoint that ships with the viewer.
    status : str
        ``"complete"``; ``"cancelled"`` or ``"failed"`` for a run stopped early that kept
        its last complete checkpoint.
    mode : str
        ``"pretrained"``, ``"full"`` (fine-tuned weights) or ``"fewshot"`` (stage head).
    """

    name: str
    path: Path
    step: int
    created: datetime | None = None
    base_model: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    bundled: bool = False
    status: str = "complete"
    mode: str = "pretrained"

    @property
    def key(self) -> str:
        """What the GUI stores to remember the choice (``"bundled"`` or the folder path)."""
        return BUNDLED_KEY if self.bundled else str(self.path)

    def describe(self) -> str:
        """One line for a tooltip: step, loss, base, date, status."""
        parts = [f"step {self.step}"]
        loss = self.metrics.get("loss")
        if isinstance(loss, (int, float)):
            parts.append(f"loss {loss:.3f}")
        if self.base_model:
            parts.append(f"from {self.base_model}")
        if self.created is not None:
            parts.append(self.created.strftime("%Y-%m-%d %H:%M"))
        if self.status != "complete":
            parts.append(self.status)
        return ", ".join(parts)


def default_models_dir() -> Path:
    """``$SLEEPLM_MODELS_DIR``, else ``~/.local/share/SleepLM/models`` (not created here).

    The same folder as ``sleeplm models`` (:func:`sleeplm_core.model_store.default_models_dir`),
    so that an imported SleepLM-Base shows in the Model menu.
    """
    from sleeplm_core.model_store import default_models_dir as core_dir

    return core_dir()


def bundled_models_dir() -> Path:
    """The checkpoint folder shipped with the viewer (it may be empty)."""
    from sleeplm_core.resources import resource_path

    return resource_path("models")


def read_status(folder: Path) -> dict[str, Any]:
    """The fine-tune status file of ``folder`` (empty when absent or unreadable)."""
    try:
        data = json.loads((folder / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_status(folder: Path, **fields: Any) -> None:
    """Write ``finetune.json`` atomically (``status``, ``step``, ``message`` ...)."""
    tmp = folder / (STATUS_FILE + ".tmp")
    tmp.write_text(json.dumps(fields, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, folder / STATUS_FILE)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_entry(folder: str | Path, *, bundled: bool = False) -> ModelEntry | None:
    """The entry of a checkpoint folder, or ``None`` when it holds no complete checkpoint."""
    path = Path(folder)
    steps = checkpoint_steps(path)
    if not steps:
        return None
    step = steps[-1]
    meta_path = path / f"meta_{step:06d}.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        created: datetime | None = datetime.fromtimestamp(meta_path.stat().st_mtime)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    cfg = _dict(meta.get("config"))
    cfg_name = str(cfg.get("name", "sleeplm"))
    status = read_status(path)
    ft = _dict(meta.get("finetune"))
    base = str(ft.get("base_model") or meta.get("finetuned_from") or cfg_name)
    mode = str(ft.get("mode", "full" if "finetuned_from" in meta else "pretrained"))
    metrics = _dict(meta.get("metrics"))
    if mode == "fewshot":
        acc = _dict(meta.get("fewshot_head")).get("accuracy")
        metrics = {**metrics, "accuracy": acc} if acc is not None else metrics
    name = f"Bundled ({cfg_name})" if bundled else path.name
    return ModelEntry(
        name=name,
        path=path,
        step=int(meta.get("step", step)),
        created=created,
        base_model=base,
        metrics=dict(metrics),
        bundled=bundled,
        status=str(status.get("status", "complete")),
        mode=mode,
    )


def list_models(
    user_dir: str | Path | None = None, bundled_dir: str | Path | None = None
) -> list[ModelEntry]:
    """The bundled checkpoint (when present), then the user's, newest first.

    Parameters
    ----------
    user_dir : str or Path or None
        The user's models folder (default :func:`default_models_dir`); each sub-folder
        with a complete checkpoint is one entry, others are skipped.
    bundled_dir : str or Path or None
        The shipped checkpoint folder (default :func:`bundled_models_dir`).
    """
    out: list[ModelEntry] = []
    bundled = read_entry(bundled_dir if bundled_dir is not None else bundled_models_dir(),
                         bundled=True)
    if bundled is not None:
        out.append(bundled)
    folder = Path(user_dir) if user_dir is not None else default_models_dir()
    users = []
    if folder.is_dir():
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.name.startswith("."):
                entry = read_entry(sub)
                if entry is not None:
                    users.append(entry)
    users.sort(key=lambda e: (e.created or datetime.min, e.name), reverse=True)
    return out + users


def find_entry(entries: Sequence[ModelEntry], key: str | None) -> ModelEntry | None:
    """The entry stored as ``key`` (see :attr:`ModelEntry.key`), or ``None``."""
    if not key:
        return None
    for e in entries:
        if e.key == key or (not e.bundled and Path(e.path) == Path(key)):
            return e
    return None


def new_model_dir(
    models_dir: str | Path, recording: str | Path, now: datetime | None = None
) -> Path:
    """A fresh folder name ``<models>/finetuned-<YYYYmmdd-HHMM>-<basename>`` (not created).

    A ``-2``, ``-3`` ... suffix keeps it unique.
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M")
    stem = _UNSAFE.sub("_", Path(recording).stem)[:40] or "recording"
    base = Path(models_dir) / f"finetuned-{stamp}-{stem}"
    path, n = base, 1
    while path.exists() or path.with_name(path.name + ".part").exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (resolved)."""
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or f in p.parents


__all__ = [
    "BUNDLED_KEY",
    "ENV_MODELS_DIR",
    "STATUS_FILE",
    "ModelEntry",
    "bundled_models_dir",
    "checkpoint_steps",
    "default_models_dir",
    "find_entry",
    "is_inside",
    "list_models",
    "new_model_dir",
    "read_entry",
    "read_status",
    "write_status",
]
