"""Light and dark colour themes.

The light theme follows clinical viewers (EDFbrowser): white paper, black traces, grey epoch
grid. Colours are plain hex strings so that the table is readable and testable; widgets turn
them into pens.
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

from sleepviewer.state import Theme


@dataclass(frozen=True, slots=True)
class Colors:
    """Colours of one theme (hex strings)."""

    background: str
    foreground: str
    trace: str
    epoch_line: str
    second_line: str
    gap: str
    flat: str
    ruler: str
    ruler_fill: str
    axis: str


THEMES: dict[str, Colors] = {
    "light": Colors(
        background="#ffffff",
        foreground="#000000",
        trace="#000000",
        epoch_line="#7f7f7f",
        second_line="#e4e4e4",
        gap="#d9d9d9",
        flat="#d00000",
        ruler="#0050c8",
        ruler_fill="#0050c830",
        axis="#202020",
    ),
    "dark": Colors(
        background="#1b1d21",
        foreground="#e6e6e6",
        trace="#e8e8e8",
        epoch_line="#8a8a8a",
        second_line="#30333a",
        gap="#3a3d44",
        flat="#ff5a5a",
        ruler="#66aaff",
        ruler_fill="#66aaff30",
        axis="#d0d0d0",
    ),
}


def colors(theme: Theme) -> Colors:
    """Return the colours of ``theme``."""
    return THEMES[theme]


def apply_palette(app: QApplication, theme: Theme) -> None:
    """Give the whole application (menus, docks, dialogs) the theme's window colours.

    Parameters
    ----------
    app : QApplication
        The running application.
    theme : {"light", "dark"}
        Theme to apply; ``"light"`` restores the style's standard palette.
    """
    if theme == "light":
        app.setPalette(app.style().standardPalette())
        return
    c = THEMES["dark"]
    pal = QPalette()
    base, text = QColor(c.background), QColor(c.foreground)
    for role, color in (
        (QPalette.ColorRole.Window, QColor("#25282d")),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, QColor("#2c2f35")),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, QColor("#2c2f35")),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.ToolTipBase, base),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Highlight, QColor("#3d6fb6")),
        (QPalette.ColorRole.HighlightedText, QColor("#ffffff")),
        # Roles the standard palette leaves light: placeholders ("Filter…", the query field),
        # links, and the bevels some styles draw with.
        (QPalette.ColorRole.PlaceholderText, QColor("#8d929b")),
        (QPalette.ColorRole.Link, QColor("#7ab4ff")),
        (QPalette.ColorRole.LinkVisited, QColor("#b59cff")),
        (QPalette.ColorRole.BrightText, QColor("#ff7070")),
        (QPalette.ColorRole.Light, QColor("#3a3e45")),
        (QPalette.ColorRole.Midlight, QColor("#32353b")),
        (QPalette.ColorRole.Mid, QColor("#202226")),
        (QPalette.ColorRole.Dark, QColor("#141518")),
        (QPalette.ColorRole.Shadow, QColor("#0b0c0e")),
    ):
        pal.setColor(role, color)
    disabled = QColor("#70747c")
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText, QPalette.ColorRole.PlaceholderText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Base, QColor("#222428"))
    app.setPalette(pal)
