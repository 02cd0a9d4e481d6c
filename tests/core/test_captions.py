"""Captions: every number stated must come from the fact, feature or annotation behind it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from sleeplm_core.captions.events import link_consequences
from sleeplm_core.captions.facts import Caption, Fact
from sleeplm_core.captions.features import SLOT, detect_r_peaks, heart_features, night_features
from sleeplm_core.captions.levels import COUNT_GROUPS, night_caption, sleep_cycles
from sleeplm_core.captions.pipeline import NightCaptions, caption_night, epoch_mask
from sleeplm_core.captions.render import TEMPLATE_DIR, format_number
from sleeplm_core.io import labels as L
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.hypnogram import Hypnogram
from sleeplm_core.io.indices import desaturation_drop, event_indices, plm_series
from sleeplm_core.stages import EPOCH_S

SF = 64.0
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
STAGES = ["W"] * 4 + ["N1"] * 2 + ["N2"] * 10 + ["N3"] * 8 + ["N2"] * 4 + ["REM"] * 8 + ["W"] * 2


def _signals(n_epochs: int, seed: int = 0) -> np.ndarray:
    """A canonical night of plausible signals (uV, %, codes) with a desaturation at 8-9 min."""
    rng = np.random.default_rng(seed)
    n = int(n_epochs * EPOCH_S * SF)
    t = np.arange(n) / SF
    data = np.zeros((12, n), np.float32)
    eeg = rng.normal(0, 8, n) + 15 * np.sin(2 * np.pi * 10 * t)
    n3 = (t >= 16 * 30) & (t < 24 * 30)
    eeg[n3] += 70 * np.sin(2 * np.pi * 0.9 * t[n3])
    for c in (300.0, 330.0, 360.0):  # spindles in N2
        sel = (t >= c) & (t < c + 1.0)
        eeg[sel] += 40 * np.sin(2 * np.pi * 13 * t[sel])
    data[SLOT["C3_M2"]] = eeg
    data[SLOT["C4_M1"]] = eeg + rng.normal(0, 3, n)
    eog = rng.normal(0, 5, n)
    for c in np.arange(32 * 30 + 3, 40 * 30, 4.0):  # saccades in REM
        eog[(t >= c) & (t < c + 0.15)] += 120
    data[SLOT["EOG_L"]] = eog
    data[SLOT["EOG_R"]] = -eog
    ecg = np.zeros(n)
    beats = np.cumsum(np.full(int(n / SF) + 2, 60 / 62) + rng.normal(0, 0.02, int(n / SF) + 2))
    idx = (beats[beats < t[-1] - 1] * SF).astype(int)
    ecg[idx] = 800
    ecg[idx + 1] = 300
    data[SLOT["ECG"]] = ecg + rng.normal(0, 10, n)
    flow = np.sin(2 * np.pi * 0.25 * t)
    apnea = (t >= 480) & (t < 504)
    flow[apnea] *= 0.05
    data[SLOT["AIRFLOW"]] = flow
    data[SLOT["THX"]] = 0.8 * flow
    data[SLOT["ABD"]] = 0.6 * flow
    spo2 = np.full(n, 96.0)
    dip = (t >= 500) & (t < 530)
    spo2[dip] = 96 - 5 * np.sin(np.pi * (t[dip] - 500) / 30)
    data[SLOT["SPO2"]] = spo2
    chin = rng.normal(0, 6, n)
    chin[t >= 32 * 30] *= 0.2
    data[SLOT["EMG_CHIN"]] = chin
    leg = rng.normal(0, 2, n)
    for c in (600.0, 625.0, 650.0, 675.0):
        sel = (t >= c) & (t < c + 1.5)
        leg[sel] += rng.normal(0, 30, int(sel.sum()))
    data[SLOT["EMG_LEG"]] = leg
    data[SLOT["POSITION"]] = 1.0  # supine
    return data


def _annotations() -> list[Annotation]:
    anns = [Annotation(i * EPOCH_S, EPOCH_S, L.STAGE_LABEL[s]) for i, s in enumerate(STAGES)]
    anns += [
        Annotation(480.0, 24.0, L.OBSTRUCTIVE_APNEA, "Airflow"),
        Annotation(
            500.0, 30.0, L.DESATURATION, "SpO2", (("spo2_baseline", "96"), ("spo2_nadir", "91"))
        ),
        Annotation(505.0, 8.0, L.AROUSAL, "C3"),
        Annotation(540.0, 18.0, L.HYPOPNEA),
        Annotation(580.0, 15.0, L.OBSTRUCTIVE_APNEA),
        Annotation(300.0, 1.0, L.SPINDLE, "C3"),
        Annotation(330.0, 1.0, L.SPINDLE, "C3"),
    ]
    anns += [Annotation(c, 1.5, L.LIMB_MOVEMENT, "Leg L") for c in (600.0, 625.0, 650.0, 675.0)]
    return sorted(anns, key=lambda a: (a.onset_s, a.label))


@pytest.fixture(scope="module")
def night() -> tuple[NightCaptions, list[Annotation], dict[str, float], dict[str, float]]:
    data = _signals(len(STAGES))
    anns = _annotations()
    mask = epoch_mask(data, np.ones(12, bool))
    hyp = Hypnogram(STAGES)
    stats = hyp.sleep_statistics()
    indices = event_indices(anns, hyp)
    return (
        caption_night(data, mask, anns, STAGES, stats=stats, indices=indices, seed=3),
        anns,
        stats,
        indices,
    )


def _check_numbers(cap: Caption) -> None:
    """The numbers parsed out of the text are the stated ones, each within its rounding."""
    parsed = NUMBER.findall(cap.text)
    assert parsed == [s.text for s in cap.stated], cap.text
    for s in cap.stated:
        fact = cap.fact(s.fact)
        assert abs(float(s.text) - fact.value) <= s.step / 2 + 1e-9, (s, fact)


def _window(text: str) -> tuple[float, float]:
    lo, hi = (float(x) for x in text.split("-"))
    return lo, hi


def _source_value(
    fact: Fact,
    *,
    feats: dict[str, float],
    anns: list[Annotation],
    epoch: int | None,
    segment: int | None,
    stats: dict[str, float],
    indices: dict[str, float],
    spo2: np.ndarray,
) -> float:
    """Recompute a fact's value from its source, independently of the caption code."""
    kind, _, rest = fact.source.partition(":")
    start = (epoch or 0) * EPOCH_S
    cycles = sleep_cycles(STAGES)
    if kind == "feature":
        return abs(feats[rest])
    if kind == "annotation":
        i, _, what = rest.partition(":")
        a = anns[int(i)]
        return {
            "duration": a.duration_s,
            "offset": a.onset_s - start,
            "before": start - a.onset_s,
            "drop": desaturation_drop(a),
        }[what]
    if kind == "signal":  # signal:SPO2:drop:<annotation index>
        a = anns[int(rest.rsplit(":", 1)[1])]
        lo, mid = int((a.onset_s - 10) * SF), int(a.onset_s * SF)
        return float(spo2[lo:mid].max() - spo2[mid : int((a.offset_s + 5) * SF)].min())
    if kind == "count" and rest.count(":") == 1:
        window, group = rest.split(":")
        lo, hi = _window(window)
        return float(
            sum(1 for a in anns if lo <= a.onset_s < hi and a.label in COUNT_GROUPS[group])
        )
    if kind == "count":
        return float(sum(1 for a in anns if a.label == rest and start <= a.onset_s < start + 30))
    if kind == "stages":
        window, stage = rest.split(":")
        lo, hi = (int(x // EPOCH_S) for x in _window(window))
        return STAGES[lo:hi].count(stage) * EPOCH_S / 60
    if kind == "transitions":
        lo, hi = (int(x // EPOCH_S) for x in _window(rest))
        seq = STAGES[lo:hi]
        return float(sum(1 for x, y in zip(seq[:-1], seq[1:], strict=True) if x != y))
    if kind == "interval":
        lo, hi = _window(rest)
        on = [a.onset_s for a in anns if lo <= a.onset_s < hi and a.label in L.RESPIRATORY_EVENTS]
        return float(np.mean(np.diff(on)))
    if kind in ("plm", "plm_interval"):
        lo, hi = _window(rest)
        onsets = [a.onset_s for a in plm_series(anns) if lo <= a.onset_s < hi]
        return float(len(onsets)) if kind == "plm" else float(np.mean(np.diff(onsets)))
    if fact.source == "hypnogram:cycles":
        return float(len(cycles))
    if fact.source == "hypnogram:cycle":
        assert segment is not None
        middle = segment * 10 + min(10, len(STAGES) - segment * 10) // 2
        return float(next(k + 1 for k, (a, b) in enumerate(cycles) if a <= middle < b))
    if fact.source == "derived:segment_minutes":
        assert segment is not None
        return min(10, len(STAGES) - segment * 10) * EPOCH_S / 60
    if fact.source == "derived:hr_reference_minutes":
        return 5.0
    if kind == "stats":
        return stats[rest]
    if kind == "indices":
        return indices[rest]
    raise AssertionError(f"unknown fact source {fact.source}")


def test_every_stated_number_matches_its_source(night) -> None:
    out, anns, stats, indices = night
    spo2 = _signals(len(STAGES))[SLOT["SPO2"]].astype(np.float64)
    seen: set[str] = set()
    where = [(cap, e, None) for e, caps in enumerate(out.epochs) for cap in caps.values()]
    where += [(cap, None, k) for k, cap in enumerate(out.segments)] + [(out.night, None, None)]
    for cap, epoch, segment in where:
        assert cap is not None
        _check_numbers(cap)
        feats = out.features[epoch] if epoch is not None else {}
        for fact in cap.facts:
            want = _source_value(
                fact,
                feats=feats,
                anns=anns,
                epoch=epoch,
                segment=segment,
                stats=stats,
                indices=indices,
                spo2=spo2,
            )
            assert fact.value == pytest.approx(want), (fact, cap.text)
            seen.add(fact.source.split(":")[0])
    assert {
        "feature",
        "annotation",
        "count",
        "stages",
        "transitions",
        "interval",
        "plm",
        "hypnogram",
        "derived",
        "stats",
        "indices",
    } <= seen


def test_desaturation_depth_measured_on_the_signal() -> None:
    data = _signals(len(STAGES))
    anns = [
        a if a.label != L.DESATURATION else Annotation(a.onset_s, a.duration_s, a.label)
        for a in _annotations()
    ]
    out = caption_night(data, epoch_mask(data, np.ones(12, bool)), anns, STAGES, seed=0)
    cap = out.epochs[16]["stage_event"]
    fact = cap.fact("ev0_desat_pct")
    assert fact.source.startswith("signal:SPO2:drop:")
    _check_numbers(cap)
    spo2 = data[SLOT["SPO2"]].astype(np.float64)
    want = _source_value(
        fact, feats={}, anns=anns, epoch=16, segment=None, stats={}, indices={}, spo2=spo2
    )
    assert fact.value == pytest.approx(want) and 4.5 < fact.value <= 5.0


def test_epoch_captions_cover_modalities_and_events(night) -> None:
    out, _, _, _ = night
    assert set(out.epochs[20]) == {"brain", "heart", "respiratory", "somatic", "stage_event"}
    apnea = out.epochs[16]["stage_event"]
    assert "obstructive apnea" in apnea.text.lower()
    assert "desaturation" in apnea.text and "an arousal" in apnea.text
    assert apnea.fact("ev0_duration_s").value == 24.0
    assert apnea.fact("ev0_desat_pct").value == 5.0
    # the linked desaturation and arousal are not repeated as separate events
    assert "oxygen desaturation of" not in apnea.text
    assert "N3" in out.epochs[18]["stage_event"].text
    assert out.features[18]["slow_wave_pct"] > 20
    assert out.features[10]["spindles"] >= 1
    assert out.features[34]["rapid_eye_movements"] >= 3
    assert 58 < out.features[20]["hr_bpm"] < 66
    assert out.features[16]["flow_amp_pct"] < 50
    assert "supine" in out.epochs[3]["somatic"].text
    assert out.features[34]["emg_rel_pct"] < 50 and "low" in out.epochs[34]["somatic"].text.lower()


def test_segment_and_night_captions(night) -> None:
    out, _, stats, _ = night
    assert len(out.segments) == 4
    seg = out.segments[1]  # epochs 10-19: N2 then N3, three respiratory events
    assert "N2 to N3" in seg.text
    assert seg.fact("n_respiratory").value == 3
    assert seg.fact("cluster_n").value == 3
    assert seg.fact("n_transitions").value == 1
    assert out.segments[2].fact("plm_n").value == 4  # leg movements at 600-675 s
    assert out.night is not None
    assert out.night.fact("tst_min").value == stats["TST"]
    assert "mild sleep apnea" in out.night.text  # 3 events in 16 min of sleep: 11.2/h
    assert out.night.fact("n_cycles").value == 1


def test_missing_channels_get_no_caption() -> None:
    data = _signals(4)
    mask = np.ones(12, bool)
    mask[[SLOT["ECG"], SLOT["EMG_CHIN"], SLOT["EMG_LEG"], SLOT["POSITION"]]] = False
    data[~mask] = 0
    out = caption_night(data, epoch_mask(data, mask), [], None, seed=0)
    assert set(out.epochs[0]) == {"brain", "respiratory"}
    assert out.segments == [] and out.night is None
    assert not any("hr_bpm" in f for f in out.features)


def test_seed_varies_text_not_facts() -> None:
    data = _signals(6)
    mask = epoch_mask(data, np.ones(12, bool))
    a = caption_night(data, mask, _annotations(), STAGES[:6], seed=1)
    b = caption_night(data, mask, _annotations(), STAGES[:6], seed=1)
    c = caption_night(data, mask, _annotations(), STAGES[:6], seed=2)
    texts = lambda o: [cap.text for caps in o.epochs for cap in caps.values()]  # noqa: E731
    facts = lambda o: [cap.facts for caps in o.epochs for cap in caps.values()]  # noqa: E731
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)
    assert facts(a) == facts(c)


def test_format_number_rounds_to_step() -> None:
    assert format_number(23.6, 5) == "25"
    assert format_number(7.26, 0.1) == "7.3"
    assert format_number(2.5, 0.5) == "2.5"
    assert format_number(3.1, 0.5) == "3"
    assert format_number(-0.01, 1) == "0"


def test_r_peak_detector_recovers_heart_rate() -> None:
    rng = np.random.default_rng(1)
    n = int(300 * SF)
    ecg = rng.normal(0, 20, n)
    beats = np.arange(0.5, 299, 60 / 75)
    for b in beats:  # inverted QRS: polarity must not matter
        i = int(b * SF)
        ecg[i - 1 : i + 2] -= (300, 1000, 300)
    ecg[5000:5010] += 4000  # one artefact
    peaks = detect_r_peaks(ecg, SF)
    assert abs(peaks.size - beats.size) <= 2
    hr = heart_features(peaks, SF, 10, int(EPOCH_S * SF))
    assert all(abs(h["hr_bpm"] - 75) < 1.5 for h in hr[1:] if "hr_bpm" in h)


def test_sleep_cycles() -> None:
    stages = ["W"] * 5 + ["N2"] * 40 + ["REM"] * 10 + ["N2"] * 10 + ["REM"] * 5 + ["N3"] * 40
    assert sleep_cycles(stages) == [(5, 70), (70, 110)]
    assert sleep_cycles(["W"] * 10) == []


def test_consequences_are_linked_once() -> None:
    anns = _annotations()
    links = link_consequences(anns)
    apnea = next(i for i, a in enumerate(anns) if a.label == L.OBSTRUCTIVE_APNEA)
    assert anns[links[apnea].desaturation].label == L.DESATURATION  # type: ignore[index]
    assert anns[links[apnea].arousal].label == L.AROUSAL  # type: ignore[index]
    assert sum(1 for lk in links.values() if lk.desaturation is not None) == 1


def test_night_caption_needs_statistics() -> None:
    rng = np.random.default_rng(0)
    assert night_caption(None, None, None, rng) is None
    features = night_features(np.zeros((12, 1920), np.float32), np.zeros(12, bool))
    assert features == [{}]


def test_templates_hold_paraphrases_and_no_literal_numbers() -> None:
    for path in TEMPLATE_DIR.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, options in data["sentences"].items():
            assert options, (path.name, key)
            for text in options:
                literal = re.sub(r"\{[^}]*\}", "", text)
                assert not NUMBER.search(literal), (path.name, key, text)
        multi = [k for k, v in data["sentences"].items() if len(v) >= 2]
        assert len(multi) >= len(data["sentences"]) - 1, path.name


def test_sites_are_named_after_their_source_channels() -> None:
    data = _signals(2)
    mask = epoch_mask(data, np.ones(12, bool))
    sources = [None] * 12
    sources[SLOT["C3_M2"]], sources[SLOT["C4_M1"]] = "C3-A1", "EEG 2"
    out = caption_night(data, mask, [], None, sources=sources)
    text = out.epochs[0]["brain"].text
    assert "C3-A1" in text and "C4-M1" in text and "EEG 2" not in text


def test_uncoded_position_signal_states_no_position() -> None:
    data = _signals(2)
    data[SLOT["POSITION"]] = np.linspace(0.05, 0.5, data.shape[1])  # a raw sensor, not codes
    out = caption_night(data, epoch_mask(data, np.ones(12, bool)), [], None)
    assert "position" not in out.features[0]
    assert "supine" not in out.epochs[0]["somatic"].text
