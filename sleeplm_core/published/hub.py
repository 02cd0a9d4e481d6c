"""Download the authors' SleepLM-Base checkpoint from Hugging Face and import it.

``sleeplm models pull sleeplm-base`` calls :func:`pull`: ``huggingface_hub`` downloads
``model_checkpoint.pt`` of ``yang-ai-lab/SleepLM-Base`` into its own cache (with its progress
bar), then :func:`~sleeplm_core.published.convert.import_checkpoint` converts it once into a
safetensors checkpoint folder. Offline (no network, or ``HF_HUB_OFFLINE=1``) it fails at once
with one line that says how to import a file fetched elsewhere.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Final

from sleeplm_core.errors import SleepLMError

REPO_ID: Final = "yang-ai-lab/SleepLM-Base"
FILENAME: Final = "model_checkpoint.pt"
REVISION: Final = "main"
"""The revision downloaded unless ``--revision`` names a commit (see the model card)."""
HUB_HOST: Final = "huggingface.co"
PULLABLE: Final[dict[str, tuple[str, str]]] = {"sleeplm-base": (REPO_ID, FILENAME)}


def _offline_hint() -> str:
    return (f"fetch {FILENAME} of {REPO_ID} on a machine with internet, then run "
            f"`sleeplm models import {FILENAME}`")  # fmt: skip


def reachable(host: str = HUB_HOST, timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to ``host``:443 opens within ``timeout_s``."""
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def pull(name: str, out_dir: str | Path, *, revision: str = REVISION) -> Path:
    """Download a published model and import it into ``out_dir``; return the meta path.

    Raises
    ------
    SleepLMError
        For an unknown name, no network, or a failed download (one line, with the way to
        import a file fetched elsewhere).
    """
    if name not in PULLABLE:
        raise SleepLMError(None, f"no downloadable model {name!r} (known: {', '.join(PULLABLE)})")
    repo, filename = PULLABLE[name]
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise SleepLMError(None, f"offline (HF_HUB_OFFLINE is set): {_offline_hint()}")
    if not reachable():
        raise SleepLMError(None, f"cannot reach {HUB_HOST}: {_offline_hint()}")
    try:
        from huggingface_hub import hf_hub_download

        local = hf_hub_download(repo, filename, revision=revision)
    except Exception as exc:  # network, HTTP and cache errors all end the same way
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:160]
        raise SleepLMError(None, f"download of {repo}/{filename} failed ({first}): "
                                 f"{_offline_hint()}") from None  # fmt: skip
    from sleeplm_core.published.convert import import_checkpoint

    return import_checkpoint(local, out_dir)
