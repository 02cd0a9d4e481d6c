"""Evaluation suites: a registry of named benchmarks and the table they print.

======== ===================================================================================
suite    what it measures
======== ===================================================================================
dreams   Real EEG (DREAMS spindle database, 8 x 30 min). Staging vs the expert hypnogram
         (pooled over 480 epochs) and spindle F1 vs expert 1 (IoU >= 0.3, first 1000 s),
         for SleepLM (when a model loads), YASA, expert 2 and the DREAMS automatic detector.
synthetic Held-out synthetic nights (seeds >= 10 000, six generator setting variants) with
         exact ground truth: zero-shot and few-shot staging, signal<->text retrieval,
         captioning, event localization and unseen phrasings (:mod:`sleeplm_core.eval.synthetic`).
======== ===================================================================================

The SleepLM rows go through two small protocols, :class:`Stager` and :class:`Localizer`, so a
suite never reaches into the model. The model is looked up as ``sleeplm_core.inference.Predictor``
(``Predictor.load(checkpoint)``); when that cannot be imported or loaded, the suite still runs
and prints ``SleepLM: model not available (reason)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from sleeplm_core.errors import SleepLMError
from sleeplm_core.eval.base import (  # re-exported: the suites' public names
    COLUMNS,
    IOU_THRESHOLD,
    LoadedModel,
    Localizer,
    Row,
    Stager,
    SuiteOptions,
    SuiteResult,
    load_model,
)
from sleeplm_core.eval.dreams import DreamsExcerpt, Event, in_window, load_dreams
from sleeplm_core.eval.metrics import match_events, staging_scores

__all__ = [
    "COLUMNS",
    "IOU_THRESHOLD",
    "SPINDLE_QUERY",
    "SUITES",
    "LoadedModel",
    "Localizer",
    "Row",
    "Stager",
    "Suite",
    "SuiteOptions",
    "SuiteResult",
    "dreams_suite",
    "format_table",
    "grounding_suite",
    "load_model",
    "register_suite",
    "run_suite",
    "synthetic_suite",
]

SPINDLE_QUERY: Final[str] = "sleep spindle"
SuiteFn = Callable[[SuiteOptions], SuiteResult]


@dataclass(frozen=True)
class Suite:
    """A registered suite."""

    name: str
    description: str
    run: SuiteFn


SUITES: dict[str, Suite] = {}


def register_suite(name: str, description: str) -> Callable[[SuiteFn], SuiteFn]:
    """Register ``fn`` as the suite ``name`` (decorator)."""

    def deco(fn: SuiteFn) -> SuiteFn:
        SUITES[name] = Suite(name, description, fn)
        return fn

    return deco


def run_suite(name: str, options: SuiteOptions | None = None) -> SuiteResult:
    """Run the suite ``name``; an unknown name is a :class:`SleepLMError`."""
    if name not in SUITES:
        raise SleepLMError(None, f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    return SUITES[name].run(options or SuiteOptions())


# ---------------------------------------------------------------------------------------------
# dreams
# ---------------------------------------------------------------------------------------------


def _fit_epochs(stages: Sequence[str], n: int) -> list[str]:
    """Cut or pad (with UNS, which scoring ignores) a staging to ``n`` epochs."""
    out = [str(s) for s in stages][:n]
    return out + ["UNS"] * (n - len(out))


def _spindle_f1(truth: Sequence[Event], pred: Sequence[Event], stop_s: float) -> float:
    return match_events(
        in_window(truth, stop_s), in_window(pred, stop_s), iou_threshold=IOU_THRESHOLD
    ).f1


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if xs else math.nan


def _yasa_rows(
    excerpts: Sequence[DreamsExcerpt], use_cache: bool
) -> tuple[list[str], list[float], dict[int, dict[str, float]], str]:
    """YASA stagings (pooled) and spindle F1s, or an explanation when YASA is missing."""
    from importlib.util import find_spec

    from sleeplm_core.eval.baselines import yasa_spindles, yasa_staging

    if find_spec("yasa") is None:  # checked first so that the suite does not fail half-way
        return [], [], {}, "YASA is not installed (pip install yasa)"
    pooled: list[str] = []
    f1s: list[float] = []
    per: dict[int, dict[str, float]] = {}
    for e in excerpts:
        st = yasa_staging(e, cache=use_cache)
        sp = yasa_spindles(e, cache=use_cache)
        s = staging_scores(e.hypnogram, st)
        f1 = _spindle_f1(e.spindles_expert1, sp, e.expert1_scored_until_s)
        pooled += st
        f1s.append(f1)
        per[e.id] = {"yasa_kappa": s.kappa, "yasa_accuracy": s.accuracy, "yasa_spindle_f1": f1}
    return pooled, f1s, per, ""


@register_suite("dreams", "real EEG: staging and spindles on the DREAMS spindle database")
def dreams_suite(options: SuiteOptions) -> SuiteResult:
    """Compare SleepLM, YASA, expert 2 and the DREAMS automatic detector on DREAMS."""
    excerpts = load_dreams(options.data_root)
    truth = [s for e in excerpts for s in e.hypnogram]
    per: dict[int, dict[str, float]] = {e.id: {} for e in excerpts}
    suite = "dreams"

    # references: expert 2 and the automatic detector vs expert 1 (first 1000 s)
    exp2 = [e for e in excerpts if e.spindles_expert2 is not None]
    exp2_f1 = []
    for e in exp2:
        f1 = _spindle_f1(e.spindles_expert1, e.spindles_expert2 or [], e.expert1_scored_until_s)
        per[e.id]["expert2_spindle_f1"] = f1
        exp2_f1.append(f1)
    auto_f1 = []
    for e in excerpts:
        f1 = _spindle_f1(e.spindles_expert1, e.spindles_automatic, e.expert1_scored_until_s)
        per[e.id]["auto_spindle_f1"] = f1
        auto_f1.append(f1)

    yasa_pooled, yasa_f1, yasa_per, yasa_missing = _yasa_rows(excerpts, options.use_cache)
    for k, v in yasa_per.items():
        per[k].update(v)
    yasa_scores = staging_scores(truth, yasa_pooled) if yasa_pooled else None

    model = load_model(options.checkpoint)
    lm_scores = None
    lm_f1: list[float] = []
    passes = len(excerpts) * ((model.stager is not None) + (model.localizer is not None))
    done = 0
    if model.stager is not None:
        lm_pooled: list[str] = []
        for e in excerpts:
            options.step(done, passes)
            done += 1
            st = _fit_epochs(model.stager.predict_stages(e.data, e.sf, e.ch_name), e.n_epochs)
            per[e.id]["sleeplm_kappa"] = staging_scores(e.hypnogram, st).kappa
            lm_pooled += st
        lm_scores = staging_scores(truth, lm_pooled)
    if model.localizer is not None:
        for e in excerpts:
            options.step(done, passes)
            done += 1
            found = model.localizer.localize(e.data, e.sf, e.ch_name, SPINDLE_QUERY)
            pred = [(float(on), float(dur)) for on, dur, _ in found]
            f1 = _spindle_f1(e.spindles_expert1, pred, e.expert1_scored_until_s)
            per[e.id]["sleeplm_spindle_f1"] = f1
            lm_f1.append(f1)

    options.step(passes, passes)

    def vals(**kw: float | None) -> dict[str, float]:
        names = {"sleeplm": "SleepLM", "yasa": "YASA", "experts": "experts", "auto": "DREAMS-auto"}
        return {names[k]: float(v) for k, v in kw.items() if v is not None}

    n_ep = yasa_scores.n if yasa_scores else len(truth)
    rows = [
        Row(
            suite,
            "staging kappa (pooled, 8 excerpts)",
            vals(
                sleeplm=lm_scores.kappa if lm_scores else None,
                yasa=yasa_scores.kappa if yasa_scores else None,
            ),
            n_ep,
        ),
        Row(
            suite,
            "staging accuracy (pooled)",
            vals(
                sleeplm=lm_scores.accuracy if lm_scores else None,
                yasa=yasa_scores.accuracy if yasa_scores else None,
            ),
            n_ep,
        ),
        Row(
            suite,
            "staging macro-F1 (pooled)",
            vals(
                sleeplm=lm_scores.macro_f1 if lm_scores else None,
                yasa=yasa_scores.macro_f1 if yasa_scores else None,
            ),
            n_ep,
        ),
        Row(
            suite,
            "spindle F1 vs expert 1 (IoU>=0.3, <1000 s, mean)",
            vals(
                sleeplm=_mean(lm_f1) if lm_f1 else None,
                yasa=_mean(yasa_f1) if yasa_f1 else None,
                auto=_mean(auto_f1),
            ),
            len(excerpts),
        ),
        Row(
            suite,
            "spindle F1, expert 2 vs expert 1 (excerpts 1-6)",
            vals(experts=_mean(exp2_f1)),
            len(exp2),
        ),
    ]
    if not model.available:
        rows.append(Row(suite, "", text=f"SleepLM: model not available ({model.reason})"))
    if yasa_missing:
        rows.append(Row(suite, "", text=f"YASA: {yasa_missing}"))
    details = {
        "model": {"available": model.available, "reason": model.reason},
        "settings": {
            "iou_threshold": IOU_THRESHOLD,
            "expert1_scored_until_s": excerpts[0].expert1_scored_until_s if excerpts else None,
            "epoch_rule": "30-s majority of 5-s R&K rows, ties to the later rows",
            "spindle_query": SPINDLE_QUERY,
        },
        "per_excerpt": {str(k): v for k, v in per.items()},
    }
    return SuiteResult(suite, rows, details)


# ---------------------------------------------------------------------------------------------
# synthetic (sleeplm_core.eval.synthetic, imported when run: it builds on this module)
# ---------------------------------------------------------------------------------------------


@register_suite("synthetic", "held-out synthetic nights with exact ground truth (needs the model)")
def synthetic_suite(options: SuiteOptions) -> SuiteResult:
    """Run :func:`sleeplm_core.eval.synthetic.run_synthetic`; refuses clearly without a model."""
    from sleeplm_core.eval.synthetic import run_synthetic

    return run_synthetic(options)


@register_suite("grounding", "real recordings: words about absent channels in captions")
def grounding_suite(options: SuiteOptions) -> SuiteResult:
    """Run :func:`sleeplm_core.eval.grounding_eval.run_grounding` (DREAMS excerpts)."""
    from sleeplm_core.eval.grounding_eval import run_grounding

    return run_grounding(options)


# ---------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return "nan" if math.isnan(v) else f"{v:.3f}"


def format_table(results: Sequence[SuiteResult]) -> str:
    """Render rows as fixed-width tables: ``suite | metric | <the suite's columns> | n``.

    Consecutive results with the same columns share one table; a change of columns (e.g.
    ``dreams`` then ``synthetic``) starts a new table after a blank line.
    """
    groups: list[list[SuiteResult]] = []
    for res in results:
        if groups and groups[-1][0].columns == res.columns:
            groups[-1].append(res)
        else:
            groups.append([res])
    return "\n\n".join(_table(g, g[0].columns) for g in groups)


def _table(results: Sequence[SuiteResult], columns: Sequence[str]) -> str:
    header = ["suite", "metric", *columns, "n"]
    body: list[list[str] | str] = []
    for res in results:
        for r in res.rows:
            if r.text:
                body.append(f"{r.suite} | {r.text}")
            else:
                cells = [_fmt(r.values.get(c)) for c in columns]
                body.append([r.suite, r.metric, *cells, "-" if r.n is None else str(r.n)])
    table_rows = [header] + [b for b in body if isinstance(b, list)]
    widths = [max(len(row[i]) for row in table_rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return " | ".join(parts).rstrip()

    out = [line(header), "-+-".join("-" * w for w in widths)]
    out += [b if isinstance(b, str) else line(b) for b in body]
    return "\n".join(out)
