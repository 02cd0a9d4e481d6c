"""Streaming PyTorch dataset over HDF5 shards (see :mod:`sleeplm_core.data.shards`).

Usage::

    ds = ShardDataset(sorted(Path("out").glob("*.h5")), channel_dropout=0.2, seed=0)
    loader = DataLoader(ds, batch_size=64, num_workers=4, collate_fn=model_collate)
    for step, batch in enumerate(loader): ...
    ds.set_epoch(1)  # a new shuffle for the next pass

Samples are 30 s epochs with at least one present channel. The epochs of all shards are split
across torch.distributed ranks (equal counts) and DataLoader workers, so each epoch goes to at
most one of them per pass, in a seeded random order when ``shuffle`` is on.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from sleeplm_core.captions.facts import MODALITIES
from sleeplm_core.data.shards import open_shard
from sleeplm_core.io.channels import CANONICAL_SLOTS, MODALITY_SLOTS, staging_rows

MAX_OPEN_FILES = 32
CENTRAL_SLOTS = np.array([CANONICAL_SLOTS.index("C3_M2"), CANONICAL_SLOTS.index("C4_M1")])

_MODALITY_ROWS = {
    m: np.array([CANONICAL_SLOTS.index(s) for s in slots]) for m, slots in MODALITY_SLOTS.items()
}


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def drop_channels(mask: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Return a copy of ``mask`` with each present channel dropped with probability ``p``.

    At least one present channel always survives (a random one, when all were drawn).
    """
    present = np.flatnonzero(mask)
    out = mask.copy()
    if p <= 0 or present.size == 0:
        return out
    drop = present[rng.random(present.size) < p]
    if drop.size == present.size:
        drop = np.delete(drop, int(rng.integers(drop.size)))
    out[drop] = False
    return out


class _OpenShard:
    """An open shard with its small per-epoch arrays read into memory (signals stay on disk)."""

    def __init__(self, f: h5py.File) -> None:
        self.file = f
        caps = f["captions"]
        self.mask = np.asarray(f["mask"][()], bool)
        self.stages = np.asarray(f["stages"][()], np.int64)
        self.captions = {m: caps[m].asstr()[()] for m in MODALITIES}
        self.segments = caps["segment"].asstr()[()]
        self.night = caps["night"].asstr()[()]
        self.segment_epochs = int(caps.attrs["segment_epochs"])
        self.n_variants = int(f.attrs["n_variants"])
        self.record_id = str(f.attrs["record_id"])
        self.epoch_s = float(f.attrs.get("epoch_s", 30.0))
        self.events = _events_by_epoch(f, len(self.stages), self.epoch_s)


def _events_by_epoch(
    f: h5py.File, n_epochs: int, epoch_s: float
) -> dict[int, list[tuple[str, float, float]]]:
    """Epoch -> ``(label, onset_s, duration_s)`` of every event overlapping it.

    The onset is relative to the epoch start (negative when the event began earlier).
    """
    out: dict[int, list[tuple[str, float, float]]] = {}
    if "events" not in f or "onset_s" not in f["events"]:
        return out
    ev = f["events"]
    onsets = np.asarray(ev["onset_s"][()], np.float64)
    durations = np.asarray(ev["duration_s"][()], np.float64)
    labels = ev["label"].asstr()[()]
    for onset, dur, label in zip(onsets, durations, labels, strict=True):
        first = int(np.floor(onset / epoch_s))
        last = int(np.floor((onset + max(dur, 1e-6) - 1e-6) / epoch_s))
        for e in range(max(first, 0), min(last, n_epochs - 1) + 1):
            out.setdefault(e, []).append((str(label), float(onset - e * epoch_s), float(dur)))
    return out


