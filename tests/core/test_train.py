"""Training: collate, synthetic data, the CLI's train / finetune / fewshot, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sleeplm_core.cli.main import main
from sleeplm_core.model.tokenizer import CaptionTokenizer
from sleeplm_core.train import checkpoint as ckpt
from sleeplm_core.train.collate import SleepLMCollator, text_id, zscore_windows
from sleeplm_core.train.loop import lr_at
from sleeplm_core.train.synthetic_data import SyntheticEpochs
from tests.core.test_model import micro_config_file

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# --- data side ----------------------------------------------------------------------------


def test_zscore_per_window_and_channel() -> None:
    x = torch.zeros(1, 3, 4)
    x[0, 0] = torch.tensor([1.0, 3.0, 1.0, 3.0])  # mean 2, std 1 -> -1, 1, -1, 1
    x[0, 1] = 7.0  # flat (e.g. body position): zeros, not NaN
    x[0, 2] = torch.tensor([5.0, float("nan"), 5.0, 9.0])  # missing channel: zeros
    z = zscore_windows(x, torch.tensor([[True, True, False]]))
    assert z[0, 0].tolist() == [-1.0, 1.0, -1.0, 1.0]
    assert z[0, 1:].abs().sum() == 0


def test_collate_batch_layout() -> None:
    ds = SyntheticEpochs(1, epochs_per_night=6, seed=1)
    tok = CaptionTokenizer.from_corpus(ds.caption_corpus())
    batch = SleepLMCollator(tok, ["stage_event"], max_len=32)([ds[i] for i in range(4)])
    assert batch["signal"].shape == (4, 12, 1920) and batch["signal"].dtype == torch.float32
    present = batch["signal"][batch["mask"]]
    assert torch.allclose(present.mean(-1), torch.zeros(len(present)), atol=1e-4)
    assert all(t.startswith("stage ") for t in batch["texts"])
    assert batch["text_ids"].tolist() == [text_id(t) for t in batch["texts"]]
    assert batch["caption_tokens"].shape == batch["caption_targets"].shape


def test_prompt_split_trains_the_continuation_only() -> None:
    ds = SyntheticEpochs(1, epochs_per_night=2, seed=1)
    tok = CaptionTokenizer.from_corpus(ds.caption_corpus())
    collate = SleepLMCollator(tok, ["heart"], max_len=32, prompt_prob=1.0, seed=3)
    batch = collate([ds[0]])
    caption = batch["texts"][0]  # contrastive text: the whole caption
    tokens, targets = batch["caption_tokens"][0].tolist(), batch["caption_targets"][0].tolist()
    bos = tokens.index(2)
    assert bos >= 1 and targets[: bos + 1] == [0] * (bos + 1)  # prompt and [BOS] unscored
    prompt, rest = tok.decode(tokens[:bos]), tok.decode(tokens[bos + 1 :], continuation=True)
    assert f"{prompt} {rest}".lower() == caption.lower() and rest[0].islower()


def test_synthetic_is_deterministic_and_keeps_a_channel() -> None:
    a = SyntheticEpochs(2, epochs_per_night=5, seed=4, channel_dropout=0.9)
    b = SyntheticEpochs(2, epochs_per_night=5, seed=4, channel_dropout=0.9)
    for i in range(len(a)):
        sa, sb = a[i], b[i]
        assert np.array_equal(sa["signal"], sb["signal"]) and sa["captions"] == sb["captions"]
        assert sa["mask"].any() and not sa["signal"][~sa["mask"]].any()
        assert sa["signal"].shape == (12, 1920) and sa["stage"] in range(5)


def test_lr_schedule() -> None:
    assert lr_at(0, base=1.0, warmup=4, total=100) == pytest.approx(0.25)
    assert lr_at(3, base=1.0, warmup=4, total=100) == pytest.approx(1.0)
    assert lr_at(100, base=1.0, warmup=4, total=100) == pytest.approx(0.1)


# --- the command line ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sleeplm train --config sleeplm-tiny --synthetic 1 --steps 2`` through ``main``."""
    out = tmp_path_factory.mktemp("tiny")
    code = main(["train", "--config", "sleeplm-tiny", "--synthetic", "1", "--epochs-per-night",
                 "12", "--out", str(out), "--steps", "2", "--batch-size", "4",
                 "--log-every", "1", "--no-progress"])  # fmt: skip
    assert code == 0
    return out


