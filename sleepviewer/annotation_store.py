"""The editable annotations of one recording: undoable commands, a fast index and autosave.

:class:`AnnotationStore` wraps the recording's :class:`~sleeplm_core.io.annotations.Annotations`
(events) and the per-epoch stage codes (the hypnogram) behind a ``QUndoStack``; every edit -
adding, deleting or editing events, scoring epochs - is a command and can be undone.

Edits are saved to a sidecar beside the recording, ``<stem>.sleepviewer.csv`` (the name
:func:`sleeplm_core.io.sidecar.find_sidecar` looks for first), written atomically by
:func:`~sleeplm_core.io.annotations.write_csv` (temporary file, fsync, rename) on a writer
thread from a frozen snapshot. A write starts a moment after the last edit and at the latest
``0.5 N`` after the first unsaved one (``N`` = 2 s, :mod:`sleepviewer.autosave`), so a
killed viewer loses at most the last ``N`` seconds of scoring; a failed write is shown and
tried again. The recording itself is never written. When the recording's folder cannot be
written, the sidecar goes to the user's data folder (``QStandardPaths.AppDataLocation/sidecars``)
and :attr:`notice` says so. On reopening, the newest of the two sidecars is loaded, so no edit
is lost, and :attr:`notice` says what was restored.

Main names
----------
=====================  ===================================================================
``AnnotationStore``    the store (signals ``changed``, ``eventsChanged``, ``stagesChanged``,
                       ``notice``, ``saved``)
``AddAnnotation``      command: add one or more events
``DeleteAnnotation``   command: delete one or more events
``EditAnnotation``     command: replace one event by another
``SetStage``           command: score epochs
``sidecar_path_for``   ``night.edf`` → ``night.sleepviewer.csv``
=====================  ===================================================================
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np
from PyQt6 import sip
from PyQt6.QtCore import QObject, QStandardPaths, QTimer, pyqtSignal
from PyQt6.QtGui import QUndoCommand, QUndoStack

from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.annotations import Annotation, Annotations, read_annotations
from sleeplm_core.io.hypnogram import Hypnogram
from sleeplm_core.stages import EPOCH_S, INT_TO_STAGE, STAGE_TO_INT
from sleepviewer.autosave import (
    AUTOSAVE_MS,
    SaveJob,
    SaveOutcome,
    debounce_ms,
    max_wait_ms,
    one_line,
    retry_ms,
    run_save,
)
from sleepviewer.scoring import (
    UNSCORED,
    EpochGrid,
    ScorePlan,
    codes_from_annotations,
    plan_score,
    stage_annotations,
)
from sleepviewer.state import RecordingLike

SIDECAR_SUFFIX: Final[str] = ".sleepviewer.csv"
"""Suffix of the viewer's sidecar file (after the recording's stem)."""

_LONG_S: Final[float] = 600.0
"""Events longer than this are kept out of the bisect window and scanned linearly."""

_BULK: Final[int] = 16
"""Adding or deleting more events than this rebuilds the collection in one pass."""


def sidecar_path_for(recording_path: str | Path) -> Path:
    """Return the sidecar beside a recording: ``night.edf`` → ``night.sleepviewer.csv``."""
    p = Path(recording_path)
    return p.with_name(p.stem + SIDECAR_SUFFIX)


def fallback_sidecar_path(recording_path: str | Path, fallback_dir: str | Path | None) -> Path:
    """Return the sidecar in the user's data folder, used when the recording's folder is read-only.

    Parameters
    ----------
    recording_path : str or Path
        The recording.
    fallback_dir : str or Path or None
        The folder; ``None`` means ``QStandardPaths.AppDataLocation/sidecars``.

    Returns
    -------
    Path
        ``<fallback_dir>/<stem>-<hash of the absolute path>.sleepviewer.csv``: recordings with
        equal names in different folders do not collide.
    """
    p = Path(recording_path).absolute()
    if fallback_dir is None:
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        fallback_dir = Path(base or Path.home() / ".sleepviewer") / "sidecars"
    digest = hashlib.sha1(str(p).encode("utf-8")).hexdigest()[:10]
    return Path(fallback_dir) / f"{p.stem}-{digest}{SIDECAR_SUFFIX}"


class AnnotationStore(QObject):
    """Undoable, autosaved annotations and stage scores of one recording.

    Parameters
    ----------
    annotations : Annotations or iterable of Annotation
        The initial annotations. Stage annotations become per-epoch codes (majority rule);
        the rest are the events.
    duration_s : float
        Recording duration; fixes the epoch grid.
    epoch_s : float
        Scoring epoch length.
    sidecar_path : Path or None
        Where autosave writes; ``None`` switches autosave off.
    fallback_dir : Path or None
        Folder for the sidecar when ``sidecar_path`` cannot be written (``None``: the user's
        data folder).
    recording_path : Path or None
        The recording, for naming the fallback sidecar (default: derived from ``sidecar_path``).
        It is never written: a sidecar path equal to it is refused.
    autosave_ms : int
        Loss bound ``N`` of the autosave: a write starts at most ``0.5 N`` after the first
        unsaved edit (and a quarter of ``N`` after the last one), on a writer thread.
    parent : QObject or None
        Qt parent.

    Signals
    -------
    changed()
        After any edit, undo or redo.
    eventsChanged()
        After events were added, removed or edited.
    stagesChanged(int, int)
        After epochs ``[first, stop)`` were (un)scored.
    notice(str)
        A message for the status bar (fallback sidecar in use, a sidecar could not be read).
    saved(str)
        After the sidecar was written; the path.
    saveFailed(str)
        A write failed (also a :attr:`notice`); it is tried again after
        :func:`~sleepviewer.autosave.retry_ms`, and the edits stay pending.
    """

    changed = pyqtSignal()
    eventsChanged = pyqtSignal()
    stagesChanged = pyqtSignal(int, int)
    notice = pyqtSignal(str)
    saved = pyqtSignal(str)
    saveFailed = pyqtSignal(str)
    _writeDone = pyqtSignal(object)

    def __init__(
        self,
        annotations: Annotations | Iterable[Annotation] = (),
        *,
        duration_s: float,
        epoch_s: float = EPOCH_S,
        sidecar_path: Path | None = None,
        fallback_dir: Path | None = None,
        recording_path: Path | None = None,
        autosave_ms: int = AUTOSAVE_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        items = list(annotations)
        self._duration_s = float(duration_s)
        self._grid = EpochGrid.for_duration(duration_s, epoch_s)
        self._events = Annotations(a for a in items if not a.is_stage)
        self._codes = codes_from_annotations((a for a in items if a.is_stage), self._grid)
        self._short: list[Annotation] = []
        self._onsets: list[float] = []
        self._long: list[Annotation] = []
        self._index_valid = False
        self._last_change: tuple[tuple[Annotation, ...], tuple[Annotation, ...]] | None = None
        self._undo = QUndoStack(self)
        self._undo.setUndoLimit(0)  # unlimited: a night of scoring must be fully undoable
        self._recording_path = recording_path
        self._primary = sidecar_path
        self._target = sidecar_path
        self._fallback_dir = fallback_dir
        self._broken: set[Path] = set()  # unreadable sidecars: kept aside, never overwritten
        self._last_notice = ""
        self._generation = 0  # edits so far; the sidecar holds those up to _saved_generation
        self._saved_generation = 0
        self._writer: threading.Thread | None = None
        self._writer_job: SaveJob | None = None
        self._writer_outcome: SaveOutcome | None = None
        self._again = False
        self._debounce = self._single_shot(debounce_ms(autosave_ms), self.save_soon)
        self._max_wait = self._single_shot(max_wait_ms(autosave_ms), self.save_soon)
        self._retry = self._single_shot(retry_ms(autosave_ms), self.save_soon)
        self._writeDone.connect(self._on_write_done)  # queued: emitted by the writer thread
        if sidecar_path is not None and recording_path is not None:
            if Path(sidecar_path).absolute() == Path(recording_path).absolute():
                raise ValueError("the sidecar path must differ from the recording's path")

    def _single_shot(self, ms: int, slot: Callable[[], None]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    # -- construction from a recording ----------------------------------------------------
    @classmethod
    def for_recording(
        cls,
        recording: RecordingLike,
        *,
        fallback_dir: Path | None = None,
        autosave_ms: int = AUTOSAVE_MS,
        parent: QObject | None = None,
    ) -> AnnotationStore:
        """Return the store of a recording, restoring the newest sidecar when there is one.

        Parameters
        ----------
        recording : RecordingLike
            Needs ``path``, ``duration_s``, ``start``, ``annotations`` and ``hypnogram``
            (``sleeplm_core.io.recording.Recording``).
        fallback_dir : Path or None
            Folder for the sidecar when the recording's folder is read-only.
        autosave_ms : int
            Loss bound of the autosave (see the class).
        parent : QObject or None
            Qt parent.

        Returns
        -------
        AnnotationStore
            The store; problems while loading a sidecar are emitted as :attr:`notice` once
            the event loop runs (so that a status bar connected right after gets them).
        """
        rec_path = Path(recording.path)
        primary = sidecar_path_for(rec_path)
        fallback = fallback_sidecar_path(rec_path, fallback_dir)
        found = [p for p in (primary, fallback) if p.is_file()]
        found.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
        items: list[Annotation] | None = None
        notes: list[str] = []
        broken: set[Path] = set()
        for path in found:
            try:
                start = getattr(recording, "start", None)
                items = list(read_annotations(path, duration_s=recording.duration_s, start=start))
            except SleepLMError as exc:
                notes.append(f"Ignored unreadable annotation sidecar: {exc.one_line()}")
                broken.add(path)
                continue
            notes.append(_restored_note(path, items))
            break
        if items is None:
            items = list(recording.annotations)
            if not any(a.is_stage for a in items) and recording.hypnogram is not None:
                items.extend(recording.hypnogram.to_annotations())
        store = cls(
            items,
            duration_s=recording.duration_s,
            sidecar_path=primary,
            fallback_dir=fallback_dir,
            recording_path=rec_path,
            autosave_ms=autosave_ms,
            parent=parent,
        )
        store._broken = broken
        store._defer_notices(notes)
        return store

    # -- read access ----------------------------------------------------------------------
    @property
    def undo_stack(self) -> QUndoStack:
        """The undo stack (for Edit → Undo/Redo actions: ``createUndoAction``)."""
        return self._undo

    @property
    def grid(self) -> EpochGrid:
        """The scoring grid."""
        return self._grid

    @property
    def duration_s(self) -> float:
        """Recording duration in seconds."""
        return self._duration_s

    @property
    def sidecar_path(self) -> Path | None:
        """Where the next autosave writes (the fallback once the primary failed)."""
        return self._target

    @property
    def last_notice(self) -> str:
        """The last message emitted by :attr:`notice` (empty when none)."""
        return self._last_notice

    @property
    def stage_codes(self) -> np.ndarray:
        """Per-epoch YASA codes, read-only ``int8`` view of shape ``(n_epochs,)``."""
        view = self._codes.view()
        view.flags.writeable = False
        return view

    def stage_at(self, epoch: int) -> str:
        """Return the stage of ``epoch`` (``"UNS"`` when unscored)."""
        return INT_TO_STAGE[int(self._codes[epoch])]

    def event_count(self) -> int:
        """Number of events (non-stage annotations)."""
        return len(self._events)

    def event_at(self, row: int) -> Annotation:
        """Return event number ``row`` in onset order."""
        return self._events[row]

    def events(self) -> list[Annotation]:
        """Return all events in onset order (a new list)."""
        return list(self._events)

    @property
    def last_change(self) -> tuple[tuple[Annotation, ...], tuple[Annotation, ...]] | None:
        """``(added, removed)`` events of the last ``eventsChanged``; None after a bulk edit.

        Lets a view that keeps its own copy of the events update it in place.
        """
        return self._last_change

    def event_onsets(self) -> list[float]:
        """Return the onsets of :meth:`events`, in the same order (a new list)."""
        return self._events.onsets()

    def labels(self) -> list[str]:
        """Return the event labels in use, sorted."""
        return sorted(self._events.counts())

    def label_counts(self) -> dict[str, int]:
        """Return the number of events per label, labels sorted."""
        counts = self._events.counts()
        return {lab: counts[lab] for lab in sorted(counts)}

    def in_range(self, start_s: float, stop_s: float) -> list[Annotation]:
        """Return the events overlapping ``[start_s, stop_s)``, in onset order.

        Uses a sorted onset index (bisect), so a page of a 10,000-event night costs
        O(log n + k). An event of zero duration overlaps when its onset lies inside.
        """
        self._ensure_index()
        lo = bisect.bisect_left(self._onsets, start_s - _LONG_S)
        hi = bisect.bisect_left(self._onsets, stop_s)
        out = [
            a
            for a in self._short[lo:hi]
            if a.offset_s > start_s or (a.duration_s == 0 and a.onset_s >= start_s)
        ]
        longs = [a for a in self._long if a.onset_s < stop_s and a.offset_s > start_s]
        if longs:
            out = sorted(out + longs, key=lambda a: a.onset_s)
        return out

    def annotations(self) -> Annotations:
        """Return everything as one collection: events plus one stage annotation per run."""
        return Annotations([*self._events, *stage_annotations(self._codes, self._grid)])

    def hypnogram(self) -> Hypnogram:
        """Return the scores as a :class:`~sleeplm_core.io.hypnogram.Hypnogram`.

        Like ``Hypnogram.from_annotations``, the partial last epoch (if any) is left out, so
        sleep statistics count whole epochs only.
        """
        n_full = math.floor(self._duration_s / self._grid.epoch_s + 1e-9)
        n_full = min(n_full, self._grid.n_epochs)
        return Hypnogram.from_integers(self._codes[:n_full].copy(), epoch_s=self._grid.epoch_s)

    # -- edits (all undoable) -------------------------------------------------------------
    def add(self, annotations: Annotation | Sequence[Annotation]) -> None:
        """Add one or more events (one undo step)."""
        self._undo.push(AddAnnotation(self, annotations))

    def delete(self, annotations: Annotation | Sequence[Annotation]) -> None:
        """Delete one or more events (one undo step)."""
        self._undo.push(DeleteAnnotation(self, annotations))

    def edit(self, old: Annotation, new: Annotation) -> None:
        """Replace event ``old`` by ``new`` (one undo step; nothing when equal)."""
        if old != new:
            self._undo.push(EditAnnotation(self, old, new))

    def set_stage(self, epochs: int | Sequence[int], stage: str) -> None:
        """Score epochs with a YASA stage (``"UNS"`` unscores) as one undo step."""
        cmd = SetStage(self, epochs, stage)
        if cmd.changes_anything():
            self._undo.push(cmd)

    def merge(self, annotations: Iterable[Annotation], *, stages: bool = True) -> int:
        """Import annotations (File → Import) as one undo step.

        Events not already present are added; with ``stages``, the epochs the imported stage
        annotations score are overwritten (epochs they leave unscored keep their stage).

        Returns
        -------
        int
            Number of events added plus epochs whose stage changed.
        """
        items = list(annotations)
        have = set(self._events)
        new_events = list(dict.fromkeys(a for a in items if not a.is_stage and a not in have))
        commands: list[QUndoCommand] = []
        if new_events:
            commands.append(AddAnnotation(self, new_events))
        n_epochs = 0
        if stages:
            codes = codes_from_annotations((a for a in items if a.is_stage), self._grid)
            for code in np.unique(codes[codes != UNSCORED]):
                cmd = SetStage(self, np.flatnonzero(codes == code), INT_TO_STAGE[int(code)])
                if cmd.n_changed():
                    n_epochs += cmd.n_changed()
                    commands.append(cmd)
        if not commands:
            return 0
        self._undo.beginMacro(f"Import {len(new_events)} events, {n_epochs} epochs")
        for cmd in commands:
            self._undo.push(cmd)
        self._undo.endMacro()
        return len(new_events) + n_epochs

    def score(self, epoch: int | Sequence[int], stage: str, *, auto_advance: bool = True) -> int:
        """Score the current (or selected) epochs and return the epoch to show next.

        Parameters
        ----------
        epoch : int or sequence of int
            The current epoch or the selected epochs.
        stage : str
            The stage (see :func:`sleepviewer.scoring.stage_for_key`).
        auto_advance : bool
            Return the epoch after the last scored one (the scorer's usual rhythm).

        Returns
        -------
        int
            The epoch to show next.
        """
        plan: ScorePlan = plan_score(epoch, stage, self._grid, auto_advance=auto_advance)
        self.set_stage(plan.epochs, plan.stage)
        return plan.next_epoch

    # -- saving ---------------------------------------------------------------------------
    @property
    def has_unsaved(self) -> bool:
        """Whether edits exist that no finished write holds yet."""
        return self._target is not None and self._generation != self._saved_generation

    def flush(self) -> Path | None:
        """Write pending edits now, waiting for the disk (call on close).

        Returns
        -------
        Path or None
            The sidecar written; ``None`` when nothing was pending or nothing could be
            written (then :attr:`has_unsaved` stays true and :attr:`notice` says why).
        """
        done = self._join_writer()
        if not self.has_unsaved:
            return done
        return self.save_now()

    def flush_or_reason(self) -> str | None:
        """:meth:`flush`, then return why edits are still unsaved (``None``: all on disk)."""
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - reported to the user, never swallowed
            return f"Annotations NOT saved: {one_line(exc)}"
        return (self._last_notice or "Annotations NOT saved") if self.has_unsaved else None

    def save_now(self) -> Path | None:
        """Write the sidecar now on this thread, falling back to the user's data folder.

        Returns
        -------
        Path or None
            The file written, or ``None`` when autosave is off or no location could be
            written (a :attr:`notice` then says why and a retry is scheduled).
        """
        self._stop_timers()
        self._join_writer()
        if self._target is None:
            return None
        return self._apply(run_save(self._job()))

    def save_soon(self) -> None:
        """Start writing pending edits on the writer thread (focus loss, timers); no wait."""
        if sip.isdeleted(self):  # a late timer or focus event after the store was destroyed
            return
        self._stop_timers()
        if not self.has_unsaved:
            return
        if self._writer is not None:
            self._again = True  # written when the running write is done
            return
        job = self._job()
        self._writer_job = job
        self._writer = threading.Thread(
            target=self._write_in_thread, args=(job,), name="sleepviewer-autosave"
        )
        self._writer.start()

    def _job(self) -> SaveJob:
        assert self._target is not None
        return SaveJob(
            generation=self._generation,
            data=tuple(self.annotations()),
            target=self._target,
            fallback=self._fallback_path(),
            recording=self._recording_path,
            broken=frozenset(self._broken),
        )

    def _write_in_thread(self, job: SaveJob) -> None:
        try:
            outcome = run_save(job)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never lost in a thread
            outcome = SaveOutcome(job, None, (), f"unexpected error: {one_line(exc)}")
        self._writer_outcome = outcome
        with contextlib.suppress(RuntimeError):  # the store was deleted meanwhile
            self._writeDone.emit(outcome)

    def _join_writer(self) -> Path | None:
        """Wait for a running background write and apply its outcome; return its file."""
        writer = self._writer
        if writer is None:
            return None
        writer.join()
        outcome = self._writer_outcome
        self._writer = self._writer_job = self._writer_outcome = None
        self._again = False
        return None if outcome is None else self._apply(outcome)

    def _on_write_done(self, outcome: SaveOutcome) -> None:
        if self._writer_job is not outcome.job:
            return  # already applied by flush()
        if self._writer is not None:
            self._writer.join()
        self._writer = self._writer_job = self._writer_outcome = None
        self._apply(outcome)
        if self._again:
            self._again = False
            self.save_soon()

    def _apply(self, outcome: SaveOutcome) -> Path | None:
        self._broken -= outcome.kept_aside
        for note in outcome.notes:
            self._emit_notice(note)
        if outcome.written is None:
            wait_s = self._retry.interval() / 1000
            text = f"Annotations NOT saved: {outcome.error} (trying again in {wait_s:g} s)"
            self._emit_notice(text)
            self.saveFailed.emit(text)
            self._retry.start()
            return None
        self._target = outcome.written
        self._saved_generation = max(self._saved_generation, outcome.job.generation)
        if outcome.job.generation == self._generation:
            self._undo.setClean()
            self._retry.stop()
        self.saved.emit(str(outcome.written))
        return outcome.written

    def _stop_timers(self) -> None:
        self._debounce.stop()
        self._max_wait.stop()
        self._retry.stop()

    def _fallback_path(self) -> Path | None:
        rec = self._recording_path
        if rec is None and self._primary is not None:
            rec = self._primary.with_name(self._primary.name.removesuffix(SIDECAR_SUFFIX))
        if rec is None:
            return None
        return fallback_sidecar_path(rec, self._fallback_dir)

    def _defer_notices(self, notes: list[str]) -> None:
        """Emit ``notes`` once the event loop runs, so that slots connected later get them."""
        if not notes:
            return
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: [self._emit_notice(n) for n in notes])
        timer.timeout.connect(timer.deleteLater)
        timer.start(0)

    def _emit_notice(self, text: str) -> None:
        self._last_notice = text
        self.notice.emit(text)

    # -- called by the commands -----------------------------------------------------------
    def _insert(self, items: Sequence[Annotation]) -> None:
        if len(items) > _BULK:
            self._events = Annotations([*self._events, *items])
            self._index_valid = False
            self._last_change = None
        else:
            for a in items:
                self._events.add(a)
                self._index_insert(a)
            self._last_change = (tuple(items), ())
        self._events_changed()

    def _remove(self, items: Sequence[Annotation]) -> None:
        if len(items) > _BULK:
            # One pass instead of k list searches: deleting 5,000 of 10,000 stays instant.
            wanted = Counter(items)
            kept = []
            for a in self._events:
                if wanted.get(a, 0) > 0:
                    wanted[a] -= 1
                else:
                    kept.append(a)
            if +wanted:
                raise ValueError(f"{sum(wanted.values())} annotation(s) to delete are absent")
            self._events = Annotations(kept)
            self._index_valid = False
            self._last_change = None
        else:
            for a in items:
                self._events.remove(a)
                self._index_remove(a)
            self._last_change = ((), tuple(items))
        self._events_changed()

    def _replace(self, old: Annotation, new: Annotation) -> None:
        self._events.replace(old, new)
        self._index_remove(old)
        self._index_insert(new)
        self._last_change = ((new,), (old,))
        self._events_changed()

    def _set_codes(self, epochs: np.ndarray, codes: np.ndarray) -> None:
        self._codes[epochs] = codes
        if epochs.size:
            self.stagesChanged.emit(int(epochs.min()), int(epochs.max()) + 1)
        self._touched()

    def _codes_of(self, epochs: np.ndarray) -> np.ndarray:
        return self._codes[epochs].copy()

    def _events_changed(self) -> None:
        self.eventsChanged.emit()
        self._touched()

    def _touched(self) -> None:
        self.changed.emit()
        if self._target is not None:
            self._generation += 1
            self._debounce.start()  # restarted by every edit ...
            if not self._max_wait.isActive():
                self._max_wait.start()  # ... but not this one: fast scoring is saved too

    # The page index is updated in place for a few events (an add or undo in 100 000 events
    # costs O(log n) searches and one list move) and rebuilt after bulk edits.
    def _index_insert(self, a: Annotation) -> None:
        if not self._index_valid:
            return
        if a.duration_s > _LONG_S:
            self._long.append(a)
            return
        i = bisect.bisect_right(self._short, event_order(a), key=event_order)
        self._short.insert(i, a)
        self._onsets.insert(i, a.onset_s)

    def _index_remove(self, a: Annotation) -> None:
        if not self._index_valid:
            return
        if a.duration_s > _LONG_S:
            self._long.remove(a)
            return
        i = bisect.bisect_left(self._short, event_order(a), key=event_order)
        while i < len(self._short) and self._short[i] != a:
            i += 1
        if i == len(self._short):
            self._index_valid = False  # cannot happen; rebuild rather than guess
            return
        del self._short[i]
        del self._onsets[i]

    def _ensure_index(self) -> None:
        if self._index_valid:
            return
        items = list(self._events)
        self._short = [a for a in items if a.duration_s <= _LONG_S]
        self._onsets = [a.onset_s for a in self._short]
        self._long = [a for a in items if a.duration_s > _LONG_S]
        self._index_valid = True


def _restored_note(path: Path, items: Sequence[Annotation]) -> str:
    """Say what a reopened sidecar brought back: events, scored time, when it was saved."""
    events = sum(1 for a in items if not a.is_stage)
    scored = sum(a.duration_s for a in items if a.is_stage and a.label != "Sleep stage ?")
    epochs = round(scored / EPOCH_S)
    when = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"Restored your annotation edits from {path} (saved {when}): "
        f"{epochs} scored epoch{'s' * (epochs != 1)}, {events} event{'s' * (events != 1)}"
    )


def event_order(a: Annotation) -> tuple[float, str, float, str, tuple[tuple[str, str], ...]]:
    """The order of :class:`Annotations` (onset, label, duration, channel, extras)."""
    return (a.onset_s, a.label, a.duration_s, a.channel or "", a.extras)


def _as_list(annotations: Annotation | Sequence[Annotation]) -> list[Annotation]:
    return [annotations] if isinstance(annotations, Annotation) else list(annotations)


def _describe(items: Sequence[Annotation]) -> str:
    if len(items) == 1:
        return f"“{items[0].label}” at {items[0].onset_s:.1f} s"
    return f"{len(items)} annotations"


class AddAnnotation(QUndoCommand):
    """Add one or more events.

    Parameters
    ----------
    store : AnnotationStore
        The store.
    annotations : Annotation or sequence of Annotation
        The events; stage annotations are refused (use :class:`SetStage`).
    """

    def __init__(self, store: AnnotationStore, annotations: Annotation | Sequence[Annotation]):
        self._items = _as_list(annotations)
        if any(a.is_stage for a in self._items):
            raise ValueError("stage annotations are scored with SetStage, not added")
        super().__init__(f"Add {_describe(self._items)}")
        self._store = store

    def redo(self) -> None:  # noqa: D102
        self._store._insert(self._items)

    def undo(self) -> None:  # noqa: D102
        self._store._remove(self._items)


class DeleteAnnotation(QUndoCommand):
    """Delete one or more events.

    Parameters
    ----------
    store : AnnotationStore
        The store.
    annotations : Annotation or sequence of Annotation
        The events (each must be in the store).
    """

    def __init__(self, store: AnnotationStore, annotations: Annotation | Sequence[Annotation]):
        self._items = _as_list(annotations)
        super().__init__(f"Delete {_describe(self._items)}")
        self._store = store

    def redo(self) -> None:  # noqa: D102
        self._store._remove(self._items)

    def undo(self) -> None:  # noqa: D102
        self._store._insert(self._items)


class EditAnnotation(QUndoCommand):
    """Replace one event by another (label, onset, duration, channel).

    Parameters
    ----------
    store : AnnotationStore
        The store.
    old, new : Annotation
        The event before and after.
    """

    def __init__(self, store: AnnotationStore, old: Annotation, new: Annotation) -> None:
        if new.is_stage:
            raise ValueError("an event cannot become a stage; score epochs with SetStage")
        super().__init__(f"Edit {_describe([old])}")
        self._store = store
        self._old = old
        self._new = new

    def redo(self) -> None:  # noqa: D102
        self._store._replace(self._old, self._new)

    def undo(self) -> None:  # noqa: D102
        self._store._replace(self._new, self._old)


class SetStage(QUndoCommand):
    """Score one or more epochs with a stage (``"UNS"`` unscores).

    Parameters
    ----------
    store : AnnotationStore
        The store.
    epochs : int or sequence of int
        Epoch indices on the store's grid.
    stage : str
        YASA stage: ``W N1 N2 N3 REM ART UNS``.
    """

    def __init__(self, store: AnnotationStore, epochs: int | Sequence[int], stage: str) -> None:
        if stage not in STAGE_TO_INT:
            raise ValueError(f"unknown stage {stage!r}")
        idx = np.unique(np.atleast_1d(np.asarray(epochs, dtype=np.int64)))
        if idx.size and (idx[0] < 0 or idx[-1] >= store.grid.n_epochs):
            raise ValueError(f"epochs outside the recording (0..{store.grid.n_epochs - 1})")
        label = f"epoch {idx[0] + 1}" if idx.size == 1 else f"{idx.size} epochs"
        super().__init__(f"Score {label} as {stage}")
        self._store = store
        self._epochs = idx
        self._old = store._codes_of(idx)
        self._new = np.full(idx.size, STAGE_TO_INT[stage], dtype=np.int8)

    def n_changed(self) -> int:
        """Number of epochs whose stage the command changes."""
        return int(np.count_nonzero(self._old != self._new))

    def changes_anything(self) -> bool:
        """Whether applying the command would change any epoch."""
        return self.n_changed() > 0

    def redo(self) -> None:  # noqa: D102
        self._store._set_codes(self._epochs, self._new)

    def undo(self) -> None:  # noqa: D102
        self._store._set_codes(self._epochs, self._old)
