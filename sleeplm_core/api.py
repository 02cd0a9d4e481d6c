"""The notebook API: ``stage`` / ``search`` / ``caption`` of a path, a Recording or an mne Raw.

A thin layer over :class:`sleeplm_core.inference.Predictor`: the same model and the same
embedding-based methods (the viewer and the CLI use those), plus a dispatch on the type of the
first argument, so that a night is staged in one call::

    from sleeplm_core import Predictor

    predictor = Predictor.load()                        # the bundled checkpoint, or a path
    stages = predictor.stage("night.edf")               # path, Recording or mne.io.Raw
    stages.to_dataframe()                               # also .to_mne(), .to_yasa()
    stages.to_csv("night-stages.csv")                   # also .to_nsrr_xml(), .to_edf()
    hits = predictor.search("night.edf", "obstructive apnea")
    captions = predictor.caption("night.edf", 600, 660)

A path is opened (``search`` and ``caption`` cache its embeddings in the HDF5 sidecar like
``sleeplm embed``; ``stage`` reads a valid cache or makes one uncached pass over the staging
montage, like ``sleeplm stage``); a
:class:`~sleeplm_core.io.recording.Recording` is used as it is (and left open); an
``mne.io.Raw`` is written to a temporary EDF+ in physical units (voltages in µV) and opened
from there, uncached, so what is staged is the Raw as it is in memory (cropped, filtered or
re-referenced). Its annotations travel with it as EDF+ TALs (aligned to its first sample), so
captions are checked against its scored events exactly as for the file it came from.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from sleeplm_core import inference
from sleeplm_core.errors import RecordingError
from sleeplm_core.fewshot import FewShotHead
from sleeplm_core.io.annotation_model import Annotation
from sleeplm_core.io.recording import Recording
from sleeplm_core.results import (
    EDF_DEFAULT_START,
    Captions,
    NightEmbeddings,
    SearchResult,
    StageResult,
)
from sleeplm_core.stages import EPOCH_S

__all__ = ["Predictor", "raw_annotations", "raw_to_edf"]

_VOLT_TYPES = ("eeg", "eog", "emg", "ecg", "seeg", "ecog", "dbs")
_VOLT_UNITS = ("v", "uv", "µv", "mv", "nv")


class Predictor(inference.Predictor):
    """A loaded SleepLM whose ``stage``, ``search`` and ``caption`` also take a recording.

    Build it with :meth:`load` (``Predictor.load()`` for the bundled checkpoint,
    ``Predictor.load("runs/tiny")`` for another). Every method of
    :class:`sleeplm_core.inference.Predictor` works as there.
    """

    def stage(
        self,
        x: NightEmbeddings | Recording | str | PathLike[str] | Any,
        channels_used: Sequence[str] = (),
        head: FewShotHead | None = None,
    ) -> StageResult:
        """Stages for each 30-s epoch of ``x`` (zero-shot, or from a few-shot ``head``).

        Parameters
        ----------
        x : NightEmbeddings, Recording, path or mne.io.Raw
            What to stage; embeddings as in :meth:`inference.Predictor.stage`.
        channels_used : sequence of str
            Only with embeddings: the file channels recorded in the result.
        head : FewShotHead, optional
            A few-shot head (see :meth:`fit_fewshot`).

        Returns
        -------
        StageResult
            With ``start`` set to the recording's start (for the exports).
        """
        if isinstance(x, NightEmbeddings):
            return super().stage(x, channels_used, head)
        with _opened(x) as (rec, cache):
            emb = self.embed_for_staging(rec, use_cache=cache)
            staged = super().stage(emb, rec.channels_used(emb.mask), head)
            return replace(staged, start=rec.start)

    def search(
        self,
        x: NightEmbeddings | Recording | str | PathLike[str] | Any,
        query: str,
        *,
        top: int = 10,
        min_score: float | None = None,
    ) -> SearchResult:
        """Segments of ``x`` matching ``query`` (see :meth:`inference.Predictor.search`)."""
        if isinstance(x, NightEmbeddings):
            return super().search(x, query, top=top, min_score=min_score)
        with _opened(x) as (rec, cache):
            emb = self.embed_recording(rec, use_cache=cache)
            found = super().search(emb, query, top=top, min_score=min_score)
            return replace(found, start=rec.start)

    def caption(
        self,
        x: Recording | str | PathLike[str] | Any,
        start_s: float = 0.0,
        stop_s: float | None = None,
        *,
        modalities: Sequence[str] | None = None,
        prompt: str | None = None,
        beam: int = 3,
    ) -> Captions:
        """Captions of each 30-s epoch in ``[start_s, stop_s)`` of ``x``, per modality.

        ``stop_s`` defaults to one epoch after ``start_s``. The result is a list of
        :class:`~sleeplm_core.results.Caption` with ``to_dataframe()`` and ``to_mne()``.
        """
        stop = start_s + EPOCH_S if stop_s is None else stop_s
        with _opened(x) as (rec, _):
            out = Captions(
                super().caption(rec, start_s, stop, modalities=modalities, prompt=prompt,
                                beam=beam)
            )  # fmt: skip
            out.start = rec.start
            return out


def _is_raw(x: Any) -> bool:
    return hasattr(x, "get_data") and hasattr(x, "info") and hasattr(x, "ch_names")


@contextmanager
def _opened(x: Any) -> Iterator[tuple[Recording, bool]]:
    """``(recording, use_cache)`` for a Recording, a path or an mne Raw."""
    if isinstance(x, Recording):
        yield x, True
    elif isinstance(x, str | PathLike):
        with Recording.open(x) as rec:
            yield rec, True
    elif _is_raw(x):
        with tempfile.TemporaryDirectory(prefix="sleeplm-raw-") as tmp:
            path = raw_to_edf(x, Path(tmp) / "raw.edf")
            with Recording.open(path) as rec:
                yield rec, False
    else:
        raise TypeError(
            f"expected a path, a Recording, an mne.io.Raw or NightEmbeddings, got {type(x)!r}"
        )


def raw_to_edf(raw: Any, path: Path) -> Path:
    """Write an ``mne.io.Raw`` as EDF+ (physical units, voltages in µV) with its annotations.

    The Raw is cut to a whole number of data records (less than a record is dropped at the
    end); the start is its ``meas_date`` (``EDF_DEFAULT_START`` when it has none). Its
    ``raw.annotations`` are written as TALs relative to the first kept sample (see
    :func:`raw_annotations`).

    Raises
    ------
    RecordingError
        When the Raw is shorter than one data record or cannot be written.
    """
    from sleeplm_core.io.edf_writer import SignalSpec, record_duration_s, write_edf

    sf = float(raw.info["sfreq"])
    names = list(raw.ch_names)
    types = raw.get_channel_types()
    orig = getattr(raw, "_orig_units", None) or {}
    record_s = record_duration_s([sf])
    per_record = int(round(record_s * sf))
    n = (raw.n_times // per_record) * per_record
    if n == 0:
        raise RecordingError(path, f"the Raw is shorter than one {record_s:g}-s data record")
    data = np.nan_to_num(raw.get_data(stop=n).astype(np.float64))
    signals = []
    for i, (name, kind) in enumerate(zip(names, types, strict=True)):
        unit = str(orig.get(name, ""))
        if kind in _VOLT_TYPES or unit.lower() in _VOLT_UNITS:
            signals.append(SignalSpec(name[:16], kind.upper(), sf, "uV", data[i] * 1e6))
        else:
            signals.append(SignalSpec(name[:16], kind.upper(), sf, unit, data[i]))
    meas = raw.info.get("meas_date")
    start: datetime = EDF_DEFAULT_START if meas is None else meas.replace(tzinfo=None)
    try:
        write_edf(path, signals, raw_annotations(raw, n / sf), start=start)
    except ValueError as exc:
        raise RecordingError(path, f"cannot write the Raw as EDF+: {exc}") from None
    return path


def raw_annotations(raw: Any, duration_s: float) -> list[Annotation]:
    """``raw.annotations`` as our annotations, onsets from the Raw's first sample.

    MNE keeps onsets relative to ``orig_time`` (the measurement date) when it is set, else to
    the first sample; both are mapped to seconds from the data's start. An annotation on one
    channel keeps it; one that ends before the data or starts after ``duration_s`` is left
    out (a cropped Raw keeps its whole annotation list).
    """
    ann = raw.annotations
    offset = float(raw.first_time) if ann.orig_time is not None else 0.0
    out = []
    for onset, duration, label, chs in zip(
        ann.onset, ann.duration, ann.description, ann.ch_names, strict=True
    ):
        start = float(onset) - offset
        if start + float(duration) < 0 or start >= duration_s or not str(label).strip():
            continue
        clipped = max(start, 0.0)
        out.append(
            Annotation(
                clipped,
                float(duration) - (clipped - start),
                str(label),
                channel=chs[0] if len(chs) == 1 else None,
            )
        )
    return out
