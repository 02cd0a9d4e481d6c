"""Epoch-level captions: one per modality (brain, heart, respiratory, somatic, stage_event).

Each ``*_caption`` function turns one epoch's features (see
:mod:`sleeplm_core.captions.features`) or events (see :mod:`sleeplm_core.captions.events`)
into a :class:`~sleeplm_core.captions.facts.Caption`, or ``None`` when its modality has
nothing to say. Which modalities get a caption at all is decided by the channel mask.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from sleeplm_core.captions.events import EpochEvent, desaturation_drop
from sleeplm_core.captions.facts import Caption, Fact
from sleeplm_core.captions.features import EEG_SITES, HR_REFERENCE_EPOCHS, SLOT, EpochFeatures
from sleeplm_core.captions.render import Rendered, TemplateBook, caption_from, join
from sleeplm_core.io import labels as L
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.channels import MODALITY_SLOTS

POSITION_WORDS: dict[int, str] = {
    0: "on the right side",
    1: "supine",
    2: "on the left side",
    3: "prone",
}
"""Body-position codes of the canonical POSITION slot (SHHS: right, back, left, front)."""

STAGE_WORDS: dict[str, str] = {
    "W": "wake",
    "N1": "N1",
    "N2": "N2",
    "N3": "N3",
    "REM": "REM sleep",
    "ART": "movement time",
}
SITE_WORDS: dict[str, str] = {"C3_M2": "C3-M2", "C4_M1": "C4-M1"}
"""How an EEG slot is named when its source channel's name cannot be used."""
_STANDALONE_NUMBER = re.compile(r"(?<![\w.])\d")
HR_CHANGE_BPM = 5.0
SPO2_TREND_PCT = 2.0


def present_modalities(mask: NDArray[np.bool_]) -> list[str]:
    """Signal modalities with at least one present slot in ``mask`` (shape (12,))."""
    return [m for m, slots in MODALITY_SLOTS.items() if any(mask[SLOT[s]] for s in slots)]


def plural(n: float, one: str, many: str) -> str:
    """Pick the singular or plural word for a count."""
    return one if round(n) == 1 else many


def _feature_facts(feats: EpochFeatures, names: dict[str, str], unit: str) -> dict[str, Fact]:
    """Facts for placeholders ``{placeholder: feature key}`` that the epoch has."""
    return {
        ph: Fact(key, feats[key], unit, f"feature:{key}")
        for ph, key in names.items()
        if key in feats
    }


def site_word(site: str, source: str | None) -> str:
    """Name an EEG slot by its source channel (e.g. ``C3-A1``) when that adds no bare number."""
    if source and not _STANDALONE_NUMBER.search(source):
        return source
    return SITE_WORDS[site]


def brain_caption(
    feats: EpochFeatures,
    mask: NDArray[np.bool_],
    rng: np.random.Generator,
    sources: Sequence[str | None] | None = None,
) -> Caption | None:
    """Relative band power at C3/C4, spindles, K-complexes, slow waves and eye movements.

    ``sources`` (the file channel of each canonical slot) names the EEG sites as recorded.
    """
    book = TemplateBook("brain", rng)

    def src(site: str) -> str | None:
        return None if sources is None else sources[SLOT[site]]

    parts: list[Rendered] = []
    facts: list[Fact] = []
    sites = [s for s in EEG_SITES if mask[SLOT[s]] and f"{s}.delta_pct" in feats]
    for site in sites:
        f = _feature_facts(
            feats, {b: f"{site}.{b}_pct" for b in ("delta", "theta", "alpha", "sigma", "beta")}, "%"
        )
        facts += f.values()
        parts.append(book.render("bands", f, {"site": site_word(site, src(site))}))
    if sites and "spindles" in feats:
        f = _feature_facts(feats, {"spindles": "spindles", "k_complexes": "k_complexes"}, "count")
        facts += f.values()
        words = {
            "site": site_word(sites[0], src(sites[0])),
            "spindle_word": plural(feats["spindles"], "spindle", "spindles"),
            "kc_word": plural(feats["k_complexes"], "K-complex", "K-complexes"),
        }
        empty = feats["spindles"] == 0 and feats["k_complexes"] == 0
        parts.append(book.render("no_graphoelements" if empty else "graphoelements", f, words))
        sw = _feature_facts(feats, {"slow_wave_pct": "slow_wave_pct"}, "%")
        facts += sw.values()
        parts.append(
            book.render("slow_waves" if feats["slow_wave_pct"] > 0 else "no_slow_waves", sw)
        )
    if "rapid_eye_movements" in feats and (mask[SLOT["EOG_L"]] or mask[SLOT["EOG_R"]]):
        n = feats["rapid_eye_movements"]
        if n > 0:
            f = _feature_facts(feats, {"rapid_eye_movements": "rapid_eye_movements"}, "count")
            facts += f.values()
            parts.append(
                book.render("rapid_eyes", f, {"movement_word": plural(n, "movement", "movements")})
            )
        else:
            # the words rest on these features even though no number is written
            facts += _feature_facts(
                feats,
                {"rapid": "rapid_eye_movements", "slow": "slow_eye_movements"},
                "count",
            ).values()
            parts.append(book.render("slow_eyes" if feats["slow_eye_movements"] else "quiet_eyes"))
    return caption_from("epoch", "brain", parts, facts) if parts else None


