"""Sleep-stage scoring logic, Qt-free: keys → stages, the epoch grid, runs and auto-advance.

The viewer scores on a fixed grid of :data:`~sleeplm_core.stages.EPOCH_S`-second epochs that
starts at the recording start (epoch ``i`` covers ``[i * epoch_s, (i + 1) * epoch_s)``; the last
epoch may be partial, as in :class:`sleepviewer.state.ViewState`). Per-epoch stages are kept as
YASA integer codes (``int8``; W 0, N1 1, N2 2, N3 3, REM 4, ART -1, UNS -2).

Main names
----------
=========================  ==================================================================
``SCORING_ACTIONS``        the scoring actions (name, stage, suggested keys) for ``keys.py``
``stage_for_key``          ``"2"`` → ``"N2"``, ``"r"`` → ``"REM"``, ...
``EpochGrid``              epoch index ↔ seconds, epochs overlapping an interval
``plan_score``             which epochs a key press scores and where the cursor goes next
``codes_from_annotations`` stage annotations → per-epoch codes (majority rule)
``stage_runs``             runs of equal codes
``stage_annotations``      per-epoch codes → merged stage annotations (UNS omitted)
=========================  ==================================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.hypnogram import Hypnogram
from sleeplm_core.io.labels import STAGE_LABEL
from sleeplm_core.stages import EPOCH_S, INT_TO_STAGE, STAGE_TO_INT

UNSCORED: Final[int] = STAGE_TO_INT["UNS"]
"""Code of an unscored epoch (-2)."""


@dataclass(frozen=True, slots=True)
class ScoringAction:
    """One scoring command, for the key table (``sleepviewer/keys.py``) and menus.

    Parameters
    ----------
    name : str
        Stable action name, e.g. ``"score_N2"``.
    stage : str
        The YASA stage the action scores (``W N1 N2 N3 REM ART UNS``).
    keys : tuple of str
        Suggested key sequences (``QKeySequence`` text), e.g. ``("2",)``.
    text : str
        Menu and shortcut-sheet text.
    """

    name: str
    stage: str
    keys: tuple[str, ...]
    text: str


SCORING_ACTIONS: Final[tuple[ScoringAction, ...]] = (
    ScoringAction("score_W", "W", ("0", "W"), "Score epoch: Wake"),
    ScoringAction("score_N1", "N1", ("1",), "Score epoch: N1"),
    ScoringAction("score_N2", "N2", ("2",), "Score epoch: N2"),
    ScoringAction("score_N3", "N3", ("3",), "Score epoch: N3"),
    ScoringAction("score_REM", "REM", ("4", "R"), "Score epoch: REM"),
    ScoringAction("score_ART", "ART", ("M",), "Score epoch: movement / artefact"),
    ScoringAction("score_UNS", "UNS", ("Backspace",), "Unscore epoch"),
)
"""All scoring actions; the key table owns the final bindings."""

_KEY_TO_STAGE: Final[dict[str, str]] = {
    key.lower(): action.stage for action in SCORING_ACTIONS for key in action.keys
}


def stage_for_key(key_text: str) -> str | None:
    """Return the stage a key scores, or ``None``.

    Parameters
    ----------
    key_text : str
        The key as text (``QKeyEvent.text()`` or ``QKeySequence`` text); case-insensitive.

    Returns
    -------
    str or None
        ``"W"`` for ``0``/``W``, ``"N1"``–``"N3"`` for ``1``–``3``, ``"REM"`` for ``4``/``R``,
        ``"ART"`` for ``M``, ``"UNS"`` for Backspace; ``None`` for any other key.
    """
    return _KEY_TO_STAGE.get(key_text.strip().lower())


def action_for_stage(stage: str) -> ScoringAction:
    """Return the scoring action of a stage (``KeyError`` for an unknown stage)."""
    for action in SCORING_ACTIONS:
        if action.stage == stage:
            return action
    raise KeyError(stage)


@dataclass(frozen=True, slots=True)
class EpochGrid:
    """The scoring grid: ``n_epochs`` epochs of ``epoch_s`` seconds from the recording start.

    Parameters
    ----------
    n_epochs : int
        Number of epochs (the last one may be partial).
    epoch_s : float
        Epoch length in seconds.
    """

    n_epochs: int
    epoch_s: float = EPOCH_S

    @classmethod
    def for_duration(cls, duration_s: float, epoch_s: float = EPOCH_S) -> EpochGrid:
        """Return the grid covering a recording of ``duration_s`` seconds (at least 1 epoch)."""
        return cls(max(1, math.ceil(duration_s / epoch_s - 1e-9)), float(epoch_s))

    @property
    def duration_s(self) -> float:
        """Seconds covered by the grid (``n_epochs * epoch_s``)."""
        return self.n_epochs * self.epoch_s

    def onset(self, epoch: int) -> float:
        """Return the onset of ``epoch``, in seconds."""
        return epoch * self.epoch_s

    def index_at(self, t_s: float) -> int:
        """Return the epoch containing ``t_s`` (clamped to the grid)."""
        return int(min(max(math.floor(t_s / self.epoch_s + 1e-9), 0), self.n_epochs - 1))

    def epochs_in(self, start_s: float, stop_s: float) -> range:
        """Return the epochs overlapping ``[start_s, stop_s)`` (empty when none)."""
        first = max(0, math.floor(start_s / self.epoch_s + 1e-9))
        stop = min(self.n_epochs, math.ceil(stop_s / self.epoch_s - 1e-9))
        return range(first, max(first, stop))


@dataclass(frozen=True, slots=True)
class ScorePlan:
    """What one scoring command does.

    Parameters
    ----------
    epochs : tuple of int
        The epochs to score.
    stage : str
        The stage they get.
    next_epoch : int
        The epoch to show afterwards.
    """

    epochs: tuple[int, ...]
    stage: str
    next_epoch: int


def plan_score(
    epochs: int | Sequence[int], stage: str, grid: EpochGrid, *, auto_advance: bool = True
) -> ScorePlan:
    """Plan a scoring command: the epochs scored and the epoch to show next.

    Parameters
    ----------
    epochs : int or sequence of int
        The current epoch, or the selected epochs.
    stage : str
        A YASA stage (``W N1 N2 N3 REM ART UNS``).
    grid : EpochGrid
        The scoring grid.
    auto_advance : bool
        Move to the epoch after the last scored one (stays on the last epoch of the night).
        Unscoring (``UNS``) never advances.

    Returns
    -------
    ScorePlan
        The plan; apply it with ``AnnotationStore.set_stage(plan.epochs, plan.stage)``.

    Raises
    ------
    ValueError
        For an unknown stage or an epoch outside the grid.
    """
    if stage not in STAGE_TO_INT:
        raise ValueError(f"unknown stage {stage!r}; expected one of {tuple(STAGE_TO_INT)}")
    idx = (epochs,) if isinstance(epochs, int) else tuple(int(e) for e in epochs)
    if not idx:
        raise ValueError("no epoch to score")
    for e in idx:
        if not 0 <= e < grid.n_epochs:
            raise ValueError(f"epoch {e} lies outside the recording (0..{grid.n_epochs - 1})")
    last = max(idx)
    advance = auto_advance and stage != "UNS"
    nxt = min(last + 1, grid.n_epochs - 1) if advance else last
    return ScorePlan(tuple(sorted(set(idx))), stage, nxt)


def codes_from_annotations(stages: Iterable[Annotation], grid: EpochGrid) -> np.ndarray:
    """Turn stage annotations into one code per epoch of the grid.

    Uses :meth:`sleeplm_core.io.hypnogram.Hypnogram.from_annotations` (each epoch takes the
    stage covering most of it; time covered by no stage is unscored), over the whole grid,
    so a partial last epoch is kept.

    Parameters
    ----------
    stages : iterable of Annotation
        Annotations; only stages (and movement time / unscored) are used.
    grid : EpochGrid
        The scoring grid.

    Returns
    -------
    np.ndarray
        ``int8`` array of shape ``(grid.n_epochs,)`` with YASA codes.
    """
    hyp = Hypnogram.from_annotations(list(stages), grid.duration_s, grid.epoch_s)
    codes = np.full(grid.n_epochs, UNSCORED, dtype=np.int8)
    if hyp is not None:
        got = hyp.as_int()[: grid.n_epochs]
        codes[: got.size] = got
    return codes


def stage_runs(codes: np.ndarray) -> list[tuple[int, int, int]]:
    """Return the runs of equal codes.

    Parameters
    ----------
    codes : np.ndarray
        Per-epoch codes, shape ``(n_epochs,)``.

    Returns
    -------
    list of (int, int, int)
        ``(first_epoch, stop_epoch, code)`` per run, ``stop_epoch`` exclusive, in order.
    """
    c = np.asarray(codes)
    if c.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(c)) + 1
    starts = np.concatenate(([0], cuts))
    stops = np.concatenate((cuts, [c.size]))
    return [(int(a), int(b), int(c[a])) for a, b in zip(starts, stops, strict=True)]


def stage_annotations(codes: np.ndarray, grid: EpochGrid) -> list[Annotation]:
    """Turn per-epoch codes into stage annotations, one per run; unscored runs are omitted.

    Parameters
    ----------
    codes : np.ndarray
        Per-epoch codes, shape ``(grid.n_epochs,)``.
    grid : EpochGrid
        The scoring grid.

    Returns
    -------
    list of Annotation
        ``Sleep stage …`` annotations (Sleep-EDF spelling), ordered by onset.
    """
    out = []
    for first, stop, code in stage_runs(codes):
        if code == UNSCORED:
            continue
        out.append(
            Annotation(
                grid.onset(first),
                (stop - first) * grid.epoch_s,
                STAGE_LABEL[INT_TO_STAGE[code]],
            )
        )
    return out
