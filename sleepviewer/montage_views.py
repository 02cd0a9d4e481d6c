"""Which traces a montage shows, in which order, and the user's layout remembered per recording.

The default montage, :data:`AUTOMATIC`, is the recording's own AASM montage
(:attr:`sleeplm_core.io.recording.Recording.montage`): the recommended set the file allows,
derivations included, in clinical order and with per-type scaling. Every other channel is in the
list too, hidden, so the channel dialog shows it one click away. When the user reorders, hides
or shows traces, the layout is remembered for recordings with the same channel labels (the same
lab's exports) and restored the next time one opens.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from PyQt6.QtCore import QSettings

from sleepviewer import montages
from sleepviewer.state import ChannelView, default_channel_view

AUTOMATIC = "Automatic (AASM)"
"""Name of the automatic montage in the Montage menu and in the settings."""


def montage_first(rec: Any) -> list[Any]:
    """Return the recording's channels with the automatic montage's traces first.

    Parts that pick "the" channel of a type (report, spectrogram) then read what the viewer
    shows and the model uses: a derived C4-M1 before the referential C4.
    """
    shown = [m.name for m in getattr(rec, "montage", [])]
    rank = {n: i for i, n in enumerate(shown)}
    return sorted(getattr(rec, "channels", []), key=lambda c: rank.get(c.name, len(rank)))


def layout_key(rec: Any) -> str:
    """A key for the recording's layout: a hash of its file channel labels, in order."""
    derived = getattr(rec, "derivation_sources", None)
    names = [n for n in rec.ch_names if derived is None or derived(n) is None]
    digest = hashlib.sha1("\x1f".join(names).encode("utf-8")).hexdigest()[:16]
    return f"layouts/{digest}"


def build_views(
    rec: Any,
    name: str,
    user_rows: Sequence[montages.Derivation],
    old: dict[str, ChannelView],
    settings: QSettings | None = None,
) -> list[ChannelView]:
    """Return the channel views of a montage for a recording.

    Parameters
    ----------
    rec : Recording
        The open recording (derivations a preset needs are added to it).
    name : str
        :data:`AUTOMATIC`, :data:`sleepviewer.montages.AS_RECORDED` or a preset name.
    user_rows : sequence of Derivation
        The user's own derivations (shown after the montage's traces).
    old : dict of str to ChannelView
        Current views by name: their settings (gain, filters) are kept.
    settings : QSettings or None
        Where layouts are remembered; with :data:`AUTOMATIC`, a remembered layout for this
        recording's channel labels replaces the automatic order and visibility.

    Returns
    -------
    list of ChannelView
        Visible traces first in montage order, then the other channels hidden.
    """
    automatic = name == AUTOMATIC and hasattr(rec, "montage")
    if automatic:
        shown = [m.name for m in rec.montage] or list(rec.ch_names)
        rows = [montages.Resolved(n) for n in shown]
        rows += [montages.Resolved(r.name, None if r.reference is None
                                   else (r.positive, r.reference)) for r in user_rows]
    else:
        preset = montages.AS_RECORDED if name == AUTOMATIC else name
        rows = montages.resolve(preset, rec.ch_names, user_rows)
    for row in rows:
        if row.derive is not None and row.name not in rec.ch_names:
            with contextlib.suppress(ValueError, KeyError):
                rec.add_derivation(row.name, *row.derive)
    infos = {c.name: c for c in rec.channels}
    views: list[ChannelView] = []
    for row in rows:
        if row.name in old:
            views.append(old[row.name])
        elif row.name in infos:
            info = infos[row.name]
            views.append(default_channel_view(info.name, info.type, info.unit))
    if automatic:
        listed = {v.name for v in views}
        for info in rec.channels:  # the rest: hidden, one click away in the channel dialog
            if info.name not in listed:
                view = old.get(info.name) or default_channel_view(info.name, info.type, info.unit)
                view.visible = False
                views.append(view)
        if settings is not None:
            views = _restore(views, settings.value(layout_key(rec)))
    return views


def remember_layout(rec: Any, views: Sequence[ChannelView], settings: QSettings) -> None:
    """Remember the order and visibility of the traces for recordings of this layout."""
    value = json.dumps([[v.name, bool(v.visible)] for v in views])
    settings.setValue(layout_key(rec), value)


def _restore(views: list[ChannelView], saved: object) -> list[ChannelView]:
    if not isinstance(saved, str):
        return views
    try:
        rows = json.loads(saved)
        order = {str(n): (i, bool(vis)) for i, (n, vis) in enumerate(rows)}
    except (ValueError, TypeError):
        return views  # a damaged setting is no reason to lose the automatic montage
    known = [v for v in views if v.name in order]
    rest = [v for v in views if v.name not in order]
    known.sort(key=lambda v: order[v.name][0])
    for v in known:
        v.visible = order[v.name][1]
    return known + rest
