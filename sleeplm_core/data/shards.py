"""HDF5 training shards: one file per recording, built in parallel and resumable.

Layout of ``<record_id>.h5`` (format :data:`FORMAT_VERSION`)::

    /signals          float16 (n_epochs, 12, 1920)  canonical 64 Hz windows, physical units
    /mask             bool    (n_epochs, 12)        slot present (and not all zeros) per epoch
    /stages           int8    (n_epochs,)           YASA codes (W 0 ... REM 4, ART -1, UNS -2)
    /events/onset_s, duration_s, label, channel, epoch   every non-stage annotation
    /captions/<modality>  str (n_epochs, n_variants)    "" where a modality has no caption
    /captions/segment     str (n_segments, n_variants)  attribute segment_epochs
    /captions/night       str (n_variants,)
    attributes: format_version, code_version, record_id, source_file, annotation_file,
                channel_sources (JSON list, one per slot), slots, sf, epoch_s, n_epochs,
                n_variants, complete (written last)

A shard is written to a temporary name and renamed when complete, so an interrupted build
leaves no half shard under the final name; a rebuild skips every complete shard.

Usage::

    sleeplm shards build synth:8:1 out/ --workers 2
    sleeplm shards build /data/shhs out/ --part 3/16     # this machine builds part 3 of 16
"""

from __future__ import annotations

import json
import os
import sys
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

import sleeplm_core
from sleeplm_core.captions.facts import MODALITIES
from sleeplm_core.captions.features import night_features
from sleeplm_core.captions.pipeline import caption_night, epoch_mask
from sleeplm_core.data.sources import Source
from sleeplm_core.errors import RecordingError, ShardError, SleepLMError
from sleeplm_core.io.channels import CANONICAL_SF, CANONICAL_SLOTS
from sleeplm_core.io.indices import event_indices
from sleeplm_core.io.recording import Recording
from sleeplm_core.stages import EPOCH_S, STAGE_TO_INT

FORMAT_VERSION = 1
EPOCH_SAMPLES = int(EPOCH_S * CANONICAL_SF)
FLOAT16_MAX = 65000.0
SUFFIX = ".h5"


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What happened to one recording: ``status`` is built, exists or failed."""

    record_id: str
    status: str
    message: str = ""
    n_epochs: int = 0
    seconds: float = 0.0
    path: str = ""


def shard_path(out_dir: Path, record_id: str) -> Path:
    """The final path of a recording's shard."""
    return out_dir / f"{record_id}{SUFFIX}"


def open_shard(path: str | os.PathLike[str]) -> h5py.File:
    """Open a shard for reading after checking that it is complete and of this format.

    Raises
    ------
    ShardError
        One line, for a missing, corrupt (e.g. truncated), incomplete or other-version shard.
    """
    p = Path(path)
    if not p.is_file():
        raise ShardError(p, "no such shard")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ShardError(p, f"not a readable HDF5 shard (corrupt or truncated?): {exc}") from None
    try:
        version = f.attrs.get("format_version")
        if version is None:
            raise ShardError(p, "not a SleepLM shard (no format_version attribute)")
        if int(version) != FORMAT_VERSION:
            raise ShardError(
                p,
                f"shard format version {int(version)}, this code reads version "
                f"{FORMAT_VERSION}; rebuild it with `sleeplm shards build`",
            )
        if not bool(f.attrs.get("complete", False)):
            raise ShardError(p, "incomplete shard (its build was interrupted); rebuild it")
        for name in ("signals", "mask", "stages", "captions"):
            if name not in f:
                raise ShardError(p, f"corrupt shard: dataset {name!r} is missing")
    except ShardError:
        f.close()
        raise
    return f


def shard_is_complete(path: Path) -> bool:
    """Whether ``path`` is a complete shard of this format (corrupt ones are not)."""
    try:
        open_shard(path).close()
    except ShardError:
        return False
    return True


def _str_array(rows: Sequence[Sequence[str]]) -> np.ndarray:
    return (
        np.array(rows, dtype=h5py.string_dtype("utf-8"))
        if rows
        else np.zeros((0,), dtype=h5py.string_dtype("utf-8"))
    )


