"""Build a report without a window: ``sleepviewer FILE --report OUT.pdf|OUT.html``.

:func:`build_report_headless` opens the recording the way the viewer does
(:meth:`Recording.open`, with an optional annotation sidecar), assembles the
:class:`~sleepviewer.report.model.ReportData` and writes it atomically. Drawing needs a
QGuiApplication; when none exists one is created on the ``offscreen`` platform, so this runs
on a server without a display.
"""

from __future__ import annotations

import os
import sys
from os import PathLike
from pathlib import Path

from PyQt6.QtCore import QCoreApplication
from PyQt6.QtGui import QGuiApplication

from sleeplm_core.io.recording import Recording
from sleepviewer.report.export import REPORT_SUFFIXES, ReportError, export_report
from sleepviewer.report.model import build_report_data

__all__ = ["build_report_headless", "ensure_gui_app"]

_APP: list[QGuiApplication] = []  # keeps a created application alive for the process


def ensure_gui_app() -> QCoreApplication:
    """Return the running Qt application, creating an offscreen QGuiApplication if none.

    Raises
    ------
    ReportError
        When a plain QCoreApplication runs (it cannot draw fonts or images).
    """
    app = QCoreApplication.instance()
    if app is None:
        # No window is ever shown: do not require (or touch) a display.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _APP.append(QGuiApplication(sys.argv[:1] or ["sleepviewer"]))
        return _APP[0]
    if not isinstance(app, QGuiApplication):
        raise ReportError(None, "a report needs a QGuiApplication, not a QCoreApplication")
    return app


def build_report_headless(
    recording_path: str | PathLike[str],
    out_path: str | PathLike[str],
    annotations: str | PathLike[str] | None = None,
) -> Path:
    """Write the report of a recording to ``out_path`` (``.pdf`` or ``.html``) and return it.

    Parameters
    ----------
    recording_path : str or PathLike
        EDF/EDF+/BDF recording.
    out_path : str or PathLike
        The report; its suffix chooses the format.
    annotations : str or PathLike, optional
        A sidecar annotation file (NSRR XML, CSV, EDF+) merged with the recording's own.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    SleepLMError
        ``RecordingError`` / ``AnnotationError`` for unreadable inputs, ``ReportError``
        for an unknown suffix or an unwritable path; all print as one line.
    """
    out = Path(out_path)
    if out.suffix.lower() not in REPORT_SUFFIXES:  # refuse before minutes of work
        raise ReportError(out, f"unknown report format {out.suffix or '(none)'!r}; "
                               "use .pdf or .html")
    ensure_gui_app()
    with Recording.open(recording_path, annotations=annotations) as rec:
        data = build_report_data(rec)
    return export_report(out, data)
