"""Segment captions (a few minutes) and the night caption (the clinical summary).

Segments are runs of ``segment_epochs`` epochs (10 = 5 min by default). Their captions tell
the stage composition and transitions, the NREM-REM cycle, clusters of respiratory events,
periodic limb movement series and event counts. The night caption states the clinical
summary from the hypnogram statistics and event indices (TST, efficiency, stage %, AHI,
ODI, PLM index, arousal index).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from sleeplm_core.captions.epoch import plural
from sleeplm_core.captions.facts import Caption, Fact
from sleeplm_core.captions.render import Rendered, TemplateBook, caption_from, join
from sleeplm_core.io import labels as L
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.stages import EPOCH_S, SLEEP_STAGES

SEGMENT_EPOCHS = 10
CLUSTER_MIN = 3
CLUSTER_MAX_GAP_S = 120.0
REM_GAP_EPOCHS = 30
"""REM epochs less than 15 min apart belong to one REM period (Feinberg and Floyd)."""

COUNT_GROUPS: dict[str, tuple[str, ...]] = {
    "respiratory": L.RESPIRATORY_EVENTS,
    "desaturation": (L.DESATURATION,),
    "arousal": (L.AROUSAL,),
    "limb": (L.LIMB_MOVEMENT,),
}
"""Label groups behind the ``count:<window>:<group>`` fact sources."""
_COUNT_WORDS: dict[str, tuple[str, str]] = {
    "respiratory": ("respiratory event", "respiratory events"),
    "desaturation": ("desaturation", "desaturations"),
    "arousal": ("arousal", "arousals"),
    "limb": ("limb movement", "limb movements"),
}
_PLURAL_LABEL = {
    L.OBSTRUCTIVE_APNEA: "obstructive apneas",
    L.CENTRAL_APNEA: "central apneas",
    L.MIXED_APNEA: "mixed apneas",
    L.HYPOPNEA: "hypopneas",
}


def sleep_cycles(stages: Sequence[str]) -> list[tuple[int, int]]:
    """NREM-REM cycles as ``(first, stop)`` epoch ranges.

    A cycle starts at the first sleep epoch (or after the previous cycle) and ends with a
    REM period; REM epochs closer than 15 min belong to one period. Sleep after the last REM
    period forms a final cycle when it holds at least 15 min of NREM sleep.

    Parameters
    ----------
    stages : sequence of str
        YASA stage per epoch.

    Returns
    -------
    list of tuple of int
        Half-open epoch ranges, in order.
    """
    sleep = [i for i, s in enumerate(stages) if s in SLEEP_STAGES]
    if not sleep:
        return []
    rem = [i for i, s in enumerate(stages) if s == "REM"]
    ends: list[int] = []
    for k, i in enumerate(rem):
        if k + 1 == len(rem) or rem[k + 1] - i > REM_GAP_EPOCHS:
            ends.append(i + 1)
    cycles: list[tuple[int, int]] = []
    start = sleep[0]
    for end in ends:
        cycles.append((start, end))
        start = end
    tail = [i for i in sleep if i >= start and stages[i] != "REM"]
    if len(tail) >= REM_GAP_EPOCHS:
        cycles.append((start, sleep[-1] + 1))
    return cycles


def segment_caption(
    stages: Sequence[str],
    first_epoch: int,
    anns: Sequence[Annotation],
    cycles: Sequence[tuple[int, int]],
    plm: Sequence[Annotation],
    rng: np.random.Generator,
) -> Caption:
    """Caption the epochs ``stages`` that start at epoch ``first_epoch``.

    Parameters
    ----------
    stages : sequence of str
        YASA stage of each epoch of the segment.
    first_epoch : int
        Index of the segment's first epoch in the night.
    anns : sequence of annotations
        All annotations of the recording.
    cycles : sequence of tuple of int
        The night's :func:`sleep_cycles`.
    plm : sequence of Annotation
        The night's limb movements in PLM series (:func:`sleeplm_core.io.indices.plm_series`).
    rng : numpy.random.Generator
        Paraphrase and rounding draws.

    Returns
    -------
    Caption
        The ``segment`` caption.
    """
    book = TemplateBook("segment", rng)
    start_s = first_epoch * EPOCH_S
    stop_s = start_s + len(stages) * EPOCH_S
    window = f"{start_s:g}-{stop_s:g}"
    facts: list[Fact] = []
    parts: list[Rendered] = []
    seg_min = Fact("seg_min", len(stages) * EPOCH_S / 60.0, "min", "derived:segment_minutes")
    pieces: list[Rendered] = []
    scored = [s for s in stages if s not in ("UNS",)]
    for st in ("W", "N1", "N2", "N3", "REM", "ART"):
        n = sum(1 for s in stages if s == st)
        if n:
            fact = Fact(f"{st}_min", n * EPOCH_S / 60.0, "min", f"stages:{window}:{st}")
            facts.append(fact)
            word = {"W": "wake", "ART": "movement time"}.get(st, st)
            pieces.append(book.render("part", {"minutes": fact}, {"stage": word}))
    if pieces:
        facts.append(seg_min)
        parts.append(book.render("composition", {"seg_min": seg_min}, {"parts": join(pieces)}))
    changes = [(a, b) for a, b in zip(scored[:-1], scored[1:], strict=True) if a != b]
    if scored and not changes:
        word = {"W": "wake", "ART": "movement time"}.get(scored[0], scored[0])
        parts.append(book.render("stable", None, {"stage": word}))
    elif changes:
        n_fact = Fact("n_transitions", float(len(changes)), "count", f"transitions:{window}")
        facts.append(n_fact)
        listed = ", ".join(f"{a} to {b}" for a, b in changes[:4])
        listed += ", and more" if len(changes) > 4 else ""
        parts.append(
            book.render(
                "transitions",
                {"n_transitions": n_fact},
                {
                    "transition_word": plural(len(changes), "transition", "transitions"),
                    "times_word": plural(len(changes), "time", "times"),
                    "list": listed,
                },
            )
        )
    middle = first_epoch + len(stages) // 2
    for k, (a, b) in enumerate(cycles):
        if a <= middle < b:
            fact = Fact("cycle", float(k + 1), "count", "hypnogram:cycle")
            facts.append(fact)
            parts.append(book.render("cycle", {"cycle": fact}))
    inside = [a for a in anns if start_s <= a.onset_s < stop_s]
    resp = [a for a in inside if a.label in L.RESPIRATORY_EVENTS]
    if len(resp) >= CLUSTER_MIN:
        gaps = np.diff([a.onset_s for a in resp])
        if float(np.max(gaps)) <= CLUSTER_MAX_GAP_S:
            kinds = {a.label for a in resp}
            what = _PLURAL_LABEL[resp[0].label] if len(kinds) == 1 else "respiratory events"
            n_fact = Fact("cluster_n", float(len(resp)), "count", f"count:{window}:respiratory")
            iv = Fact("cluster_interval_s", float(np.mean(gaps)), "s", f"interval:{window}")
            facts += [n_fact, iv]
            parts.append(book.render("cluster", {"n": n_fact, "interval": iv}, {"events": what}))
    lm = [a.onset_s for a in plm if start_s <= a.onset_s < stop_s]
    if len(lm) >= 2:
        n_fact = Fact("plm_n", float(len(lm)), "count", f"plm:{window}")
        iv = Fact("plm_interval_s", float(np.mean(np.diff(lm))), "s", f"plm_interval:{window}")
        facts += [n_fact, iv]
        parts.append(book.render("plm_series", {"n": n_fact, "interval": iv}))
    counted: list[Rendered] = []
    for key, labels in COUNT_GROUPS.items():
        count = sum(1 for a in inside if a.label in labels)
        if count:
            fact = Fact(f"n_{key}", float(count), "count", f"count:{window}:{key}")
            facts.append(fact)
            counted.append(
                book.render("count_part", {"n": fact}, {"what": plural(count, *_COUNT_WORDS[key])})
            )
    parts.append(
        book.render("counts", None, {"list": join(counted)})
        if counted
        else book.render("no_events")
    )
    return caption_from("segment", "segment", parts, facts)


def severity(ahi: float) -> str:
    """AASM severity of an apnea-hypopnea index."""
    if ahi < 5:
        return "no sleep apnea"
    if ahi < 15:
        return "mild sleep apnea"
    if ahi < 30:
        return "moderate sleep apnea"
    return "severe sleep apnea"


NIGHT_STATS: dict[str, tuple[str, str]] = {
    "tst_min": ("TST", "min"),
    "se_pct": ("SE", "%"),
    "sol_min": ("SOL", "min"),
    "waso_min": ("WASO", "min"),
    "n1_pct": ("%N1", "%"),
    "n2_pct": ("%N2", "%"),
    "n3_pct": ("%N3", "%"),
    "rem_pct": ("%REM", "%"),
}
"""Night facts from :meth:`Hypnogram.sleep_statistics`: placeholder -> (key, unit)."""
NIGHT_INDICES: dict[str, str] = {"ahi": "AHI", "odi": "ODI", "plmi": "PLMI", "ari": "ArI"}
"""Night facts from :func:`sleeplm_core.io.indices.event_indices`: placeholder -> key."""


def night_caption(
    stats: Mapping[str, float] | None,
    indices: Mapping[str, float] | None,
    n_cycles: int | None,
    rng: np.random.Generator,
) -> Caption | None:
    """The clinical summary of the night.

    Parameters
    ----------
    stats : mapping or None
        :meth:`~sleeplm_core.io.hypnogram.Hypnogram.sleep_statistics` (``None`` when unscored).
    indices : mapping or None
        :func:`~sleeplm_core.io.indices.event_indices`.
    n_cycles : int or None
        Number of NREM-REM cycles.
    rng : numpy.random.Generator
        Paraphrase and rounding draws.

    Returns
    -------
    Caption or None
        The ``night`` caption, or ``None`` when there are no statistics.
    """
    if not stats:
        return None
    book = TemplateBook("night", rng)
    f: dict[str, Fact] = {}
    for ph, (key, unit) in NIGHT_STATS.items():
        value = stats.get(key)
        if value is not None and np.isfinite(value):
            f[ph] = Fact(ph, float(value), unit, f"stats:{key}")
    for ph, key in NIGHT_INDICES.items():
        value = None if indices is None else indices.get(key)
        if value is not None and np.isfinite(value):
            f[ph] = Fact(ph, float(value), "/h", f"indices:{key}")
    parts: list[Rendered] = []
    for sentence, needs in (
        ("sleep", ("tst_min", "se_pct")),
        ("latency", ("sol_min", "waso_min")),
        ("stages", ("n1_pct", "n2_pct", "n3_pct", "rem_pct")),
    ):
        if all(n in f for n in needs):
            parts.append(book.render(sentence, f))
    if n_cycles:
        f["n_cycles"] = Fact("n_cycles", float(n_cycles), "count", "hypnogram:cycles")
        parts.append(book.render("cycles", f, {"cycle_word": plural(n_cycles, "cycle", "cycles")}))
    if "ahi" in f and "odi" in f:
        parts.append(book.render("respiratory", f, {"severity": severity(f["ahi"].value)}))
    if "plmi" in f and "ari" in f:
        parts.append(book.render("other_indices", f))
    return caption_from("night", "night", parts, list(f.values())) if parts else None
