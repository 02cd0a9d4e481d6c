"""Few-shot sleep-stage heads: a tiny linear layer fitted on K labelled epochs per stage.

The signal tower stays frozen. A head maps L2-normalised epoch embeddings (n, E) to stage
logits, ``logits = embeddings @ weight.T + bias``, and its softmax replaces the zero-shot text
prompts of :meth:`sleeplm_core.inference.Predictor.stage`.

Methods
-------
==============  =========================================================================
``prototype``   each stage's row is the normalised mean of its support embeddings, scaled
                by 10 (cosine nearest prototype)
``logistic``    a logistic-regression probe on the support embeddings (Adam, 300 full-batch
                steps; ``linear`` is accepted as its older name)
==============  =========================================================================

A stage without support epochs gets a zero row and a bias of -1e4, so its probability is 0.

On disk a head is ``fewshot_head.safetensors`` (``weight`` float32 (S, E), ``bias`` float32 (S,),
with ``stages``, ``k`` and ``method`` in the safetensors metadata), written by ``sleeplm fewshot``
next to ``fewshot_head.json``. Heads written before the metadata existed take ``stages``, ``k``
and ``method`` from that JSON file.

This module needs numpy and safetensors only: no torch, no Qt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from sleeplm_core.errors import CheckpointError, SleepLMError
from sleeplm_core.io.atomic import atomic_write_bytes
from sleeplm_core.stages import SCORED_STAGES

__all__ = [
    "HEAD_FILE",
    "INFO_FILE",
    "METHODS",
    "FewShotHead",
    "canonical_method",
    "fit_head",
    "fit_weights",
    "head_file",
    "stage_labels",
]

HEAD_FILE = "fewshot_head.safetensors"
INFO_FILE = "fewshot_head.json"
METHODS: tuple[str, ...] = ("prototype", "logistic")
FORMAT = "sleeplm-fewshot-head/1"
SCALE = 10.0
"""Inverse temperature of both heads (embeddings and prototypes have unit length)."""
NO_SUPPORT_BIAS = -1e4
"""Bias of a stage without support epochs: its softmax probability underflows to 0."""
_ALIASES = {"linear": "logistic"}


def canonical_method(method: str) -> str:
    """``"prototype"`` or ``"logistic"`` (``"linear"`` is the CLI's older name for the latter).

    Raises
    ------
    SleepLMError
        For any other method.
    """
    name = _ALIASES.get(method, method)
    if name not in METHODS:
        raise SleepLMError(None, f"unknown few-shot method {method!r} (prototype or logistic)")
    return name


def head_file(path: str | PathLike[str]) -> Path:
    """The head file itself: ``path``, or ``path/fewshot_head.safetensors`` for a directory."""
    p = Path(path)
    return p / HEAD_FILE if p.is_dir() else p


@dataclass(frozen=True, eq=False)
class FewShotHead:
    """A fitted few-shot stage head (plain numpy: no torch).

    Attributes
    ----------
    weight : ndarray, float32 (S, E)
        One row per stage of ``stages``; read-only.
    bias : ndarray, float32 (S,)
        Read-only.
    stages : tuple of str
        The stage of each row, a subset of W, N1, N2, N3, REM.
    k : int
        Labelled epochs per stage the head was fitted with (the most any stage had).
    method : str
        ``"prototype"`` or ``"logistic"``.

    Raises
    ------
    ValueError
        When the shapes or stages do not fit together.
    """

    weight: np.ndarray
    bias: np.ndarray
    stages: tuple[str, ...] = SCORED_STAGES
    k: int = 0
    method: str = "prototype"

    def __post_init__(self) -> None:
        weight = np.array(self.weight, dtype=np.float32)
        bias = np.array(self.bias, dtype=np.float32)
        stages = tuple(str(s) for s in self.stages)
        if weight.ndim != 2 or weight.shape[0] == 0 or weight.shape[1] == 0:
            raise ValueError(f"weight must be a non-empty (S, E) matrix, got {weight.shape}")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias shape {bias.shape} does not fit weight {weight.shape}")
        if len(stages) != weight.shape[0]:
            raise ValueError(f"{len(stages)} stages for a head of {weight.shape[0]} rows")
        if len(set(stages)) != len(stages) or not set(stages) <= set(SCORED_STAGES):
            raise ValueError(f"stages must be distinct ones of {SCORED_STAGES}, got {stages}")
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ValueError("weight and bias must be finite")
        weight.setflags(write=False)
        bias.setflags(write=False)
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", bias)
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "k", int(self.k))
        object.__setattr__(self, "method", str(self.method))

    @property
    def embed_dim(self) -> int:
        """E, the embedding size the head expects."""
        return int(self.weight.shape[1])

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Stage logits float32 (n, S), columns in the order of :attr:`stages`.

        Raises
        ------
        SleepLMError
            When the embeddings are not (n, E) with the head's E.
        """
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.embed_dim:
            raise SleepLMError(
                None,
                f"the few-shot head expects {self.embed_dim}-dimensional embeddings, got shape "
                f"{emb.shape} (fit the head with the same model)",
            )
        out: np.ndarray = emb @ self.weight.T + self.bias
        return out

    def proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Softmax probabilities float64 (n, 5), columns W, N1, N2, N3, REM.

        A stage that is not a row of the head, or has no support (bias -1e4), gets 0.
        """
        logits = self.logits(embeddings).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        out = np.zeros((p.shape[0], len(SCORED_STAGES)))
        out[:, [SCORED_STAGES.index(s) for s in self.stages]] = p
        return out

    def predict(self, embeddings: np.ndarray) -> list[str]:
        """The most probable stage of each embedding."""
        return [SCORED_STAGES[int(i)] for i in self.proba(embeddings).argmax(axis=1)]

    # ------------------------------------------------------------------ files
    def save(self, path: str | PathLike[str]) -> Path:
        """Write the head atomically to ``path`` (a directory gets ``fewshot_head.safetensors``).

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        CheckpointError
            When the file cannot be written.
        """
        from safetensors.numpy import save

        target = head_file(path)
        metadata = {
            "format": FORMAT,
            "stages": json.dumps(list(self.stages)),
            "k": str(self.k),
            "method": self.method,
        }
        tensors = {
            "weight": np.ascontiguousarray(self.weight),
            "bias": np.ascontiguousarray(self.bias),
        }
        atomic_write_bytes(target, save(tensors, metadata=metadata), error=CheckpointError)
        return target

    @classmethod
    def load(cls, path: str | PathLike[str], embed_dim: int | None = None) -> FewShotHead:
        """Read a head written by :meth:`save` or ``sleeplm fewshot``.

        Parameters
        ----------
        path : str or PathLike
            ``fewshot_head.safetensors`` or the directory that holds it.
        embed_dim : int, optional
            The embedding size of the model the head will be used with; checked when given.

        Raises
        ------
        CheckpointError
            One line naming the file: missing, unreadable, corrupt, or of other dimensions.
        """
        target = head_file(path)
        if not target.is_file():
            raise CheckpointError(target, "no few-shot head here (make one with `sleeplm fewshot`)")
        tensors, meta = _read_tensors(target)
        info = meta if "stages" in meta else _sidecar_info(target)
        try:
            stages = _stages_of(info.get("stages"), tensors["weight"])
            head = cls(
                tensors["weight"],
                tensors["bias"],
                stages,
                int(info.get("k", 0)),
                canonical_method(str(info.get("method", "prototype"))),
            )
        except (ValueError, TypeError, SleepLMError) as exc:
            problem = exc.problem if isinstance(exc, SleepLMError) else str(exc)
            raise CheckpointError(target, f"not a valid few-shot head: {problem}") from None
        if embed_dim is not None and head.embed_dim != embed_dim:
            raise CheckpointError(
                target,
                f"few-shot head for {head.embed_dim}-dimensional embeddings, but the model "
                f"gives {embed_dim} (fit the head with the same checkpoint)",
            )
        return head


def _read_tensors(target: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``weight``, ``bias`` and the metadata of a safetensors file, as one-line errors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(target), framework="np") as f:
            meta = dict(f.metadata() or {})
            keys = set(f.keys())
            missing = {"weight", "bias"} - keys
            if missing:
                raise CheckpointError(
                    target, f"not a few-shot head: no {', '.join(sorted(missing))} tensor"
                )
            tensors = {k: np.asarray(f.get_tensor(k)) for k in ("weight", "bias")}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(target, f"corrupt few-shot head ({problem})") from None
    return tensors, meta


def _sidecar_info(target: Path) -> dict[str, Any]:
    """``stages``, ``k`` and ``method`` from ``fewshot_head.json`` beside an older head file."""
    side = target.with_name(INFO_FILE)
    if not side.is_file():
        return {}
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(side, f"unreadable few-shot head description ({exc})") from None
    return info if isinstance(info, dict) else {}


def _stages_of(value: Any, weight: np.ndarray) -> tuple[str, ...]:
    """The stages from metadata (a JSON list) or a JSON file (a list); default: all five."""
    if value is None:
        rows = weight.shape[0] if weight.ndim else 0
        if rows != len(SCORED_STAGES):
            raise ValueError(f"{rows} rows and no stage names (expected {len(SCORED_STAGES)})")
        return SCORED_STAGES
    stages = json.loads(value) if isinstance(value, str) else value
    if not isinstance(stages, list):
        raise ValueError(f"stages must be a list, got {stages!r}")
    return tuple(str(s) for s in stages)


# ---------------------------------------------------------------------- fitting
def stage_labels(stages: Sequence[str]) -> np.ndarray:
    """Row index in W, N1, N2, N3, REM of each label; -1 for anything else (ART, UNS, ...)."""
    index = {s: i for i, s in enumerate(SCORED_STAGES)}
    return np.array([index.get(str(s), -1) for s in stages], dtype=np.int64)


def fit_weights(
    embeddings: np.ndarray, labels: np.ndarray, n_classes: int, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Head ``(weight float32 (S, E), bias float32 (S,))`` from support embeddings and labels.

    Parameters
    ----------
    embeddings : ndarray, float (n, E)
        L2-normalised support embeddings.
    labels : ndarray, int (n,)
        Class of each row, ``0 <= label < n_classes``.
    n_classes : int
        S, the number of rows of the head.
    method : str
        ``"prototype"`` or ``"logistic"`` (``"linear"``).

    Notes
    -----
    A class without support gets a zero row and bias :data:`NO_SUPPORT_BIAS`.
    """
    method = canonical_method(method)
    emb = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if emb.ndim != 2 or y.shape != (emb.shape[0],):
        raise SleepLMError(None, f"embeddings {emb.shape} and labels {y.shape} do not match")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise SleepLMError(None, f"labels must lie in 0..{n_classes - 1}")
    present = np.bincount(y, minlength=n_classes)[:n_classes] > 0
    if method == "prototype":
        weight = np.zeros((n_classes, emb.shape[1]))
        for c in np.flatnonzero(present):
            mean = emb[y == c].mean(0)
            weight[c] = SCALE * mean / max(float(np.linalg.norm(mean)), 1e-12)
        bias = np.zeros(n_classes)
    else:
        weight, bias = _logistic(emb, y, n_classes)
    weight[~present] = 0.0
    bias[~present] = NO_SUPPORT_BIAS
    return weight.astype(np.float32), bias.astype(np.float32)


def _logistic(
    emb: np.ndarray, y: np.ndarray, n_classes: int, steps: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression, ``logits = SCALE * emb @ w.T + b``, by full-batch Adam.

    Adam with lr 0.1 and L2 weight decay 1e-3 (as ``torch.optim.Adam``); returns
    ``(SCALE * w, b)`` so that the head is ``emb @ weight.T + bias``.
    """
    lr, beta1, beta2, eps, decay = 0.1, 0.9, 0.999, 1e-8, 1e-3
    params = [np.zeros((n_classes, emb.shape[1])), np.zeros(n_classes)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(n_classes)[y]
    for t in range(1, steps + 1):
        w, b = params
        logits = SCALE * emb @ w.T + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / len(y)  # d(mean cross-entropy)/d(logits)
        grads = [SCALE * g.T @ emb + decay * w, g.sum(0) + decay * b]
        for i, grad in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * grad
            v[i] = beta2 * v[i] + (1 - beta2) * grad**2
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return SCALE * params[0], params[1]


def fit_head(
    embeddings: np.ndarray,
    stages: Sequence[str],
    method: str = "prototype",
    *,
    k: int | None = None,
) -> FewShotHead:
    """Fit a head on labelled epoch embeddings.

    Parameters
    ----------
    embeddings : ndarray, float (n, E)
        L2-normalised epoch embeddings.
    stages : sequence of str, length n
        The scored stage of each epoch; labels other than W, N1, N2, N3, REM (ART, UNS, ...)
        are ignored.
    method : str
        ``"prototype"`` (default) or ``"logistic"``.
    k : int, optional
        Epochs per stage to record in the head; by default the most any stage has.

    Returns
    -------
    FewShotHead
        Five rows, W, N1, N2, N3, REM; a stage without support gets probability 0.

    Raises
    ------
    SleepLMError
        When no epoch has a scored stage, or the shapes do not match.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    labels = stage_labels(stages)
    if emb.ndim != 2 or emb.shape[0] != labels.shape[0]:
        raise SleepLMError(None, f"{len(labels)} stage labels for embeddings of shape {emb.shape}")
    keep = labels >= 0
    if not keep.any():
        raise SleepLMError(
            None, "no scored epoch (W, N1, N2, N3, REM) among the labels: nothing to fit"
        )
    weight, bias = fit_weights(emb[keep], labels[keep], len(SCORED_STAGES), method)
    counts = np.bincount(labels[keep], minlength=len(SCORED_STAGES))
    return FewShotHead(
        weight,
        bias,
        SCORED_STAGES,
        int(counts.max()) if k is None else int(k),
        canonical_method(method),
    )
