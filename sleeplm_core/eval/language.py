"""Rows of the ``synthetic`` suite about language: wording sets, refusals, calibration error.

- **Wording sets** (:mod:`sleeplm_core.model.phrases`): for each event type, the F1 (IoU >= 0.3,
  pooled over nights) of every development wording (``DEV``, the only ones choices may use)
  and every evaluation wording (``EVAL``, never used for a choice); a row gives the mean and
  the worst wording of each set per type.
- **Refusals**: segments returned for negated queries ("no apnea", ...) and for off-topic
  queries ("stock market crash", ...), per night; the target is 0.
- **Calibration error**: expected calibration error (10 equal-width bins) of the search
  scores (a segment is correct when it matches a true event of its query's type at IoU >=
  0.3, one-to-one) and of the per-epoch stage confidence (correct = the stage is right),
  raw and calibrated (:mod:`sleeplm_core.calibration`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sleeplm_core.eval import metrics
from sleeplm_core.model import phrases as P

IOU = 0.3


def wording_queries() -> list[str]:
    """Every query the wording rows need (searched once per night while it is loaded)."""
    out = [q for qs in (*P.DEV.values(), *P.EVAL.values()) for q in qs]
    out += [q for qs in P.NEGATED_EVAL.values() for q in qs] + list(P.FAR_EVAL)
    return list(dict.fromkeys(out))


def pooled_f1(
    truths: Sequence[list[tuple[float, float]]], found: Sequence[list[tuple[float, float]]]
) -> float:
    """F1 at IoU >= 0.3 pooled over nights (NaN when nothing is true and nothing found)."""
    tp = n_true = n_pred = 0
    for t, f in zip(truths, found, strict=True):
        m = metrics.match_events(t, f, iou_threshold=IOU)
        tp, n_true, n_pred = tp + m.tp, n_true + m.n_true, n_pred + m.n_pred
    return metrics.EventMatch(tp, n_true, n_pred).f1 if n_true + n_pred else math.nan


def wording_rows(nights: Sequence[Any]) -> tuple[list[tuple[str, float, int]], dict[str, Any]]:
    """``(metric, value, n)`` rows and details for the wording sets and refusals."""
    rows: list[tuple[str, float, int]] = []
    details: dict[str, Any] = {}
    for name, bank in (("development", P.DEV), ("evaluation", P.EVAL)):
        per: dict[str, dict[str, float]] = {}
        for kind, queries in bank.items():
            truths = [nd.events[kind] for nd in nights]
            n_true = sum(len(t) for t in truths)
            per[kind] = {q: pooled_f1(truths, [nd.found[q] for nd in nights]) for q in queries}
            vals = [v for v in per[kind].values() if not math.isnan(v)]
            if vals:
                rows.append((f"{name} wordings F1 {kind} (mean of {len(vals)})",
                             float(np.mean(vals)), n_true))  # fmt: skip
                rows.append((f"{name} wordings F1 {kind} (worst)", float(min(vals)), n_true))
        details[name] = per
    negated = {q: sum(len(nd.found[q]) for nd in nights)
               for qs in P.NEGATED_EVAL.values() for q in qs}  # fmt: skip
    far = {q: sum(len(nd.found[q]) for nd in nights) for q in P.FAR_EVAL}
    n = len(nights)
    rows.append(("negated queries: segments returned per night", sum(negated.values()) / n,
                 len(negated)))  # fmt: skip
    rows.append(("off-topic queries: segments returned per night", sum(far.values()) / n,
                 len(far)))  # fmt: skip
    details["negated"] = negated
    details["off_topic"] = far
    return rows, details


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted by size."""
    c = np.asarray(confidence, np.float64)
    y = np.asarray(correct, np.float64)
    if c.size == 0:
        return math.nan
    idx = np.minimum((np.clip(c, 0.0, 1.0) * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            err += sel.mean() * abs(float(y[sel].mean()) - float(c[sel].mean()))
    return float(err)


def segment_outcomes(
    truth: list[tuple[float, float]], found: list[tuple[float, float, float, float]]
) -> list[tuple[float, float, bool]]:
    """``(raw score, calibrated score, correct)`` per found segment (one-to-one at IoU >= 0.3).

    ``found`` rows are ``(onset_s, duration_s, raw, calibrated)``; a segment is correct when
    the greedy one-to-one matching of :func:`~sleeplm_core.eval.metrics.match_events` pairs it.
    """
    pairs = []
    for i, (a, d, _, _) in enumerate(found):
        for j, (ta, td) in enumerate(truth):
            iou = metrics.interval_iou((a, a + d), (ta, ta + td))
            if iou >= IOU:
                pairs.append((iou, i, j))
    pairs.sort(reverse=True)
    used_t: set[int] = set()
    hit: set[int] = set()
    for _, i, j in pairs:
        if i not in hit and j not in used_t:
            hit.add(i)
            used_t.add(j)
    return [(raw, cal, i in hit) for i, (_, _, raw, cal) in enumerate(found)]


def raw_and_calibrated(
    predictor: Any, emb: Any, queries: Any
) -> dict[str, list[tuple[float, float, float, float]]]:
    """``query -> [(onset_s, duration_s, raw, calibrated)]`` of every segment found.

    The search runs twice, with and without the checkpoint's score maps; the segments are
    the same (the maps only rescore them) and are paired by onset.
    """
    from sleeplm_core.calibration import ScoreCalibration

    out: dict[str, list[tuple[float, float, float, float]]] = {}
    saved = predictor.scores
    for query in queries:
        cal = predictor.search(emb, query, top=1_000_000).segments
        predictor.scores = ScoreCalibration()
        try:
            raw = {round(s.onset_s, 3): s.score for s in predictor.search(emb, query,
                                                                          top=1_000_000).segments}
        finally:
            predictor.scores = saved
        out[query] = [(s.onset_s, s.duration_s, raw.get(round(s.onset_s, 3), math.nan), s.score)
                      for s in cal]  # fmt: skip
    return out


def calibration_rows(
    nights: Sequence[Any], queries: dict[str, str]
) -> tuple[list[tuple[str, float, int]], dict[str, Any]]:
    """ECE of search scores and stage confidence on the suite's nights, raw and calibrated."""
    raw: list[float] = []
    cal: list[float] = []
    ok: list[bool] = []
    for nd in nights:
        for kind, query in queries.items():
            for r, c, hit in segment_outcomes(nd.events[kind], nd.scored.get(query, [])):
                raw.append(r)
                cal.append(c)
                ok.append(hit)
    r_arr, c_arr, y = np.array(raw), np.array(cal), np.array(ok, bool)
    finite = np.isfinite(r_arr)
    rows = [
        ("search score ECE, raw (10 bins)", expected_calibration_error(r_arr[finite], y[finite]),
         int(finite.sum())),
        ("search score ECE, calibrated", expected_calibration_error(c_arr, y), len(y)),
        ("search segments with a tied calibrated score (share)",
         1.0 - len(set(np.round(c_arr, 6))) / max(len(c_arr), 1), len(y)),
    ]  # fmt: skip
    scored = [(nd.stage_conf, np.array(nd.truth) == np.array(nd.predicted)) for nd in nights]
    keep = [np.isin(np.array(nd.truth), ["W", "N1", "N2", "N3", "REM"]) for nd in nights]
    s_raw = np.concatenate([c[0][k] for (c, _), k in zip(scored, keep, strict=True)])
    s_cal = np.concatenate([c[1][k] for (c, _), k in zip(scored, keep, strict=True)])
    s_ok = np.concatenate([y_[k] for (_, y_), k in zip(scored, keep, strict=True)])
    rows += [
        ("stage confidence ECE, raw", expected_calibration_error(s_raw, s_ok), len(s_ok)),
        ("stage confidence ECE, calibrated", expected_calibration_error(s_cal, s_ok), len(s_ok)),
    ]
    details = {"search_accuracy": float(y.mean()) if y.size else math.nan,
               "search_mean_raw": float(np.nanmean(r_arr)) if r_arr.size else math.nan,
               "search_mean_calibrated": float(c_arr.mean()) if c_arr.size else math.nan}
    return rows, details
