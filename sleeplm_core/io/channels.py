"""Channel vocabulary: types, roles, units and the model's canonical slots.

A channel's type (EEG, EOG, ...), role (C3, chin, thermistor, impedance, ...) and side come
from the editable harmonisation table ``resources/channel_types.csv`` (label aliases per type
and side, in the spirit of Luna's canonical signal definitions and the NSRR harmonisation
tables): the first row whose label pattern matches, and whose unit, sampling-rate and
physical-range conditions hold, wins; rows whose pattern starts with ``unit:`` are tried on
the physical unit when no label row matched. Each decision carries the rule that fired
(:attr:`ChannelType.rule`), shown by ``sleeplm info``. The same table ranks channels for the
model's canonical slots, so a site that names its channels differently needs one new line
there, not new code.

============  ===================================================================
function      use
============  ===================================================================
classify      ``(name, unit, sf, physical range) -> ChannelType`` (type, role, side,
              electrode, reference, slots, rank, rule)
decode_label  an EDF label read as Latin-1, re-read as UTF-8 when it is UTF-8
pick_slots    best file channel for each of :data:`CANONICAL_SLOTS`
to_uv         factor from a voltage unit (``"mV"``, ``"UV"``, ...) to microvolts
============  ===================================================================
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sleeplm_core.errors import ConfigError
from sleeplm_core.resources import resource_path

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

TABLE_ENV: Final = "SLEEPLM_CHANNEL_TABLE"
"""Environment variable naming a site's own table; its rows are tried before the bundled ones."""

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
    "PULSE",
    "SNORE",
    "STAGE",
    "EVENT",
    "NONPHYS",
    "OTHER",
)
"""Every channel is exactly one of these.

``PULSE`` is pulse/heart rate, pleth and PTT; ``STAGE`` a hypnogram stored as a signal;
``EVENT`` a marker/event-code signal; ``NONPHYS`` a recording-system signal (impedance,
battery, radio, accelerometer, light, audio level, temperature, time, therapy device).
"""

