"""Errors of background jobs: the cancellation signal and the one-line message for the user."""

from __future__ import annotations

from sleeplm_core.errors import SleepLMError
from sleepviewer.query import QueryError

MAX_MESSAGE = 240
"""Longest message shown in the status bar; longer ones are cut with an ellipsis."""


class Cancelled(Exception):
    """Raised by a job's own checks between steps when the user cancelled it."""


def one_line(exc: BaseException) -> str:
    """An exception as one line for the status bar (no traceback)."""
    if isinstance(exc, SleepLMError):
        text = exc.one_line()
    elif isinstance(exc, QueryError):
        text = " ".join(str(exc).split())
    elif isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        text = "out of memory: close other programs or run the model on the CPU"
    else:
        detail = " ".join(str(exc).split())
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
