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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np

from sleeplm_core.errors import SleepLMError
from sleeplm_core.eval.dreams import DreamsExcerpt, Event, in_window, load_dreams
from sleeplm_core.eval.metrics import match_events, staging_scores

COLUMNS: Final[tuple[str, ...]] = ("SleepLM", "YASA", "experts", "DREAMS-auto")
"""Value columns of a suite table, between ``metric`` and ``n``."""

SPINDLE_QUERY: Final[str] = "sleep spindle"
IOU_THRESHOLD: Final[float] = 0.3


@runtime_checkable
class Stager(Protocol):
    """Anything that stages a single EEG channel in 30-s epochs."""

    def predict_stages(self, data: np.ndarray, sf: float, ch_name: str) -> list[str]:
        """Return one of ``W N1 N2 N3 REM`` (or ``ART``/``UNS``) per 30-s epoch from sample 0.

        ``data`` is float32 µV of shape (n_samples,), sampled at ``sf`` Hz.
        """
        ...


@runtime_checkable
class Localizer(Protocol):
    """Anything that finds the events a text query describes in a single EEG channel."""

    def localize(
        self, data: np.ndarray, sf: float, ch_name: str, query: str
    ) -> list[tuple[float, float, float]]:
        """Return ``(onset_s, duration_s, score)`` for each event found."""
        ...


@dataclass(frozen=True)
class LoadedModel:
    """The SleepLM model as the suites see it: its capabilities, or why it is missing."""

    stager: Stager | None = None
    localizer: Localizer | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        """Whether at least one capability is present."""
        return self.stager is not None or self.localizer is not None


@dataclass(frozen=True)
class Row:
    """One line of a suite table.

    ``values`` maps a column of :data:`COLUMNS` to a number (missing columns print as ``-``);
    ``text`` replaces the value columns for a message row (e.g. a model that is missing).
    """

    suite: str
    metric: str
    values: dict[str, float] = field(default_factory=dict)
    n: int | None = None
    text: str = ""


@dataclass
class SuiteResult:
    """What a suite returns: table rows, and per-item details for ``--json``."""

    suite: str
    rows: list[Row]
    details: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = COLUMNS
    """Value columns of this suite's table (``dreams``: :data:`COLUMNS`; ``synthetic``: value)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``)."""
        out: dict[str, Any] = _clean(
            {"suite": self.suite, "rows": [asdict(r) for r in self.rows], **self.details}
        )
        return out


@dataclass(frozen=True)
class SuiteOptions:
    """Inputs shared by all suites (from the ``sleeplm eval`` flags)."""

    checkpoint: Path | None = None
    data_root: Path | None = None
    use_cache: bool = True
    nights: int | None = None  # synthetic: held-out nights (default 6)
    hours: float | None = None  # synthetic: hours per night (default 1.0)
    caption_epochs: int | None = None  # synthetic: decoded captions per night (default 8)
    progress: Callable[[int, int], None] | None = field(default=None, compare=False)
    """``progress(done, total)`` over the suite's model passes (nights or excerpts)."""

    def step(self, done: int, total: int) -> None:
        """Report progress when a callback was given."""
        if self.progress is not None:
            self.progress(done, total)


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
# The model slot
# ---------------------------------------------------------------------------------------------


def load_model(checkpoint: Path | None = None) -> LoadedModel:
    """Load ``sleeplm_core.inference.Predictor`` if it exists; never raises.

    Returns
    -------
    LoadedModel
        With ``stager`` / ``localizer`` set to the predictor when it has
        ``predict_stages`` / ``localize``; otherwise ``reason`` says what is missing.
    """
    try:
        # the module is written by another part of the project and may not exist yet
        from sleeplm_core.inference import Predictor  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        return LoadedModel(reason=f"sleeplm_core.inference.Predictor cannot be imported ({exc})")
    try:
        predictor = Predictor.load(checkpoint)
    except (SleepLMError, OSError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        where = checkpoint or "the default checkpoint"
        return LoadedModel(reason=f"cannot load {where} ({exc})")
    stager = predictor if isinstance(predictor, Stager) else None
    localizer = predictor if isinstance(predictor, Localizer) else None
    if stager is None and localizer is None:
        return LoadedModel(reason="Predictor has neither predict_stages nor localize")
    return LoadedModel(stager=stager, localizer=localizer)


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


def _clean(obj: Any) -> Any:
    """Make ``obj`` strict JSON: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
