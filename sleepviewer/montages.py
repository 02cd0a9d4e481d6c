"""Montage presets: which channels to show, in which order, and which derivations to build.

A montage is a list of :class:`Derivation` rows. A row is resolved against the recording's
channel names: either a channel already has the row's name (under one of its aliases, e.g.
"EEG C4-A1" for "C4-M1"), or the row's positive and reference electrodes exist and the
derivation is computed (``Recording.add_derivation``). Rows that cannot be resolved are
skipped, so one preset works across labs.

Presets: AASM recommended, Sleep-EDF (Fpz-Cz/Pz-Oz), NSRR (SHHS/MESA names), and
"As recorded" (the file's own order).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Derivation:
    """One row of a montage.

    Parameters
    ----------
    name : str
        Display name (and channel name when the derivation is computed).
    positive : str
        Positive electrode, or the channel itself for referential/non-EEG rows.
    reference : str or None
        Reference electrode; ``None`` when ``positive`` is a complete channel.
    aliases : tuple of str
        Other names the finished channel has in some files.
    """

    name: str
    positive: str
    reference: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Montage:
    """A named, ordered list of derivations."""

    name: str
    rows: tuple[Derivation, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A montage row matched to a recording.

    Parameters
    ----------
    name : str
        Channel name to read from the recording (after any derivation was added).
    derive : tuple of (str, str) or None
        ``(positive, reference)`` channel names when the channel must be computed first.
    """

    name: str
    derive: tuple[str, str] | None = None


AS_RECORDED = "As recorded"

_D = Derivation
AASM = Montage(
    "AASM recommended",
    (
        _D("F4-M1", "F4", "M1", ("F4-A1",)),
        _D("C4-M1", "C4", "M1", ("C4-A1", "EEG")),
        _D("O2-M1", "O2", "M1", ("O2-A1",)),
        _D("F3-M2", "F3", "M2", ("F3-A2",)),
        _D("C3-M2", "C3", "M2", ("C3-A2", "EEG(sec)", "EEG2")),
        _D("O1-M2", "O1", "M2", ("O1-A2",)),
        _D("E1-M2", "E1", "M2", ("LOC", "EOG(L)", "EOG-L", "LOC-A2")),
        _D("E2-M2", "E2", "M2", ("ROC", "EOG(R)", "EOG-R", "ROC-A1")),
        _D("Chin", "Chin1", "Chin2", ("EMG", "Chin EMG", "EMG chin", "EMG submental",
                                       "Chin1-Chin2", "CHIN")),
        _D("ECG", "ECG", None, ("EKG", "ECG II", "ECG1")),
        _D("Leg L", "LLeg", None, ("Leg/L", "LAT", "Left leg", "EMG leg L", "Leg L")),
        _D("Leg R", "RLeg", None, ("Leg/R", "RAT", "Right leg", "EMG leg R", "Leg R")),
        _D("Flow", "Flow", None, ("Airflow", "AIRFLOW", "Nasal pressure", "NEW AIR",
                                   "Resp oro-nasal", "Thermistor", "FLOW")),
        _D("Thorax", "Thorax", None, ("THOR RES", "Thor", "Chest", "Effort THO", "THX")),
        _D("Abdomen", "Abdomen", None, ("ABDO RES", "Abdo", "Abd", "Effort ABD", "ABD")),
        _D("SpO2", "SpO2", None, ("SaO2", "SAO2", "SPO2", "Oxygen saturation")),
    ),
)
SLEEP_EDF = Montage(
    "Sleep-EDF",
    (
        _D("Fpz-Cz", "Fpz", "Cz", ("EEG Fpz-Cz",)),
        _D("Pz-Oz", "Pz", "Oz", ("EEG Pz-Oz",)),
        _D("EOG horizontal", "EOG horizontal", None),
        _D("EMG submental", "EMG submental", None, ("Chin",)),
        _D("Resp oro-nasal", "Resp oro-nasal", None, ("Flow",)),
        _D("Temp rectal", "Temp rectal", None),
    ),
)
NSRR = Montage(
    "NSRR",
    (
        _D("EEG", "C4", "A1", ("C4-A1", "C4-M1", "EEG C4-A1")),
        _D("EEG(sec)", "C3", "A2", ("C3-A2", "C3-M2", "EEG2")),
        _D("EOG(L)", "EOG(L)", None, ("E1-M2", "LOC")),
        _D("EOG(R)", "EOG(R)", None, ("E2-M2", "ROC")),
        _D("EMG", "EMG", None, ("Chin", "Chin EMG")),
        _D("ECG", "ECG", None, ("EKG",)),
        _D("AIRFLOW", "AIRFLOW", None, ("Flow", "Airflow")),
        _D("NEW AIR", "NEW AIR", None, ("Nasal pressure",)),
        _D("THOR RES", "THOR RES", None, ("Thorax", "Thor")),
        _D("ABDO RES", "ABDO RES", None, ("Abdomen", "Abdo")),
        _D("SaO2", "SaO2", None, ("SpO2",)),
        _D("POSITION", "POSITION", None, ("Position", "Body position")),
    ),
)
PRESETS: dict[str, Montage] = {m.name: m for m in (AASM, SLEEP_EDF, NSRR)}
"""Built-in presets by name; :data:`AS_RECORDED` is handled by :func:`resolve`."""


