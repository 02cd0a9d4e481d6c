"""HDF5 sidecar caches of a night's embeddings, keyed by file content, weights and version.

Two caches live beside the recording (the recording itself is never written):
``<recording>.sleeplm.h5`` holds the window embeddings, ``<recording>.sleeplm-dense.h5``
the per-patch features search uses. Where that folder is not writable they go to the user
cache folder's ``embeddings`` (platformdirs, :func:`sleeplm_core.resources.user_cache_dir`).

A cache entry is used only when all of these match:

* the recording's **content**: a BLAKE2 hash of the whole file, computed once per file
  version and stored with the size and modification time it was computed for (a file with
  the same size and time is trusted without re-reading; any other is hashed again, so an
  edited file never keeps its cache and an identical copy still finds it);
* the **computation**: the checkpoint's weights (SHA-256) and its signal tower's config
  (:func:`computation_id`): two checkpoints with the same name and step do not share
  embeddings, nor do the same weights run with another tower setting (token merging);
* the **format and preprocessing version** (:data:`FORMAT`, :data:`PREPROCESSING`).

Every write is atomic (temporary file + ``os.replace``, mode as a plain ``open`` gives). An
unreadable cache is replaced by the next write, and :func:`state` tells the caller so it
can say that it was rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sleeplm_core.io.atomic import file_mode_for
from sleeplm_core.results import NightEmbeddings

FORMAT = "sleeplm-embeddings/2"
"""Layout version of both cache files."""

PREPROCESSING = "canonical-64Hz/2"
"""Version of the signal path (``Recording.canonical``): a change makes old caches stale."""

_BLOCK = 1 << 20
_HASHES: dict[tuple[str, int, int, int], str] = {}  # (path, size, mtime_ns, inode) -> hash


def fingerprint(path: str | Path) -> str:
    """The recording's content hash: BLAKE2b-128 over the whole file (memoized per version).

    Hashing a 280 MB night takes well under a second; it is done once per file version
    (size, modification time, inode) in a process, and stored in the caches.
    """
    p = Path(path).resolve()
    st = p.stat()
    memo = (str(p), st.st_size, st.st_mtime_ns, st.st_ino)
    hit = _HASHES.get(memo)
    if hit is not None:
        return hit
    h = hashlib.blake2b(digest_size=16)
    with p.open("rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    _HASHES[memo] = digest = h.hexdigest()
    return digest


def _stat_tag(recording: str | Path, digest: str) -> str:
    st = Path(recording).stat()
    return f"{st.st_size}:{st.st_mtime_ns}:{digest}"


def same_recording(attrs: Any, recording: str | Path) -> bool:
    """Whether a cache file's attributes were written for this content and this version."""
    if attrs.get("format") != FORMAT or attrs.get("preprocessing") != PREPROCESSING:
        return False
    stored = attrs.get("fingerprint")
    if not isinstance(stored, str):
        return False
    if attrs.get("file_stat") == _stat_tag(recording, stored):
        return True  # the same size and time the stored hash was computed for
    return stored == fingerprint(recording)


def user_cache_dir() -> Path:
    """The per-user cache folder for sidecars that cannot live beside their recording."""
    from sleeplm_core.resources import user_cache_dir as base

    return base("embeddings")


def cache_path(recording: str | Path) -> Path:
    """Where the embedding cache of ``recording`` is (or will be) kept."""
    rec = Path(recording).resolve()
    beside = rec.with_name(rec.name + ".sleeplm.h5")
    if os.access(rec.parent, os.W_OK) or beside.exists():
        return beside
    digest = hashlib.blake2b(str(rec).encode(), digest_size=8).hexdigest()
    return user_cache_dir() / f"{rec.stem}-{digest}.sleeplm.h5"


def dense_path(recording: str | Path) -> Path:
    """Where the dense (per-patch) feature cache of ``recording`` is kept."""
    base = cache_path(recording)
    return base.with_name(base.name.replace(".sleeplm.h5", "") + ".sleeplm-dense.h5")


def computation_id(weights_sha256: str, signal_config: dict[str, Any]) -> str:
    """What decides a checkpoint's embeddings: its weights and its signal tower's config.

    The first 16 hex digits of the weights' SHA-256, ``+``, 8 of a digest of the tower's
    config (the same weights run with ``merge_size`` 2 give other embeddings); empty when the
    weights' hash is unknown.
    """
    if not weights_sha256:
        return ""
    text = json.dumps(signal_config, sort_keys=True)
    return f"{weights_sha256[:16]}+{hashlib.blake2b(text.encode(), digest_size=4).hexdigest()}"


def window_key(model: str, window_s: float, stride_s: float, weights: str = "") -> str:
    """Group name of one model's window embeddings (``weights``: :func:`computation_id`)."""
    tag = f"|{weights[:25]}" if weights else ""
    return f"{model}{tag}|w{window_s:g}|s{stride_s:g}".replace("/", "_")


def dense_key(model: str, stride_s: float, weights: str = "") -> str:
    """Group name of one model's dense features."""
    tag = f"|{weights[:25]}" if weights else ""
    return f"{model}{tag}|stride={stride_s:g}".replace("/", "_")