def heart_caption(feats: EpochFeatures, rng: np.random.Generator) -> Caption:
    """Heart rate and RMSSD, with the rise or fall against the preceding minutes."""
    book = TemplateBook("heart", rng)
    if "hr_bpm" not in feats:
        return caption_from("epoch", "heart", [book.render("no_beats")], [])
    f = {
        **_feature_facts(feats, {"hr_bpm": "hr_bpm"}, "bpm"),
        **_feature_facts(feats, {"rmssd_ms": "rmssd_ms"}, "ms"),
    }
    facts = list(f.values())
    parts = [book.render("rate", f)]
    change = feats.get("hr_change_bpm")
    if change is not None:
        ref = Fact("ref_min", HR_REFERENCE_EPOCHS / 2, "count", "derived:hr_reference_minutes")
        if abs(change) >= HR_CHANGE_BPM:
            key = "hr_rise_bpm" if change > 0 else "hr_fall_bpm"
            fact = Fact(key, abs(change), "bpm", "feature:hr_change_bpm")
            facts += [fact, ref]
            parts.append(book.render("rise" if change > 0 else "fall", {key: fact, "ref_min": ref}))
        else:
            facts.append(Fact("hr_change_bpm", abs(change), "bpm", "feature:hr_change_bpm"))
            parts.append(book.render("steady"))
    return caption_from("epoch", "heart", parts, facts)


def respiratory_caption(
    feats: EpochFeatures, mask: NDArray[np.bool_], rng: np.random.Generator
) -> Caption | None:
    """Breathing rate and regularity, airflow amplitude and flattening, SpO2 level and trend."""
    book = TemplateBook("respiratory", rng)
    parts: list[Rendered] = []
    facts: list[Fact] = []
    source = next(
        (
            w
            for s, w in (
                ("AIRFLOW", "airflow"),
                ("THX", "thoracic belt"),
                ("ABD", "abdominal belt"),
            )
            if mask[SLOT[s]]
        ),
        None,
    )
    if source is not None and "resp_rate" in feats:
        f = _feature_facts(feats, {"resp_rate": "resp_rate"}, "/min")
        facts += f.values()
        if "breath_cv" in feats:
            regular = "regular" if feats["breath_cv"] < 0.25 else "irregular"
            facts += _feature_facts(feats, {"cv": "breath_cv"}, "ratio").values()
            parts.append(book.render("rate", f, {"regularity": regular, "resp_source": source}))
        else:
            parts.append(book.render("few_breaths", f, {"resp_source": source}))
        for key, sentence in (("flow_amp_pct", "amplitude"), ("flattening_pct", "flattening")):
            if key in feats:
                f = _feature_facts(feats, {key: key}, "%")
                facts += f.values()
                if sentence == "flattening" and feats[key] == 0:
                    sentence = "no_flattening"
                parts.append(book.render(sentence, f))
    if mask[SLOT["SPO2"]] and "spo2_mean" in feats:
        f = _feature_facts(feats, {"spo2_mean": "spo2_mean", "spo2_min": "spo2_min"}, "%")
        trend = feats.get("spo2_trend", 0.0)
        key = "spo2_stable"
        if trend <= -SPO2_TREND_PCT:
            key = "spo2_fall"
            f["spo2_fall"] = Fact("spo2_fall", -trend, "%", "feature:spo2_trend")
        elif trend >= SPO2_TREND_PCT:
            key = "spo2_rise"
            f["spo2_rise"] = Fact("spo2_rise", trend, "%", "feature:spo2_trend")
        facts += f.values()
        parts.append(book.render(key, f))
    return caption_from("epoch", "respiratory", parts, facts) if parts else None


def somatic_caption(
    feats: EpochFeatures, mask: NDArray[np.bool_], rng: np.random.Generator
) -> Caption | None:
    """Chin tone relative to the night, twitches, leg movements and body position."""
    book = TemplateBook("somatic", rng)
    parts: list[Rendered] = []
    facts: list[Fact] = []
    if mask[SLOT["EMG_CHIN"]] and "emg_rel_pct" in feats:
        rel = feats["emg_rel_pct"]
        tone = "low" if rel < 50 else ("high" if rel > 200 else "moderate")
        f = _feature_facts(feats, {"emg_rel_pct": "emg_rel_pct"}, "%")
        facts += f.values()
        parts.append(book.render("tone", f, {"tone": tone}))
        if feats.get("twitches", 0) > 0:
            f = _feature_facts(feats, {"twitches": "twitches"}, "count")
            facts += f.values()
            parts.append(
                book.render(
                    "twitches", f, {"twitch_word": plural(feats["twitches"], "twitch", "twitches")}
                )
            )
    if mask[SLOT["EMG_LEG"]] and "leg_movements" in feats:
        n = feats["leg_movements"]
        if n > 0:
            f = _feature_facts(feats, {"leg_movements": "leg_movements"}, "count")
            facts += f.values()
            parts.append(
                book.render("legs", f, {"movement_word": plural(n, "movement", "movements")})
            )
        else:
            facts += _feature_facts(feats, {"legs": "leg_movements"}, "count").values()
            parts.append(book.render("no_legs"))
    if mask[SLOT["POSITION"]] and int(feats.get("position", -1)) in POSITION_WORDS:
        facts += _feature_facts(feats, {"position": "position"}, "code").values()
        parts.append(
            book.render("position", None, {"position": POSITION_WORDS[int(feats["position"])]})
        )
    return caption_from("epoch", "somatic", parts, facts) if parts else None


