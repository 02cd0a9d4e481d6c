r"""Calibrate a trained SleepLM's match thresholds on held-out synthetic nights and bundle it.

Usage::

    sleeplm calibrate --checkpoint runs/tiny-bundled --out resources/models
    python -m sleeplm_core.train.calibrate --checkpoint runs/tiny-bundled --out resources/models

Held-out nights use seeds ``20_000 + i`` (training shards use 0-19; the ``synthetic`` eval
suite uses 10_000+, so calibration never sees the evaluation nights). Each night is written as
EDF + NSRR XML and read back like a user's file; AHI and PLM index cycle through moderate and
severe values so that every event type occurs.

Chosen settings (stored as ``meta["calibration"]``, read by :class:`~sleeplm_core.inference.
Predictor`):

- ``match_threshold``, ``low_ratio``, ``gap_s``: one global setting of the dense score track
  (grid search) maximising the mean F1 (IoU >= 0.3) over apnea, hypopnea, desaturation,
  arousal, spindle and limb movement, queries as in the eval suite;
- ``per_type``: the same three settings chosen for each event type alone; a query uses the
  setting of its nearest phrase-bank type (by text similarity), the global one otherwise;
- ``single_eeg``: the same three settings for a recording whose only channel is one EEG,
  chosen on the nights' C3 channel alone (15-s windows), over spindle and arousal;
- ``query_expansion``: the mix and temperature of :meth:`Predictor.query_embedding`, chosen
  first, on development wordings (``DEV_PHRASINGS``) and the canonical queries together; every
  setting below is then calibrated with it;
- ``epoch_threshold``: the cosine threshold of the epoch-level search maximising the mean
  epoch F1 of stage-like queries ("REM sleep", "deep sleep", "wake");
- ``scores``: isotonic maps from raw dense-search segment scores (canonical and development
  wordings, with the settings above) and from zero-shot stage confidence to the observed
  rate of being right (:mod:`sleeplm_core.calibration`).

With ``--set signal.merge_size=2`` (settings in :data:`INFERENCE_SETTINGS`, which change no
parameter) the checkpoint's config is changed first and the calibration made with it: the
bundled model runs its trained weights with token merging (``make model``).

With ``--out`` the checkpoint's weights and its meta (plus calibration, no optimizer file) are
written there as ``model_NNNNNN.safetensors`` + ``meta_NNNNNN.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sleeplm_core.errors import ConfigError
from sleeplm_core.model.phrases import DEV

SEED0 = 20_000
INFERENCE_SETTINGS = ("signal.merge_size", "signal.merge_from")
"""Config keys ``--set`` may change on a trained checkpoint (they add or remove no parameter)."""
CALIB_QUERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "apnea": ("obstructive apnea", ("Obstructive apnea", "Central apnea", "Mixed apnea")),
    "hypopnea": ("hypopnea", ("Hypopnea",)),
    "desaturation": ("oxygen desaturation", ("Oxygen desaturation",)),
    "arousal": ("arousal", ("Arousal",)),
    "spindle": ("sleep spindle", ("Spindle",)),
    "limb movement": ("limb movement", ("Limb movement",)),
}
DEV_PHRASINGS: dict[str, tuple[str, ...]] = DEV
"""Development wordings for choosing the query expansion (:data:`sleeplm_core.model.phrases.
DEV`). None is a training wording, and none is an evaluation wording (a test checks both)."""
EXPANSION_MIXES = (0.5, 0.75, 1.0)
EXPANSION_TAUS = (0.03, 0.1)
EEG_KINDS = ("spindle", "arousal")
"""Event types visible on a single central EEG (calibrated separately for that case)."""
EPOCH_QUERIES: dict[str, str] = {"REM sleep": "REM", "deep sleep": "N3", "wake": "W"}
VARIANTS: tuple[dict[str, Any], ...] = (
    {"sf": 256, "ahi": 30.0, "plm_index": 25.0},
    {"sf": 128, "ahi": 15.0, "plm_index": 10.0},
    {"sf": 256, "ahi": 45.0, "plm_index": 30.0, "noise_uv": 6.0},
    {"sf": 100, "ahi": 25.0, "plm_index": 20.0, "amplitude_scale": 1.4},
)
THRESHOLDS = tuple(float(x) for x in np.round(np.arange(0.1, 0.951, 0.05), 3))
LOW_RATIOS = (0.5, 0.7, 1.0)
GAPS_S = (0.5, 1.5, 3.0)


def night_data(pred: Any, folder: Path, i: int, hours: float) -> dict[str, Any]:
    """Write, reopen and embed held-out night ``i``; return its features and truth.

    The score tracks depend on the query expansion: :func:`score_tracks` computes them.
    """
    from sleeplm_core.inference import STRIDE_S, WINDOW_N
    from sleeplm_core.io.channels import CANONICAL_SF, CANONICAL_SLOTS
    from sleeplm_core.io.recording import Recording
    from sleeplm_core.synth.night import generate_night, write_night
    from sleeplm_core.tracks import DenseNight

    settings = dict(VARIANTS[i % len(VARIANTS)])
    ahi = settings.pop("ahi")
    night = generate_night(hours=hours, seed=SEED0 + i, ahi=ahi, **settings)
    edf, xml = write_night(night, folder / f"calib-{SEED0 + i}.edf")
    with Recording.open(edf, annotations=xml) as rec:
        emb = pred.embed_recording(rec, stride_s=STRIDE_S, use_cache=False)
        truth = {
            kind: [(a.onset_s, a.duration_s) for a in rec.annotations.with_label(*labels)]
            for kind, (_, labels) in CALIB_QUERIES.items()
        }
        stages = [str(s) for s in rec.hypnogram.stages] if rec.hypnogram is not None else []
        canon = rec.canonical(0.0, rec.duration_s)
    dn = pred.dense_night(emb)
    on_grid = np.flatnonzero(np.isclose(np.mod(emb.onsets_s, 30.0), 0.0))
    ep = emb.embeddings[on_grid][: len(stages)]
    # the same night seen through its C3 channel alone (the single-EEG use case)
    c3 = CANONICAL_SLOTS.index("C3_M2")
    only = np.zeros_like(canon.data)
    only[c3] = canon.data[c3]
    mask = np.arange(len(CANONICAL_SLOTS)) == c3
    onsets = np.arange(0.0, only.shape[1] / CANONICAL_SF - 30.0 + 1e-9, 15.0)
    starts = np.round(onsets * CANONICAL_SF).astype(int)
    windows = np.stack([only[:, a : a + WINDOW_N] for a in starts])
    _, dense = pred.embed_windows_dense(windows, mask)
    return {"truth": truth, "epoch_emb": ep, "stages": stages[: len(ep)], "dense": dn,
            "single": DenseNight(onsets, dense)}  # fmt: skip


def score_tracks(pred: Any, nights: list[dict[str, Any]]) -> None:
    """(Re)compute every night's tracks of the calibration queries with ``pred``'s settings."""
    for nd in nights:
        nd["tracks"] = {k: pred.score_track(nd["dense"], q) for k, (q, _) in CALIB_QUERIES.items()}
        nd["single_tracks"] = {
            k: pred.score_track(nd["single"], CALIB_QUERIES[k][0]) for k in EEG_KINDS
        }


def phrase_f1(pred: Any, nights: list[dict[str, Any]], kind: str, phrase: str,
              per_type: dict[str, dict[str, float]]) -> float:  # fmt: skip
    """Pooled F1 of ``phrase`` against ``kind`` events, with the settings a search would use."""
    cfg = per_type.get(pred.nearest_event_type(phrase)) or {}
    return pooled_f1(
        [pred.score_track(nd["dense"], phrase) for nd in nights],
        [nd["truth"][kind] for nd in nights],
        float(cfg.get("match_threshold", 0.5)),
        float(cfg.get("low_ratio", 0.6)),
        float(cfg.get("gap_s", 0.5)),
        nights[0]["dense"].step_s,
    )


def expansion_search(pred: Any, nights: list[dict[str, Any]]) -> dict[str, Any]:
    """Choose the query expansion (mix, temperature) on the development phrasings.

    For each setting the per-type thresholds are recalibrated on the canonical queries; the
    score is the mean of the canonical per-type F1 and the development phrasings' F1, so
    that the expansion may help new wordings only where it does not hurt the trained ones.
    """
    best: dict[str, Any] = {"score": -1.0}
    for mix, tau in itertools.product(EXPANSION_MIXES, EXPANSION_TAUS):
        pred.expansion_mix, pred.expansion_tau = mix, tau
        score_tracks(pred, nights)
        per_type = {}
        for kind in CALIB_QUERIES:
            b = grid_search(nights, (kind,))
            per_type[kind] = {k: b[k] for k in ("match_threshold", "low_ratio", "gap_s")}
            per_type[kind]["f1"] = b["mean_f1"]
        dev = {p: phrase_f1(pred, nights, kind, p, per_type)
               for kind, phrases in DEV_PHRASINGS.items() for p in phrases}  # fmt: skip
        canonical = float(np.mean([v["f1"] for v in per_type.values()]))
        score = 0.5 * (canonical + float(np.mean(list(dev.values()))))
        if score > best["score"]:
            best = {"score": score, "mix": mix, "tau": tau, "canonical_f1": canonical,
                    "dev_f1": dev}  # fmt: skip
    pred.expansion_mix, pred.expansion_tau = best["mix"], best["tau"]
    score_tracks(pred, nights)
    return best


def n_matched(
    true: list[tuple[float, float]], pred: list[tuple[float, float]], iou_min: float
) -> int:
    """One-to-one matches at IoU >= ``iou_min``, greedy by IoU (as ``eval.metrics``), numpy."""
    if not true or not pred:
        return 0
    t = np.asarray(true, np.float64)
    p = np.asarray(pred, np.float64)
    ta, tb = t[:, :1], t[:, :1] + t[:, 1:]
    pa, pb = p[:, 0][None], (p[:, 0] + p[:, 1])[None]
    inter = np.clip(np.minimum(tb, pb) - np.maximum(ta, pa), 0.0, None)
    union = np.maximum(tb, pb) - np.minimum(ta, pa)
    iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    i, j = np.nonzero(iou >= iou_min)
    order = np.argsort(-iou[i, j], kind="stable")
    used_t: set[int] = set()
    used_p: set[int] = set()
    for a, b in zip(i[order].tolist(), j[order].tolist(), strict=True):
        if a not in used_t and b not in used_p:
            used_t.add(a)
            used_p.add(b)
    return len(used_t)


def pooled_f1(
    tracks: list[tuple[np.ndarray, np.ndarray]],
    truths: list[list[tuple[float, float]]],
    threshold: float,
    low_ratio: float,
    gap_s: float,
    step_s: float,
) -> float:
    """F1 at IoU >= 0.3 pooled over nights: each night's track cut into segments vs its truth.

    ``step_s`` is the tracks' grid (:attr:`~sleeplm_core.tracks.DenseNight.step_s`).
    """
    from sleeplm_core.tracks import track_segments

    tp = n_true = n_pred = 0
    for (t, sc), truth in zip(tracks, truths, strict=True):
        segs = track_segments(
            t, sc, threshold, low_ratio=low_ratio, gap_s=gap_s, min_s=0.3, step_s=step_s
        )
        pred = [(a, b - a) for a, b, _ in segs]
        tp += n_matched(truth, pred, 0.3)
        n_true += len(truth)
        n_pred += len(pred)
    return 2 * tp / max(1, n_true + n_pred)


def grid_search(
    nights: list[dict[str, Any]],
    kinds: tuple[str, ...] = tuple(CALIB_QUERIES),
    key: str = "tracks",
) -> dict[str, Any]:
    """Best (threshold, low_ratio, gap_s) for the mean pooled F1 over event ``kinds``."""
    best: dict[str, Any] = {"mean_f1": -1.0}
    step_s = nights[0]["dense"].step_s
    for thr, low, gap in itertools.product(THRESHOLDS, LOW_RATIOS, GAPS_S):
        per_type = {
            kind: pooled_f1([nd[key][kind] for nd in nights], [nd["truth"][kind] for nd in nights],
                            thr, low, gap, step_s)  # fmt: skip
            for kind in kinds
        }
        mean_f1 = float(np.mean(list(per_type.values())))
        if mean_f1 > best["mean_f1"]:
            best = {"mean_f1": mean_f1, "match_threshold": thr, "low_ratio": low, "gap_s": gap,
                    "f1": per_type}  # fmt: skip
    return best


def epoch_threshold(pred: Any, nights: list[dict[str, Any]]) -> dict[str, Any]:
    """Cosine threshold of the epoch-level search (mean epoch F1 of stage-like queries)."""
    emb = np.concatenate([nd["epoch_emb"] for nd in nights])
    stages = np.concatenate([nd["stages"] for nd in nights])
    sims = {q: emb @ pred.query_embedding(q) for q in EPOCH_QUERIES}
    best = {"epoch_threshold": 0.35, "epoch_mean_f1": -1.0}
    for thr in np.round(np.arange(-0.5, 0.951, 0.025), 3):
        f1s = []
        for q, stage in EPOCH_QUERIES.items():
            hit, true = sims[q] >= thr, stages == stage
            f1s.append(2 * np.sum(hit & true) / max(1, hit.sum() + true.sum()))
        if np.mean(f1s) > best["epoch_mean_f1"]:
            best = {"epoch_threshold": float(thr), "epoch_mean_f1": float(np.mean(f1s))}
    return best


def score_maps(
    pred: Any,
    nights: list[dict[str, Any]],
    per_type: dict[str, dict[str, float]],
    stage_ok: np.ndarray,
    stage_conf: np.ndarray,
) -> dict[str, Any]:
    """Isotonic score maps: segments of canonical + development wordings, stage confidence."""
    from sleeplm_core.calibration import fit_scores
    from sleeplm_core.eval.language import segment_outcomes
    from sleeplm_core.tracks import track_segments

    search: dict[str, tuple[list[float], list[bool]]] = {}
    for kind, (query, _) in CALIB_QUERIES.items():
        cfg = per_type[kind]
        raw: list[float] = []
        ok: list[bool] = []
        for phrase in (query, *DEV_PHRASINGS.get(kind, ())):
            for nd in nights:
                t, sc = pred.score_track(nd["dense"], phrase)
                segs = track_segments(t, sc, cfg["match_threshold"], low_ratio=cfg["low_ratio"],
                                      gap_s=cfg["gap_s"], min_s=0.3,
                                      step_s=nd["dense"].step_s)  # fmt: skip
                rows = [(a, b - a, score, score) for a, b, score in segs]
                for r, _, hit in segment_outcomes(nd["truth"][kind], rows):
                    raw.append(r)
                    ok.append(hit)
        search[kind] = (raw, ok)
    return fit_scores(search, (stage_conf.tolist(), stage_ok.tolist()))


def _refit_scores(pred: Any, nights: list[dict[str, Any]], checkpoint: Path, took: float) -> int:
    """Refit only ``calibration["scores"]`` with the checkpoint's own thresholds."""
    from sleeplm_core.train import checkpoint as ckpt

    calib = dict(pred.meta.get("calibration") or {})
    emb = np.concatenate([nd["epoch_emb"] for nd in nights])
    stages = np.concatenate([nd["stages"] for nd in nights])
    scored = np.isin(stages, ["W", "N1", "N2", "N3", "REM"])
    proba = pred.stage_proba(emb)
    guess = np.array(["W", "N1", "N2", "N3", "REM"])[proba.argmax(1)]
    calib["scores"] = score_maps(pred, nights, calib["per_type"], guess[scored] == stages[scored],
                                 proba.max(1)[scored])  # fmt: skip
    print(json.dumps(calib["scores"]["n"]), f"{took:.0f} s")
    d, step = ckpt.resolve(checkpoint)
    meta = ckpt.load_meta(d / f"meta_{step:06d}.json")
    meta["calibration"] = calib
    ckpt.write_meta(d / f"meta_{step:06d}.json", meta)
    return 0


