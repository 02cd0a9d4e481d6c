"""What the evaluation suites share: result rows, options, the model slot and its protocols.

:mod:`sleeplm_core.eval.suites` (the registry and the DREAMS suite),
:mod:`~sleeplm_core.eval.synthetic` and :mod:`~sleeplm_core.eval.grounding_eval` build on this
module, so none of them imports another (no import circle).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np

from sleeplm_core.errors import SleepLMError

COLUMNS: Final[tuple[str, ...]] = ("SleepLM", "YASA", "experts", "DREAMS-auto")
"""Value columns of a suite table, between ``metric`` and ``n``."""

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
