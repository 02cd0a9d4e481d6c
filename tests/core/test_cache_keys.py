"""Issue 13, item 5: no stale model output from the embedding caches.

The caches are keyed by the weights' SHA-256 and the tower's settings (not ``name@step``), the
recording's whole content, and the preprocessing version; writes are atomic; a corrupt cache
is replaced.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from sleeplm_core import embedding_cache as ec
from sleeplm_core.io.recording import Recording
from tests.core.test_inference import _count_reads, micro_checkpoint_in, small_night

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return micro_checkpoint_in(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Any:
    from sleeplm_core.inference import Predictor

    return Predictor.load(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def twin(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Another checkpoint with the same config name and step but other weights."""
    from safetensors.torch import load_file, save_file

    from sleeplm_core.inference import Predictor

    out = tmp_path_factory.mktemp("twin") / "ckpt"
    shutil.copytree(checkpoint, out)
    (weights,) = out.glob("model_*.safetensors")
    tensors = load_file(str(weights))
    gen = torch.Generator().manual_seed(1)
    for k, v in tensors.items():
        if v.is_floating_point() and v.ndim == 2:
            tensors[k] = v + 0.05 * torch.randn(v.shape, generator=gen)
    save_file(tensors, str(weights), {"format": "sleeplm-checkpoint/1"})
    (meta_path,) = out.glob("meta_*.json")
    meta = json.loads(meta_path.read_text())
    meta.pop("weights_sha256", None)  # as an old checkpoint: the hash is computed at load
    meta_path.write_text(json.dumps(meta))
    return Predictor.load(out, device="cpu")


@pytest.fixture(scope="module")
def merged(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The same weights, run with token merging (another tower setting, no other parameter)."""
    from sleeplm_core.inference import Predictor

    out = tmp_path_factory.mktemp("merged") / "ckpt"
    shutil.copytree(checkpoint, out)
    (meta_path,) = out.glob("meta_*.json")
    meta = json.loads(meta_path.read_text())
    meta["config"]["signal"].update(merge_size=2, merge_from=0)  # the micro tower: 1 block
    meta_path.write_text(json.dumps(meta))
    return Predictor.load(out, device="cpu")


@pytest.mark.parametrize("other_name", ["twin", "merged"])
def test_same_name_and_step_other_computation_do_not_share_embeddings(
    predictor: Any,
    other_name: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Other weights (twin), or the same weights with token merging (merged), are another key."""
    other_model = request.getfixturevalue(other_name)
    assert predictor.model_id == other_model.model_id
    assert predictor.weights_id != other_model.weights_id
    if other_name == "merged":  # same weights: only the tower's settings tell them apart
        assert other_model.weights_id[:16] == predictor.weights_id[:16] != ""
    night = small_night(tmp_path / "n")
    with Recording.open(night) as rec:
        first = predictor.embed_recording(rec)
        calls = _count_reads(rec, monkeypatch)
        other = other_model.embed_recording(rec)
        assert calls, f"the {other_name}'s embeddings must be computed, not read from the cache"
        fresh = other_model.embed_recording(rec, use_cache=False)
        calls.clear()
        again = predictor.embed_recording(rec)  # both are cached side by side
        assert calls == []
    np.testing.assert_allclose(other.embeddings, fresh.embeddings, atol=1e-5)
    assert not np.allclose(other.embeddings, first.embeddings, atol=1e-4)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)


def test_a_changed_byte_anywhere_makes_the_cache_stale(
    predictor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    night = small_night(tmp_path / "n")
    with Recording.open(night) as rec:
        predictor.embed_recording(rec)
    # one sample outside the 16 x 64 KiB the old fingerprint read; the size stays the same
    data = bytearray(night.read_bytes())
    pos = len(data) // 2 + 12_345
    data[pos] ^= 0x01
    night.write_bytes(bytes(data))
    assert ec.state(ec.cache_path(night), night, "x") == "stale"
    with Recording.open(night) as rec:
        calls = _count_reads(rec, monkeypatch)
        predictor.embed_recording(rec)
    assert calls, "a changed recording must not keep its embeddings"


def test_an_identical_copy_with_another_time_finds_the_cache(
    predictor: Any, tmp_path: Path
) -> None:
    night = small_night(tmp_path / "n")
    with Recording.open(night) as rec:
        emb = predictor.embed_recording(rec)
    os.utime(night, ns=(1_000_000_000, 1_000_000_000))  # same bytes, other time: hashed again
    hit = ec.load(night, predictor.model_id, emb.window_s, 15.0, predictor.weights_id)
    assert hit is not None


def test_corrupt_dense_cache_is_replaced(predictor: Any, tmp_path: Path) -> None:
    night = small_night(tmp_path / "n")
    with Recording.open(night) as rec:
        predictor.embed_recording(rec)
    dense = ec.dense_path(night)
    dense.write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    with Recording.open(night) as rec:
        predictor.embed_recording(rec)
    with h5py.File(dense, "r") as f:  # readable again, with this model's group
        assert ec.dense_key(predictor.model_id, 15.0, predictor.weights_id) in f
    assert not list(dense.parent.glob(".*.tmp"))


def test_cache_files_have_the_sidecars_permissions(predictor: Any, tmp_path: Path) -> None:
    from sleeplm_core.io.annotations import Annotation, write_csv

    night = small_night(tmp_path / "n")
    with Recording.open(night) as rec:
        predictor.embed_recording(rec)
    side = night.with_name("night.sleepviewer.csv")
    write_csv([Annotation(1.0, 1.0, "Arousal")], side)
    files = (ec.cache_path(night), ec.dense_path(night), side)
    modes = {p.name: p.stat().st_mode & 0o777 for p in files}
    assert len(set(modes.values())) == 1, modes


def test_preprocessing_version_is_part_of_the_key(predictor: Any, tmp_path: Path) -> None:
    night = small_night(tmp_path / "n")
    with Recording.open(night) as rec:
        predictor.embed_recording(rec)
    with h5py.File(ec.cache_path(night), "r+") as f:
        f.attrs["preprocessing"] = "canonical-64Hz/1"
    key = ec.window_key(predictor.model_id, 30.0, 15.0, predictor.weights_id)
    assert ec.state(ec.cache_path(night), night, key) == "stale"


def test_rewriting_a_group_leaves_no_dead_bytes(tmp_path: Path) -> None:
    """A night's dense track saved again replaces the old bytes, with other groups kept."""
    night = small_night(tmp_path / "n")
    onsets = np.arange(40) * 15.0
    features = np.random.default_rng(0).standard_normal((40, 120, 64)).astype(np.float16)
    ec.save_dense(night, "m@1", 30.0, onsets, features)  # another stride: kept throughout
    ec.save_dense(night, "m@1", 15.0, onsets, features)
    size = ec.dense_path(night).stat().st_size
    for _ in range(3):
        ec.save_dense(night, "m@1", 15.0, onsets, features)
    assert ec.dense_path(night).stat().st_size == size
    assert size < 2.2 * features.nbytes  # two tracks, nothing more
    for stride in (15.0, 30.0):
        found = ec.load_dense(night, "m@1", stride)
        assert found is not None and np.array_equal(found[1], features)