CODED_TYPES: Final[tuple[str, ...]] = ("STAGE", "EVENT", "POSITION")
"""Types whose samples are codes, legitimately constant for long stretches (never FLAT)."""

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
    side : str
        ``"L"``, ``"R"`` or ``""``.
    unit : re.Pattern or None
        The physical unit must match it (``None``: any unit).
    sf_bound : tuple of (str, float) or None
        ``("<=", 2.0)`` or ``(">=", 50.0)``: a condition on the sampling rate.
    value_range : tuple of (float, float) or None
        The physical minimum and maximum must lie within it.
    line : int
        Line of the row in its file (for explanations).
    source : str
        File name of the table.
    """

    pattern: re.Pattern[str]
    on_unit: bool
    type: str
    role: str
    slots: tuple[str, ...]
    rank: int
    side: str = ""
    unit: re.Pattern[str] | None = None
    sf_bound: tuple[str, float] | None = None
    value_range: tuple[float, float] | None = None
    line: int = 0
    source: str = "channel_types.csv"

    def applies(self, unit: str, sf: float | None, phys: tuple[float, float] | None) -> bool:
        """Whether the row's unit, rate and range conditions hold for a signal."""
        if self.unit is not None and not self.unit.fullmatch(_volt_key(unit)):
            return False
        if self.sf_bound is not None:
            op, bound = self.sf_bound
            if sf is None or (op == "<=" and sf > bound) or (op == ">=" and sf < bound):
                return False
        if self.value_range is not None and phys is not None:
            lo, hi = self.value_range
            if min(phys) < lo or max(phys) > hi:
                return False
        return True

    def explain(self, label: str, unit: str = "", sf: float | None = None) -> str:
        """One line naming the row and what it matched, e.g. for ``sleeplm info``.

        >>> classify("C3", "kOhm", sf=1.0).rule
        "channel_types.csv:23 (unit 'kOhm' is an impedance unit) -> NONPHYS/impedance"
        """
        if self.on_unit:
            what = [f"unit {unit!r}"]
        elif self.unit is not None and self.pattern.pattern == ".*":
            what = [f"unit {unit!r} is an {self.role} unit" if self.role[0] in "aeiou"
                    else f"unit {unit!r} is a {self.role} unit"]
        else:
            what = [f"label {label!r}"]
            if self.unit is not None:
                what.append(f"unit {unit!r}")
        if self.sf_bound is not None and sf is not None:
            what.append(f"sf {sf:g} Hz {self.sf_bound[0]} {self.sf_bound[1]:g}")
        if self.value_range is not None:
            what.append(f"range in {self.value_range[0]:g}:{self.value_range[1]:g}")
        return f"{self.source}:{self.line} ({', '.join(what)}) -> {self.type}/{self.role}"


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
    side : str
        ``"L"``, ``"R"`` or ``""`` (from the table row, else from the electrode's number).
    electrode : str
        For EEG/EOG/EMG: the active electrode in 10-20 spelling (``"C3"``, ``"E1"``), or ``""``.
    reference : str
        The reference electrode when the label names one (``"M2"`` in ``"C3:A2"`` is
        ``"A2"``), ``""`` for a referential signal.
    rule : str
        The table row that decided, or why nothing did.
    """

    type: str
    role: str
    slots: tuple[str, ...] = ()
    rank: int = 1000
    side: str = ""
    electrode: str = ""
    reference: str = ""
    rule: str = ""


OTHER: Final = ChannelType("OTHER", "other")
_TEN_TWENTY: Final = re.compile(
    r"(fp|af|fc|ft|cp|tp|po|[fctpoame])(10|[1-9]|z)|chin ?[123]", re.IGNORECASE
)
_MODALITY_PREFIX: Final = re.compile(r"^(eeg|eog|emg)[\s_]+", re.IGNORECASE)


def _normalize(text: str) -> str:
    return " ".join(text.split()).lower()


def decode_label(text: str) -> str:
    """Return an EDF label decoded as UTF-8 when its bytes are UTF-8, else as Latin-1.

    EDF readers (ours and MNE's) decode header fields as Latin-1, so a UTF-8 label such as
    ``"Jambe gauche é"`` arrives as mojibake (``"Ã©"``); re-reading the same bytes as UTF-8
    restores it. A label that is not valid UTF-8 (a true Latin-1 ``"é"``) is kept as is.

    Parameters
    ----------
    text : str
        The label as read with Latin-1 (every byte one character).

    Returns
    -------
    str
        The label, never mojibake for UTF-8 or Latin-1 input.

    Examples
    --------
    >>> decode_label("Jambe gauche Ã©")
    'Jambe gauche é'
    >>> decode_label("Kinn-Elektrode ü")
    'Kinn-Elektrode ü'
    """
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _parse_number(text: str, what: str, src: Path, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(src, f"line {line}: bad {what} {text!r}") from None


def read_channel_table(path: str | Path | None = None) -> tuple[ChannelRule, ...]:
    """Read a channel harmonisation table.

    Parameters
    ----------
    path : str or Path, optional
        A CSV with columns ``pattern,type,role,side,slot,rank,unit,sf,range`` (the last four
        optional); lines starting with ``#`` are comments. Defaults to the bundled
        ``resources/channel_types.csv``, whose header comment documents the columns.

    Returns
    -------
    tuple of ChannelRule
        The rows in file order.

    Raises
    ------
    ConfigError
        When the file cannot be read, or a row names an unknown type, side or slot, or has
        an invalid pattern, rate bound or range; one line naming the file and the line.
    """
    src = Path(path) if path is not None else resource_path("channel_types.csv")
    try:
        text = src.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(src, f"cannot read the channel table: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(src, "the channel table is not UTF-8 text") from None
    numbered = [
        (n, ln) for n, ln in enumerate(text.splitlines(), start=1) if not ln.startswith("#")
    ]
    if not numbered or "pattern" not in numbered[0][1]:
        raise ConfigError(src, "not a channel table (no 'pattern,type,...' header line)")
    lines = [ln for _, ln in numbered]
    rules: list[ChannelRule] = []
    for (i, _), row in zip(numbered[1:], csv.DictReader(lines), strict=False):
        ctype = (row.get("type") or "").strip().upper()
        if ctype not in CHANNEL_TYPES:
            raise ConfigError(src, f"line {i}: unknown channel type {ctype!r}")
        slots = tuple(s.strip() for s in (row.get("slot") or "").split("|") if s.strip())
        bad = [s for s in slots if s not in CANONICAL_SLOTS]
        if bad:
            raise ConfigError(src, f"line {i}: unknown canonical slot(s) {bad}")
        text = (row.get("pattern") or "").strip()
        on_unit = text.lower().startswith("unit:")
        if on_unit:
            text = text[len("unit:") :]
        try:
            pattern = re.compile(text, re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(src, f"line {i}: bad pattern {text!r}: {exc}") from exc
        rank_text = (row.get("rank") or "").strip()
        side = (row.get("side") or "").strip().upper()
        if side not in ("", "L", "R"):
            raise ConfigError(src, f"line {i}: side must be L, R or empty, not {side!r}")
        unit_text = (row.get("unit") or "").strip()
        if unit_text == "volt":
            unit_text = r"[unm]?v|"
        try:
            unit_re = re.compile(unit_text, re.IGNORECASE) if unit_text else None
        except re.error as exc:
            raise ConfigError(src, f"line {i}: bad unit pattern {unit_text!r}: {exc}") from exc
        sf_text = (row.get("sf") or "").strip()
        sf_bound: tuple[str, float] | None = None
        if sf_text:
            op = sf_text[:2]
            if op not in ("<=", ">="):
                raise ConfigError(src, f"line {i}: sf must be '<=N' or '>=N', not {sf_text!r}")
            sf_bound = (op, _parse_number(sf_text[2:], "sf bound", src, i))
        range_text = (row.get("range") or "").strip()
        value_range: tuple[float, float] | None = None
        if range_text:
            lo, sep, hi = range_text.partition(":")
            if not sep:
                raise ConfigError(src, f"line {i}: range must be 'lo:hi', not {range_text!r}")
            value_range = (_parse_number(lo, "range", src, i), _parse_number(hi, "range", src, i))
        rules.append(
            ChannelRule(
                pattern=pattern,
                on_unit=on_unit,
                type=ctype,
                role=(row.get("role") or "").strip() or "other",
                slots=slots,
                rank=int(_parse_number(rank_text, "rank", src, i)) if rank_text else 1000,
                side=side,
                unit=unit_re,
                sf_bound=sf_bound,
                value_range=value_range,
                line=i,
                source=src.name,
            )
        )
    return tuple(rules)


def default_table() -> tuple[ChannelRule, ...]:
    """Return the table in use: the site's (``$SLEEPLM_CHANNEL_TABLE``) rows, then the bundled.

    Raises
    ------
    ConfigError
        When the site's table cannot be read or has a bad row.
    """
    return _tables(os.environ.get(TABLE_ENV, ""))


@lru_cache(maxsize=4)
def _tables(site: str) -> tuple[ChannelRule, ...]:
    own = read_channel_table(site) if site else ()
    return (*own, *read_channel_table())


def classify(
    name: str,
    unit: str = "",
    table: Sequence[ChannelRule] | None = None,
    *,
    sf: float | None = None,
    physical_range: tuple[float, float] | None = None,
) -> ChannelType:
    """Type a channel from its label, unit, sampling rate and physical range.

    Parameters
    ----------
    name : str
        The channel label, e.g. ``"EEG Fpz-Cz"`` or ``"C4-M1"``.
    unit : str, optional
        The physical unit from the header, e.g. ``"%"``.
    table : sequence of ChannelRule, optional
        Defaults to :func:`default_table`.
    sf : float, optional
        Sampling rate in Hz; a row with an ``sf`` bound applies only when the rate is known
        and within the bound.
    physical_range : (float, float), optional
        The header's physical minimum and maximum.

    Returns
    -------
    ChannelType
        :data:`OTHER` (with the reason in ``rule``) when nothing matches.

    Examples
    --------
    >>> classify("EEG(sec)").role
    'C3'
    >>> classify("Sat", "%").type
    'SPO2'
    >>> ct = classify("C3:A2", "uV", sf=256.0)
    >>> (ct.electrode, ct.reference, ct.side)
    ('C3', 'A2', 'L')
    >>> classify("C3", "kOhm", sf=1.0).role
    'impedance'
    """
    rules = default_table() if table is None else table
    key, ukey = _normalize(name), _normalize(unit)
    for rule in rules:
        if (
            not rule.on_unit
            and rule.pattern.fullmatch(key)
            and rule.applies(unit, sf, physical_range)
        ):
            return _typed(rule, name, rule.explain(name, unit, sf))
    if ukey:
        for rule in rules:
            if (
                rule.on_unit
                and rule.pattern.fullmatch(ukey)
                and rule.applies(unit, sf, physical_range)
            ):
                return _typed(rule, name, rule.explain(name, unit, sf))
    return replace(OTHER, rule=f"no row matched label {name!r} (unit {unit!r})")


def _typed(rule: ChannelRule, name: str, why: str) -> ChannelType:
    electrode = reference = ""
    side = rule.side
    if rule.type in ("EEG", "EOG", "EMG"):
        electrode, reference = parse_electrodes(name)
        if not side and rule.type == "EEG" and electrode[-1:].isdigit():
            side = "L" if int(electrode[-1]) % 2 else "R"
    return ChannelType(
        rule.type, rule.role, rule.slots, rule.rank, side, electrode, reference, why
    )


def parse_electrodes(label: str) -> tuple[str, str]:
    """Return the active and reference electrodes a label names, in 10-20 spelling.

    Parameters
    ----------
    label : str
        ``"C3-M2"``, ``"C3:A2"``, ``"EEG C3-A2"``, ``"FP1"``, ``"E1-M2"``, ...

    Returns
    -------
    (str, str)
        ``("C3", "M2")``; ``("C3", "")`` for a referential label; ``("", "")`` when the
        label names no electrode (``"EEG(sec)"``, ``"Chin EMG"``).

    Examples
    --------
    >>> parse_electrodes("EEG C3-A2")
    ('C3', 'A2')
    >>> parse_electrodes("FPZ:CZ")
    ('Fpz', 'Cz')
    """
    text = _MODALITY_PREFIX.sub("", label.strip())
    parts = [p for p in re.split(r"[-_:/\s]+", text) if p]
    if not parts or len(parts) > 2 or not _TEN_TWENTY.fullmatch(parts[0]):
        return "", ""
    ref = parts[1] if len(parts) == 2 and _TEN_TWENTY.fullmatch(parts[1]) else ""
    if len(parts) == 2 and not ref:
        return "", ""
    return _spell_1020(parts[0]), _spell_1020(ref)


def _spell_1020(token: str) -> str:
    """Spell an electrode the 10-20 way: ``"FP1"`` -> ``"Fp1"``, ``"CZ"`` -> ``"Cz"``."""
    t = token.lower().replace(" ", "")
    return t[:1].upper() + t[1:]


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


def staging_rows(present: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """The canonical rows staging reads (the staging montage), given the ``present`` ones.

    EEG, EOG and chin EMG, what the AASM rules (and YASA) stage from: both central EEGs, the
    chin EMG and one EOG (E1, else E2), where present. On the development nights (seeds
    20000-20003) this staged as well as with both EOGs (accuracy 0.850 against 0.848) for
    four fifths of the work. All False when none of them is present.
    """
    import numpy as np  # not at module level: the CLI's --help imports this module

    present = np.asarray(present, bool)
    rows = np.isin(np.array(CANONICAL_SLOTS), ("C3_M2", "C4_M1", "EMG_CHIN")) & present
    left, right = CANONICAL_SLOTS.index("EOG_L"), CANONICAL_SLOTS.index("EOG_R")
    rows[left if present[left] else right] = bool(present[left] or present[right])
    return rows

