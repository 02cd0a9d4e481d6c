"""The one key table: every shortcut is bound from here and listed in Help → Shortcuts.

Adding a row here both binds the key (``MainWindow`` builds a ``QAction`` per row) and documents
it; nothing else defines shortcuts.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyBinding:
    """One action and its keys.

    Parameters
    ----------
    action : str
        Action name; ``MainWindow`` dispatches it to ``_on_action_<action>``.
    keys : tuple of str
        Key sequences in ``QKeySequence`` portable text ("Ctrl+G", "PgDown").
    description : str
        What the action does, for the shortcut sheet.
    group : str
        Heading on the shortcut sheet.
    bound_by_window : bool
        ``False`` for keys another component binds itself (the language controller);
        they are listed here so that the sheet is complete and conflicts are visible.
    """

    action: str
    keys: tuple[str, ...]
    description: str
    group: str
    bound_by_window: bool = True


def _scoring_rows() -> tuple[KeyBinding, ...]:
    try:  # the scoring vocabulary lives with the annotation store (viewer part 2)
        from sleepviewer.scoring import SCORING_ACTIONS
    except ImportError:  # pragma: no cover - depends on the checkout
        return ()
    return tuple(KeyBinding(a.name, a.keys, a.text, "Scoring") for a in SCORING_ACTIONS)



KEY_TABLE: tuple[KeyBinding, ...] = (
    KeyBinding("open", ("Ctrl+O",), "Open a recording", "File"),
    KeyBinding("import_annotations", ("Ctrl+I",), "Import annotations", "File"),
    KeyBinding("import_channel_scoring", (), "Import scoring from channel…", "File"),
    KeyBinding("export", ("Ctrl+E",), "Export a report or the annotations…", "File"),
    KeyBinding("quit", ("Ctrl+Q",), "Quit", "File"),
    KeyBinding("next_epoch", ("Right",), "Next 30-s epoch", "Navigation"),
    KeyBinding("prev_epoch", ("Left",), "Previous 30-s epoch", "Navigation"),
    KeyBinding("next_page", ("PgDown",), "Next page", "Navigation"),
    KeyBinding("prev_page", ("PgUp",), "Previous page", "Navigation"),
    KeyBinding("first_page", ("Home",), "Start of the recording", "Navigation"),
    KeyBinding("last_page", ("End",), "End of the recording", "Navigation"),
    KeyBinding("go_to", ("Ctrl+G",), "Go to a time or epoch", "Navigation"),
    KeyBinding("longer_time_base", ("Ctrl+Down",), "Longer time base (zoom out)", "View"),
    KeyBinding("shorter_time_base", ("Ctrl+Up",), "Shorter time base (zoom in)", "View"),
    KeyBinding("gain_up", ("+", "="), "Increase gain (channel under the cursor, else all)",
               "View"),
    KeyBinding("gain_down", ("-",), "Decrease gain (channel under the cursor, else all)",
               "View"),
    KeyBinding("toggle_filters", ("Ctrl+F",), "Display filters on/off", "View"),
    KeyBinding("toggle_clipping", ("Ctrl+J",), "Clip traces to their rows on/off", "View"),
    KeyBinding("channel_settings", ("Ctrl+K",), "Filters and derivations…", "View"),
    KeyBinding("toggle_theme", ("Ctrl+T",), "Light/dark theme", "View"),
    KeyBinding("calibrate_screen", (), "Screen calibration (pixels per mm) for true µV/mm…",
               "View"),
    KeyBinding("shortcuts", ("F1",), "This shortcut sheet", "Help"),
    *_scoring_rows(),
    # Bound by sleepviewer.language.LanguageController (its SHORTCUTS must agree: tested).
    KeyBinding("focus_search", ("Ctrl+L",), "Search the night in words", "SleepLM", False),
    KeyBinding("next_match", ("F3",), "Next search match", "SleepLM", False),
    KeyBinding("previous_match", ("Shift+F3",), "Previous search match", "SleepLM", False),
    KeyBinding("ask", ("Ctrl+Shift+L",), "Ask SleepLM about this epoch", "SleepLM", False),
    KeyBinding("suggest_stages", ("Ctrl+Shift+H",), "Suggest stages with SleepLM (zero-shot)",
               "SleepLM", False),
    KeyBinding("cancel_model", ("Ctrl+.",), "Cancel the model's work", "SleepLM", False),
)
"""All shortcuts, in sheet order."""

MOUSE_TABLE: tuple[tuple[str, str], ...] = (
    ("Wheel over a channel", "Gain of that channel"),
    ("Shift + drag", "Time ruler: duration and peak-to-peak amplitude"),
    ("Drag a channel label", "Reorder channels"),
    ("Right-click a channel", "Hide it, show all, channel settings"),
    ("Drop a file on the window", "Open it"),
)


def binding(action: str) -> KeyBinding:
    """Return the row for ``action`` (``KeyError`` if it has none)."""
    for b in KEY_TABLE:
        if b.action == action:
            return b
    raise KeyError(action)


def shortcut_sheet_html() -> str:
    """Return the Help → Shortcuts sheet as an HTML table, generated from :data:`KEY_TABLE`."""
    rows: list[str] = []
    group = None
    for b in KEY_TABLE:
        if b.group != group:
            group = b.group
            rows.append(f"<tr><th colspan=2 align=left><br>{html.escape(group)}</th></tr>")
        keys = " or ".join(f"<b>{html.escape(k)}</b>" for k in b.keys)
        rows.append(f"<tr><td>{keys}</td><td>{html.escape(b.description)}</td></tr>")
    rows.append("<tr><th colspan=2 align=left><br>Mouse</th></tr>")
    for what, does in MOUSE_TABLE:
        rows.append(f"<tr><td><b>{html.escape(what)}</b></td><td>{html.escape(does)}</td></tr>")
    return "<table cellspacing=4>" + "".join(rows) + "</table>"

