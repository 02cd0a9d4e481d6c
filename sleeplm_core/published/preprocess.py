"""From our canonical windows to the published model's input (N, 10, 1920).

The released model reads 30-s windows at 64 Hz, channels in this order: 0 ECG, 1 ABD, 2 THX,
3 airflow, 4 EOG left, 5 EOG right, 6 C3-A2, 7 C4-A1, 8 chin EMG, 9 body position. Our
canonical slots (:data:`sleeplm_core.io.channels.CANONICAL_SLOTS`) put exactly these ten
first, already typed, picked and resampled to 64 Hz by ``Recording.canonical``; this module
only normalises them:

- channels 0-8 are **z-scored per window and per channel** (:func:`zscore_windows`, the same
  function our own model uses). The authors' README says "z-score each channel" without the
  statistics; per-window statistics need no look at the rest of the night (a window, a page
  or a streamed epoch is encoded the same way), are robust to slow drift and to gain changes
  across the night, and are what a tensor of independent epochs (their interface) allows.
  Flat and missing channels become zeros, as their README asks for missing channels.
- channel 9 (position) is **not** z-scored: it carries the released integer codes
  (0 right, 1 left, 2 supine, 3 prone, 4 upright, -1 other or unknown), mapped from the
  recording's coding (the schemes of ``resources/position_codes.csv``, :func:`coding`).
  A missing position channel is zeros, as their README says for every missing channel.
"""

from __future__ import annotations

from typing import Final

import numpy as np

N_CHANNELS: Final = 10
POSITION_SLOT: Final = 9
RELEASED_CODES: Final[dict[str, int]] = {
    "right": 0, "left": 1, "supine": 2, "prone": 3, "upright": 4,
}  # fmt: skip


def coding(scheme: str) -> dict[int, str]:
    """File code -> position name for a scheme of ``resources/position_codes.csv``.

    ``released`` (the released model's own codes) is always known besides the table's
    schemes (``canonical``, the NSRR/SHHS coding our canonical slot carries, ...).

    Raises
    ------
    KeyError
        For an unknown scheme.
    """
    from sleeplm_core.io.position import position_table

    if scheme == "released":
        return {code: name for name, code in RELEASED_CODES.items()}
    return position_table()[scheme]


def position_codes(values: np.ndarray, scheme: str = "canonical") -> np.ndarray:
    """Map position windows (n, T) in a file's coding to the released codes (float32).

    Values are rounded first (resampling to 64 Hz smooths the steps); codes the scheme does
    not name become -1 ("other/unknown"). A window that is not coded (a raw sensor voltage or
    an angle: :func:`sleeplm_core.io.position.is_coded`) becomes -1 throughout.

    Raises
    ------
    KeyError
        For an unknown scheme.
    """
    from sleeplm_core.io.position import is_coded

    v = np.atleast_2d(np.asarray(values, np.float64))
    r = np.rint(np.nan_to_num(v, nan=-1.0))
    out = np.full(v.shape, -1.0, np.float32)
    for code, name in coding(scheme).items():
        if name in RELEASED_CODES:
            out[r == code] = RELEASED_CODES[name]
    for i, window in enumerate(v):
        if not is_coded(window):
            out[i] = -1.0
    return out


def to_model_input(
    windows: np.ndarray, mask: np.ndarray, position_coding: str = "canonical"
) -> np.ndarray:
    """The released input (n, 10, T) float32 from canonical windows (n, 12, T).

    Parameters
    ----------
    windows : ndarray (n, >=10, T)
        Canonical windows in physical units (slots in ``CANONICAL_SLOTS`` order).
    mask : ndarray bool (>=10,) or (n, >=10)
        Which slots hold a real channel.
    position_coding : str
        Scheme of the recording's position channel (see :func:`coding`); canonical windows
        carry ``canonical`` (NSRR/SHHS).
    """
    import torch

    from sleeplm_core.model.signal_encoder import zscore_windows

    x = np.asarray(windows, np.float32)[:, :N_CHANNELS]
    m = np.broadcast_to(np.asarray(mask, bool)[..., :N_CHANNELS], x.shape[:2])
    z = zscore_windows(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(m.copy()))
    out = z.numpy()
    pos = position_codes(x[:, POSITION_SLOT], position_coding)
    out[:, POSITION_SLOT] = np.where(m[:, POSITION_SLOT, None], pos, 0.0)
    return np.ascontiguousarray(out, dtype=np.float32)
