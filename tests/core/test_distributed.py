"""Distributed training: process setup, feature gathering, a 2-process gloo ``torchrun`` run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sleeplm_core import losses
from sleeplm_core.train import checkpoint as ckpt
from sleeplm_core.train.distributed import compute_init, mean_across_ranks
from tests.core.test_model import micro_config_file

REPO = Path(__file__).resolve().parents[2]


def test_single_process_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    info = compute_init("cpu")
    assert (info.rank, info.world_size, info.is_main_process, info.ddp) == (0, 1, True, False)
    assert mean_across_ranks({"loss": 2.0}, info) == {"loss": 2.0}


def test_gather_keeps_gradient_of_the_local_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1 of 2: the other rank's rows arrive without gradient, ours keep it.

    Our rows' gradient is doubled (world size): each rank back-propagates the same global loss
    into its own shard only and DDP averages the two, giving exactly the global gradient.
    """
    other = torch.full((2, 3), 5.0)

    def fake_all_gather(parts: list[torch.Tensor], x: torch.Tensor) -> None:
        parts[0].copy_(other)
        parts[1].copy_(x)

    monkeypatch.setattr(losses.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(losses.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(losses.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(losses.dist, "all_gather", fake_all_gather)
    mine = torch.ones(2, 3, requires_grad=True)
    gathered = losses.gather_with_local_grad(mine)
    assert gathered.shape == (4, 3) and torch.equal(gathered[:2], other)
    weights = torch.arange(12.0).view(4, 3)
    (gathered * weights).sum().backward()
    assert torch.equal(mine.grad, 2 * weights[2:])  # rows 2..3 are rank 1's


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "sleeplm_core.cli.train", "--config", str(micro_config_file(tmp_path)),
           "--synthetic", "1", "--epochs-per-night", "12", "--out", str(out), "--steps", "2",
           "--batch-size", "2", "--device", "cpu", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # each rank trained 2 steps on 2 epochs and contrasted against the 4 gathered ones
    for rank in (0, 1):
        assert f"rank {rank}/2: finished at step 2, contrastive batch 4" in proc.stdout
    meta = ckpt.load_meta(out)
    assert meta["world_size"] == 2 and meta["global_batch_size"] == 4
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and rows[-1]["contrastive_batch"] == 4
    assert ckpt.list_steps(out) == [2]  # only rank 0 saves
