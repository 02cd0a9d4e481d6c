"""Writing the annotation sidecar: an immutable save job and the write itself (no Qt).

:class:`~sleepviewer.annotation_store.AnnotationStore` takes a :class:`SaveJob` - a frozen
snapshot of everything to write - on the GUI thread and hands it to :func:`run_save`, either
on a writer thread (autosave: the GUI never waits for the disk) or directly (``flush`` on
close). :func:`run_save` touches only files: it writes the sidecar atomically, falls back to
the user's data folder when the recording's folder cannot be written, and moves an
unreadable old sidecar aside instead of overwriting it.

Timing (the guarantee the kill test checks)
-------------------------------------------
With a loss bound of ``N`` seconds (:data:`AUTOSAVE_MS`), a write starts :func:`debounce_ms`
after the last edit, and at the latest :func:`max_wait_ms` (``0.5 N``) after the first
unsaved edit however fast the scorer keeps pressing keys; the remaining half of ``N`` is
the time the write itself may take (an fsync on a busy disk can take hundreds of ms: with a
quarter, the kill test lost a 2.16-s-old edit once in a fresh clone's CI, while the new
virtual environment was still being written back). A killed process therefore loses at most
the edits of the last ``N`` seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.annotations import Annotation, write_csv

AUTOSAVE_MS: Final[int] = 2000
"""Default loss bound ``N``: a kill loses at most the edits of the last 2 s."""


def max_wait_ms(bound_ms: int) -> int:
    """Latest start of a write after the first unsaved edit (half the loss bound)."""
    return max(1, int(bound_ms * 0.5))


def debounce_ms(bound_ms: int) -> int:
    """Quiet time after the last edit before a write starts (a quarter of the bound)."""
    return max(1, int(bound_ms * 0.25))


def retry_ms(bound_ms: int) -> int:
    """Delay before a failed write is tried again (at least 1 s: no busy loop)."""
    return max(1000, int(bound_ms))


@dataclass(frozen=True, slots=True)
class SaveJob:
    """Everything one write needs, frozen on the GUI thread.

    Attributes
    ----------
    generation : int
        The store's edit counter when the snapshot was taken.
    data : tuple of Annotation
        Events plus one stage annotation per run (frozen dataclasses).
    target : Path
        Where to write.
    fallback : Path or None
        Where to write when ``target`` cannot be written.
    recording : Path or None
        The recording: never written.
    broken : frozenset of Path
        Unreadable sidecars: moved aside (``.unreadable``) before being replaced.
    """

    generation: int
    data: tuple[Annotation, ...]
    target: Path
    fallback: Path | None
    recording: Path | None
    broken: frozenset[Path]


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    """What :func:`run_save` did.

    Attributes
    ----------
    job : SaveJob
        The job.
    written : Path or None
        The file written (``target`` or ``fallback``); ``None`` when nothing was.
    notes : tuple of str
        Messages for the user (fallback in use, unreadable sidecar kept aside).
    error : str
        One line saying why nothing was written (empty on success).
    kept_aside : frozenset of Path
        Broken sidecars that were moved aside.
    """

    job: SaveJob
    written: Path | None
    notes: tuple[str, ...] = ()
    error: str = ""
    kept_aside: frozenset[Path] = frozenset()


def one_line(exc: BaseException) -> str:
    """The user-facing line of an exception."""
    return exc.one_line() if isinstance(exc, SleepLMError) else (str(exc) or type(exc).__name__)


def run_save(job: SaveJob) -> SaveOutcome:
    """Write ``job`` (thread-safe: touches only files, never the store).

    Parameters
    ----------
    job : SaveJob
        The snapshot to write.

    Returns
    -------
    SaveOutcome
        What was written; I/O errors are in ``error``, never raised.

    Raises
    ------
    ValueError
        When a target is the recording itself (a programming error, never a user's).
    """
    kept: set[Path] = set()
    notes: list[str] = []
    try:
        _write(job, job.target, kept, notes)
        return SaveOutcome(job, job.target, tuple(notes), "", frozenset(kept))
    except (SleepLMError, OSError) as exc:
        first = one_line(exc)
    fallback = job.fallback
    if fallback is None or fallback == job.target:
        return SaveOutcome(job, None, tuple(notes), first, frozenset(kept))
    try:
        fallback.parent.mkdir(parents=True, exist_ok=True)
        _write(job, fallback, kept, notes)
    except (SleepLMError, OSError) as exc2:
        return SaveOutcome(
            job, None, tuple(notes), f"{first}; also failed: {one_line(exc2)}", frozenset(kept)
        )
    notes.append(
        f"Cannot write beside the recording ({first}); annotations are saved to {fallback}"
    )
    return SaveOutcome(job, fallback, tuple(notes), "", frozenset(kept))


def _write(job: SaveJob, path: Path, kept: set[Path], notes: list[str]) -> None:
    if job.recording is not None and path.absolute() == job.recording.absolute():
        raise ValueError("refusing to write over the recording")
    if path in job.broken and path not in kept and path.is_file():
        aside = path.with_name(path.name + ".unreadable")
        os.replace(path, aside)
        kept.add(path)
        notes.append(f"The unreadable sidecar was kept as {aside}")
    write_csv(job.data, path)
