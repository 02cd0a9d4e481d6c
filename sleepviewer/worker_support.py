"""Small helpers of the model worker, free of Qt and torch: request ids, progress text, weak slots.

:class:`RequestLedger` decides which request ids are still wanted, :class:`EtaClock` and
:func:`eta_text` phrase progress, :func:`weak_slot` keeps a connection from holding its object
alive. :mod:`sleepviewer.workers` uses them (and re-exports them).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any


class RequestLedger:
    """Which request ids are still wanted; shared by the GUI and the worker thread (locked).

    A request is stale when a newer request of the same kind was issued, or when
    :meth:`cancel_all` was called after it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._latest: dict[str, int] = {}
        self._cancelled_upto = 0

    def issue(self, kind: str) -> int:
        """A new request id, which becomes the latest of ``kind``."""
        with self._lock:
            self._next += 1
            self._latest[kind] = self._next
            return self._next

    def cancel_all(self) -> None:
        """Make every request issued so far stale."""
        with self._lock:
            self._cancelled_upto = self._next

    def latest(self, kind: str) -> int | None:
        """The id of the latest request of ``kind``, if any was issued."""
        with self._lock:
            return self._latest.get(kind)

    def is_current(self, kind: str, request_id: int) -> bool:
        """Whether ``request_id`` is the latest of ``kind`` and not cancelled."""
        with self._lock:
            return request_id > self._cancelled_upto and self._latest.get(kind) == request_id


class EtaClock:
    """Percent done and an estimate of the time left, as one line of text.

    >>> clock = EtaClock("Embedding night", now=lambda: 10.0)
    >>> clock.start_time = 0.0
    >>> clock.update(43, 100)
    (43, 'Embedding night: 43% — about 15 s left')
    """

    def __init__(self, label: str, now: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self._now = now
        self.start_time = now()

    def update(self, done: int, total: int) -> tuple[int, str]:
        """``(percent, text)`` after ``done`` of ``total`` units of work."""
        total = max(int(total), 1)
        done = min(max(int(done), 0), total)
        percent = int(100 * done / total)
        text = f"{self.label}: {percent}%"
        elapsed = self._now() - self.start_time
        if 0 < done < total and elapsed > 0.2:
            text += f" — {eta_text(elapsed / done * (total - done))}"
        return percent, text


def eta_text(seconds: float) -> str:
    """``"about 20 s left"``, ``"about 3 min left"``, ``"a few seconds left"``."""
    if seconds < 8:
        return "a few seconds left"
    if seconds < 60:
        return f"about {int(5 * round(seconds / 5))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def weak_slot(method: Callable[..., Any]) -> Callable[..., None]:
    """Wrap a bound method so a connection does not keep its object alive (mne's idea).

    The returned callable does nothing once the object is gone (or its C++ side deleted).
    """
    ref = weakref.WeakMethod(method)  # type: ignore[arg-type]

    def slot(*args: Any) -> None:
        bound = ref()
        if bound is None:
            return
        try:
            bound(*args)
        except RuntimeError as exc:  # "wrapped C/C++ object ... has been deleted"
            if "has been deleted" not in str(exc):
                raise

    return slot