def write_shard(
    rec: Recording,
    path: Path,
    *,
    record_id: str,
    source: str,
    annotation_file: str = "",
    seed: int = 0,
    variants: int = 1,
) -> int:
    """Write one recording's shard to ``path`` (used by the builder on a temporary name).

    Parameters
    ----------
    rec : Recording
        The open recording.
    path : Path
        Target file.
    record_id, source, annotation_file : str
        Stored as attributes.
    seed : int
        Caption seed (mixed with the record id, so recordings differ).
    variants : int
        Caption renderings per epoch (different paraphrases and roundings, same facts).

    Returns
    -------
    int
        Number of epochs written.

    Raises
    ------
    RecordingError
        When no canonical slot can be filled or the recording is shorter than one epoch.
    """
    n_epochs = int(rec.duration_s // EPOCH_S)
    if n_epochs < 1:
        raise RecordingError(rec.path, "shorter than one 30 s epoch")
    win = rec.canonical(0.0, n_epochs * EPOCH_S)
    data = win.data[:, : n_epochs * EPOCH_SAMPLES]
    if data.shape[1] < n_epochs * EPOCH_SAMPLES:
        n_epochs = data.shape[1] // EPOCH_SAMPLES
        data = data[:, : n_epochs * EPOCH_SAMPLES]
    masks = epoch_mask(data, win.mask)
    if not masks.any():
        raise RecordingError(
            rec.path, f"no usable channel for the model (none of {', '.join(CANONICAL_SLOTS)})"
        )
    hyp = rec.hypnogram
    # An EDF+ and its sidecar may both carry the same events (e.g. `sleeplm synth` output):
    # keep one copy of annotations that are equal in every field.
    anns = list(dict.fromkeys(rec.annotations))
    stages: list[str] | None = None
    stats = indices = None
    if hyp is not None:
        stages = ([str(s) for s in hyp.stages] + ["UNS"] * n_epochs)[:n_epochs]
        stats = hyp.sleep_statistics()
        indices = event_indices(anns, hyp)
    feats = night_features(data, win.mask)
    base_seed = zlib.crc32(record_id.encode()) ^ int(seed)
    nights = [
        caption_night(
            data,
            masks,
            anns,
            stages,
            stats=stats,
            indices=indices,
            seed=base_seed + 7919 * v,
            features=feats,
            sources=win.sources,
        )
        for v in range(variants)
    ]
    events = [a for a in anns if not a.is_stage]
    with h5py.File(path, "w") as f:
        f.attrs.update(
            format_version=FORMAT_VERSION,
            code_version=sleeplm_core.__version__,
            record_id=record_id,
            source_file=source,
            annotation_file=annotation_file,
            channel_sources=json.dumps(list(win.sources)),
            slots=json.dumps(list(CANONICAL_SLOTS)),
            sf=CANONICAL_SF,
            epoch_s=EPOCH_S,
            n_epochs=n_epochs,
            n_variants=variants,
            complete=False,
        )
        x = np.clip(data, -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)
        x = x.reshape(len(CANONICAL_SLOTS), n_epochs, EPOCH_SAMPLES).transpose(1, 0, 2)
        # one chunk per epoch; gzip-1 after byte shuffling is 20 % smaller than lzf on float16
        # PSG at the same write speed, and still reads an epoch in about half a millisecond
        f.create_dataset(
            "signals",
            data=x,
            chunks=(1, len(CANONICAL_SLOTS), EPOCH_SAMPLES),
            compression="gzip",
            compression_opts=1,
            shuffle=True,
        )
        f.create_dataset("mask", data=masks)
        codes = [STAGE_TO_INT[s] for s in stages] if stages else [STAGE_TO_INT["UNS"]] * n_epochs
        f.create_dataset("stages", data=np.asarray(codes, np.int8))
        ev = f.create_group("events")
        ev.create_dataset("onset_s", data=np.array([a.onset_s for a in events], np.float64))
        ev.create_dataset("duration_s", data=np.array([a.duration_s for a in events], np.float64))
        ev.create_dataset("label", data=_str_array([a.label for a in events]))
        ev.create_dataset("channel", data=_str_array([a.channel or "" for a in events]))
        ev.create_dataset(
            "epoch", data=np.array([int(a.onset_s // EPOCH_S) for a in events], np.int32)
        )
        cap = f.create_group("captions")
        cap.attrs["segment_epochs"] = nights[0].segment_epochs
        for modality in MODALITIES:
            rows = [
                [n.epochs[e][modality].text if modality in n.epochs[e] else "" for n in nights]
                for e in range(n_epochs)
            ]
            cap.create_dataset(modality, data=_str_array(rows), compression="lzf")
        seg_rows = [[n.segments[k].text for n in nights] for k in range(len(nights[0].segments))]
        cap.create_dataset(
            "segment",
            data=_str_array(seg_rows)
            if seg_rows
            else np.zeros((0, variants), dtype=h5py.string_dtype("utf-8")),
        )
        cap.create_dataset(
            "night", data=_str_array([n.night.text if n.night is not None else "" for n in nights])
        )
        f.attrs["complete"] = True
    return n_epochs


def build_one(source: Source, out_dir: Path, seed: int = 0, variants: int = 1) -> BuildResult:
    """Build one shard (temporary name, then rename); never raises for a bad recording.

    Returns
    -------
    BuildResult
        ``built`` with the epoch count and time, or ``failed`` with a one-line reason.
    """
    t0 = time.perf_counter()
    final = shard_path(out_dir, source.record_id)
    for stale in out_dir.glob(f".{source.record_id}{SUFFIX}.tmp-*"):
        stale.unlink(missing_ok=True)
    tmp = out_dir / f".{source.record_id}{SUFFIX}.tmp-{os.getpid()}"
    try:
        with source.open() as rec:
            n = write_shard(
                rec,
                tmp,
                record_id=source.record_id,
                source=source.description,
                annotation_file=str(source.annotations or ""),
                seed=seed,
                variants=variants,
            )
        os.replace(tmp, final)
    except SleepLMError as exc:
        tmp.unlink(missing_ok=True)
        return BuildResult(source.record_id, "failed", exc.one_line())
    except Exception as exc:  # noqa: BLE001  (a bad recording must not stop a cohort build)
        tmp.unlink(missing_ok=True)
        where = source.description
        return BuildResult(source.record_id, "failed", f"{where}: {type(exc).__name__}: {exc}")
    return BuildResult(source.record_id, "built", "", n, time.perf_counter() - t0, str(final))


def parse_part(text: str) -> tuple[int, int]:
    """Parse ``--part i/N`` (``0 <= i < N``)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ShardError(None, f"--part {text}: write i/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ShardError(None, f"--part {text}: i must be in 0..N-1")
    return i, n


def build_shards(
    sources: Sequence[Source],
    out_dir: str | os.PathLike[str],
    *,
    workers: int = 1,
    part: tuple[int, int] = (0, 1),
    seed: int = 0,
    variants: int = 1,
    progress: bool | None = None,
) -> list[BuildResult]:
    """Build the shards of ``sources`` (this machine's ``part``) in parallel processes.

    Parameters
    ----------
    sources : sequence of Source
        All recordings; ``part = (i, N)`` keeps every N-th one starting at i (by record id),
        so N machines together build each recording exactly once.
    out_dir : path
        Output folder (created).
    workers : int
        Worker processes; 1 builds in this process.
    part : tuple of int
        ``(i, N)``.
    seed, variants : int
        Caption seed and renderings per epoch.
    progress : bool or None
        Show a tqdm bar (``None``: only on a terminal).

    Returns
    -------
    list of BuildResult
        One per source of this part: built, exists (a complete shard was there) or failed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = [s.record_id for s in sources]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ShardError(out, f"two recordings share the id {dup[0]}")
    i, n = part
    mine = sorted(sources, key=lambda s: s.record_id)[i::n]
    results: list[BuildResult] = []
    todo: list[Source] = []
    for s in mine:
        path = shard_path(out, s.record_id)
        if shard_is_complete(path):
            results.append(BuildResult(s.record_id, "exists", path=str(path)))
        else:
            todo.append(s)
    bar = tqdm(
        total=len(todo),
        unit="rec",
        desc="shards",
        disable=progress is False or (progress is None and not sys.stderr.isatty()),
        file=sys.stderr,
    )
    try:
        if workers <= 1 or len(todo) <= 1:
            for s in todo:
                results.append(build_one(s, out, seed, variants))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
                futures = [ex.submit(build_one, s, out, seed, variants) for s in todo]
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update()
    finally:
        bar.close()
    return sorted(results, key=lambda r: r.record_id)
