"""Bundled resources and the per-user cache folder (platformdirs)."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs

from sleeplm_core import embedding_cache, sample_night
from sleeplm_core.eval import synthetic
from sleeplm_core.resources import user_cache_dir


def test_sample_night_is_bundled() -> None:
    assert sample_night().is_file() and sample_night().suffix == ".edf"


def test_caches_share_the_platform_cache_folder(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    base = Path(platformdirs.user_cache_dir("sleeplm", appauthor=False))
    assert user_cache_dir() == base
    assert embedding_cache.user_cache_dir() == base / "embeddings"
    assert synthetic.default_folder() == base / "synthetic-eval"
    if sys.platform.startswith("linux"):
        assert base == tmp_path / "sleeplm"  # XDG honoured on Linux


def test_read_only_folder_sends_the_embedding_cache_to_the_user_folder(
    monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    night = tmp_path / "night.edf"
    night.write_bytes(b"0")
    # a read-only folder (simulated: root may write anywhere)
    monkeypatch.setattr(embedding_cache.os, "access", lambda path, mode: False)
    assert embedding_cache.cache_path(night).parent == user_cache_dir("embeddings")
