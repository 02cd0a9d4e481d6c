"""Checkpoints: safetensors + JSON round trip, optimizer state, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from sleeplm_core.cli.main import main
from sleeplm_core.errors import CheckpointError
from sleeplm_core.model.config import config_from_dict
from sleeplm_core.model.sleeplm import SleepLM
from sleeplm_core.model.tokenizer import CaptionTokenizer
from sleeplm_core.train import checkpoint as ckpt
from sleeplm_core.train.loop import make_optimizer
from tests.core.test_model import micro_config_dict

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SleepLM, torch.optim.Optimizer]:
    """A micro model after one optimizer step, saved at step 7."""
    torch.manual_seed(0)
    cfg = config_from_dict(micro_config_dict())
    model = SleepLM(cfg, CaptionTokenizer.from_corpus(["stage N2, no events", "stage W"]))
    opt = make_optimizer(model, 1e-3, 0.05)
    signal, mask = torch.randn(2, 12, 1920), torch.ones(2, 12, dtype=torch.bool)
    model(signal, mask, mask_ratio=0.0)["recon"].pow(2).mean().backward()
    opt.step()
    out = tmp_path_factory.mktemp("ckpt")
    meta = {"config": cfg.to_dict(), "vocab": model.tokenizer.tokens, "metrics": {"loss": 1.5}}
    ckpt.save_checkpoint(out, 7, model.checkpoint_state_dict(), opt, meta)
    return out, model, opt


def test_files_and_metadata(saved: tuple[Path, SleepLM, Any]) -> None:
    out, _, _ = saved
    names = sorted(p.name for p in out.iterdir())
    assert names == ["meta_000007.json", "model_000007.safetensors", "optim_000007.safetensors"]
    meta = json.loads((out / "meta_000007.json").read_text())
    assert meta["step"] == 7 and meta["format"] == ckpt.FORMAT
    assert set(meta["code"]) == {"package", "git"} and meta["metrics"] == {"loss": 1.5}
    assert (out / "model_000007.safetensors").stat().st_size < 1_000_000  # no MiniLM inside


def test_model_round_trip(saved: tuple[Path, SleepLM, Any]) -> None:
    out, model, _ = saved
    loaded, meta = ckpt.load_model(out)  # directory -> newest checkpoint
    assert meta["step"] == 7 and loaded.tokenizer.tokens == model.tokenizer.tokens
    model.eval()
    signal, mask = torch.randn(2, 12, 1920), torch.ones(2, 12, dtype=torch.bool)
    mask[1, 3:] = False
    assert torch.allclose(model.encode_signal(signal, mask), loaded.encode_signal(signal, mask))
    a = model(signal, mask)["recon"]
    b = loaded(signal, mask)["recon"]
    assert torch.allclose(a, b)
    loaded_from_file, _ = ckpt.load_model(out / "meta_000007.json")
    assert torch.equal(loaded_from_file.logit_scale, model.logit_scale)


def test_optimizer_round_trip(saved: tuple[Path, SleepLM, torch.optim.Optimizer]) -> None:
    out, model, opt = saved
    fresh = make_optimizer(model, 5.0, 0.0)
    ckpt.load_optimizer(out, fresh)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for idx, state in a["state"].items():
        for name, value in state.items():
            assert torch.equal(value, b["state"][idx][name]), (idx, name)


def test_keep_last_prunes_old_checkpoints(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        ckpt.save_checkpoint(tmp_path, step, {"w": torch.ones(2)}, None, {}, keep_last=2)
    assert ckpt.list_steps(tmp_path) == [3, 4]
    assert not (tmp_path / "model_000001.safetensors").exists()


def test_half_written_checkpoint_is_ignored(tmp_path: Path) -> None:
    ckpt.save_checkpoint(tmp_path, 2, {"w": torch.ones(2)}, None, {})
    (tmp_path / "model_000004.safetensors").write_bytes(b"partial")  # killed before its meta
    assert ckpt.latest_step(tmp_path) == 2


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("model", "not a readable safetensors file"),
        ("meta", "corrupt metadata"),
        ("format", "format 'someone-else/9'"),
        ("delete_model", "no checkpoint"),
    ],
)
def test_corrupt_checkpoint_raises_checkpoint_error(
    saved: tuple[Path, SleepLM, Any], tmp_path: Path, damage: str, message: str
) -> None:
    src, _, _ = saved
    for p in src.iterdir():
        (tmp_path / p.name).write_bytes(p.read_bytes())
    if damage == "model":
        (tmp_path / "model_000007.safetensors").write_bytes(b"\x00garbage" * 10)
    elif damage == "meta":
        (tmp_path / "meta_000007.json").write_text('{"format": ')
    elif damage == "format":
        meta = json.loads((tmp_path / "meta_000007.json").read_text())
        (tmp_path / "meta_000007.json").write_text(json.dumps({**meta, "format": "someone-else/9"}))
    else:
        (tmp_path / "model_000007.safetensors").unlink()
    with pytest.raises(CheckpointError, match=message) as info:
        ckpt.load_model(tmp_path)
    line = info.value.one_line()
    assert "\n" not in line and str(tmp_path) in line


def test_missing_checkpoint_is_a_one_line_cli_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    code = main(["fewshot", "--checkpoint", str(missing), "--k", "1", "--synthetic", "1",
                 "--out", str(tmp_path / "fs")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("sleeplm: error: ") and str(missing) in err
