"""Annotation extras of an EDF+ file in a JSON sidecar, so that TAL texts stay plain labels.

EDFbrowser and MNE show a TAL text verbatim, so an EDF+ written here holds plain labels,
and the extras (``spo2_nadir``, ``scorer``, ...) go to ``<file>.edf.extras.json`` beside it.
A file with signals keeps a channel as MNE's ``label@@channel`` (MNE moves it to
``ch_names`` because the channel exists there); an annotation-only file has no channels for
MNE to match, so its channels go to the sidecar too. The reader attaches them back to the
annotation with the same label, duration and onset; without the sidecar only the extras
(and an annotation-only file's channels) are missing. Files written before this (extras as
``##[json]`` in the text) still read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.annotation_model import Annotation
from sleeplm_core.io.atomic import atomic_write_bytes

__all__ = ["SUFFIX", "attach_extras", "extras_path", "write_extras"]

SUFFIX = ".extras.json"
FORMAT = "sleeplm-edf-extras/1"
_TOLERANCE_S = 1e-6


def extras_path(edf: Path) -> Path:
    """The sidecar of ``edf``: ``night.edf`` -> ``night.edf.extras.json``."""
    return edf.with_name(edf.name + SUFFIX)


def write_extras(
    edf: Path, ann: Iterable[Annotation], error: type[SleepLMError], *, channels: bool = False
) -> None:
    """Write the extras of ``ann`` beside ``edf`` (atomically); remove a stale sidecar if none.

    With ``channels`` the annotations that only have a channel are written too (for files
    whose TAL texts do not carry it).

    Raises
    ------
    SleepLMError
        ``error`` when the sidecar cannot be written.
    """
    rows = [
        {"onset_s": a.onset_s, "duration_s": a.duration_s, "label": a.label,
         "channel": a.channel, "extras": [list(kv) for kv in a.extras]}
        for a in ann
        if a.extras or (channels and a.channel)
    ]  # fmt: skip
    target = extras_path(edf)
    if not rows:
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:
            raise error(target, f"cannot remove the old extras sidecar ({exc})") from None
        return
    text = json.dumps({"format": FORMAT, "annotations": rows}, ensure_ascii=False, indent=0)
    atomic_write_bytes(target, text.encode("utf-8"), error=error)


def _rows(edf: Path) -> list[dict[str, object]]:
    try:
        data = json.loads(extras_path(edf).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # no sidecar, or a damaged one: the annotations stay without extras
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return []
    rows = data.get("annotations")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def attach_extras(
    edf: Path, items: Sequence[Annotation], own_onsets_s: Sequence[float]
) -> list[Annotation]:
    """Give ``items`` back the extras kept in ``edf``'s sidecar.

    ``own_onsets_s`` are the onsets on the file's own time axis (what was written), which
    may differ from ``items``' onsets when those were shifted onto a recording's axis.
    """
    out = list(items)
    rows = _rows(edf)
    if not rows:  # most files: no sidecar, nothing to index
        return out
    # annotations by label and whole second of onset: a row looks at its own second and the
    # two beside it (the tolerance is far below a second), so attaching stays linear in the
    # number of annotations rather than scanning them all for every row
    near: dict[tuple[str, int], list[int]] = {}
    for i, a in enumerate(out):
        near.setdefault((a.label, math.floor(own_onsets_s[i])), []).append(i)
    used: set[int] = set()  # each annotation takes at most one sidecar row
    for row in rows:
        try:
            onset, duration = float(row["onset_s"]), float(row["duration_s"])  # type: ignore[arg-type]
            pairs = tuple((str(k), str(v)) for k, v in row["extras"])  # type: ignore[attr-defined]
            second = math.floor(onset)
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        label, channel = row.get("label"), row.get("channel")
        if not isinstance(label, str):
            continue
        # the closest of the annotations within tolerance: two at one onset with one label
        # whose durations differ by less than the tolerance must not trade their rows
        # (a sum that rounds to a tie, e.g. 2e-102 + 2e-137, is broken by each part alone)
        fits = [
            (
                abs(out[i].duration_s - duration) + abs(own_onsets_s[i] - onset),
                abs(out[i].duration_s - duration),
                abs(own_onsets_s[i] - onset),
                i,
            )
            for s in (second - 1, second, second + 1)
            for i in near.get((label, s), ())
            if i not in used
            and not out[i].extras
            and out[i].channel in (None, channel)
            and math.isclose(out[i].duration_s, duration, abs_tol=_TOLERANCE_S)
            and math.isclose(own_onsets_s[i], onset, abs_tol=_TOLERANCE_S)
        ]
        if fits:
            i = min(fits)[-1]
            a = out[i]
            out[i] = replace(a, channel=channel if isinstance(channel, str) else a.channel,
                             extras=pairs)  # fmt: skip
            used.add(i)
    return out