def _event_name(label: str) -> str:
    return label if label == L.RERA else label.lower()


def _channel_words(channel: str | None) -> str:
    """`` on <channel>`` unless the name would put a bare number into the text."""
    if not channel or _STANDALONE_NUMBER.search(channel):
        return ""
    return f" on {channel}"


def stage_event_caption(
    stage: str | None,
    events: Sequence[EpochEvent],
    counts: dict[str, int],
    anns: Sequence[Annotation],
    spo2: NDArray[np.floating] | None,
    sf: float,
    rng: np.random.Generator,
) -> Caption:
    """The stage, then each event with timing, duration, channel and linked consequences.

    Parameters
    ----------
    stage : str or None
        YASA stage of the epoch (``None`` or ``"UNS"`` when unscored).
    events : sequence of EpochEvent
        From :func:`~sleeplm_core.captions.events.epoch_events`.
    counts : dict
        Counted events (spindles, K-complexes, lights off/on) starting in the epoch.
    anns : sequence of annotations
        The recording's annotations (consequences are looked up by index).
    spo2 : ndarray or None
        The night's SpO2 (canonical slot) for desaturations without depth extras.
    sf : float
        Sampling rate of ``spo2``.
    rng : numpy.random.Generator
        Paraphrase and rounding draws.

    Returns
    -------
    Caption
        The ``stage_event`` caption.
    """
    book = TemplateBook("stage_event", rng)
    parts: list[Rendered] = []
    facts: list[Fact] = []
    if stage in STAGE_WORDS:
        parts.append(book.render("stage", None, {"stage": STAGE_WORDS[stage]}))
    else:
        parts.append(book.render("unscored"))

    def drop_fact(name: str, j: int) -> Fact | None:
        got = desaturation_drop(anns[j], spo2, sf)
        if got is None:
            return None
        value, how = got
        source = f"annotation:{j}:drop" if how == "extras" else f"signal:SPO2:drop:{j}"
        return Fact(name, value, "%", source)

    for k, ev in enumerate(events):
        dur = Fact(f"ev{k}_duration_s", ev.duration_s, "s", f"annotation:{ev.index}:duration")
        facts.append(dur)
        if ev.offset_s >= 0:
            off = Fact(f"ev{k}_offset_s", ev.offset_s, "s", f"annotation:{ev.index}:offset")
            key = "at_start" if ev.offset_s < 0.5 else "starts"
            timing = book.render(key, {"offset": off})
        else:
            off = Fact(f"ev{k}_before_s", -ev.offset_s, "s", f"annotation:{ev.index}:before")
            timing = book.render("continues", {"before": off})
        facts.append(off)
        channel = _channel_words(ev.channel)
        if ev.label == L.DESATURATION:
            drop = drop_fact(f"ev{k}_drop_pct", ev.index)
            if drop is None:
                parts.append(
                    book.render("desaturation_plain", None, {"channel": channel, "timing": timing})
                )
            else:
                facts.append(drop)
                parts.append(
                    book.render(
                        "desaturation", {"drop": drop}, {"channel": channel, "timing": timing}
                    )
                )
            continue
        follow: list[Rendered] = []
        if ev.links.desaturation is not None:
            drop = drop_fact(f"ev{k}_desat_pct", ev.links.desaturation)
            if drop is None:
                follow.append(book.render("desat_plain"))
            else:
                facts.append(drop)
                follow.append(book.render("desat_depth", {"drop": drop}))
        if ev.links.arousal is not None:
            follow.append(Rendered("an arousal"))
        consequences = Rendered(", followed by ") + join(follow) if follow else Rendered("")
        parts.append(
            book.render(
                "event",
                {"duration": dur},
                {
                    "event": _event_name(ev.label),
                    "channel": channel,
                    "timing": timing,
                    "consequences": consequences,
                },
            )
        )
    for label, n in sorted(counts.items()):
        if label in (L.LIGHTS_OFF, L.LIGHTS_ON):
            parts.append(book.render("marker", None, {"what": label.lower()}))
            continue
        what = {L.SPINDLE: ("spindle", "spindles"), L.K_COMPLEX: ("K-complex", "K-complexes")}[
            label
        ]
        fact = Fact(f"count_{label}", float(n), "count", f"count:{label}")
        facts.append(fact)
        parts.append(book.render("counted", {"count": fact}, {"what": plural(n, *what)}))
    return caption_from("epoch", "stage_event", parts, facts)
