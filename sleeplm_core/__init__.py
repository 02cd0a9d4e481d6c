"""SleepLM core: PSG reading, synthetic nights, captions, the ReCoCa model and its training.

This package never imports Qt; the viewer (``sleepviewer``) builds on it. The notebook API is
imported lazily, so ``import sleeplm_core`` stays cheap (torch loads with ``Predictor``)::

    from sleeplm_core import Predictor, Recording

    predictor = Predictor.load()                  # the bundled checkpoint
    stages = predictor.stage("night.edf")         # a path, a Recording or an mne.io.Raw
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Predictor", "Recording", "__version__", "sample_night"]

if TYPE_CHECKING:
    from pathlib import Path

    from sleeplm_core.api import Predictor
    from sleeplm_core.io.recording import Recording

_LAZY = {"Predictor": "sleeplm_core.api", "Recording": "sleeplm_core.io.recording"}


def __getattr__(name: str) -> Any:
    """Import ``Predictor`` and ``Recording`` on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sleeplm_core' has no attribute {name!r}")


def sample_night() -> Path:
    """The bundled sample night (EDF+, 90 min, with NSRR XML scoring beside it)."""
    from sleeplm_core.resources import resource_path

    return resource_path("sample", "sample_night.edf")
