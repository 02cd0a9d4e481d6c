"""The ``synthetic`` evaluation suite: held-out synthetic nights with exact ground truth.

Usage::

    sleeplm eval --suite synthetic --checkpoint runs/tiny [--nights 6] [--json]
    python -m sleeplm_core.cli.main eval --suite synthetic --json

Held-out nights
---------------
Training uses small seeds (``SyntheticEpochs`` and ``--synth-shards`` count from 0); these
nights use seeds ``10_000 + i`` and cycle through :data:`VARIANTS`, one night per generator
setting variant: the default 256 Hz recording, 128 Hz and 100 Hz recordings, a noisy one
(8 µV RMS), one with EEG amplitudes scaled by 1.6 and one with four channels missing. Every
night gets an AHI of 25 /h and a PLM index of 25 /h so that each event type occurs. Nights
(EDF + NSRR XML) and their embedding sidecars are kept in ``--data`` (default
the user cache folder's ``synthetic-eval``), so a rerun only scores; ``--no-cache`` regenerates.
The ground truth is read back from the written files, exactly as a user's night would be.

Metrics (rows of ``metric | value | n``)
----------------------------------------
- **Zero-shot staging** (:meth:`Predictor.stage`): accuracy, macro-F1 and Cohen's κ against the
  generator's hypnogram, pooled over the 30-s epochs of all nights.
- **Few-shot staging**, K = 1, 5, 20 labelled epochs per stage: nearest cosine prototype (mean
  of the K support embeddings per stage) on the frozen window embeddings. Support is drawn from
  the even-numbered nights, queries are all epochs of the odd-numbered ones (with one night:
  its first and second halves). A stage with fewer than K support epochs uses all it has.
  Mean over :data:`FEWSHOT_REPEATS` random support draws.
- **Retrieval** between epoch embeddings and their reference captions (from
  :func:`~sleeplm_core.captions.pipeline.caption_night`, the training captioner) for the
  ``stage_event`` and ``brain`` modalities, pooled over nights: signal→text ranks the distinct
  caption texts for each epoch; text→signal ranks the epochs for each distinct text, and every
  epoch with that exact text is a positive (multi-positive). R@1, R@5, R@10. At most
  :data:`RETRIEVAL_MAX_EPOCHS` epochs (a seeded sample) form the gallery, so ``n`` matters.
- **Captioning**: ``stage_event`` captions decoded (greedy, :data:`CAPTION_BEAM`) for up to
  ``caption_epochs`` epochs per night (half of them epochs with events, when there are
  enough), against the reference caption: corpus BLEU-4, mean ROUGE-L and **factual
  accuracy**. The facts of a caption are the sleep stage it names (``wake``, ``N1``, ``N2``,
  ``N3``, ``REM``, or ``unscored``) and each event type it names (apnea, hypopnea,
  desaturation, arousal, RERA, limb movement, spindle, K-complex, artifact), parsed from the
  text by :func:`caption_facts`. Factual accuracy of one caption is the fraction of the
  reference caption's facts that the generated caption states
  (:func:`~sleeplm_core.eval.metrics.factual_accuracy`); events the generated text adds
  are reported separately as ``hallucinated events per caption``.
- **Event localization**: :meth:`Predictor.search` over the embedded night (every segment
  over the calibrated threshold) with :data:`EVENT_QUERIES`; segments are matched one-to-one
  with the annotated events at IoU >= 0.3 (:func:`~sleeplm_core.eval.metrics.match_events`),
  counts pooled over nights, F1 = 2 TP / (n_true + n_pred).
- **Unseen phrasings**: the same F1 with :data:`PARAPHRASE_QUERIES`, wordings that appear in
  no caption template.

Cost on 2 shared CPU cores with the default 6 one-hour nights and ``sleeplm-tiny``: about
8 minutes the first time (generating and embedding the nights), 3 for a rerun from the caches;
caption decoding and MiniLM text encoding take most of a rerun.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from sleeplm_core.errors import SleepLMError
from sleeplm_core.eval import grounding_eval, language, metrics
from sleeplm_core.eval.base import IOU_THRESHOLD, Row, SuiteOptions, SuiteResult
from sleeplm_core.io import labels as L
from sleeplm_core.io.atomic import atomic_write_bytes
from sleeplm_core.stages import EPOCH_S, SCORED_STAGES

SUITE: Final = "synthetic"
COLUMNS: Final[tuple[str, ...]] = ("value",)
SEED0: Final = 10_000
DEFAULT_NIGHTS: Final = 6
DEFAULT_HOURS: Final = 1.0
STRIDE_S: Final = 15.0
AHI: Final = 25.0
PLM_INDEX: Final = 25.0
FEWSHOT_K: Final[tuple[int, ...]] = (1, 5, 20)
FEWSHOT_REPEATS: Final = 5
CAPTION_EPOCHS: Final = 8
CAPTION_BEAM: Final = 1
"""Greedy decoding keeps the suite within minutes on a CPU (the ``caption`` command uses 3)."""
RETRIEVAL_MODALITIES: Final[tuple[str, ...]] = ("stage_event", "brain")
RETRIEVAL_K: Final[tuple[int, ...]] = (1, 5, 10)
RETRIEVAL_MAX_EPOCHS: Final = 360
"""Gallery size cap per modality (a seeded sample of epochs): MiniLM encodes each text once."""

VARIANTS: Final[tuple[tuple[str, dict[str, Any]], ...]] = (
    ("base-256Hz", {"sf": 256}),
    ("rate-128Hz", {"sf": 128}),
    ("rate-100Hz", {"sf": 100}),
    ("noisy-8uV", {"sf": 256, "noise_uv": 8.0}),
    ("amplitude-x1.6", {"sf": 256, "amplitude_scale": 1.6}),
    ("missing-4ch", {"sf": 256, "missing": ["ECG", "E2-M2", "Chin1-Chin2", "Thor"]}),
)
"""One held-out night per generator setting variant (cycled for more nights)."""

EVENT_QUERIES: Final[dict[str, str]] = {
    "apnea": "obstructive apnea",
    "hypopnea": "hypopnea",
    "desaturation": "oxygen desaturation",
    "arousal": "arousal",
    "spindle": "sleep spindle",
    "limb movement": "limb movement",
}
PARAPHRASE_QUERIES: Final[dict[str, str]] = {
    "apnea": "breathing stops while asleep",
    "arousal": "the person wakes up briefly",
    "spindle": "a burst of fast brain waves during light sleep",
    "limb movement": "the legs jerk",
}
EVENT_LABELS: Final[dict[str, tuple[str, ...]]] = {
    "apnea": L.APNEAS,
    "hypopnea": (L.HYPOPNEA,),
    "desaturation": (L.DESATURATION,),
    "arousal": (L.AROUSAL,),
    "spindle": (L.SPINDLE,),
    "limb movement": (L.LIMB_MOVEMENT,),
}
"""Ground-truth annotation labels of each event type (all apnea kinds count as apnea)."""

_STAGE_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    ("REM", r"\brem\b"),
    ("W", r"\bwake\b"),
    ("N1", r"\bn1\b"),
    ("N2", r"\bn2\b"),
    ("N3", r"\bn3\b"),
    ("UNS", r"\bunscored\b|\bno sleep stage\b"),
)
_EVENT_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    ("apnea", r"\bapnea"),
    ("hypopnea", r"\bhypopnea"),
    ("desaturation", r"desaturat|drop in spo2"),
    ("arousal", r"\barousal"),
    ("rera", r"\brera\b"),
    ("limb movement", r"\blimb movement|\bleg movement"),
    ("spindle", r"\bspindle"),
    ("k-complex", r"\bk\s*-\s*complex"),
    ("artifact", r"\bartifact|\bartefact"),
)


def caption_facts(text: str) -> list[tuple[str, str]]:
    """Facts a stage_event caption states: ``("stage", s)`` and one ``("event", e)`` per type.

    The stage is the first stage phrase in the text (``REM sleep`` is ``REM``; the decoder
    writes lower case, so matching ignores case).
    """
    low = text.lower()
    facts: list[tuple[str, str]] = []
    hits = [(m.start(), s) for s, p in _STAGE_PATTERNS for m in [re.search(p, low)] if m]
    if hits:
        facts.append(("stage", min(hits)[1]))
    facts += [("event", e) for e, p in _EVENT_PATTERNS if re.search(p, low)]
    return facts


# ---------------------------------------------------------------------------------------------
# Nights
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalNight:
    """One held-out night on disk."""

    index: int
    variant: str
    seed: int
    settings: dict[str, Any]
    edf: Path
    xml: Path


def default_folder() -> Path:
    """Where generated nights are kept between runs (the user cache folder)."""
    from sleeplm_core.resources import user_cache_dir

    return user_cache_dir("synthetic-eval")


def prepare_nights(n: int, hours: float, folder: Path, reuse: bool = True) -> list[EvalNight]:
    """Generate (or reuse) ``n`` held-out nights of ``hours`` in ``folder``."""
    from sleeplm_core.synth import generate_night, write_night

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        variant, settings = VARIANTS[i % len(VARIANTS)]
        seed = SEED0 + i
        stem = f"{variant}-seed{seed}-{hours:g}h"
        edf, xml = folder / f"{stem}.edf", folder / f"{stem}.xml"
        manifest = folder / f"{stem}.json"
        want = {"seed": seed, "hours": hours, "ahi": AHI, "plm_index": PLM_INDEX, **settings}
        fresh = (
            reuse
            and edf.is_file()
            and xml.is_file()
            and manifest.is_file()
            and json.loads(manifest.read_text(encoding="utf-8")) == want
        )
        if not fresh:
            night = generate_night(hours=hours, seed=seed, ahi=AHI, plm_index=PLM_INDEX, **settings)
            write_night(night, edf)
            atomic_write_bytes(manifest, json.dumps(want).encode("utf-8"))
        out.append(EvalNight(i, variant, seed, settings, edf, xml))
    return out


@dataclass
class NightData:
    """What the suite needs from one embedded night (epoch-level, on the 30-s grid)."""

    night: EvalNight
    truth: list[str]  # per epoch
    predicted: list[str]  # zero-shot, per epoch (every channel, the viewer's pass)
    epoch_emb: np.ndarray  # (n_epochs, E)
    captions: dict[str, list[str | None]]  # modality -> per epoch reference text
    windows: np.ndarray  # (n_epochs, 12, 1920) canonical, for decoding
    mask: np.ndarray  # (12,)
    events: dict[str, list[tuple[float, float]]]  # event type -> truth (onset_s, duration_s)
    found: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # query -> pred
    annotations: list[tuple[str, float, float]] = field(default_factory=list)  # label, on, dur
    stage_conf: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))  # raw, calibrated
    scored: dict[str, list[tuple[float, float, float, float]]] = field(default_factory=dict)
    predicted_montage: list[str] = field(default_factory=list)  # staging montage (sleeplm stage)


def load_night(predictor: Any, night: EvalNight, use_cache: bool) -> NightData:
    """Open, embed (cached), stage and caption one night; run every search query."""
    from sleeplm_core.captions.pipeline import caption_night, epoch_mask
    from sleeplm_core.inference import WINDOW_N
    from sleeplm_core.io.recording import Recording

    with Recording.open(night.edf, annotations=night.xml) as rec:
        emb = predictor.embed_recording(rec, stride_s=STRIDE_S, use_cache=use_cache)
        staged = predictor.stage(emb)
        n_ep = len(staged.epochs)
        montage: list[str] = []
        if hasattr(predictor, "embed_for_staging"):  # what `sleeplm stage` computes
            montage = predictor.stage(predictor.embed_for_staging(rec, use_cache=False)).stages()
            montage = (montage + ["UNS"] * n_ep)[:n_ep]
        hyp = rec.hypnogram
        truth = [str(s) for s in hyp.stages[:n_ep]] if hyp is not None else ["UNS"] * n_ep
        truth += ["UNS"] * (n_ep - len(truth))
        canon = rec.canonical(0.0, n_ep * EPOCH_S)
        data = canon.data[:, : n_ep * WINDOW_N]
        anns = list(rec.annotations)
        refs = caption_night(
            data,
            epoch_mask(data, canon.mask),
            [a for a in anns if a.label not in L.STAGE_LABEL.values()],
            truth,
            seed=night.seed,
            sources=canon.sources,
        )
        events = {
            kind: [(a.onset_s, a.duration_s) for a in rec.annotations.with_label(*labels)]
            for kind, labels in EVENT_LABELS.items()
        }
        described = [(a.label, a.onset_s, a.duration_s) for a in anns
                     if a.label not in L.STAGE_LABEL.values()]  # fmt: skip
    on_grid = np.flatnonzero(np.isclose(np.mod(emb.onsets_s, EPOCH_S), 0.0))
    windows = data.reshape(data.shape[0], n_ep, WINDOW_N).transpose(1, 0, 2)
    nd = NightData(
        night=night,
        truth=truth,
        predicted=staged.stages(),
        predicted_montage=montage,
        epoch_emb=emb.embeddings[on_grid],
        captions={
            m: [ep[m].text if m in ep else None for ep in refs.epochs[:n_ep]]
            for m in RETRIEVAL_MODALITIES
        },
        windows=windows,
        mask=canon.mask,
        events=events,
        annotations=described,
        stage_conf=(
            np.array([max(e.proba.values()) for e in staged.epochs]),
            np.array([e.confidence for e in staged.epochs]),
        ),
    )
    for query in dict.fromkeys(
        [*EVENT_QUERIES.values(), *PARAPHRASE_QUERIES.values(), *language.wording_queries()]
    ):
        res = predictor.search(emb, query, top=1_000_000)
        nd.found[query] = [(s.onset_s, s.duration_s) for s in res.segments]
    nd.scored = language.raw_and_calibrated(predictor, emb, EVENT_QUERIES.values())
    return nd


# ---------------------------------------------------------------------------------------------
# Metric blocks
# ---------------------------------------------------------------------------------------------


def _scored(stages: Sequence[str]) -> np.ndarray:
    return np.array([s in SCORED_STAGES for s in stages], bool)


def fewshot_scores(
    support: tuple[np.ndarray, list[str]],
    query: tuple[np.ndarray, list[str]],
    k: int,
    repeats: int = FEWSHOT_REPEATS,
    seed: int = 0,
) -> dict[str, float]:
    """Nearest-prototype staging with K support epochs per stage; means over ``repeats``."""
    s_emb, s_lab = support
    q_emb, q_lab = query
    s_arr, q_arr = np.asarray(s_lab), np.asarray(q_lab)
    rng = np.random.default_rng(seed)
    acc, f1, kappa = [], [], []
    for _ in range(repeats):
        protos, names = [], []
        for stage in SCORED_STAGES:
            idx = np.flatnonzero(s_arr == stage)
            if idx.size == 0:
                continue
            pick = rng.choice(idx, size=min(k, idx.size), replace=False)
            p = s_emb[pick].mean(axis=0)
            protos.append(p / max(float(np.linalg.norm(p)), 1e-12))
            names.append(stage)
        if not protos or not len(q_arr):
            return {"accuracy": math.nan, "macro_f1": math.nan, "kappa": math.nan}
        pred = [names[i] for i in np.argmax(q_emb @ np.stack(protos).T, axis=1)]
        sc = metrics.staging_scores(list(q_arr), pred)
        acc.append(sc.accuracy)
        f1.append(sc.macro_f1)
        kappa.append(sc.kappa)
    return {
        "accuracy": float(np.mean(acc)),
        "macro_f1": float(np.mean(f1)),
        "kappa": float(np.mean(kappa)),
    }


def retrieval_scores(predictor: Any, emb: np.ndarray, texts: Sequence[str]) -> dict[str, float]:
    """R@K both ways between epoch embeddings (n, E) and their caption texts (n,)."""
    distinct = list(dict.fromkeys(texts))
    where = {t: i for i, t in enumerate(distinct)}
    text_emb = predictor.text_embeddings(distinct)
    sim = emb @ text_emb.T  # (n_epochs, n_texts)
    own = [where[t] for t in texts]
    holders: list[list[int]] = [[] for _ in distinct]
    for e, t in enumerate(own):
        holders[t].append(e)
    out: dict[str, float] = {}
    for k in RETRIEVAL_K:
        out[f"s2t_R@{k}"] = metrics.recall_at_k(sim, own, k)
        out[f"t2s_R@{k}"] = metrics.recall_at_k(sim.T, holders, k)
    out["n_epochs"] = len(texts)
    out["n_texts"] = len(distinct)
    return out


def _caption_picks(nd: NightData, n: int, rng: np.random.Generator) -> list[int]:
    texts = nd.captions["stage_event"]
    have = [i for i, t in enumerate(texts) if t]
    if len(have) <= n:
        return have
    with_events = [i for i in have if any(f[0] == "event" for f in caption_facts(texts[i] or ""))]
    first = list(rng.choice(with_events, size=min(n // 2, len(with_events)), replace=False))
    rest = [i for i in have if i not in set(first)]
    second = list(rng.choice(rest, size=n - len(first), replace=False))
    return sorted(int(i) for i in first + second)


def caption_scores(
    predictor: Any, nights: Sequence[NightData], per_night: int, beam: int = CAPTION_BEAM
) -> dict[str, Any]:
    """BLEU-4, ROUGE-L, factual accuracy of decoded stage_event captions vs the references."""
    refs: list[str] = []
    hyps: list[str] = []
    for nd in nights:
        picks = _caption_picks(nd, per_night, np.random.default_rng(nd.night.seed))
        if not picks:
            continue
        hyps += predictor.generate(nd.windows[picks], nd.mask, "stage_event", beam=beam)
        refs += [nd.captions["stage_event"][i] or "" for i in picks]
    factual, extra, stage_ok = [], [], []
    for r, h in zip(refs, hyps, strict=True):
        rf, hf = caption_facts(r), caption_facts(h)
        factual.append(metrics.factual_accuracy(rf, hf))
        extra.append(len({e for e in hf if e[0] == "event"} - set(rf)))
        rs = [v for k, v in rf if k == "stage"]
        stage_ok.append(float(bool(rs) and ("stage", rs[0]) in hf))
    finite = [f for f in factual if not math.isnan(f)]
    return {
        "bleu4": metrics.bleu4(refs, hyps) if hyps else math.nan,
        "rouge_l": metrics.rouge_l(refs, hyps) if hyps else math.nan,
        "factual_accuracy": float(np.mean(finite)) if finite else math.nan,
        "stage_named_correctly": float(np.mean(stage_ok)) if stage_ok else math.nan,
        "hallucinated_events_per_caption": float(np.mean(extra)) if extra else math.nan,
        "n": len(hyps),
        "examples": [
            {"reference": r, "generated": h} for r, h in list(zip(refs, hyps, strict=True))[:5]
        ],
    }


def localization_scores(nights: Sequence[NightData], queries: dict[str, str]) -> dict[str, Any]:
    """Pooled event F1 at IoU >= 0.3 for each (event type, query)."""
    out: dict[str, Any] = {}
    for kind, query in queries.items():
        tp = n_true = n_pred = 0
        for nd in nights:
            m = metrics.match_events(nd.events[kind], nd.found[query], iou_threshold=IOU_THRESHOLD)
            tp, n_true, n_pred = tp + m.tp, n_true + m.n_true, n_pred + m.n_pred
        # no true and no predicted event anywhere: nothing was measured (NaN, not a perfect 1)
        f1 = metrics.EventMatch(tp, n_true, n_pred).f1 if n_true + n_pred else math.nan
        out[kind] = {"query": query, "f1": f1, "tp": tp, "n_true": n_true, "n_pred": n_pred}
    return out


# ---------------------------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------------------------


def _predictor(options: SuiteOptions) -> Any:
    from sleeplm_core.eval.base import load_model

    model = load_model(options.checkpoint)
    if not model.available:
        raise SleepLMError(
            options.checkpoint,
            f"the synthetic suite needs the SleepLM model, which is not available ({model.reason})",
        )
    predictor = model.stager or model.localizer
    for name in ("embed_recording", "stage", "search", "generate", "text_embeddings"):
        if not hasattr(predictor, name):
            raise SleepLMError(None, f"the synthetic suite needs Predictor.{name}")
    return predictor


def run_synthetic(options: SuiteOptions) -> SuiteResult:
    """Run the suite (see the module docstring); raises SleepLMError without a model."""
    predictor = _predictor(options)
    n_nights = options.nights or DEFAULT_NIGHTS
    hours = options.hours or DEFAULT_HOURS
    if n_nights < 1:
        raise SleepLMError(None, f"--nights must be at least 1, got {n_nights}")
    folder = options.data_root or default_folder()
    evals = prepare_nights(n_nights, hours, Path(folder), reuse=options.use_cache)
    nights = []
    for i, ev in enumerate(evals):
        options.step(i, len(evals))
        nights.append(load_night(predictor, ev, options.use_cache))
    options.step(len(evals), len(evals))
    rows: list[Row] = []

    def row(metric: str, value: float, n: int) -> None:
        rows.append(Row(SUITE, metric, {"value": float(value)}, n))

    # zero-shot staging, pooled
    truth = [s for nd in nights for s in nd.truth]
    pred = [s for nd in nights for s in nd.predicted]
    zs = metrics.staging_scores(truth, pred)
    row("zero-shot staging accuracy", zs.accuracy, zs.n)
    row("zero-shot staging macro-F1", zs.macro_f1, zs.n)
    row("zero-shot staging Cohen's kappa", zs.kappa, zs.n)
    if all(nd.predicted_montage for nd in nights):
        zm = metrics.staging_scores(truth, [s for nd in nights for s in nd.predicted_montage])
        row("zero-shot staging accuracy, staging montage (sleeplm stage)", zm.accuracy, zm.n)
        row("zero-shot staging Cohen's kappa, staging montage (sleeplm stage)", zm.kappa, zm.n)

    # few-shot staging on frozen embeddings
    def pool(sel: Sequence[NightData], part: slice | None = None) -> tuple[np.ndarray, list[str]]:
        embs, labs = [], []
        for nd in sel:
            e, t = nd.epoch_emb, nd.truth
            if part is not None:
                e, t = e[part], t[part]
            keep = _scored(t)
            embs.append(e[keep])
            labs += [s for s, k in zip(t, keep, strict=True) if k]
        return np.concatenate(embs), labs

    if len(nights) > 1:
        support, query = pool(nights[0::2]), pool(nights[1::2])
    else:
        half = len(nights[0].truth) // 2
        support, query = pool(nights, slice(0, half)), pool(nights, slice(half, None))
    fewshot = {}
    for k in FEWSHOT_K:
        fs = fewshot_scores(support, query, k)
        fewshot[f"K={k}"] = fs
        row(f"few-shot staging K={k} accuracy (prototype)", fs["accuracy"], len(query[1]))
        row(f"few-shot staging K={k} macro-F1 (prototype)", fs["macro_f1"], len(query[1]))

    # retrieval
    retrieval = {}
    for modality in RETRIEVAL_MODALITIES:
        embs, texts = [], []
        for nd in nights:
            have = [i for i, t in enumerate(nd.captions[modality]) if t]
            embs.append(nd.epoch_emb[have])
            texts += [nd.captions[modality][i] or "" for i in have]
        if not texts:
            continue
        gallery = np.concatenate(embs)
        if len(texts) > RETRIEVAL_MAX_EPOCHS:
            keep = np.sort(
                np.random.default_rng(SEED0).choice(len(texts), RETRIEVAL_MAX_EPOCHS, replace=False)
            )
            gallery, texts = gallery[keep], [texts[i] for i in keep]
        r = retrieval_scores(predictor, gallery, texts)
        retrieval[modality] = r
        for way, name in (("s2t", "signal->text"), ("t2s", "text->signal")):
            n = r["n_epochs"] if way == "s2t" else r["n_texts"]
            for k in RETRIEVAL_K:
                row(f"retrieval {modality} {name} R@{k}", r[f"{way}_R@{k}"], int(n))

    # captioning
    cap = caption_scores(predictor, nights, options.caption_epochs or CAPTION_EPOCHS)
    row("caption stage_event BLEU-4", cap["bleu4"], cap["n"])
    row("caption stage_event ROUGE-L", cap["rouge_l"], cap["n"])
    row("caption stage_event factual accuracy", cap["factual_accuracy"], cap["n"])
    row("caption hallucinated events per caption", cap["hallucinated_events_per_caption"], cap["n"])

    # grounded captions per modality: guarded (as shown) and unguarded (the decoder before)
    picks = [_caption_picks(nd, options.caption_epochs or CAPTION_EPOCHS,
                            np.random.default_rng(nd.night.seed)) for nd in nights]  # fmt: skip
    grounded, grounded_details = grounding_eval.synthetic_rows(predictor, nights, picks)
    for metric, value, n in grounded:
        row(metric, value, n)

    # localization
    loc = localization_scores(nights, EVENT_QUERIES)
    for kind, v in loc.items():
        row(f"localization F1 {kind} (IoU>=0.3)", v["f1"], v["n_true"])
    para = localization_scores(nights, PARAPHRASE_QUERIES)
    for kind, v in para.items():
        row(f"unseen phrasing F1 {kind}: {v['query']!r}", v["f1"], v["n_true"])

    words, words_details = language.wording_rows(nights)
    for metric, value, n in words:
        row(metric, value, n)
    calib_rows, calib_details = language.calibration_rows(nights, EVENT_QUERIES)
    for metric, value, n in calib_rows:
        row(metric, value, n)

    details = {
        "model": getattr(predictor, "model_id", ""),
        "threshold": getattr(predictor, "threshold", None),
        "calibrated": getattr(predictor, "calibrated", None),
        "nights": [
            {
                "variant": nd.night.variant,
                "seed": nd.night.seed,
                "settings": nd.night.settings,
                "file": str(nd.night.edf),
                "epochs": len(nd.truth),
                "zero_shot": _asdict(metrics.staging_scores(nd.truth, nd.predicted)),
            }
            for nd in nights
        ],
        "settings": {
            "hours": hours,
            "ahi": AHI,
            "plm_index": PLM_INDEX,
            "stride_s": STRIDE_S,
            "iou_threshold": IOU_THRESHOLD,
            "fewshot": "nearest prototype; support = even nights, query = odd nights",
            "fewshot_repeats": FEWSHOT_REPEATS,
            "caption_beam": CAPTION_BEAM,
        },
        "fewshot": fewshot,
        "retrieval": retrieval,
        "captioning": cap,
        "localization": loc,
        "unseen_phrasings": para,
        "wordings": words_details,
        "calibration": calib_details,
        "grounding": grounded_details,
    }
    return SuiteResult(SUITE, rows, details, columns=COLUMNS)


def _asdict(s: metrics.StagingScores) -> dict[str, float]:
    return {"n": s.n, "accuracy": s.accuracy, "macro_f1": s.macro_f1, "kappa": s.kappa}
