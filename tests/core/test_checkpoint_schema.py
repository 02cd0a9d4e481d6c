"""Issue 13, item 2/4: a checkpoint with wrong metadata or bad weights is one CheckpointError.

Each case once raised ValueError, AttributeError or TypeError, tried to allocate 160 GB, or
staged every epoch as ``W nan``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from sleeplm_core.errors import CheckpointError
from sleeplm_core.inference import Predictor
from sleeplm_core.model.config import config_from_dict
from sleeplm_core.model.sleeplm import SleepLM
from sleeplm_core.model.tokenizer import CaptionTokenizer
from sleeplm_core.train import checkpoint as ckpt
from sleeplm_core.train.meta_schema import SHA_KEY, file_sha256
from tests.core.test_model import micro_config_dict

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    cfg = config_from_dict(micro_config_dict())
    model = SleepLM(cfg, CaptionTokenizer.from_corpus(["stage N2, no events", "stage W"]))
    out = tmp_path_factory.mktemp("ckpt")
    meta = {"config": cfg.to_dict(), "vocab": model.tokenizer.tokens}
    ckpt.save_checkpoint(out, 3, model.checkpoint_state_dict(), None, meta)
    return out


def _copy(saved: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    out = tmp_path / "ck"
    shutil.copytree(saved, out)
    meta_path = out / "meta_000003.json"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))
    return out


def test_saved_meta_holds_the_weights_sha256(saved: Path) -> None:
    meta = json.loads((saved / "meta_000003.json").read_text())
    assert meta[SHA_KEY] == file_sha256(saved / "model_000003.safetensors")
    model, _ = ckpt.load_model(saved)
    assert model is not None


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(meta: dict[str, Any]) -> None:
        node = meta
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return edit


BAD_META = {
    "string calibration": _set("calibration", "high"),
    "list calibration": _set("calibration", [0.5]),
    "string threshold": _set("calibration", {"match_threshold": "0.8"}),
    "nan threshold": _set("calibration", {"match_threshold": float("nan")}),
    "list single_eeg": _set("calibration", {"single_eeg": [1]}),
    "list config": _set("config", [1, 2]),
    "negative width": _set("config.signal.width", -8),
    "huge width": _set("config.signal.width", 1 << 19),  # 160 GB were attempted
    "huge layers": _set("config.signal.layers", 100_000),
    "huge embed_dim": _set("config.embed_dim", 10**12),
    "string step": _set("step", "three"),
    "vocab of numbers": _set("vocab", [1, 2, 3]),
    "bad sha": _set(SHA_KEY, "xyz"),
    "other sha": _set(SHA_KEY, "0" * 64),
}


@pytest.mark.parametrize("case", sorted(BAD_META))
def test_bad_metadata_is_one_checkpoint_error(saved: Path, tmp_path: Path, case: str) -> None:
    out = _copy(saved, tmp_path, BAD_META[case])
    with pytest.raises(CheckpointError) as info:
        Predictor.load(out, device="cpu")
    assert "\n" not in info.value.one_line()


def test_nan_weights_are_refused(saved: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    out = tmp_path / "ck"
    shutil.copytree(saved, out)
    weights = out / "model_000003.safetensors"
    tensors = load_file(str(weights))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(weights), {"format": ckpt.FORMAT})
    meta_path = out / "meta_000003.json"
    meta = json.loads(meta_path.read_text())
    del meta[SHA_KEY]  # an old meta without a hash: the finite check alone refuses it
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="NaN"):
        ckpt.load_model(out)
    meta[SHA_KEY] = "0" * 64  # with a (stale) hash, the hash refuses it first
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="SHA-256"):
        ckpt.load_model(out)


def test_old_meta_without_sha_still_loads(saved: Path, tmp_path: Path) -> None:
    out = _copy(saved, tmp_path, lambda meta: meta.pop(SHA_KEY))
    model, meta = ckpt.load_model(out)
    assert model is not None  # and the hash is computed: it keys the embedding caches
    assert meta[SHA_KEY] == file_sha256(out / "model_000003.safetensors")


def test_corrupt_checkpoint_corpus(saved: Path, tmp_path: Path) -> None:
    """40 seeded corruptions of the weights and metadata files: each a CheckpointError."""
    import numpy as np

    from sleeplm_core.errors import SleepLMError

    rng = np.random.default_rng(38)
    weights = (saved / "model_000003.safetensors").read_bytes()
    meta = (saved / "meta_000003.json").read_bytes()
    outcomes = {"refused": 0, "loaded": 0}
    for i in range(40):
        out = tmp_path / f"c{i}"
        shutil.copytree(saved, out)
        target = ("model_000003.safetensors", "meta_000003.json")[i % 2]
        data = bytearray(weights if i % 2 == 0 else meta)
        how = i // 2 % 4
        if how == 0:  # truncated
            data = data[: int(rng.integers(0, len(data)))]
        elif how == 1:  # bytes flipped in the first 2 KiB (the safetensors header, the JSON)
            for pos in rng.integers(0, min(len(data), 2048), 4):
                data[int(pos)] ^= int(rng.integers(1, 256))
        elif how == 2:  # bytes flipped anywhere (tensor data: the SHA-256 refuses them)
            for pos in rng.integers(0, len(data), 8):
                data[int(pos)] ^= int(rng.integers(1, 256))
        else:  # a number in the text replaced by a huge one
            data = bytearray(bytes(data).replace(b"16", b"99999999999", 1))
        (out / target).write_bytes(bytes(data))
        try:
            ckpt.load_model(out)
        except CheckpointError as exc:
            assert "\n" not in exc.one_line()
            outcomes["refused"] += 1
            continue
        except SleepLMError as exc:  # pragma: no cover - the wrong error class
            raise AssertionError(f"corruption {i}: {type(exc).__name__}") from exc
        outcomes["loaded"] += 1  # a harmless change (e.g. a flipped byte in a JSON string)
    print(f"corrupt checkpoints: {outcomes}")
    assert outcomes["refused"] >= 30
