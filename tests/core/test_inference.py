"""Predictor behaviour on a micro checkpoint: the embedding cache, bad queries, partial montages,
and that only plain dataclasses of Python/numpy values come out.

The checkpoint is trained here (2 steps of a micro config, about 20 s once per test session,
shared by ``test_inference_cli.py`` and ``test_eval_synthetic.py`` through the session's base
temporary folder); the bundled model is never needed.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from sleeplm_core import embedding_cache
from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.edf_writer import SignalSpec, write_edf
from sleeplm_core.io.recording import Recording
from tests.core.test_model import micro_config_file

NIGHT_SEED = 10_500


# --- shared helpers (imported by the other inference test modules) --------------------------


def micro_checkpoint_in(base: Path) -> Path:
    """Train (once per session) a 2-step micro checkpoint under ``base``; return its folder."""
    from sleeplm_core.cli.main import main

    out = base / "micro-ckpt"
    if not list(out.glob("meta_*.json")):
        cfg = micro_config_file(base)
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            argv = ["train", "--config", str(cfg), "--synthetic", "1", "--epochs-per-night", "8",
                    "--steps", "2", "--out", str(out), "--no-progress"]  # fmt: skip
            assert main(argv) == 0
        finally:
            torch.set_num_threads(before)
    return out


def small_night(folder: Path, *, hours: float = 0.1, **settings: Any) -> Path:
    """A short synthetic night (EDF + XML) in ``folder``; returns the EDF path."""
    from sleeplm_core.synth import generate_night, write_night

    folder.mkdir(parents=True, exist_ok=True)
    edf = folder / "night.edf"
    if not edf.exists():
        night = generate_night(hours=hours, seed=NIGHT_SEED, ahi=30.0, **settings)
        write_night(night, edf)
    return edf


def tiny_edf(path: Path, channels: list[tuple[str, str, float]], seconds: float) -> Path:
    """An EDF of noise channels ``(name, type, sf)`` lasting ``seconds`` (whole seconds)."""
    rng = np.random.default_rng(0)
    signals = [
        SignalSpec(name, ctype, sf, "uV", rng.normal(0.0, 20.0, int(seconds * sf)))
        for name, ctype, sf in channels
    ]
    write_edf(path, signals, [], start=datetime(2024, 1, 1, 22, 0, 0))
    return path


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return micro_checkpoint_in(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Any:
    from sleeplm_core.inference import Predictor

    torch.set_num_threads(1)
    return Predictor.load(checkpoint, device="cpu")


@pytest.fixture
def night(tmp_path: Path) -> Path:
    return small_night(tmp_path / "night")


def _count_reads(rec: Recording, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Count signal reads of ``rec``: embedding computes from them, a cache hit reads none."""
    calls: list[float] = []
    real = rec.canonical

    def counting(start_s: float, stop_s: float) -> Any:
        calls.append(start_s)
        return real(start_s, stop_s)

    monkeypatch.setattr(rec, "canonical", counting)
    return calls


# --- the embedding cache ---------------------------------------------------------------------