class ShardDataset(IterableDataset[dict[str, Any]]):
    """Epochs of SleepLM shards as training samples.

    Parameters
    ----------
    paths : sequence of path, or a folder
        Shard files (a folder means every ``*.h5`` in it). Each is checked on construction;
        a corrupt or other-version shard raises :class:`~sleeplm_core.errors.ShardError`.
    channel_dropout : float
        Probability of dropping each present channel of a sample (zeroed, mask False); never
        all of them. A modality whose channels are all dropped loses its caption too.
    seed : int
        Seeds shuffling, dropout and caption-variant choice.
    shuffle : bool
        Visit epochs in a random order (new each :meth:`set_epoch`).
    central_only_prob : float
        Share of samples reduced to a single central EEG (C3 or C4, whichever are present),
        so that single-channel staging and spindle search are in the training distribution.
    staging_montage_prob : float
        Share of the other samples reduced to the staging montage (C3, C4, one EOG, chin
        EMG: :func:`~sleeplm_core.io.channels.staging_rows`), what ``sleeplm stage`` reads.
    augment_prob : float
        Share of samples passed through :func:`sleeplm_core.train.augment.augment_window`
        (references, hardware filters, polarity, pops, sweat, ECG artefact, clipping, ...).

    Yields
    ------
    dict
        ``signal`` float32 tensor (12, 1920) in physical units (not normalized), ``mask`` bool
        tensor (12,), ``stage`` int (YASA code), ``captions`` {modality: str} for the
        modalities that have one, ``segment_caption`` and ``night_caption`` str,
        ``epoch_index`` int, ``record_id`` str, ``events`` list of ``(label, onset_s,
        duration_s)`` overlapping the epoch (onset relative to the epoch start; events on
        dropped channels are kept: the collate decides what can be seen).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        channel_dropout: float = 0.0,
        seed: int = 0,
        shuffle: bool = True,
        central_only_prob: float = 0.0,
        staging_montage_prob: float = 0.0,
        augment_prob: float = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(paths, (str, os.PathLike)) and Path(paths).is_dir():
            paths = sorted(Path(paths).glob("*.h5"))
        elif isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not 0.0 <= channel_dropout < 1.0:
            raise ValueError(f"channel_dropout must be in [0, 1), got {channel_dropout}")
        self.paths = [Path(p) for p in paths]
        self.channel_dropout = float(channel_dropout)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.central_only_prob = float(central_only_prob)
        self.staging_montage_prob = float(staging_montage_prob)
        self.augment_prob = float(augment_prob)
        self.epoch = 0
        # (shard, epoch) of every epoch with at least one present channel (EDF+D gaps have none)
        parts = [np.zeros((0, 2), np.int64)]
        for k, p in enumerate(self.paths):
            with open_shard(p) as f:
                usable = np.flatnonzero(np.asarray(f["mask"][()], bool).any(axis=1))
            parts.append(np.stack([np.full(usable.size, k), usable], axis=1).astype(np.int64))
        self._all_items = np.concatenate(parts)
        self._open: OrderedDict[int, _OpenShard] = OrderedDict()

    def __len__(self) -> int:
        """Number of usable epochs over all shards (all ranks and workers together)."""
        return len(self._all_items)

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle order of a training pass (call before iterating)."""
        self.epoch = int(epoch)

    def _items(self) -> np.ndarray:
        """(shard, epoch) indices of this rank and worker, shape (n, 2).

        Every rank gets the same number of samples (DDP steps stay in lock-step); the fewer
        than ``world_size`` epochs left over are skipped in this pass (others in the next,
        when shuffling).
        """
        items = self._all_items
        if self.shuffle:
            items = items[np.random.default_rng([self.seed, self.epoch]).permutation(len(items))]
        rank, world = _rank_and_world()
        items = items[: len(items) - len(items) % world][rank::world]
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        return items[wid::nw]

    def _shard(self, k: int) -> _OpenShard:
        shard = self._open.get(k)
        if shard is None:
            shard = _OpenShard(open_shard(self.paths[k]))
            self._open[k] = shard
            if len(self._open) > MAX_OPEN_FILES:
                self._open.popitem(last=False)[1].file.close()
        else:
            self._open.move_to_end(k)
        return shard

    def sample(self, k: int, e: int, rng: np.random.Generator) -> dict[str, Any]:
        """Read epoch ``e`` of shard ``k`` (with dropout and a random caption variant)."""
        sh = self._shard(k)
        signal = np.asarray(sh.file["signals"][e], np.float32)
        mask = sh.mask[e].copy()
        if self.channel_dropout > 0:
            kept = drop_channels(mask, self.channel_dropout, rng)
            signal[mask & ~kept] = 0.0
            mask = kept
        central = CENTRAL_SLOTS[mask[CENTRAL_SLOTS]]
        if self.central_only_prob > 0 and central.size and rng.random() < self.central_only_prob:
            keep = int(rng.choice(central))
            signal[np.arange(len(mask)) != keep] = 0.0
            mask = np.arange(len(mask)) == keep
        elif self.staging_montage_prob > 0:
            staging = staging_rows(mask)
            if staging.any() and rng.random() < self.staging_montage_prob:
                signal[~staging] = 0.0
                mask = staging
        if self.augment_prob > 0 and rng.random() < self.augment_prob:
            from sleeplm_core.train.augment import augment_window

            signal, _ = augment_window(signal, mask, rng)
        v = int(rng.integers(sh.n_variants))
        captions: dict[str, str] = {}
        for modality, texts in sh.captions.items():
            rows = _MODALITY_ROWS.get(modality)
            if rows is not None and not mask[rows].any():
                continue
            if texts[e, v]:
                captions[modality] = str(texts[e, v])
        k_seg = e // sh.segment_epochs
        return {
            "signal": torch.from_numpy(signal),
            "mask": torch.from_numpy(mask),
            "stage": int(sh.stages[e]),
            "captions": captions,
            "segment_caption": str(sh.segments[k_seg, v]) if k_seg < len(sh.segments) else "",
            "night_caption": str(sh.night[v]),
            "epoch_index": int(e),
            "record_id": sh.record_id,
            "events": list(sh.events.get(e, ())),
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield this rank's and worker's share of the epochs."""
        items = self._items()
        info = get_worker_info()
        rank, _ = _rank_and_world()
        rng = np.random.default_rng([self.seed, self.epoch, rank, info.id if info else 0])
        try:
            for k, e in items:
                yield self.sample(int(k), int(e), rng)
        finally:
            for shard in self._open.values():
                shard.file.close()
            self._open.clear()
