"""Scores that mean something: isotonic maps from raw model scores to probabilities.

A dense search segment's raw score is a mean match probability of the per-patch head; on
the sample night every apnea scored 0.98-1.00, so the number did not say which match is
strongest or how likely it is right. :func:`fit_isotonic` fits a monotone map (pool adjacent
violators, :func:`scipy.optimize.isotonic_regression`) from raw score to the observed rate of
being right, on held-out synthetic **calibration** nights (seeds 20 000+, never the
evaluation's 10 000+; :mod:`sleeplm_core.train.calibrate`):

- **search**: a segment is right when it matches a true event of its query's type at IoU >=
  0.3 (one-to-one); one map per event type with enough segments, and a global one;
- **stage**: an epoch's zero-shot confidence (the top stage probability) is right when the
  stage is.

The maps are stored as knots in ``meta["calibration"]["scores"]`` and applied by
:class:`ScoreCalibration`. Knots sit at the centres of the isotonic blocks and the map is
linear between them, so equal plateaus are rare; ties that remain (beyond the end knots) are
broken by the raw score (the strength of the match).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_SEGMENTS = 30
"""Fewest calibration segments (with both outcomes) for an event type's own map."""


@dataclass(frozen=True)
class IsotonicMap:
    """A monotone piecewise-linear map given by knots ``x`` (raw) -> ``y`` (probability)."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __call__(self, raw: np.ndarray | float) -> np.ndarray:
        """Calibrated values of ``raw`` (clamped to the end knots outside their range)."""
        return np.interp(np.asarray(raw, np.float64), self.x, self.y)

    def to_json(self) -> dict[str, list[float]]:
        """Knots as lists (rounded to 5 decimals)."""
        return {"x": [round(v, 5) for v in self.x], "y": [round(v, 5) for v in self.y]}

    @classmethod
    def from_json(cls, d: dict[str, Sequence[float]]) -> IsotonicMap:
        """Inverse of :meth:`to_json`."""
        return cls(tuple(float(v) for v in d["x"]), tuple(float(v) for v in d["y"]))


def fit_isotonic(raw: Sequence[float], correct: Sequence[bool]) -> IsotonicMap:
    """Fit raw score -> P(correct) by isotonic regression; a knot at each block's centre.

    Pool adjacent violators gives a step function; its steps become knots at the mean raw
    score of each block (plus the two ends), and :class:`IsotonicMap` interpolates linearly
    between them, so two matches of different strength rarely get the same calibrated score.

    Raises
    ------
    ValueError
        Without any point.
    """
    from scipy.optimize import isotonic_regression

    x = np.asarray(raw, np.float64)
    y = np.asarray(correct, np.float64)
    if x.size == 0:
        raise ValueError("isotonic calibration needs at least one point")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    fitted = isotonic_regression(y, increasing=True).x
    cut = np.flatnonzero(np.diff(fitted) != 0) + 1
    xs = [float(x[0])]
    ys = [float(fitted[0])]
    for block in np.split(np.arange(len(x)), cut):
        centre = float(x[block].mean())
        if centre > xs[-1]:
            xs.append(centre)
            ys.append(float(fitted[block[0]]))
    if float(x[-1]) > xs[-1]:
        xs.append(float(x[-1]))
        ys.append(float(fitted[-1]))
    return IsotonicMap(tuple(xs), tuple(ys))


@dataclass
class ScoreCalibration:
    """The calibrated maps of a checkpoint (empty: scores stay raw)."""

    search: dict[str, IsotonicMap] = field(default_factory=dict)
    stage_map: IsotonicMap | None = None

    @classmethod
    def from_meta(cls, calib: dict[str, Any] | None) -> ScoreCalibration:
        """Read ``calib["scores"]`` (``{"search": {type|"global": knots}, "stage": knots}``)."""
        scores = (calib or {}).get("scores") or {}
        search = {k: IsotonicMap.from_json(v) for k, v in (scores.get("search") or {}).items()}
        stage = scores.get("stage")
        return cls(search, IsotonicMap.from_json(stage) if stage else None)

    @property
    def calibrated(self) -> bool:
        """Whether any map is present."""
        return bool(self.search) or self.stage_map is not None

    def segment(self, kind: str | None, raw: np.ndarray | float) -> np.ndarray:
        """Calibrated dense-search scores of a query of event type ``kind``."""
        m = self.search.get(kind or "") or self.search.get("global")
        return np.asarray(raw, np.float64) if m is None else m(raw)

    def stage(self, confidence: np.ndarray | float) -> np.ndarray:
        """Calibrated zero-shot stage confidence."""
        c = np.asarray(confidence, np.float64)
        return c if self.stage_map is None else self.stage_map(c)


def rank_segments(
    segments: Sequence[tuple[float, float, float]], calibrated: Sequence[float] | np.ndarray
) -> list[tuple[float, float, float, float]]:
    """``(start_s, stop_s, calibrated, raw)`` best first: by calibrated score, ties by raw."""
    rows = [(a, b, float(c), float(r)) for (a, b, r), c in zip(segments, calibrated, strict=True)]
    rows.sort(key=lambda s: (-s[2], -s[3], s[0]))
    return rows


def fit_scores(
    search: dict[str, tuple[list[float], list[bool]]],
    stage: tuple[Sequence[float], Sequence[bool]] | None,
) -> dict[str, Any]:
    """The ``calibration["scores"]`` entry from per-type segment outcomes and stage outcomes."""
    out: dict[str, Any] = {"search": {}, "n": {}}
    pooled_raw: list[float] = []
    pooled_ok: list[bool] = []
    for kind, (raw, ok) in search.items():
        pooled_raw += raw
        pooled_ok += ok
        out["n"][kind] = len(raw)
        if len(raw) >= MIN_SEGMENTS and 0 < sum(ok) < len(ok):
            out["search"][kind] = fit_isotonic(raw, ok).to_json()
    if pooled_raw:
        out["search"]["global"] = fit_isotonic(pooled_raw, pooled_ok).to_json()
    if stage is not None and len(stage[0]):
        out["stage"] = fit_isotonic(stage[0], stage[1]).to_json()
        out["n"]["stage_epochs"] = len(stage[0])
    return out