_PREFIX = re.compile(r"^(eeg|eog|emg|ecg|ekg|resp|effort)[\s_]+", re.IGNORECASE)


def normalize_name(name: str) -> str:
    """Return a comparison key: case-folded, modality prefix and separators dropped, A1/A2→M1/M2.

    >>> normalize_name("EEG C4-A1") == normalize_name("c4:m1")
    True
    """
    n = _PREFIX.sub("", name.strip())
    n = re.sub(r"[\s_:\-/]+", "-", n.casefold()).strip("-")
    n = re.sub(r"\ba1\b", "m1", n)
    return re.sub(r"\ba2\b", "m2", n)


def _lookup(ch_names: Sequence[str]) -> dict[str, str]:
    table: dict[str, str] = {}
    for ch in ch_names:
        table.setdefault(normalize_name(ch), ch)
        table.setdefault(ch.casefold(), ch)
    return table


def resolve(
    montage: Montage | str,
    ch_names: Sequence[str],
    user_rows: Sequence[Derivation] = (),
) -> list[Resolved]:
    """Match a montage to a recording's channels.

    Parameters
    ----------
    montage : Montage or str
        A preset or its name (``"As recorded"`` keeps the file's order).
    ch_names : sequence of str
        Channel names of the recording.
    user_rows : sequence of Derivation
        The user's own derivations, appended after the preset's rows.

    Returns
    -------
    list of Resolved
        Rows that exist or can be computed, in montage order, without duplicates. When no
        row of a preset matches, every channel is returned as recorded (never an empty page).
    """
    if isinstance(montage, str):
        if montage == AS_RECORDED:
            montage = Montage(AS_RECORDED, tuple(Derivation(c, c) for c in ch_names))
        else:
            montage = PRESETS[montage]
    table = _lookup(ch_names)
    out: list[Resolved] = []
    seen: set[str] = set()
    for row in (*montage.rows, *user_rows):
        res = _resolve_row(row, table)
        if res is not None and res.name not in seen:
            seen.add(res.name)
            out.append(res)
    if not out:
        return [Resolved(c) for c in ch_names]
    return out


def _resolve_row(row: Derivation, table: dict[str, str]) -> Resolved | None:
    for candidate in (row.name, *row.aliases):
        hit = table.get(normalize_name(candidate)) or table.get(candidate.casefold())
        if hit is not None:
            return Resolved(hit)
    if row.reference is None:
        hit = table.get(normalize_name(row.positive))
        return Resolved(hit) if hit is not None else None
    pos = table.get(normalize_name(row.positive))
    ref = table.get(normalize_name(row.reference))
    if pos is not None and ref is not None and pos != ref:
        return Resolved(row.name, (pos, ref))
    return None
