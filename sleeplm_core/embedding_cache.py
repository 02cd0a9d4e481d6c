"""HDF5 sidecar cache of a night's window embeddings, keyed by file fingerprint and model.

The cache lives beside the recording as ``<recording>.sleeplm.h5`` (the recording itself is
never written). Where that folder is not writable it goes to the user cache folder's
``embeddings`` (platformdirs, see :func:`sleeplm_core.resources.user_cache_dir`). A cache
written for another file content, another model or another cache format is stale and
rebuilt; an unreadable one is replaced.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from sleeplm_core.results import NightEmbeddings

FORMAT = "sleeplm-embeddings/1"
_SAMPLES = 16
_CHUNK = 1 << 16


def fingerprint(path: str | Path) -> str:
    """A fast content fingerprint: size, the header, and 16 evenly spaced 64 KiB chunks.

    Hashing a whole 280 MB night costs seconds; sampling gives the same protection against
    a replaced or edited file (any change of length, header or data records in the samples).
    """
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with p.open("rb") as f:
        h.update(f.read(_CHUNK))
        for i in range(_SAMPLES):
            f.seek(max(0, (size - _CHUNK) * i // max(_SAMPLES - 1, 1)))
            h.update(f.read(_CHUNK))
    return h.hexdigest()


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


def load(
    recording: str | Path, model: str, window_s: float, stride_s: float
) -> NightEmbeddings | None:
    """Return cached embeddings, or ``None`` when absent, stale or unreadable."""
    path = cache_path(recording)
    if not path.is_file():
        return None
    key = _key(model, window_s, stride_s)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT or f.attrs.get("fingerprint") != fingerprint(
                recording
            ):
                return None
            if key not in f:
                return None
            g = f[key]
            return NightEmbeddings(
                onsets_s=np.asarray(g["onsets_s"][()], np.float64),
                window_s=float(g.attrs["window_s"]),
                embeddings=np.asarray(g["embeddings"][()], np.float32),
                mask=np.asarray(g["mask"][()], bool),
                model=str(g.attrs["model"]),
            )
    except (OSError, KeyError, ValueError):  # corrupt or half-written: rebuild
        return None


def save(recording: str | Path, emb: NightEmbeddings, stride_s: float) -> Path:
    """Store embeddings atomically (temp file + rename); return the cache path.

    Other models' groups in a still-valid cache are kept.
    """
    path = cache_path(recording)
    path.parent.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(recording)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as out:
            out.attrs["format"] = FORMAT
            out.attrs["fingerprint"] = fp
            out.attrs["recording"] = str(Path(recording).name)
            _copy_valid_groups(path, out, fp)
            key = _key(emb.model, emb.window_s, stride_s)
            if key in out:
                del out[key]
            g = out.create_group(key)
            g.attrs["model"] = emb.model
            g.attrs["window_s"] = emb.window_s
            g.create_dataset("onsets_s", data=emb.onsets_s)
            g.create_dataset("embeddings", data=emb.embeddings, compression="gzip")
            g.create_dataset("mask", data=emb.mask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _copy_valid_groups(path: Path, out: h5py.File, fp: str) -> None:
    if not path.is_file():
        return
    try:
        with h5py.File(path, "r") as old:
            if old.attrs.get("format") == FORMAT and old.attrs.get("fingerprint") == fp:
                for name in old:
                    old.copy(old[name], out, name=name)
    except (OSError, KeyError, ValueError):
        pass  # an unreadable old cache is simply replaced


def _key(model: str, window_s: float, stride_s: float) -> str:
    return f"{model}|w{window_s:g}|s{stride_s:g}".replace("/", "_")