def test_cache_hit_skips_the_model(
    predictor: Any, night: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Recording.open(night) as rec:
        calls = _count_reads(rec, monkeypatch)
        first = predictor.embed_recording(rec)
        assert calls and embedding_cache.cache_path(night).is_file()
        calls.clear()
        second = predictor.embed_recording(rec)
    assert calls == []
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    np.testing.assert_array_equal(first.onsets_s, second.onsets_s)
    assert second.model == predictor.model_id


@pytest.mark.parametrize("damage", ["stale", "corrupt"])
def test_stale_or_corrupt_cache_is_rebuilt(
    predictor: Any, night: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    from sleeplm_core.cli.embed import cache_state

    with Recording.open(night) as rec:
        good = predictor.embed_recording(rec)
        sidecar = embedding_cache.cache_path(night)
        if damage == "stale":
            with h5py.File(sidecar, "r+") as f:
                f.attrs["fingerprint"] = "made-for-another-file"
        else:
            sidecar.write_bytes(b"\x89HDF\r\n garbage" * 10)
        assert cache_state(night, predictor.model_id, weights=predictor.weights_id) == damage
        calls = _count_reads(rec, monkeypatch)
        again = predictor.embed_recording(rec)
    assert calls, "a damaged cache must not be trusted"
    np.testing.assert_allclose(again.embeddings, good.embeddings, atol=1e-5)
    assert cache_state(night, predictor.model_id, weights=predictor.weights_id) == "valid"


# --- queries and montages --------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_a_one_line_error(predictor: Any, night: Path, query: str) -> None:
    with Recording.open(night) as rec:
        emb = predictor.embed_recording(rec)
    with pytest.raises(SleepLMError) as err:
        predictor.search(emb, query)
    assert "\n" not in err.value.one_line() and "empty" in err.value.one_line()


def test_some_modalities_only(predictor: Any, tmp_path: Path) -> None:
    path = tiny_edf(
        tmp_path / "eeg_ecg.edf", [("C3-M2", "EEG", 100.0), ("ECG", "ECG", 128.0)], 95.0
    )
    with Recording.open(path) as rec:
        emb = predictor.embed_recording(rec)
        used = rec.channels_used()
        staged = predictor.stage(emb, used)
        caps = predictor.caption(rec, 0.0, 30.0, beam=1)
    assert used == ["ECG", "C3-M2"]  # canonical slot order
    assert staged.channels_used == used
    assert len(staged.epochs) == 3  # 95 s: the partial fourth epoch is dropped
    assert {c.modality for c in caps} == {"stage_event", "brain", "heart"}
    assert int(emb.mask.sum()) == 2


def test_recording_without_usable_channel(predictor: Any, tmp_path: Path) -> None:
    path = tiny_edf(tmp_path / "light.edf", [("Light", "OTHER", 10.0)], 60.0)
    with Recording.open(path) as rec, pytest.raises(SleepLMError) as err:
        predictor.embed_recording(rec, use_cache=False)
    assert "no channel" in err.value.one_line()


# --- nothing but plain values comes out --------------------------------------------------------

_PLAIN = (str, int, float, bool, type(None), np.ndarray, np.generic)


def _assert_plain(obj: Any, where: str = "result") -> None:
    assert not isinstance(obj, torch.Tensor), f"{where} is a tensor"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _assert_plain(getattr(obj, f.name), f"{where}.{f.name}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _assert_plain(k, f"{where} key")
            _assert_plain(v, f"{where}[{k!r}]")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _assert_plain(v, f"{where}[{i}]")
    else:
        assert isinstance(obj, _PLAIN), f"{where} is a {type(obj).__name__}"
        if isinstance(obj, np.ndarray):
            assert obj.dtype != object, f"{where} holds Python objects"


def test_no_tensor_leaks(predictor: Any, night: Path) -> None:
    from sleeplm_core.inference import canonical_from_array

    with Recording.open(night) as rec:
        emb = predictor.embed_recording(rec)
        results: list[Any] = [
            emb,
            predictor.stage(emb, ["C3-M2"]),
            predictor.search(emb, "obstructive apnea", min_score=-1.0, top=3),
            predictor.search(emb, "obstructive apnea", min_score=2.0),
            predictor.caption(rec, 30.0, 60.0, modalities=["stage_event"], beam=1),
        ]
        eeg = rec.window(0.0, 120.0, ["C3-M2"])
    for r in results[:-1]:
        assert dataclasses.is_dataclass(r)
    assert all(dataclasses.is_dataclass(c) for c in results[-1])
    data, sf = eeg.data[0], eeg.sf
    stages = predictor.predict_stages(data, sf, "C3-M2")
    found = predictor.localize(data, sf, "C3-M2", "sleep spindle")
    canon, mask = canonical_from_array(data, sf, "C3-M2")
    results += [stages, found, predictor.stage_proba(emb.embeddings[:2]), canon, mask]
    for i, r in enumerate(results):
        _assert_plain(r, f"results[{i}]")
    assert stages and all(isinstance(s, str) for s in stages)
    assert all(isinstance(x, float) for row in found for x in row)


def test_cpu_bf16_switch_and_what_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from sleeplm_core.inference import Predictor
    from sleeplm_core.train.device import cpu_bf16_inference

    monkeypatch.setenv("SLEEPLM_CPU_BF16", "0")
    assert not cpu_bf16_inference()
    monkeypatch.setenv("SLEEPLM_CPU_BF16", "1")
    assert cpu_bf16_inference()
    pred = Predictor.load(device="cpu")  # the bundled model
    from sleeplm_core import sample_night

    with Recording.open(sample_night()) as rec:
        win = rec.canonical(0.0, 60 * 30.0)
    x = win.data.reshape(12, 60, 1920).transpose(1, 0, 2)  # an hour's first 60 epochs
    mask = win.mask
    pred.cpu_bf16 = False
    e32, d32 = pred.embed_windows_dense(x, mask)
    pred.cpu_bf16 = True
    e16, d16 = pred.embed_windows_dense(x, mask)
    assert e16.dtype == np.float32 and e16.shape == e32.shape
    cos = np.sum(e32 * e16, axis=1)  # both L2-normalised
    assert cos.min() > 0.999 and not np.array_equal(e32, e16), cos.min()
    # embeddings alone (no dense finish) are the same numbers
    np.testing.assert_allclose(pred.embed_windows(x, mask), e16, atol=1e-6)


def test_leaving_out_absent_slots_computes_what_all_twelve_rows_do(predictor: Any) -> None:
    """submit_tower runs only the slots present in a batch (present_rows); the model given
    all twelve rows, absent ones zero and masked, must say the same."""
    from sleeplm_core.batching import ready, submit_tower
    from sleeplm_core.io.channels import CANONICAL_SLOTS
    from sleeplm_core.model.signal_encoder import present_rows, zscore_windows

    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, len(CANONICAL_SLOTS), 1920)).astype(np.float32) * 20.0
    mask = np.zeros(len(CANONICAL_SLOTS), bool)
    mask[[CANONICAL_SLOTS.index(s) for s in ("C3_M2", "C4_M1", "EOG_L", "EMG_CHIN")]] = True
    x[:, ~mask] = 0.0
    reduced = submit_tower(
        predictor.model, predictor.device, x, mask, 6, lambda fn, i: ready(fn(i))
    )[0].result()
    m = torch.as_tensor(np.broadcast_to(mask, (6, len(mask))).copy())
    assert present_rows(m) is not None  # the batch is reduced
    with torch.inference_mode():
        full = predictor.model.encode_signal_raw(zscore_windows(torch.as_tensor(x), m), m)
    for got, want in zip(reduced, full, strict=True):
        torch.testing.assert_close(got, want.float(), atol=1e-4, rtol=1e-4)