def apply_settings(checkpoint: Path, sets: list[str]) -> None:
    """Write ``SECTION.KEY=VALUE`` settings that need no training into the checkpoint's meta.

    Only :data:`INFERENCE_SETTINGS` (token merging: same parameters, fewer tokens); the
    calibration that follows is then made with them, as the bundle will run.

    Raises
    ------
    ConfigError
        For another key, a malformed setting or an invalid value.
    """
    from sleeplm_core.model.config import config_from_dict, with_overrides
    from sleeplm_core.train import checkpoint as ckpt

    for item in sets:
        key = item.partition("=")[0].strip()
        if key not in INFERENCE_SETTINGS:
            raise ConfigError(None, f"--set {key}: only {', '.join(INFERENCE_SETTINGS)} here")
    d, step = ckpt.resolve(checkpoint)
    path = d / f"meta_{step:06d}.json"
    meta = ckpt.load_meta(path)
    meta["config"] = with_overrides(config_from_dict(meta["config"]), sets).to_dict()
    ckpt.write_meta(path, meta)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sleeplm calibrate`` (and of ``python -m`` this module)."""
    p.add_argument("--checkpoint", type=Path, required=True, help="run dir (latest) or file")
    p.add_argument("--out", type=Path, help="bundle directory (e.g. resources/models)")
    p.add_argument("--nights", type=int, default=4, help="held-out nights (4)")
    p.add_argument("--hours", type=float, default=1.0, help="hours per night (1.0)")
    p.add_argument("--scores-only", action="store_true",
                   help="keep the checkpoint's thresholds; refit only the score maps")  # fmt: skip
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting that needs no training, written into the checkpoint's config "
                   "before calibrating: " + ", ".join(INFERENCE_SETTINGS))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Calibrate (and optionally bundle) a checkpoint: ``python -m`` this module."""
    p = argparse.ArgumentParser(prog="python -m sleeplm_core.train.calibrate")
    add_arguments(p)
    return run(p.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Calibrate ``args.checkpoint`` and write the calibration into its meta (and ``--out``)."""
    from sleeplm_core.inference import Predictor
    from sleeplm_core.train import checkpoint as ckpt

    t0 = time.perf_counter()
    if args.sets:
        apply_settings(args.checkpoint, args.sets)
    pred = Predictor.load(args.checkpoint, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        nights = [night_data(pred, Path(tmp), i, args.hours) for i in range(args.nights)]
    if args.scores_only:
        return _refit_scores(pred, nights, args.checkpoint, time.perf_counter() - t0)
    expansion = expansion_search(pred, nights)
    best = grid_search(nights)
    best.update(epoch_threshold(pred, nights))
    emb = np.concatenate([nd["epoch_emb"] for nd in nights])
    stages = np.concatenate([nd["stages"] for nd in nights])
    scored = np.isin(stages, ["W", "N1", "N2", "N3", "REM"])
    guess = np.array(["W", "N1", "N2", "N3", "REM"])[pred.stage_proba(emb).argmax(1)]
    best["staging_accuracy_calibration_nights"] = float(np.mean(guess[scored] == stages[scored]))
    best["single_eeg"] = grid_search(nights, EEG_KINDS, "single_tracks")
    # per event type (a query uses the setting of its nearest phrase-bank type)
    best["per_type"] = {}
    for kind in CALIB_QUERIES:
        b = grid_search(nights, (kind,))
        best["per_type"][kind] = {k: b[k] for k in ("match_threshold", "low_ratio", "gap_s")}
        best["per_type"][kind]["f1"] = b["mean_f1"]
    best["single_eeg"]["per_type"] = {}
    for kind in EEG_KINDS:
        b = grid_search(nights, (kind,), "single_tracks")
        best["single_eeg"]["per_type"][kind] = {
            k: b[k] for k in ("match_threshold", "low_ratio", "gap_s")
        } | {"f1": b["mean_f1"]}
    best["scores"] = score_maps(pred, nights, best["per_type"], guess[scored] == stages[scored],
                                pred.stage_proba(emb).max(1)[scored])  # fmt: skip
    calib = {
        **best,
        "query_expansion": expansion,
        "min_s": 0.3,
        "nights": {"seeds": [SEED0 + i for i in range(args.nights)], "hours": args.hours},
        "queries": {k: q for k, (q, _) in CALIB_QUERIES.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(calib, indent=1))
    d, step = ckpt.resolve(args.checkpoint)
    meta = ckpt.load_meta(d / f"meta_{step:06d}.json")
    meta["calibration"] = calib
    targets = [d] + ([args.out] if args.out is not None else [])
    for out in targets:
        out.mkdir(parents=True, exist_ok=True)
        if out != d:
            for old in out.glob("*_[0-9][0-9][0-9][0-9][0-9][0-9].*"):
                old.unlink()
            name = f"model_{step:06d}.safetensors"
            shutil.copyfile(d / name, out / name)
        ckpt.write_meta(out / f"meta_{step:06d}.json", meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
