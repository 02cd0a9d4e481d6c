"""Channel vocabulary: types, roles, units and the model's canonical slots.

A channel's type (EEG, EOG, ...) and role (C3, left, chin, thermistor, ...) come from the
editable table ``resources/channel_types.csv``: the first row whose pattern matches the
channel name wins; rows whose pattern starts with ``unit:`` are tried on the physical unit
when no name matched. The same table ranks channels for the model's canonical slots, so a
site that names its channels differently needs one new line there, not new code.

==========  ===================================================================
function    use
==========  ===================================================================
classify    ``(name, unit) -> ChannelType`` (type, role, slots, rank)
pick_slots  best file channel for each of :data:`CANONICAL_SLOTS`
to_uv       factor from a voltage unit (``"mV"``, ``"UV"``, ...) to microvolts
==========  ===================================================================
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

from sleeplm_core.resources import resource_path

CHANNEL_TYPES: Final[tuple[str, ...]] = (
    "EEG",
    "EOG",
    "EMG",
    "ECG",
    "AIRFLOW",
    "THORACIC",
    "ABDOMINAL",
    "SPO2",
    "POSITION",
    "OTHER",
)
"""Every channel is exactly one of these."""

MICROVOLT_TYPES: Final[tuple[str, ...]] = ("EEG", "EOG", "EMG")
"""Types whose samples are always returned in microvolts."""

CANONICAL_SLOTS: Final[tuple[str, ...]] = (
    "ECG",
    "ABD",
    "THX",
    "AIRFLOW",
    "EOG_L",
    "EOG_R",
    "C3_M2",
    "C4_M1",
    "EMG_CHIN",
    "POSITION",
    "SPO2",
    "EMG_LEG",
)
"""The model's input rows, the first ten in SleepLM-Base order."""

CANONICAL_SF: Final[float] = 64.0
"""Sampling rate of the model input, in Hz."""

SLOT_TYPES: Final[dict[str, str]] = {
    "ECG": "ECG",
    "ABD": "ABDOMINAL",
    "THX": "THORACIC",
    "AIRFLOW": "AIRFLOW",
    "EOG_L": "EOG",
    "EOG_R": "EOG",
    "C3_M2": "EEG",
    "C4_M1": "EEG",
    "EMG_CHIN": "EMG",
    "POSITION": "POSITION",
    "SPO2": "SPO2",
    "EMG_LEG": "EMG",
}
"""The channel type of each canonical slot."""

MODALITY_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "brain": ("EEG", "EOG"),
    "heart": ("ECG",),
    "respiratory": ("AIRFLOW", "THORACIC", "ABDOMINAL", "SPO2"),
    "somatic": ("EMG", "POSITION"),
}
"""Channel types behind each signal modality of the captions (``stage_event`` has none)."""

MODALITY_SLOTS: Final[dict[str, tuple[str, ...]]] = {
    m: tuple(s for s in CANONICAL_SLOTS if SLOT_TYPES[s] in types)
    for m, types in MODALITY_TYPES.items()
}
"""Canonical slots behind each signal modality, in slot order."""

