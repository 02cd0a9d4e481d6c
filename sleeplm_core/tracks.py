"""Score tracks and segments: what language search turns similarities into.

- :func:`merge_windows`: overlapping 30-s windows over a threshold become spans (epoch-level
  search, and the published SleepLM-Base family's search);
- :class:`DenseNight`: per-patch features of a night's windows (dense search);
- :func:`overlap_average`: per-patch scores of overlapping windows averaged on one grid;
- :func:`track_segments`: a 4 Hz score track cut into segments (hysteresis, gaps, minimum
  duration).

numpy only: no torch, no Qt.
"""

from __future__ import annotations

import numpy as np

from sleeplm_core.stages import EPOCH_S


def merge_windows(
    onsets: np.ndarray, window_s: float, scores: np.ndarray, thr: float
) -> list[tuple[float, float, float]]:
    """Merge overlapping windows scoring >= ``thr`` into (start, stop, best score) spans."""
    spans: list[tuple[float, float, float]] = []
    for i in np.flatnonzero(scores >= thr):
        a, b, s = float(onsets[i]), float(onsets[i] + window_s), float(scores[i])
        if spans and a <= spans[-1][1]:
            pa, pb, ps = spans[-1]
            spans[-1] = (pa, max(pb, b), max(ps, s))
        else:
            spans.append((a, b, s))
    return spans


class DenseNight:
    """Per-patch features of a night's 30-s windows: ``onsets_s`` (n,), ``features`` f16 (n, P, E).

    The patch count sets the track's resolution, :attr:`step_s` = 30 s / P (0.25 s for the
    bundled model's 120 patches of 16 samples).
    """

    CHUNK = 64
    """Windows converted to float32 at a time by :meth:`project` (2 MB at P = 120, E = 64)."""

    def __init__(self, onsets_s: np.ndarray, features: np.ndarray) -> None:
        self.onsets_s = np.asarray(onsets_s, np.float64)
        self.features = np.asarray(features, np.float16)

    @property
    def step_s(self) -> float:
        """Seconds per patch: the dense track's grid."""
        return EPOCH_S / int(self.features.shape[1])

    def project(self, vector: np.ndarray) -> np.ndarray:
        """``features @ vector``: float32 (n, P) for a float32 ``vector`` (E,).

        The float16 features are converted a few windows at a time into one small buffer:
        no float32 copy of the night (59 MB for 8 h at 15-s strides) is made or kept, and
        the conversion stays in the cache. Same result as converting the whole array first.
        """
        n, p, e = self.features.shape
        q = np.asarray(vector, np.float32)
        out = np.empty((n, p), np.float32)
        buf = np.empty((min(n, self.CHUNK), p, e), np.float32)
        for i in range(0, n, self.CHUNK):
            part = self.features[i : i + self.CHUNK]
            chunk = buf[: len(part)]
            np.copyto(chunk, part)
            np.matmul(chunk, q, out=out[i : i + len(part)])
        return out


def overlap_average(
    onsets_s: np.ndarray, values: np.ndarray, step_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Average per-patch ``values`` (n, P) of windows at ``onsets_s`` on one time grid.

    Returns the grid times (patch starts, ``step_s`` apart from 0) and the mean over the
    windows covering each grid cell (cells no window covers are left out).
    """
    n, p = values.shape
    if n == 0:
        return np.zeros(0), np.zeros(0)
    first = np.round(np.asarray(onsets_s) / step_s).astype(np.int64)
    size = int(first.max()) + p
    cells = (first[:, None] + np.arange(p)).ravel()
    total = np.bincount(cells, weights=np.asarray(values, np.float64).ravel(), minlength=size)
    count = np.bincount(cells, minlength=size)
    covered = count > 0
    times = np.arange(size) * step_s
    return times[covered], total[covered] / count[covered]


def track_segments(
    times_s: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    low_ratio: float = 0.6,
    gap_s: float = 0.5,
    min_s: float = 0.3,
    step_s: float,
) -> list[tuple[float, float, float]]:
    """Turn a score track into ``(start_s, stop_s, mean score)`` segments.

    Cells ``>= low_ratio * threshold`` form runs (a hole in ``times_s`` also ends a run); a
    run is kept only when it reaches ``threshold`` (hysteresis). Runs less than ``gap_s``
    apart merge; segments shorter than ``min_s`` are dropped. A cell spans ``[t, t + step_s)``.
    A segment's score is the mean of its cells: the peak saturates near 1 for every clear
    match, the mean still ranks a solid match above one that only touches the threshold.
    """
    times_s = np.asarray(times_s, np.float64)
    scores = np.asarray(scores, np.float64)
    if len(scores) == 0:
        return []
    above = scores >= threshold * low_ratio
    idx = np.flatnonzero(above)
    if idx.size == 0:
        return []
    # a new run starts where the previous above-cell is not the previous grid cell
    jump = (np.diff(idx) > 1) | (np.diff(times_s[idx]) > step_s * 1.5)
    starts = np.concatenate([[0], np.flatnonzero(jump) + 1])
    stops = np.concatenate([starts[1:], [idx.size]])
    run_a = times_s[idx[starts]]
    run_b = times_s[idx[stops - 1]] + step_s
    run_m = np.maximum.reduceat(scores[idx], starts)
    run_sum = np.add.reduceat(scores[idx], starts)
    # merge runs closer than gap_s
    new = np.concatenate([[True], run_a[1:] - run_b[:-1] > gap_s + 1e-9])
    groups = np.cumsum(new) - 1
    n = int(groups[-1]) + 1
    seg_a = run_a[new]
    seg_b = np.zeros(n)
    np.maximum.at(seg_b, groups, run_b)
    seg_m = np.full(n, -np.inf)
    np.maximum.at(seg_m, groups, run_m)
    seg_sum = np.zeros(n)
    np.add.at(seg_sum, groups, run_sum)
    seg_n = np.zeros(n)
    np.add.at(seg_n, groups, (stops - starts).astype(np.float64))
    keep = (seg_m >= threshold) & (seg_b - seg_a >= min_s - 1e-9)
    mean = seg_sum / np.maximum(seg_n, 1.0)
    return [
        (float(x), float(y), float(m))
        for x, y, m in zip(seg_a[keep], seg_b[keep], mean[keep], strict=True)
    ]
