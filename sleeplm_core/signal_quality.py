"""Which seconds of a night carry signal: gaps, flat lines and all-zero stretches are not scored.

The zero-filled gap of an EDF+D recording, a disconnected (flat) montage or an all-zero
stretch holds no sleep to stage, caption or find. :func:`live_seconds` marks each second of
canonical data as *live* when at least one continuously varying channel the recording has
(EEG, EOG, EMG, ECG, respiratory effort and flow: not SpO2 or body position, which may
legitimately stay constant) moves in it. Inference then

* stages a 30-s epoch only when at least half of its seconds are live (else ``UNS`` with
  confidence 0; :func:`scorable_windows`),
* captions it only under the same rule (:data:`UNSCORED_CAPTION` otherwise),
* lets search find nothing in a dead second (:func:`live_at`).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from sleeplm_core.io.channels import CANONICAL_SF, CANONICAL_SLOTS
from sleeplm_core.results import NightEmbeddings

VARYING_SLOTS: Final[tuple[str, ...]] = (
    "ECG", "ABD", "THX", "AIRFLOW", "EOG_L", "EOG_R", "C3_M2", "C4_M1", "EMG_CHIN", "EMG_LEG",
)  # fmt: skip
"""Slots whose signal is never exactly constant for a second while the sensor is attached."""

FLAT_PTP: Final[float] = 1e-6
"""Peak-to-peak (physical units) at or below which a one-second stretch counts as flat."""

MIN_LIVE: Final[float] = 0.5
"""Share of live seconds a 30-s window needs to be staged or captioned."""

UNSCORED_CAPTION: Final[str] = "no signal here (a recording gap or flat channels): not captioned"
"""The caption of an epoch without signal."""

_VARYING = np.array([s in VARYING_SLOTS for s in CANONICAL_SLOTS])


def live_seconds(data: NDArray[np.floating], mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Mark each whole second of canonical data as live (some varying channel moves).

    Parameters
    ----------
    data : ndarray (12, n)
        Canonical data at 64 Hz (gaps are zeros).
    mask : ndarray, bool (12,)
        The slots the recording has.

    Returns
    -------
    ndarray, bool (ceil(n / 64),)
        ``True`` for a second in which a present varying slot is not flat. When the
        recording has no varying slot at all, every second counts as live.
    """
    n = data.shape[1]
    secs = -(-n // int(CANONICAL_SF))
    rows = np.flatnonzero(np.asarray(mask, bool) & _VARYING)
    if rows.size == 0:
        return np.ones(secs, bool)
    per = int(CANONICAL_SF)
    padded = np.full((rows.size, secs * per), np.nan, np.float64)
    padded[:, :n] = data[rows]
    blocks = padded.reshape(rows.size, secs, per)
    with np.errstate(invalid="ignore"):
        ptp = np.nanmax(blocks, axis=2) - np.nanmin(blocks, axis=2)
    live: NDArray[np.bool_] = (np.nan_to_num(ptp, nan=0.0) > FLAT_PTP).any(axis=0)
    return live


def scorable_windows(
    live: NDArray[np.bool_], onsets_s: NDArray[np.floating], window_s: float
) -> NDArray[np.bool_]:
    """Whether each window has at least :data:`MIN_LIVE` of its seconds live."""
    out = np.zeros(len(onsets_s), bool)
    w = int(round(window_s))
    for i, onset in enumerate(onsets_s):
        a = int(round(float(onset)))
        seg = live[a : a + w]
        out[i] = seg.size > 0 and seg.mean() >= MIN_LIVE
    return out


def live_at(live: NDArray[np.bool_], times_s: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Whether the second holding each time is live (times past the end are not)."""
    idx = np.floor(np.asarray(times_s, np.float64)).astype(np.int64)
    ok = (idx >= 0) & (idx < live.size)
    out = np.zeros(idx.shape, bool)
    out[ok] = live[idx[ok]]
    return out


def scorable(emb: NightEmbeddings) -> NDArray[np.bool_]:
    """Windows of ``emb`` with enough signal to stage or match (all when ``live_s`` is None)."""
    if emb.live_s is None:
        return np.ones(len(emb.onsets_s), bool)
    return scorable_windows(emb.live_s, emb.onsets_s, emb.window_s)
