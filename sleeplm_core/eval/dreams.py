"""Loader for the DREAMS Sleep Spindles Database (8 real 30-min excerpts, evaluation only).

The files are read as they are shipped (``excerptN.txt`` etc., see the README beside the
data); nothing is copied, resampled or written. The database licence (CC BY-NC-ND 3.0)
forbids shipping derived copies, and the project never trains or tunes on these recordings.

File formats, in short:

- ``excerptN.txt``: ``[CH-NAME]`` then one sample per line, in µV. The sampling rate is not
  in the file; it is :data:`EXCERPT_SF`.
- ``Visual_scoring{1,2}_excerptN.txt`` / ``Automatic_detection_excerptN.txt``: a header line,
  then ``onset_s<TAB>duration_s`` per spindle. Expert 1 scored only the first ~1000 s;
  expert 2 scored excerpts 1-6 only, over the whole 1800 s.
- ``Hypnogram_excerptN.txt``: ``[Hypnogram]`` then one R&K code per 5-s row, with the codes
  in *reverse* order (5 wake, 4 REM, 3 S1, 2 S2, 1 S3, 0 S4, -1 movement, -2/-3 unknown).
  The underlying scoring used 20-s epochs, so a 30-s epoch straddles two of them.

Usage::

    from sleeplm_core.eval.dreams import load_dreams
    excerpts = load_dreams()          # or load_dreams(Path(".../dreams-spindles"))
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from sleeplm_core.errors import SleepLMError
from sleeplm_core.stages import EPOCH_S

ENV_VAR: Final[str] = "SLEEPLM_REAL_DATA"
"""Environment variable that overrides the DREAMS folder (the ``dreams-spindles`` folder)."""

N_EXCERPTS: Final[int] = 8

EXCERPT_SF: Final[dict[int, float]] = {
    1: 100.0,
    2: 200.0,
    3: 50.0,
    4: 200.0,
    5: 200.0,
    6: 200.0,
    7: 200.0,
    8: 200.0,
}
"""Sampling rate (Hz) of each ``excerptN.txt``; the files do not state it."""

EXPERT1_SCORED_UNTIL_S: Final[float] = 1000.0
"""Expert 1 scored spindles only in the first ~1000 s (largest onset 996.5 s)."""

HYPNO_ROW_S: Final[float] = 5.0
"""Each row of ``Hypnogram_excerptN.txt`` covers 5 s."""

RK_CODE_TO_STAGE: Final[dict[int, str]] = {
    5: "W",
    4: "REM",
    3: "N1",
    2: "N2",
    1: "N3",  # R&K S3
    0: "N3",  # R&K S4
    -1: "ART",  # movement time
    -2: "UNS",
    -3: "UNS",
}
"""DREAMS' reversed R&K codes -> YASA stages (S3 and S4 together make N3)."""

Event = tuple[float, float]
"""A scored event: ``(onset_s, duration_s)``, seconds from the first sample."""


