"""Evaluation metrics, implemented here so that every figure is reproducible without extras.

==========================  ======================================================
group                       functions
==========================  ======================================================
staging (per 30-s epoch)    :func:`accuracy`, :func:`macro_f1`, :func:`cohen_kappa`,
                            :func:`confusion_matrix`, :func:`staging_scores`
events (spindles, apneas)   :func:`interval_iou`, :func:`match_events`
retrieval                   :func:`recall_at_k`
captions                    :func:`bleu4`, :func:`rouge_l`, :func:`factual_accuracy`
==========================  ======================================================

The conventions for empty inputs are stated in each docstring; none of them warns.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sleeplm_core.stages import SCORED_STAGES

# ---------------------------------------------------------------------------------------------
# Staging
# ---------------------------------------------------------------------------------------------


def _pair(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")


def _labels(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable], labels: Sequence[Hashable] | None
) -> list[Hashable]:
    if labels is not None:
        return list(labels)
    present = set(y_true) | set(y_pred)
    order = [s for s in SCORED_STAGES if s in present]
    return order + sorted((x for x in present if x not in order), key=str)


def accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float:
    """Fraction of items where ``y_pred`` equals ``y_true`` (NaN when empty)."""
    _pair(y_true, y_pred)
    if not len(y_true):
        return math.nan
    return sum(a == b for a, b in zip(y_true, y_pred, strict=True)) / len(y_true)


def confusion_matrix(
    y_true: Sequence[Hashable],
    y_pred: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
) -> np.ndarray:
    """Count matrix ``C[i, j]`` = items of true class ``labels[i]`` predicted as ``labels[j]``.

    Parameters
    ----------
    y_true, y_pred : sequence
        Labels of equal length.
    labels : sequence, optional
        Row/column order. Default: the stages of ``W N1 N2 N3 REM`` that occur, then any other
        label in sorted order. Items whose label is not in ``labels`` are not counted.

    Returns
    -------
    np.ndarray
        int64, shape (n_labels, n_labels).
    """
    _pair(y_true, y_pred)
    labs = _labels(y_true, y_pred, labels)
    index = {lab: i for i, lab in enumerate(labs)}
    cm = np.zeros((len(labs), len(labs)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if t in index and p in index:
            cm[index[t], index[p]] += 1
    return cm


def cohen_kappa(
    y_true: Sequence[Hashable],
    y_pred: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
) -> float:
    """Cohen's kappa: ``(p_o - p_e) / (1 - p_e)`` from the confusion matrix.

    ``p_o`` is the observed agreement and ``p_e`` the agreement expected from the two raters'
    marginals. Returns NaN for no items, and 1.0 when ``p_e == 1`` and both raters agree
    everywhere (a single class used by both).
    """
    cm = confusion_matrix(y_true, y_pred, labels).astype(np.float64)
    n = cm.sum()
    if n == 0:
        return math.nan
    p_o = np.trace(cm) / n
    p_e = float((cm.sum(axis=0) * cm.sum(axis=1)).sum() / n**2)
    if p_e == 1.0:
        return 1.0 if p_o == 1.0 else 0.0
    return float((p_o - p_e) / (1.0 - p_e))


def per_class_f1(
    y_true: Sequence[Hashable],
    y_pred: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
) -> dict[Hashable, float]:
    """F1 of each class; 0.0 for a class with no true positive (no warning, no NaN)."""
    labs = _labels(y_true, y_pred, labels)
    cm = confusion_matrix(y_true, y_pred, labs)
    out: dict[Hashable, float] = {}
    for i, lab in enumerate(labs):
        tp = cm[i, i]
        denom = cm[i, :].sum() + cm[:, i].sum()  # 2 tp + fp + fn
        out[lab] = float(2 * tp / denom) if tp else 0.0
    return out


def macro_f1(
    y_true: Sequence[Hashable],
    y_pred: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
) -> float:
    """Unweighted mean of :func:`per_class_f1` over ``labels`` (default: the labels present).

    With the default labels this equals ``sklearn.metrics.f1_score(average="macro",
    zero_division=0)``. NaN when there are no labels.
    """
    f1 = per_class_f1(y_true, y_pred, labels)
    return float(np.mean(list(f1.values()))) if f1 else math.nan


@dataclass(frozen=True, slots=True)
class StagingScores:
    """Agreement between two stagings on the epochs both scored.

    Attributes
    ----------
    n : int
        Epochs compared (after dropping the ignored stages of either side).
    accuracy, kappa, macro_f1 : float
        See :func:`accuracy`, :func:`cohen_kappa`, :func:`macro_f1`.
    """

    n: int
    accuracy: float
    kappa: float
    macro_f1: float


def staging_scores(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    *,
    ignore: Iterable[str] = ("ART", "UNS"),
) -> StagingScores:
    """Compare two per-epoch stagings, dropping epochs that either side marks as ``ignore``."""
    _pair(y_true, y_pred)
    skip = set(ignore)
    pairs = [(t, p) for t, p in zip(y_true, y_pred, strict=True) if t not in skip and p not in skip]
    t = [a for a, _ in pairs]
    p = [b for _, b in pairs]
    return StagingScores(
        n=len(pairs), accuracy=accuracy(t, p), kappa=cohen_kappa(t, p), macro_f1=macro_f1(t, p)
    )


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


def interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two ``(onset_s, duration_s)`` intervals (0.0 if disjoint)."""
    a0, a1 = a[0], a[0] + a[1]
    b0, b1 = b[0], b[0] + b[1]
    inter = min(a1, b1) - max(a0, b0)
    if inter <= 0:
        return 0.0
    union = max(a1, b1) - min(a0, b0)
    return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class EventMatch:
    """Result of :func:`match_events`.

    Attributes
    ----------
    tp : int
        Matched pairs.
    n_true, n_pred : int
        Events in the reference and in the prediction.
    pairs : tuple of (int, int)
        ``(true_index, pred_index)`` of each match, in matching order.
    """

    tp: int
    n_true: int
    n_pred: int
    pairs: tuple[tuple[int, int], ...] = ()

    @property
    def precision(self) -> float:
        """``tp / n_pred``; 1.0 when both are empty, 0.0 when only the prediction is."""
        if self.n_pred == 0:
            return 1.0 if self.n_true == 0 else 0.0
        return self.tp / self.n_pred

    @property
    def recall(self) -> float:
        """``tp / n_true``; 1.0 when both are empty, 0.0 when only the reference is."""
        if self.n_true == 0:
            return 1.0 if self.n_pred == 0 else 0.0
        return self.tp / self.n_true

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall, ``2 tp / (n_true + n_pred)``; 1.0 if empty."""
        if self.n_true + self.n_pred == 0:
            return 1.0
        return 2 * self.tp / (self.n_true + self.n_pred)


def match_events(
    true: Sequence[tuple[float, float]],
    pred: Sequence[tuple[float, float]],
    *,
    iou_threshold: float = 0.3,
) -> EventMatch:
    """Match events one-to-one, greedily by decreasing IoU, keeping pairs with IoU >= threshold.

    Parameters
    ----------
    true, pred : sequence of (onset_s, duration_s)
        Reference and predicted events.
    iou_threshold : float
        Minimum intersection over union for a pair to count (DREAMS convention: 0.3 or 0.2).
        Must be > 0 so that disjoint events never match.

    Returns
    -------
    EventMatch
        Counts and pairs; ``precision``, ``recall`` and ``f1`` are properties. Equal IoUs are
        taken in (true index, pred index) order, so the result is deterministic.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError("iou_threshold must be in (0, 1]")
    candidates: list[tuple[float, int, int]] = []
    for i, t in enumerate(true):
        for j, p in enumerate(pred):
            iou = interval_iou(t, p)
            if iou >= iou_threshold:
                candidates.append((-iou, i, j))
    candidates.sort()
    used_t: set[int] = set()
    used_p: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, i, j in candidates:
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
            pairs.append((i, j))
    return EventMatch(tp=len(pairs), n_true=len(true), n_pred=len(pred), pairs=tuple(pairs))