def state(path: Path, recording: str | Path, key: str) -> str:
    """``missing``, ``valid``, ``stale`` (other content, version or model) or ``corrupt``."""
    if not path.is_file():
        return "missing"
    try:
        with h5py.File(path, "r") as f:
            if not same_recording(f.attrs, recording):
                return "stale"
            return "valid" if key in f else "stale"
    except (OSError, KeyError, ValueError):
        return "corrupt"


def cache_note(recording: str | Path, model: str, stride_s: float, weights: str = "") -> str:
    """A line for the user when the window cache is about to be replaced (else ``""``)."""
    path = cache_path(recording)
    try:
        found = state(path, recording, window_key(model, 30.0, stride_s, weights))
    except OSError:
        return ""
    if found == "corrupt":
        return f"The embedding cache {path} could not be read; it is rebuilt"
    if found == "stale":
        return f"The embedding cache {path} was for another file version or model; updated"
    return ""


def load(
    recording: str | Path, model: str, window_s: float, stride_s: float, weights: str = ""
) -> NightEmbeddings | None:
    """Return cached embeddings, or ``None`` when absent, stale or unreadable."""
    path = cache_path(recording)
    if not path.is_file():
        return None
    key = window_key(model, window_s, stride_s, weights)
    try:
        with h5py.File(path, "r") as f:
            if not same_recording(f.attrs, recording) or key not in f:
                return None
            g = f[key]
            return NightEmbeddings(
                onsets_s=np.asarray(g["onsets_s"][()], np.float64),
                window_s=float(g.attrs["window_s"]),
                embeddings=np.asarray(g["embeddings"][()], np.float32),
                mask=np.asarray(g["mask"][()], bool),
                model=str(g.attrs["model"]),
                live_s=np.asarray(g["live_s"][()], bool) if "live_s" in g else None,
            )
    except (OSError, KeyError, ValueError):  # corrupt or half-written: rebuilt by save()
        return None


def save(recording: str | Path, emb: NightEmbeddings, stride_s: float, weights: str = "") -> Path:
    """Store embeddings atomically; return the cache path (other valid groups are kept)."""

    def fill(g: h5py.Group) -> None:
        g.attrs["model"] = emb.model
        g.attrs["window_s"] = emb.window_s
        g.create_dataset("onsets_s", data=emb.onsets_s)
        g.create_dataset("embeddings", data=emb.embeddings, compression="gzip")
        g.create_dataset("mask", data=emb.mask)
        if emb.live_s is not None:
            g.create_dataset("live_s", data=emb.live_s)

    path = cache_path(recording)
    _rewrite(path, recording, window_key(emb.model, emb.window_s, stride_s, weights), fill)
    return path


def load_dense(
    recording: str | Path, model: str, stride_s: float, weights: str = ""
) -> tuple[np.ndarray, np.ndarray] | None:
    """Cached dense ``(onsets_s, features)``, or ``None`` (missing, stale or unreadable)."""
    path = dense_path(recording)
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as f:
            g = f.get(dense_key(model, stride_s, weights))
            if g is None or not same_recording(f.attrs, recording):
                return None
            return np.asarray(g["onsets_s"][()]), np.asarray(g["features"][()])
    except (OSError, KeyError, ValueError):
        return None


def save_dense(
    recording: str | Path,
    model: str,
    stride_s: float,
    onsets_s: np.ndarray,
    features: np.ndarray,
    weights: str = "",
) -> Path:
    """Store dense features atomically (a corrupt old file is replaced, not appended to)."""

    def fill(g: h5py.Group) -> None:
        g.create_dataset("onsets_s", data=onsets_s)
        g.create_dataset("features", data=features)

    path = dense_path(recording)
    _rewrite(path, recording, dense_key(model, stride_s, weights), fill)
    return path


def _rewrite(
    path: Path, recording: str | Path, key: str, fill: Callable[[h5py.Group], None]
) -> None:
    """Write ``path`` anew through a temporary file: valid old groups, then group ``key``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(recording)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, file_mode_for(path))  # not mkstemp's 0600: as the other sidecars
        with h5py.File(tmp, "w") as out:
            out.attrs["format"] = FORMAT
            out.attrs["preprocessing"] = PREPROCESSING
            out.attrs["fingerprint"] = fp
            out.attrs["file_stat"] = _stat_tag(recording, fp)
            out.attrs["recording"] = str(Path(recording).name)
            _copy_valid_groups(path, out, recording, but=key)
            fill(out.create_group(key))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _copy_valid_groups(path: Path, out: h5py.File, recording: str | Path, but: str) -> None:
    """Copy the old cache's groups into ``out``, all but group ``but`` (being rewritten).

    Copying the group and deleting it afterwards left its bytes in the file (HDF5 does not
    reclaim a deleted dataset's space): a rewritten 8-h dense cache held 59 MB, not 29.
    """
    if not path.is_file():
        return
    try:
        with h5py.File(path, "r") as old:
            if same_recording(old.attrs, recording):
                for name in old:
                    if name != but:
                        old.copy(old[name], out, name=name)
    except (OSError, KeyError, ValueError):
        pass  # an unreadable old cache is replaced (state() said "corrupt" beforehand)