@dataclass(frozen=True)
class DreamsExcerpt:
    """One DREAMS excerpt: a single central EEG channel with its expert labels.

    Attributes
    ----------
    id : int
        Excerpt number, 1-8.
    sf : float
        Sampling rate of ``data`` in Hz.
    ch_name : str
        Channel name as in the file header (``"C3-A1"`` or ``"CZ-A1"``).
    data : np.ndarray
        float32, shape (n_samples,), µV. Cut to a whole number of 30-s epochs
        (excerpt 6 has 1800.7 s in the file; the partial epoch is dropped).
    hypnogram : tuple of str
        One YASA stage (``W N1 N2 N3 REM ART UNS``) per 30-s epoch, from the expert R&K
        scoring by majority of the 5-s rows (see :func:`rows_to_epochs`).
    spindles_expert1 : list of (onset_s, duration_s)
        Expert 1's spindles; only the first :attr:`expert1_scored_until_s` s were scored.
    spindles_expert2 : list of (onset_s, duration_s) or None
        Expert 2's spindles over the whole excerpt; ``None`` for excerpts 7 and 8.
    spindles_automatic : list of (onset_s, duration_s)
        The database authors' automatic detector (a baseline, not a reference).
    expert1_scored_until_s : float
        End of the part expert 1 scored, in seconds.
    hypnogram_rows : tuple of int
        The raw R&K codes, one per 5-s row, kept for checks.
    """

    id: int
    sf: float
    ch_name: str
    data: np.ndarray = field(repr=False)
    hypnogram: tuple[str, ...] = field(repr=False)
    spindles_expert1: list[Event] = field(repr=False)
    spindles_expert2: list[Event] | None = field(repr=False)
    spindles_automatic: list[Event] = field(repr=False)
    expert1_scored_until_s: float = EXPERT1_SCORED_UNTIL_S
    hypnogram_rows: tuple[int, ...] = field(default=(), repr=False)

    @property
    def duration_s(self) -> float:
        """Length of ``data`` in seconds (a multiple of 30 s)."""
        return float(self.data.size / self.sf)

    @property
    def n_epochs(self) -> int:
        """Number of 30-s epochs."""
        return len(self.hypnogram)


