"""Checks a checkpoint passes before anything is built from it (issue 13).

A checkpoint is untrusted input: its JSON may carry a string where a number belongs, a
negative or astronomically large dimension, or weights that are NaN or were swapped. These
checks turn each case into one :class:`~sleeplm_core.errors.CheckpointError` line:

* :func:`validate_meta` - types and ranges of the metadata (step, config sizes, vocabulary,
  calibration numbers, the weights' SHA-256), before a model is built;
* :func:`check_shapes` - the tensor shapes the config implies (built on PyTorch's ``meta``
  device, which allocates nothing) against the shapes the weights file holds, so a huge
  dimension is refused without trying to allocate it;
* :func:`check_weights` - the file's SHA-256 against ``meta["weights_sha256"]`` (metadata
  written before this key existed still loads) and every tensor finite.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from sleeplm_core.errors import CheckpointError

SHA_KEY: Final[str] = "weights_sha256"
"""Metadata key of the weights file's SHA-256 (hex)."""

MAX_DIM: Final[int] = 1 << 20
"""Largest integer a config field may hold (sizes, counts, lengths)."""

MAX_LAYERS: Final[int] = 256
"""Largest count of layers or heads (building even an empty layer costs time)."""

MAX_VOCAB: Final[int] = 1 << 20
"""Largest caption vocabulary."""

_NUMBER_KEYS: Final = frozenset(
    {"match_threshold", "low_ratio", "gap_s", "epoch_threshold", "mix", "tau"}
)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, hex (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def validate_meta(meta: Mapping[str, Any], path: str | Path) -> None:
    """Check types and ranges of a checkpoint's metadata.

    Parameters
    ----------
    meta : mapping
        The parsed JSON.
    path : str or Path
        The metadata file, for the message.

    Raises
    ------
    CheckpointError
        Naming the first key that is wrong.
    """

    def bad(key: str, problem: str) -> CheckpointError:
        return CheckpointError(path, f"metadata {key}: {problem}")

    step = meta.get("step", 0)
    if not _is_int(step) or not 0 <= step <= 10**12:
        raise bad("step", f"{step!r} is not a step number")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise bad("config", f"expected an object, got {type(config).__name__}")
    _check_ints(config, "config", bad)
    vocab = meta.get("vocab")
    if vocab is not None:
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise bad("vocab", "expected a list of strings")
        if len(vocab) > MAX_VOCAB:
            raise bad("vocab", f"{len(vocab)} entries (at most {MAX_VOCAB})")
    calib = meta.get("calibration")
    if calib is not None:
        _check_calibration(calib, "calibration", bad)
    sha = meta.get(SHA_KEY)
    if sha is not None and not (isinstance(sha, str) and _HEX64.fullmatch(sha)):
        raise bad(SHA_KEY, "expected 64 hex digits")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ints(node: Mapping[str, Any], key: str, bad: Any) -> None:
    """Every integer in the config tree is in ``0 .. MAX_DIM`` (types: ``config_from_dict``)."""
    for k, v in node.items():
        here = f"{key}.{k}"
        if isinstance(v, dict):
            _check_ints(v, here, bad)
        elif _is_int(v) and not (0 <= v <= MAX_DIM):
            raise bad(here, f"{v} is outside 0..{MAX_DIM}")
        elif _is_int(v) and (k.endswith("layers") or k.endswith("heads")) and v > MAX_LAYERS:
            raise bad(here, f"{v} is more than {MAX_LAYERS}")
        elif isinstance(v, float) and not math.isfinite(v):
            raise bad(here, f"{v} is not a finite number")


def _check_calibration(node: Any, key: str, bad: Any) -> None:
    if not isinstance(node, dict):
        raise bad(key, f"expected an object, got {type(node).__name__}")
    for k, v in node.items():
        here = f"{key}.{k}"
        if isinstance(v, dict):
            _check_calibration(v, here, bad)
        elif k in _NUMBER_KEYS:
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise bad(here, f"{v!r} is not a finite number")
            if abs(v) > 1e6:
                raise bad(here, f"{v!r} is out of range")
        elif k in {"single_eeg", "per_type", "query_expansion"} and v is not None:
            raise bad(here, f"expected an object, got {type(v).__name__}")


def check_shapes(model_on_meta: Any, shapes: Mapping[str, tuple[int, ...]], path: Path) -> None:
    """Compare the shapes a config implies with those in the weights file.

    Parameters
    ----------
    model_on_meta : SleepLM
        The model built on the ``meta`` device (no memory).
    shapes : mapping
        Tensor name → shape, from the safetensors header.
    path : Path
        The weights file, for the message.

    Raises
    ------
    CheckpointError
        When a weight the config needs is absent or of another shape.
    """
    wanted = {k: tuple(v.shape) for k, v in model_on_meta.checkpoint_state_dict().items()}
    for name, shape in wanted.items():
        have = shapes.get(name)
        if have is None:
            raise CheckpointError(path, f"the config needs weight {name}, the file lacks it")
        if tuple(have) != shape:
            raise CheckpointError(
                path, f"weight {name} is {tuple(have)} in the file, the config says {shape}"
            )


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes from a safetensors header, without reading the tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(path, f"not a readable safetensors file ({exc})") from None


def build_on_meta(build: Any) -> Any:
    """Run ``build()`` with PyTorch's ``meta`` device as default: shapes only, no memory."""
    import torch

    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")  # loading frozen weights into meta tensors is a no-op
        return build()


def check_weights(tensors: Mapping[str, Any], meta: Mapping[str, Any], path: Path) -> str:
    """Refuse weights that do not match their recorded SHA-256 or are not finite.

    Returns
    -------
    str
        The weights file's SHA-256 (computed also when the metadata has none: it keys the
        embedding caches).

    Raises
    ------
    CheckpointError
        Naming the first problem.
    """
    import torch

    sha = meta.get(SHA_KEY)
    actual = file_sha256(path)
    if sha is not None and actual != sha:
        raise CheckpointError(path, "the weights do not match the SHA-256 in their metadata")
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(path, f"weight {name} holds NaN or infinite values")
    return actual
