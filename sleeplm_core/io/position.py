"""Body-position codes: what the integers of a position channel mean.

The table ``resources/position_codes.csv`` names the codes of each scheme; the model's
canonical POSITION slot uses the ``canonical`` scheme (NSRR/SHHS: 0 right, 1 supine, 2 left,
3 prone). A code no row names is *unknown*: :func:`describe_codes` says so, and
:func:`mask_unknown` turns it into -1 before the model or the captions see it, so a vendor's
code 9 is never read as a position.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import NDArray

from sleeplm_core.errors import ConfigError
from sleeplm_core.resources import resource_path

__all__ = ["UNKNOWN", "describe_codes", "is_coded", "mask_unknown", "position_table"]

UNKNOWN: Final = "unknown"


@lru_cache(maxsize=1)
def position_table() -> dict[str, dict[int, str]]:
    """Return ``{scheme: {code: position}}`` from the bundled table."""
    src = resource_path("position_codes.csv")
    lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    out: dict[str, dict[int, str]] = {}
    for i, row in enumerate(csv.DictReader(lines), start=2):
        try:
            out.setdefault(row["scheme"].strip(), {})[int(row["code"])] = row["position"].strip()
        except (KeyError, ValueError, AttributeError):
            problem = f"row {i}: needs scheme, an integer code and a position"
            raise ConfigError(src, problem) from None
    return out


def is_coded(x: NDArray[np.floating]) -> bool:
    """Whether a position signal holds codes (90 % of its finite samples whole numbers)."""
    finite = x[np.isfinite(x)]
    return bool(finite.size) and bool(np.mean(np.abs(finite - np.round(finite)) < 0.1) >= 0.9)


def describe_codes(x: NDArray[np.floating], scheme: str = "canonical") -> dict[int, str] | None:
    """Name every code that occurs in a position signal (``None`` when it is not coded).

    >>> describe_codes(np.array([1.0, 1.0, 2.0, 9.0]))
    {1: 'supine', 2: 'left', 9: 'unknown'}
    """
    if not is_coded(x):
        return None
    names = position_table()[scheme]
    codes = np.unique(np.round(x[np.isfinite(x)]).astype(int))
    return {int(c): names.get(int(c), UNKNOWN) for c in codes}


def mask_unknown(x: NDArray[np.floating], scheme: str = "canonical") -> NDArray[np.floating]:
    """Return a coded position signal with codes the scheme does not know set to -1.

    A signal that is not coded (a raw sensor voltage or angle) is returned unchanged.
    """
    if not is_coded(x):
        return x
    known = np.array(sorted(position_table()[scheme]), dtype=float)
    out = x.copy()
    out[np.isfinite(x) & ~np.isin(np.round(x), known)] = -1.0
    return out