_VOLT_TO_UV: Final[dict[str, float]] = {"uv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}
_VOLT_SPELLING: Final[dict[str, str]] = {"uv": "uV", "mv": "mV", "v": "V", "nv": "nV"}


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """One row of the channel type table.

    Parameters
    ----------
    pattern : re.Pattern
        Compiled, case-insensitive; matched against the whole name (or unit).
    on_unit : bool
        True when the row matches the physical unit instead of the name.
    type : str
        One of :data:`CHANNEL_TYPES`.
    role : str
        Free text within the type: ``"C3"``, ``"left"``, ``"chin"``, ``"thermistor"``, ...
    slots : tuple of str
        Canonical slots the channel may fill.
    rank : int
        Preference within those slots, lower is better.
    """

    pattern: re.Pattern[str]
    on_unit: bool
    type: str
    role: str
    slots: tuple[str, ...]
    rank: int


@dataclass(frozen=True, slots=True)
class ChannelType:
    """What the table says about one channel.

    Parameters
    ----------
    type : str
        One of :data:`CHANNEL_TYPES`.
    role : str
        The role within the type (``"other"`` when unknown).
    slots : tuple of str
        Canonical slots the channel may fill.
    rank : int
        Preference within those slots, lower is better.
    """

    type: str
    role: str
    slots: tuple[str, ...] = ()
    rank: int = 1000


OTHER: Final = ChannelType("OTHER", "other")


def _normalize(text: str) -> str:
    return " ".join(text.split()).lower()


def read_channel_table(path: str | Path | None = None) -> tuple[ChannelRule, ...]:
    """Read a channel type table.

    Parameters
    ----------
    path : str or Path, optional
        A CSV with columns ``pattern,type,role,slot,rank``; lines starting with ``#`` are
        comments. Defaults to the bundled ``resources/channel_types.csv``.

    Returns
    -------
    tuple of ChannelRule
        The rows in file order.

    Raises
    ------
    ValueError
        When a row names an unknown type or slot, or its pattern is not a valid regex.
    """
    src = Path(path) if path is not None else resource_path("channel_types.csv")
    lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    rules: list[ChannelRule] = []
    for i, row in enumerate(csv.DictReader(lines), start=2):
        ctype = (row.get("type") or "").strip().upper()
        if ctype not in CHANNEL_TYPES:
            raise ValueError(f"{src}: row {i}: unknown channel type {ctype!r}")
        slots = tuple(s.strip() for s in (row.get("slot") or "").split("|") if s.strip())
        bad = [s for s in slots if s not in CANONICAL_SLOTS]
        if bad:
            raise ValueError(f"{src}: row {i}: unknown canonical slot(s) {bad}")
        text = (row.get("pattern") or "").strip()
        on_unit = text.lower().startswith("unit:")
        if on_unit:
            text = text[len("unit:") :]
        try:
            pattern = re.compile(text, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{src}: row {i}: bad pattern {text!r}: {exc}") from exc
        rank_text = (row.get("rank") or "").strip()
        rules.append(
            ChannelRule(
                pattern=pattern,
                on_unit=on_unit,
                type=ctype,
                role=(row.get("role") or "").strip() or "other",
                slots=slots,
                rank=int(rank_text) if rank_text else 1000,
            )
        )
    return tuple(rules)


@lru_cache(maxsize=1)
def default_table() -> tuple[ChannelRule, ...]:
    """Return the bundled table, read once."""
    return read_channel_table()


def classify(name: str, unit: str = "", table: Sequence[ChannelRule] | None = None) -> ChannelType:
    """Type a channel from its name, falling back to its unit.

    Parameters
    ----------
    name : str
        The channel label, e.g. ``"EEG Fpz-Cz"`` or ``"C4-M1"``.
    unit : str, optional
        The physical unit from the header, e.g. ``"%"``.
    table : sequence of ChannelRule, optional
        Defaults to :func:`default_table`.

    Returns
    -------
    ChannelType
        :data:`OTHER` when nothing matches.

    Examples
    --------
    >>> classify("EEG(sec)").role
    'C3'
    >>> classify("Sat", "%").type
    'SPO2'
    """
    rules = default_table() if table is None else table
    key, ukey = _normalize(name), _normalize(unit)
    for rule in rules:
        if not rule.on_unit and rule.pattern.fullmatch(key):
            return ChannelType(rule.type, rule.role, rule.slots, rule.rank)
    if ukey:
        for rule in rules:
            if rule.on_unit and rule.pattern.fullmatch(ukey):
                return ChannelType(rule.type, rule.role, rule.slots, rule.rank)
    return OTHER


def to_uv(unit: str) -> float | None:
    """Return the factor that turns a voltage in ``unit`` into microvolts.

    Upper-case spellings (``"UV"``, ``"MV"``) mean micro- and millivolts: EDF writers that
    shout do not record megavolts.

    Parameters
    ----------
    unit : str
        A physical unit from an EDF header.

    Returns
    -------
    float or None
        ``None`` when the unit is not a voltage.
    """
    return _VOLT_TO_UV.get(_volt_key(unit))


def spell_unit(unit: str) -> str:
    """Return the conventional spelling of a voltage unit (``"UV"`` -> ``"uV"``), else as is."""
    return _VOLT_SPELLING.get(_volt_key(unit), unit.strip())


def _volt_key(unit: str) -> str:
    return unit.strip().replace("\u00b5", "u").replace("\u03bc", "u").lower()


def pick_slots(
    channels: Sequence[tuple[str, ChannelType]],
) -> tuple[str | None, ...]:
    """Choose the file channel for each canonical slot.

    Candidates are taken best rank first over all slots at once, and a channel fills at
    most one slot, so ``C4-M1`` goes to ``C4_M1`` even though it could stand in for
    ``C3_M2``, and a lone central EEG still fills one EEG slot.

    Parameters
    ----------
    channels : sequence of (str, ChannelType)
        Channel names with their types, in file order (earlier wins ties).

    Returns
    -------
    tuple of (str or None)
        One entry per :data:`CANONICAL_SLOTS`; ``None`` for a slot the file cannot fill.
    """
    order = {slot: i for i, slot in enumerate(CANONICAL_SLOTS)}
    candidates = sorted(
        (ct.rank, order[slot], idx, slot)
        for idx, (_, ct) in enumerate(channels)
        for slot in ct.slots
    )
    chosen: dict[str, str] = {}
    used: set[int] = set()
    for _, _, idx, slot in candidates:
        if slot in chosen or idx in used:
            continue
        chosen[slot] = channels[idx][0]
        used.add(idx)
    return tuple(chosen.get(slot) for slot in CANONICAL_SLOTS)