# ---------------------------------------------------------------------------------------------
# Retrieval
# ---------------------------------------------------------------------------------------------


def recall_at_k(similarity: np.ndarray, positives: Sequence[int | Iterable[int]], k: int) -> float:
    """Fraction of queries with at least one positive among their ``k`` most similar items.

    Parameters
    ----------
    similarity : np.ndarray
        Shape (n_queries, n_items); larger means more similar.
    positives : sequence
        For each query, the index of its positive item or an iterable of indices
        (multi-positive, e.g. several epochs with the same caption).
    k : int
        Cut-off, >= 1.

    Returns
    -------
    float
        R@K in [0, 1]; NaN for no queries. Equal similarities rank the lower item index first
        (stable sort), so ties are resolved the same way on every run.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != len(positives):
        raise ValueError(
            "similarity must be (n_queries, n_items) with one entry of positives per query"
        )
    if k < 1:
        raise ValueError("k must be >= 1")
    if sim.shape[0] == 0:
        return math.nan
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    hits = 0
    for row, pos in zip(top, positives, strict=True):
        want = {int(pos)} if isinstance(pos, int | np.integer) else {int(x) for x in pos}
        hits += bool(want.intersection(row.tolist()))
    return hits / int(sim.shape[0])


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\d+(?:\.\d+)?|\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-case word/number/punctuation tokens: ``"HR 62.5 bpm."`` -> ``hr 62.5 bpm .``."""
    return _TOKEN.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu4(
    references: Sequence[str | Sequence[str]],
    hypotheses: Sequence[str],
    *,
    epsilon: float = 0.1,
) -> float:
    """Corpus BLEU-4 (Papineni et al. 2002) with uniform weights and epsilon smoothing.

    Clipped n-gram matches and n-gram totals are summed over the corpus before the
    precisions are taken; the brevity penalty uses, per hypothesis, the reference length
    closest to it (the shorter one on a tie). Smoothing is Chen & Cherry's (2014) method 1,
    as ``nltk``'s ``SmoothingFunction().method1``: an n-gram order with no match gets
    precision ``epsilon / total`` instead of 0.

    Parameters
    ----------
    references : sequence
        For each hypothesis, one reference string or a sequence of reference strings.
    hypotheses : sequence of str
        Generated captions.
    epsilon : float
        Numerator used for an order with zero matches.

    Returns
    -------
    float
        BLEU-4 in [0, 1]; 0.0 when the hypotheses are empty.
    """
    if len(references) != len(hypotheses):
        raise ValueError("one reference (or list of references) per hypothesis is needed")
    matches = [0] * 4
    totals = [0] * 4
    hyp_len = ref_len = 0
    for refs, hyp in zip(references, hypotheses, strict=True):
        ref_toks = [tokenize(refs)] if isinstance(refs, str) else [tokenize(r) for r in refs]
        hyp_toks = tokenize(hyp)
        hyp_len += len(hyp_toks)
        ref_len += min((len(r) for r in ref_toks), key=lambda n: (abs(n - len(hyp_toks)), n))
        for n in range(1, 5):
            h = _ngrams(hyp_toks, n)
            max_ref: Counter[tuple[str, ...]] = Counter()
            for r in ref_toks:
                max_ref |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, max_ref[g]) for g, c in h.items())
            totals[n - 1] += sum(h.values())
    if hyp_len == 0 or totals[0] == 0:
        return 0.0
    log_p = 0.0
    for m, t in zip(matches, totals, strict=True):
        if t == 0:
            return 0.0  # no 4-grams at all: BLEU-4 is undefined; report 0 as nltk does
        log_p += math.log((m if m else epsilon) / t) / 4
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(log_p)