def default_root() -> Path:
    """Return the DREAMS folder: ``$SLEEPLM_REAL_DATA`` or ``../shared/data/real/dreams-spindles``.

    The default is resolved from this file (``<repo>/../shared/...``), not from the working
    directory. ``$SLEEPLM_REAL_DATA`` may name either the ``dreams-spindles`` folder itself or
    the ``real`` folder that holds it.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        return p / "dreams-spindles" if (p / "dreams-spindles").is_dir() else p
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data" / "real" / "dreams-spindles"


def rows_to_epochs(rows: Sequence[int], *, rows_per_epoch: int = 6) -> list[str]:
    """Turn 5-s R&K rows into 30-s YASA stages by majority.

    Parameters
    ----------
    rows : sequence of int
        DREAMS R&K codes (:data:`RK_CODE_TO_STAGE`), one per 5-s row.
    rows_per_epoch : int
        Rows per 30-s epoch (6). A trailing partial epoch is dropped.

    Returns
    -------
    list of str
        One stage per whole epoch. Codes are mapped to stages first (so S3 + S4 rows vote
        together for N3). A tie goes to the stage of the **later** rows, i.e. the stage the
        epoch ends in, which is also the one that continues into the next epoch. With 20-s
        R&K epochs on a 5-s grid a 30-s epoch always splits 4 + 2 rows, so DREAMS has no ties.
    """
    out: list[str] = []
    for start in range(0, len(rows) - rows_per_epoch + 1, rows_per_epoch):
        stages = [_stage_of_code(c) for c in rows[start : start + rows_per_epoch]]
        counts = Counter(stages)
        best = max(counts.values())
        # walk backwards so that among tied stages the last one seen wins
        out.append(next(s for s in reversed(stages) if counts[s] == best))
    return out


def _stage_of_code(code: int) -> str:
    try:
        return RK_CODE_TO_STAGE[code]
    except KeyError:
        raise ValueError(f"unknown DREAMS hypnogram code {code}") from None


def _read_header_and_lines(path: Path) -> tuple[str, list[str]]:
    if not path.is_file():
        raise SleepLMError(path, "DREAMS file is missing")
    lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    if not lines or not lines[0].strip().startswith("["):
        raise SleepLMError(path, "not a DREAMS file: the first line should be a [header]")
    return lines[0].strip().strip("[]"), [ln for ln in lines[1:] if ln.strip()]


def read_signal(path: Path) -> tuple[str, np.ndarray]:
    """Read ``excerptN.txt``: return the channel name and the samples (float32, µV)."""
    if not path.is_file():
        raise SleepLMError(path, "DREAMS signal file is missing")
    with path.open(encoding="ascii") as fh:
        header = fh.readline().strip()
        if not header.startswith("["):
            raise SleepLMError(path, "not a DREAMS signal file: the first line should be [CHANNEL]")
        data = np.loadtxt(fh, dtype=np.float64, ndmin=1)
    return header.strip("[]"), data.astype(np.float32)


def read_events(path: Path) -> list[Event]:
    """Read a DREAMS scoring file (``onset_s<TAB>duration_s`` rows after a header)."""
    _, lines = _read_header_and_lines(path)
    events: list[Event] = []
    for i, ln in enumerate(lines, start=2):
        parts = ln.split()
        if len(parts) != 2:
            raise SleepLMError(path, f"line {i}: expected 'onset duration', got {ln.strip()!r}")
        events.append((float(parts[0]), float(parts[1])))
    return sorted(events)


def read_hypnogram_rows(path: Path) -> list[int]:
    """Read ``Hypnogram_excerptN.txt``: one DREAMS R&K code per 5-s row."""
    _, lines = _read_header_and_lines(path)
    try:
        return [int(float(ln)) for ln in lines]
    except ValueError as exc:
        raise SleepLMError(path, f"hypnogram row is not an integer ({exc})") from None


def load_excerpt(root: Path, excerpt_id: int) -> DreamsExcerpt:
    """Load one excerpt from the DREAMS folder ``root``.

    Parameters
    ----------
    root : Path
        The ``dreams-spindles`` folder.
    excerpt_id : int
        1-8.

    Returns
    -------
    DreamsExcerpt
        Signal cut to whole 30-s epochs, with its hypnogram and spindle scorings.
    """
    if excerpt_id not in EXCERPT_SF:
        raise ValueError(f"DREAMS has excerpts 1-{N_EXCERPTS}, not {excerpt_id}")
    sf = EXCERPT_SF[excerpt_id]
    ch_name, data = read_signal(root / f"excerpt{excerpt_id}.txt")
    rows = read_hypnogram_rows(root / f"Hypnogram_excerpt{excerpt_id}.txt")
    epochs = rows_to_epochs(rows, rows_per_epoch=round(EPOCH_S / HYPNO_ROW_S))
    n_sig_epochs = int(data.size // (EPOCH_S * sf))
    n_epochs = min(n_sig_epochs, len(epochs))
    data = np.ascontiguousarray(data[: int(round(n_epochs * EPOCH_S * sf))])
    exp2_path = root / f"Visual_scoring2_excerpt{excerpt_id}.txt"
    return DreamsExcerpt(
        id=excerpt_id,
        sf=sf,
        ch_name=ch_name,
        data=data,
        hypnogram=tuple(epochs[:n_epochs]),
        spindles_expert1=read_events(root / f"Visual_scoring1_excerpt{excerpt_id}.txt"),
        spindles_expert2=read_events(exp2_path) if exp2_path.is_file() else None,
        spindles_automatic=read_events(root / f"Automatic_detection_excerpt{excerpt_id}.txt"),
        hypnogram_rows=tuple(rows),
    )


def load_dreams(
    root: Path | None = None, *, excerpts: Sequence[int] | None = None
) -> list[DreamsExcerpt]:
    """Load the DREAMS spindle excerpts.

    Parameters
    ----------
    root : Path, optional
        The ``dreams-spindles`` folder; default :func:`default_root`.
    excerpts : sequence of int, optional
        Which excerpts (1-8) to load; default all eight.

    Returns
    -------
    list of DreamsExcerpt
        In the order asked for.

    Raises
    ------
    SleepLMError
        When the folder or one of its files is missing.
    """
    root = default_root() if root is None else Path(root)
    if not root.is_dir():
        raise SleepLMError(
            root,
            "DREAMS spindle database not found; put it at ../shared/data/real/dreams-spindles "
            f"beside the checkout or set {ENV_VAR} to its folder",
        )
    ids = list(range(1, N_EXCERPTS + 1)) if excerpts is None else list(excerpts)
    return [load_excerpt(root, i) for i in ids]


def in_window(events: Sequence[Event], stop_s: float, start_s: float = 0.0) -> list[Event]:
    """Keep the events whose onset lies in ``[start_s, stop_s)``."""
    return [(on, dur) for on, dur in events if start_s <= on < stop_s]
