"""Load the scoring file that belongs to a recording when the viewer opens it.

The viewer shows the scoring beside a recording without being asked: an NSRR/Profusion XML
(``<stem>.xml``, ``<name>.edf.XML``), a Sleep-EDF ``*Hypnogram.edf`` or a ``<stem>.csv``
(:func:`sleeplm_core.io.sidecar.find_sidecar`), or the file named with ``--annotations``. Our
own ``.sleepviewer.csv`` (the user's edits) is restored by the annotation store on top.
A scoring file that cannot be read, or that belongs to another recording, is one line in the
status bar; the recording still opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.sidecar import find_sidecar


def load_scoring(rec: Any, recording_path: Path, explicit: str | Path | None = None) -> str | None:
    """Merge the recording's scoring file into it and return the status-bar line.

    Parameters
    ----------
    rec : Recording
        The opened recording (anything without ``load_scoring`` is left alone).
    recording_path : Path
        Where the recording lies (the scoring file is looked for beside it).
    explicit : str or Path or None
        A scoring file named by the user; replaces the search.

    Returns
    -------
    str or None
        ``"Scoring: 950 stages and 120 events from night.xml (/data)"``, the one-line reason
        a scoring file was not loaded, or ``None`` when there is none.
    """
    if not hasattr(rec, "load_scoring"):
        return None
    path = Path(explicit) if explicit is not None else find_sidecar(recording_path, own=False)
    note = None
    if path is not None:
        try:
            ann = rec.load_scoring(path)
        except SleepLMError as exc:
            note = f"Scoring not loaded: {exc.one_line()}"
        except (OSError, ValueError) as exc:  # a reader's own complaint about a bad file
            note = f"Scoring not loaded: {path}: {' '.join(str(exc).split())}"
        else:
            n_stages, n_events = len(ann.stages()), len(ann.events())
            note = (f"Scoring: {n_stages} stages and {n_events} events from {path.name} "
                    f"({path.parent})")
    for refused in (n for n in getattr(rec, "notes", []) if " not derived: " in n):
        note = f"{note} · {refused}" if note else refused  # e.g. two rates: said, not hidden
    channels = stage_channels(rec)
    if channels and (rec.hypnogram is None):
        offer = (f"hypnogram channel {channels[0]!r} in the recording: "
                 "File → Import scoring from channel")
        note = f"{note} · {offer}" if note else offer[:1].upper() + offer[1:]
    return note


def stage_channels(rec: Any) -> list[str]:
    """Names of the channels that hold a hypnogram or event codes (type STAGE, then EVENT)."""
    chans = getattr(rec, "channels", [])
    return [c.name for t in ("STAGE", "EVENT") for c in chans if c.type == t]
