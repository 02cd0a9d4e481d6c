"""Read a recording's annotations off the GUI thread, so that its first page paints at once.

An EDF+ keeps its annotations in every data record: 100 000 of them take about a second to
parse, time in which the traces can already be shown. :class:`AnnotationLoader` touches
``recording.annotations`` (parsed once, then cached by the recording) on a Python thread and
emits ``loaded`` through Qt's queued connection, so the slot runs on the GUI thread; the
window then builds its annotation store from the cached annotations.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal


class AnnotationLoader(QObject):
    """Parse ``recording.annotations`` on a thread; ``loaded(recording)`` on the GUI thread.

    Signals
    -------
    loaded(object)
        The recording whose annotations are now cached (or failed: the store reading them
        again on the GUI thread reports the problem the usual way).
    """

    loaded = pyqtSignal(object)

    def start(self, recording: Any) -> None:
        """Start reading; returns at once."""
        threading.Thread(
            target=self._run, args=(recording,), name="sleepviewer-annotations", daemon=True
        ).start()

    def _run(self, recording: Any) -> None:
        with contextlib.suppress(Exception):  # reported when the store reads them again
            _ = recording.annotations
        with contextlib.suppress(RuntimeError):  # the window went away meanwhile
            self.loaded.emit(recording)
