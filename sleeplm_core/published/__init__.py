"""The published SleepLM-Base family (yang-ai-lab/SleepLM, MIT): a parity-proven port.

``from sleeplm_core.published import PublishedSleepLM`` gives the notebook API
(:mod:`.api`); ``Predictor.load(DIR)`` gives the product's inference contract for an imported
checkpoint (:mod:`.predictor`). Modules: ``config`` (the authors' config JSON), ``model``
(signal tower, text tower, decoder), ``generation``, ``tokenizer``, ``preprocess``,
``checkpoint`` and ``convert`` (the one-time ``.pt`` import), ``hub`` (download).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sleeplm_core.published.api import PublishedSleepLM

__all__ = ["PublishedSleepLM"]


def __getattr__(name: str) -> Any:
    if name == "PublishedSleepLM":  # torch loads only when the API is used
        from sleeplm_core.published.api import PublishedSleepLM

        return PublishedSleepLM
    raise AttributeError(name)
