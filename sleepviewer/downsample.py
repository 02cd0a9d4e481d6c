"""Peak (min/max) decimation for drawing, Qt-free and vectorized over channels.

A screen column can show one vertical stroke; drawing more samples than there are pixels only
costs time. :func:`peak_decimate` reduces ``(n_ch, n)`` samples to ``(n_ch, 2 * n_bins)`` in one
numpy pass over all channels (pyqtgraph's own decimation runs per curve and was 7x slower on a
whole night). Each bin contributes a (max, min) pair, flipped on alternate bins so that the line
zig-zags as triangles rather than a sawtooth (mne-qt-browser's "peak" mode).

:class:`MinMaxPyramid` keeps precomputed bins for whole-night views, so that a 8-h overview is
redrawn from a few MB instead of re-reading the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Decimated:
    """Decimated traces.

    Parameters
    ----------
    t : np.ndarray
        float64 (m,) times in seconds, shared by all channels.
    y : np.ndarray
        float32 (n_ch, m) values.
    factor : int
        Samples per bin (1 when the data were not decimated).
    """

    t: np.ndarray
    y: np.ndarray
    factor: int


def decimation_factor(n_samples: int, n_pixels: int) -> int:
    """Return the samples per bin for drawing ``n_samples`` on ``n_pixels`` columns.

    Parameters
    ----------
    n_samples : int
        Samples in view.
    n_pixels : int
        Width of the plot in device pixels.

    Returns
    -------
    int
        1 (no decimation) when there are fewer than two samples per pixel pair, else
        ``n_samples // n_pixels`` (each bin yields two points, so two points per pixel).
    """
    n_pixels = max(int(n_pixels), 1)
    return max(1, int(n_samples // n_pixels)) if n_samples >= 4 * n_pixels else 1


def _pairs(mx: np.ndarray, mn: np.ndarray) -> np.ndarray:
    """Interleave per-bin max/min as (max, min), (min, max), ... along the last axis."""
    n_ch, n_bins = mx.shape
    out = np.empty((n_ch, 2 * n_bins), dtype=np.float32)
    out[:, 0::2] = mn
    out[:, 1::2] = mx
    out[:, 0:4 * (n_bins // 2):4] = mx[:, 0:2 * (n_bins // 2):2]
    out[:, 1:4 * (n_bins // 2):4] = mn[:, 0:2 * (n_bins // 2):2]
    if n_bins % 2:  # last bin is even-indexed: (max, min)
        out[:, -2] = mx[:, -1]
        out[:, -1] = mn[:, -1]
    return out


def peak_decimate(
    data: np.ndarray, sf: float, start_s: float, n_pixels: int
) -> Decimated:
    """Reduce all channels to min/max pairs in one vectorized pass.

    Parameters
    ----------
    data : np.ndarray
        (n_ch, n) samples; NaN marks gaps (a bin touching a gap becomes NaN, so the line breaks).
    sf : float
        Sampling frequency in Hz.
    start_s : float
        Time of the first sample in seconds.
    n_pixels : int
        Plot width in device pixels.

    Returns
    -------
    Decimated
        ``y`` is ``(n_ch, 2 * n_bins)`` when decimated, else the data unchanged (as float32).
    """
    data = np.asarray(data)
    n_ch, n = data.shape
    factor = decimation_factor(n, n_pixels)
    if factor == 1:
        t = start_s + np.arange(n, dtype=np.float64) / sf
        return Decimated(t, data.astype(np.float32, copy=False), 1)
    n_full = n // factor
    blocks = data[:, : n_full * factor].reshape(n_ch, n_full, factor)
    mx = blocks.max(axis=2)
    mn = blocks.min(axis=2)
    rest = n - n_full * factor
    if rest:
        tail = data[:, n_full * factor:]
        mx = np.concatenate([mx, tail.max(axis=1, keepdims=True)], axis=1)
        mn = np.concatenate([mn, tail.min(axis=1, keepdims=True)], axis=1)
    y = _pairs(mx, mn)
    n_bins = mx.shape[1]
    edges = np.arange(n_bins, dtype=np.float64) * factor
    width = np.full(n_bins, float(factor))
    if rest:
        width[-1] = rest  # the short last bin stays inside the data
    t = np.empty(2 * n_bins, dtype=np.float64)
    t[0::2] = edges + 0.25 * width
    t[1::2] = edges + 0.75 * width
    return Decimated(start_s + t / sf, y, factor)


_F16_MAX = 60_000.0
"""Largest magnitude a float16 pyramid keeps (float16 ends at 65 504)."""


class MinMaxPyramid:
    """Precomputed min/max bins of a whole recording for fast overviews.

    Level 0 holds one (min, max) per ``base_factor`` samples; each further level merges
    ``step`` bins of the level below. Memory for 20 channels × 8 h × 256 Hz with the defaults
    is about 40 MB (level 0) plus a quarter of that for all other levels together.

    Parameters
    ----------
    n_channels : int
        Number of channels.
    sf : float
        Sampling frequency in Hz.
    base_factor : int
        Samples per level-0 bin.
    step : int
        Bins merged from one level to the next.
    """

    def __init__(
        self,
        n_channels: int,
        sf: float,
        base_factor: int = 16,
        step: int = 4,
        dtype: type[np.floating] = np.float32,
    ) -> None:
        self.n_channels = n_channels
        # float16 halves the memory (whole-night views need ~3 significant digits); a value
        # beyond float16's range switches the pyramid to float32 for good.
        self.dtype: type[np.floating] = dtype
        self.sf = float(sf)
        self.base_factor = int(base_factor)
        self.step = int(step)
        self._mins: list[np.ndarray] = []
        self._maxs: list[np.ndarray] = []
        self._chunks_min: list[np.ndarray] = []
        self._chunks_max: list[np.ndarray] = []
        self._carry: np.ndarray | None = None

    # -- building ---------------------------------------------------------------------------
    def feed(self, chunk: np.ndarray) -> None:
        """Append consecutive samples ``(n_ch, n)``; call :meth:`finish` after the last one."""
        if self._carry is not None:
            chunk = np.concatenate([self._carry, chunk], axis=1)
        f = self.base_factor
        n_full = chunk.shape[1] // f
        blocks = chunk[:, : n_full * f].reshape(self.n_channels, n_full, f)
        self._append(blocks.max(axis=2), blocks.min(axis=2))
        rest = chunk[:, n_full * f:]
        self._carry = rest.copy() if rest.shape[1] else None

    def finish(self) -> None:
        """Close the last partial bin and build the coarser levels."""
        if self._carry is not None:
            self._append(self._carry.max(axis=1, keepdims=True),
                         self._carry.min(axis=1, keepdims=True))  # fmt: skip
            self._carry = None
        empty = np.empty((self.n_channels, 0), self.dtype)
        mx = np.concatenate(self._chunks_max, axis=1) if self._chunks_max else empty
        mn = np.concatenate(self._chunks_min, axis=1) if self._chunks_min else empty
        self._chunks_max, self._chunks_min = [], []
        self._maxs, self._mins = [mx], [mn]
        while mx.shape[1] > 2 * self.step:
            n = mx.shape[1] // self.step * self.step
            mx = mx[:, :n].reshape(self.n_channels, -1, self.step).max(axis=2)
            mn = mn[:, :n].reshape(self.n_channels, -1, self.step).min(axis=2)
            self._maxs.append(mx)
            self._mins.append(mn)

    def _append(self, mx: np.ndarray, mn: np.ndarray) -> None:
        if self.dtype is not np.float32:
            big = np.fmax.reduce(np.abs(np.concatenate([mx, mn], axis=1)), axis=None, initial=0.0)
            if big >= _F16_MAX:
                self.dtype = np.float32
                self._chunks_max = [c.astype(np.float32) for c in self._chunks_max]
                self._chunks_min = [c.astype(np.float32) for c in self._chunks_min]
        self._chunks_max.append(mx.astype(self.dtype))
        self._chunks_min.append(mn.astype(self.dtype))

    @classmethod
    def build(
        cls,
        read: Callable[[float, float], np.ndarray],
        duration_s: float,
        n_channels: int,
        sf: float,
        chunk_s: float = 600.0,
        base_factor: int = 16,
        dtype: type[np.floating] = np.float32,
    ) -> MinMaxPyramid:
        """Build a pyramid by reading the recording chunk by chunk.

        Parameters
        ----------
        read : callable
            ``read(start_s, stop_s) -> (n_ch, n)`` samples.
        duration_s : float
            Recording length in seconds.
        n_channels : int
            Channels returned by ``read``.
        sf : float
            Sampling frequency in Hz.
        chunk_s : float
            Seconds read at a time (bounds memory); rounded to whole bins.
        base_factor : int
            Samples per level-0 bin.
        dtype : numpy float type
            Storage: float16 halves the memory, float32 keeps every digit.

        Returns
        -------
        MinMaxPyramid
            The finished pyramid.
        """
        pyr = cls(n_channels, sf, base_factor=base_factor, dtype=dtype)
        t = 0.0
        while t < duration_s:
            stop = min(duration_s, t + chunk_s)
            pyr.feed(np.asarray(read(t, stop)))
            t = stop
        pyr.finish()
        return pyr

    @property
    def nbytes(self) -> int:
        """Memory held by all levels, in bytes."""
        return sum(a.nbytes for a in (*self._mins, *self._maxs))

    # -- querying ---------------------------------------------------------------------------
    def query(
        self, start_s: float, stop_s: float, n_pixels: int, rows: np.ndarray | None = None
    ) -> Decimated:
        """Return peak pairs for ``[start_s, stop_s)`` with about ``n_pixels`` bins.

        Parameters
        ----------
        start_s, stop_s : float
            Time range in seconds.
        n_pixels : int
            Plot width in device pixels.
        rows : np.ndarray or None
            Channel indices to return (all when ``None``).

        Returns
        -------
        Decimated
            ``factor`` is in samples of the original signal.
        """
        if not self._maxs:
            raise RuntimeError("MinMaxPyramid.finish() was not called")
        n_samples = max(1.0, (stop_s - start_s) * self.sf)
        want = max(1.0, n_samples / max(n_pixels, 1))
        level = 0
        while level + 1 < len(self._maxs) and self.base_factor * self.step ** (level + 1) <= want:
            level += 1
        f = self.base_factor * self.step**level
        mx, mn = self._maxs[level], self._mins[level]
        if rows is not None:
            mx, mn = mx[rows], mn[rows]
        i0 = max(0, int(start_s * self.sf // f))
        i1 = min(mx.shape[1], int(np.ceil(stop_s * self.sf / f)))
        mx, mn = mx[:, i0:i1], mn[:, i0:i1]
        k = max(1, int(want // f))  # merge further on the fly to reach the wanted width
        if k > 1 and mx.shape[1] >= k:
            n = mx.shape[1] // k * k
            mx = mx[:, :n].reshape(mx.shape[0], -1, k).max(axis=2)
            mn = mn[:, :n].reshape(mn.shape[0], -1, k).min(axis=2)
        else:
            k = 1
        n_bins = mx.shape[1]
        edges = i0 * f + np.arange(n_bins, dtype=np.float64) * (f * k)
        f *= k
        t = np.empty(2 * n_bins, dtype=np.float64)
        t[0::2] = edges + 0.25 * f
        t[1::2] = edges + 0.75 * f
        return Decimated(t / self.sf, _pairs(mx, mn), int(f))
