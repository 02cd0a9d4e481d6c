"""Grounded captions: speak only about channels the recording has, and check what is said.

Three guards stand between the caption decoder and the user:

1. **Absent modalities are not decoded.** A caption asked for a modality without any of its
   channels is the fixed sentence ``"no <modality> channels in this recording"``
   (:func:`absent_text`).
2. **Words about absent channels are never emitted.** :func:`banned_token_ids` lists the
   word pieces of :data:`CLAIM_GROUPS` whose channels the recording lacks (minus pieces that
   the present modalities' own templates use); decoding masks them out.
3. **Every sentence that states a number or an event is checked** (:func:`check_caption`)
   against the measured features of its epoch (:func:`sleeplm_core.captions.features.
   night_features`, the facts the scored captions are built from) and, when the recording is
   annotated, against the annotated events of the epoch. Each sentence gets a
   :class:`~sleeplm_core.results.SentenceCheck` status:

   ===============  ==================================================================
   ``plain``        states no number and no event: nothing to check
   ``agrees``       every number is within the rounding tolerance of its measurement,
                    every event is annotated (or, unannotated, seen by a detector)
   ``disagrees``    a number or an event contradicts the measurement
   ``absent``       it speaks of a channel the recording does not have
   ``unchecked``    it states something no measurement here can confirm (e.g. an
                    arousal in an unannotated file, a value relative to the whole night)
   ===============  ==================================================================

   The viewer marks ``disagrees`` / ``absent`` / ``unchecked`` sentences; a report prints
   only ``plain`` and ``agrees`` ones (:meth:`~sleeplm_core.results.Caption.checked_text`).

A number agrees when it is within the coarsest rounding step of its unit in the caption
templates (5 bpm, 5 %, 1 count, ...) of the measured value: the scored captions themselves
round to that step.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from sleeplm_core.captions.render import DEFAULT_STEPS, TEMPLATE_DIR
from sleeplm_core.io import labels as L
from sleeplm_core.io.channels import CANONICAL_SLOTS, MODALITY_SLOTS
from sleeplm_core.results import Caption, SentenceCheck

SLOT = {name: i for i, name in enumerate(CANONICAL_SLOTS)}
EPOCH_MODALITIES = ("brain", "heart", "respiratory", "somatic")


@dataclass(frozen=True)
class ClaimGroup:
    """Words that speak about some channels: a mention needs one of ``slots`` present."""

    name: str
    words: tuple[str, ...]
    slots: tuple[str, ...]

    @property
    def pattern(self) -> re.Pattern[str]:
        """A case-insensitive pattern matching any of the words."""
        return _words_re(self.words)


CLAIM_GROUPS: tuple[ClaimGroup, ...] = (
    ClaimGroup("airflow or belts", (
        "apnea", "apneas", "apnoea", "hypopnea", "hypopneas", "rera", "airflow", "breathing",
        "breaths", "breath", "respiration", "inspiratory", "flattening", "flattened",
        "thoracic", "abdominal", "belt", "belts"), ("AIRFLOW", "THX", "ABD")),
    ClaimGroup("SpO2", ("desaturation", "desaturates", "spo2", "oxygen", "saturation"),
               ("SPO2",)),
    ClaimGroup("ECG", ("heart", "ecg", "bpm", "rmssd", "beats", "heartbeats"), ("ECG",)),
    ClaimGroup("leg EMG", ("leg", "legs", "limb", "tibialis"), ("EMG_LEG",)),
    ClaimGroup("chin EMG", ("chin", "submental", "twitch", "twitches"), ("EMG_CHIN",)),
    ClaimGroup("body position", ("supine", "prone", "position", "lying"), ("POSITION",)),
    ClaimGroup("EEG", ("spindle", "spindles", "delta", "theta", "alpha", "sigma", "beta",
                       "arousal", "spectrum"), ("C3_M2", "C4_M1")),
    ClaimGroup("EOG", ("eog", "eyes", "eye"), ("EOG_L", "EOG_R")),
)  # fmt: skip
"""Words of captions and the channels they need (the "absent-modality mentions" of eval)."""

EVENT_WORDS: dict[str, str] = {
    "apnea": r"\bapn(?:o)?eas?\b",
    "hypopnea": r"\bhypopn(?:o)?eas?\b",
    "desaturation": r"desaturat|drop in spo2",
    "arousal": r"\barousals?\b",
    "rera": r"\brera\b",
    "limb movement": r"\blimb movements?\b|\bleg movements?\b",
    "spindle": r"\bspindles?\b",
    "k-complex": r"\bk\s*-\s*complex",
}
"""Event names a sentence may state (as parsed for the eval's caption facts)."""
EVENT_LABELS: dict[str, tuple[str, ...]] = {
    "apnea": L.APNEAS,
    "hypopnea": (L.HYPOPNEA,),
    "desaturation": (L.DESATURATION,),
    "arousal": (L.AROUSAL,),
    "rera": (L.RERA,),
    "limb movement": (L.LIMB_MOVEMENT,),
    "spindle": (L.SPINDLE,),
    "k-complex": (L.K_COMPLEX,),
}
_NEGATED = re.compile(r"\b(?:no|neither|nor|without|absent|quiet)\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")

Feature = Callable[[Mapping[str, float], Mapping[str, str]], float | None]


def _words_re(words: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


def absent_text(modality: str) -> str:
    """The caption of a modality the recording has no channel for."""
    return f"no {modality} channels in this recording"


def present_modalities(mask: np.ndarray) -> list[str]:
    """Signal modalities (brain, heart, respiratory, somatic) with a present channel."""
    return [m for m in EPOCH_MODALITIES if any(mask[SLOT[s]] for s in MODALITY_SLOTS[m])]


def absent_groups(mask: np.ndarray) -> list[ClaimGroup]:
    """Claim groups none of whose channels the recording has."""
    return [g for g in CLAIM_GROUPS if not any(mask[SLOT[s]] for s in g.slots)]


def absent_mentions(text: str, mask: np.ndarray) -> list[str]:
    """Words of ``text`` that speak of channels absent from ``mask`` (e.g. ``["apnea"]``).

    The fixed answer for an absent modality ("no heart channels in this recording") is the
    right thing to say and does not count.
    """
    for m in EPOCH_MODALITIES:
        text = re.sub(re.escape(absent_text(m)), " ", text, flags=re.IGNORECASE)
    return [m.group(0).lower() for g in absent_groups(mask) for m in g.pattern.finditer(text)]


def dedupe_sentences(text: str) -> str:
    """Drop sentences that repeat an earlier one word for word (a decoding loop)."""
    seen: set[str] = set()
    out = []
    for s in split_sentences(text):
        key = s.lower().rstrip(".")
        if key not in seen:
            seen.add(key)
            out.append(s)
    return " ".join(out)


@cache
def _templates(book: str) -> tuple[tuple[str, str], ...]:
    """``(sentence key, template)`` pairs of a caption template book."""
    import json

    data = json.loads((TEMPLATE_DIR / f"{book}.json").read_text(encoding="utf-8"))
    return tuple((k, t) for k, ts in data["sentences"].items() for t in ts)


def _template_texts(book: str) -> tuple[str, ...]:
    return tuple(t for _, t in _templates(book))


def banned_token_ids(tokenizer: Any, mask: np.ndarray) -> frozenset[int]:
    """Compact ids of word pieces that only words about absent channels use.

    Pieces that the templates of present modalities (and the stage sentences) also use stay
    allowed, so that banning "heart" never bans a piece of "REM".
    """
    absent = absent_groups(mask)
    if not absent:
        return frozenset()
    keep_texts = [t for m in present_modalities(mask) for t in _template_texts(m)]
    absent_words = {w for g in absent for w in g.words}
    keep_words = [
        w for w in re.findall(r"[a-z0-9]+", " ".join(keep_texts).lower()) if w not in absent_words
    ]
    keep_words += ["stage", "scored", "epoch", "wake", "rem", "sleep", "n1", "n2", "n3", "s"]
    keep = {i for w in keep_words for i in tokenizer.encode(w)}
    ban = {i for w in absent_words for i in tokenizer.encode(w)} - keep
    return frozenset(i for i in ban if i > 3)


# ------------------------------------------------------------------------------------------
# Template parsing: which number of a sentence is which measured feature
# ------------------------------------------------------------------------------------------


def _site(words: Mapping[str, str]) -> str:
    return "C4_M1" if "c4" in words.get("site", "").lower() else "C3_M2"


def _key(name: str) -> Feature:
    return lambda f, w: f.get(name)


def _band(band: str) -> Feature:
    return lambda f, w: f.get(f"{_site(w)}.{band}_pct")


def _signed(name: str, sign: float) -> Feature:
    def get(f: Mapping[str, float], w: Mapping[str, str]) -> float | None:
        v = f.get(name)
        return None if v is None else sign * v

    return get


NUMERIC: dict[str, tuple[Feature, str]] = {
    **{b: (_band(b), "%") for b in ("delta", "theta", "alpha", "sigma", "beta")},
    "spindles": (_key("spindles"), "count"),
    "k_complexes": (_key("k_complexes"), "count"),
    "slow_wave_pct": (_key("slow_wave_pct"), "%"),
    "rapid_eye_movements": (_key("rapid_eye_movements"), "count"),
    "hr_bpm": (_key("hr_bpm"), "bpm"),
    "rmssd_ms": (_key("rmssd_ms"), "ms"),
    "hr_rise_bpm": (_signed("hr_change_bpm", 1.0), "bpm"),
    "hr_fall_bpm": (_signed("hr_change_bpm", -1.0), "bpm"),
    "ref_min": (lambda f, w: 5.0, "count"),
    "resp_rate": (_key("resp_rate"), "/min"),
    "spo2_mean": (_key("spo2_mean"), "%"),
    "spo2_min": (_key("spo2_min"), "%"),
    "spo2_fall": (_signed("spo2_trend", -1.0), "%"),
    "spo2_rise": (_signed("spo2_trend", 1.0), "%"),
    "flattening_pct": (_key("flattening_pct"), "%"),
    "twitches": (_key("twitches"), "count"),
    "leg_movements": (_key("leg_movements"), "count"),
}
"""Numeric template placeholders -> (the measured feature, unit)."""
RELATIVE = ("flow_amp_pct", "emg_rel_pct")
"""Placeholders relative to the whole night: not checked on a caption's few epochs."""


@cache
def _book_patterns(book: str) -> tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...]:
    """``(key, regex, numeric placeholders)`` for each template sentence of ``book``."""
    out = []
    for key, template in _templates(book):
        parts, names = [], []
        for literal, field, _spec, _conv in string.Formatter().parse(template):
            parts.append(re.escape(literal))
            if field is None:
                continue
            if field in NUMERIC or field in RELATIVE:
                parts.append(rf"(?P<{field}>-?\d+(?:\.\d+)?)")
                names.append(field)
            else:
                parts.append(rf"(?P<{field}>.*?)")
        body = "".join(parts).rstrip(r"\.")
        pattern = re.compile(r"^\s*" + body + r"\.?\s*$", re.IGNORECASE)
        out.append((key, pattern, tuple(names)))
    return tuple(out)


def _zero(*keys: str) -> Callable[[Mapping[str, float], Mapping[str, str]], bool | None]:
    def test(f: Mapping[str, float], w: Mapping[str, str]) -> bool | None:
        if any(k not in f for k in keys):
            return None
        return all(f[k] == 0 for k in keys)

    return test


def _regularity(f: Mapping[str, float], w: Mapping[str, str]) -> bool | None:
    word = w.get("regularity", "").lower()
    if "breath_cv" not in f or word not in ("regular", "irregular"):
        return None
    return (f["breath_cv"] < 0.25) == (word == "regular")


def _position(f: Mapping[str, float], w: Mapping[str, str]) -> bool | None:
    from sleeplm_core.captions.epoch import POSITION_WORDS

    if "position" not in f:
        return None
    return POSITION_WORDS.get(int(f["position"]), "") == w.get("position", "").lower()


WORD_CHECKS: dict[tuple[str, str], Callable[[Mapping[str, float], Mapping[str, str]], bool | None]]
WORD_CHECKS = {
    ("brain", "no_graphoelements"): _zero("spindles", "k_complexes"),
    ("brain", "no_slow_waves"): _zero("slow_wave_pct"),
    ("brain", "quiet_eyes"): _zero("rapid_eye_movements", "slow_eye_movements"),
    ("brain", "slow_eyes"): lambda f, w: None
    if "slow_eye_movements" not in f
    else f["slow_eye_movements"] > 0,
    ("heart", "steady"): lambda f, w: None
    if "hr_change_bpm" not in f
    else abs(f["hr_change_bpm"]) < 5.0,
    ("heart", "no_beats"): lambda f, w: "hr_bpm" not in f,
    ("respiratory", "rate"): _regularity,
    ("respiratory", "no_flattening"): _zero("flattening_pct"),
    ("somatic", "no_legs"): _zero("leg_movements"),
    ("somatic", "position"): _position,
}
"""Template sentences without numbers whose words state a measurable fact."""

@cache
def _tolerance(book: str, unit: str) -> float:
    import json

    data = json.loads((TEMPLATE_DIR / f"{book}.json").read_text(encoding="utf-8"))
    steps = data.get("rounding", {}).get(unit) or DEFAULT_STEPS.get(unit, (1.0,))
    return float(max(steps))


def split_sentences(text: str) -> list[str]:
    """Sentences of a caption (a full stop followed by a space ends one; decimals do not)."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=\S)", text.strip()) if s.strip()]


# ------------------------------------------------------------------------------------------
# Checking
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochFacts:
    """What a caption of one epoch may be checked against.

    Parameters
    ----------
    features : mapping
        The epoch's measured features (keys of :mod:`sleeplm_core.captions.features`).
    mask : ndarray, bool (12,)
        The recording's canonical channels.
    events : sequence of (label, offset_s, duration_s) or None
        Annotated events overlapping the epoch (onset minus the epoch's start, duration), or
        ``None`` when the recording carries no event annotation at all (then events are
        checked against the detectors).
    """

    features: Mapping[str, float]
    mask: np.ndarray
    events: Sequence[tuple[str, float, float]] | None = None


def _event_seen(kind: str, facts: EpochFacts) -> bool | None:
    """Whether the epoch has ``kind``: annotated, else detected; ``None`` when unknowable."""
    if facts.events is not None:
        return any(lab in EVENT_LABELS[kind] for lab, _, _ in facts.events)
    f = facts.features
    evidence: dict[str, Callable[[], float | None]] = {
        "spindle": lambda: f.get("spindles"),
        "k-complex": lambda: f.get("k_complexes"),
        "limb movement": lambda: f.get("leg_movements"),
        "desaturation": lambda: None
        if "spo2_mean" not in f
        else float(f["spo2_mean"] - f.get("spo2_min", f["spo2_mean"]) >= 3.0
                   or f.get("spo2_trend", 0.0) <= -3.0),  # fmt: skip
    }
    got = evidence.get(kind, lambda: None)()
    return None if got is None else bool(got > 0)


_SECONDS = re.compile(
    r"(?:lasting|of) (?P<duration>\d+(?:\.\d+)?) s\b"
    r"|(?:starting|beginning) (?P<offset>\d+(?:\.\d+)?) s into"
    r"|(?P<before>\d+(?:\.\d+)?) s before",
    re.IGNORECASE,
)
SECONDS_TOLERANCE = 5.0
"""Seconds: the coarsest rounding step of durations and offsets in the templates."""


def check_sentence(sentence: str, modality: str, facts: EpochFacts) -> SentenceCheck:
    """Check one generated sentence (see the module docstring for the statuses)."""
    absent = absent_mentions(sentence, facts.mask)
    if absent:
        return SentenceCheck(sentence, "absent", f"no channel for “{absent[0]}” in this recording")
    if modality in EPOCH_MODALITIES:
        for key, pattern, names in _book_patterns(modality):
            m = pattern.match(sentence)
            if m is not None:
                return _check_template(sentence, modality, key, m, names, facts)
    ok, problems, unknown = _check_events(sentence, facts)
    if _NUMBER.search(sentence):
        n_ok, n_bad, n_unknown = _check_event_numbers(sentence, facts)
        ok, problems, unknown = ok + n_ok, problems + n_bad, unknown + n_unknown
    if modality in EPOCH_MODALITIES and not problems:
        return SentenceCheck(sentence, "unchecked", "not a sentence the model was taught")
    return _verdict(sentence, ok, problems, unknown)


def _verdict(sentence: str, ok: int, problems: list[str], unknown: list[str]) -> SentenceCheck:
    if problems:
        return SentenceCheck(sentence, "disagrees", "; ".join(problems))
    if unknown:
        reason = "cannot be measured here: " + ", ".join(unknown)
        return SentenceCheck(sentence, "unchecked", reason)
    return SentenceCheck(sentence, "agrees" if ok else "plain", "")


def _check_template(
    sentence: str,
    modality: str,
    key: str,
    m: re.Match[str],
    names: tuple[str, ...],
    facts: EpochFacts,
) -> SentenceCheck:
    """Check a sentence that is one of its modality's templates, number by number."""
    words = {k: v for k, v in m.groupdict().items() if k not in names and v is not None}
    ok, bad, unknown = 0, [], []
    for name in names:
        if name in RELATIVE:
            unknown.append(name.replace("_", " ") + " (relative to the whole night)")
            continue
        get, unit = NUMERIC[name]
        measured = get(facts.features, words)
        if measured is None:
            unknown.append(name.replace("_", " "))
        elif abs(float(m.group(name)) - measured) <= _tolerance(modality, unit) + 1e-9:
            ok += 1
        else:
            bad.append(f"{name.replace('_', ' ')} {m.group(name)} (measured {measured:.3g})")
    test = WORD_CHECKS.get((modality, key))
    if test is not None:
        got = test(facts.features, words)
        if got is None:
            unknown.append(key.replace("_", " "))
        elif got:
            ok += 1
        else:
            bad.append(f"“{sentence.rstrip('.')}” does not match the measurement")
    return _verdict(sentence, ok, bad, unknown)


def _check_events(sentence: str, facts: EpochFacts) -> tuple[int, list[str], list[str]]:
    """(agreeing, disagreeing, uncheckable) event mentions of a sentence."""
    ok, problems, unknown = 0, [], []
    negated = bool(_NEGATED.search(sentence))
    for kind, pattern in EVENT_WORDS.items():
        if not re.search(pattern, sentence, re.IGNORECASE):
            continue
        seen = _event_seen(kind, facts)
        if seen is None:
            unknown.append(kind)
        elif seen == negated:
            problems.append(f"{kind} {'is' if seen else 'is not'} in this epoch")
        else:
            ok += 1
    return ok, problems, unknown


_COUNTED = re.compile(
    r"(?P<n>\d+) scored (?P<what>spindles?|k-complex(?:es)?)"
    r"|marked (?P<n2>\d+) (?P<what2>spindles?|k-complex(?:es)?)",
    re.IGNORECASE,
)


def _check_counts(sentence: str, facts: EpochFacts) -> tuple[int, list[str], list[str]]:
    """Counts of spindles / K-complexes: annotated ones starting in the epoch, else detected."""
    ok, bad, unknown = 0, [], []
    for m in _COUNTED.finditer(sentence):
        n = float(m.group("n") or m.group("n2"))
        kind = "spindle" if (m.group("what") or m.group("what2")).lower().startswith("s") else (
            "k-complex"
        )
        if facts.events is not None:
            truth: float | None = float(sum(
                1 for lab, o, _ in facts.events if lab in EVENT_LABELS[kind] and o >= 0
            ))  # fmt: skip
            tol = 0.0
        else:
            truth = facts.features.get("spindles" if kind == "spindle" else "k_complexes")
            tol = 1.0
        if truth is None:
            unknown.append(f"{kind} count")
        elif abs(n - truth) <= tol:
            ok += 1
        else:
            bad.append(f"{int(n)} {kind}s stated, {truth:.0f} found")
    return ok, bad, unknown


def _check_event_numbers(sentence: str, facts: EpochFacts) -> tuple[int, list[str], list[str]]:
    """Counts, and durations and offsets of annotated events; other numbers are uncheckable."""
    ok, bad, unknown = _check_counts(sentence, facts)
    sentence = _COUNTED.sub("", sentence)
    if not _NUMBER.search(sentence):
        return ok, bad, unknown
    if not facts.events:
        return ok, bad, [*unknown, "event timing (no annotated event here)"]
    spans = list(_SECONDS.finditer(sentence))
    for m in spans:
        what = next(k for k, v in m.groupdict().items() if v is not None)
        value = float(m.group(what))
        truth = [
            d if what == "duration" else (o if what == "offset" else -o)
            for _, o, d in facts.events
        ]
        if any(abs(value - t) <= SECONDS_TOLERANCE for t in truth):
            ok += 1
        else:
            bad.append(f"{what} {m.group(what)} s (annotated: "
                       + ", ".join(f"{t:.0f} s" for t in truth) + ")")  # fmt: skip
    if _NUMBER.findall(_SECONDS.sub("", sentence)):
        unknown.append("a number not about timing")
    return ok, bad, unknown


def check_caption(text: str, modality: str, facts: EpochFacts) -> tuple[SentenceCheck, ...]:
    """Check every sentence of a generated caption of one epoch."""
    if text == absent_text(modality):
        return (SentenceCheck(text, "plain", ""),)
    return tuple(check_sentence(s, modality, facts) for s in split_sentences(text))


def epoch_facts(rec: Any, start_s: float, n_epochs: int, mask: np.ndarray) -> list[EpochFacts]:
    """Measured features (and annotated events) of ``n_epochs`` epochs from ``start_s``.

    Features are measured on the span plus up to 10 minutes on each side (the detectors
    need neighbouring epochs); values relative to the whole night are left unchecked.
    """
    from sleeplm_core.captions.features import night_features
    from sleeplm_core.stages import EPOCH_S

    margin = float(min(20, int(start_s // EPOCH_S))) * EPOCH_S
    a = start_s - margin
    b = min(start_s + n_epochs * EPOCH_S + 20 * EPOCH_S, float(rec.duration_s))
    win = rec.canonical(a, max(b, start_s + n_epochs * EPOCH_S))
    feats = night_features(np.asarray(win.data), np.asarray(win.mask, bool))
    first = int(round(margin / EPOCH_S))
    anns = [x for x in rec.annotations if x.label not in L.STAGE_LABEL.values()]
    described = {lab for labs in EVENT_LABELS.values() for lab in labs}
    annotated = any(x.label in described for x in anns)
    out = []
    for k in range(n_epochs):
        e0 = start_s + k * EPOCH_S
        f = feats[first + k] if first + k < len(feats) else {}
        events = None
        if annotated:
            events = [
                (x.label, x.onset_s - e0, x.duration_s)
                for x in anns
                if x.onset_s < e0 + EPOCH_S and x.onset_s + max(x.duration_s, 1e-9) > e0
            ]
        out.append(EpochFacts(f, np.asarray(mask, bool), events))
    return out


def grounded_captions(
    predictor: Any,
    rec: Any,
    start_s: float,
    stop_s: float,
    modalities: Sequence[str] | None = None,
    prompt: str | None = None,
    beam: int = 3,
) -> list[Caption]:
    """Checked captions of each 30 s epoch in ``[start_s, stop_s)`` (``Predictor.caption``).

    One caption per present modality plus ``stage_event`` by default; an asked-for absent
    modality gets :func:`absent_text` without decoding. Every caption carries the checks of
    its sentences (:func:`check_caption`).
    """
    from sleeplm_core.inference import WINDOW_N, _pad_to
    from sleeplm_core.signal_quality import UNSCORED_CAPTION, live_seconds, scorable_windows
    from sleeplm_core.stages import EPOCH_S

    start = EPOCH_S * np.floor(start_s / EPOCH_S)
    n_ep = max(1, int(np.ceil((min(stop_s, rec.duration_s) - start) / EPOCH_S)))
    win = rec.canonical(float(start), float(start + n_ep * EPOCH_S))
    mask = np.asarray(win.mask, bool)
    data = _pad_to(win.data, n_ep * WINDOW_N)
    windows = data.reshape(len(CANONICAL_SLOTS), n_ep, WINDOW_N).transpose(1, 0, 2)
    wanted = list(modalities) if modalities else ["stage_event", *present_modalities(mask)]
    facts = epoch_facts(rec, float(start), n_ep, mask)
    out: list[Caption] = []
    ok = scorable_windows(live_seconds(win.data, mask), np.arange(n_ep) * EPOCH_S, EPOCH_S)
    for modality in wanted:
        texts = predictor.generate(windows, mask, modality, prompt=prompt, beam=beam)
        for k, t in enumerate(texts):
            if not ok[k]:  # a gap or flat channels: no caption, nothing to check
                out.append(Caption(float(start + k * EPOCH_S), EPOCH_S, "epoch", modality,
                                   UNSCORED_CAPTION))  # fmt: skip
                continue
            checks = check_caption(t, modality, facts[k])
            out.append(Caption(float(start + k * EPOCH_S), EPOCH_S, "epoch", modality, t, checks))
    return out