def _lcs_len(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(
    references: Sequence[str | Sequence[str]],
    hypotheses: Sequence[str],
    *,
    beta: float = 1.0,
) -> float:
    """Mean sentence ROUGE-L F-measure (Lin 2004) from the longest common subsequence.

    ``R = LCS / len(ref)``, ``P = LCS / len(hyp)``, ``F = (1 + b^2) R P / (R + b^2 P)``.
    ``beta = 1`` (the default) is the F1 reported by the ``rouge-score`` package. With several
    references per hypothesis the best F is taken. A pair with an empty side scores 0.

    Returns
    -------
    float
        Mean over hypotheses; NaN for none.
    """
    if len(references) != len(hypotheses):
        raise ValueError("one reference (or list of references) per hypothesis is needed")
    if not hypotheses:
        return math.nan
    scores: list[float] = []
    for refs, hyp in zip(references, hypotheses, strict=True):
        h = tokenize(hyp)
        best = 0.0
        for ref in [refs] if isinstance(refs, str) else refs:
            r = tokenize(ref)
            lcs = _lcs_len(r, h)
            if lcs == 0:
                continue
            rec, prec = lcs / len(r), lcs / len(h)
            best = max(best, (1 + beta**2) * rec * prec / (rec + beta**2 * prec))
        scores.append(best)
    return float(np.mean(scores))


FactValue = float | int | str


def factual_accuracy(
    reference: Sequence[tuple[str, FactValue]],
    predicted: Sequence[tuple[str, FactValue]],
    *,
    tolerances: Mapping[str, float] | None = None,
    default_tolerance: float = 0.0,
) -> float:
    """Fraction of reference facts that the prediction states with a matching value.

    Parameters
    ----------
    reference : sequence of (name, value)
        The true facts, e.g. ``[("hr_bpm", 62.0), ("stage", "N2")]``.
    predicted : sequence of (name, value)
        Facts parsed from a generated caption. A name may appear several times; the reference
        fact counts as matched when any of them matches, and each predicted fact can match
        only one reference fact.
    tolerances : mapping, optional
        Absolute tolerance per fact name for numbers (``|pred - true| <= tol``).
    default_tolerance : float
        Tolerance for names not in ``tolerances``. Strings match case-insensitively.

    Returns
    -------
    float
        Matched / ``len(reference)``; NaN when there are no reference facts.
    """
    if not reference:
        return math.nan
    tol = dict(tolerances or {})
    used: set[int] = set()
    hits = 0
    for name, value in reference:
        for j, (pname, pval) in enumerate(predicted):
            if j in used or pname != name:
                continue
            if _same_value(value, pval, tol.get(name, default_tolerance)):
                used.add(j)
                hits += 1
                break
    return hits / len(reference)


def _same_value(true: FactValue, pred: FactValue, tol: float) -> bool:
    if isinstance(true, str) or isinstance(pred, str):
        return str(true).strip().lower() == str(pred).strip().lower()
    # a tiny relative slack so that tolerances like 0.1 are not defeated by float rounding
    return abs(float(pred) - float(true)) <= tol + 1e-9 * max(1.0, abs(float(true)))
