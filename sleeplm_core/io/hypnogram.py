"""The hypnogram: one stage per scoring epoch, in YASA's vocabulary, with night statistics.

Main methods
------------
=======================  =========================================================
``Hypnogram(stages)``    from stage names (any spelling :func:`normalize_stage` knows)
``from_integers``        from YASA integer codes (-2 ... 4)
``from_annotations``     from stage annotations (majority per epoch), or ``None``
``as_int``               YASA integer codes, ``int8``
``to_annotations``       one stage annotation per run of equal epochs
``sleep_statistics``     TIB, SPT, WASO, TST, SE, SME, SOL, latencies, stage minutes
``upsample_to_seconds``  one stage per ``1 / sf`` seconds
=======================  =========================================================
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from sleeplm_core.io.annotations import Annotation, Annotations
from sleeplm_core.io.labels import STAGE_LABEL, stage_of
from sleeplm_core.stages import (
    EPOCH_S,
    INT_TO_STAGE,
    SLEEP_STAGES,
    STAGE_TO_INT,
    STAGES,
    normalize_stage,
)

__all__ = ["Hypnogram"]

# Vote order when two stages cover an epoch equally long: a scored stage wins over
# artefact, and artefact over unscored.
_TIE_ORDER = ("W", "N1", "N2", "N3", "REM", "ART", "UNS")


class Hypnogram:
    """A sequence of scoring epochs, each one of ``W N1 N2 N3 REM ART UNS``.

    Parameters
    ----------
    stages : sequence of str
        One stage per epoch, in any spelling :func:`~sleeplm_core.stages.normalize_stage`
        accepts ("W", "Sleep stage 2", "REM sleep|5", ...).
    epoch_s : float
        Epoch length in seconds.
    start_s : float
        Onset of the first epoch, in seconds from the recording start.

    Attributes
    ----------
    stages : np.ndarray
        The stages, dtype ``'<U3'``, shape ``(n_epochs,)``.
    """

    def __init__(
        self, stages: Sequence[str], *, epoch_s: float = EPOCH_S, start_s: float = 0.0
    ) -> None:
        if not (epoch_s > 0 and math.isfinite(epoch_s)):
            raise ValueError(f"epoch_s must be a positive number, got {epoch_s!r}")
        normalized = []
        for s in stages:
            if isinstance(s, numbers.Number):
                # "4" is R&K stage 4 (N3) as text but REM as a YASA code: refuse to guess.
                raise TypeError(f"stage {s!r} is a number; use Hypnogram.from_integers for codes")
            stage = s if s in STAGE_TO_INT else normalize_stage(str(s))
            if stage is None:
                raise ValueError(f"unknown sleep stage {s!r}")
            normalized.append(stage)
        self.stages: npt.NDArray[np.str_] = np.array(normalized, dtype="<U3")
        self.epoch_s = float(epoch_s)
        self.start_s = float(start_s)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_integers(
        cls, codes: Iterable[int], epoch_s: float = EPOCH_S, *, start_s: float = 0.0
    ) -> Hypnogram:
        """Build from YASA integer codes (W=0, N1=1, N2=2, N3=3, REM=4, ART=-1, UNS=-2)."""
        stages = []
        for c in codes:
            if int(c) not in INT_TO_STAGE:
                raise ValueError(f"unknown stage code {c!r}")
            stages.append(INT_TO_STAGE[int(c)])
        return cls(stages, epoch_s=epoch_s, start_s=start_s)

    @classmethod
    def from_annotations(
        cls, ann: Annotations | Iterable[Annotation], duration_s: float, epoch_s: float = EPOCH_S
    ) -> Hypnogram | None:
        """Build from stage annotations, one stage per epoch of ``[0, duration_s)``.

        Each epoch takes the stage covering most of it; time covered by no stage annotation
        counts as unscored, so an epoch without a stage is ``UNS``. Annotations at another
        resolution (DREAMS 5-s rows, R&K 20-s epochs) are thereby resampled to ``epoch_s``.
        A stage annotation without duration is taken to last one epoch.

        Parameters
        ----------
        ann : Annotations or iterable of Annotation
            Any annotations; only stages (and movement time / unscored) are used.
        duration_s : float
            Recording duration in seconds; the last partial epoch is dropped.
        epoch_s : float
            Epoch length in seconds.

        Returns
        -------
        Hypnogram or None
            ``None`` when there is no stage annotation at all.
        """
        stage_ann = [(a, stage_of(a.label)) for a in ann if a.is_stage]
        if not stage_ann:
            return None
        n = int(math.floor(duration_s / epoch_s + 1e-9))
        cover = np.zeros((n, len(_TIE_ORDER)), dtype=np.float64)
        for a, stage in stage_ann:
            assert stage is not None
            col = _TIE_ORDER.index(stage)
            onset = a.onset_s
            offset = onset + (a.duration_s if a.duration_s > 0 else epoch_s)
            first = max(int(math.floor(onset / epoch_s)), 0)
            last = min(int(math.ceil(offset / epoch_s)), n)
            for k in range(first, last):
                lo, hi = k * epoch_s, (k + 1) * epoch_s
                overlap = min(hi, offset) - max(lo, onset)
                if overlap > 0:
                    cover[k, col] += overlap
        uns = _TIE_ORDER.index("UNS")
        cover[:, uns] += np.clip(epoch_s - cover.sum(axis=1), 0.0, None)
        # argmax picks the first maximum: scored stages win ties (see _TIE_ORDER).
        winners = np.argmax(cover, axis=1) if n else np.zeros(0, dtype=int)
        return cls([_TIE_ORDER[i] for i in winners], epoch_s=epoch_s)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.stages.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hypnogram):
            return NotImplemented
        return (
            self.epoch_s == other.epoch_s
            and self.start_s == other.start_s
            and np.array_equal(self.stages, other.stages)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Hypnogram: {len(self)} epochs of {self.epoch_s:g} s>"

    @property
    def n_epochs(self) -> int:
        """Number of epochs."""
        return len(self)

    @property
    def duration_s(self) -> float:
        """Total duration in seconds (``n_epochs * epoch_s``)."""
        return len(self) * self.epoch_s

    def stage_at(self, t_s: float) -> str | None:
        """Return the stage at ``t_s`` seconds from the recording start, or ``None`` outside."""
        k = int(math.floor((t_s - self.start_s) / self.epoch_s))
        return str(self.stages[k]) if 0 <= k < len(self) else None

    def epoch_of(self, t_s: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Return the epoch index of each time (seconds); ``-1`` where outside the hypnogram."""
        t = np.asarray(t_s, dtype=np.float64)
        k = np.floor((t - self.start_s) / self.epoch_s).astype(np.int64)
        return np.where((k >= 0) & (k < len(self)), k, -1)

    def is_sleep(self) -> npt.NDArray[np.bool_]:
        """Return a boolean mask, ``True`` for epochs of N1, N2, N3 or REM."""
        return np.isin(self.stages, SLEEP_STAGES)

    # ------------------------------------------------------------------ conversion
    def as_int(self) -> npt.NDArray[np.int8]:
        """Return YASA integer codes, ``int8``, shape ``(n_epochs,)``."""
        lut = {s: STAGE_TO_INT[s] for s in STAGES}
        return np.array([lut[str(s)] for s in self.stages], dtype=np.int8)

    def to_annotations(self) -> list[Annotation]:
        """Return one stage annotation per run of equal consecutive epochs."""
        out: list[Annotation] = []
        if not len(self):
            return out
        change = np.flatnonzero(self.stages[1:] != self.stages[:-1]) + 1
        bounds = [0, *change.tolist(), len(self)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            out.append(
                Annotation(
                    self.start_s + a * self.epoch_s,
                    (b - a) * self.epoch_s,
                    STAGE_LABEL[str(self.stages[a])],
                )
            )
        return out

    def upsample_to_seconds(self, sf: float = 1.0) -> npt.NDArray[np.str_]:
        """Return one stage per ``1 / sf`` seconds (from ``start_s``), dtype ``'<U3'``."""
        n = int(math.floor(self.duration_s * sf + 1e-9))
        idx = np.minimum((np.arange(n) / sf / self.epoch_s).astype(np.int64), len(self) - 1)
        return self.stages[idx] if len(self) else self.stages[:0]

    # ------------------------------------------------------------------ statistics
    def sleep_statistics(self) -> dict[str, float]:
        """Return the standard night statistics (YASA's ``sleep_statistics`` definitions).

        The hypnogram is taken as time in bed (its first epoch is lights off). Durations are
        in minutes, ``SE``, ``SME`` and ``%<stage>`` in percent.

        ==========  ============================================================
        TIB         time in bed: all epochs
        SPT         sleep period time: first to last sleep epoch, inclusive
        WASO        wake within SPT
        TST         N1 + N2 + N3 + REM (ART and UNS are not sleep)
        W ... REM   minutes of each stage over the whole night; ART, UNS, NREM too
        %N1 ...     minutes of the stage as percent of TST (also %NREM)
        SOL         sleep onset latency: start to first sleep epoch
        Lat_<st>    latency of stage ``st`` from the start (YASA's ``Lat_<st>``)
        Lat_<st>_SO latency of stage ``st`` from sleep onset (AASM: ``Lat_<st>`` - SOL)
        SE          TST / TIB * 100
        SME         TST / SPT * 100
        ==========  ============================================================

        Without any sleep, SOL, WASO, latencies, percentages and SME are NaN.
        """
        to_min = self.epoch_s / 60.0
        st = self.stages
        sleep_idx = np.flatnonzero(self.is_sleep())
        has_sleep = sleep_idx.size > 0
        spt = st[sleep_idx[0] : sleep_idx[-1] + 1] if has_sleep else st[:0]
        nan = float("nan")
        stats: dict[str, float] = {
            "TIB": len(st) * to_min,
            "SPT": spt.size * to_min,
            "WASO": float(np.count_nonzero(spt == "W")) * to_min if has_sleep else nan,
            "TST": float(sleep_idx.size) * to_min,
        }
        for stage in STAGES:
            stats[stage] = float(np.count_nonzero(st == stage)) * to_min
        stats["NREM"] = stats["N1"] + stats["N2"] + stats["N3"]
        onset = int(sleep_idx[0]) if has_sleep else -1
        stats["SOL"] = onset * to_min if has_sleep else nan
        for stage in SLEEP_STAGES:
            idx = np.flatnonzero(st == stage)
            stats[f"Lat_{stage}"] = int(idx[0]) * to_min if idx.size else nan
            stats[f"Lat_{stage}_SO"] = (int(idx[0]) - onset) * to_min if idx.size else nan
        for stage in (*SLEEP_STAGES, "NREM"):
            stats[f"%{stage}"] = 100.0 * stats[stage] / stats["TST"] if has_sleep else nan
        stats["SE"] = 100.0 * stats["TST"] / stats["TIB"] if len(st) else nan
        stats["SME"] = 100.0 * stats["TST"] / stats["SPT"] if has_sleep else nan
        return {k: float(v) for k, v in stats.items()}
