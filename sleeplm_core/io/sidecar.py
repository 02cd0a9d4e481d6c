"""Find the annotation file that belongs to a recording."""

from __future__ import annotations

from pathlib import Path

# Sidecars written by this project are preferred; then the common scoring exports.
_SUFFIXES: tuple[str, ...] = (".sleepviewer.csv", ".xml", "-nsrr.xml", ".csv", "-Hypnogram.edf")


def find_sidecar(recording: str | Path, *, own: bool = True) -> Path | None:
    """Return the annotation file lying beside a recording, if any.

    Looks for ``<stem>.sleepviewer.csv``, ``<stem>.xml``, ``<stem>-nsrr.xml``, ``<stem>.csv``,
    ``<stem>-Hypnogram.edf``, Profusion's ``<name>.edf.XML`` (any case of ``.xml``), an NSRR
    cohort's ``annotations-events-nsrr/<stem>-nsrr.xml``, and Sleep-EDF's
    ``SC4ssNE0-PSG.edf`` -> ``SC4ssN*-Hypnogram.edf``.

    Parameters
    ----------
    recording : str or Path
        The recording's path.
    own : bool
        Whether this program's own ``<stem>.sleepviewer.csv`` counts (the viewer restores
        that one itself, so it asks for the scoring file beside it with ``own=False``).

    Returns
    -------
    Path or None
        The first sidecar found, or ``None``.
    """
    path = Path(recording)
    stem = path.stem
    names = [stem + s for s in _SUFFIXES if own or s != ".sleepviewer.csv"]
    names += [stem + ".XML", path.name + ".xml", path.name + ".XML"]
    for name in names:
        cand = path.with_name(name)
        if cand.is_file():
            return cand
    # NSRR layout: polysomnography/edfs/<cohort>/x.edf + annotations-events-nsrr/<cohort>/x-nsrr.xml
    parts = list(path.parts)
    if "edfs" in parts:
        i = len(parts) - 1 - parts[::-1].index("edfs")
        nsrr = Path(*parts[:i], "annotations-events-nsrr", *parts[i + 1 : -1], stem + "-nsrr.xml")
        if nsrr.is_file():
            return nsrr
    # Sleep-EDF: SC4001E0-PSG.edf pairs with SC4001EC-Hypnogram.edf (the 7th letter varies).
    if stem.endswith("-PSG") and len(stem) >= 7:
        hits = sorted(path.parent.glob(stem[:6] + "*-Hypnogram.edf"))
        if hits:
            return hits[0]
    return None
