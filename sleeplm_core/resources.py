"""Locate files bundled under ``resources/`` (installed as the ``sleeplm_resources`` package)."""

from __future__ import annotations

from importlib import resources as _ilr
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """Return the path of a bundled resource.

    Parameters
    ----------
    *parts : str
        Path components below ``resources/``, e.g. ``("sample", "sample_night.edf")``.

    Returns
    -------
    Path
        The file's location (it may not exist; callers check).
    """
    try:
        base = Path(str(_ilr.files("sleeplm_resources")))
    except ModuleNotFoundError:  # running from a source tree that was not installed
        base = Path(__file__).resolve().parent.parent / "resources"
    return base.joinpath(*parts)


def user_cache_dir(*parts: str) -> Path:
    """The per-user cache folder of SleepLM, with ``parts`` below it (not created here).

    ``platformdirs.user_cache_dir("sleeplm")``: ``$XDG_CACHE_HOME/sleeplm`` (default
    ``~/.cache/sleeplm``) on Linux, ``~/Library/Caches/sleeplm`` on macOS,
    ``%LOCALAPPDATA%/sleeplm/Cache`` on Windows.
    """
    import platformdirs

    return Path(platformdirs.user_cache_dir("sleeplm", appauthor=False)).joinpath(*parts)