def test_two_step_synthetic_training(tiny_run: Path) -> None:
    assert ckpt.list_steps(tiny_run) == [2]
    meta = ckpt.load_meta(tiny_run)
    assert meta["config"]["name"] == "sleeplm-tiny" and meta["world_size"] == 1
    assert meta["data"]["kind"] == "synthetic" and meta["vocab"][:4][0] == "[PAD]"
    rows = _metrics(tiny_run)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert {"contrastive_loss", "caption_loss", "recon_loss", "loss", "epochs_per_s"} <= set(
            row
        )
        assert all(np.isfinite(v) for v in row.values())


def test_same_command_resumes(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--config", "sleeplm-tiny", "--synthetic", "1", "--epochs-per-night",
                 "12", "--out", str(tiny_run), "--steps", "3", "--batch-size", "4",
                 "--log-every", "1", "--no-progress"])  # fmt: skip
    assert code == 0
    assert "at step 2" in capsys.readouterr().out
    assert [r["step"] for r in _metrics(tiny_run)] == [1, 2, 3]
    code = main(["train", "--config", "sleeplm-tiny", "--synthetic", "1", "--out", str(tiny_run),
                 "--no-resume"])  # fmt: skip
    assert code == 2


def test_finetune_and_fewshot(tiny_run: Path, tmp_path: Path) -> None:
    ft = tmp_path / "ft"
    code = main(["finetune", "--checkpoint", str(tiny_run), "--synthetic", "1",
                 "--epochs-per-night", "8", "--out", str(ft), "--steps", "1", "--batch-size", "4",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    meta = ckpt.load_meta(ft)
    assert meta["finetuned_from"].endswith("meta_000003.json") or meta["finetuned_from"].endswith(
        "meta_000002.json"
    )
    assert meta["vocab"] == ckpt.load_meta(tiny_run)["vocab"]
    head = tmp_path / "head"
    code = main(["fewshot", "--checkpoint", str(ft), "--k", "2", "--synthetic", "1",
                 "--eval-epochs", "10", "--out", str(head), "--method", "prototype"])  # fmt: skip
    assert code == 0
    info = json.loads((head / "fewshot_head.json").read_text())
    assert info["k"] == 2 and info["stages"] == ["W", "N1", "N2", "N3", "REM"]
    from safetensors.torch import load_file

    tensors = load_file(str(head / "fewshot_head.safetensors"))
    assert tensors["weight"].shape == (5, 64) and tensors["bias"].shape == (5,)


def test_training_on_shards_of_simulated_nights(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["train", "--config", str(micro_config_file(tmp_path)), "--synth-shards", "1",
                 "--synth-hours", "0.1", "--out", str(out), "--steps", "2", "--batch-size", "4",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    meta = ckpt.load_meta(out)
    assert meta["data"]["kind"] == "shards" and len(meta["data"]["paths"]) == 1
    assert all(np.isfinite(v) for v in _metrics(out)[-1].values())


def test_config_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "signal": {"depth": 3}}))
    code = main(["train", "--config", str(bad), "--synthetic", "1", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "signal.depth: unknown key" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = micro_config_file(tmp_path)
    out = tmp_path / "run"
    args = ["--config", str(cfg), "--synthetic", "1", "--epochs-per-night", "16", "--out",
            str(out), "--batch-size", "4", "--checkpoint-every", "2", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sleeplm_core.cli.train", *args, "--steps", "1000"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while ckpt.latest_step(out) is None:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    at_kill = ckpt.latest_step(out)
    assert at_kill is not None and at_kill >= 2 and at_kill % 2 == 0
    capsys.readouterr()
    assert main(["train", *args, "--steps", str(at_kill + 2), "--log-every", "1"]) == 0
    assert f"at step {at_kill}" in capsys.readouterr().out
    assert ckpt.latest_step(out) == at_kill + 2
    resumed = [r["step"] for r in _metrics(out) if r["step"] > at_kill]
    assert resumed[-2:] == [at_kill + 1, at_kill + 2]
